"""The simulated threads platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: threads`` names (`archiver simulate threads`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class ThreadsSimulator(Simulator):
    name = "threads"

    def main(self, argv: list[str]) -> None:
        # Scaffolding while issue 13 is under way: the fake lands with the API connector.
        raise SystemExit("the threads simulator is not written yet")


SIMULATOR = ThreadsSimulator()
