"""Sortable opaque ids (ULID layout: 48-bit milliseconds + 80 random bits, Crockford base32)."""

from __future__ import annotations

import random
import time

__all__ = ["new_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two base32 digits per 10 bits: 13 lookups make the 26 digits of 130 bits (the top two 0).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(120, -1, -10)


def new_id(prefix: str) -> str:
    # Ids are labels, not secrets: a fast PRNG is enough and saves a syscall per request.
    # Every request gets one, so it is made with as few Python steps as it can be.
    value = (int(time.time() * 1000) << 80) | random.getrandbits(80)
    return prefix + "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])
