"""Deterministic output bytes, produced as a stream with random access (never held whole).

A file is head bytes + N equal-sized body pieces (the last may be shorter) + tail bytes. Each body
piece is rebuilt on demand from (seed, stream key, piece number), so serving any Range costs one
piece of memory. Video samples and image padding come from a per-seed pad read at a hashed
offset and stamped with a per-piece digest: fast, and different for every job, output and piece.
An image's pixels are a picture of its prompt (simulator.picture), so a person can tell outputs
apart.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib
from collections.abc import Iterator
from typing import Protocol

from simulator.picture import picture_png

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
    """The prompt's picture (simulator.picture), then padding up to the requested size.

    The picture's own chunks and a tEXt comment naming the output make the head; the padding is
    a run of private ancillary chunks (`auPd`, which decoders skip) of one piece each, rebuilt
    on demand like any other piece; IEND is the tail. The comment differs per output, so no two
    outputs share their bytes even when they share their prompt.
    """

    content_type = "image/png"

    def __init__(self, seed: int, key: bytes, target_size: int, prompt: str | None) -> None:
        self.seed = seed
        self.key = key
        comment = _COMMENT + b"aurous simulator " + key + b" seed " + str(seed).encode()
        picture = picture_png(prompt, target_size - len(comment) - _IEND_LEN)
        padding = max(0, target_size - len(picture) - len(comment) - _IEND_LEN)
        # Every padding chunk needs its 12 bytes of framing: a remainder shorter than that goes
        # into the comment instead.
        short = padding % PIECE
        if 0 < short < 12:
            comment += b" " * short
            padding -= short
        ihdr_end = len(_PNG_SIG) + 12 + 13
        head = picture[:ihdr_end] + _chunk(b"tEXt", comment) + picture[ihdr_end:-_IEND_LEN]
        super().__init__(head, PIECE, padding, _IEND_LEN)

    def piece(self, number: int) -> bytes:
        length = min(PIECE, self.body_len - number * PIECE)
        return _chunk(b"auPd", _noise(self.seed, self.key, number, length - 12))

    def tail(self) -> bytes:
        return _chunk(b"IEND", b"")


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_COMMENT = b"Comment\x00"
_IEND_LEN = 12


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


def png_media(
    seed: int, sequence: int, index: int, target_size: int, prompt: str | None = None
) -> _Png:
    return _Png(seed, _key("image", sequence, index), target_size, prompt)


def mp4_media(seed: int, sequence: int, target_size: int, duration_ms: int) -> _Mp4:
    return _Mp4(seed, _key("video", sequence, 0), target_size, duration_ms)


def stream_sha256(media: Media) -> str:
    digest = hashlib.sha256()
    for data in media.iter_range(0, media.size):
        digest.update(data)
    return digest.hexdigest()
