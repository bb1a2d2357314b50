"""The Bluesky connector end to end in-process: real connector, runner, writer and media
store against the stateful FakeBluesky through httpx.MockTransport."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import httpx
import pytest

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.sync.jobs import Workspace, run_export
from archiver.net.client import scrubber
from archiver.net.oauth import OAuthError
from archiver.secrets import open_secret_store
from archiver_connectors.bluesky import BlueskyConnector
from archiver_connectors.bluesky.api import sha256_of_blob_cid
from archiver_connectors.bluesky.sim.fake import FakeBluesky, FakeBlueskyConfig

BASE = "http://127.0.0.1:8798"


class World:
    def __init__(self, tmp_path, config: FakeBlueskyConfig | None = None, **options):
        self.fake = FakeBluesky(config or FakeBlueskyConfig(), base_url=BASE)
        self.sent: list[httpx.Request] = []
        self.faults: list = []
        self.transport = httpx.MockTransport(self._handle)
        self.secrets = open_secret_store("memory")
        opts = {"handle": self.fake.user_handle, "plc_url": BASE, "appview_url": BASE, **options}
        self.account = AccountConfig(name="main", platform="bluesky", base_url=BASE, options=opts)
        self.archive = Archive(tmp_path / "archive")
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)
        self.sleeps: list[float] = []

    def _handle(self, request):
        self.sent.append(request)
        for fault in list(self.faults):
            answer = fault(request)
            if answer is not None:
                return answer
        return self.fake.handle(request)

    def connector(self):
        return BlueskyConnector(self.account, self.secrets, transport=self.transport, sleep=self.sleep)

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.fake.advance(seconds)

    def auth(self, password=None):
        return self.connector().authorize(echo=lambda line: None, token=password or self.fake.config.app_password)

    def run(self, full=False):
        return run_export(self.ws, self.account, full=full, transport=self.transport, sleep=self.sleep,
                          progress=lambda line: None)

    def stored(self) -> dict:
        return json.loads(self.secrets.get("bluesky", "main", "tokens"))

    def rows(self, sql, params=()):
        db = sqlite3.connect(self.archive.folder / "archive.db")
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def nsids(self, since=0):
        return [n for _, n, _ in self.fake.requests(since)]


@pytest.fixture(autouse=True)
def ticking_clock(monkeypatch):
    """Rows and snapshots are stamped to the second; these runs follow each other within one."""
    import datetime as dt
    from itertools import count

    ticks = count()
    start = dt.datetime.now(dt.timezone.utc)

    def now():
        return (start + dt.timedelta(seconds=next(ticks))).strftime("%Y-%m-%dT%H:%M:%SZ")

    monkeypatch.setattr("archiver.archive.writer.now_utc", now)
    monkeypatch.setattr("archiver_connectors.bluesky.now_utc", now)
    monkeypatch.setattr("archiver.archive.lists.now_utc", now)


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


# --------------------------------------------------------------------------- settings


def test_account_settings_and_http_refused_for_non_loopback(tmp_path):
    assert BlueskyConnector.account_settings_from_auth({"handle": "@alice.test"}) == {"handle": "alice.test"}
    assert BlueskyConnector.account_settings_from_auth({"handle": None}) is None
    secrets = open_secret_store("memory")
    bad = AccountConfig(name="main", platform="bluesky", options={"pds_url": "http://pds.example.com"})
    with pytest.raises(ValueError, match=r"\[accounts.main\] pds_url.*loopback"):
        BlueskyConnector(bad, secrets).settings()
    bad = AccountConfig(name="main", platform="bluesky", options={"appview_url": "ftp://x"})
    with pytest.raises(ValueError, match="appview_url"):
        BlueskyConnector(bad, secrets).settings()
    typo = AccountConfig(name="main", platform="bluesky", options={"pds": "https://x"})
    with pytest.raises(ValueError, match="unknown key.*pds"):
        BlueskyConnector(typo, secrets).settings()
    ok = AccountConfig(name="main", platform="bluesky", options={"pds_url": "http://[::1]:9000/"})
    settings = BlueskyConnector(ok, secrets).settings()
    assert settings["pds_url"] == "http://[::1]:9000"
    assert settings["plc_url"] == "https://plc.directory" and settings["entryway"] == "https://bsky.social"
    assert settings["appview_url"] == "https://public.api.bsky.app"


def test_pds_from_a_did_document_must_not_be_plain_http_off_loopback(world):
    world.fake.base_url = "http://pds.example.com"   # the DID document now names this PDS
    world.fake.user_handle = world.fake.config.handle
    with pytest.raises(OAuthError, match="plain http:// is allowed only for loopback"):
        world.auth()
    assert not any(r.url.host == "pds.example.com" for r in world.sent)


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize("method", ["plc", "web"])
def test_auth_resolves_handle_did_document_pds_and_stores_tokens_not_the_password(tmp_path, method):
    world = World(tmp_path, FakeBlueskyConfig(did_method=method))
    message = world.auth()
    assert world.fake.did in message and "not stored" in message
    paths = [r.url.path for r in world.sent]
    assert paths[0] == "/xrpc/com.atproto.identity.resolveHandle"
    assert paths[1] == (f"/{world.fake.did}" if method == "plc" else "/.well-known/did.json")
    assert paths[2] == "/xrpc/com.atproto.server.createSession"
    stored = world.stored()
    assert set(stored) >= {"access_token", "refresh_token", "did", "session_url"}
    assert stored["did"] == world.fake.did and stored["session_url"] == BASE
    password = world.fake.config.app_password
    everything = json.dumps({k: world.secrets.get("bluesky", "main", k) for k in ("tokens", "app_password")})
    assert password not in everything
    assert password not in scrubber.text(f"x {password} y")   # registered as a secret


def test_wrong_app_password_is_refused_and_nothing_stored(world):
    with pytest.raises(OAuthError, match="Invalid identifier or password.*app password"):
        world.auth("wxyz-wxyz-wxyz-wxyz")
    assert world.secrets.get("bluesky", "main", "tokens") is None


def test_prompted_password_uses_a_hidden_prompt_key(world):
    asked = []
    world.connector().authorize(echo=lambda line: None,
                                prompt=lambda key: asked.append(key) or world.fake.config.app_password)
    assert asked and asked[0].endswith(("secret", "password"))   # the CLI hides what these keys name


# --------------------------------------------------------------------------- export


def test_first_run_archives_repo_blobs_audience_and_replies(world):
    world.auth()
    result = world.run()
    assert result["status"] == "ok", result
    did = world.fake.did
    posts = world.rows("SELECT post_id, kind, text, comment_count FROM posts WHERE platform='bluesky'")
    own = [p for p in posts if p[1] != "boost"]
    assert len(own) == world.fake.config.posts
    assert any(p[1] == "boost" for p in posts)
    assert all(p[0].startswith(f"at://{did}/app.bsky.feed.post/") for p in own)
    assert any("🌱" in p[2] for p in own)
    # Blobs: downloaded, stored under their sha256, which is what the CID names.
    media = world.rows("SELECT pm.sha256, pm.status, pm.source_url FROM post_media pm WHERE pm.platform='bluesky'")
    assert media and all(status == "ok" for _, status, _ in media)
    for cid, (data, _) in world.fake.blobs.items():
        if any(sha == hashlib.sha256(data).hexdigest() for sha, _, _ in media):
            assert sha256_of_blob_cid(cid) == hashlib.sha256(data).hexdigest()
    # Profile with counts, avatar from the repo's blob.
    account = world.rows("SELECT native_id, username, followers, following, posts, avatar_sha256 FROM accounts")
    assert account[0][:5] == (did, "alice.test", 30, 8, 12) and account[0][5]
    # Followers and following: complete snapshots.
    snaps = world.rows("SELECT kind, member_count, complete FROM snapshots ORDER BY kind")
    assert snaps == [("followers", 30, 1), ("following", 8, 1)]
    # Replies by others, as comments linked to their authors.
    comments = world.rows("SELECT c.comment_id, c.post_id, c.parent_id, c.author_id, pe.handle, c.by_owner "
                          "FROM comments c JOIN people pe ON pe.platform=c.platform AND pe.person_id=c.author_id")
    expected = sum(len(v) for v in world.fake.replies.values())
    assert len(comments) == expected > 0
    for comment_id, post_id, parent_id, author, handle, by_owner in comments:
        assert post_id in world.fake.replies and parent_id == post_id
        assert author.startswith("did:plc:fan") and handle.endswith(".test") and by_owner == 0
    # The session token never went to the AppView or the PLC directory.
    token_hosts = {r.url.path for r in world.sent if r.headers.get("authorization")}
    assert not any(p.startswith("/xrpc/app.bsky.") or p.startswith("/did:") for p in token_hosts)
    likes = world.rows("SELECT count(*) FROM interactions WHERE kind='like'")
    assert likes == [(5,)]


def test_second_run_with_nothing_new_is_a_few_requests_and_fetches_no_blob(world):
    world.auth()
    assert world.run()["status"] == "ok"
    mark = len(world.fake.log)
    result = world.run()
    assert result["status"] == "ok", result
    nsids = world.nsids(mark)
    assert len(nsids) <= 5, nsids
    assert not {"com.atproto.sync.getRepo", "com.atproto.sync.getBlob", "com.atproto.sync.listBlobs",
                "app.bsky.graph.getFollowers", "app.bsky.feed.getPostThread"} & set(nsids)


def test_new_post_and_reply_fetch_repo_again_but_only_new_blobs(world):
    world.auth()
    world.run()
    old = world.rows("SELECT count(*) FROM post_media WHERE status='ok'")[0][0]
    new_uri = world.fake.add_post("fresh one", with_image=True)
    old_uri = world.fake.post_uris()[1]
    world.fake.add_reply(old_uri, text="late reply")
    mark = len(world.fake.log)
    assert world.run()["status"] == "ok"
    nsids = world.nsids(mark)
    assert nsids.count("com.atproto.sync.getRepo") == 1
    assert nsids.count("com.atproto.sync.getBlob") == 1          # the new post's image only
    threads = nsids.count("app.bsky.feed.getPostThread")
    assert threads == 1                                            # the post whose replyCount moved
    assert world.rows("SELECT count(*) FROM post_media WHERE status='ok'")[0][0] == old + 1
    assert world.rows("SELECT count(*) FROM posts WHERE post_id=?", [new_uri]) == [(1,)]
    assert world.rows("SELECT text FROM comments WHERE post_id=? AND text='late reply'", [old_uri])


def test_nested_replies_keep_their_parent(world):
    uri = world.fake.post_uris()[2]
    first = world.fake.add_reply(uri, text="top")
    world.fake.add_reply(uri, text="answer", parent=first)
    world.auth()
    world.run()
    rows = world.rows("SELECT parent_id, post_id FROM comments WHERE text='answer'")
    assert rows == [(first, uri)]


def test_blob_with_wrong_bytes_is_refused(world):
    world.auth()
    cid = next(c for c in world.fake.blobs if world.fake.blobs[c][1] == "image/png")
    data, mime = world.fake.blobs[cid]
    world.fake.blobs[cid] = (data + b"tampered", mime)
    result = world.run()
    assert any("does not match" in e["error"] for e in result["errors"])
    bad = hashlib.sha256(data + b"tampered").hexdigest()
    assert world.rows("SELECT count(*) FROM media WHERE sha256=?", [bad]) == [(0,)]


# --------------------------------------------------------------------------- tokens


def test_expired_access_token_400_is_refreshed_once_and_rotated_token_stored_before_use(world):
    world.auth()
    first = world.stored()
    world.fake.expire_access_tokens()

    def must_be_stored_before_use(request):
        bearer = request.headers.get("authorization", "")[len("Bearer "):]
        if bearer and bearer not in (first["access_token"], first["refresh_token"]):
            assert world.stored()["access_token"] == bearer
        return None

    world.faults.append(must_be_stored_before_use)
    result = world.run()
    assert result["status"] == "ok", result
    nsids = world.nsids()
    assert nsids.count("com.atproto.server.refreshSession") == 1
    stored = world.stored()
    assert stored["refresh_token"] != first["refresh_token"]
    assert not world.fake.refresh_token_alive(first["refresh_token"])


def test_crash_right_after_refresh_then_next_run_works_with_the_stored_token(world):
    """The process dies the instant refreshSession answered: the new pair must already be
    in the store (the old refresh token is dead from now on)."""
    world.auth()
    first = world.stored()
    world.fake.expire_access_tokens()

    class Crash(BaseException):
        pass

    def crash_after_refresh(request):
        if request.url.path.endswith("refreshSession"):
            answer = world.fake.handle(request)
            world.faults.clear()
            world.crashed_with = answer
            raise Crash()
        return None

    # The answer is produced (the server rotated) but the client "dies" before reading it:
    # the harshest case. Then the stored token is the old, dead one: the run must say re-auth.
    world.faults.append(crash_after_refresh)
    with pytest.raises(Crash):
        world.run()
    result = world.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert "archiver auth bluesky" in result["message"]
    assert world.stored()["refresh_token"] == first["refresh_token"]


def test_kill_after_refresh_was_stored_resumes_with_the_new_token(world, monkeypatch):
    from archiver_connectors.bluesky import api as bsky_api

    world.auth()
    world.fake.expire_access_tokens()
    original = bsky_api.BlueskyTokens.store_session

    class Killed(BaseException):
        pass

    def store_then_die(self, body, *, session_url):
        original(self, body, session_url=session_url)
        raise Killed()          # dies after the durable write, before the retry

    monkeypatch.setattr(bsky_api.BlueskyTokens, "store_session", store_then_die)
    with pytest.raises(Killed):
        world.run()
    monkeypatch.setattr(bsky_api.BlueskyTokens, "store_session", original)
    mark = len(world.fake.log)
    result = world.run()
    assert result["status"] == "ok", result
    assert "com.atproto.server.refreshSession" not in world.nsids(mark)


def test_revoked_refresh_token_asks_for_reauth(tmp_path):
    for error in ("ExpiredToken", "InvalidToken"):
        world = World(tmp_path / error, FakeBlueskyConfig(revoked_refresh_error=error))
        world.auth()
        stored = world.stored()
        assert world.fake.handle(httpx.Request(
            "POST", BASE + "/xrpc/com.atproto.server.refreshSession",
            headers={"Authorization": f"Bearer {stored['refresh_token']}"})).status_code == 200
        world.fake.expire_access_tokens()
        result = world.run()
        assert result["status"] == "failed" and result["failure_kind"] == "auth"
        assert "archiver auth bluesky --account main" in result["message"]


# --------------------------------------------------------------------------- audience


@pytest.mark.parametrize("cursor_on_last_page", [True, False])
def test_followers_end_of_list_either_way(tmp_path, cursor_on_last_page):
    world = World(tmp_path, FakeBlueskyConfig(followers=250, cursor_on_last_page=cursor_on_last_page))
    world.auth()
    assert world.run()["status"] == "ok"
    assert world.rows("SELECT member_count, complete FROM snapshots WHERE kind='followers'") == [(250, 1)]
    calls = world.nsids().count("app.bsky.graph.getFollowers")
    # 100 + 100 + 50; a cursor on the last page costs one more (empty) page, which ends it.
    assert calls == (4 if cursor_on_last_page else 3)


def test_followers_listing_cut_off_is_kept_and_the_next_run_goes_on_from_its_cursor(tmp_path):
    world = World(tmp_path, FakeBlueskyConfig(followers=250))
    world.auth()
    world.run()
    world.fake.gain_followers(5)
    calls = {"n": 0}

    def break_second_page(request):
        if request.url.path.endswith("getFollowers"):
            calls["n"] += 1
            if calls["n"] >= 2:
                return httpx.Response(400, json={"error": "InvalidRequest", "message": "boom"})
        return None

    world.faults.append(break_second_page)
    result = world.run()
    assert result["status"] == "ok"
    assert any("followers list" in e["item"] for e in result["errors"])
    # The first page is staged with its cursor; no snapshot yet, nobody lost.
    snaps = world.rows("SELECT member_count, complete FROM snapshots WHERE kind='followers' ORDER BY snapshot_id")
    assert snaps == [(250, 1)]
    assert world.rows("SELECT pages, members FROM staged_lists WHERE kind='followers'") == [(1, 100)]
    assert world.rows("SELECT count(*) FROM audience_events WHERE event='lost'") == [(0,)]
    world.faults.clear()
    before = len(world.fake.requests())
    result = world.run()
    # Only the pages after the staged one are asked: 100, 55 and the empty page the last
    # cursor leads to (a walk from the start would ask 4), and the list is whole.
    asked = [n for n in world.nsids(before) if n == "app.bsky.graph.getFollowers"]
    assert len(asked) == 3
    snaps = world.rows("SELECT member_count, complete FROM snapshots WHERE kind='followers' ORDER BY snapshot_id")
    assert snaps[-1] == (255, 1)
    assert world.rows("SELECT count(*) FROM staged_lists") == [(0,)]
    assert world.rows("SELECT count(*) FROM staged_members") == [(0,)]
    assert world.rows("SELECT count(*) FROM audience_events WHERE kind='followers' AND event='new' "
                      "AND snapshot_id=(SELECT max(snapshot_id) FROM snapshots)") == [(5,)]


# --------------------------------------------------------------------------- faults


def test_429_with_ratelimit_headers_waits_for_the_reset(tmp_path):
    world = World(tmp_path, FakeBlueskyConfig(rate_limit=6, rate_window=300))
    world.auth()
    result = world.run()
    assert result["status"] == "ok", result
    statuses = [s for _, _, s in world.fake.requests()]
    assert 429 in statuses
    assert sum(world.sleeps) >= 200   # waited until RateLimit-Reset (in 1 s steps), not a short backoff


def test_full_run_tombstones_a_deleted_post(world):
    world.auth()
    world.run()
    gone = world.fake.post_uris()[0]
    world.fake.delete_post(gone)
    world.run()
    assert world.rows("SELECT deleted_at FROM posts WHERE post_id=?", [gone])[0][0] is None
    assert world.run(full=True)["status"] == "ok"
    assert world.rows("SELECT deleted_at FROM posts WHERE post_id=?", [gone])[0][0] is not None
    others = world.rows("SELECT count(*) FROM posts WHERE deleted_at IS NULL AND kind != 'boost'")
    assert others == [(world.fake.config.posts - 1,)]


def test_a_post_the_writer_refuses_is_reported_and_never_tombstoned_by_a_full_run(world):
    world.auth()
    assert world.run(full=True)["status"] == "ok"
    refused, gone = world.fake.post_uris()[1], world.fake.post_uris()[4]
    world.fake.delete_post(gone)
    db = sqlite3.connect(world.archive.folder / "archive.db")
    # A data error of that one row (a UNIQUE violation inside a trigger): the page goes on.
    db.executescript(f"""CREATE TABLE refused (post_id TEXT PRIMARY KEY); INSERT INTO refused VALUES ('{refused}');
        CREATE TRIGGER refuse BEFORE UPDATE ON posts WHEN NEW.post_id IN (SELECT post_id FROM refused)
        BEGIN INSERT INTO refused VALUES (NEW.post_id); END;""")
    db.close()

    result = world.run(full=True)
    assert result["status"] == "ok", result
    assert any(refused in e["item"] for e in result["errors"])
    assert world.rows("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == [(0,)]
    assert world.rows("SELECT count(*) FROM unmapped_items WHERE item_id=?", [refused]) == [(1,)]


def test_likes_no_longer_in_the_repository_are_tombstoned_by_a_full_listing(tmp_path):
    world = World(tmp_path, FakeBlueskyConfig(likes=10))
    world.auth()
    assert world.run(full=True)["status"] == "ok"
    assert world.rows("SELECT count(*) FROM interactions WHERE kind='like'") == [(10,)]
    key = sorted(k for k in world.fake.records if k.startswith("app.bsky.feed.like/"))[2]
    unliked = world.fake.records.pop(key)["subject"]["uri"]
    world.fake._bump()

    assert world.run()["status"] == "ok"       # incremental: never
    assert world.rows("SELECT count(*) FROM interactions WHERE deleted_at IS NOT NULL") == [(0,)]
    result = world.run(full=True)
    assert result["status"] == "ok" and result["counts"]["likes_tombstoned"] == 1
    assert world.rows("SELECT target FROM interactions WHERE deleted_at IS NOT NULL") == [(unliked,)]
    assert world.rows("SELECT count(*) FROM interactions") == [(10,)]      # the row stays

    # A like record that cannot be mapped: reported, kept raw, and the listing marks nothing.
    odd = sorted(k for k in world.fake.records if k.startswith("app.bsky.feed.like/"))[0]
    world.fake.records[odd] = {"$type": "app.bsky.feed.like", "createdAt": "2024-03-01T00:00:00.000Z"}
    another = sorted(k for k in world.fake.records if k.startswith("app.bsky.feed.like/"))[-1]
    world.fake.records.pop(another)
    world.fake._bump()
    result = world.run(full=True)
    assert result["status"] == "ok", result
    assert any(e["item"] == "likes listing" and "nothing was marked deleted" in e["error"] for e in result["errors"])
    assert world.rows("SELECT count(*) FROM interactions WHERE deleted_at IS NOT NULL") == [(1,)]
    assert world.rows("SELECT count(*) FROM unmapped_items WHERE stream='likes'") == [(1,)]


def test_replies_gone_from_a_whole_thread_are_tombstoned_but_never_below_the_depth_limit(tmp_path, monkeypatch):
    """getPostThread returns replies only down to ``depth``: a --full listing marks deleted
    the replies it no longer saw only in threads it read whole (nothing cut off by the
    depth limit), only within that depth, never under a reply that is itself gone, and
    never on an incremental run."""
    from archiver_connectors.bluesky import api as bsky_api

    world = World(tmp_path, FakeBlueskyConfig(posts=4, replies_per_post=0, likes=0, followers=2, following=1))
    chain_post, busy_post = world.fake.post_uris()[:2]
    r1 = world.fake.add_reply(chain_post, text="depth 1")
    r2 = world.fake.add_reply(chain_post, text="depth 2", parent=r1)
    r3 = world.fake.add_reply(chain_post, text="depth 3", parent=r2)
    side = world.fake.add_reply(chain_post, text="another depth 1")
    busy = [world.fake.add_reply(busy_post, text=f"busy {i}") for i in range(12)]
    under = world.fake.add_reply(busy_post, text="under busy 0", parent=busy[0])
    world.fake._bump()
    world.auth()
    assert world.run(full=True)["status"] == "ok"
    assert world.rows("SELECT count(*) FROM comments") == [(17,)]

    monkeypatch.setattr(bsky_api, "THREAD_DEPTH", 2)
    for reply in (side, busy[1], busy[0]):
        world.fake.delete_reply(reply)
    world.fake._bump()
    assert world.run()["status"] == "ok"                    # incremental: never
    assert world.rows("SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL") == [(0,)]

    # The chain's thread is cut at depth 2 (r2 says it has a reply the answer does not
    # show): nothing of it is judged. The busy thread is whole: its two gone replies are
    # marked; the reply under the gone busy[0] is out of the tree's reach, not deleted.
    result = world.run(full=True)
    assert result["status"] == "ok", result
    assert result["counts"]["comments_tombstoned"] == 2
    assert {r[0] for r in world.rows("SELECT comment_id FROM comments WHERE deleted_at IS NOT NULL")} == {
        busy[0], busy[1]}

    # r3 goes: the chain is whole within depth 2 now. The side reply is marked; r3, below
    # the depth the listing reads, never is.
    world.fake.delete_reply(r3)
    result = world.run(full=True)
    assert result["status"] == "ok", result
    marked = {r[0] for r in world.rows("SELECT comment_id FROM comments WHERE deleted_at IS NOT NULL")}
    assert marked == {busy[0], busy[1], side}
    assert r3 not in marked and under not in marked


# --------------------------------------------------------------------------- pictures


def test_reply_authors_avatars_are_stored_followers_are_not(world):
    from archiver_connectors.bluesky.sim.fake import fake_png

    world.auth()
    assert world.run()["status"] == "ok"
    authors = {r[0] for r in world.rows("SELECT DISTINCT author_id FROM comments WHERE by_owner=0")}
    assert authors
    for did in authors:
        (stored, source), = world.rows("SELECT avatar_sha256, avatar_source FROM people WHERE person_id=?", [did])
        assert stored == hashlib.sha256(fake_png(f"{did}:v1")).hexdigest()
        assert source == f"{BASE}/cdn/avatar/{did}/v1.jpg"
        (path,), = world.rows("SELECT path FROM media WHERE sha256=?", [stored])
        assert (world.archive.media_root / path).read_bytes() == fake_png(f"{did}:v1")
    # Followers who never replied: their link is kept, no file, no request.
    asked = [p for _, p, _ in world.fake.requests() if p.startswith("/cdn/avatar/")]
    assert sorted(asked) == sorted(f"/cdn/avatar/{did}/v1.jpg" for did in authors)
    assert world.rows("SELECT count(*) FROM people WHERE avatar_sha256 IS NOT NULL") == [(len(authors),)]
    assert world.rows("SELECT count(*) FROM people WHERE avatar_url IS NOT NULL")[0][0] > len(authors)

    # A changed picture and a new reply: only that one picture is fetched again.
    did = sorted(authors)[0]
    world.fake.change_avatar(did)
    author = next(r["author"] for replies in world.fake.replies.values() for r in replies if r["author"]["did"] == did)
    world.fake.add_reply(world.fake.post_uris()[0], author=author, text="new face")
    mark = len(world.fake.log)
    assert world.run()["status"] == "ok"
    assert [p for _, p, _ in world.fake.requests(mark) if p.startswith("/cdn/avatar/")] == [
        f"/cdn/avatar/{did}/v2.jpg"]
    assert world.rows("SELECT avatar_sha256 FROM people WHERE person_id=?", [did]) == [
        (hashlib.sha256(fake_png(f"{did}:v2")).hexdigest(),)]


def test_fake_cdn_refuses_unknown_avatars(world):
    for path in ("/cdn/avatar/did:plc:nobody/v1.jpg", f"/cdn/avatar/{world.fake.followers[0]['did']}/v2.jpg",
                 f"/cdn/avatar/{world.fake.followers[0]['did']}.jpg"):
        assert world.fake.handle(httpx.Request("GET", BASE + path)).status_code == 404, path
    assert world.fake.handle(httpx.Request(
        "GET", f"{BASE}/cdn/avatar/{world.fake.followers[0]['did']}/v1.jpg")).status_code == 200


def test_banner_blob_lands_and_a_changed_one_keeps_the_old(world):
    from archiver_connectors.bluesky.sim.fake import fake_png

    first, second = fake_png("banner-1"), fake_png("banner-2")
    world.fake.records["app.bsky.actor.profile/self"]["banner"] = world.fake.add_blob(first, "image/png")
    world.fake._bump()
    world.auth()
    assert world.run()["status"] == "ok"
    assert world.rows("SELECT banner_sha256 FROM accounts") == [(hashlib.sha256(first).hexdigest(),)]
    world.fake.records["app.bsky.actor.profile/self"]["banner"] = world.fake.add_blob(second, "image/png")
    world.fake._bump()
    assert world.run()["status"] == "ok"
    assert world.rows("SELECT banner_sha256 FROM accounts") == [(hashlib.sha256(second).hexdigest(),)]
    assert world.rows("SELECT banner_sha256 FROM profile_versions") == [(hashlib.sha256(first).hexdigest(),)]
    for data in (first, second):
        (path,), = world.rows("SELECT path FROM media WHERE sha256=?", [hashlib.sha256(data).hexdigest()])
        assert (world.archive.media_root / path).read_bytes() == data
