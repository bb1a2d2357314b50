"""The simulated youtube platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: youtube`` names (`archiver simulate youtube`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class YouTubeSimulator(Simulator):
    name = "youtube"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.youtube.sim.fake import main

        # What `archiver simulate youtube` serves unless told otherwise (later options win).
        main(["--port", "8765", "--videos", "30", "--followers", "50", *argv])


SIMULATOR = YouTubeSimulator()
