"""supervision integration (extra ``[supervision]``): `Segment` lists ↔ ``supervision.Detections``.

from paligemma_segcodec.sv import to_detections, to_suffix, annotate
detections = to_detections(segments, height, width)   # xyxy, mask, class_id, data["class_name"]
suffix = to_suffix(detections)                        # back: one PaliGemma suffix for the image
annotate(image, segments).save("overlay.png")         # supervision's mask, box and label annotators
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from paligemma_segcodec._optional import require
from paligemma_segcodec.boxes import Convention, box_to_loc, tight_box
from paligemma_segcodec.errors import ThinObjectWarning
from paligemma_segcodec.segment import Segment, check_size, paste_mask_in_box
from paligemma_segcodec.tokens import check_label, format_object

if TYPE_CHECKING:
    from paligemma_segcodec.codec import Codec

__all__ = ["annotate", "to_detections", "to_suffix"]


def _sv() -> Any:
    with warnings.catch_warnings():  # supervision warns on import when OpenCV is absent: not ours to show
        warnings.filterwarnings("ignore", message=r"OpenCV \(`opencv-python`\) is not installed", category=UserWarning)
        return require("supervision", "supervision")


def to_detections(
    segments: Sequence[Segment], height: int, width: int, *, convention: Convention = "big_vision"
) -> Any:
    """Segments (decoded with this ``height``/``width``, or without a size) → ``supervision.Detections``.

    ``xyxy`` in pixels (`Segment.xyxy`), ``mask`` bool ``[N, H, W]`` (all False for detection-only
    objects), ``class_id`` the index of the label in order of first appearance, and
    ``data["class_name"]`` the labels. `to_suffix` goes back.

    Args:
      segments: decoded objects (`paligemma_segcodec.decode_tokens`).
      height: the image height in pixels.
      width: the image width in pixels.
      convention: loc → pixel rule for the boxes and for pasting ``mask64`` (`paste_mask`).

    Returns:
      ``supervision.Detections`` with one row per segment.

    Raises:
      ValueError: a segment's full-size mask is not ``height × width``, a bad size, or an unknown
        ``convention``.
      ImportError: supervision is not installed (``pip install paligemma-segcodec[supervision]``).

    Example:
        >>> from paligemma_segcodec import Segment
        >>> det = to_detections([Segment(label="car", loc=(0, 0, 512, 1023))], 4, 6)
        >>> det.xyxy.tolist(), det.data["class_name"].tolist(), det.mask.shape
        ([[0.0, 0.0, 6.0, 2.0]], ['car'], (1, 4, 6))
    """
    sv = _sv()
    names = list(dict.fromkeys(s.label for s in segments))
    n = len(segments)
    masks = np.zeros((n, height, width), bool)
    for i, s in enumerate(segments):
        if s.mask is not None:
            if s.mask.shape != (height, width):
                raise ValueError(f"segment {i} has a {s.mask.shape} mask, expected {(height, width)}")
            masks[i] = s.mask
        elif s.mask64 is not None:  # decoded without a size: pasted here, inside its box
            (t, left, b, r), crop = paste_mask_in_box(s.mask64, s.loc, height, width, convention=convention)
            masks[i, t:b, left:r] = crop
    boxes = [s.xyxy(height=height, width=width, convention=convention) for s in segments]
    xyxy = np.array(boxes, dtype=np.float32).reshape(n, 4)
    return sv.Detections(
        xyxy=xyxy,
        mask=masks,
        class_id=np.array([names.index(s.label) for s in segments], dtype=int),
        data={"class_name": np.array([s.label for s in segments], dtype=object)},
    )


def annotate(image: Image.Image, segments: Sequence[Segment], *, convention: Convention = "big_vision") -> Image.Image:
    """Draws segments with supervision's ``MaskAnnotator``, ``BoxAnnotator`` and ``LabelAnnotator``.

    Args:
      image: the image the segments were decoded for (any mode; drawn on an RGB copy).
      segments: decoded objects, with masks of the image's size or ``mask64`` (pasted here).
      convention: loc → pixel rule (`paste_mask`).

    Returns:
      A new RGB image with the masks, boxes and labels drawn.

    Raises:
      ValueError: as `to_detections`.
      ImportError: supervision is not installed.

    Example:
        >>> from PIL import Image
        >>> from paligemma_segcodec import Segment
        >>> out = annotate(Image.new("RGB", (64, 48)), [Segment(label="car", loc=(0, 0, 512, 1023))])
        >>> out.size, out.mode
        ((64, 48), 'RGB')
    """
    sv = _sv()
    scene = np.asarray(image.convert("RGB")).copy()
    h, w = scene.shape[:2]
    det = to_detections(segments, h, w, convention=convention)
    if len(det):
        scene = sv.MaskAnnotator().annotate(scene=scene, detections=det)
        scene = sv.BoxAnnotator().annotate(scene=scene, detections=det)
        scene = _label_annotator(sv).annotate(scene=scene, detections=det, labels=[s.label for s in segments])
    return Image.fromarray(np.asarray(scene))


def _label_annotator(sv: Any) -> Any:
    """supervision's ``LabelAnnotator`` keeping labels inside the image (``smart_position``,
    supervision >= 0.23): by default a box on the image's top edge gets its label drawn above the
    image, where it is lost."""
    import inspect

    if "smart_position" in inspect.signature(sv.LabelAnnotator).parameters:
        return sv.LabelAnnotator(smart_position=True)
    return sv.LabelAnnotator(text_position=sv.Position.TOP_LEFT)


def _labels_of(detections: Any, labels: Sequence[str] | None, n: int) -> list[str]:
    """Each detection's label: ``labels[class_id]`` when ``labels`` is given, else ``data["class_name"]``."""
    if labels is not None:
        class_id = getattr(detections, "class_id", None)
        if class_id is None:
            raise ValueError("labels= is indexed by class_id, but the detections have no class_id")
        ids = np.asarray(class_id).reshape(-1)
        if len(ids) != n:
            raise ValueError(f"got {n} detections but {len(ids)} class ids")
        names = []
        for i, c in enumerate(ids.tolist()):
            if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(labels):
                raise ValueError(f"detection {i}: class_id {c!r} is not an index into labels ({len(labels)} labels)")
            names.append(labels[c])
    else:
        data = getattr(detections, "data", None) or {}
        if "class_name" not in data:
            raise ValueError(
                "the detections have no labels: no data['class_name']; pass labels= (names indexed by class_id)"
            )
        names = list(np.asarray(data["class_name"], dtype=object).reshape(-1))
        if len(names) != n:
            raise ValueError(f"got {n} detections but {len(names)} class names")
    return [check_label(name, f"the label of detection {i}") for i, name in enumerate(names)]


