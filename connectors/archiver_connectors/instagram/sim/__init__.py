"""The simulated instagram platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: instagram`` names (`archiver simulate
instagram`, `archiver demo --platform instagram`).
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


class InstagramDemo(DemoWorld):
    """A fake Instagram served on 127.0.0.1 with one creator account, for `archiver demo`: the
    API (which lists no followers, only counts), then the account's "Download your information"
    export of the same posts, with the follower lists only the export has."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.instagram.sim.fake import FakeInstagram, FakeInstagramConfig, serve

        self.fake = FakeInstagram(FakeInstagramConfig(media=posts, followers=followers,
                                                      following=max(1, followers // 2), seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {}
        self.username = str(self.fake.user["username"])
        self.auth_hint = f"(app id {self.fake.config.client_id}, app secret {self.fake.config.client_secret})"
        self.simulate_options = ["--media", str(posts), "--followers", str(followers), "--following", str(max(1,
                                followers // 2)), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        import httpx

        from archiver_connectors.instagram.api import InstagramTokens

        config = self.fake.config
        secrets.set("instagram", account_name, "client_id", config.client_id)
        secrets.set("instagram", account_name, "client_secret", config.client_secret)
        tokens = self.fake.issue_tokens()
        with httpx.Client() as client:
            InstagramTokens(secrets, account_name, self.base_url, client).store(
                tokens, user_id=tokens["user_id"], permissions=tokens["permissions"])

    def export_file(self, folder: Path) -> Path:
        from archiver_connectors.instagram.sim.fake import write_matching_export

        return write_matching_export(self.fake, str(folder / "instagram-demo.zip"))


class InstagramSimulator(Simulator):
    name = "instagram"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.instagram.sim.fake import main

        # What `archiver simulate instagram` serves unless told otherwise (later options win).
        main(["--port", "8765", "--media", "30", "--followers", "50", *argv])

    def start_demo(self, *, posts: int, followers: int) -> InstagramDemo:
        return InstagramDemo(posts=posts, followers=followers)


SIMULATOR = InstagramSimulator()
