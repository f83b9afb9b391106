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

import httpx

from receiver.aurous import AurousClient, AurousError
from receiver.errors import ReceiverError
from receiver.generation import GenerationResponse
from receiver.jobs.lifecycle import Observation
from receiver.jobs.tracker import JobTracker, JobWriter
from storage import gateway
from storage.db import Connection, Database
from storage.records import JobRequestRecord, JobRequestUpdate, NewJobRequest
from storage.states import RequestState, Source
from storage.types import utcnow

__all__ = ["Created", "JobCreator"]

_IN_FLIGHT_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
# An answer from Aurous is final for an attempt; these leave its outcome unknown, so the
# request stays `sending` and the repair pass resends the same key.
_OUTCOME_UNKNOWN = ("network", "server_error", "rate_limit")


@dataclass(frozen=True)
class Created:
    job_id: str
    idempotency_key: str
    replayed: bool


def canonical(body: bytes) -> str:
    """The create body as canonical JSON text (keys sorted), so equal requests compare equal."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise ReceiverError(400, "invalid_body", "the body must be a JSON object")
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class JobCreator:
    def __init__(
        self,
        db: Database,
        tracker: JobTracker,
        aurous: AurousClient | None,
        *,
        repair_after: timedelta = timedelta(minutes=2),
    ) -> None:
        # A request still `sending` after this long has no live sender: resend its key.
        self._repair_after = repair_after
        self._db = db
        self._tracker = tracker
        self._aurous = aurous

    async def create(self, kind: str, body: bytes, idempotency_key: str | None) -> Created:
        """Create the job at Aurous and track it; raises `ReceiverError` (or `AurousError`,
        Aurous's own answer) when it cannot."""
        self._client()
        text = canonical(body)
        key = idempotency_key or f"rcv-{uuid.uuid4()}"
        if not 1 <= len(key) <= 256:
            raise ReceiverError(
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
        request = NewJobRequest(
            idempotency_key=key,
            kind=kind,
            fingerprint=fingerprint,
            body=text.encode(),
            state=RequestState.SENDING,
            created_at=now,
            updated_at=now,
        )

        def remember(conn: Connection) -> JobRequestRecord | None:
            if gateway.insert_job_request(conn, request):
                return None
            return gateway.get_job_request(conn, key)

        previous = await self._db.write(remember)
        if previous is None:
            return None
        if previous.fingerprint != fingerprint:
            raise ReceiverError(
                409,
                "idempotency_key_in_use",
                "this Idempotency-Key was used with a different request",
            )
        if previous.state == RequestState.CREATED and previous.job_id:
            return Created(previous.job_id, key, replayed=True)
        return None  # sent before with an unknown or failed outcome: send the same key again

    async def send(self, key: str, kind: str, body: bytes) -> Created:
        try:
            generation, response = await self._send_waiting_for_original(kind, body, key)
        except AurousError as error:
            await self._record_failure(key, error)
            raise
        now = utcnow()
        done = JobRequestUpdate(
            state=RequestState.CREATED,
            job_id=generation.id,
            updated_at=now,
            aurous_request_id=response.headers.get("aurous-request-id"),
            last_error=None,
        )

        def track(conn: Connection, jobs: JobWriter) -> None:
            jobs.observe([Observation(generation, Source.API, now)])
            jobs.link_request(generation.id, key)
            gateway.update_job_request(conn, key, done)

        await self._tracker.write(track)
        replayed = response.headers.get("aurous-idempotent-replayed") == "true"
        return Created(generation.id, key, replayed=replayed)

    async def _send_waiting_for_original(
        self, kind: str, body: bytes, key: str
    ) -> tuple[GenerationResponse, httpx.Response]:
        aurous = self._client()
        for delay in (*_IN_FLIGHT_BACKOFF, None):
            try:
                return await aurous.create(kind, body, key)
            except AurousError as error:
                if error.code != "idempotency_key_in_use" or delay is None:
                    raise
                await asyncio.sleep(delay)  # the original is still running at Aurous
        raise AssertionError("unreachable")

    def _client(self) -> AurousClient:
        if self._aurous is None:
            raise ReceiverError(503, "not_configured", "AUROUS_API_KEY is not set")
        return self._aurous

    async def _record_failure(self, key: str, error: AurousError) -> None:
        unknown = error.type in _OUTCOME_UNKNOWN
        failure = JobRequestUpdate(
            state=RequestState.SENDING if unknown else RequestState.FAILED,
            last_error=str(error)[:500],
            updated_at=utcnow(),
            aurous_request_id=error.request_id,
        )
        await self._db.write(lambda conn: gateway.update_job_request(conn, key, failure))

    async def repair(self, limit: int = 20) -> int:
        """Resend requests whose outcome is unknown (e.g. the receiver died mid-create)."""
        if self._aurous is None:
            return 0
        older_than = utcnow() - self._repair_after
        stale = await self._db.read(
            lambda conn: gateway.stale_job_requests(conn, older_than, limit)
        )
        repaired = 0
        for request in stale:
            try:
                await self.send(request.idempotency_key, request.kind, request.body)
                repaired += 1
            except AurousError:
                continue
        return repaired
