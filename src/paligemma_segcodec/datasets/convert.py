"""Masks (folders or COCO) → PaliGemma fine-tuning JSONL.

Each output line is ``{"image": NAME, "prefix": "segment LABEL", "suffix": "<loc>…<seg>… LABEL ; …"}``,
the form big_vision's JSONL datasets and the Hugging Face PaliGemma fine-tuning recipes read.

- Objects are joined with ``" ; "``; with several labels the prefix lists them joined by ``" ; "``
  (PaliGemma's multi-class prompt). Folder input: the prefix names every configured label. COCO
  input: the categories present in the image.
- An image with no object gets an **empty suffix** (a negative example: "nothing to segment"), not
  dropped.
- Bad items (unreadable/truncated file, image without mask, mask without image, size mismatch,
  unsupported mode) never stop the run and are never silently dropped: one line each in
  ``OUT.errors.jsonl`` and a count in the returned `ConvertReport`.
- Masks are encoded in batches (``batch_size`` objects per device call); the same input always
  gives byte-identical output.
- Files are read and decoded, and each object's crop resized to 64×64, on ``workers`` threads
  (`paligemma_segcodec.datasets.parallel.ordered_map`; default: the CPU count) while the caller's
  thread encodes and writes; items come back in input order, so the output, the errors list and
  the splits are byte-identical whatever ``workers`` is.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections import Counter
from collections.abc import Generator, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from paligemma_segcodec.boxes import crop_pixels
from paligemma_segcodec.datasets.example import Example, prepare_example
from paligemma_segcodec.datasets.files import (
    Instances,
    MaskObject,
    Problem,
    extract_objects,
    is_thin,
    match_pairs,
    unreadable,
)
from paligemma_segcodec.datasets.parallel import ordered_map, resolve_workers
from paligemma_segcodec.errors import OutputOverInputError
from paligemma_segcodec.maskio import open_image, read_mask_values
from paligemma_segcodec.prep import PreparedMask, prepare_crop
from paligemma_segcodec.progress import Progress
from paligemma_segcodec.progress import wrap as wrap_progress
from paligemma_segcodec.safeio import (
    AtomicFiles,
    InputGuard,
    atomic_symlink,
    atomic_write,
    check_stop,
    copy_file,
    open_regular,
    resolve_under,
    same_entry,
)
from paligemma_segcodec.tokens import check_label

if TYPE_CHECKING:
    from paligemma_segcodec.codec import Codec

__all__ = [
    "ConvertReport",
    "Example",
    "convert_coco",
    "convert_folder",
    "errors_path",
    "example_for_pair",
    "folder_labels",
    "format_line",
    "prepare_example",
    "write_examples",
]


def _prepared(ex: Example) -> Sequence[PreparedMask]:
    return ex.prepared if ex.prepared is not None else [prepare_crop(o.crop, o.box) for o in ex.objects]


@dataclass
class ConvertReport:
    """What a conversion did. ``ok`` is False when anything was skipped.

    ``summary()`` is the text ``segcodec convert`` prints: lines, objects, splits, dropped
    components, and the skipped items counted by kind.

    Attributes:
      output (Path): the JSONL written.
      lines (int): lines written (one per image, objects or not).
      objects (int): objects written, over all lines.
      empty (int): lines with no object (empty suffix: negative examples).
      dropped_small (int): components dropped as smaller than ``min_area`` or thinner than one
        ``<loc>`` step.
      skipped (list[Problem]): items left out (errors), as listed in the errors file.
      warnings (list[Problem]): items written that look wrong, also in the errors file.
      seconds (float): wall time of the run.
      splits (dict[str, int]): lines per split file (``{"train": n, "val": m}``), empty without
        a split.
      errors_file (Path | None): where the errors list went (None: `errors_path` of ``output``).

    Examples:
        >>> from pathlib import Path
        >>> report = ConvertReport(Path("out.jsonl"), lines=2, objects=3)
        >>> report.skipped.append(Problem("images/b.jpg", "image without mask (no b.* in masks)"))
        >>> report.ok
        False
        >>> print(report.summary())
        wrote 2 lines (3 objects, 0 images without objects) to out.jsonl in 0.0s
        skipped 1 item(s), listed in out.errors.jsonl:
          1 x image without mask
    """

    output: Path
    lines: int = 0
    objects: int = 0
    empty: int = 0
    dropped_small: int = 0
    skipped: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    splits: dict[str, int] = field(default_factory=dict)
    errors_file: Path | None = None  # where the errors list went (default: `errors_path` of output)

    @property
    def ok(self) -> bool:
        return not self.skipped

    def summary(self) -> str:
        lines = [
            f"wrote {self.lines} lines ({self.objects} objects, {self.empty} images without objects) "
            f"to {self.output} in {self.seconds:.1f}s"
        ]
        if self.splits:
            lines.append("splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()))
        if self.dropped_small:
            lines.append(
                f"dropped {self.dropped_small} components smaller than --min-area or thinner than one <loc> step"
            )
        errors_file = self.errors_file or errors_path(self.output)
        if self.skipped:
            reasons = Counter(_kind(p.reason) for p in self.skipped)
            lines.append(f"skipped {len(self.skipped)} item(s), listed in {errors_file}:")
            lines += [f"  {n} x {r}" for r, n in reasons.most_common()]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s), also in {errors_file}:")
            lines += [f"  {p.file}: {p.reason}" for p in self.warnings[:5]]
            lines += [f"  … and {len(self.warnings) - 5} more"] if len(self.warnings) > 5 else []
        return "\n".join(lines)


def _kind(reason: str) -> str:
    """A problem's reason without its details, to count problems by kind in a summary:
    ``"unreadable mask: truncated file"``, ``"size mismatch"``, ``"image without mask"``."""
    head, _, rest = reason.partition(": ")
    if head.startswith("unreadable") and rest:
        head += ": " + re.split(r" \(|; ", rest)[0]
    return re.sub(r" '[^']*'", "", head.split(" (")[0])


def errors_path(output: str | os.PathLike[str]) -> Path:
    """``OUT.jsonl`` → ``OUT.errors.jsonl``."""
    out = Path(output)
    return out.with_name(out.name.removesuffix(".jsonl") + ".errors.jsonl")


def _dump(record: Mapping[str, Any]) -> str:
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a file name that is not UTF-8): escaped instead
        return json.dumps(record, ensure_ascii=True)
    return text


def format_line(ex: Example, object_texts: Sequence[str]) -> str:
    """The JSONL line of an example, given its objects' token strings (with labels)."""
    record = {"image": ex.image, "prefix": "segment " + " ; ".join(ex.labels), "suffix": " ; ".join(object_texts)}
    return _dump(record) + "\n"


