"""The simulated instagram platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: instagram`` names (`archiver simulate instagram`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class InstagramSimulator(Simulator):
    name = "instagram"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.instagram.sim.fake import main

        # What `archiver simulate instagram` serves unless told otherwise (later options win).
        main(["--port", "8765", "--media", "30", "--followers", "50", *argv])


SIMULATOR = InstagramSimulator()
