"""Hugging Face ``datasets`` adapters (extra ``[hf]``).

- `jsonl_to_dataset`: a converted JSONL + its images folder → ``datasets.Dataset`` with columns
  ``image`` (an ``Image`` feature), ``prefix``, ``suffix``; ``segcodec convert --format hf`` saves it
  with ``save_to_disk`` (ready for ``push_to_hub``).
- `examples_from_dataset`: a ``datasets.Dataset`` with image and mask columns as convert's input
  (``segcodec convert --hf-dataset PATH_OR_NAME --mask-column mask --label water``). Rows have no file
  names: row ``i`` is written as image ``{i:06d}.png`` (into ``OUT_DIR/images/``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from paligemma_segcodec._optional import require
from paligemma_segcodec.datasets.files import Instances, Problem
from paligemma_segcodec.tokens import check_label

__all__ = ["examples_from_dataset", "jsonl_to_dataset", "load_hf_dataset"]


def _datasets() -> Any:
    return require("datasets", "hf")


def jsonl_to_dataset(jsonl: str | os.PathLike[str], images_dir: str | os.PathLike[str]) -> Any:
    """Converted JSONL + images folder → ``datasets.Dataset`` (``image`` as an ``Image`` feature).

    What ``segcodec convert --format hf`` saves (``save_to_disk``; ready for ``push_to_hub``).
    Blank lines are skipped; the images are referenced by path, read when a row is accessed.

    Args:
      jsonl: a JSONL written by ``segcodec convert`` (or `paligemma_segcodec.datasets.convert_folder`):
        one ``{"image", "prefix", "suffix"}`` object per line.
      images_dir: the folder the ``image`` names are under.

    Returns:
      A ``datasets.Dataset`` with columns ``image`` (``datasets.Image()``), ``prefix`` and
      ``suffix`` (strings), one row per line, in file order.

    Raises:
      ValueError: a line that is not a JSON object with string ``image``, ``prefix`` and ``suffix``
        (``FILE:LINE``), or an ``image`` name that leads outside ``images_dir``
        (`paligemma_segcodec.errors.UnsafePathError`).
      ImportError: ``datasets`` is not installed (the ``[hf]`` extra).

    Examples:
        Needs the ``[hf]`` extra (not a doctest, so that it is skipped without it; the pipelines
        page runs this use):

        ```python
        import tempfile
        from pathlib import Path

        from paligemma_segcodec.datasets import convert_folder
        from paligemma_segcodec.hf import jsonl_to_dataset

        out = Path(tempfile.mkdtemp()) / "water.jsonl"
        convert_folder("tests/data/water/images", "tests/data/water/masks", out, label="water", progress=False)
        ds = jsonl_to_dataset(out, "tests/data/water/images")
        assert ds.column_names == ["image", "prefix", "suffix"] and len(ds) == 10
        assert ds[0]["prefix"] == "segment water" and ds[0]["image"].size == (113, 191)
        ds.save_to_disk(str(out.with_suffix("")))  # then datasets.load_from_disk, push_to_hub
        ```
    """
    from paligemma_segcodec.safeio import open_regular, resolve_under

    datasets = _datasets()
    with open_regular(jsonl) as f:
        text = f.read().decode("utf-8")
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{jsonl}:{n}: not JSON ({err})") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("image", "prefix", "suffix")):
            raise ValueError(f"{jsonl}:{n}: need a JSON object with string fields 'image', 'prefix', 'suffix'")
        resolve_under(images_dir, row["image"], what=f"{jsonl}:{n}: image")
        rows.append(row)
    images_dir = Path(images_dir)
    features = datasets.Features(
        {"image": datasets.Image(), "prefix": datasets.Value("string"), "suffix": datasets.Value("string")}
    )
    data = {
        "image": [str(images_dir / r["image"]) for r in rows],
        "prefix": [r["prefix"] for r in rows],
        "suffix": [r["suffix"] for r in rows],
    }
    return datasets.Dataset.from_dict(data, features=features)


def load_hf_dataset(path_or_name: str, *, split: str = "train") -> Any:
    """``load_from_disk`` for a saved folder, else ``load_dataset(name, split=split)``.

    What ``segcodec convert --hf-dataset PATH_OR_NAME --hf-split SPLIT`` reads.

    Args:
      path_or_name: a folder saved with ``save_to_disk`` (a ``Dataset`` or a ``DatasetDict``), or
        a name for ``datasets.load_dataset`` (a Hub dataset, which may download).
      split: the split to take from a ``DatasetDict`` or a Hub dataset (a saved ``Dataset`` is
        returned whole).

    Returns:
      The ``datasets.Dataset``.

    Raises:
      ImportError: ``datasets`` is not installed (the ``[hf]`` extra).

    Examples:
        Needs the ``[hf]`` extra (not a doctest, so that it is skipped without it):

        ```python
        import tempfile

        import datasets

        from paligemma_segcodec.hf import load_hf_dataset

        folder = tempfile.mkdtemp()
        train = datasets.Dataset.from_dict({"x": [1, 2, 3]})
        datasets.DatasetDict({"train": train}).save_to_disk(folder)
        assert load_hf_dataset(folder)["x"] == [1, 2, 3]  # split="train" of the saved DatasetDict
        ```
    """
    datasets = _datasets()
    if Path(path_or_name).exists():
        ds = datasets.load_from_disk(path_or_name)
        return ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    return datasets.load_dataset(path_or_name, split=split)


def _to_values(mask: Any) -> np.ndarray:
    from PIL import Image

    from paligemma_segcodec.maskio import mask_values

    # a PIL image follows the rules of mask files (palettes, alpha cut-outs, colour masks)
    arr = np.asarray(mask_values(mask)) if isinstance(mask, Image.Image) else np.asarray(mask)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"mask must be a single-channel image or 2-D integer array, got {arr.dtype} {arr.shape}")
    return arr


def examples_from_dataset(
    ds: Any,
    *,
    image_column: str = "image",
    mask_column: str = "mask",
    label: str,
    threshold: int = 127,
    instances: Instances = "components",
    min_area: int = 16,
    widen_thin_boxes: bool = False,
) -> Iterator[Any]:
    """Rows of a ``datasets.Dataset`` → convert's `Example` items (or `Problem` for a bad row), by the
    same rule and with the same warnings as a folder conversion (`convert.mask_objects`: objects
    thinner than one ``<loc>`` step dropped unless ``widen_thin_boxes``, nothing above the threshold).

    The label and the columns are checked at the call, before anything iterates (and writes).
    Rows have no file names: row ``i`` is named ``{i:06d}.png``. Give the items to
    `paligemma_segcodec.datasets.convert.write_examples`, which encodes them and writes the
    JSONL, and the images (from the rows) to ``OUT_DIR/images/``.

    Args:
      ds: a ``datasets.Dataset`` (anything with ``column_names`` whose rows are dicts).
      image_column: the column of images (PIL images, as a ``datasets.Image`` feature gives, or
        ``[H, W, C]`` arrays).
      mask_column: the column of masks (PIL images or 2-D integer / bool arrays), the image's size.
      label: the objects' label (binary masks).
      threshold: mask pixels ``> threshold`` are foreground.
      instances: ``"components"`` (one object per connected component) or ``"whole"``.
      min_area: components with fewer pixels are dropped.
      widen_thin_boxes: keep objects thinner than one ``<loc>`` step (encode them with
        ``min_loc_extent=1``).

    Returns:
      A lazy iterator of `Example` (one per row) or `Problem` (an unreadable row, a mask of
      another size than its image).

    Raises:
      ValueError: a label that cannot be written (`paligemma_segcodec.tokens.check_label`), or a
        column that is not in the dataset.
      TypeError: a label that is not a str.

    Examples:
        Needs the ``[hf]`` extra (not a doctest, so that it is skipped without it):

        ```python
        import tempfile
        from pathlib import Path

        import datasets

        from paligemma_segcodec.datasets.convert import write_examples
        from paligemma_segcodec.hf import examples_from_dataset

        water = Path("tests/data/water")
        rows = {
            "image": [str(water / "images/water_body_1120.jpg"), str(water / "images/water_body_8892.jpg")],
            "mask": [str(water / "masks/water_body_1120.jpg"), str(water / "masks/water_body_8892.jpg")],
        }
        ds = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())
        ds = ds.cast_column("mask", datasets.Image())
        out = Path(tempfile.mkdtemp()) / "water.jsonl"
        report = write_examples(examples_from_dataset(ds, label="water"), out, progress=False)
        assert report.lines == 2 and report.ok
        assert (out.parent / "images" / "000001.png").is_file()  # row 1's image
        ```
    """
    check_label(label)
    for column in (image_column, mask_column):
        if column not in ds.column_names:
            raise ValueError(f"dataset has no column {column!r} (columns: {ds.column_names})")
    extract = {
        "label": label,
        "threshold": threshold,
        "instances": instances,
        "min_area": min_area,
        "widen_thin": widen_thin_boxes,
    }
    return _examples(ds, image_column, mask_column, extract)


def _examples(ds: Any, image_column: str, mask_column: str, extract: dict[str, Any]) -> Iterator[Any]:
    from paligemma_segcodec.datasets.convert import Example, mask_objects

    for i, row in enumerate(ds):
        name = f"{i:06d}.png"
        try:
            image = row[image_column]
            values = _to_values(row[mask_column])
            size = image.size if hasattr(image, "size") and not isinstance(image, np.ndarray) else image.shape[1::-1]
            if values.shape != (size[1], size[0]):
                yield Problem(
                    f"row {i}",
                    f"size mismatch: mask is {values.shape[1]}x{values.shape[0]}, image is {size[0]}x{size[1]}",
                )
                continue
        except Exception as err:
            yield Problem(f"row {i}", f"unreadable row: {err}")
            continue
        objects, _, warnings = mask_objects(values, f"row {i}", **extract)  # convert's rule and warnings
        yield Example(name, None, (extract["label"],), tuple(objects), pil=image, warnings=warnings)
