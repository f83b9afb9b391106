"""Output bytes: valid PNG/MP4 structure, determinism, and Range slices of the full stream."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from simulator.media import mp4_media, png_media, stream_sha256


def whole(media) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(media.iter_range(0, media.size))


def parse_png(data: bytes) -> tuple[list[bytes], bytes, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds, idat, ihdr, position = [], b"", b"", 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        payload = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + payload) == crc, f"bad CRC in {kind!r}"
        kinds.append(kind)
        if kind == b"IHDR":
            ihdr = payload
        if kind == b"IDAT":
            idat += payload
        position += 12 + length
    assert position == len(data)
    return kinds, ihdr, idat


@pytest.mark.parametrize("target", [500, 10_000, 65_536, 300_000, 2_000_000])
def test_png_is_valid_and_decodes(target: int) -> None:
    media = png_media(seed=3, sequence=5, index=0, target_size=target)
    data = whole(media)
    assert len(data) == media.size
    kinds, ihdr, idat = parse_png(data)
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    assert (depth, colour, interlace) == (8, 2, 0)
    pixels = zlib.decompress(idat)  # also checks the Adler-32 trailer
    assert len(pixels) == height * (1 + 3 * width)
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # a real decoder, which must skip the padding chunks
        assert image.size == (width, height) and image.mode == "RGB"
    if target >= 1000:
        assert media.size == target


def test_mp4_boxes() -> None:
    media = mp4_media(seed=3, sequence=9, target_size=200_000, duration_ms=5000)
    data = whole(media)
    assert len(data) == 200_000 == media.size
    boxes, position = [], 0
    while position < len(data):
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[position + 8 : position + 16])
        boxes.append(kind)
        position += size
    assert position == len(data)
    assert boxes == [b"ftyp", b"moov", b"mdat"]
    assert data[8:12] == b"isom"
    (duration,) = struct.unpack(">I", data[data.index(b"mvhd") + 4 + 16 : data.index(b"mvhd") + 24])
    assert duration == 5000


def test_huge_mp4_uses_largesize_without_generating_it() -> None:
    media = mp4_media(seed=1, sequence=0, target_size=5 * 2**30, duration_ms=1000)
    head = b"".join(media.iter_range(0, 200))
    mdat = head.index(b"mdat")
    assert struct.unpack(">I", head[mdat - 4 : mdat])[0] == 1
    (large,) = struct.unpack(">Q", head[mdat + 4 : mdat + 12])
    assert mdat - 4 + large == media.size == 5 * 2**30
    tail = b"".join(media.iter_range(media.size - 10, media.size))
    assert len(tail) == 10


def test_deterministic_and_distinct() -> None:
    a = whole(png_media(1, 0, 0, 100_000))
    assert a == whole(png_media(1, 0, 0, 100_000))
    assert a != whole(png_media(1, 0, 1, 100_000))
    assert a != whole(png_media(1, 1, 0, 100_000))
    assert a != whole(png_media(2, 0, 0, 100_000))
    video = mp4_media(1, 0, 100_000, 1000)
    assert stream_sha256(video) == hashlib.sha256(whole(mp4_media(1, 0, 100_000, 1000))).hexdigest()


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 200_000), length=st.integers(0, 140_000), png=st.booleans())
def test_any_range_is_a_slice_of_the_stream(start: int, length: int, png: bool) -> None:
    def make():  # type: ignore[no-untyped-def]
        return png_media(4, 2, 0, 180_000) if png else mp4_media(4, 2, 180_000, 1000)

    full = whole(make())
    piece = b"".join(make().iter_range(start, start + length))
    assert piece == full[start : start + length]


def test_tail_first_matches_sequential() -> None:
    """The Adler-32 trailer must be right even when the end is read before anything else."""
    media = png_media(8, 8, 0, 400_000)
    tail = b"".join(media.iter_range(media.size - 40, media.size))
    assert tail == whole(png_media(8, 8, 0, 400_000))[-40:]


def test_png_pictures_its_prompt() -> None:
    """Two prompts, two pictures a person can tell apart; one prompt, one picture per size."""

    def pixels(prompt: str, index: int = 0) -> bytes:
        data = whole(png_media(1, 0, index, 64 * 1024, prompt))
        assert parse_png(data)[0][-1] == b"IEND"
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (256, 256)
            return image.convert("RGB").tobytes()

    fox, lighthouse = pixels("a fox in the snow"), pixels("a lighthouse at dawn")
    assert fox != lighthouse
    differing = sum(a != b for a, b in zip(fox, lighthouse, strict=True))
    assert differing > len(fox) // 2  # other colours, not a few changed pixels
    assert pixels("a fox in the snow", index=1) == fox


def test_png_survives_any_prompt() -> None:
    for prompt in (None, "", "\x00\ud800\u202e" * 50, "w" * 100_000, "🦊 " * 40):
        data = whole(png_media(2, 3, 0, 20_000, prompt))
        assert len(data) == 20_000
        with Image.open(io.BytesIO(data)) as image:
            image.load()
