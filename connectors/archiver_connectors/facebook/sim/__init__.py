"""The simulated facebook platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: facebook`` names (`archiver simulate facebook`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class FacebookSimulator(Simulator):
    name = "facebook"

    def main(self, argv: list[str]) -> None:
        # Scaffolding while issue 13 is under way: the fake lands with the API connector.
        raise SystemExit("the facebook simulator is not written yet")


SIMULATOR = FacebookSimulator()
