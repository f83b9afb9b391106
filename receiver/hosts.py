"""What a host name says about where it is."""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback_name"]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback_name(host: str) -> bool:
    """True for a name or address of this machine alone (no lookup: names are taken as said)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
