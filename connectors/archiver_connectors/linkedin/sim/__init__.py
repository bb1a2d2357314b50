"""The simulated linkedin platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: linkedin`` names (`archiver simulate linkedin`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class LinkedInSimulator(Simulator):
    name = "linkedin"

    def main(self, argv: list[str]) -> None:
        # Scaffolding while issue 14 is under way: the fake lands with the API connector.
        raise SystemExit("the linkedin simulator is not written yet")


SIMULATOR = LinkedInSimulator()