def _splits(
    names: Sequence[str], split: float | None, seed: int, train_list: Path | None, val_list: Path | None
) -> dict[str, str] | None:
    """image name → "train"/"val" (None: no split)."""
    if split is not None and (train_list or val_list):
        raise ValueError("use either --split or --train-list/--val-list, not both")
    if split is not None:
        if not 0 < split < 1:
            raise ValueError(f"--split must be in (0, 1), got {split}")
        order = np.random.default_rng(seed).permutation(len(names))
        n_train = round(len(names) * split)
        return {names[i]: ("train" if rank < n_train else "val") for rank, i in enumerate(order)}
    if train_list or val_list:
        which: dict[str, str] = {}
        for path, name in ((train_list, "train"), (val_list, "val")):
            if path is None:
                continue
            with open_regular(path) as f:
                listing = f.read().decode("utf-8", errors="replace")
            for line in listing.splitlines():
                entry = line.strip()
                if entry:
                    which[entry] = name
                    which[Path(entry).stem] = name
        return {n: which.get(n, which.get(Path(n).stem, "")) for n in names}
    return None


def _place_image(ex: Example, dest_dir: Path, mode: str | None, size: int | None, guard: InputGuard | None) -> None:
    """Puts an example's image into ``dest_dir`` (copy, link or resized copy), atomically.

    The destination is resolved under ``dest_dir`` (a name read from a file cannot escape it).
    A source is never deleted, truncated or replaced: when the destination already is the source
    (the output ``images/`` folder is the input folder) a copy or link is skipped, and a resized
    copy is refused (`OutputOverInputError`); so is any destination that is one of the run's inputs.
    """
    dest = resolve_under(dest_dir, ex.image, what="image name", final_link_ok=True)
    link = os.path.islink(dest)
    source = ex.image_path
    # The destination *is* the source: the same folder entry (also when that entry is a symlink
    # the user's images folder holds), or the same file under another name (a hard link).
    same = source is not None and (
        same_entry(dest, source) or (os.path.lexists(dest) and not link and _same_file(source, dest))
    )
    if same and size is None:
        return  # copying or linking a file onto itself: it is already there
    if same or (guard is not None and guard.is_input(dest, through_links=False)):
        raise OutputOverInputError(
            f"{dest} is an input file; refusing to write a {'resized copy' if size else 'copy'} over it"
        )
    if ex.image_path is None:  # in-memory image: always written
        im = ex.pil.convert("RGB")
        with atomic_write(dest, "wb") as f:
            (im.resize((size, size), Image.Resampling.BILINEAR) if size else im).save(f, format=_pil_format(dest))
    elif size is not None:
        with open_image(ex.image_path) as im:
            resized = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        params = {"quality": 95} if ex.image_path.suffix.lower() in (".jpg", ".jpeg") else {}
        with atomic_write(dest, "wb") as f:
            resized.save(f, format=_pil_format(dest), **params)
    elif mode == "link":
        atomic_symlink(ex.image_path.resolve(), dest)
    else:
        copy_file(ex.image_path, dest, guard=guard)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _pil_format(dest: Path) -> str:
    fmt = Image.registered_extensions().get(dest.suffix.lower())
    return fmt or "PNG"


