"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
