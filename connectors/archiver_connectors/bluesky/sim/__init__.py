"""The simulated bluesky platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: bluesky`` names (`archiver simulate bluesky`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class BlueskySimulator(Simulator):
    name = "bluesky"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.bluesky.sim.fake import main

        # What `archiver simulate bluesky` serves unless told otherwise (later options win).
        main(["--port", "8765", "--posts", "30", "--followers", "50", *argv])


SIMULATOR = BlueskySimulator()
