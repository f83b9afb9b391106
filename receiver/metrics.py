"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from receiver.jobs.lifecycle import ObservationResult, is_known, source_kind
from storage.records import JobEndings, OutputCounts
from storage.states import OutputState

__all__ = ["HTTP_METRICS", "HttpMetrics", "Metrics"]


_MAX_UNKNOWN_LABELS = 20


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._unknown_seen: set[str] = set()
        self.deliveries = Counter(
            "receiver_webhook_deliveries",
            "Webhook requests by outcome and rejection reason",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.verify_seconds = Histogram(
            "receiver_webhook_verify_seconds",
            "Time to verify a webhook signature",
            registry=self.registry,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
        )
        self.transitions = Counter(
            "receiver_job_transitions",
            "Job status changes applied, by source and new status",
            ["source", "status"],
            registry=self.registry,
        )
        self.unknown_statuses = Counter(
            "receiver_unknown_statuses",
            "Observations carrying a status the receiver does not know",
            ["status"],
            registry=self.registry,
        )
        self.outputs = Gauge(
            "receiver_outputs", "Outputs by archive state", ["state"], registry=self.registry
        )
        self.archive_at_risk = Gauge(
            "receiver_archive_at_risk",
            "Outputs not archived whose deadline is within the hour",
            registry=self.registry,
        )
        self.archive_bytes = Gauge(
            "receiver_archive_bytes", "Bytes of archived outputs", registry=self.registry
        )

        self.missed_webhooks = Gauge(
            "receiver_missed_webhook_rate",
            "Of the jobs finished that day (UTC) that were expected to send a webhook (created "
            "through the receiver, or first heard of by webhook), the share whose end came by "
            "poll or sweep",
            ["day"],
            registry=self.registry,
        )
        self.aurous_requests = Gauge(
            "receiver_aurous_requests",
            "Requests sent to Aurous since start, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.poll_budget_used = Gauge(
            "receiver_poll_budget_used",
            "GETs drawn from the per-minute budget since start",
            registry=self.registry,
        )
        self.ledger_sync_lag = Gauge(
            "receiver_ledger_sync_lag_seconds",
            "Seconds since the last complete ledger sync started (-1: never)",
            registry=self.registry,
        )
        self.push_attempts = Counter(
            "receiver_relay_push_attempts",
            "Attempts to push an event to a destination, by result (delivered, retry, failed)",
            ["result"],
            registry=self.registry,
        )
        self.push_lag = Gauge(
            "receiver_relay_oldest_pending_seconds",
            "Age of the oldest event not yet delivered to a destination (0: none pending)",
            ["destination"],
            registry=self.registry,
        )
        self.findings_open = Gauge(
            "receiver_findings_open",
            "Open spend findings by code",
            ["code"],
            registry=self.registry,
        )

    def set_missed_webhooks(self, days: dict[str, JobEndings]) -> None:
        """One sample per day in `days` on which a job expected a webhook; days that left the
        window, or have no such job, are dropped rather than left at an old value."""
        self.missed_webhooks.clear()
        for day, endings in days.items():
            rate = endings.missed_webhook_rate
            if rate is not None:
                self.missed_webhooks.labels(day).set(rate)

    def set_output_counts(self, counts: OutputCounts) -> None:
        for state in OutputState:
            self.outputs.labels(state).set(getattr(counts, state))
        self.archive_at_risk.set(counts.at_risk)
        self.archive_bytes.set(counts.bytes)

    def count_job_news(self, results: Sequence[ObservationResult]) -> None:
        """A subscriber to the job tracker: transitions applied, unknown statuses seen. Label
        values that come from upstream text are bounded: the known statuses, the first few
        unknown ones, then `other`."""
        for result in results:
            if result.applied:
                status = result.status if is_known(result.status) else "other"
                self.transitions.labels(source_kind(result.source), status).inc()
            if not is_known(result.observed):
                self.unknown_statuses.labels(self._unknown_label(result.observed)).inc()

    def _unknown_label(self, status: str) -> str:
        label = status[:32]
        if label in self._unknown_seen or len(self._unknown_seen) < _MAX_UNKNOWN_LABELS:
            self._unknown_seen.add(label)
            return label
        return "other"


class HttpMetrics:
    """Requests by method, route template and status, in the process-wide registry.

    Each label set's children are looked up once and kept, so a request costs two or three
    increments rather than a `labels()` lookup (a lock and a tuple) per metric.
    """

    _LABELS = ("method", "path", "status_code", "app_name")
    _APP_NAME = "aurous_receiver"

    def __init__(self) -> None:
        self.requests = Counter(
            "receiver_http_requests_total", "Total requests", self._LABELS, registry=REGISTRY
        )
        self.errors = Counter(
            "receiver_http_requests_error_total",
            "Total errors in requests",
            self._LABELS,
            registry=REGISTRY,
        )
        self.seconds = Histogram(
            "receiver_http_request_duration_seconds",
            "Request duration, in seconds",
            self._LABELS,
            registry=REGISTRY,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any | None]] = {}

    def record(self, method: str, path: str, status: int, seconds: float) -> None:
        children = self._children.get((method, path, status))
        if children is None:
            values = (method, path, str(status), self._APP_NAME)
            error = self.errors.labels(*values) if status >= 500 else None
            children = (self.requests.labels(*values), self.seconds.labels(*values), error)
            self._children[(method, path, status)] = children
        count, duration, error = children
        count.inc()
        duration.observe(seconds)
        if error is not None:
            error.inc()


HTTP_METRICS = HttpMetrics()
