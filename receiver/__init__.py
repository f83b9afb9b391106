"""aurous-receiver: receive, track, archive and audit Aurous Labs generation jobs."""

from receiver.app import create_app
from receiver.settings import Settings

__all__ = ["Settings", "create_app"]
