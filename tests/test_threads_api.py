"""`archiver export` and `archiver auth` for Threads, in-process: the real connector, runner,
writer and media store against the stateful FakeThreads through httpx.MockTransport. Every
test checks archive rows and what the fake was asked. Worlds are small (a few posts)."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest
from tiktok_sync_harness import ticking_clock

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.net.client import install_log_scrubbing
from archiver.net.oauth import OAuthError
from archiver.secrets import open_secret_store
from archiver.sync.jobs import Workspace, run_export
from archiver_connectors.threads import ThreadsConnector
from archiver_connectors.threads.api import ThreadsTokens, comments_below, post_from_thread, user_metric
from archiver_connectors.threads.sim.fake import READ_SCOPES, FakeThreads, FakeThreadsConfig

BASE_URL = "http://127.0.0.1:8797"   # never contacted: MockTransport answers in-process
ACCOUNT = "main"
ACCOUNT_ID = f"threads:{ACCOUNT}"
THREADS_PATH, REPLIES_PATH = "/v1.0/me/threads", "/v1.0/me/replies"
DAY = 86400


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


class ThreadsHarness:
    """A fake Threads, an archive, an in-memory secret store holding a token the fake
    minted, and a switchboard (``faults`` answer instead of the fake, ``after`` hooks see
    each answer). Waits are recorded and move the fake's clock instead of sleeping."""

    def __init__(self, tmp_path: Path, config: FakeThreadsConfig | None = None, *, token_age: float = 0,
                 scopes: str | None = None):
        self.fake = FakeThreads(config or FakeThreadsConfig(posts=8), base_url=BASE_URL)
        self.secrets = open_secret_store("memory")
        self.faults: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.after: list[Callable[[httpx.Request, httpx.Response], None]] = []
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self.sleeps: list[float] = []
        self.transport = httpx.MockTransport(self._handle)
        self.account = AccountConfig(name=ACCOUNT, platform="threads", base_url=BASE_URL)
        tokens = self.fake.issue_tokens(scopes, age=token_age)
        ThreadsTokens(self.secrets, ACCOUNT, BASE_URL, httpx.Client(transport=self.transport),
                      clock=lambda: time.time() - token_age).store(
            tokens, user_id=tokens["user_id"], permissions=tokens["permissions"])
        self.initial = tokens
        self.archive = Archive(tmp_path / "archive")
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)

    def run(self, *, full: bool = False, cancel=lambda: False, progress=None) -> dict:
        return run_export(self.ws, self.account, full=full, cancel=cancel, progress=progress or (lambda line: None),
                          transport=self.transport, sleep=self.sleep)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.fake.advance(seconds)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for fault in list(self.faults):
            answer = fault(request)
            if answer is not None:
                self.responses.append(answer)
                return answer
        response = self.fake.handle(request)
        self.responses.append(response)
        for hook in list(self.after):
            hook(request, response)
        return response

    def stored(self) -> dict:
        return json.loads(self.secrets.get("threads", ACCOUNT, "tokens"))

    def edit_stored(self, **changes) -> None:
        self.secrets.set("threads", ACCOUNT, "tokens", json.dumps(self.stored() | changes))

    def sent(self, path: str, since: int = 0) -> list[httpx.Request]:
        return [r for r in self.requests[since:] if r.url.path == path]

    def rows(self, sql: str, *params) -> list[dict]:
        cursor = self.archive.db.execute(sql, list(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def value(self, sql: str, *params):
        return self.archive.db.execute(sql, list(params)).fetchone()[0]

    def state(self, stream: str) -> dict | None:
        row = self.archive.db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                                      [ACCOUNT_ID, stream]).fetchone()
        return json.loads(row[0]) if row else None

    def post_ids(self) -> set[str]:
        return {r["post_id"] for r in self.rows("SELECT post_id FROM posts")}

    def fake_ids(self) -> set[str]:
        return {p["id"] for p in self.fake.posts} | {r["id"] for r in self.fake.owner_replies()}


def nearest_owner_post(fake: FakeThreads, reply: dict) -> str:
    """The owner's post a reply by someone else belongs to: the first of the owner's posts
    or replies above it."""
    parent = reply["replied_to"]
    while parent in fake.replies and not fake.replies[parent]["owner"]:
        parent = fake.replies[parent]["replied_to"]
    return parent


# --------------------------------------------------------------------------- first run


@pytest.mark.parametrize("edges", ["both", "replies"])
def test_first_run_archives_every_kind_with_files_replies_comments_counts_and_followers(tmp_path, edges):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=8, seed=3, reply_edges=edges, copyrighted=0.5))
    result = h.run()
    assert result["status"] == "ok", result

    account = h.rows("SELECT * FROM accounts WHERE account_id=?", ACCOUNT_ID)[0]
    user = h.fake.user
    assert (account["native_id"], account["username"], account["display_name"], account["bio"]) == (
        user["id"], user["username"], user["name"], user["biography"])
    assert account["avatar_sha256"]
    assert h.rows("SELECT followers FROM account_metrics") == [{"followers": 50}]

    posts = {p["post_id"]: p for p in h.rows("SELECT * FROM posts")}
    assert set(posts) == h.fake_ids()
    expected_kind = {"TEXT_POST": "text", "IMAGE": "image", "VIDEO": "video", "CAROUSEL_ALBUM": "carousel",
                     "REPOST_FACADE": "boost"}
    for item in h.fake.posts:
        post = posts[item["id"]]
        kind = "quote" if item["is_quote_post"] else expected_kind[item["media_type"]]
        assert post["kind"] == kind
        # What the export importer makes of creation_timestamp and the text: one row for both.
        assert post["created_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(item["timestamp"]))
        assert post["text"] == (item["text"].strip() or None)
        raw = json.loads(post["raw"])["api"]
        if kind == "quote":
            assert raw["quoted_post"] == {"id": item["quoted_post"]}
        if kind == "boost":
            assert raw["reposted_post"] == {"id": item["reposted_post"]} and "insights" not in raw
        else:
            counts = item["counts"]
            assert (post["view_count"], post["like_count"], post["comment_count"], post["share_count"]) == (
                counts["views"], counts["likes"], h.fake.reply_count(item["id"]), counts["reposts"] + counts["quotes"])
            assert raw["insights"]["shares"] == counts["shares"]
        assert post["url"] is None if item["copyrighted"] else post["url"].startswith("https://www.threads.com/@")
    for reply in h.fake.owner_replies():
        assert posts[reply["id"]]["kind"] == "reply" and posts[reply["id"]]["text"] == reply["text"]
    assert h.value("SELECT count(*) FROM post_metrics") == len([p for p in posts.values() if p["kind"] != "boost"])

    # Files: every carousel child at its position, videos with thumbnails, all downloaded.
    media = h.rows("SELECT post_id, role, position, status, source_url FROM post_media")
    assert media and all(m["status"] == "ok" and "?" not in m["source_url"] for m in media)
    by_post: dict[str, set] = {}
    for row in media:
        by_post.setdefault(row["post_id"], set()).add((row["role"], row["position"]))
    for item in h.fake.posts:
        parts = item["children"] or ([item] if item["media_type"] in ("IMAGE", "VIDEO") else [])
        wanted = set()
        for n, part in enumerate(parts):
            wanted.add(("video" if part["media_type"] == "VIDEO" else "image", n))
            if part["media_type"] == "VIDEO":
                wanted.add(("thumbnail", n))
        assert by_post.get(item["id"], set()) == wanted, item["media_type"]

    # Replies others wrote: comments of the nearest owner's post above them, authors by username.
    comments = {c["comment_id"]: c for c in h.rows("SELECT * FROM comments")}
    others = {r["id"]: r for r in h.fake.others_replies()}
    assert set(comments) == set(others)
    for cid, comment in comments.items():
        reply = others[cid]
        assert comment["post_id"] == nearest_owner_post(h.fake, reply)
        assert comment["author_id"] == reply["author"] and comment["by_owner"] == 0
        assert comment["parent_id"] == (reply["replied_to"] if reply["replied_to"] in others else None)
    authors = {r["person_id"]: r for r in h.rows("SELECT person_id, handle, url FROM people")}
    assert set(authors) == {r["author"] for r in others.values()}
    assert all(a["handle"] == pid and a["url"] == f"https://www.threads.com/@{pid}" for pid, a in authors.items())
    if edges == "replies":       # /conversation refused once, then level by level
        assert len([r for r in h.requests if r.url.path.endswith("/conversation")]) == 1


def test_second_run_with_nothing_new_makes_a_handful_of_requests(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=8, seed=4))
    assert h.run()["status"] == "ok"
    mark = len(h.requests)
    result = h.run()
    assert result["status"] == "ok", result
    asked = [r.url.path for r in h.requests[mark:]]
    assert sorted(p for p in asked if not p.startswith("/cdn/")) == sorted(
        ["/v1.0/me", "/v1.0/me/threads_insights", THREADS_PATH, REPLIES_PATH])
    assert len(asked) <= 5                        # and the avatar's link, whose bytes are known
    assert "posts_new" not in result["counts"] and "comments_new" not in result["counts"]


