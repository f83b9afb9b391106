"""Fuzz the untrusted edges at volume and report: inputs tried, crashes, 5xx answers.

1. `signing.verify` and `envelope.decode_envelope` in-process (the strategies of
   tests/unit/test_fuzz_inputs.py), plus the hostile generations below, at least 100,000
   generated inputs in all;
2. the live `POST /webhooks/aurous` of a real server on loopback: fuzzed bodies, half of them
   correctly signed (so they reach the decoder), every answer must be 2xx or 4xx;
3. the cases of the hardening report, live: correctly signed generations whose values storage
   cannot hold (amounts beyond int64, years near 0 or 9999, NUL and control characters, absurd
   output counts, odd statuses), and unauthenticated or authenticated requests with malformed
   cookies, cursors, limits, Range headers and signature timestamps.
Every answer must be 2xx or 4xx, and the server must log no traceback.

    .venv/bin/python bench/fuzz.py [--examples 40000] [--live 3000] [--hostile 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from receiver.settings import Settings
from receiver.web.app import create_app
from receiver.webhooks.envelope import EnvelopeError, decode_envelope
from receiver.webhooks.signing import SignatureRejected, sign, verify
from storage.db import Database
from storage.migrate import upgrade
from tests.support.live_server import live_server
from tests.unit.test_fuzz_inputs import RING, SECRET, bodies, headers

COUNTS: Counter[str] = Counter()
ADMIN_TOKEN = "fuzz-admin-token-0123456789abcdefghij"


class TracebackCounter(logging.Handler):
    """Counts what the server logs with a traceback (or at ERROR): the fuzz must see none."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


hostile_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Cc", "Zs"]),
    max_size=30,
) | st.sampled_from(["\u0000", "a\u0000b", "=cmd|' /C calc'!A0", "\u202e", "\x1b[31m"])
hostile_dates = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-13-45T99:99:99Z"]),
    hostile_text,
    st.integers(-(2**70), 2**70),
)
hostile_amounts = st.one_of(
    st.floats(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([1e13, -1e13, 1e308, 2**63, "12", None]),
)
hostile_generations = st.fixed_dictionaries(
    {
        "id": st.one_of(st.just("img_ok"), hostile_text.map(lambda t: "img_" + t)),
        "status": st.one_of(
            st.sampled_from(["succeeded", "failed", "processing", "cancelled", "expired"]),
            hostile_text,
        ),
        "cost": st.fixed_dictionaries({"amount": hostile_amounts, "currency": hostile_text}),
        "created_at": hostile_dates,
        "completed_at": hostile_dates,
        "prompt": hostile_text,
        "inference_type": hostile_text,
        "error_message": st.none() | hostile_text,
        "output_urls": st.one_of(
            st.lists(hostile_text.map(lambda t: "https://api.aurous-labs.com/o/" + t), max_size=5),
            st.sampled_from([0, 101, 1000]).map(
                lambda n: [f"https://api.aurous-labs.com/o/{i}" for i in range(n)]
            ),
        ),
    }
)
hostile_bodies = st.builds(
    lambda job, kind, event: json.dumps(
        {"id": "evt_" + str(event), "type": kind, "data": job}, allow_nan=True
    ).encode(),
    hostile_generations,
    st.sampled_from(["image.completed", "video.failed"]) | hostile_text,
    st.integers(0, 2**64),
)
odd_requests = st.fixed_dictionaries(
    {
        "path": st.sampled_from(
            [
                "/jobs",
                "/deliveries",
                "/events",
                "/spend/ledger",
                "/spend/findings",
                "/dashboard/jobs",
                "/jobs/img_ok",
                "/jobs/img_ok/outputs/0",
                "/login",
                "/",
                "/healthz",
            ]
        ),
        "cursor": st.none() | hostile_text | st.integers(-(2**80), 2**80).map(str),
        "limit": st.none() | hostile_text | st.integers(-(2**70), 2**70).map(str),
        "status": st.none() | hostile_text,
        "cookie": st.none() | hostile_text,
        "range": st.none()
        | hostile_text
        | st.integers(1, 9).map(lambda d: f"bytes={str(d) * 5000}-"),
        "token": st.booleans(),
    }
)


def fuzz_in_process(examples: int) -> None:
    quick = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )

    @quick
    @given(body=bodies, header=headers, now=st.integers(0, 2**40))
    def signatures(body: bytes, header: str | None, now: int) -> None:
        COUNTS["verify"] += 1
        with contextlib.suppress(SignatureRejected):
            verify(body, header, RING, now=now, tolerance_s=300)

    @quick
    @given(body=bodies)
    def envelopes(body: bytes) -> None:
        COUNTS["decode"] += 1
        with contextlib.suppress(EnvelopeError):
            decode_envelope(body)

    @quick
    @given(body=hostile_bodies)
    def hostile_envelopes(body: bytes) -> None:
        COUNTS["decode_hostile"] += 1
        with contextlib.suppress(EnvelopeError):
            decode_envelope(body)

    signatures()
    envelopes()
    hostile_envelopes()


