"""Secrets at rest: AES-GCM with a master key from settings or from a 0600 key file."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.private import private_file

__all__ = [
    "CryptoError",
    "SecretBox",
    "decode_master_key",
    "open_secret_box",
    "read_or_create_private_file",
]

_NONCE_BYTES = 12


class CryptoError(ValueError):
    """A key is malformed or a ciphertext does not open with it."""


class SecretBox:
    """Seals short secrets; the associated data binds a ciphertext to its purpose."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise CryptoError("the master key must be 32 bytes")
        self._aead = AESGCM(key)
        self._key = key
        self._fingerprint_key = self.derive(b"fingerprint")

    def seal(self, plaintext: str, purpose: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), purpose)

    def open(self, sealed: bytes, purpose: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], purpose)
        except InvalidTag:
            raise CryptoError("ciphertext does not open with this master key") from None
        return plain.decode()

    def derive(self, purpose: bytes) -> bytes:
        """A key of its own for one purpose (e.g. signing download links), from the master."""
        return hmac.new(self._key, b"aurous-receiver/" + purpose, "sha256").digest()

    def fingerprint(self, plaintext: str) -> str:
        """A keyed hash: equal secrets compare equal without storing anything reversible."""
        return hmac.new(self._fingerprint_key, plaintext.encode(), hashlib.sha256).hexdigest()


def decode_master_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except ValueError:
        raise CryptoError("RECEIVER_MASTER_KEY is not urlsafe base64") from None
    if len(key) != 32:
        raise CryptoError("RECEIVER_MASTER_KEY must decode to 32 bytes")
    return key


def new_master_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def open_secret_box(master_key: str | None, key_file: Path) -> tuple[SecretBox, bool]:
    """The box of the configured master key, else of the one in `key_file`, generated there
    first if the file is missing. Returns (box, whether the key was just generated)."""
    if master_key:
        return SecretBox(decode_master_key(master_key)), False
    text, created = read_or_create_private_file(key_file, new_master_key_text)
    return SecretBox(decode_master_key(text)), created


def read_or_create_private_file(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """The file's content, creating it 0600 first if missing. Returns (content, created).

    Creation is atomic (write a temp file, then hard-link it into place), so two processes
    starting at once agree on one value and a crash never leaves a half-written file.
    """
    if path.exists():
        private_file(path)
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, value.encode() + b"\n")
        os.fsync(fd)
        os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text().strip(), False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return value, True