def test_new_post_and_new_replies_on_a_recent_post_arrive_incrementally(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=6, seed=5))
    recent = h.fake.add_post("A week ago", "TEXT_POST", timestamp=int(time.time()) - 7 * DAY)
    assert h.run()["status"] == "ok"
    new = h.fake.add_post("Fresh frames", "IMAGE")
    reply = h.fake.add_reply(recent["id"], "Love this")
    h.fake.set_counts(recent["id"], likes=999)
    mark = len(h.requests)
    result = h.run()
    assert result["status"] == "ok", result
    assert new["id"] in h.post_ids() and result["counts"]["posts_new"] == 1
    assert h.rows("SELECT post_id, author_id, text FROM comments WHERE comment_id=?", reply["id"]) == [
        {"post_id": recent["id"], "author_id": reply["author"], "text": "Love this"}]
    assert h.value("SELECT like_count FROM posts WHERE post_id=?", recent["id"]) == 999
    # Only the two posts that may have changed had their replies asked for.
    asked = {r.url.path.split("/")[2] for r in h.requests[mark:] if r.url.path.endswith("/conversation")}
    assert asked <= {recent["id"], new["id"]} and recent["id"] in asked


@pytest.mark.parametrize("how", ["cancel", "auth failure"])
def test_interrupted_run_resumes_from_its_cut_off_point(tmp_path, how):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=14, seed=6, max_limit=3))
    from archiver.sync.runner import CancelFlag

    flag, written = CancelFlag(), []

    def progress(line):
        if line.startswith("posts:"):
            written.append(line)
            if len(written) == 2 and how == "cancel":
                flag.set()

    def refuse_the_third_page(request):
        if request.url.path == THREADS_PATH and len(written) == 2 and how != "cancel":
            return httpx.Response(400, json={"error": {"message": "Error validating access token", "code": 190,
                                                       "error_subcode": 460, "type": "OAuthException"}})
        return None

    h.faults.append(refuse_the_third_page)
    result = h.run(cancel=flag, progress=progress)
    assert result["status"] == ("interrupted" if how == "cancel" else "failed"), result
    cut = h.state("posts")
    assert cut["cursor"] and 0 < len(h.post_ids()) < len(h.fake_ids())
    h.faults.clear()
    mark = len(h.requests)
    assert h.run()["status"] == "ok"
    first = h.sent(THREADS_PATH, mark)[0]
    assert "after" not in first.url.params          # the top first (it may hold new posts) …
    assert any(r.url.params.get("after") == cut["cursor"]["threads"] for r in h.sent(THREADS_PATH, mark))
    assert h.post_ids() == h.fake_ids()             # … then on from where the first run stopped


