"""The simulated mastodon platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: mastodon`` names (`archiver simulate mastodon`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class MastodonSimulator(Simulator):
    name = "mastodon"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.mastodon.sim.fake import main

        # What `archiver simulate mastodon` serves unless told otherwise (later options win).
        main(["--port", "8765", "--statuses", "30", "--followers", "50", *argv])


SIMULATOR = MastodonSimulator()
