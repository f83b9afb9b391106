"""The simulator as a separate process (`python -m simulator`): big streams and many jobs."""

from __future__ import annotations

import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.simulator.conftest import API_KEY, cli_simulator, wait_for

GIB = 1 << 30
MB = 1_000_000

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.mark.slow
def test_one_gib_video_streams_in_flat_memory() -> None:
    with cli_simulator("--time-scale", "1000", "--video-size", str(GIB)) as sim:
        job = sim.client.post("/v1/videos", json={"prompt": "a long take"}).json()
        done = wait_for(
            lambda: (lambda b: b if b["status"] == "succeeded" else None)(
                sim.client.get(f"/v1/images/{job['id']}").json()
            ),
            timeout=20,
        )
        before = sim.memory_kib()
        digest, received = hashlib.sha256(), 0
        with httpx.stream("GET", done["output_video_url"], trust_env=False, timeout=60) as response:
            assert response.status_code == 200
            assert int(response.headers["content-length"]) == GIB
            for chunk in response.iter_raw(1 << 20):
                received += len(chunk)
                digest.update(chunk)
        after = sim.memory_kib()
        growth = (after["VmHWM"] - before["VmHWM"]) * 1024
        print(
            f"\n1 GiB stream: peak RSS {before['VmHWM'] / 1024:.1f} -> "
            f"{after['VmHWM'] / 1024:.1f} MiB (growth {growth / MB:.2f} MB)"
        )
        assert received == GIB
        assert growth < 50 * MB
        truth = sim.client.get("/_sim/truth").json()["jobs"][0]["outputs"][0]
        assert truth["size"] == GIB and truth["sha256"] == digest.hexdigest()


def _create_images(url: str, count: int) -> None:
    with httpx.Client(base_url=url, headers={"X-Api-Key": API_KEY}, trust_env=False) as client:
        for i in range(count):
            assert client.post("/v1/images", json={"prompt": f"job {i}"}).status_code == 201


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ten_thousand_jobs_complete_and_memory_stays_flat() -> None:
    ttl, margin = 86400, 3600
    args = (
        "--time-scale",
        "100",
        "--no-rate-limits",
        "--output-size",
        "4096",
        "--ledger-retention",
        str(ttl + margin),
    )
    with cli_simulator(*args) as sim:
        peaks = []
        for wave in (1, 2):
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda n: _create_images(sim.url, n), [1250] * 8))

            def finished(expected: int = 10_000 * wave) -> bool:
                jobs = sim.client.get("/_sim/stats").json()["jobs"]
                return jobs.get("finished_succeeded", 0) == expected

            wait_for(finished, timeout=30, interval=0.2)
            sim.client.post("/_sim/advance", json={"seconds": ttl + margin + 60})
            # The engine's own periodic prune may get there first; count the total, not this call.
            assert sim.client.post("/_sim/prune").json()["jobs_live"] == 0
            state = sim.client.get("/_sim/stats").json()["state"]
            assert state["jobs_pruned"] == 10_000 * wave
            peaks.append(sim.memory_kib())
        print(f"\n10k jobs: after wave 1 {peaks[0]}, after wave 2 {peaks[1]} (KiB)")
        state = sim.client.get("/_sim/stats").json()["state"]
        assert state["jobs_live"] == 0 and state["jobs_pruned"] == 20_000
        assert (peaks[1]["VmHWM"] - peaks[0]["VmHWM"]) * 1024 < 10 * MB
        assert (peaks[1]["VmRSS"] - peaks[0]["VmRSS"]) * 1024 < 10 * MB
