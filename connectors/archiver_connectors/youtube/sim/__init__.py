"""The simulated youtube platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: youtube`` names (`archiver simulate
youtube`, `archiver demo --platform youtube`).
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


class YouTubeDemo(DemoWorld):
    """A fake YouTube served on 127.0.0.1 with one channel, for `archiver demo`: the Data API,
    then the channel's Google Takeout of the same uploads (each merges with its API row)."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.youtube.sim.fake import FakeYouTube, FakeYouTubeConfig, serve

        self.fake = FakeYouTube(FakeYouTubeConfig(videos=posts, followers=followers, comment_threads=min(posts, 6),
                                                  seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {}
        self.username = str(self.fake.channel["customUrl"]).lstrip("@")
        self.auth_hint = f"(client id {self.fake.config.client_id}, client secret {self.fake.config.client_secret})"
        self.simulate_options = ["--videos", str(posts), "--followers", str(followers), "--comment-threads",
                                str(min(posts, 6)), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        import httpx

        from archiver_connectors.youtube.api import YouTubeTokens

        config = self.fake.config
        secrets.set("youtube", account_name, "client_id", config.client_id)
        secrets.set("youtube", account_name, "client_secret", config.client_secret)
        with httpx.Client() as client:
            YouTubeTokens(secrets, account_name, self.base_url + "/token", client).store(self.fake.issue_tokens())

    def export_file(self, folder: Path) -> Path:
        from archiver_connectors.youtube.sim.takeout import build_takeout

        return build_takeout(folder / "takeout", world=self.fake.portability_world())[0]


class YouTubeSimulator(Simulator):
    name = "youtube"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.youtube.sim.fake import main

        # What `archiver simulate youtube` serves unless told otherwise (later options win).
        main(["--port", "8765", "--videos", "30", "--followers", "50", *argv])

    def start_demo(self, *, posts: int, followers: int) -> YouTubeDemo:
        return YouTubeDemo(posts=posts, followers=followers)


SIMULATOR = YouTubeSimulator()
