"""aurous-receiver: receive, track, archive and audit Aurous Labs generation jobs.

The service is wired in `receiver.web.app.create_app`; `ARCHITECTURE.md` tells which room holds
what. Importing this package imports nothing else, so the command line starts quickly.
"""

import sys

# Optional parts of libraries the service loads but never uses, marked missing before those
# libraries load, so that each takes the path it has for an install without them (about
# 4 MiB of an idle receiver's memory, bench/idle.py):
# - httpx's command-line client (`httpx._main`: rich, pygments): `httpx.main` then says that
#   its dependencies are not installed;
# - uvicorn's watchfiles reloader: `--reload`, which `serve` does not offer, would poll files.
# Only where the library is not loaded yet: a process that loaded it first keeps it whole.
UNUSED_PARTS = {"httpx": "httpx._main", "uvicorn": "uvicorn.supervisors.watchfilesreload"}
for _library, _part in UNUSED_PARTS.items():
    if _library not in sys.modules:
        sys.modules[_part] = None  # type: ignore[assignment]

__all__: list[str] = []
