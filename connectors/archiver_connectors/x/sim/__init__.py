"""The simulated X platform: a fake API v2 faithful to ../shared/platforms/x-twitter.md, for
tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: x`` names (`archiver simulate x`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class XSimulator(Simulator):
    name = "x"

    def main(self, argv: list[str]) -> None:
        # Scaffolding while issue 15 is under way: the fake lands with the API connector.
        raise SystemExit("the x simulator is not written yet")


SIMULATOR = XSimulator()