def test_deleted_post_is_tombstoned_only_by_a_complete_full_listing(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=8, seed=7))
    assert h.run(full=True)["status"] == "ok"
    victim = h.fake.newest_first()[2]
    h.fake.delete_post(victim["id"])
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 1
    assert h.rows("SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [{"post_id": victim["id"]}]
    # A full listing without the owner's replies (the permission taken away) marks nothing,
    # least of all the replies it could not see.
    h.fake.delete_post(h.fake.newest_first()[0]["id"])
    h.faults.append(lambda r: httpx.Response(400, json={"error": {
        "message": "(#10) Application does not have permission", "type": "OAuthException", "code": 10}})
        if r.url.path == REPLIES_PATH else None)
    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert any("threads_read_replies" in e["error"] for e in result["errors"])
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 1


def test_reply_deleted_by_its_author_is_tombstoned_after_a_complete_listing(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=6, seed=8))
    post = h.fake.add_post("Talk to me", "TEXT_POST", timestamp=int(time.time()) - DAY)
    first, second = h.fake.add_reply(post["id"], "one"), h.fake.add_reply(post["id"], "two")
    assert h.run()["status"] == "ok"
    h.fake.delete_reply(first["id"])
    result = h.run()            # a recent post whose reply count moved: its replies listed again
    assert result["status"] == "ok", result
    assert h.rows("SELECT comment_id FROM comments WHERE deleted_at IS NOT NULL") == [{"comment_id": first["id"]}]
    assert h.value("SELECT deleted_at FROM comments WHERE comment_id=?", second["id"]) is None


