"""Issue 4 end to end: the archiver against the simulator, real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from receiver.cli import cli
from receiver.settings import Settings
from tests.support.harness import (
    ReceiverProcess,
    free_port,
    receiver_settings,
    settings_env,
    start_receiver,
    start_simulator,
    truth_by_id,
    wait_for,
)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def settled(receiver: Any, expected: int) -> bool:
    jobs = receiver.jobs()
    if len(jobs) < expected or any(not job["terminal"] for job in jobs):
        return False
    return all(o["state"] != "pending" for job in jobs for o in job["outputs"])


def env_for(settings: Settings) -> dict[str, str]:
    return settings_env(settings)


def test_every_succeeded_output_is_archived_with_the_true_hash(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    port = free_port()
    sim = start_simulator(
        stack,
        receiver_port=port,
        truncate_rate=0.05,
        get_5xx_rate=0.10,
        failed_rate=0.05,
        output_size=200_000,
        video_size=2_000_000,
    )
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim)
    receiver = start_receiver(stack, settings, port=port)
    sim.create_direct("image", 180, {"prompt": "archive me", "count": 1})
    sim.create_direct("video", 20, {"prompt": "archive me too", "duration": 2})

    wait_for(lambda: settled(receiver, 200), timeout=180, interval=1)

    truth = truth_by_id(sim)
    jobs = {job["id"]: job for job in receiver.jobs()}
    archived = 0
    for job_id, true_job in truth.items():
        job = jobs[job_id]
        assert job["status"] == true_job["status"], job_id
        if true_job["status"] != "succeeded":
            continue
        for true_output in true_job["outputs"]:
            output = job["outputs"][true_output["index"]]
            assert output["state"] == "archived", (job_id, output)
            assert output["sha256"] == true_output["sha256"]
            assert output["size"] == true_output["size"]
            archived += 1
    stats = sim.stats()
    assert stats["faults"]["truncate"] > 0
    assert stats["faults"]["get_5xx"] > 0
    assert archived >= 150

    result = CliRunner().invoke(cli, ["archive", "verify"], env=env_for(settings))
    assert result.exit_code == 0, result.output
    assert " 0 missing or corrupt" in result.output

    some = next(j for j in jobs.values() if j["status"] == "succeeded" and j["kind"] == "image")
    served = receiver.client.get(some["outputs"][0]["url"], headers={"Range": "bytes=0-7"})
    assert served.status_code == 206
    assert served.content == b"\x89PNG\r\n\x1a\n"
    assert served.headers["ETag"] == f'"{some["outputs"][0]["sha256"]}"'


def test_an_output_that_expired_first_ends_lost_without_a_retry_storm(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    port = free_port()
    sim = start_simulator(stack, receiver_port=port)
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim, background=False)
    receiver = start_receiver(stack, settings, port=port)
    [job_id] = sim.create_direct("image", 1)
    wait_for(
        lambda: receiver.client.get(f"/jobs/{job_id}").json().get("status") == "succeeded",
        timeout=30,
    )
    sim.advance(86400 + 60)  # the receiver was "down" past the output's lifetime

    for _ in range(3):  # three sync runs: the first gives up, the others must not retry
        result = CliRunner().invoke(cli, ["sync"], env=env_for(settings))
        assert result.exit_code == 0, result.output

    output = receiver.client.get(f"/jobs/{job_id}").json()["outputs"][0]
    assert output["state"] == "lost"
    assert "410" in output["last_error"]
    assert sim.stats()["outputs"]["expired_served_410"] <= 2  # the URL, then once refreshed
    metrics = receiver.client.get("/metrics").text
    assert 'receiver_outputs{state="lost"} 1.0' in metrics


def _spool_size(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in (data_dir / "spool").glob("*.part"))


def _media_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "media").rglob("*") if p.is_file()]


def test_kill_9_mid_download_then_restart_archives_it_whole(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    size = 300 * 1024 * 1024
    port = free_port()
    sim = start_simulator(stack, receiver_port=port, video_size=size, slow_download=40e6)
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim, lease_s=3)
    receiver = ReceiverProcess(settings, port)
    stack.callback(receiver.stop)
    receiver.start()
    [job_id] = sim.create_direct("video", 1, {"prompt": "long", "duration": 2})
    wait_for(lambda: _spool_size(settings.data_dir) > 60 * 1024 * 1024, timeout=60, interval=0.1)
    receiver.kill()
    assert _media_files(settings.data_dir) == []  # nothing half-written is visible

    sim.faults(slow_download=0)
    receiver.start()
    output = wait_for(
        lambda: (
            (o := receiver.get(f"/jobs/{job_id}").get("outputs"))
            and o[0]["state"] == "archived"
            and o[0]
        ),
        timeout=120,
        interval=0.5,
    )
    true_output = truth_by_id(sim)[job_id]["outputs"][0]
    assert output["sha256"] == true_output["sha256"]
    assert output["size"] == size
    assert [p.name for p in _media_files(settings.data_dir)] == [true_output["sha256"]]
    assert list((settings.data_dir / "spool").glob("*")) == []


@pytest.mark.slow
def test_a_1_gib_video_archives_in_bounded_memory(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    port = free_port()
    sim = start_simulator(stack, receiver_port=port, video_size=1 << 30)
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim)
    receiver = ReceiverProcess(settings, port)
    stack.callback(receiver.stop)
    receiver.start()
    [warm_up] = sim.create_direct("image", 1)
    wait_for(
        lambda: (
            (o := receiver.get(f"/jobs/{warm_up}").get("outputs")) and o[0]["state"] == "archived"
        ),
        timeout=60,
        interval=0.2,
    )
    before = receiver.peak_rss_kib()
    [job_id] = sim.create_direct("video", 1, {"prompt": "big", "duration": 2})
    output = wait_for(
        lambda: (
            (o := receiver.get(f"/jobs/{job_id}").get("outputs"))
            and o[0]["state"] == "archived"
            and o[0]
        ),
        timeout=240,
        interval=0.5,
    )
    growth_mib = (receiver.peak_rss_kib() - before) / 1024
    print(f"1 GiB archive: peak RSS {before / 1024:.1f} MiB -> +{growth_mib:.1f} MiB")
    assert output["size"] == 1 << 30
    assert output["sha256"] == truth_by_id(sim)[job_id]["outputs"][0]["sha256"]
    assert growth_mib < 64