def write_examples(
    items: Iterable[Example | Problem],
    output: str | os.PathLike[str],
    *,
    codec: Codec | None = None,
    total: int | None = None,
    batch_size: int = 512,
    split: float | None = None,
    seed: int = 0,
    train_list: Path | None = None,
    val_list: Path | None = None,
    images: str | None = None,
    image_size: int | None = None,
    progress: Progress = True,
    names: Sequence[str] | None = None,
    dropped_small: int = 0,
    guard: InputGuard | None = None,
    min_loc_extent: int = 0,
    errors_file: str | os.PathLike[str] | None = None,
) -> ConvertReport:
    """Encodes examples in batches and writes ``output`` (+ ``OUT.errors.jsonl``, train/val files).

    ``images``: None, ``"copy"`` or ``"link"``: also place the images in ``OUT_DIR/images/``;
    ``image_size``: write ``size × size`` resized copies there instead (tokens are normalized, so
    they do not change); ``guard``: the run's inputs, which no output may replace;
    ``min_loc_extent``: 1 widens boxes thinner than one ``<loc>`` step by one bin (see
    `paligemma_segcodec.api.encode_masks`); ``errors_file``: where the errors list goes (default
    ``OUT.errors.jsonl``, see `errors_path`).

    Outputs are atomic (see `paligemma_segcodec.safeio.atomic_write`): until the run completes the
    previous files (if any) stay as they were; ``OUT.errors.jsonl`` is always rewritten (empty
    when nothing went wrong), so a stale list never looks like this run's.
    """
    from paligemma_segcodec.api import encode_prepared

    out = Path(output)
    report = ConvertReport(output=out, dropped_small=dropped_small)
    t0 = time.perf_counter()
    assign = _splits(list(names or []), split, seed, train_list, val_list) if names is not None else None
    image_dir = out.parent / "images"
    pending: list[Example] = []
    # Every output is written to a temporary file; all are renamed into place at the end, after
    # all were written and fsynced: an interrupted or failed run leaves the previous outputs as
    # they were.
    with AtomicFiles(guard=guard) as outputs:  # all committed together, after all were fsynced
        files = {"all": outputs.open(out)}
        if assign is not None:
            for name in ("train", "val"):
                files[name] = outputs.open(out.parent / f"{name}.jsonl")
                report.splits[name] = 0
        report.errors_file = Path(errors_file) if errors_file is not None else errors_path(out)
        errors = outputs.open(report.errors_file)

        def flush() -> None:
            objects = [o for ex in pending for o in ex.objects]
            prepared = [p for ex in pending for p in _prepared(ex)]
            widen = {"min_loc_extent": min_loc_extent} if min_loc_extent else {}
            labels = [o.label for o in objects]
            texts = iter(encode_prepared(prepared, labels, codec=codec, **widen) if prepared else [])
            for ex in pending:
                line = format_line(ex, [next(texts) for _ in ex.objects])
                if images or image_size or ex.image_path is None:
                    try:
                        _place_image(ex, image_dir, images, image_size, guard)
                    except (OSError, ValueError) as err:  # this image is left out, the run goes on
                        problem = Problem(str(ex.image_path or ex.image), f"image not placed in {image_dir}: {err}")
                        report.skipped.append(problem)
                        errors.write(_dump(problem.to_json()) + "\n")
                        continue
                files["all"].write(line)
                report.lines += 1
                report.objects += len(ex.objects)
                report.empty += not ex.objects
                part = assign.get(ex.image, "") if assign is not None else ""
                if part:
                    files[part].write(line)
                    report.splits[part] += 1
            pending.clear()

        n_objects = 0
        for item in wrap_progress(progress, items, total=total, desc="convert"):
            check_stop()
            if isinstance(item, Problem):
                report.skipped.append(item)
                errors.write(_dump(item.to_json()) + "\n")
                continue
            for warning in item.warnings:
                report.warnings.append(warning)
                errors.write(_dump(warning.to_json()) + "\n")
            pending.append(item)
            n_objects += len(item.objects)
            if n_objects >= batch_size:
                flush()
                n_objects = 0
        flush()
    report.seconds = time.perf_counter() - t0
    return report


