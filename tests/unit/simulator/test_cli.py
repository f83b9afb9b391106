"""The click command maps flags onto SimulatorConfig (the server itself is not started)."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from simulator import simulate


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen["config"] = app.state.simulator.config
        seen.update(kwargs)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return seen


def test_flags_reach_the_config(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(
        simulate,
        [
            "--port",
            "9999",
            "--api-key",
            "k",
            "--seed",
            "3",
            "--time-scale",
            "50",
            "--webhook-url",
            "http://127.0.0.1:8000/webhooks/aurous",
            "--webhook-secret",
            "whsec_abc",
            "--drop-rate",
            "0.1",
            "--duplicate-rate",
            "0.2",
            "--reorder",
            "--bad-signature-rate",
            "0.3",
            "--get-5xx-rate",
            "0.05",
            "--rate-limit-storm",
            "0.01",
            "--truncate-rate",
            "0.02",
            "--slow-download",
            "1000",
            "--output-ttl",
            "600",
            "--bill-failed-rate",
            "0.1",
            "--skip-release-rate",
            "0.1",
            "--overcharge-rate",
            "0.1",
            "--failed-rate",
            "0.2",
            "--moderation-rate",
            "0.1",
            "--extended-statuses",
            "--redirect-outputs",
            "--output-size",
            "5000",
            "--video-size",
            "9000",
            "--rotation-grace",
            "0",
            "--no-dual-sign",
            "--no-sign-callbacks",
        ],
    )
    assert result.exit_code == 0, result.output
    config = captured["config"]
    assert (config.api_key, config.seed, config.time_scale) == ("k", 3, 50)
    assert config.reorder_rate == 0.5 and config.drop_rate == 0.1
    assert config.output_ttl_s == 600 and config.rotation_grace_s == 0
    assert config.extended_statuses and config.redirect_outputs
    assert not config.dual_sign and not config.sign_callbacks
    assert config.public_url == "http://127.0.0.1:9999"
    assert captured["port"] == 9999


def test_http_webhook_only_for_loopback(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(
        simulate, ["--api-key", "k", "--webhook-url", "http://example.com/hook"]
    )
    assert result.exit_code != 0 and "webhook-url" in result.output
    assert "config" not in captured


def test_webhook_secret_generated(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(
        simulate, ["--api-key", "k", "--webhook-url", "https://example.com/hook"]
    )
    assert result.exit_code == 0
    assert captured["config"].webhook_secret.startswith("whsec_")
    assert captured["config"].webhook_secret in result.output
