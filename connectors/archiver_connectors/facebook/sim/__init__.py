"""The simulated facebook platform: a fake Graph API faithful to ../shared/platforms/facebook.md,
for tests and demos (a Page and the person's profile, so both kinds of account can be tried).

``SIMULATOR`` is what the entry point ``archiver.simulators: facebook`` names (`archiver simulate
facebook`, `archiver demo --platform facebook`).
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


class FacebookDemo(DemoWorld):
    """A fake Facebook served on 127.0.0.1, for `archiver demo`: the person's own profile (an
    account without ``page``) through the Graph API, then their "Download your information"
    export of the same posts, with friends and followers (lists the API does not give)."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.facebook.sim.fake import FakeFacebook, FakeFacebookConfig, serve

        self.fake = FakeFacebook(FakeFacebookConfig(posts=2, profile_posts=posts, followers=followers,
                                                    fans=followers, seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {}
        self.username = str(self.fake.person["name"])
        self.auth_hint = f"(app id {self.fake.config.client_id}, app secret {self.fake.config.client_secret})"
        self.simulate_options = ["--posts", "2", "--profile-posts", str(posts), "--followers", str(followers),
                                "--fans", str(followers), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        from archiver_connectors.facebook.api import FacebookApi, FacebookTokens

        config = self.fake.config
        secrets.set("facebook", account_name, "client_id", config.client_id)
        secrets.set("facebook", account_name, "client_secret", config.client_secret)
        # What `archiver auth facebook` stores after the login window: the connector's own
        # record (who logged in, what they granted) built from a long-lived user token.
        tokens = FacebookTokens(secrets, account_name)
        api = FacebookApi(self.base_url, tokens)
        try:
            record = api.account_record(self.fake.issue_user_token(), kind="profile", page_wanted=None,
                                        account=account_name)
        finally:
            api.close()
        tokens.save(record)
        self.fake.reset_usage()   # those calls were `archiver auth`'s

    def export_file(self, folder: Path) -> Path:
        from archiver_connectors.facebook.sim.fake import write_matching_export

        name = str(self.fake.person["name"]).lower().replace(" ", ".")
        return write_matching_export(self.fake, str(folder / f"facebook-{name}-demo.zip"))


class FacebookSimulator(Simulator):
    name = "facebook"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.facebook.sim.fake import main

        # What `archiver simulate facebook` serves unless told otherwise (later options win).
        main(["--port", "8765", "--posts", "20", "--followers", "120", *argv])

    def start_demo(self, *, posts: int, followers: int) -> FacebookDemo:
        return FacebookDemo(posts=posts, followers=followers)


SIMULATOR = FacebookSimulator()
