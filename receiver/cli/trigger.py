"""`aurous-receiver trigger`: send a running receiver a synthetic Aurous delivery, signed with the
newest active secret of its keyring, and say what it answered (like `stripe trigger`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from receiver.cli.common import run, settings_from, with_db
from receiver.webhooks.synthetic import EVENT_TYPES, JOB_ID_PREFIXES, job_kind_of

if TYPE_CHECKING:  # imported by the command itself, so that --help starts quickly
    from receiver.settings import Settings
    from storage.db import Database

__all__ = ["trigger"]

WEBHOOK_PATH = "/webhooks/aurous"  # receiver/web/routes/webhooks.py
DEFAULT_URL = f"http://127.0.0.1:8000{WEBHOOK_PATH}"
_ANSWERS = ("accepted", "duplicate", "quarantined")


@click.command(epilog=f"EVENT_TYPE is one of {', '.join(EVENT_TYPES)}.")
@click.argument("event_type", type=click.Choice(EVENT_TYPES), metavar="EVENT_TYPE")
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    help=f"The receiver's webhook URL; http://HOST:PORT alone means its {WEBHOOK_PATH}.",
)
@click.option("--job-id", help="The job an image.* or video.* event is about (img_…, vid_…).")
@click.option("--event-id", help="The event id (evt_…); new by default. Reuse one: duplicate.")
@click.pass_context
def trigger(
    ctx: click.Context, event_type: str, url: str, job_id: str | None, event_id: str | None
) -> None:
    """Send a signed synthetic EVENT_TYPE delivery to a running receiver and print its answer.

    The delivery is signed with the newest active secret in the keyring of these settings
    (RECEIVER_DATA_DIR, RECEIVER_DATABASE_URL), as Aurous would sign it, and marked
    `synthetic: true` like Aurous's own test fire. A job event's job is tracked like any other;
    its output URLs hold nothing, so archiving them fails.

    Prints `accepted`, `duplicate` or `quarantined` with the HTTP status; an error answer or an
    unreachable receiver exits 1.
    """
    from receiver.ids import new_id
    from receiver.webhooks.synthetic import synthetic_event

    target = _webhook_url(url)
    kind = job_kind_of(event_type)
    if kind is None and job_id is not None:
        raise click.BadParameter(f"{event_type} is not about a job", param_hint="--job-id")
    if event_id is not None:
        event_id = _checked_event_id(event_id)
    if kind is not None and job_id is not None:
        job_id = _checked_job_id(job_id, kind)
    elif kind is not None and event_id is not None:
        job_id = _job_id_of(event_id, JOB_ID_PREFIXES[kind])
    elif kind is not None:
        job_id = new_id(JOB_ID_PREFIXES[kind])
    event_id = event_id or new_id("evt_")

    settings = settings_from(ctx)
    secret = run(with_db(settings, lambda db: _newest_secret(db, settings)))
    if secret is None:
        raise click.ClickException(
            "the keyring has no active webhook secret to sign with; add one with "
            "`aurous-receiver secrets add whsec_…` (the receiver must use the same settings)"
        )
    now = datetime.now(UTC)
    body = synthetic_event(
        event_type,
        event_id=event_id,
        job_id=job_id,
        now=now,
        aurous_base_url=settings.aurous_base_url,
    )
    status, answer = _post(target, body, secret, int(now.timestamp()))
    about = f" about {job_id}" if job_id else ""
    click.echo(f"{answer} (HTTP {status}): {event_type} {event_id}{about}")


def _webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter("must be an http:// or https:// URL", param_hint="--url")
    return url.rstrip("/") + WEBHOOK_PATH if parts.path in ("", "/") else url


def _checked_job_id(job_id: str, kind: str) -> str:
    from receiver.generation import JOB_ID_PATTERN

    prefix = JOB_ID_PREFIXES[kind]
    if not job_id.startswith(prefix) or not JOB_ID_PATTERN.match(job_id):
        raise click.BadParameter(f"{kind} job ids look like {prefix}…", param_hint="--job-id")
    return job_id


def _job_id_of(event_id: str, prefix: str) -> str:
    """A job id that follows from the event id: an event sent again is about the same job, as
    a redelivery by Aurous is."""
    import hashlib

    return prefix + hashlib.sha256(event_id.encode()).hexdigest()[:26].upper()


def _checked_event_id(event_id: str) -> str:
    from receiver.generation import MAX_ID_LENGTH

    # Longer or unprintable ids are not taken as the event's key by the receiver, so the same
    # id sent twice would not be a duplicate.
    if not event_id or len(event_id) > MAX_ID_LENGTH or not event_id.isprintable():
        raise click.BadParameter(
            f"1 to {MAX_ID_LENGTH} printable characters", param_hint="--event-id"
        )
    return event_id


async def _newest_secret(db: Database, settings: Settings) -> str | None:
    from receiver.runtime import MASTER_KEY_FILE, load_secret_box
    from receiver.webhooks.keyring import SecretStore

    if not settings.master_key and not (settings.data_dir / MASTER_KEY_FILE).exists():
        return None  # no secret was ever stored here; reading the keyring would make a key
    keyring = await SecretStore(db, await load_secret_box(db, settings)).reload()
    active = keyring.active(time.time())
    if not active:
        return None
    newest = max(active, key=lambda entry: entry.secret_id or 0)
    return newest.secret.decode()


def _post(url: str, body: bytes, secret: str, timestamp: int) -> tuple[int, str]:
    """The HTTP status and the receiver's answer; an error answer or no answer raises."""
    import httpx

    from receiver.webhooks.signing import HEADER, sign

    headers = {
        "Content-Type": "application/json",
        "User-Agent": "aurous-receiver-trigger",
        HEADER: sign(body, [secret], timestamp),
    }
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise click.ClickException(
            f"no answer from {url}: {reason}; is `aurous-receiver serve` running there?"
        ) from None
    status, error = _fields(response, "status", "error")
    if response.is_success and status in _ANSWERS:
        return response.status_code, str(status)
    if isinstance(error, dict):  # the receiver's error envelope
        detail = f"{error.get('code')}: {error.get('message')}"
    else:
        detail = " ".join(response.text.split())[:200] or response.reason_phrase
    raise click.ClickException(f"HTTP {response.status_code} from {url}: {detail}")


def _fields(response: Any, *names: str) -> list[object]:
    """These fields of a JSON object answer; None for each if the answer is something else."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    return [answer.get(name) if isinstance(answer, dict) else None for name in names]