# --------------------------------------------------------------------------- permissions and tokens


def test_missing_scopes_are_named_and_the_rest_is_archived(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=6, seed=9), scopes="threads_basic")
    result = h.run()
    assert result["status"] == "ok", result
    errors = " ".join(e["error"] for e in result["errors"])
    assert "threads_read_replies" in errors and "threads_manage_insights" in errors
    assert "archiver auth threads" in errors
    assert h.post_ids() == {p["id"] for p in h.fake.posts}
    assert h.value("SELECT count(*) FROM comments") == 0
    # Each refusal is met once, then not asked again in the run.
    assert len([r for r in h.requests if r.url.path.endswith("/insights")]) == 1
    assert len(h.sent(REPLIES_PATH)) == 1


def test_a_token_without_threads_basic_fails_the_run_naming_it(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=3, seed=10), scopes="threads_read_replies")
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert "threads_basic" in result["message"] and "archiver auth threads" in result["message"]


def test_expired_token_asks_for_reauthorization_and_alerts(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=3, seed=11))
    h.edit_stored(expires_at=time.time() - 5)
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert "archiver auth threads" in result["message"] and h.requests == []
    # Expired at Threads (190/463) while the stored record still thought it valid.
    h.edit_stored(expires_at=time.time() + 50 * DAY)
    h.fake.expire_tokens()
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert "archiver auth threads" in result["message"]
    from archiver.ops.alerts import after_run

    after_run(h.ws, h.account, result)
    alerts = h.rows("SELECT kind, message FROM alerts WHERE state='open' AND kind != 'export_old'")
    assert [a["kind"] for a in alerts] == ["gone"] and "archiver auth threads" in alerts[0]["message"]


@pytest.mark.parametrize("age,left,refreshed", [(20 * DAY, 40 * DAY, True), (2 * DAY, 58 * DAY, False),
                                                (3600, 10 * DAY, False)])
def test_token_refresh_timing(tmp_path, age, left, refreshed):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=2, seed=12), token_age=age)
    h.edit_stored(expires_at=time.time() + left)
    assert h.run()["status"] == "ok"
    refreshes = h.sent("/refresh_access_token")
    assert len(refreshes) == int(refreshed)
    stored = h.stored()
    if refreshed:
        assert h.requests[0].url.path == "/refresh_access_token"
        assert refreshes[0].url.params["grant_type"] == "th_refresh_token"
        assert stored["access_token"] != h.initial["access_token"] and stored["expires_at"] > time.time() + 59 * DAY
        assert {r.url.params["access_token"] for r in h.sent(THREADS_PATH)} == {stored["access_token"]}
    else:
        assert stored["access_token"] == h.initial["access_token"]
    assert not any(r.status_code >= 400 for r in h.responses)


