"""The simulated pinterest platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: pinterest`` names (`archiver simulate
pinterest`, `archiver demo --platform pinterest`).
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


class PinterestDemo(DemoWorld):
    """A fake Pinterest served on 127.0.0.1 with one account, for `archiver demo`."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.pinterest.sim.fake import FakePinterest, FakePinterestConfig, serve

        self.fake = FakePinterest(FakePinterestConfig(posts=posts, followers=followers, seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {}
        self.username = str(self.fake.user["username"])
        self.auth_hint = f"(app id {self.fake.config.client_id}, secret key {self.fake.config.client_secret})"
        self.simulate_options = ["--posts", str(posts), "--followers", str(followers), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        import httpx

        from archiver_connectors.pinterest.api import TOKEN_PATH, PinterestTokens

        config = self.fake.config
        secrets.set("pinterest", account_name, "client_id", config.client_id)
        secrets.set("pinterest", account_name, "client_secret", config.client_secret)
        with httpx.Client() as client:
            PinterestTokens(secrets, account_name, self.base_url + TOKEN_PATH, client).store(self.fake.issue_tokens())

    def export_file(self, folder: Path) -> Path:
        from archiver_connectors.pinterest.sim.fake import write_matching_export

        return write_matching_export(self.fake, folder / "pinterest.zip")


class PinterestSimulator(Simulator):
    name = "pinterest"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.pinterest.sim.fake import main

        # What `archiver simulate pinterest` serves unless told otherwise (later options win).
        main(["--port", "8765", "--posts", "30", "--followers", "50", *argv])

    def start_demo(self, *, posts: int, followers: int) -> PinterestDemo:
        return PinterestDemo(posts=posts, followers=followers)


SIMULATOR = PinterestSimulator()
