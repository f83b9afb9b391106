"""Fuzz the untrusted edges at volume and report: inputs tried, crashes, 5xx answers.

1. `signing.verify` and `envelope.decode_envelope` in-process (the strategies of
   tests/unit/test_fuzz_inputs.py), at least 100,000 generated inputs in all;
2. the live `POST /webhooks/aurous` of a real server on loopback: fuzzed bodies, half of them
   correctly signed (so they reach the decoder), every answer must be 2xx or 4xx.

    .venv/bin/python bench/fuzz.py [--examples 50000] [--live 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

    signatures()
    envelopes()


def fuzz_live(requests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        settings_ = Settings(
            data_dir=Path(tmp),
            bootstrap_secrets=(SECRET,),
            admin_token="fuzz-admin-token-0123456789abcdefghij",
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


def _wire(value: str) -> bytes:
    """A header value as it can travel: latin-1, no control characters (HTTP forbids them)."""
    cleaned = "".join(c if " " <= c <= "~" or "\x80" <= c <= "\xff" else "?" for c in value)
    return cleaned.strip().encode("latin-1", "replace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=50_000, help="per in-process target")
    parser.add_argument("--live", type=int, default=3_000)
    args = parser.parse_args()
    started = time.perf_counter()
    fuzz_in_process(args.examples)
    fuzz_live(args.live)
    total = COUNTS["verify"] + COUNTS["decode"] + COUNTS["live"]
    answers = {k: v for k, v in sorted(COUNTS.items()) if k.startswith("http_")}
    print(
        f"inputs: {total} (verify {COUNTS['verify']}, decode {COUNTS['decode']}, "
        f"live {COUNTS['live']}) in {time.perf_counter() - started:.0f}s"
    )
    print(
        f"crashes: 0, 5xx: {sum(v for k, v in answers.items() if k >= 'http_500')}; "
        f"live answers {answers}"
    )


if __name__ == "__main__":
    main()
