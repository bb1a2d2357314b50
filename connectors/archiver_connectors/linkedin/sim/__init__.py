"""The simulated LinkedIn platform: a fake of the Member Data Portability API and its OAuth
pages (fake.py), faithful to ../shared/platforms/linkedin.md, and the matching "Get a copy of
your data" export of the same member (export.py), for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: linkedin`` names (`archiver simulate linkedin`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class LinkedInSimulator(Simulator):
    name = "linkedin"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.linkedin.sim.fake import main

        # What `archiver simulate linkedin` serves unless told otherwise (later options win).
        main(["--port", "8765", "--posts", "12", "--followers", "30", *argv])


SIMULATOR = LinkedInSimulator()
