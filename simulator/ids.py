"""ULID-shaped ids: 48-bit milliseconds + 80 random bits in Crockford base32 (26 chars)."""

from __future__ import annotations

import os
import random

__all__ = ["new_id", "new_seeded_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str, unix_seconds: float) -> str:
    """An id whose time part follows the simulated clock, so ids sort like created_at."""
    millis = int(unix_seconds * 1000) & ((1 << 48) - 1)
    return prefix + _encode((millis << 80) | int.from_bytes(os.urandom(10), "big"))


def new_seeded_id(prefix: str, unix_seconds: float, rng: random.Random) -> str:
    """Like new_id, but the random part comes from a seeded stream (stable across runs)."""
    millis = int(unix_seconds * 1000) & ((1 << 48) - 1)
    return prefix + _encode((millis << 80) | rng.getrandbits(80))