def test_a_token_whose_renewal_keeps_failing_is_announced_before_it_ends(tmp_path):
    from archiver.ops.status import account_status

    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=2, seed=19), token_age=20 * DAY)
    h.faults.append(lambda r: httpx.Response(500, text="oops") if r.url.path == "/refresh_access_token" else None)
    result = h.run()
    assert result["status"] == "ok", result
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h.stored()["expires_at"]))
    assert account_status(h.archive, h.ws.config)[0]["authorization_expires_at"] == ends
    h.faults.clear()
    assert h.run()["status"] == "ok"
    assert h.stored()["access_token"] != h.initial["access_token"]          # renewed now: no end to warn of
    assert account_status(h.archive, h.ws.config)[0]["authorization_expires_at"] is None


def play_browser(fake: FakeThreads, seen: list):
    """Open the authorize URL on the fake and follow its redirect to the loopback callback."""
    def browser(url: str) -> None:
        seen.append(url)
        answer = fake.handle(httpx.Request("GET", url))
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.endswith("#_")
        with httpx.Client(timeout=10) as real:     # the loopback server is real
            real.get(location)
    return browser


@pytest.mark.parametrize("user_id,granted", [("number", READ_SCOPES), ("string", "threads_basic,threads_read_replies")])
def test_authorize_exchanges_the_code_for_a_60_day_token(tmp_path, user_id, granted):
    fake = FakeThreads(FakeThreadsConfig(posts=2, code_user_id=user_id, code_expiry=user_id == "string",
                                         granted_scopes=granted), base_url=BASE_URL)
    secrets = open_secret_store("memory")
    connector = ThreadsConnector(AccountConfig(name=ACCOUNT, platform="threads", base_url=BASE_URL), secrets,
                                 transport=httpx.MockTransport(fake.handle))
    seen: list[str] = []
    message = connector.authorize(echo=lambda text: None, open_browser=play_browser(fake, seen),
                                  client_id=fake.config.client_id, client_secret=fake.config.client_secret,
                                  timeout=10)
    assert seen[0].startswith(f"{BASE_URL}/oauth/authorize?")
    assert httpx.URL(seen[0]).params["scope"] == READ_SCOPES
    stored = json.loads(secrets.get("threads", ACCOUNT, "tokens"))
    assert fake.token_info(stored["access_token"])["kind"] == "long"
    assert stored["user_id"] == fake.user["id"] and isinstance(stored["user_id"], str)
    assert stored["expires_at"] > time.time() + 59 * DAY and stored["permissions"] == granted
    assert fake.user["username"] in message and stored["access_token"] not in message
    assert ("Not granted: threads_manage_insights" in message) == (granted != READ_SCOPES)
    assert secrets.get("threads", ACCOUNT, "client_secret") == fake.config.client_secret


def test_authorize_without_app_credentials_says_where_to_get_them(tmp_path):
    connector = ThreadsConnector(AccountConfig(name=ACCOUNT, platform="threads", base_url=BASE_URL),
                                 open_secret_store("memory"))
    with pytest.raises(OAuthError, match="Threads client_id"):
        connector.authorize(echo=lambda text: None, open_browser=False, timeout=1)


# --------------------------------------------------------------------------- errors and secrets


@pytest.mark.parametrize("code,status", [(4, 400), (17, 403), (613, 429)])
def test_throttles_are_waited_out(tmp_path, code, status):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=4, seed=13, rate_limit=6, throttle_code=code,
                                                   throttle_status=status, replies_max=1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("archiver_connectors.threads.api.ThreadsApi.max_throttle_wait", 2 * 3600)
        result = h.run()
    assert result["status"] == "ok", result
    assert h.post_ids() == h.fake_ids() and sum(h.sleeps) > 0


