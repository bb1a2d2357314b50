"""The simulated tiktok platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: tiktok`` names: `archiver simulate
tiktok` and `archiver demo` (TikTok's is the default demo) use it.
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


class TikTokDemo(DemoWorld):
    """A fake TikTok served on 127.0.0.1 with one account, for `archiver demo`."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve

        self.fake = FakeTikTok(FakeTikTokConfig(videos=posts, followers=followers, seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {}
        self.username = self.fake.user.get("username", "demo")
        self.auth_hint = (f"(client key {self.fake.config.client_key}, "
                          f"secret {self.fake.config.client_secret})")
        self.simulate_options = ["--videos", str(posts), "--followers", str(followers), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        import httpx

        from archiver_connectors.tiktok.api import TikTokTokens

        config = self.fake.config
        secrets.set("tiktok", account_name, "client_key", config.client_key)
        secrets.set("tiktok", account_name, "client_secret", config.client_secret)
        TikTokTokens(secrets, account_name, f"{self.base_url}/v2/oauth/token/", httpx.Client()).store(
            self.fake.issue_tokens())

    def export_file(self, folder: Path) -> Path:
        path = folder / "TikTok_Data_simulated.zip"
        path.write_bytes(self.fake.export_zip(layout="new"))
        return path


class TikTokSimulator(Simulator):
    name = "tiktok"
    demo_default = True

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.tiktok.sim.fake import main

        # What `archiver simulate tiktok` serves unless told otherwise (later options win).
        main(["--port", "8765", "--videos", "30", "--followers", "50", *argv])

    def start_demo(self, *, posts: int, followers: int) -> TikTokDemo:
        return TikTokDemo(posts=posts, followers=followers)


SIMULATOR = TikTokSimulator()
