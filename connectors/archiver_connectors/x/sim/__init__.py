"""The simulated X platform: a fake of the pay-per-use API v2, its OAuth 2.0 pages and its
media CDN (fake.py), faithful to ../shared/platforms/x-twitter.md, serving the world of
x/sim/export.py, whose archive of the same account ``--write-export`` writes.

``SIMULATOR`` is what the entry point ``archiver.simulators: x`` names (`archiver simulate x`,
`archiver demo --platform x`).
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


class XDemo(DemoWorld):
    """A fake X served on 127.0.0.1 with one account, for `archiver demo`: its API within a
    $1.00 budget, then the account's archive of the same world (nothing counted twice)."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.x.sim.fake import FakeX, FakeXConfig, serve

        self.fake = FakeX(FakeXConfig(posts=posts, followers=followers, seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {"max_cost_usd": 1.0}
        self.username = str(self.fake.owner.handle)
        self.auth_hint = f"(client id {self.fake.config.client_id}, client secret {self.fake.config.client_secret})"
        self.simulate_options = ["--posts", str(posts), "--followers", str(followers), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        import httpx

        from archiver_connectors.x.api import TOKEN_PATH, XTokens

        config = self.fake.config
        secrets.set("x", account_name, "client_id", config.client_id)
        secrets.set("x", account_name, "client_secret", config.client_secret)
        with httpx.Client() as client:
            XTokens(secrets, account_name, self.base_url + TOKEN_PATH, client).store(self.fake.issue_tokens())

    def export_file(self, folder: Path) -> Path:
        from archiver_connectors.x.sim.fake import write_matching_export

        return write_matching_export(self.fake, folder / "twitter-archive.zip")


class XSimulator(Simulator):
    name = "x"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.x.sim.fake import main

        # What `archiver simulate x` serves unless told otherwise (later options win).
        main(["--port", "8765", *argv])

    def start_demo(self, *, posts: int, followers: int) -> XDemo:
        return XDemo(posts=posts, followers=followers)


SIMULATOR = XSimulator()