def test_transient_errors_are_retried_and_a_bad_parameter_skips_one_item(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=6, seed=14, fail_rate=0.15))
    target = h.fake.newest_first()[1]
    h.faults.append(lambda r: httpx.Response(400, json={"error": {
        "message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}})
        if r.url.path == f"/v1.0/{target['id']}/insights" else None)
    result = h.run()
    assert result["status"] == "ok", result
    assert h.post_ids() == h.fake_ids()
    assert [e["item"] for e in result["errors"]] == [f"counts of post {target['id']}"]
    assert any(r.status_code == 500 for r in h.responses)


def test_no_token_is_stored_logged_or_reported(tmp_path, caplog):
    install_log_scrubbing()
    planted = "THQWJplanted" + "Q" * 30
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=10, seed=15, max_limit=3, fail_rate=0.1))
    token = h.initial["access_token"]

    def plant(request):   # a paging.next carrying a token the client never sent
        if request.url.path == THREADS_PATH and "after" not in request.url.params:
            body = json.loads(h.fake.handle(request).content)
            body["paging"]["next"] = body["paging"]["next"].replace(token, planted)
            return httpx.Response(200, json=body)
        return None

    h.faults.append(plant)
    echoed: list = []

    def echo_the_token(request):   # an error message that repeats the call, token and all
        if request.url.path.endswith("/insights") and not echoed:
            echoed.append(1)
            return httpx.Response(400, json={"error": {"message": f"bad call {request.url}", "code": 100}})
        return None

    h.faults.append(echo_the_token)
    caplog.set_level(logging.DEBUG)
    result = h.run()
    assert result["status"] == "ok", result
    stored = b""
    for path in h.archive.folder.rglob("*"):
        if path.is_file():
            stored += path.read_bytes()
    for secret in (token, planted, h.fake.config.client_secret):
        assert secret.encode() not in stored
        assert secret not in caplog.text and secret not in json.dumps(result)
    assert re.search(rb"access_token=(?!\[secret\])", stored) is None and b"oh=00_" not in stored
    assert "after=" not in json.dumps(h.rows("SELECT state FROM sync_state"))


def test_expired_cdn_links_are_asked_for_again(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=6, seed=16, media_url_ttl=60))

    def age_links(request, response):
        if request.url.path in (THREADS_PATH, REPLIES_PATH):
            h.fake.advance(120)

    h.after.append(age_links)
    result = h.run()
    assert result["status"] == "ok", result
    rows = h.rows("SELECT status FROM post_media")
    assert rows and all(r["status"] == "ok" for r in rows)
    assert any(status == 403 for _, path, status in h.fake.log if path.startswith("/cdn/"))


def test_refresh_media_gives_fresh_links_for_archived_posts(tmp_path):
    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=6, seed=17))
    carousel = next(p for p in h.fake.posts if p["media_type"] == "CAROUSEL_ALBUM")
    connector = ThreadsConnector(h.account, h.secrets, transport=h.transport)
    fresh = connector.refresh_media([carousel["id"], "1234567890"])
    assert set(fresh) == {carousel["id"]}
    assert [ref.position for ref in fresh[carousel["id"]] if ref.role != "thumbnail"] == list(
        range(len(carousel["children"])))
    assert all("oe=" in ref.url for ref in fresh[carousel["id"]])


# --------------------------------------------------------------------------- mapping


