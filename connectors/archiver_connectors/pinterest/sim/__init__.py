"""The simulated pinterest platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: pinterest`` names (`archiver simulate pinterest`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class PinterestSimulator(Simulator):
    name = "pinterest"

    def main(self, argv: list[str]) -> None:
        # Scaffolding while issue 14 is under way: the fake lands with the API connector.
        raise SystemExit("the pinterest simulator is not written yet")


SIMULATOR = PinterestSimulator()
