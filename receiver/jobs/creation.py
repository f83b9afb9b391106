"""Create jobs through the receiver so none is ever orphaned.

The request and its idempotency key are committed before Aurous is called. If the receiver dies
between Aurous's 201 and our commit, sending the same key again (the caller's retry, or the
repair pass for requests stuck in `sending`) makes Aurous replay the original answer: one
request, one Aurous job, tracked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from receiver.aurous import AurousClient, AurousError
from receiver.jobs.lifecycle import Observation, record_observations, write_retrying_races
from storage import gateway
from storage.db import Database
from storage.types import utcnow

__all__ = ["CreateError", "Created", "JobCreator"]

_IN_FLIGHT_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


class CreateError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        aurous_request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.aurous_request_id = aurous_request_id


@dataclass(frozen=True)
class Created:
    job_id: str
    idempotency_key: str
    replayed: bool


def canonical(body: bytes) -> tuple[dict[str, Any], str]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CreateError(400, "invalid_body", "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise CreateError(400, "invalid_body", "the body must be a JSON object")
    return data, json.dumps(data, sort_keys=True, separators=(",", ":"))


class JobCreator:
    def __init__(
        self,
        db: Database,
        aurous: AurousClient | None,
        *,
        output_ttl_s: int,
        repair_after: timedelta = timedelta(minutes=2),
    ) -> None:
        # A request still `sending` after this long has no live sender: resend its key.
        self._repair_after = repair_after
        self._db = db
        self._aurous = aurous
        self._ttl_s = output_ttl_s

    async def create(self, kind: str, body: bytes, idempotency_key: str | None) -> Created:
        if self._aurous is None:
            raise CreateError(503, "not_configured", "AUROUS_API_KEY is not set")
        _, text = canonical(body)
        key = idempotency_key or f"rcv-{uuid.uuid4()}"
        if not 1 <= len(key) <= 256:
            raise CreateError(
                400,
                "invalid_idempotency_key",
                "Idempotency-Key is 1-256 chars",
                param="Idempotency-Key",
            )
        fingerprint = hashlib.sha256(f"{kind}\n{text}".encode()).hexdigest()
        existing = await self._remember(key, kind, fingerprint, text)
        if existing is not None:
            return existing
        return await self.send(key, kind, text.encode())

    async def _remember(self, key: str, kind: str, fingerprint: str, text: str) -> Created | None:
        """Store the request before sending it; an earlier identical one answers instead."""
        now = utcnow()
        async with self._db.write() as conn:
            stored = await gateway.insert_job_request(
                conn,
                {
                    "idempotency_key": key,
                    "kind": kind,
                    "fingerprint": fingerprint,
                    "body": text.encode(),
                    "state": "sending",
                    "created_at": now,
                    "updated_at": now,
                },
            )
            previous = None if stored else await gateway.get_job_request(conn, key)
        if previous is None:
            return None
        if previous.fingerprint != fingerprint:
            raise CreateError(
                409,
                "idempotency_key_in_use",
                "this Idempotency-Key was used with a different request",
            )
        if previous.state == "created" and previous.job_id:
            return Created(previous.job_id, key, replayed=True)
        return None  # sent before with an unknown or failed outcome: send the same key again

    async def send(self, key: str, kind: str, body: bytes) -> Created:
        assert self._aurous is not None
        try:
            generation, response = await self._send_waiting_for_original(kind, body, key)
        except AurousError as error:
            await self._record_failure(key, error)
            status = error.status if error.status >= 400 else 502
            raise CreateError(
                status,
                error.code,
                error.message,
                param=error.param,
                aurous_request_id=error.request_id,
            ) from None
        now = utcnow()
        request_done = {
            "state": "created",
            "job_id": generation.id,
            "updated_at": now,
            "aurous_request_id": response.headers.get("aurous-request-id"),
            "last_error": None,
        }

        async def track(conn: AsyncConnection) -> None:
            # A webhook or another replica's sweep may store the new job first: then retry.
            await record_observations(
                conn, [Observation(generation, "api", now)], output_ttl_s=self._ttl_s
            )
            await gateway.update_jobs(conn, {generation.id: {"idempotency_key": key}})
            await gateway.update_job_request(conn, key, request_done)

        await write_retrying_races(self._db, track)
        replayed = response.headers.get("aurous-idempotent-replayed") == "true"
        return Created(generation.id, key, replayed=replayed)

    async def _send_waiting_for_original(self, kind: str, body: bytes, key: str) -> Any:
        assert self._aurous is not None
        for delay in (*_IN_FLIGHT_BACKOFF, None):
            try:
                return await self._aurous.create(kind, body, key)
            except AurousError as error:
                if error.code != "idempotency_key_in_use" or delay is None:
                    raise
                await asyncio.sleep(delay)  # the original is still running at Aurous
        raise AssertionError("unreachable")

    async def _record_failure(self, key: str, error: AurousError) -> None:
        # A network failure leaves the outcome unknown: stay `sending` so the repair pass
        # resends the same key. An answer from Aurous is final for this attempt.
        state = "sending" if error.type in ("network", "server_error", "rate_limit") else "failed"
        async with self._db.write() as conn:
            await gateway.update_job_request(
                conn,
                key,
                {
                    "state": state,
                    "last_error": str(error)[:500],
                    "updated_at": utcnow(),
                    "aurous_request_id": error.request_id,
                },
            )

    async def repair(self, limit: int = 20) -> int:
        """Resend requests whose outcome is unknown (e.g. the receiver died mid-create)."""
        if self._aurous is None:
            return 0
        async with self._db.read() as conn:
            stale = await gateway.stale_job_requests(conn, utcnow() - self._repair_after, limit)
        repaired = 0
        for request in stale:
            try:
                await self.send(request.idempotency_key, request.kind, request.body)
                repaired += 1
            except CreateError:
                continue
        return repaired
