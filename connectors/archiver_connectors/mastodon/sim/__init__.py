"""The simulated mastodon platform: a fake server faithful to ../shared/platforms, for tests and demos.

``SIMULATOR`` is what the entry point ``archiver.simulators: mastodon`` names (`archiver simulate
mastodon`, `archiver demo --platform mastodon`).
"""

from __future__ import annotations

from pathlib import Path

from archiver.sim import DemoWorld, Simulator


def write_matching_archive(fake, path: Path) -> Path:
    """The owner's archive as the fake instance would write it now (sim/export.py's builder):
    the same statuses (ids, times, texts, visibility, edits, replies, boosts) and the same
    media bytes the API serves, so each merges with its API row (key: host and status id)."""
    import datetime as dt
    from urllib.parse import urlsplit

    from archiver_connectors.mastodon.sim.export import FakeMastodonAccount, write_archive
    from archiver_connectors.mastodon.sim.fake import fake_mp4, fake_png

    def iso(epoch: float) -> str:
        return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    owner = fake.accounts[fake.owner_id]
    avatar, header = fake.picture_path(fake.owner_id, "avatar"), fake.picture_path(fake.owner_id, "header")
    account = FakeMastodonAccount(
        domain=urlsplit(fake.base_url).hostname, username=owner["username"], display_name=owner["display_name"],
        summary=owner["note"], avatar=fake_png(avatar) if avatar else None, header=fake_png(header) if header else None,
        seed=fake.config.seed)
    own = sorted((s for s in fake.statuses.values() if s["account_id"] == fake.owner_id and not s["deleted"]),
                 key=lambda s: s["created_at"])
    for status in own:
        if status["reblog_of"]:
            account.statuses.append({"id": status["id"], "kind": "boost", "published": iso(status["created_at"]),
                                     "boost_of": fake._status_uri(fake.statuses[status["reblog_of"]])[0]})
            continue
        current = status["versions"][-1]
        parent = fake.statuses.get(status["in_reply_to_id"]) if status["in_reply_to_id"] else None
        account.statuses.append({
            "id": status["id"], "kind": "reply" if parent else "text", "published": iso(status["created_at"]),
            "content": current["content"].replace("{base}", fake.base_url), "visibility": status["visibility"],
            "summary": current["spoiler_text"] or None, "mentions": [],
            "in_reply_to": fake._status_uri(parent)[0] if parent else None,
            **({"updated": iso(current["created_at"])} if len(status["versions"]) > 1 else {}),
            "media": [{"id": m["id"], "name": m["description"], "width": 16, "height": 16,
                       "mediaType": "image/png" if m["type"] == "image" else "video/mp4",
                       "bytes": fake_png(m["path"]) if m["type"] == "image" else fake_mp4(m["path"], 8 * 1024)}
                      for m in status["media"]],
        })
    return write_archive(account, path)


class MastodonDemo(DemoWorld):
    """A fake Mastodon instance served on 127.0.0.1 with one account, for `archiver demo`: the
    API, then the account's archive ("Request your archive") of the same statuses."""

    def __init__(self, *, posts: int, followers: int) -> None:
        from archiver_connectors.mastodon.sim.fake import FakeMastodon, FakeMastodonConfig, serve

        self.fake = FakeMastodon(FakeMastodonConfig(statuses=posts, followers=followers,
                                                    following=max(1, followers // 2), seed=7))
        self.server, _thread = serve(self.fake)
        self.base_url = self.fake.base_url
        self.settings = {}
        self.username = self.fake.config.username
        self.auth_hint = "(`archiver auth mastodon` registers its app on the instance: no app of yours needed)"
        self.simulate_options = ["--statuses", str(posts), "--followers", str(followers), "--following", str(max(1,
                                followers // 2)), "--seed", "7"]

    def store_credentials(self, secrets, account_name: str) -> None:
        from archiver.config import AccountConfig
        from archiver_connectors.mastodon import MastodonConnector

        # As `archiver auth mastodon --token-stdin` with a token made under Preferences →
        # Development: the connector checks it on the instance and keeps it.
        account = AccountConfig(name=account_name, platform="mastodon", base_url=self.base_url)
        MastodonConnector(account, secrets).authorize(echo=lambda line: None, token=self.fake.issue_token())

    def export_file(self, folder: Path) -> Path:
        from archiver_connectors.mastodon.sim.export import archive_name

        return write_matching_archive(self.fake, folder / archive_name(seed=self.fake.config.seed))


class MastodonSimulator(Simulator):
    name = "mastodon"

    def main(self, argv: list[str]) -> None:
        from archiver_connectors.mastodon.sim.fake import main

        # What `archiver simulate mastodon` serves unless told otherwise (later options win).
        main(["--port", "8765", "--statuses", "30", "--followers", "50", *argv])

    def start_demo(self, *, posts: int, followers: int) -> MastodonDemo:
        return MastodonDemo(posts=posts, followers=followers)


SIMULATOR = MastodonSimulator()
