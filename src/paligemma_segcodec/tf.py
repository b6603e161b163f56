"""tf.data adapters (extra ``[tf]``): masks → PaliGemma suffix strings inside ``Dataset.map``.

The drop-in for big_vision's ``refcoco_mask2str`` preprocessing op, computed by this library's
codec (JAX) through ``tf.py_function``, so the tokens are exactly `encode_mask`'s::

    import tensorflow as tf
    from paligemma_segcodec.tf import mask_to_suffix, batched_mask_to_suffix

    encode = mask_to_suffix(label="water")
    ds = ds.map(lambda ex: {**ex, "suffix": encode(ex)})          # one example at a time

    encode_batch = batched_mask_to_suffix(label="water")           # one codec call per batch
    ds = ds.ragged_batch(64).map(lambda ex: {**ex, "suffix": encode_batch(ex)})

Inputs: ``{"mask": uint8/bool [H, W] or [H, W, 1], "box": float32 [4] (optional)}``; batched:
``mask`` a ``tf.RaggedTensor`` ``[N, None, None(, 1)]`` (masks of different sizes) or a dense
``[N, H, W(, 1)]`` tensor, ``box`` ``[N, 4]`` (optional). Masks are 0/1 or 0/255 (see `encode_mask`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from paligemma_segcodec._optional import require

if TYPE_CHECKING:
    from paligemma_segcodec.codec import Codec

__all__ = ["batched_mask_to_suffix", "mask_to_suffix"]


def _tf() -> Any:
    return require("tensorflow", "tf")


def _box(values: np.ndarray) -> tuple[float, float, float, float] | None:
    if values.size == 0:
        return None
    y1, x1, y2, x2 = (float(v) for v in values.reshape(4))
    return (y1, x1, y2, x2)


def mask_to_suffix(
    *, label: str | None = None, codec: Codec | None = None, mask_key: str = "mask", box_key: str = "box"
) -> Callable[[Mapping[str, Any]], Any]:
    """A function for ``Dataset.map``: one example's ``{"mask", "box"?}`` → scalar ``tf.string`` suffix.

    The suffix is `paligemma_segcodec.api.encode_mask`'s for the same mask, box and label (the
    codec runs through ``tf.py_function``, so the pipeline cannot be saved as a SavedModel).

    Args:
      label: the label after the tokens (None: the tokens only).
      codec: the codec (default: `paligemma_segcodec.codec.load_codec`'s checkpoint, loaded when
        the first example is encoded).
      mask_key: the example's mask: uint8/bool ``[H, W]`` or ``[H, W, 1]``, 0/1 or 0/255.
      box_key: the example's box, float32 ``[4]`` normalized ``(y1, x1, y2, x2)``; an example
        without it is encoded with the mask's tight box.

    Returns:
      ``fn(example) -> tf.string`` (scalar), for ``ds.map(lambda ex: {**ex, "suffix": fn(ex)})``.

    Raises:
      ImportError: TensorFlow is not installed (the ``[tf]`` extra).

    Examples:
        Needs the ``[tf]`` extra (not a doctest, so that it is skipped without it; the pipelines
        page runs this use):

        ```python
        import numpy as np
        import tensorflow as tf

        from paligemma_segcodec import encode_mask
        from paligemma_segcodec.tf import mask_to_suffix

        mask = np.zeros((48, 64), np.uint8)
        mask[8:40, 16:48] = 1
        ds = tf.data.Dataset.from_tensors({"mask": mask})
        encode = mask_to_suffix(label="square")
        (suffix,) = [ex["suffix"].numpy().decode() for ex in ds.map(lambda ex: {**ex, "suffix": encode(ex)})]
        assert suffix == encode_mask(mask, label="square")
        ```
    """
    tf = _tf()
    from paligemma_segcodec.api import encode_mask

    def encode(mask: Any, box: Any) -> bytes:
        return encode_mask(mask.numpy(), _box(box.numpy()), label=label, codec=codec).encode()

    def fn(example: Mapping[str, Any]) -> Any:
        box = example[box_key] if box_key in example else tf.zeros([0], tf.float32)
        out = tf.py_function(encode, [example[mask_key], tf.cast(box, tf.float32)], tf.string)
        out.set_shape([])
        return out

    return fn


def batched_mask_to_suffix(
    *, label: str | None = None, codec: Codec | None = None, mask_key: str = "mask", box_key: str = "box"
) -> Callable[[Mapping[str, Any]], Any]:
    """A function for ``ds.ragged_batch(n).map(...)``: a batch → ``tf.string [N]``, one codec call per batch.

    The suffixes are `paligemma_segcodec.api.encode_masks`'s for the same masks, boxes and label.

    Args:
      label: every mask's label (None: the tokens only).
      codec: the codec (default: `paligemma_segcodec.codec.load_codec`'s checkpoint, loaded when
        the first batch is encoded).
      mask_key: the batch's masks: a ``tf.RaggedTensor`` ``[N, None, None(, 1)]`` (masks of
        different sizes, from ``ragged_batch``) or a dense ``[N, H, W(, 1)]`` tensor; uint8/bool,
        0/1 or 0/255.
      box_key: the batch's boxes, float32 ``[N, 4]`` normalized ``(y1, x1, y2, x2)``; a batch
        without it is encoded with each mask's tight box.

    Returns:
      ``fn(batch) -> tf.string [N]``, for ``ds.ragged_batch(n).map(lambda b: {**b, "suffix": fn(b)})``.

    Raises:
      ImportError: TensorFlow is not installed (the ``[tf]`` extra).

    Examples:
        Needs the ``[tf]`` extra (not a doctest, so that it is skipped without it; the pipelines
        page runs this use):

        ```python
        import numpy as np
        import tensorflow as tf

        from paligemma_segcodec import encode_masks
        from paligemma_segcodec.tf import batched_mask_to_suffix

        small, large = np.zeros((32, 32), np.uint8), np.zeros((48, 64), np.uint8)
        small[4:20, 4:20], large[8:40, 16:48] = 1, 1
        ds = tf.data.Dataset.from_generator(
            lambda: iter([{"mask": small}, {"mask": large}]),
            output_signature={"mask": tf.TensorSpec([None, None], tf.uint8)},
        )
        encode = batched_mask_to_suffix(label="square")
        (batch,) = ds.ragged_batch(2).map(lambda b: {**b, "suffix": encode(b)})
        suffixes = [s.decode() for s in batch["suffix"].numpy()]
        assert suffixes == encode_masks([small, large], labels=["square", "square"])
        ```
    """
    tf = _tf()
    from paligemma_segcodec.api import encode_masks

    def encode(values: Any, row_splits: Any, col_splits: Any, boxes: Any) -> Any:
        flat, rows, cols = values.numpy(), row_splits.numpy(), col_splits.numpy()
        masks = []
        for i in range(len(rows) - 1):
            r0, r1 = rows[i], rows[i + 1]
            width = int(cols[r0 + 1] - cols[r0]) if r1 > r0 else 0
            masks.append(flat[cols[r0] : cols[r1]].reshape(int(r1 - r0), width))
        b = boxes.numpy()
        box_list = None if b.size == 0 else [_box(row) for row in b]
        labels = None if label is None else [label] * len(masks)
        return np.array([s.encode() for s in encode_masks(masks, box_list, labels, codec=codec)], dtype=object)

    def fn(batch: Mapping[str, Any]) -> Any:
        mask = batch[mask_key]
        if not isinstance(mask, tf.RaggedTensor):
            mask = tf.RaggedTensor.from_tensor(mask, ragged_rank=2)
        while mask.ragged_rank < 2:  # e.g. [N, None, W]: make the width ragged too
            mask = mask.with_flat_values(tf.RaggedTensor.from_tensor(mask.flat_values))
        # flat_values is [pixels] or [pixels, 1] for [N, H, W, 1] masks
        row_splits, col_splits = mask.nested_row_splits[0], mask.nested_row_splits[1]
        boxes = batch[box_key] if box_key in batch else tf.zeros([0, 4], tf.float32)
        out = tf.py_function(
            encode, [tf.reshape(mask.flat_values, [-1]), row_splits, col_splits, tf.cast(boxes, tf.float32)], tf.string
        )
        out.set_shape([None])
        return out

    return fn
