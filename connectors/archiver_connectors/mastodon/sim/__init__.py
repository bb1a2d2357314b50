"""The simulated mastodon platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: mastodon`` names (`archiver simulate
mastodon`, `archiver demo --platform mastodon`).
"""

from __future__ import annotations

from archiver.sim import DemoWorld, Simulator


class MastodonDemo(DemoWorld):
    """A fake Mastodon instance served on 127.0.0.1 with one account, for `archiver demo`:
    the API only (the fake writes no archive export of its own account; sim/export.py builds
    archives of another, made-up one)."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.mastodon.sim.fake import FakeMastodon, FakeMastodonConfig, serve

        self.fake = FakeMastodon(FakeMastodonConfig(statuses=posts, followers=followers,
                                                    following=max(1, followers // 2), seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {}
        self.username = self.fake.config.username
        self.auth_hint = "(`archiver auth mastodon` registers its app on the instance: no app of yours needed)"

    def store_credentials(self, secrets, account_name: str) -> None:
        from archiver.config import AccountConfig
        from archiver_connectors.mastodon import MastodonConnector

        # As `archiver auth mastodon --token-stdin` with a token made under Preferences →
        # Development: the connector checks it on the instance and keeps it.
        account = AccountConfig(name=account_name, platform="mastodon", base_url=self.base_url)
        MastodonConnector(account, secrets).authorize(echo=lambda line: None, token=self.fake.issue_token())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MastodonSimulator(Simulator):
    name = "mastodon"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.mastodon.sim.fake import main

        # What `archiver simulate mastodon` serves unless told otherwise (later options win).
        main(["--port", "8765", "--statuses", "30", "--followers", "50", *argv])

    def start_demo(self, *, posts: int, followers: int) -> MastodonDemo:
        return MastodonDemo(posts=posts, followers=followers)


SIMULATOR = MastodonSimulator()
