"""Warnings when the service starts, about set-ups that run but cannot do their job: a keyring
without an active secret (every webhook is answered 401), no AUROUS_API_KEY (webhooks only),
and a download host that does not resolve (every archive attempt would fail, and say so only
on the job pages)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import Counter

from receiver.archive.fetch import HostPolicy
from receiver.runtime import Runtime
from receiver.settings import Settings

__all__ = ["RESOLVE_TIMEOUT_S", "warn_about_download_hosts", "warn_about_setup"]

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_S = 3.0


async def warn_about_setup(runtime: Runtime) -> None:
    """The checks that need no network: the keyring and the API key."""
    # listed, not loaded: a load would mark the verifier's cache fresh, and a secret added
    # from the CLI just after start would then be refused until the cache ages
    states = Counter(secret.state for secret in await runtime.secrets.list())
    if not states["active"]:
        expired = states["expired"]
        log.warning(
            "the webhook keyring has no active secret%s: every webhook will be answered 401 "
            "until one is added with `aurous-receiver secrets add whsec_…` or "
            "AUROUS_WEBHOOK_SECRET at start",
            f" ({expired} expired)" if expired else "",
        )
    if not runtime.settings.aurous_api_key:
        log.warning(
            "AUROUS_API_KEY is not set: webhooks only. No polls or sweeps (a missed webhook "
            "stays missed), no creates through the receiver, no ledger sync or spend audit, "
            "no fresh output URLs after a 410"
        )


async def warn_about_download_hosts(
    settings: Settings, timeout_s: float = RESOLVE_TIMEOUT_S
) -> None:
    """Resolve the hosts outputs are downloaded from (the Aurous API's and
    RECEIVER_DOWNLOAD_HOSTS); warn about each that does not. Loopback names and IP literals
    need no lookup."""
    policy = HostPolicy.for_base(settings.aurous_base_url, settings.download_hosts)
    hosts = sorted(host for host in policy.hosts if _needs_lookup(host))
    problems = await asyncio.gather(*(_resolve(host, timeout_s) for host in hosts))
    for host, problem in zip(hosts, problems, strict=True):
        if problem is not None:
            log.warning(
                "download host %s does not resolve (%s): outputs from it cannot be archived "
                "until it does; check DNS, AUROUS_BASE_URL and RECEIVER_DOWNLOAD_HOSTS",
                host,
                problem,
            )


def _needs_lookup(host: str) -> bool:
    if not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


async def _resolve(host: str, timeout_s: float) -> str | None:
    """Why `host` does not resolve, or None if it does."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except OSError as error:
        return str(error)
    return None
