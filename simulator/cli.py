"""`simulate`: run the simulated Aurous API (attached as `aurous-receiver simulate`)."""

from __future__ import annotations

from typing import Any

import click

from simulator.config import SimulatorConfig
from simulator.fields import is_loopback_url

__all__ = ["simulate"]

RATE = click.FloatRange(0.0, 1.0)


def _rate(flag: str, help_text: str) -> Any:
    return click.option(flag, type=RATE, default=0.0, show_default=True, help=help_text)


def _check_webhook(url: str | None, secret: str | None) -> None:
    if url is None:
        if secret is not None:
            raise click.UsageError("--webhook-secret needs --webhook-url")
        return
    if not (url.startswith("https://") or (url.startswith("http://") and is_loopback_url(url))):
        raise click.BadParameter(
            "must be https://, or http:// on a loopback host", param_hint="--webhook-url"
        )
    if secret is not None and not secret.startswith("whsec_"):
        raise click.BadParameter("must start with whsec_", param_hint="--webhook-secret")


_FAULT_OPTIONS = [
    _rate("--drop-rate", "Share of webhook deliveries silently never sent."),
    _rate("--duplicate-rate", "Share of deliveries sent twice with the same event id."),
    click.option(
        "--reorder",
        "reorder_rate",
        type=RATE,
        default=0.0,
        is_flag=False,
        flag_value=0.5,
        help="Share of deliveries held back 5-60 s (bare flag: 0.5).",
    ),
    _rate("--bad-signature-rate", "Share of deliveries whose first attempt is mis-signed."),
    _rate("--get-5xx-rate", "Share of GETs on /v1/images* and outputs answered 5xx."),
    _rate("--rate-limit-storm", "Share of those GETs answered 429 with Retry-After."),
    _rate("--truncate-rate", "Share of output downloads cut short."),
    click.option(
        "--slow-download",
        type=click.FloatRange(0.0),
        default=0.0,
        help="Cap output downloads at this many bytes per second (0 = off).",
    ),
    click.option(
        "--output-ttl",
        "output_ttl_s",
        type=click.FloatRange(0.0),
        default=86400.0,
        show_default=True,
        help="Simulated seconds outputs live after completed_at.",
    ),
    _rate("--bill-failed-rate", "Share of failed/cancelled jobs charged anyway."),
    _rate("--skip-release-rate", "Share of failed/cancelled jobs whose hold is never released."),
    _rate("--overcharge-rate", "Share of successful jobs charged more than cost.amount."),
    _rate("--failed-rate", "Share of jobs that fail."),
    _rate("--moderation-rate", "Share of jobs rejected by moderation."),
    _rate("--expired-rate", "Share of jobs that time out (expired; failed in the 5-value set)."),
    click.option(
        "--extended-statuses",
        is_flag=True,
        help="Emit queued/expired/moderation_rejected (7-value set).",
    ),
    click.option(
        "--redirect-outputs",
        is_flag=True,
        help="Image output URLs answer 302 to a second URL that serves the bytes.",
    ),
    click.option(
        "--output-size",
        type=click.IntRange(1),
        default=64 * 1024,
        show_default=True,
        help="Approximate bytes per image output.",
    ),
    click.option(
        "--video-size",
        type=click.IntRange(1),
        default=1024 * 1024,
        show_default=True,
        help="Bytes per video output (gigabytes are fine: outputs are streamed).",
    ),
    click.option(
        "--rotation-grace",
        "rotation_grace_s",
        type=click.FloatRange(0.0),
        default=86400.0,
        show_default=True,
        help="Seconds the previous secret keeps signing after rotate_secret.",
    ),
    click.option(
        "--dual-sign/--no-dual-sign",
        default=True,
        show_default=True,
        help="During a grace, sign with new and old secrets (off: old only).",
    ),
    click.option(
        "--sign-callbacks/--no-sign-callbacks",
        default=True,
        show_default=True,
        help="Sign per-request webhook_url callbacks with the active endpoint secret.",
    ),
]


def _with_faults(command: Any) -> Any:
    for option in reversed(_FAULT_OPTIONS):
        command = option(command)
    return command


@click.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8900, show_default=True)
@click.option("--api-key", envvar="AUROUS_API_KEY", required=True, help="Key clients must send.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option("--webhook-url", default=None, help="Pre-register an endpoint for every event.")
@click.option("--webhook-secret", default=None, help="Its secret (whsec_…); generated if unset.")
@click.option("--public-url", default=None, help="Base URL put into output URLs.")
@click.option("--start-balance", type=float, default=1_000_000.0, show_default=True)
@click.option("--balance-low-threshold", type=float, default=100.0, show_default=True)
@click.option(
    "--ledger-retention",
    "ledger_retention_s",
    type=click.FloatRange(0.0),
    default=0.0,
    show_default=True,
    help="Simulated seconds ledger rows are kept (0 = forever).",
)
@click.option(
    "--prune-margin",
    "prune_margin_s",
    type=click.FloatRange(0.0),
    default=3600.0,
    show_default=True,
    help="Jobs are forgotten this long after their outputs expire.",
)
@click.option("--rate-limits/--no-rate-limits", default=True, show_default=True)
@click.option(
    "--rate-limit-multiplier",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Scale every bucket's burst and refill.",
)
@click.option("--log-level", default="warning", show_default=True)
@_with_faults
def simulate(host: str, port: int, log_level: str, **options: Any) -> None:
    """Run a simulated Aurous Labs API with fault injection."""
    import uvicorn

    from simulator.app import create_simulator_app
    from simulator.webhooks import new_secret

    _check_webhook(options["webhook_url"], options["webhook_secret"])
    if options["webhook_url"] and not options["webhook_secret"]:
        options["webhook_secret"] = new_secret()
    if options["public_url"] is None and host not in {"0.0.0.0", "::"}:  # noqa: S104
        options["public_url"] = f"http://{host}:{port}" if port else None
    try:
        config = SimulatorConfig(**options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(
        f"Aurous simulator on http://{host}:{port} (seed {config.seed}, "
        f"time scale {config.time_scale}x)"
    )
    if config.webhook_url:
        click.echo(f"Webhook endpoint {config.webhook_url} secret {config.webhook_secret}")
    uvicorn.run(
        create_simulator_app(config),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
    )
