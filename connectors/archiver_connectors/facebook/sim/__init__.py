"""The simulated facebook platform: a fake Graph API faithful to ../shared/platforms/facebook.md,
for tests and demos (a Page and the person's profile, so both kinds of account can be tried).

``SIMULATOR`` is what the entry point ``archiver.simulators: facebook`` names (`archiver simulate facebook`).
"""

from __future__ import annotations

from archiver.sim import Simulator


class FacebookSimulator(Simulator):
    name = "facebook"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.facebook.sim.fake import main

        # What `archiver simulate facebook` serves unless told otherwise (later options win).
        main(["--port", "8765", "--posts", "20", "--followers", "120", *argv])


SIMULATOR = FacebookSimulator()
