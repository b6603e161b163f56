"""Draws the figures of docs/token-format.md into docs/figures/ (committed; rerun after changes).

    python docs/make_figures.py

Uses the trained stand-in checkpoint tests/data/fixture-vae.npz, NOT PaliGemma's vae-oid.npz: the
pictures show the pipeline (crop, resize, decode, paste), not real PaliGemma tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from paligemma_segcodec import decode_tokens, encode_mask, load_codec
from paligemma_segcodec.api import prepare_mask
from paligemma_segcodec.boxes import crop_pixels, tight_box
from paligemma_segcodec.maskio import read_image, read_mask

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "figures"
STEM = "water_body_1685"


def _panel(img: Image.Image, title: str, size: int = 256) -> Image.Image:
    canvas = Image.new("RGB", (size, size + 20), "white")
    im = img.convert("RGB")
    im.thumbnail((size, size), Image.Resampling.NEAREST)
    canvas.paste(im, ((size - im.width) // 2, 20 + (size - im.height) // 2))
    ImageDraw.Draw(canvas).text((4, 4), title, fill="black")
    return canvas


def main() -> None:
    codec = load_codec(ROOT / "tests" / "data" / "fixture-vae.npz")
    image = read_image(ROOT / "tests" / "data" / "water" / "images" / f"{STEM}.jpg")
    mask = read_mask(ROOT / "tests" / "data" / "water" / "masks" / f"{STEM}.jpg")
    h, w = mask.shape
    box = tight_box(mask)
    t, left, b, r = crop_pixels(box, h, w)
    with_box = image.copy()
    ImageDraw.Draw(with_box).rectangle([left, t, r - 1, b - 1], outline=(255, 0, 0), width=2)
    m64 = prepare_mask(mask).mask64
    text = encode_mask(mask, label="water", codec=codec)
    (seg,) = decode_tokens(text, height=h, width=w, codec=codec)
    assert seg.mask64 is not None and seg.mask is not None
    overlay = np.asarray(image, dtype=np.float32).copy()
    overlay[seg.mask] = 0.5 * overlay[seg.mask] + 0.5 * np.array([230, 25, 75])
    panels = [
        _panel(with_box, "1. mask's tight box"),
        _panel(Image.fromarray(mask.astype(np.uint8) * 255), "2. mask (H x W)"),
        _panel(
            Image.fromarray((m64 * 255).round().astype(np.uint8)).resize((256, 256), Image.Resampling.NEAREST),
            "3. crop -> 64x64 (antialiased)",
        ),
        _panel(
            Image.fromarray(((seg.mask64 > 0) * 255).astype(np.uint8)).resize((256, 256), Image.Resampling.NEAREST),
            "4. 16 tokens -> decoded 64x64",
        ),
        _panel(Image.fromarray(overlay.round().astype(np.uint8)), "5. pasted back (> 0)"),
    ]
    sheet = Image.new("RGB", (256 * len(panels), 276), "white")
    for i, p in enumerate(panels):
        sheet.paste(p, (256 * i, 0))
    OUT.mkdir(parents=True, exist_ok=True)
    sheet.save(OUT / "pipeline.png")
    (OUT / "pipeline.txt").write_text(text + "\n")
    print(f"wrote {OUT / 'pipeline.png'}")


if __name__ == "__main__":
    main()
