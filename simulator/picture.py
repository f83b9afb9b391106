"""The picture a prompt stands for: its words over a gradient whose colours come from the prompt.

A real generator draws the prompt; the simulator writes it, so that archived outputs and the
dashboard's previews can be told apart at a glance. Same prompt, same picture: pictures are
cached per prompt and side, because load tests ask for thousands of outputs of a few prompts.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import textwrap

from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageOps

__all__ = ["SIDES", "picture_png"]

SIDES = (256, 128, 64, 32, 16)  # largest first: the largest that fits the requested size wins
_SHOWN_CHARACTERS = 70  # about five lines of fourteen: more would not be readable at 256 px
_LINE_CHARACTERS = 14
_MAX_LINES = 5
_SMALLEST_WITH_WORDS = 64  # below this the words would be a smudge: the gradient alone


def picture_png(prompt: str | None, budget: int) -> bytes:
    """The prompt's picture as a whole PNG file, at the largest side whose file is at most
    `budget` bytes long (the smallest side when none is)."""
    words = _shown(prompt)
    for side in SIDES[:-1]:
        png = _picture(words, side)
        if len(png) <= budget:
            return png
    return _picture(words, SIDES[-1])


def _shown(prompt: str | None) -> str:
    """What of the prompt can be drawn: printable characters, no more than fit the picture."""
    text = "".join(ch for ch in (prompt or "")[: 4 * _SHOWN_CHARACTERS] if ch.isprintable())
    text = " ".join(text.split())
    if len(text) > _SHOWN_CHARACTERS:
        text = text[: _SHOWN_CHARACTERS - 3].rstrip() + "..."
    return text


@functools.lru_cache(maxsize=512)
def _picture(words: str, side: int) -> bytes:
    digest = hashlib.sha256(words.encode()).digest()
    dark, light = _colours(digest)
    image = ImageOps.colorize(_diagonal_ramp(digest, side), dark, light)
    draw = ImageDraw.Draw(image, "RGBA")
    radius = side // 4
    centre_x = side // 5 + digest[3] * (3 * side // 5) // 255
    centre_y = side // 5 + digest[4] * (3 * side // 5) // 255
    draw.ellipse(
        (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius),
        fill=(255, 255, 255, 56),
    )
    if side >= _SMALLEST_WITH_WORDS:
        _write(draw, words or "(no prompt)", side)
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _colours(digest: bytes) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A dark and a light colour of two different hues, both picked by the prompt's hash."""
    hue = digest[0] / 255
    other = (hue + 0.2 + digest[1] / 255 * 0.4) % 1.0
    dark = colorsys.hls_to_rgb(hue, 0.28, 0.65)
    light = colorsys.hls_to_rgb(other, 0.66, 0.75)
    return _rgb(dark), _rgb(light)


def _rgb(colour: tuple[float, float, float]) -> tuple[int, int, int]:
    red, green, blue = (round(part * 255) for part in colour)
    return red, green, blue


def _diagonal_ramp(digest: bytes, side: int) -> Image.Image:
    """0 in one corner to 255 in the opposite one; which corner is dark depends on the hash."""
    down = Image.linear_gradient("L")
    ramp = ImageChops.add(down, down.transpose(Image.Transpose.ROTATE_90), scale=2.0)
    ramp = ramp.rotate(90 * (digest[2] % 4))
    return ramp if side == ramp.width else ramp.resize((side, side))


@functools.lru_cache(maxsize=len(SIDES))
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _write(draw: ImageDraw.ImageDraw, words: str, side: int) -> None:
    lines = textwrap.wrap(words, _LINE_CHARACTERS, break_long_words=True)
    if len(lines) > _MAX_LINES:
        lines = [*lines[: _MAX_LINES - 1], lines[_MAX_LINES - 1] + "..."]
    text = "\n".join(lines)
    size = side // 9
    font = _font(size)
    spacing = size // 4
    left, top, right, bottom = draw.multiline_textbbox(
        (0, 0), text, font=font, align="center", spacing=spacing
    )
    draw.multiline_text(
        ((side - (right - left)) / 2 - left, (side - (bottom - top)) / 2 - top),
        text,
        font=font,
        fill=(255, 255, 255),
        align="center",
        spacing=spacing,
        stroke_width=max(1, size // 10),
        stroke_fill=(0, 0, 0),
    )