def example_for_pair(
    image_path: Path | None,
    mask: Path | IO[bytes],
    *,
    labels: tuple[str, ...],
    name: str | None = None,
    **extract: Any,
) -> tuple[Example | Problem, int]:
    """One image/mask pair → ``(Example or Problem, dropped components)``: the per-item rule of
    `convert_folder` (also used by the Ray adapter, so both give the same lines).

    ``mask`` is a file path or an open binary file (e.g. a mask's bytes from Parquet). Without
    ``image_path`` the image is not checked and ``name`` is the example's image name.
    """
    where = str(mask) if isinstance(mask, Path) else str(name)
    size = None
    if image_path is not None:
        try:
            with open_image(image_path) as im:
                size = im.size
        except Exception as err:  # Pillow raises many types for broken files
            return unreadable("image", str(image_path), err), 0
    try:
        values = read_mask_values(mask)
    except Exception as err:
        return unreadable("mask", where, err, mask), 0
    if size is not None and values.shape != (size[1], size[0]):
        reason = f"size mismatch: mask is {values.shape[1]}x{values.shape[0]}, image is {size[0]}x{size[1]} (WxH)"
        return Problem(where, reason), 0
    objects, dropped, warnings = mask_objects(values, where, **extract)
    image = name if name is not None else str(getattr(image_path, "name", ""))
    return Example(image, image_path, labels, tuple(objects), warnings=warnings), dropped


def mask_objects(
    values: npt.NDArray[np.integer], where: str, **extract: Any
) -> tuple[list[MaskObject], int, tuple[Problem, ...]]:
    """A decoded mask's objects by convert's rule, whatever the source (folder, Ray, Hugging Face rows):
    ``(objects, dropped components, warnings)``.

    Objects thinner than one ``<loc>`` step are dropped with a warning (kept, to be widened, with
    ``widen_thin=True``); a mask with values but none above the threshold gets a warning (it is still
    written, with an empty suffix). ``extract``: `extract_objects`' options, plus ``widen_thin``.
    """
    widen = bool(extract.pop("widen_thin", False))
    objects, dropped = extract_objects(values, keep_thin=True, **extract)
    warnings: tuple[Problem, ...] = ()
    thin = [o for o in objects if is_thin(o.box)]
    if thin and not widen:  # the reference's tokens would not parse: drop them, and say so
        objects = [o for o in objects if not is_thin(o.box)]
        dropped += len(thin)
        t, left = crop_pixels(thin[0].box, values.shape[0], values.shape[1])[:2]
        reason = (
            f"{len(thin)} object(s) thinner than one <loc> step (1/1023 of the side) dropped, e.g. at pixel "
            f"(y, x) ({t}, {left}): their boxes round to y2 == y1 or x2 == x1, which PaliGemma's parsers "
            "reject; --widen-thin-boxes keeps them, widened by one bin"
        )
        warnings += (Problem(where, reason, severity="warning"),)
    if extract.get("label") is not None and not objects and not dropped:  # nothing above the threshold
        threshold = extract.get("threshold", 127)
        top = int(values.max()) if values.size else 0
        if top > 1:
            reason = (
                f"no pixel above --threshold {threshold} (values 0..{top}): a 0/1 mask saved with JPEG noise? "
                f"written with an empty suffix; pass a lower --threshold if these are objects"
            )
            warnings += (Problem(where, reason, severity="warning"),)
    return list(objects), dropped, warnings


