"""A faithful fake of the Aurous Labs API with fault injection (tests, demo, benchmarks).

Imports nothing from `receiver` or `storage`: it signs, counts and stores with its own code.

    app = create_simulator_app(SimulatorConfig(api_key="k", seed=1, time_scale=100))
    with tests.support.live_server.live_server(app) as server: ...   # server.url

or from a shell: `python -m simulator --api-key KEY --port 8900 [fault flags]`. Knobs can be
changed while it runs through the control API under /_sim/ (see simulator/control.py).
"""

from typing import TYPE_CHECKING, Any

from simulator.cli import simulate
from simulator.config import SimulatorConfig
from simulator.webhooks import sign, signature_header

if TYPE_CHECKING:
    from simulator.app import create_simulator_app

__all__ = ["SimulatorConfig", "create_simulator_app", "sign", "signature_header", "simulate"]


def __getattr__(name: str) -> Any:
    # The app (and the web framework under it) is imported when first asked for, so that
    # `simulate --help` and `aurous-receiver simulate --help` start quickly.
    if name == "create_simulator_app":
        from simulator.app import create_simulator_app

        return create_simulator_app
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
