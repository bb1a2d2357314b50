"""Other people's pictures and the profile's banner, end to end in-process: the real
connectors, runner, writer and media store against the stateful fakes (httpx.MockTransport).

What is proved, on archive rows and on the requests the fakes saw:
- a commenter's avatar lands as a file in media/ and people.avatar_sha256 names it;
  followers (Snapshot members) get no picture downloaded;
- the same avatar link again makes no request; a changed link downloads again; a link
  whose query alone changed (a signed CDN link) is the same picture; a query is never stored;
- a failing picture host gives one summary line for the run, and the comments still land;
- the owner's banner lands in accounts.banner_sha256, a changed one keeps the old in
  profile_versions;
- `archiver serve` shows a commenter's stored avatar as an <img> of /media/...; the report
  embeds it.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import httpx
import pytest

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.connector import Connector
from archiver.sync.jobs import Workspace, run_export
from archiver.net.client import RetryPolicy
from archiver.records import Comment, MediaRef, Page, Person
from archiver.secrets import open_secret_store
from archiver.sync.downloads import _AvatarProblems
from archiver.sync.runner import Runner
from archiver_connectors.mastodon.api import MastodonTokens
from archiver_connectors.mastodon.sim.fake import FakeMastodon, FakeMastodonConfig
from archiver_connectors.tiktok.sim.fake import fake_png

BASE = "http://127.0.0.1:8798"     # never contacted: MockTransport answers in-process


@pytest.fixture(autouse=True)
def ticking_clock(monkeypatch):
    """Rows are stamped to the second; these runs follow each other within one."""
    import datetime as dt

    ticks = itertools.count()
    start = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)

    def now():
        return (start + dt.timedelta(seconds=next(ticks))).strftime("%Y-%m-%dT%H:%M:%SZ")

    monkeypatch.setattr("archiver.archive.writer.now_utc", now)
    monkeypatch.setattr("archiver_connectors.mastodon.now_utc", now)
    monkeypatch.setattr("archiver.archive.lists.now_utc", now)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Mastodon:
    def __init__(self, tmp_path: Path, **config):
        self.fake = FakeMastodon(FakeMastodonConfig(**{"statuses": 6, "followers": 12, "following": 3,
                                                       "seed": 7, **config}), base_url=BASE)
        self.secrets = open_secret_store("memory")
        MastodonTokens(self.secrets, "main").save({"access_token": self.fake.issue_token(), "instance": BASE,
                                                   "account_id": "1091", "acct": "alice"})
        self.account = AccountConfig(name="main", platform="mastodon", base_url=BASE, options={})
        self.archive = Archive(tmp_path / "archive")
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)
        self.transport = httpx.MockTransport(self.fake.handle)

    def run(self, full: bool = False) -> dict:
        result = run_export(self.ws, self.account, full=full, transport=self.transport,
                            sleep=self.fake.advance, progress=lambda line: None)
        assert result["status"] == "ok", result
        return result

    def rows(self, sql: str, *params) -> list[tuple]:
        return self.archive.db.execute(sql, list(params)).fetchall()

    def picture_requests(self, since: int = 0) -> list[tuple]:
        """Requests for other people's avatars (the owner's own is under .../000/001/091/)."""
        return [e for e in list(self.fake.log)[since:] if "/accounts/avatars/" in e[1] and "/001/091/" not in e[1]]

    def commenters(self) -> dict[str, str]:
        """person_id -> fake account id of everyone who commented."""
        ids = {r[0] for r in self.rows("SELECT DISTINCT author_id FROM comments WHERE by_owner=0")}
        out = {}
        for account_id in self.fake.accounts:
            body = self.fake._account_json(account_id)
            key = body["acct"].lower() if "@" in body["acct"] else f"{body['acct'].lower()}@127.0.0.1"
            if key in ids:
                out[key] = account_id
        return out


# --------------------------------------------------------------------------- commenters' avatars


def test_commenters_avatars_are_stored_once_and_followers_get_none(tmp_path):
    m = Mastodon(tmp_path)
    m.run()
    commenters = m.commenters()
    assert len(commenters) >= 3
    with_picture = {key: acc for key, acc in commenters.items() if m.fake.picture_path(acc)}
    without = set(commenters) - set(with_picture)
    assert with_picture and without, "the fake world has commenters with and without a picture"
    for key, account_id in with_picture.items():
        path = m.fake.picture_path(account_id)
        (stored, source), = m.rows("SELECT avatar_sha256, avatar_source FROM people WHERE person_id=?", key)
        assert stored == sha(fake_png(path)) and source == BASE + path
        (file,), = m.rows("SELECT path FROM media WHERE sha256=?", stored)
        assert (m.archive.media_root / file).read_bytes() == fake_png(path)
    # The instance's default picture ("missing.png") is nobody's: not kept, never asked for.
    for key in without:
        assert m.rows("SELECT avatar_sha256 FROM people WHERE person_id=?", key) == [(None,)]
    assert not [e for e in m.fake.log if "missing" in e[1]]
    # Followers who never commented: a link at most, no file, no request.
    follower_ids = {f["account_id"] for f in m.fake.followers} - set(commenters.values())
    asked = {e[1] for e in m.picture_requests()}
    assert follower_ids and not any(m.fake.picture_path(a) in asked for a in follower_ids)
    assert m.rows("SELECT count(*) FROM people WHERE avatar_sha256 IS NOT NULL") == [(len(with_picture),)]
    # One request per picture.
    assert len(m.picture_requests()) == len(asked) == len(with_picture)


def test_same_link_is_not_fetched_again_a_changed_one_is(tmp_path):
    m = Mastodon(tmp_path)
    m.run()
    commenters = m.commenters()
    key, account_id = next((k, a) for k, a in commenters.items() if m.fake.picture_path(a))
    first_sha = m.rows("SELECT avatar_sha256 FROM people WHERE person_id=?", key)[0][0]
    post = next(s for s in m.fake.own_statuses() if not s["reblog_of"])

    # The same person comments twice more: their thread is read again, same link -> no request.
    mark = len(m.fake.log)
    m.fake.add_reply(post["id"], "<p>Again!</p>", author=account_id)
    m.fake.add_reply(post["id"], "<p>And again!</p>", author=account_id)
    m.run()
    assert [e for e in list(m.fake.log)[mark:] if e[1].endswith("/context")], "the thread was read again"
    assert m.picture_requests(mark) == []
    assert m.rows("SELECT count(*) FROM comments WHERE author_id=?", key)[0][0] >= 3

    # A new picture: a new link, downloaded once (two comments in one page: one request).
    new_path = m.fake.change_picture(account_id)
    mark = len(m.fake.log)
    m.fake.add_reply(post["id"], "<p>New face</p>", author=account_id)
    m.fake.add_reply(post["id"], "<p>Same new face</p>", author=account_id)
    m.run()
    assert [e[1] for e in m.picture_requests(mark)] == [new_path]
    (stored, source), = m.rows("SELECT avatar_sha256, avatar_source FROM people WHERE person_id=?", key)
    assert stored == sha(fake_png(new_path)) != first_sha and source == BASE + new_path


def test_failing_picture_host_is_one_summary_line_and_comments_still_land(tmp_path):
    m = Mastodon(tmp_path, statuses=10)
    m.fake.picture_fault = 503
    result = m.run()
    comments = m.rows("SELECT count(*) FROM comments WHERE by_owner=0")[0][0]
    replies = sum(1 for s in m.fake.statuses.values() if s["account_id"] != m.fake.owner_id
                  and s["in_reply_to_id"] and not s["deleted"])
    assert comments == replies > 3
    assert m.rows("SELECT count(*) FROM people WHERE avatar_sha256 IS NOT NULL") == [(0,)]
    # The owner's own avatar and banner are reported each on its own line; everyone
    # else's pictures share one.
    own = [e for e in result["errors"] if e["item"].startswith(("avatar of profile", "banner of profile"))]
    about_pictures = [e for e in result["errors"] if e not in own]
    assert len(own) == 2
    assert len(about_pictures) == 1 and about_pictures[0]["item"] == "avatars of other people"
    assert "HTTP 503" in about_pictures[0]["error"] and "tried again next run" in about_pictures[0]["error"]
    assert result["counts"]["avatars_failed"] >= 3
    # After a few failures on one host the rest wait for the next run: no request storm.
    # Each of those few is retried by the API's own policy (media and API calls share it).
    assert len({e[1] for e in m.picture_requests()}) == _AvatarProblems.GIVE_UP_AFTER
    assert len(m.picture_requests()) == _AvatarProblems.GIVE_UP_AFTER * RetryPolicy().attempts

    # The host is back: the next run that reads a thread fetches its commenters' pictures.
    m.fake.picture_fault = None
    post = next(s for s in m.fake.own_statuses() if not s["reblog_of"])
    m.fake.add_reply(post["id"], "<p>Back</p>")
    result = m.run()
    assert not [e for e in result["errors"] if "avatar" in e["item"]]
    assert m.rows("SELECT count(*) FROM people WHERE avatar_sha256 IS NOT NULL")[0][0] >= 1


# --------------------------------------------------------------------------- the runner's rules


class StandIn(Connector):
    """A connector that yields the pages it is given; its CDN is a MockTransport."""

    name, title, default_base_url = "standin", "Stand-in", BASE

    def __init__(self, account, pages_to_yield, cdn):
        super().__init__(account, open_secret_store("memory"), transport=httpx.MockTransport(cdn))
        self.to_yield = pages_to_yield

    def pages(self, ctx):
        yield from self.to_yield


def commenter(n: int, link: str) -> Comment:
    # (avatar_url is the connector's to scrub, as for any link it maps; here it names none.)
    person = Person(f"fan{n}", handle=f"fan{n}", avatar=MediaRef(link, "avatar"))
    return Comment(f"c{n}-{link[-6:]}", f"comment {n}", "2024-05-01T00:00:00Z", post_native_id="p1", author=person)


def test_signed_query_is_not_a_new_picture_and_is_never_stored(tmp_path):
    archive = Archive(tmp_path / "archive")
    account = AccountConfig(name="main", platform="standin", base_url=BASE, options={})
    asked: list[str] = []

    def cdn(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if not request.url.params.get("sig"):
            return httpx.Response(403)
        return httpx.Response(200, content=fake_png(request.url.path), headers={"Content-Type": "image/png"})

    def run(*records):
        connector = StandIn(account, [Page("comments", list(records))], cdn)
        result = Runner(archive, connector).run(connector.pages, kind="export", mode="incremental")
        assert result["status"] == "ok", result
        return result

    # Two comments by one person and a Person record for them: one request.
    run(commenter(1, "https://cdn.example/a/fan1.png?sig=one"), commenter(1, "https://cdn.example/a/fan1.png?sig=one"),
        Person("fan2", handle="fan2", avatar=MediaRef("https://cdn.example/a/fan2.png?sig=x", "avatar")))
    assert sorted(asked) == ["/a/fan1.png", "/a/fan2.png"]
    rows = archive.db.execute("SELECT person_id, avatar_sha256, avatar_source FROM people ORDER BY 1").fetchall()
    assert rows == [("fan1", sha(fake_png("/a/fan1.png")), "https://cdn.example/a/fan1.png"),
                    ("fan2", sha(fake_png("/a/fan2.png")), "https://cdn.example/a/fan2.png")]
    dump = "\n".join(str(r) for r in archive.db.execute("SELECT * FROM people").fetchall())
    assert "sig=" not in dump
    # A fresh signature on the same picture: no request.
    asked.clear()
    run(commenter(1, "https://cdn.example/a/fan1.png?sig=two"))
    assert asked == []
    # A failed download leaves the held picture; the run is ok and says so in one line.
    result = run(commenter(1, "https://cdn.example/b/fan1.png"))    # no sig: the CDN refuses
    assert asked == ["/b/fan1.png"]
    assert archive.db.execute("SELECT avatar_sha256 FROM people WHERE person_id='fan1'").fetchone()[0] == \
        sha(fake_png("/a/fan1.png"))
    assert [e["item"] for e in result["errors"]] == ["avatars of other people"]
    # Pictures refused one by one (403, 404: deleted, private) are not a host in trouble:
    # the others are still tried.
    asked.clear()
    result = run(*[commenter(n, f"https://cdn.example/c/fan{n}.png") for n in range(3, 8)],
                 commenter(8, "https://cdn.example/c/fan8.png?sig=ok"))
    assert len(asked) == 6 and "1 picture(s)" not in result["errors"][0]["error"]
    assert result["errors"][0]["error"].startswith("5 picture(s) could not be downloaded (first:")
    assert archive.db.execute("SELECT avatar_sha256 FROM people WHERE person_id='fan8'").fetchone()[0] == \
        sha(fake_png("/c/fan8.png"))


# --------------------------------------------------------------------------- banner


def test_mastodon_banner_lands_and_a_changed_one_keeps_the_old(tmp_path):
    m = Mastodon(tmp_path)
    m.run()
    first = m.fake.picture_path("1091", "header")
    assert m.rows("SELECT banner_sha256, avatar_sha256 FROM accounts") == [
        (sha(fake_png(first)), sha(fake_png(m.fake.picture_path("1091"))))]
    assert m.rows("SELECT count(*) FROM media WHERE sha256=?", sha(fake_png(first))) == [(1,)]
    second = m.fake.change_picture("1091", "header")
    m.run()
    assert m.rows("SELECT banner_sha256 FROM accounts") == [(sha(fake_png(second)),)]
    assert m.rows("SELECT banner_sha256 FROM profile_versions") == [(sha(fake_png(first)),)]
    # Both files stay in media/.
    for path in (first, second):
        (file,), = m.rows("SELECT path FROM media WHERE sha256=?", sha(fake_png(path)))
        assert (m.archive.media_root / file).is_file()


def test_mastodon_default_header_is_not_kept(tmp_path):
    m = Mastodon(tmp_path, owner_header=False)
    m.run()
    assert m.rows("SELECT banner_sha256 FROM accounts") == [(None,)]
    assert not [e for e in m.fake.log if "headers" in e[1]]


# --------------------------------------------------------------------------- shown in serve and the report


def test_serve_shows_a_commenters_stored_avatar_and_the_report_embeds_it(tmp_path):
    from archiver.views.serve import DATABASE
    from serve_process import serving

    m = Mastodon(tmp_path)
    m.run()
    key, account_id = next((k, a) for k, a in m.commenters().items() if m.fake.picture_path(a))
    stored = m.rows("SELECT avatar_sha256 FROM people WHERE person_id=?", key)[0][0]
    (file,), = m.rows("SELECT path FROM media WHERE sha256=?", stored)
    m.archive.close()
    with serving(m.archive) as base:
        html = httpx.get(f"{base}/{DATABASE}/people", params={"person_id": key}, timeout=10).text
        assert f'<img src="/media/{file}"' in html
        picture = httpx.get(f"{base}/media/{file}", timeout=10)
        assert picture.status_code == 200 and picture.content == fake_png(m.fake.picture_path(account_id))


def test_report_embeds_a_commenters_stored_avatar(tmp_path):
    import base64

    from archiver.views.report import write_report

    m = Mastodon(tmp_path)
    m.run()
    key, account_id = next((k, a) for k, a in m.commenters().items() if m.fake.picture_path(a))
    target = write_report(m.archive, tmp_path / "report.html")
    embedded = base64.b64encode(fake_png(m.fake.picture_path(account_id))).decode()
    assert f'src="data:image/png;base64,{embedded}"' in target.read_text(encoding="utf-8")
