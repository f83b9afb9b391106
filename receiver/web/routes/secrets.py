"""The webhook keyring, metadata only: never plaintext or ciphertext."""

from __future__ import annotations

from litestar import get

from receiver.paging import Listing
from receiver.runtime import RuntimeDep
from receiver.web.http import ERROR_RESPONSES
from receiver.webhooks.keyring import Secret

__all__ = ["list_secrets"]


@get(
    "/secrets",
    responses=ERROR_RESPONSES,
    operation_id="listSecrets",
    summary="Webhook secrets in the keyring",
)
async def list_secrets(runtime: RuntimeDep) -> Listing[Secret]:
    return Listing(await runtime.secrets.list())
