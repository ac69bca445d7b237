"""The pictures `content/` ships for its sample data, drawn here rather than downloaded.

A spec (palette, seed, one character) fully determines the picture, so the content loader stores only
the spec and its hash; the image is drawn and encoded the first time a browser asks for it
(server/domain/images/service.py). Soft diagonal gradients with a few translucent shapes, and the
owner's first character in Noto Sans CJK when the machine has it (Debian's fonts-noto-cjk; .ci/run
installs it), else shapes alone.
"""

from __future__ import annotations

import hashlib
import random
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = (1024, 640)
FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc"),
)
SC_INDEX = 2  # in the Noto CJK collections: JP, KR, SC, TC, HK
# Pairs of (top-left, bottom-right) colours: warm market reds, tea greens, sea blues, dusk purples, gold.
PALETTES = (
    ((0xC8, 0x3A, 0x2F), (0xF2, 0xA2, 0x5C)),
    ((0x2F, 0x6B, 0x4F), (0xB7, 0xD9, 0x8B)),
    ((0x1F, 0x4E, 0x8C), (0x7F, 0xC8, 0xE0)),
    ((0x5B, 0x3A, 0x8C), (0xE0, 0x8F, 0xB5)),
    ((0x8C, 0x5A, 0x1F), (0xF0, 0xD0, 0x7A)),
    ((0x3A, 0x3F, 0x58), (0x9A, 0xA8, 0xC8)),
)


@cache
def font_path() -> str:
    """The CJK font this machine draws with ("" for none); part of every spec, so its hash changes with it."""
    return next((str(p) for p in FONT_CANDIDATES if p.exists()), "")


def spec(owner_kind: str, owner_id: str, label: str, group: str) -> dict[str, Any]:
    """What a picture of this owner looks like; `group` (a category, a festival kind) picks the palette."""
    digest = hashlib.sha256(f"{group}".encode()).digest()
    return {"kind": owner_kind, "seed": owner_id, "label": label[:1], "palette": digest[0] % len(PALETTES),
            "font": font_path()}


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    # a 2x2 image stretched with bilinear filtering is a smooth diagonal gradient, drawn in C
    small = Image.new("RGB", (2, 2))
    middle = tuple((a + b) // 2 for a, b in zip(top, bottom, strict=True))
    small.putdata([top, middle, middle, bottom])
    return small.resize(SIZE, Image.Resampling.BILINEAR)


def _shapes(base: Image.Image, rng: random.Random) -> Image.Image:
    layer = Image.new("RGBA", SIZE, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    width, height = SIZE
    for _ in range(5):
        r = rng.randint(height // 6, height // 2)
        x, y = rng.randint(-r // 2, width), rng.randint(-r // 2, height)
        alpha = rng.randint(28, 70)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, alpha))
    for _ in range(3):
        x = rng.randint(0, width)
        draw.line((x, height, x + rng.randint(120, 360), 0), fill=(255, 255, 255, 40), width=rng.randint(6, 18))
    soft = layer.filter(ImageFilter.GaussianBlur(6))
    return Image.alpha_composite(base.convert("RGBA"), soft)


def _label(image: Image.Image, label: str, font: str) -> None:
    if not label or not font:
        return
    try:
        face = ImageFont.truetype(font, size=SIZE[1] // 2, index=SC_INDEX)
    except OSError:
        return
    draw = ImageDraw.Draw(image, "RGBA")  # blended, so the shadow is a soft tint
    center = (SIZE[0] // 2, SIZE[1] // 2)
    draw.text((center[0] + 3, center[1] + 5), label, font=face, anchor="mm", fill=(0, 0, 0, 45))
    draw.text(center, label, font=face, anchor="mm", fill=(255, 255, 255, 235))


def draw(picture: dict[str, Any]) -> Image.Image:
    top, bottom = PALETTES[int(picture["palette"]) % len(PALETTES)]
    rng = random.Random(str(picture["seed"]))
    image = _shapes(_gradient(top, bottom), rng)
    _label(image, str(picture.get("label") or ""), str(picture.get("font") or ""))
    return image.convert("RGB")
