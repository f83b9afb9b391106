from __future__ import annotations

import stat
from pathlib import Path

import pytest

from storage.crypto import (
    CryptoError,
    SecretBox,
    decode_master_key,
    new_master_key_text,
    read_or_create_private_file,
)


def test_sealed_secrets_open_only_with_the_same_key_and_purpose() -> None:
    box = SecretBox(decode_master_key(new_master_key_text()))
    sealed = box.seal("whsec_abc", b"webhook_secret")
    assert b"whsec_abc" not in sealed
    assert box.open(sealed, b"webhook_secret") == "whsec_abc"
    with pytest.raises(CryptoError):
        box.open(sealed, b"other")
    with pytest.raises(CryptoError):
        SecretBox(decode_master_key(new_master_key_text())).open(sealed, b"webhook_secret")


def test_fingerprints_are_stable_per_key() -> None:
    key = decode_master_key(new_master_key_text())
    assert SecretBox(key).fingerprint("a") == SecretBox(key).fingerprint("a")
    assert SecretBox(key).fingerprint("a") != SecretBox(key).fingerprint("b")


@pytest.mark.parametrize("text", ["short", "!!!not base64!!!", ""])
def test_bad_master_keys_are_refused(text: str) -> None:
    with pytest.raises(CryptoError):
        decode_master_key(text)


def test_private_files_are_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "admin.token"
    value, created = read_or_create_private_file(path, lambda: "first")
    assert (value, created) == ("first", True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create_private_file(path, lambda: "second") == ("first", False)
    assert [p.name for p in path.parent.iterdir()] == ["admin.token"]