def fuzz_live(requests: int, hostile: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        settings_ = Settings(
            data_dir=Path(tmp),
            bootstrap_secrets=(SECRET,),
            admin_token=ADMIN_TOKEN,
            background=False,
        )

        async def migrate() -> None:
            db = Database(settings_.database_url)
            await upgrade(db)
            await db.dispose()

        asyncio.run(migrate())
        with live_server(create_app(settings_)) as server, httpx.Client(timeout=30) as client:

            @settings(
                max_examples=requests,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(body=bodies, header=headers, signed=st.booleans())
            def live(body: bytes, header: str | None, signed: bool) -> None:
                value = sign(body, [SECRET], int(time.time())) if signed else header
                wire = _wire(value) if value is not None else b""
                sent = {"Aurous-Webhook-Signature": wire} if wire else {}
                response = client.post(f"{server.url}/webhooks/aurous", content=body, headers=sent)
                COUNTS[f"http_{response.status_code}"] += 1
                COUNTS["live"] += 1
                assert response.status_code < 500, (response.status_code, response.text)

            live()

            @settings(
                max_examples=hostile,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(body=hostile_bodies)
            def live_hostile(body: bytes) -> None:
                sent = {"Aurous-Webhook-Signature": sign(body, [SECRET], int(time.time()))}
                response = client.post(f"{server.url}/webhooks/aurous", content=body, headers=sent)
                COUNTS[f"http_{response.status_code}"] += 1
                COUNTS["live_hostile"] += 1
                assert response.status_code < 500, (response.status_code, response.text)

            @settings(
                max_examples=hostile,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(request=odd_requests)
            def live_odd(request: dict[str, object]) -> None:
                params = {
                    key: str(request[key])
                    for key in ("cursor", "limit", "status")
                    if request[key] is not None
                }
                sent: dict[str, bytes] = {}
                if request["token"]:
                    sent["Authorization"] = f"Bearer {ADMIN_TOKEN}".encode()
                if request["cookie"] is not None:
                    sent["Cookie"] = b"receiver_session=" + _wire(str(request["cookie"]))
                if request["range"] is not None:
                    sent["Range"] = _wire(str(request["range"]))
                response = client.get(f"{server.url}{request['path']}", params=params, headers=sent)
                COUNTS[f"http_{response.status_code}"] += 1
                COUNTS["live_odd"] += 1
                assert response.status_code < 500, (response.status_code, response.text)

            live_hostile()
            live_odd()


def _wire(value: str) -> bytes:
    """A header value as it can travel: latin-1, no control characters (HTTP forbids them)."""
    cleaned = "".join(c if " " <= c <= "~" or "\x80" <= c <= "\xff" else "?" for c in value)
    return cleaned.strip().encode("latin-1", "replace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=40_000, help="per in-process target")
    parser.add_argument("--live", type=int, default=3_000)
    parser.add_argument("--hostile", type=int, default=3_000, help="per hostile live target")
    args = parser.parse_args()
    started = time.perf_counter()
    tracebacks = TracebackCounter()
    logging.getLogger().addHandler(tracebacks)
    fuzz_in_process(args.examples)
    fuzz_live(args.live, args.hostile)
    kinds = ("verify", "decode", "decode_hostile", "live", "live_hostile", "live_odd")
    total = sum(COUNTS[kind] for kind in kinds)
    answers = {k: v for k, v in sorted(COUNTS.items()) if k.startswith("http_")}
    print(
        f"inputs: {total} ({', '.join(f'{kind} {COUNTS[kind]}' for kind in kinds)}) "
        f"in {time.perf_counter() - started:.0f}s"
    )
    print(
        f"crashes: 0, 5xx: {sum(v for k, v in answers.items() if k >= 'http_500')}, "
        f"tracebacks in the log: {len(tracebacks.records)}; live answers {answers}"
    )
    for record in tracebacks.records[:5]:
        print("  logged:", record.getMessage()[:200])


if __name__ == "__main__":
    main()
