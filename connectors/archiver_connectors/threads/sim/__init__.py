"""The simulated threads platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: threads`` names (`archiver simulate threads`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class ThreadsSimulator(Simulator):
    name = "threads"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.threads.sim.fake import main

        # What `archiver simulate threads` serves unless told otherwise (later options win).
        main(["--port", "8765", "--posts", "30", "--followers", "50", *argv])


SIMULATOR = ThreadsSimulator()
