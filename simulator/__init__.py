"""A faithful fake of the Aurous Labs API with fault injection (tests, demo, benchmarks).

Imports nothing from `receiver` or `storage`: it signs, counts and stores with its own code.

    app = create_simulator_app(SimulatorConfig(api_key="k", seed=1, time_scale=100))
    with tests.support.live_server.live_server(app) as server: ...   # server.url

or from a shell: `python -m simulator --api-key KEY --port 8900 [fault flags]`. Knobs can be
changed while it runs through the control API under /_sim/ (see simulator/control.py).
"""

from simulator.app import create_simulator_app
from simulator.cli import simulate
from simulator.config import SimulatorConfig
from simulator.webhooks import sign, signature_header

__all__ = ["SimulatorConfig", "create_simulator_app", "sign", "signature_header", "simulate"]