def test_mapping_of_the_notes_examples():
    item = {"id": "18050123456789013", "media_product_type": "THREADS", "media_type": "CAROUSEL_ALBUM",
            "permalink": "https://www.threads.com/@roofcam.studio/post/DAbCdEfGhIk", "username": "roofcam.studio",
            "text": " Three frames ", "timestamp": "2026-04-14T09:15:00+0000", "shortcode": "DAbCdEfGhIk",
            "is_quote_post": False, "children": {"data": [
                {"id": "18050123456789014", "media_type": "IMAGE",
                 "media_url": "https://scontent-iad3-1.cdninstagram.com/v/t51.2885-15/1111_n.jpg?oh=00_AYB&oe=6812A0B1"},
                {"id": "18050123456789015", "media_type": "VIDEO",
                 "media_url": "https://scontent-iad3-1.cdninstagram.com/o1/v/t16/f2/m69/2222.mp4?oe=6812A0B1"}]},
            "paging": {"next": "https://graph.threads.net/v1.0/1/threads?access_token=THQWJsecret&after=x"}}
    post = post_from_thread(item, metrics={"views": 9, "likes": 3, "replies": 2, "reposts": 1, "quotes": 1,
                                           "shares": 4})
    assert (post.kind, post.created_at, post.text) == ("carousel", "2026-04-14T09:15:00Z", "Three frames")
    assert [(m.role, m.position) for m in post.media] == [("image", 0), ("video", 1)]
    assert (post.view_count, post.like_count, post.comment_count, post.share_count) == (9, 3, 2, 2)
    assert "THQWJsecret" not in json.dumps(post.raw) and "oh=" not in json.dumps(post.raw)

    replies = [{"id": "1", "username": "fan_one", "text": "Where?", "timestamp": "2026-04-15T15:01:00+0000",
                "replied_to": {"id": "P"}},
               {"id": "2", "username": "roofcam.studio", "text": "Roof", "replied_to": {"id": "1"}},
               {"id": "3", "username": "fan_two", "text": "Nice", "replied_to": {"id": "2"}},
               {"id": "4", "username": "fan_two", "text": "+1", "replied_to": {"id": "1"}}]
    comments = comments_below("P", replies, "roofcam.studio")
    assert [(c.native_id, c.post_native_id, c.parent_native_id) for c in comments] == [("1", "P", None), ("4", "P", "1")]
    assert comments[0].author.native_id == "fan_one" and comments[0].created_at == "2026-04-15T15:01:00Z"
    assert [c.native_id for c in comments_below("2", replies[2:3], "roofcam.studio")] == ["3"]

    views = {"data": [{"name": "views", "values": [{"value": 3}, {"value": 4}]}]}
    clicks = {"data": [{"name": "clicks", "link_total_values": [{"value": 2}, {"value": 5}]}]}
    followers = {"data": [{"name": "followers_count", "total_value": {"value": 75}}]}
    assert (user_metric(views, "views"), user_metric(clicks, "clicks"), user_metric(followers, "followers_count")) \
        == (7, 7, 75)


def test_declarations_say_there_is_no_follower_list_in_the_api():
    assert "follower" in ThreadsConnector.export_only_holds
    assert "JSON" in ThreadsConnector.manual_export_steps and "threads/" in ThreadsConnector.manual_export_steps


# --------------------------------------------------------------------------- API and export meet


def test_the_export_of_the_same_account_merges_into_the_api_rows(tmp_path):
    """The export names no post by id: its posts land on the API's rows by creation time and
    text (what post_from_thread sets), and it adds what only it holds: the follower list."""
    from archiver.sync.jobs import run_import
    from archiver_connectors.threads.sim.fake import write_matching_export

    h = ThreadsHarness(tmp_path, FakeThreadsConfig(posts=6, seed=18, followers=7))
    assert h.run()["status"] == "ok"
    posts_before = h.rows("SELECT post_id, kind, text, created_at FROM posts ORDER BY post_id")
    export = write_matching_export(h.fake, tmp_path / "threads-export.zip")
    result = run_import(h.ws, export, platform="threads")
    assert result["status"] == "ok", result
    assert h.rows("SELECT post_id, kind, text, created_at FROM posts ORDER BY post_id") == posts_before
    assert not h.rows("SELECT post_id FROM posts WHERE post_id LIKE 'provisional:%'")
    assert h.value("SELECT count(*) FROM posts WHERE sources LIKE '%export%'") == len(
        [p for p in posts_before if p["kind"] != "boost"])
    assert h.value("SELECT member_count FROM snapshots WHERE kind='followers'") == 7
