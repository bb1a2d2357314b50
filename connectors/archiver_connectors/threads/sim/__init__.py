"""The simulated threads platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: threads`` names (`archiver simulate
threads`, `archiver demo --platform threads`).
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


class ThreadsDemo(DemoWorld):
    """A fake Threads served on 127.0.0.1 with one account, for `archiver demo`: the API (only
    counts of followers), then the account's export of the same posts with the follower lists."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.threads.sim.fake import FakeThreads, FakeThreadsConfig, serve

        self.fake = FakeThreads(FakeThreadsConfig(posts=posts, followers=followers, seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {}
        self.username = str(self.fake.user["username"])
        self.auth_hint = f"(app id {self.fake.config.client_id}, app secret {self.fake.config.client_secret})"
        self.simulate_options = ["--posts", str(posts), "--followers", str(followers), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        import httpx

        from archiver_connectors.threads.api import ThreadsTokens

        config = self.fake.config
        secrets.set("threads", account_name, "client_id", config.client_id)
        secrets.set("threads", account_name, "client_secret", config.client_secret)
        tokens = self.fake.issue_tokens()
        with httpx.Client() as client:
            ThreadsTokens(secrets, account_name, self.base_url, client).store(
                tokens, user_id=tokens["user_id"], permissions=tokens["permissions"])

    def export_file(self, folder: Path) -> Path:
        from archiver_connectors.threads.sim.fake import write_matching_export

        return write_matching_export(self.fake, folder / "threads-demo.zip")


class ThreadsSimulator(Simulator):
    name = "threads"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.threads.sim.fake import main

        # What `archiver simulate threads` serves unless told otherwise (later options win).
        main(["--port", "8765", "--posts", "30", "--followers", "50", *argv])

    def start_demo(self, *, posts: int, followers: int) -> ThreadsDemo:
        return ThreadsDemo(posts=posts, followers=followers)


SIMULATOR = ThreadsSimulator()
