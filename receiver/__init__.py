"""aurous-receiver: receive, track, archive and audit Aurous Labs generation jobs.

The service is wired in `receiver.web.app.create_app`; `ARCHITECTURE.md` tells which room holds
what. Importing this package imports nothing else, so the command line starts quickly.
"""

__all__: list[str] = []
