"""The simulated bluesky platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: bluesky`` names (`archiver simulate
bluesky`, `archiver demo --platform bluesky`).
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


class BlueskyDemo(DemoWorld):
    """A fake Bluesky (PLC directory, PDS and AppView in one) served on 127.0.0.1, for `archiver
    demo`: an app-password login as `archiver auth bluesky` does it, the API run, then the
    account's repository CAR file ("Export my data"), which adds nothing the API had."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.bluesky.sim.fake import FakeBluesky, FakeBlueskyConfig, serve

        self.fake = FakeBluesky(FakeBlueskyConfig(posts=posts, followers=followers, seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {"handle": self.fake.user_handle, "plc_url": self.base_url, "appview_url": self.base_url}
        self.username = self.fake.user_handle
        self.auth_hint = (f"(`printf %s {self.fake.config.app_password} | archiver auth bluesky "
                          f"--handle {self.fake.user_handle} --token-stdin`)")
        self.simulate_options = ["--posts", str(posts), "--followers", str(followers), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        from archiver.config import AccountConfig
        from archiver_connectors.bluesky import BlueskyConnector

        # The connector's own login (handle -> DID -> PDS, createSession): it keeps the
        # session, never the app password.
        account = AccountConfig(name=account_name, platform="bluesky", base_url=self.base_url,
                                options=dict(self.settings))
        BlueskyConnector(account, secrets).authorize(echo=lambda line: None, token=self.fake.config.app_password)

    def export_file(self, folder: Path) -> Path:
        path = folder / f"{self.fake.user_handle}-repo.car"
        path.write_bytes(self.fake.repo_car())
        return path


class BlueskySimulator(Simulator):
    name = "bluesky"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.bluesky.sim.fake import main

        # What `archiver simulate bluesky` serves unless told otherwise (later options win).
        main(["--port", "8765", "--posts", "30", "--followers", "50", *argv])

    def start_demo(self, *, posts: int, followers: int) -> BlueskyDemo:
        return BlueskyDemo(posts=posts, followers=followers)


SIMULATOR = BlueskySimulator()
