"""Logging: readable lines by default, JSON lines with RECEIVER_LOG_FORMAT=json. Every line
logged while a request is handled carries its Receiver-Request-Id. `RateLimitedLog` is for the
lines that whoever can reach the service can cause."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = ["REQUEST_ID", "RateLimitedLog", "configure_logging", "current_request_id"]


class RateLimitedLog:
    """At most one line per reason every `every_s` seconds; the next line of that reason says
    how many were left out meanwhile. A flood of bad requests must not become a flood of log
    lines too. The reasons are a small fixed set (the callers' own names), never request text."""

    def __init__(
        self,
        logger: logging.Logger,
        every_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def warning(self, reason: str, message: str, *args: object) -> None:
        self.log(logging.WARNING, reason, message, *args)

    def log(self, level: int, reason: str, message: str, *args: object) -> None:
        now = self._clock()
        last = self._last.get(reason)
        if last is not None and now - last < self._every_s:
            self._left_out[reason] = self._left_out.get(reason, 0) + 1
            return
        self._last[reason] = now
        left_out = self._left_out.pop(reason, 0)
        # formatted here, not by logging: the suffix must not meet a stray % in the message
        text = message % args if args else message
        suffix = f" ({left_out} more like this since the last such line)" if left_out else ""
        self._logger.log(level, "%s%s", text, suffix)


REQUEST_ID: ContextVar[str | None] = ContextVar("receiver_request_id", default=None)
"""The Receiver-Request-Id of the request being handled: set by the web layer, read here."""


def current_request_id() -> str | None:
    return REQUEST_ID.get()


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "apscheduler", "alembic.runtime"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
