"""One line a minute at INFO while work happens: webhook deliveries by outcome, outputs
archived (and their bytes), the archive backlog, pushes sent. A minute without work writes
nothing, so an idle receiver's log stays quiet and a busy one's says what it did.

Deliveries and pushes are read from the Prometheus counters (their growth since the last
line); the archiver tells each round's outcome; the backlog is the `receiver_outputs` gauge
that the gauges tick keeps fresh.
"""

from __future__ import annotations

import logging
from collections import Counter

from prometheus_client import Counter as PrometheusCounter

from receiver.archive.archiver import ArchiveOutcome
from receiver.metrics import Metrics
from storage.states import OutputState

__all__ = ["SUMMARY_EVERY_S", "ActivitySummary"]

log = logging.getLogger(__name__)

SUMMARY_EVERY_S = 60.0
# Outcomes in the order an operator reads them: the good news first.
_DELIVERY_ORDER = ("accepted", "duplicate", "quarantined", "rejected")
_PUSH_ORDER = ("delivered", "retry", "failed")
_UNITS = ("KB", "MB", "GB", "TB")


class ActivitySummary:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._deliveries_before: Counter[str] = Counter()
        self._pushes_before: Counter[str] = Counter()
        self._archive = ArchiveOutcome()

    def count_archive_round(self, round_: ArchiveOutcome) -> None:
        """A subscriber to the archiver (counts only: the errors have their own lines)."""
        self._archive.archived += round_.archived
        self._archive.bytes += round_.bytes
        self._archive.retry += round_.retry
        self._archive.lost += round_.lost
        self._archive.none += round_.none

    async def log_last_minute(self) -> None:
        """The ticker's work every `SUMMARY_EVERY_S`: the line, if anything happened."""
        deliveries = _totals_by(self._metrics.deliveries, "outcome")
        pushes = _totals_by(self._metrics.push_attempts, "result")
        new_deliveries = deliveries - self._deliveries_before
        new_pushes = pushes - self._pushes_before
        archive, self._archive = self._archive, ArchiveOutcome()
        self._deliveries_before, self._pushes_before = deliveries, pushes
        if not (new_deliveries or new_pushes or archive.handled):
            return
        log.info(
            "last minute: webhooks %s; outputs %s; archive backlog %s; pushes %s",
            _tally(new_deliveries, _DELIVERY_ORDER),
            _archive_tally(archive),
            self._backlog(),
            _tally(new_pushes, _PUSH_ORDER),
        )

    def _backlog(self) -> str:
        pending = self._metrics.registry.get_sample_value(
            "receiver_outputs", {"state": OutputState.PENDING}
        )
        return "unknown" if pending is None else str(int(pending))


def _totals_by(counter: PrometheusCounter, label: str) -> Counter[str]:
    """A labelled counter's totals since start, summed by one of its labels."""
    totals: Counter[str] = Counter()
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[sample.labels[label]] += int(sample.value)
    return totals


def _tally(counts: Counter[str], order: tuple[str, ...]) -> str:
    named = [*order, *sorted(set(counts) - set(order))]
    parts = [f"{counts[name]} {name}" for name in named if counts[name]]
    return ", ".join(parts) or "none"


def _archive_tally(archive: ArchiveOutcome) -> str:
    parts = [f"{archive.archived} archived ({_size(archive.bytes)})"] if archive.archived else []
    parts += [f"{archive.retry} to retry"] if archive.retry else []
    parts += [f"{archive.lost} lost"] if archive.lost else []
    parts += [f"{archive.none} with nothing to archive"] if archive.none else []
    return ", ".join(parts) or "none"


def _size(n: int) -> str:
    size, unit = float(n), "B"
    for larger in _UNITS:
        if size < 1000:
            break
        size, unit = size / 1000, larger
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
