"""The simulated LinkedIn platform: a fake of the Member Data Portability API and its OAuth
pages (fake.py), faithful to ../shared/platforms/linkedin.md, and the matching "Get a copy of
your data" export of the same member (export.py), for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: linkedin`` names (`archiver simulate
linkedin`, `archiver demo --platform linkedin`).
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


class LinkedInDemo(DemoWorld):
    """A fake LinkedIn served on 127.0.0.1 with one member (posts, connections), for
    `archiver demo`: the Member Data Portability API, then the same member's export."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.linkedin.sim.fake import FakeLinkedIn, FakeLinkedInConfig, serve

        self.fake = FakeLinkedIn(FakeLinkedInConfig(posts=posts, followers=followers, seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {}
        self.username = self.fake.world.owner.vanity
        self.auth_hint = f"(client id {self.fake.config.client_id}, client secret {self.fake.config.client_secret})"
        self.simulate_options = ["--posts", str(posts), "--followers", str(followers), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        import httpx

        from archiver_connectors.linkedin.api import TOKEN_PATH, LinkedInTokens

        config = self.fake.config
        secrets.set("linkedin", account_name, "client_id", config.client_id)
        secrets.set("linkedin", account_name, "client_secret", config.client_secret)
        with httpx.Client() as client:
            LinkedInTokens(secrets, account_name, self.base_url + TOKEN_PATH, client).store(self.fake.issue_token())

    def export_file(self, folder: Path) -> Path:
        from archiver_connectors.linkedin.sim.fake import write_matching_export

        return write_matching_export(self.fake, str(folder / "Basic_LinkedInDataExport_demo.zip"))


class LinkedInSimulator(Simulator):
    name = "linkedin"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.linkedin.sim.fake import main

        # What `archiver simulate linkedin` serves unless told otherwise (later options win).
        main(["--port", "8765", "--posts", "12", "--followers", "30", *argv])

    def start_demo(self, *, posts: int, followers: int) -> LinkedInDemo:
        return LinkedInDemo(posts=posts, followers=followers)


SIMULATOR = LinkedInSimulator()