def folder_labels(label: str | None, classes: Mapping[int, str] | None) -> tuple[str, ...]:
    """The labels a folder conversion names in every prefix (each checked by `check_label`)."""
    if classes:
        return tuple(check_label(name, f"class name of {value}") for value, name in classes.items())
    if label is None:
        raise ValueError("give a label (binary masks) or classes (semantic masks)")
    return (check_label(label),)


def _pair_work(pair: Any, labels: tuple[str, ...], extract: Mapping[str, Any]) -> tuple[Example | Problem, int]:
    """A reading thread's work for one pair: `example_for_pair`, then `prepare_example`."""
    item, dropped = example_for_pair(pair.image, pair.mask, labels=labels, **extract)
    return (prepare_example(item) if isinstance(item, Example) else item), dropped


def _folder_items(
    pairs: Sequence[Any],
    problems: Sequence[Problem],
    counter: list[int],
    *,
    workers: int = 1,
    **extract: Any,
) -> Generator[Example | Problem, None, None]:
    """The problems, then each pair's item, in order (read on ``workers`` threads); ``counter[0]``
    adds up the dropped components as the items are consumed."""
    yield from problems
    labels = folder_labels(extract.get("label"), extract.get("classes"))
    work = functools.partial(_pair_work, labels=labels, extract=extract)
    with closing(ordered_map(work, pairs, workers=workers)) as results:
        for item, dropped in results:
            counter[0] += dropped
            yield item


def convert_folder(
    images_dir: str | os.PathLike[str],
    masks_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    label: str | None = None,
    classes: Mapping[int, str] | None = None,
    threshold: int = 127,
    instances: Instances = "components",
    min_area: int = 16,
    widen_thin_boxes: bool = False,
    codec: Codec | None = None,
    workers: int | None = None,
    **write: Any,
) -> ConvertReport:
    """Folder of images + folder of masks (matched by stem) → JSONL. See the module docstring.

    Args:
      label: for binary masks (pixels ``> threshold``).
      classes: for semantic masks: value → label (``--classes 1=water,2=road``).
      instances: ``"components"`` (connected components, 8-connected) or ``"whole"``.
      min_area: drop components with fewer pixels (counted in the report).
      widen_thin_boxes: keep objects thinner than one ``<loc>`` step, their boxes widened by one
        bin (default: drop them, with a warning per mask in ``OUT.errors.jsonl``).
      workers: threads reading and decoding the files (None: the CPU count, `default_workers`;
        1: no threads). The output is byte-identical whatever the number.
      write: options of `write_examples` (split, seed, images, image_size, batch_size, progress…).

    Returns:
      The `ConvertReport`; ``output`` and ``OUT.errors.jsonl`` (and ``train.jsonl`` /
      ``val.jsonl`` with a split) are written, all at once when the run completes.

    Raises:
      ValueError: neither ``label`` nor ``classes``, a label that cannot be written
        (`paligemma_segcodec.tokens.check_label`), or a bad ``workers`` or ``write`` option;
        raised before any file is written.
      FileNotFoundError: a folder does not exist, or neither holds any file (`match_pairs`).
      CheckpointNotFoundError: ``codec=None`` and no checkpoint could be found.

    Examples:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> out = Path(tempfile.mkdtemp()) / "water.jsonl"
        >>> report = convert_folder(
        ...     "tests/data/water/images", "tests/data/water/masks", out, label="water", progress=False
        ... )
        >>> report.lines, report.objects, report.dropped_small, report.ok
        (10, 30, 92, True)
        >>> line = json.loads(out.read_text().splitlines()[0])
        >>> line["image"], line["prefix"], line["suffix"][:36]
        ('water_body_1120.jpg', 'segment water', '<loc0155><loc0733><loc0171><loc0806>')
        >>> out.with_name("water.errors.jsonl").read_text()  # nothing went wrong
        ''
    """
    folder_labels(label, classes)  # a bad label fails here, before any file is written
    n_workers = resolve_workers(workers)
    pairs, problems = match_pairs(images_dir, masks_dir)
    counter = [0]
    items = _folder_items(
        pairs,
        problems,
        counter,
        workers=n_workers,
        label=label,
        classes=classes,
        threshold=threshold,
        instances=instances,
        min_area=min_area,
        widen_thin=widen_thin_boxes,
    )
    if widen_thin_boxes:
        write["min_loc_extent"] = 1
    with closing(items):
        report = write_examples(
            items, output, codec=codec, total=len(pairs) + len(problems), names=[p.image.name for p in pairs], **write
        )
    report.dropped_small = counter[0]
    return report