def _thin(loc: tuple[int, int, int, int]) -> bool:
    return loc[2] <= loc[0] or loc[3] <= loc[1]


def _warn_dropped(indices: list[int], what: str, category: type[Warning]) -> None:
    if indices:
        shown = ", ".join(str(i) for i in indices[:10]) + (", ..." if len(indices) > 10 else "")
        warnings.warn(f"{len(indices)} detection(s) dropped ({shown}): {what}", category, stacklevel=3)


def to_suffix(
    detections: Any,
    *,
    labels: Sequence[str] | None = None,
    codec: Codec | None = None,
    height: int | None = None,
    width: int | None = None,
    min_loc_extent: int = 0,
) -> str:
    """``supervision.Detections`` of one image → its PaliGemma suffix (the reverse of `to_detections`).

    With masks (``detections.mask``, ``[N, H, W]``), each object is its mask's 4 ``<loc>`` (the
    mask's tight box, not ``xyxy``) + 16 ``<seg>`` tokens + label, all masks encoded in one batched
    `paligemma_segcodec.encode_masks` call. Without masks (``mask is None``), each object is a
    detection answer: the 4 ``<loc>`` of its ``xyxy`` box (clipped to the image) + label. Objects
    are joined with ``" ; "`` in detection order, as ``segcodec convert`` writes suffixes; no
    detections give ``""`` (a negative example).

    The rules of ``segcodec convert``: an object whose mask is empty is dropped with a
    ``UserWarning``; an object whose box is thinner than one ``<loc>`` step (``y2 == y1`` or
    ``x2 == x1`` after ``round(v * 1023)``, which PaliGemma's parsers reject) is dropped with a
    `ThinObjectWarning`, or kept and widened by one bin with ``min_loc_extent=1``
    (``--widen-thin-boxes``). One warning per kind per call, listing the indices.

    Args:
      detections: ``supervision.Detections`` (``xyxy`` in pixels; ``mask`` bool ``[N, H, W]`` or None).
      labels: the class names, indexed by ``detections.class_id``; None (default) =
        ``detections.data["class_name"]``.
      codec: the codec to use for masks; None = the shared default.
      height: the image height in pixels: needed without masks (to normalize ``xyxy``); with masks,
        checked against their size.
      width: the image width in pixels (give both or neither).
      min_loc_extent: 0 (drop thin objects) or 1 (widen them by one bin, see `widen_loc`).

    Returns:
      The suffix, e.g. ``"<loc0024>…<seg012> car ; <loc0100>…<seg099> person"``.

    Raises:
      ValueError: missing labels (no ``data["class_name"]`` and no ``labels``; a ``class_id`` that
        is not an index into ``labels``), a label that cannot be written (`check_label`), masks
        that are not ``[N, H, W]`` or not ``height × width``, a box that is not finite or has no
        area inside the image, no ``height``/``width`` without masks, or a bad ``min_loc_extent``.
      TypeError: a label that is not a str, or a ``min_loc_extent`` that is not an int.
      CheckpointNotFoundError: ``codec=None``, masks to encode and no checkpoint could be found.

    Warns:
      UserWarning: objects with an empty mask were dropped.
      ThinObjectWarning: objects thinner than one ``<loc>`` step were dropped (``min_loc_extent=0``).

    Example:
        >>> import supervision as sv
        >>> mask = np.zeros((1, 8, 8), bool)
        >>> mask[0, 2:6, 2:6] = True
        >>> det = sv.Detections(xyxy=np.array([[2.0, 2.0, 6.0, 6.0]]), mask=mask, class_id=np.array([0]))
        >>> text = to_suffix(det, labels=["square"])
        >>> text[:36], text.count("<seg"), text.endswith(" square")
        ('<loc0256><loc0256><loc0767><loc0767>', 16, True)
        >>> det.mask = None  # boxes only: a detection answer
        >>> to_suffix(det, labels=["square"], height=8, width=8)
        '<loc0256><loc0256><loc0767><loc0767> square'
    """
    from paligemma_segcodec.api import _check_extent, encode_masks, widen_loc

    k = _check_extent(min_loc_extent)
    if (height is None) != (width is None):
        raise ValueError("give both height and width, or neither")
    size = check_size(height, width) if height is not None else None
    n = len(detections)
    masks = getattr(detections, "mask", None)
    if masks is not None:
        masks = np.asarray(masks)
        if masks.ndim != 3 or masks.shape[0] != n:
            raise ValueError(f"detections.mask must be [N, H, W] with N = {n} detections, got shape {masks.shape}")
        if size is not None and masks.shape[1:] != size:
            raise ValueError(f"the masks are {masks.shape[1:]}, but height={height}, width={width} were given")
    if n == 0:
        return ""
    names = _labels_of(detections, labels, n)
    thin: list[int] = []
    if masks is None:
        if size is None:
            raise ValueError("detections without masks need the image size: pass height= and width=")
        h, w = size
        xyxy = np.asarray(detections.xyxy, dtype=np.float64).reshape(n, 4)
        texts = []
        for i, (x1, y1, x2, y2) in enumerate(xyxy.tolist()):
            if not np.isfinite([x1, y1, x2, y2]).all():
                raise ValueError(f"detection {i}: its box xyxy {[x1, y1, x2, y2]} is not finite")
            b = [min(max(v, 0.0), 1.0) for v in (y1 / h, x1 / w, y2 / h, x2 / w)]  # clipped to the image
            box = (b[0], b[1], b[2], b[3])
            if box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"detection {i}: its box xyxy {[x1, y1, x2, y2]} has no area inside the {w}x{h} image")
            loc = box_to_loc(box)
            if _thin(loc) and not k:
                thin.append(i)
                continue
            texts.append(format_object(widen_loc(loc, k) if k else loc, None, names[i]))
        _warn_dropped(thin, _THIN, ThinObjectWarning)
        return " ; ".join(texts)
    empty: list[int] = []
    keep: list[int] = []
    for i in range(n):
        if not masks[i].any():
            empty.append(i)
        elif not k and _thin(box_to_loc(tight_box(masks[i]))):
            thin.append(i)
        else:
            keep.append(i)
    _warn_dropped(empty, "their masks are empty (no pixel): an object needs pixels for its box", UserWarning)
    _warn_dropped(thin, _THIN, ThinObjectWarning)
    texts = encode_masks([masks[i] for i in keep], labels=[names[i] for i in keep], codec=codec, min_loc_extent=k)
    return " ; ".join(texts)


_THIN = (
    "thinner than one <loc> step (1/1023 of the side): their boxes round to y2 == y1 or x2 == x1, which "
    "PaliGemma's parsers reject; pass min_loc_extent=1 to keep them, widened by one bin"
)
