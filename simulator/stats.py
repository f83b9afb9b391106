"""Counters of what the simulator did and injected, served by GET /_sim/stats."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

__all__ = ["Stats"]

_GROUPS = ("faults", "deliveries", "requests", "gets", "creates", "jobs", "billing", "outputs")


class Stats:
    def __init__(self) -> None:
        self._groups: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for group in _GROUPS:
            self._groups[group] = Counter()

    def incr(self, group: str, name: str, amount: int = 1) -> None:
        self._groups[group][name] += amount

    def get(self, group: str, name: str) -> int:
        return self._groups[group][name]

    def snapshot(self) -> dict[str, Any]:
        return {group: dict(sorted(counter.items())) for group, counter in self._groups.items()}

    def reset(self) -> None:
        for counter in self._groups.values():
            counter.clear()
