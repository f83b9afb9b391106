"""Deterministic output bytes, produced as a stream with random access (never held whole).

A file is head bytes + N equal-sized body pieces (the last may be shorter) + tail bytes. Each body
piece is rebuilt on demand from (seed, stream key, piece number), so serving any Range costs one
piece of memory. Pixel/sample bytes come from a per-seed pad read at a hashed offset and stamped
with a per-piece digest: fast, and different for every job, output and piece.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib
from collections.abc import Iterator
from typing import Protocol

__all__ = ["PIECE", "Media", "mp4_media", "png_media", "stream_sha256"]

PIECE = 65536
_STAMP = 16


@functools.lru_cache(maxsize=8)
def _pad(seed: int) -> bytes:
    return hashlib.shake_128(b"aurous-sim-pad:%d" % seed).digest(2 * PIECE)


def _noise(seed: int, key: bytes, number: int, length: int) -> bytes:
    stamp = hashlib.blake2b(key + number.to_bytes(8, "big"), digest_size=_STAMP).digest()
    if length <= _STAMP:
        return stamp[:length]
    offset = int.from_bytes(stamp[:4], "big") % PIECE
    return stamp + _pad(seed)[offset : offset + length - _STAMP]


class Media(Protocol):
    size: int
    content_type: str

    def iter_range(self, start: int, end: int) -> Iterator[bytes]: ...


class _Blocked:
    """Shared slicing over head + pieces + tail; subclasses build pieces and the tail."""

    content_type = "application/octet-stream"

    def __init__(self, head: bytes, piece_size: int, body_len: int, tail_len: int) -> None:
        self.head = head
        self.piece_size = piece_size
        self.body_len = body_len
        self.pieces = -(-body_len // piece_size)
        self.tail_len = tail_len
        self.size = len(head) + body_len + tail_len

    def piece(self, number: int) -> bytes:
        raise NotImplementedError

    def tail(self) -> bytes:
        raise NotImplementedError

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """Yield bytes [start, end) in pieces; end is exclusive and clamped to the size."""
        end = min(end, self.size)
        head_len = len(self.head)
        if start < head_len and start < end:
            yield self.head[start : min(end, head_len)]
        body_end = head_len + self.body_len
        position = max(start, head_len)
        while position < min(end, body_end):
            number = (position - head_len) // self.piece_size
            piece_start = head_len + number * self.piece_size
            data = self.piece(number)
            yield data[position - piece_start : min(end, body_end) - piece_start]
            position = piece_start + len(data)
        if end > body_end:
            yield self.tail()[max(start, body_end) - body_end : end - body_end]


class _Png(_Blocked):
    """RGB PNG whose IDAT chunks each hold one stored (uncompressed) deflate block.

    The zlib header and the Adler-32 trailer sit in IDAT chunks of their own, so every body
    piece has the same layout and can be built alone; only the trailer needs a pass over all
    pixels, and that result is cached.
    """

    content_type = "image/png"
    WIDTH = 256
    RAW_PER_PIECE = PIECE - 12 - 5

    def __init__(self, seed: int, key: bytes, target_size: int) -> None:
        self.seed = seed
        self.key = key
        self.row = 1 + 3 * self.WIDTH
        self.height = self._rows_for(target_size)
        self.raw_len = self.height * self.row
        pieces = -(-self.raw_len // self.RAW_PER_PIECE)
        # A tEXt comment pads the file to the exact requested size (decoders skip it).
        filler = target_size - self._size(self.height) - 12 - len(_COMMENT)
        head = _PNG_SIG + _chunk(b"IHDR", _ihdr(self.WIDTH, self.height))
        if filler >= 0:
            head += _chunk(b"tEXt", _COMMENT + b"." * filler)
        head += _chunk(b"IDAT", b"\x78\x01")
        super().__init__(head, PIECE, self.raw_len + 17 * pieces, 16 + 12)
        self._running: tuple[int, int] = (0, 1)  # (next piece, adler so far) for sequential reads

    def _size(self, height: int) -> int:
        raw = height * self.row
        return _PNG_FIXED + raw + 17 * -(-raw // self.RAW_PER_PIECE)

    def _rows_for(self, target_size: int) -> int:
        height = max(1, int((target_size - _PNG_FIXED) / (self.row * (1 + 17 / PIECE))))
        while height > 1 and self._size(height) + 12 + len(_COMMENT) > target_size:
            height -= 1
        return height

    def raw(self, number: int) -> bytes:
        start = number * self.RAW_PER_PIECE
        length = min(self.RAW_PER_PIECE, self.raw_len - start)
        data = bytearray(_noise(self.seed, self.key, number, length))
        first_filter = (-start) % self.row
        data[first_filter :: self.row] = bytes(len(range(first_filter, length, self.row)))
        return bytes(data)

    def piece(self, number: int) -> bytes:
        raw = self.raw(number)
        if self._running[0] == number:
            self._running = (number + 1, zlib.adler32(raw, self._running[1]))
        final = 1 if number == self.pieces - 1 else 0
        block = struct.pack("<BHH", final, len(raw), len(raw) ^ 0xFFFF) + raw
        return _chunk(b"IDAT", block)

    def adler(self) -> int:
        if self._running[0] == self.pieces:
            return self._running[1]
        return _png_adler(self.seed, self.key, self.height)

    def tail(self) -> bytes:
        return _chunk(b"IDAT", struct.pack(">I", self.adler())) + _chunk(b"IEND", b"")


@functools.lru_cache(maxsize=4096)
def _png_adler(seed: int, key: bytes, height: int) -> int:
    png = _Png.__new__(_Png)
    png.seed, png.key, png.row, png.height = seed, key, 1 + 3 * _Png.WIDTH, height
    png.raw_len = height * png.row
    value = 1
    for number in range(-(-png.raw_len // _Png.RAW_PER_PIECE)):
        value = zlib.adler32(png.raw(number), value)
    return value


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_FIXED = 8 + 25 + 14 + 16 + 12  # signature, IHDR, zlib-header IDAT, Adler IDAT, IEND
_COMMENT = b"Comment\x00"


def _ihdr(width: int, height: int) -> bytes:
    return struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class _Mp4(_Blocked):
    """ftyp + moov(mvhd) + mdat; mdat switches to a 64-bit largesize past 4 GiB."""

    content_type = "video/mp4"

    def __init__(self, seed: int, key: bytes, target_size: int, duration_ms: int) -> None:
        self.seed = seed
        self.key = key
        prefix = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
        prefix += _box(b"moov", _box(b"mvhd", _mvhd(duration_ms)))
        payload = max(0, target_size - len(prefix) - 8)
        if payload + 8 > 0xFFFFFFFF:
            payload = max(0, target_size - len(prefix) - 16)
            mdat = struct.pack(">I4sQ", 1, b"mdat", payload + 16)
        else:
            mdat = struct.pack(">I4s", payload + 8, b"mdat")
        super().__init__(prefix + mdat, PIECE, payload, 0)

    def piece(self, number: int) -> bytes:
        length = min(PIECE, self.body_len - number * PIECE)
        return _noise(self.seed, self.key, number, length)

    def tail(self) -> bytes:
        return b""


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _mvhd(duration_ms: int) -> bytes:
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    return (
        struct.pack(">IIIII", 0, 0, 0, 1000, duration_ms & 0xFFFFFFFF)
        + struct.pack(">IH", 0x10000, 0x100)
        + bytes(10)
        + matrix
        + bytes(24)
        + struct.pack(">I", 2)
    )


def _key(kind: str, sequence: int, index: int) -> bytes:
    return f"{kind}:{sequence}:{index}".encode()


def png_media(seed: int, sequence: int, index: int, target_size: int) -> _Png:
    return _Png(seed, _key("image", sequence, index), target_size)


def mp4_media(seed: int, sequence: int, target_size: int, duration_ms: int) -> _Mp4:
    return _Mp4(seed, _key("video", sequence, 0), target_size, duration_ms)


def stream_sha256(media: Media) -> str:
    digest = hashlib.sha256()
    for data in media.iter_range(0, media.size):
        digest.update(data)
    return digest.hexdigest()
