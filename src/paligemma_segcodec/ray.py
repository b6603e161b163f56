"""Ray Data adapter (extra ``[ray]``): encode millions of masks on a cluster.

`SegcodecEncoder` is the callable class for ``ray.data.Dataset.map_batches``: each actor loads the
codec once (on its GPU when the actor has one and ``jax[cuda12]`` is installed) and encodes a whole
batch in one device call. Each input row names an image and its mask, either as a path
(``mask_path``, read by the worker) or as the mask file's bytes (``mask``, e.g. from Parquet). The
per-row rule is `segcodec convert`'s, so the lines are identical::

    import ray
    from paligemma_segcodec.ray import SegcodecEncoder, pairs_dataset

    ds = pairs_dataset("water/images", "water/masks")          # or ray.data.read_parquet(...)
    out = ds.map_batches(
        SegcodecEncoder,
        fn_constructor_kwargs={"label": "water", "checkpoint": "/shared/vae-oid.npz"},
        batch_size=256,
        compute=ray.data.ActorPoolStrategy(size=8),  # actors; add num_gpus=1 to put each on a GPU
    )
    out.write_json("s3://bucket/water-jsonl/")

(Ray before 2.51 names the pool ``concurrency=8``; `actor_pool` gives the right keyword for the
installed Ray.) `convert_with_ray` runs that recipe locally and writes the same JSONL as
``segcodec convert``.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from paligemma_segcodec._optional import require
from paligemma_segcodec.datasets.convert import Example, example_for_pair, folder_labels
from paligemma_segcodec.datasets.files import Problem, match_pairs

__all__ = ["SegcodecEncoder", "actor_pool", "convert_with_ray", "pairs_dataset"]

COMPUTE_SINCE = (2, 51)
"""Ray release from which ``map_batches(compute=ActorPoolStrategy(size=n))`` is the documented way
to size an actor pool and ``concurrency=n`` is deprecated (before it, the reverse: ``compute=``
warned from Ray 2.9 on)."""


def _ray() -> Any:
    return require("ray", "ray")


def _version(text: str) -> tuple[int, int]:
    """``"2.51.0"`` → ``(2, 51)`` (``"3.0.0rc1"`` → ``(3, 0)``)."""
    major, minor = [*text.split("."), "0", "0"][:2]
    return int("".join(filter(str.isdigit, major)) or 0), int("".join(filter(str.isdigit, minor)) or 0)


def actor_pool(size: int) -> dict[str, Any]:
    """``map_batches`` keywords for a fixed pool of ``size`` actors, without a deprecation warning
    on any supported Ray: ``{"compute": ActorPoolStrategy(size=size)}`` from Ray 2.51,
    ``{"concurrency": size}`` before."""
    ray = _ray()
    if _version(ray.__version__) >= COMPUTE_SINCE:
        return {"compute": ray.data.ActorPoolStrategy(size=size)}
    return {"concurrency": size}


class SegcodecEncoder:
    """``map_batches`` callable: rows ``{"image", "image_path"?, "mask_path" | "mask"}`` →
    ``{"image", "prefix", "suffix", "error", "warning"}``.

    ``error`` is ``"FILE: reason"`` for a row that could not be converted (its prefix and suffix
    are empty) and ``""`` otherwise. ``warning`` is ``"FILE: reason"`` (one per line) for a row
    that was converted but looks wrong, e.g. a 0/1 mask saved as JPEG with nothing above the
    threshold (``segcodec convert`` writes the same warning to ``OUT.errors.jsonl``).

    Args:
      label: label of binary masks (as ``segcodec convert --label``).
      classes: value → label for semantic masks (as ``--classes``).
      threshold: mask pixels ``> threshold`` are foreground.
      instances: ``"components"`` or ``"whole"``.
      min_area: components with fewer pixels are dropped.
      checkpoint: the vae-oid.npz path on the workers (default: env var / Hugging Face cache).

    Raises:
      CheckpointNotFoundError: no checkpoint could be found (when the actor starts).
      ValueError: neither ``label`` nor ``classes``, or a label that cannot be written.

    Examples:
        A plain callable: Ray calls it on each batch (a dict of NumPy columns); here, one batch
        by hand, without Ray (with Ray: the module docstring, or `convert_with_ray`):

        >>> import numpy as np
        >>> encoder = SegcodecEncoder(label="water")
        >>> water = "tests/data/water"
        >>> batch = {
        ...     "image": np.array(["water_body_1120.jpg", "water_body_1256.jpg"], dtype=object),
        ...     "image_path": np.array([f"{water}/images/water_body_1120.jpg", f"{water}/images/water_body_1256.jpg"]),
        ...     "mask_path": np.array([f"{water}/masks/water_body_1120.jpg", f"{water}/masks/missing.jpg"]),
        ... }
        >>> out = encoder(batch)
        >>> out["prefix"].tolist(), out["suffix"][0][:36]
        (['segment water', ''], '<loc0155><loc0733><loc0171><loc0806>')
        >>> out["error"][1]
        'tests/data/water/masks/missing.jpg: unreadable mask: file not found'
        >>> with open(f"{water}/masks/water_body_8892.jpg", "rb") as f:  # or the mask file's bytes
        ...     mask_bytes = f.read()
        >>> column = lambda value: np.array([value], dtype=object)
        >>> encoder({"image": column("water_body_8892.jpg"), "mask": column(mask_bytes)})["suffix"][0][:36]
        '<loc0000><loc0028><loc0103><loc0242>'
    """

    def __init__(
        self,
        *,
        label: str | None = None,
        classes: dict[int, str] | None = None,
        threshold: int = 127,
        instances: str = "components",
        min_area: int = 16,
        checkpoint: str | None = None,
    ) -> None:
        from paligemma_segcodec.codec import load_codec

        self.codec = load_codec(checkpoint)
        self.extract: dict[str, Any] = {
            "label": label,
            "classes": classes,
            "threshold": threshold,
            "instances": instances,
            "min_area": min_area,
        }
        self.labels = folder_labels(label, classes)

    def _item(self, row: dict[str, Any]) -> Example | Problem:
        if row.get("mask_path"):
            item, _ = example_for_pair(
                Path(row["image_path"]), Path(row["mask_path"]), labels=self.labels, **self.extract
            )
        else:
            mask = io.BytesIO(bytes(row["mask"]))
            item, _ = example_for_pair(None, mask, labels=self.labels, name=str(row["image"]), **self.extract)
        return item

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from paligemma_segcodec.api import encode_prepared, prepare_crop

        n = len(batch["image"])
        rows = [{k: v[i] for k, v in batch.items()} for i in range(n)]
        items = [self._item(r) for r in rows]
        objects = [o for it in items if isinstance(it, Example) for o in it.objects]
        texts = iter(
            encode_prepared(
                [prepare_crop(o.crop, o.box) for o in objects], [o.label for o in objects], codec=self.codec
            )
        )
        out: dict[str, list[str]] = {"image": [], "prefix": [], "suffix": [], "error": [], "warning": []}
        for row, it in zip(rows, items, strict=True):
            out["image"].append(str(row["image"]))
            if isinstance(it, Problem):
                out["prefix"].append("")
                out["suffix"].append("")
                out["error"].append(f"{it.file}: {it.reason}")
                out["warning"].append("")
                continue
            out["prefix"].append("segment " + " ; ".join(it.labels))
            out["suffix"].append(" ; ".join(next(texts) for _ in it.objects))
            out["error"].append("")
            out["warning"].append("\n".join(f"{w.file}: {w.reason}" for w in it.warnings))
        return {k: np.array(v, dtype=object) for k, v in out.items()}


def pairs_dataset(images_dir: str | os.PathLike[str], masks_dir: str | os.PathLike[str]) -> Any:
    """A Ray dataset of matched pairs ``{"image", "image_path", "mask_path"}`` (sorted by stem).

    Unmatched files are not in it; see `paligemma_segcodec.datasets.match_pairs` for them.

    Args:
      images_dir: the folder of images, as the workers see it (a shared file system).
      masks_dir: the folder of masks (matched by stem).

    Returns:
      A ``ray.data.Dataset``, one row per pair: ``image`` (the image's file name), ``image_path``
      and ``mask_path`` (strings), the input `SegcodecEncoder` reads.

    Raises:
      FileNotFoundError: a folder does not exist, or neither holds any file.
      ImportError: Ray is not installed (the ``[ray]`` extra).

    Examples:
        Needs the ``[ray]`` extra and starts Ray (not run as a doctest):

        <!-- not-run: starts a Ray cluster -->
        ```python
        from paligemma_segcodec.ray import pairs_dataset

        ds = pairs_dataset("tests/data/water/images", "tests/data/water/masks")
        assert ds.count() == 10
        print(ds.take(1))  # [{'image': 'water_body_1120.jpg', 'image_path': ..., 'mask_path': ...}]
        ```
    """
    ray = _ray()
    pairs, _ = match_pairs(images_dir, masks_dir)
    return ray.data.from_items(
        [{"image": p.image.name, "image_path": str(p.image), "mask_path": str(p.mask)} for p in pairs]
    )


def convert_with_ray(
    images_dir: str | os.PathLike[str],
    masks_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    batch_size: int = 64,
    actors: int = 2,
    concurrency: int | None = None,
    **encoder: Any,
) -> int:
    """The recipe on the current Ray cluster; writes ``output`` and ``OUT.errors.jsonl`` exactly
    like ``segcodec convert`` (same lines, same order; skipped items and warnings alike).

    Both files are written all or nothing, when every batch is back (see
    `paligemma_segcodec.safeio.atomic_write`). Ray starts a local cluster if none is running.

    Args:
      images_dir: the folder of images (as the workers see it).
      masks_dir: the folder of masks (matched by stem).
      output: the JSONL to write (and ``OUT.errors.jsonl`` beside it).
      batch_size: rows per ``map_batches`` call (one codec call per batch).
      actors: size of the actor pool (`actor_pool`), each actor loading the codec once.
      concurrency: the deprecated old name of ``actors`` (a DeprecationWarning; it goes away in
        the next release).
      encoder: `SegcodecEncoder` options: ``label`` or ``classes``, ``threshold``, ``instances``,
        ``min_area``, ``checkpoint``.

    Returns:
      The number of lines written.

    Raises:
      FileNotFoundError: a folder does not exist, or neither holds any file.
      ImportError: Ray is not installed (the ``[ray]`` extra).

    Examples:
        Needs the ``[ray]`` extra and starts Ray (not run as a doctest):

        <!-- not-run: starts a Ray cluster -->
        ```python
        import tempfile
        from pathlib import Path

        from paligemma_segcodec.ray import convert_with_ray

        out = Path(tempfile.mkdtemp()) / "water.jsonl"
        lines = convert_with_ray(
            "tests/data/water/images", "tests/data/water/masks", out, label="water", actors=2
        )
        assert lines == 10  # the same file as: segcodec convert ... --label water --output OUT
        ```
    """
    import json

    from paligemma_segcodec.datasets.convert import errors_path
    from paligemma_segcodec.safeio import atomic_write

    if concurrency is not None:
        warnings.warn(
            "convert_with_ray(concurrency=) is deprecated and goes away in the next release: use actors=",
            DeprecationWarning,
            stacklevel=2,
        )
        actors = concurrency
    pairs, problems = match_pairs(images_dir, masks_dir)
    order = {p.image.name: i for i, p in enumerate(pairs)}
    result = pairs_dataset(images_dir, masks_dir).map_batches(
        SegcodecEncoder,
        fn_constructor_kwargs=encoder,
        batch_size=batch_size,
        batch_format="numpy",
        **actor_pool(actors),
    )
    rows = sorted(result.take_all(), key=lambda r: order[r["image"]])
    out = Path(output)
    lines = 0
    # Both files all or nothing (see paligemma_segcodec.safeio.atomic_write); the main one last.
    with atomic_write(out) as f, atomic_write(errors_path(out)) as errors:
        for p in problems:
            errors.write(json.dumps(p.to_json(), ensure_ascii=False) + "\n")
        for r in rows:
            for problem in [*_problems(r["error"], "error"), *_problems(r["warning"], "warning")]:
                errors.write(json.dumps(problem.to_json(), ensure_ascii=False) + "\n")
            if r["error"]:
                continue
            record = {"image": str(r["image"]), "prefix": str(r["prefix"]), "suffix": str(r["suffix"])}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")  # as convert's format_line
            lines += 1
    return lines


def _problems(column: Any, severity: Literal["error", "warning"]) -> list[Problem]:
    """An ``error`` / ``warning`` column's ``"FILE: reason"`` lines back to `Problem` s."""
    problems = []
    for line in filter(None, str(column).split("\n")):
        file, _, reason = line.partition(": ")
        problems.append(Problem(file, reason, severity))
    return problems
