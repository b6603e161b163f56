"""Makes ``golden.json``: big_vision's own segmentation evaluator run on answers for the water pairs.

Not run in CI, not imported by the package or the tests: it needs a checkout of
google-research/big_vision (its path is an argument) and runs that evaluator,
``big_vision/evaluators/proj/paligemma/transfers/segmentation.py``, unmodified. Only what the module
imports and this harness does not exercise is stubbed: TensorFlow (``gfile.GFile`` is ``open``),
big_vision's input pipeline (``c.eval_input_pipeline`` yields the batches built here,
``c.process_sum`` is the single-process identity), ``u.get_local_slice_from_fsarray`` (identity) and
the tokenizer (PaliGemma's ids: ``<loc0000>`` = 256000, ``<seg000>`` = 257024).

Run (from the repository root; jax, flax, numpy, Pillow installed)::

    git clone https://github.com/google-research/big_vision /tmp/big_vision
    python tests/data/bv_eval/make.py /tmp/big_vision

What it does:

1. Ground truth: each water mask read with ``paligemma_segcodec.maskio.read_mask`` (> 127), as
   ``objects/mask`` ``[H, W, 1]`` uint8; ``objects/bbox`` the mask's tight box in pixel edges divided
   by the size, float32 — computed here with NumPy, independently of the package.
2. Answers: ``encode_mask`` of each ground-truth mask with the stand-in checkpoint
   (``tests/data/fixture-vae.npz``), then varied by hand (see ``answer_sets``) and at random (seeded).
3. Model output: each answer tokenized as PaliGemma's tokenizer would (a ``<locNNNN>``/``<segNNN>``
   token each, any other character a token of its own), padded with 0 to 64 ids.
4. The evaluator, with ``model`` = a float32 copy of the stand-in checkpoint (vae-oid.npz is float32;
   the stand-in stores float16), once per set over all images in batches of 4 (with padding rows),
   and once per image alone (its ``miou`` is that image's IoU, ``boxacc/<t>`` its hits).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
WATER = ROOT / "tests" / "data" / "water" / "masks"
EVALUATOR = "big_vision/evaluators/proj/paligemma/transfers/segmentation.py"
LOC0, SEG0, OTHER = 256000, 257024, 108  # ids: <loc0000>, <seg000>, any other character
DECODE_LEN = 64
BATCH = 4
DET_IOUS = {"default": None, "custom": (0.3, 0.5, 0.9)}


def tokenize(text: str) -> list[int]:
    """PaliGemma token ids of an answer (loc/seg tokens; every other character one id)."""
    ids, i = [], 0
    while i < len(text):
        m = re.compile(r"<loc([0-9]{4})>|<seg([0-9]{3})>", re.ASCII).match(text, i)
        if m and m.group(1) is not None and int(m.group(1)) <= 1023:
            ids.append(LOC0 + int(m.group(1)))
            i = m.end()
        elif m and m.group(2) is not None and int(m.group(2)) <= 127:
            ids.append(SEG0 + int(m.group(2)))
            i = m.end()
        else:
            ids.append(OTHER)
            i += 1
    return ids


def load_evaluator(big_vision: Path) -> Any:
    """The evaluator module, its imports that this harness does not use stubbed."""
    stubs: dict[str, types.ModuleType] = {}
    for name in ("tensorflow", "tensorflow.io", "big_vision", "big_vision.evaluators", "big_vision.pp"):
        stubs[name] = types.ModuleType(name)
    stubs["tensorflow.io"].gfile = types.SimpleNamespace(GFile=open)  # type: ignore[attr-defined]
    stubs["tensorflow"].io = stubs["tensorflow.io"]  # type: ignore[attr-defined]
    common = types.ModuleType("big_vision.evaluators.common")

    def eval_input_pipeline(keep_on_cpu: Any, devices: Any, batches: list[dict[str, Any]]) -> Any:
        return (lambda: iter(batches)), len(batches)

    common.eval_input_pipeline = eval_input_pipeline  # type: ignore[attr-defined]
    common.process_sum = lambda x: x  # type: ignore[attr-defined]
    tok = types.ModuleType("big_vision.pp.tokenizer")
    ids = {"<loc0000>": [LOC0], "<seg000>": [SEG0]}
    tok.get_tokenizer = lambda name: types.SimpleNamespace(to_int=ids.__getitem__, eos_token=1)  # type: ignore[attr-defined]
    utils = types.ModuleType("big_vision.utils")
    utils.get_local_slice_from_fsarray = lambda x: x  # type: ignore[attr-defined]
    stubs.update({"big_vision.evaluators.common": common, "big_vision.pp.tokenizer": tok, "big_vision.utils": utils})
    sys.modules.update(stubs)
    for name, module in stubs.items():  # big_vision.pp.tokenizer as an attribute path too
        parent, _, leaf = name.rpartition(".")
        if parent:
            setattr(stubs[parent], leaf, module)
    spec = importlib.util.spec_from_file_location("bv_segmentation", big_vision / EVALUATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answer_sets(masks: dict[str, Any], codec: Any) -> dict[str, dict[str, str]]:
    """Named sets of answers (image name → text) for the water images."""
    import numpy as np

    from paligemma_segcodec import encode_mask

    clean = {name: encode_mask(m, label="water", codec=codec) for name, m in masks.items()}
    head = {name: t[: 4 * 9 + 16 * 8] for name, t in clean.items()}  # the 20 tokens, no label
    names = sorted(masks)
    varied = dict(clean)
    n = iter(names)
    varied[next(n)] = clean[names[0]]  # as encoded
    a = next(n)
    varied[a] = f"{head[a]} water ; <loc0000><loc0000><loc0511><loc0511>{'<seg001>' * 16} water"  # two objects
    a = next(n)
    varied[a] = head[a][:36] + " water"  # detection only
    a = next(n)
    varied[a] = "<loc0300><loc0100><loc0300><loc0900>" + head[a][36:] + " water"  # degenerate: y2 == y1
    a = next(n)
    varied[a] = head[a][:27] + head[a][36:]  # malformed: 3 loc tokens
    varied[next(n)] = ""  # empty
    a = next(n)
    varied[a] = head[a] + "<seg001><loc0005> junk <eos>"  # extra trailing tokens
    a = next(n)
    varied[a] = " " + clean[a]  # a leading space: a token of its own
    a = next(n)
    varied[a] = "<loc0100><loc0100><loc0101><loc0900>" + head[a][36:] + " water"  # empty after int()
    a = next(n)
    varied[a] = "<loc0050><loc0080><loc0900><loc1023>" + head[a][36:] + " ; " + head[a]  # a shifted box

    rng = np.random.default_rng(16)
    random: dict[str, str] = {}
    for name in names:
        y = np.sort(rng.integers(0, 1024, 2))
        x = np.sort(rng.integers(0, 1024, 2))
        seg = "".join(f"<seg{k:03d}>" for k in rng.integers(0, 128, 16))
        random[name] = f"<loc{y[0]:04d}><loc{x[0]:04d}><loc{y[1]:04d}><loc{x[1]:04d}>{seg} water"
    return {"clean": clean, "varied": varied, "random": random}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("big_vision", type=Path, help="a checkout of google-research/big_vision")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("golden.json"))
    args = parser.parse_args()

    import numpy as np

    from paligemma_segcodec import load_codec
    from paligemma_segcodec.maskio import read_mask

    checkpoint = ROOT / "tests" / "data" / "fixture-vae.npz"
    codec = load_codec(checkpoint)
    f32 = Path(tempfile.mkdtemp()) / "vae-f32.npz"
    with np.load(checkpoint) as z:
        np.savez(f32, **{k: z[k].astype(np.float32) if z[k].dtype.kind == "f" else z[k] for k in z.files})
    seg_module = load_evaluator(args.big_vision)

    masks = {p.name: read_mask(p) for p in sorted(WATER.glob("*.jpg"))}

    def gt_box(m: Any) -> Any:
        ys, xs = np.nonzero(m)
        h, w = m.shape
        return np.array([ys.min() / h, xs.min() / w, (ys.max() + 1) / h, (xs.max() + 1) / w], np.float32)

    def run(answers: dict[str, str], names: list[str], det_ious: Any) -> dict[str, Any]:
        batches = []
        for start in range(0, len(names), BATCH):
            chunk = names[start : start + BATCH]
            rows = len(chunk) + (1 if len(chunk) == BATCH else BATCH - len(chunk))  # always a padding row
            decoded = np.zeros((rows, DECODE_LEN), np.int32)
            gt_masks = np.empty(rows, object)
            gt_boxes = np.zeros((rows, 4), np.float32)
            for i in range(rows):
                name = chunk[i] if i < len(chunk) else chunk[0]
                ids = tokenize(answers[name])[:DECODE_LEN]
                decoded[i, : len(ids)] = ids
                gt_masks[i] = masks[name].astype(np.uint8)[:, :, None]
                gt_boxes[i] = gt_box(masks[name])
            batches.append(
                {
                    "_mask": np.arange(rows) < len(chunk),
                    "objects/mask": gt_masks,
                    "objects/bbox": gt_boxes,
                    "_decoded": decoded,
                }
            )
        kw = {} if det_ious is None else {"det_ious": det_ious}
        evaluator = seg_module.Evaluator(
            lambda state, batch, devices, eos_token: batch["_decoded"],
            "stub",
            model=str(f32),
            devices=None,
            batches=batches,
            **kw,
        )
        return {k: (int(v) if k in ("invalid", "total") else float(v)) for k, v in evaluator.run(None)}

    out: dict[str, Any] = {"evaluator": EVALUATOR, "sets": {}}
    for set_name, answers in answer_sets(masks, codec).items():
        names = sorted(answers)
        for ious_name, det_ious in DET_IOUS.items():
            key = f"{set_name}/{ious_name}"
            out["sets"][key] = {
                "det_ious": None if det_ious is None else list(det_ious),
                "answers": answers,
                "metrics": run(answers, names, det_ious),
                "per_image": {name: run(answers, [name], det_ious) for name in names},
            }
            print(key, out["sets"][key]["metrics"])
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