def convert_coco(
    annotations: str | os.PathLike[str],
    images_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    crowd: str = "skip",
    min_area: int = 0,
    codec: Codec | None = None,
    workers: int | None = None,
    **write: Any,
) -> ConvertReport:
    """COCO instances JSON (polygons or RLE) + images folder → JSONL. See `paligemma_segcodec.datasets.coco`.

    One line per image (in file-name order), one object per annotation, labelled with its
    category name; a bad record is one line in ``OUT.errors.jsonl``, the rest is converted.

    Args:
      annotations: the COCO instances JSON file.
      images_dir: the folder its ``file_name`` s are under (names leading outside it are refused).
      output: the JSONL to write.
      crowd: ``"skip"`` (default: ``iscrowd=1`` annotations left out, counted as warnings) or
        ``"include"``.
      min_area: objects with fewer mask pixels are dropped.
      codec: the codec (default: `paligemma_segcodec.codec.load_codec`'s checkpoint).
      workers: threads reading the images and decoding the annotations (None: the CPU count; 1:
        no threads); the output is byte-identical whatever the number.
      write: options of `write_examples` (split, seed, images, image_size, batch_size, progress…).

    Returns:
      The `ConvertReport`.

    Raises:
      ValueError: a file that is not a COCO instances JSON, a category name that cannot be a
        label, or a bad ``crowd``, ``workers`` or ``write`` option.
      OSError: the annotation file cannot be opened.
      CheckpointNotFoundError: ``codec=None`` and no checkpoint could be found.

    Examples:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "images").mkdir()
        >>> Image.new("RGB", (64, 48)).save(folder / "images" / "a.png")
        >>> coco = {
        ...     "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        ...     "categories": [{"id": 1, "name": "car"}],
        ...     "annotations": [
        ...         {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[8, 8, 40, 8, 40, 30, 8, 30]]}
        ...     ],
        ... }
        >>> _ = (folder / "instances.json").write_text(json.dumps(coco))
        >>> report = convert_coco(folder / "instances.json", folder / "images", folder / "out.jsonl", progress=False)
        >>> report.lines, report.objects, report.ok
        (1, 1, True)
        >>> line = json.loads((folder / "out.jsonl").read_text())
        >>> line["image"], line["prefix"], line["suffix"][:36], line["suffix"].count("<seg")
        ('a.png', 'segment car', '<loc0170><loc0128><loc0639><loc0639>', 16)
    """
    from paligemma_segcodec.datasets.coco import coco_examples

    items, names, total = coco_examples(
        annotations, images_dir, crowd=crowd, min_area=min_area, workers=resolve_workers(workers)
    )
    with closing(items):
        return write_examples(items, output, codec=codec, total=total, names=names, **write)
