"""The webhook keyring, metadata only: never plaintext or ciphertext."""

from __future__ import annotations

from receiver.runtime import RuntimeDep
from receiver.shapes import Listing
from receiver.web.http import api_get
from receiver.webhooks.keyring import Secret

__all__ = ["list_secrets"]


@api_get("/secrets", "listSecrets", "Webhook secrets in the keyring")
async def list_secrets(runtime: RuntimeDep) -> Listing[Secret]:
    return Listing(await runtime.secrets.list())
