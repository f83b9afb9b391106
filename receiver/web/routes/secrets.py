"""The webhook keyring, metadata only: never plaintext or ciphertext."""

from __future__ import annotations

from typing import Any

from litestar import get

from receiver.runtime import RuntimeDep
from receiver.web.http import ERROR_RESPONSES
from storage.types import utcnow

__all__ = ["list_secrets"]


@get(
    "/secrets",
    responses=ERROR_RESPONSES,
    operation_id="listSecrets",
    summary="Webhook secrets in the keyring",
)
async def list_secrets(runtime: RuntimeDep) -> dict[str, Any]:
    now = utcnow()
    return {
        "data": [
            {
                "id": s.id,
                "label": s.label,
                "source": s.source,
                "preview": s.preview,
                "state": s.state(now),
                "created_at": s.created_at,
                "expires_at": s.expires_at,
                "retired_at": s.retired_at,
                "last_matched_at": s.last_matched_at,
                "match_count": s.match_count,
            }
            for s in await runtime.secrets.list()
        ]
    }
