from __future__ import annotations

from pathlib import Path

import pytest

from receiver.settings import Settings, SettingsError, parse_duration


def test_defaults_follow_the_design() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite+aiosqlite:///{Path('data').resolve()}/receiver.db"
    assert settings.media_url == f"file://{Path('data').resolve()}/media"
    assert settings.signature_tolerance_s == 300
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.output_ttl_s == 86400
    assert settings.aurous_base_url == "https://api.aurous-labs.com"


def test_environment_is_read_once_into_the_object() -> None:
    settings = Settings.from_env(
        {
            "RECEIVER_DATA_DIR": "/srv/r",
            "AUROUS_WEBHOOK_SECRET": "whsec_a, whsec_b,",
            "RECEIVER_SIGNATURE_TOLERANCE_S": "60",
            "RECEIVER_DOWNLOAD_HOSTS": "cdn.example",
            "AUROUS_BASE_URL": "http://127.0.0.1:9000/",
        }
    )
    assert settings.data_dir == Path("/srv/r")
    assert settings.bootstrap_secrets == ("whsec_a", "whsec_b")
    assert settings.signature_tolerance_s == 60
    assert settings.download_hosts == ("cdn.example",)
    assert settings.aurous_base_url == "http://127.0.0.1:9000"
    assert settings.database_url.endswith("/srv/r/receiver.db")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RECEIVER_TICK_S", "soon"),
        ("RECEIVER_MAX_BODY_BYTES", "-1"),
        ("RECEIVER_LOG_FORMAT", "xml"),
        ("AUROUS_BASE_URL", "ftp://x"),
        # values past any clock, column or what S3 signs: a 500 or a traceback later
        ("RECEIVER_OUTPUT_TTL_S", "99999999999999"),
        ("RECEIVER_LEASE_S", "99999999999999"),
        ("RECEIVER_LINK_TTL_S", "691200"),
        ("RECEIVER_EVENT_RETENTION_DAYS", "99999999"),
        ("RECEIVER_TICK_S", "nan"),
        ("RECEIVER_HEADER_TIMEOUT_S", "inf"),
        ("RECEIVER_SWEEP_INTERVAL_S", "1e400"),
        ("AUROUS_BASE_URL", "https://"),
        ("AUROUS_VERSION", "latest"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name if name != "RECEIVER_LOG_FORMAT" else "LOG"):
        Settings.from_env({name: value})


def test_durations() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("24h") == 86400
    assert parse_duration("7d") == 604800
    with pytest.raises(SettingsError):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("name", "value"),
    [("RECEIVER_RELAY_RETRY_SCALE", "1e9"), ("RECEIVER_SWEEP_INTERVAL_S", "1e9")],
)
def test_scales_and_intervals_are_bounded_too(name: str, value: str) -> None:
    """A retry scale of 1e9 put the next push attempt past year 9999: an OverflowError."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})
