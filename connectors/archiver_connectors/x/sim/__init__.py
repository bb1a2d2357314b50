"""The simulated X platform: a fake of the pay-per-use API v2, its OAuth 2.0 pages and its
media CDN (fake.py), faithful to ../shared/platforms/x-twitter.md, serving the world of
x/sim/export.py, whose archive of the same account ``--write-export`` writes.

``SIMULATOR`` is what the entry point ``archiver.simulators: x`` names (`archiver simulate x`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class XSimulator(Simulator):
    name = "x"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.x.sim.fake import main

        # What `archiver simulate x` serves unless told otherwise (later options win).
        main(["--port", "8765", *argv])


SIMULATOR = XSimulator()
