"""`archiver export` and `archiver auth` for Facebook (a Page and a profile), in-process:
the real connector, runner, writer and media store against the stateful FakeFacebook
through httpx.MockTransport. Every test checks archive rows and what the fake was asked."""

from __future__ import annotations

import hashlib
import json
import logging
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
from archiver_connectors.facebook import FacebookConnector
from archiver_connectors.facebook.api import DAY, FacebookApi, FacebookTokens, comment_from, post_from
from archiver_connectors.facebook.sim.fake import FakeFacebook, FakeFacebookConfig

BASE_URL = "http://127.0.0.1:8797"   # never contacted: MockTransport answers in-process
ACCOUNT = "main"
ACCOUNT_ID = f"facebook:{ACCOUNT}"


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    """Posts come 5 a page (Facebook: 50), so a few posts make several pages."""
    monkeypatch.setattr("archiver_connectors.facebook.api.PAGE_LIMIT", 5)


class FacebookHarness:
    """A fake Facebook, an archive, an in-memory secret store holding what `archiver auth`
    would have stored (built by the connector's own code from a token the fake minted),
    and a switchboard (``faults`` answer instead of the fake, ``after`` hooks see each
    answer). Waits are recorded and move the fake's clock instead of sleeping."""

    def __init__(self, tmp_path: Path, config: FakeFacebookConfig | None = None, *, profile: bool = False,
                 scopes: str | None = None, token_age: float = 0):
        self.fake = FakeFacebook(config or FakeFacebookConfig(posts=8, comments_max=3), base_url=BASE_URL)
        self.secrets = open_secret_store("memory")
        self.faults: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.after: list[Callable[[httpx.Request, httpx.Response], None]] = []
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self.sleeps: list[float] = []
        self.transport = httpx.MockTransport(self._handle)
        self.profile = profile
        options = {} if profile else {"page": self.fake.page()["name"]}
        self.account = AccountConfig(name=ACCOUNT, platform="facebook", base_url=BASE_URL, options=options)
        self.user = self.fake.issue_user_token(scopes, age=token_age)
        tokens = FacebookTokens(self.secrets, ACCOUNT)
        api = FacebookApi(BASE_URL, tokens, transport=httpx.MockTransport(self.fake.handle), sleep=lambda s: None)
        record = api.account_record(self.user, kind="profile" if profile else "page",
                                    page_wanted=options.get("page"), account=ACCOUNT)
        tokens.save(record)
        self.fake.reset_usage()   # the calls above were `archiver auth`'s
        self.archive = Archive(tmp_path / "archive")
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)

    def stored(self) -> dict:
        return json.loads(self.secrets.get("facebook", ACCOUNT, "tokens"))

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

    @property
    def listing_path(self) -> str:
        return "/v25.0/me/posts" if self.profile else f"/v25.0/{self.fake.page()['id']}/published_posts"

    def sent(self, path: str, since: int = 0) -> list[httpx.Request]:
        return [r for r in self.requests[since:] if r.url.path == path]

    def rows(self, sql: str, *params) -> list[dict]:
        cursor = self.archive.db.execute(sql, list(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def value(self, sql: str, *params):
        return self.archive.db.execute(sql, list(params)).fetchone()[0]

    def post_ids(self) -> set[str]:
        return {r["post_id"] for r in self.rows("SELECT post_id FROM posts")}

    def fake_ids(self) -> set[str]:
        return {p["id"] for p in (self.fake.profile_posts if self.profile else self.fake.page()["posts"])}

    def state(self, stream: str) -> dict | None:
        row = self.archive.db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                                      [ACCOUNT_ID, stream]).fetchone()
        return json.loads(row[0]) if row else None


# --------------------------------------------------------------------------- a Page


def test_page_export_archives_profile_posts_files_counts_and_comments_with_authors(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=10, comments_max=4, authorless_share=0.2, seed=2))
    result = h.run()
    assert result["status"] == "ok", result
    page = h.fake.page()

    account = h.rows("SELECT * FROM accounts WHERE account_id=?", ACCOUNT_ID)[0]
    assert (account["native_id"], account["username"], account["display_name"], account["bio"]) == (
        page["id"], page["username"], page["name"], page["about"])
    assert (account["followers"], account["likes"]) == (120, 100)      # followers_count, fan_count
    assert h.rows("SELECT followers, likes FROM account_metrics") == [{"followers": 120, "likes": 100}]
    assert account["avatar_sha256"] and account["banner_sha256"]
    assert account["avatar_sha256"] != account["banner_sha256"]

    posts = {p["post_id"]: p for p in h.rows("SELECT * FROM posts")}
    assert set(posts) == h.fake_ids()
    kinds = {"status": "text", "photo": "image", "album": "carousel", "video": "video", "link": "link"}
    media = {}
    for row in h.rows("SELECT * FROM post_media"):
        media.setdefault(row["post_id"], set()).add((row["role"], row["position"]))
        assert row["status"] == "ok" and "?" not in row["source_url"], row
        path = h.archive.media_root / h.value("SELECT path FROM media WHERE sha256=?", row["sha256"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
    for source in page["posts"]:
        post = posts[source["id"]]
        assert post["kind"] == kinds[source["kind"]]
        assert post["text"] == source["message"]
        assert post["created_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(source["created_time"]))
        assert (post["like_count"], post["share_count"]) == (source["reactions"], source["shares"])
        assert post["comment_count"] == len(source["comments"])
        assert post["visibility"] == "public"
        expected: set = set()
        for n, part in enumerate(source["parts"]):
            expected |= {("video", n), ("thumbnail", n)} if part["kind"] == "video" else {("image", n)}
        if source["kind"] == "link":
            expected = {("thumbnail", 0)}                         # the link's preview picture
            raw = json.loads(post["raw"])["api"]
            assert raw["archiver_link"]["url"] == source["link"]["url"]       # the query of a shared link stays
            assert post["title"] == source["link"]["title"]
        assert media.get(source["id"], set()) == expected, source["kind"]
    assert any(p["shares"] == 0 for p in page["posts"])             # absent `shares` became 0

    expected_comments = {c["id"]: c for p in page["posts"] for c in p["comments"]}
    comments = {c["comment_id"]: c for c in h.rows("SELECT * FROM comments")}
    assert comments and set(comments) == set(expected_comments)
    for cid, row in comments.items():
        source = expected_comments[cid]
        assert row["text"] == source["message"] and row["parent_id"] == source["parent"]
        if source["authorless"]:
            assert row["author_id"] is None
        else:
            assert row["author_id"] == source["from"]["id"]
            assert row["by_owner"] == int(source["from"]["id"] == page["id"])
            assert h.rows("SELECT display_name FROM people WHERE person_id=?", row["author_id"]) == [
                {"display_name": source["from"]["name"]}]
    assert any(c["parent"] for c in expected_comments.values())           # replies came flat, with parent
    assert any(c["authorless"] for c in expected_comments.values())
    assert sum("withholds the author" in line for line in result["summary"]) == 1   # said once
    asked = [r for r in h.requests if r.url.path.endswith("/comments")]
    assert asked and {r.url.params["filter"] for r in asked} == {"stream"}
    assert h.state("posts") == {"mode": "incremental", "cursor": None, "pending": []}


def test_a_second_run_with_nothing_new_makes_a_handful_of_requests(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=14, comments_max=2, seed=3))
    assert h.run()["status"] == "ok"
    mark = len(h.requests)
    result = h.run()
    assert result["status"] == "ok", result
    paths = [r.url.path for r in h.requests[mark:]]
    # The Page (1), its picture and cover (2), one wholly known page of posts (1).
    assert len(paths) <= 4, paths
    assert paths.count(h.listing_path) == 1
    assert result["counts"].get("posts_new", 0) == 0 and result["counts"].get("comments_new", 0) == 0


def test_incremental_run_fetches_new_posts_and_changed_comments_only(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=12, comments_max=2, seed=4))
    assert h.run()["status"] == "ok"
    assert len(h.sent(h.listing_path)) == 3
    new = h.fake.add_post("photo")
    talked_about = h.fake.newest_first()[5]
    fresh = h.fake.add_comment(talked_about["id"], "Came back for this one", author=h.fake.people[0])
    mark = len(h.requests)
    result = h.run()
    assert result["status"] == "ok", result
    assert new["id"] in h.post_ids() and result["counts"]["posts_new"] == 1
    assert h.rows("SELECT author_id, post_id FROM comments WHERE comment_id=?", fresh["id"]) == [
        {"author_id": h.fake.people[0]["id"], "post_id": talked_about["id"]}]
    asked = {r.url.path.split("/")[2] for r in h.requests[mark:] if r.url.path.endswith("/comments")}
    assert talked_about["id"] in asked and asked <= {talked_about["id"], new["id"]}


@pytest.mark.parametrize("since_supported", [True, False])
def test_recent_posts_below_the_first_page_get_fresh_counts_and_new_comments(tmp_path, since_supported):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=6, comments_max=1, replies_max=0, seed=22,
                                                     since_supported=since_supported))
    now = int(time.time())
    young = [h.fake.add_post("status", created_time=now - 3600 * (9 - n)) for n in range(9)]   # 9 this week
    assert h.run()["status"] == "ok"
    counted, talked_about = young[1], young[2]             # below the first page (5 a page)
    counted["reactions"] += 7
    fresh = h.fake.add_comment(talked_about["id"], "late to the party", author=h.fake.people[1])
    mark = len(h.requests)
    result = h.run()
    assert result["status"] == "ok", result
    samples = h.rows("SELECT like_count FROM post_metrics WHERE post_id=? ORDER BY observed_at", counted["id"])
    assert [s["like_count"] for s in samples][-1] == counted["reactions"] and len(samples) == 2
    assert h.value("SELECT count(*) FROM comments WHERE comment_id=?", fresh["id"]) == 1
    listing = h.sent(h.listing_path, mark)
    # The listing's one known page, then the young posts again down to 30 days back: no more.
    assert len(listing) <= 4 and any("since" in r.url.params for r in listing)


def test_a_run_cut_off_mid_listing_resumes_from_its_cursor(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=17, comments_max=1, replies_max=0, seed=5))
    listed = []

    def fail_third_page(request):
        if request.url.path == h.listing_path:
            listed.append(request)
            if len(listed) == 3:   # not retryable: the run stops, the two pages before stay
                return httpx.Response(400, json={"error": {"message": "Invalid OAuth access token", "code": 190,
                                                           "type": "OAuthException"}})
        return None

    h.faults.append(fail_third_page)
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth", result
    assert "archiver auth facebook --account main" in result["message"]
    cut = h.state("posts")
    assert cut["cursor"] and len(h.post_ids()) == 10
    h.faults.clear()
    mark = len(h.requests)
    assert h.run()["status"] == "ok"
    sent = h.sent(h.listing_path, mark)
    assert "after" not in sent[0].url.params and sent[1].url.params["after"] == cut["cursor"]
    assert h.post_ids() == h.fake_ids()


def test_a_deleted_post_is_tombstoned_only_after_a_complete_listing(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=12, comments_max=1, replies_max=0, seed=6))
    assert h.run(full=True)["status"] == "ok"
    victim = h.fake.newest_first()[9]
    h.fake.delete_post(victim["id"])
    assert h.run()["status"] == "ok"                                  # incremental: never tombstones
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0

    def fail_second_page(request):
        if request.url.path == h.listing_path and "after" in request.url.params:
            return httpx.Response(500, json={"error": {"message": "boom", "code": 1, "type": "OAuthException"}})
        return None

    h.faults.append(fail_second_page)
    assert h.run(full=True)["status"] == "failed"                     # cut off: nothing judged
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0
    h.faults.clear()
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 1
    assert h.rows("SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [{"post_id": victim["id"]}]


def test_a_comment_deleted_on_facebook_is_tombstoned_after_a_complete_listing_of_its_post(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=5, comments_max=3, seed=7))
    assert h.run()["status"] == "ok"
    post = next(p for p in h.fake.page()["posts"] if p["comments"])
    victim = next(c for c in post["comments"] if c["parent"] is None)
    h.fake.delete_comment(victim["id"])
    h.fake.add_comment(post["id"], "new one")                      # the count moves: comments read again
    assert h.run()["status"] == "ok"
    assert h.value("SELECT deleted_at FROM comments WHERE comment_id=?", victim["id"]) is not None


def test_comments_without_ids_are_kept_once_and_never_tombstoned(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=5, comments_max=3, moderate=False, authorless_share=0,
                                                     seed=8))
    result = h.run()
    assert result["status"] == "ok", result
    rows = h.rows("SELECT comment_id, author_id, parent_id FROM comments")
    expected = [c for p in h.fake.page()["posts"] for c in p["comments"]]
    assert len(rows) == len(expected) and all(r["comment_id"].startswith("unnamed:") for r in rows)
    assert {r["author_id"] for r in rows} == {c["from"]["id"] for c in expected}
    assert sum("MODERATE" in line for line in result["summary"]) == 1
    again = h.run(full=True)                                       # every post's comments read again
    assert again["status"] == "ok" and h.value("SELECT count(*) FROM comments") == len(expected)
    assert h.value("SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL") == 0


def test_videos_without_a_source_in_the_attachment_are_asked_of_the_video_node(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=10, video_source="node", comments_max=0, seed=9))
    result = h.run()
    assert result["status"] == "ok", result
    videos = [part["id"] for p in h.fake.page()["posts"] for part in p["parts"] if part["kind"] == "video"]
    assert videos
    assert sorted(r.url.path.split("/")[2] for r in h.requests if r.url.params.get("fields") == "source") == sorted(videos)
    assert h.value("SELECT count(*) FROM post_media WHERE role='video' AND status='ok'") == len(videos)


def test_expired_cdn_links_are_asked_for_again_and_the_files_archived(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=6, comments_max=0, media_url_ttl=60, seed=10))

    def age_links(request, response):   # every link listed has expired by the time it is fetched
        if request.url.path == h.listing_path:
            h.fake.advance(120)

    h.after.append(age_links)
    result = h.run()
    assert result["status"] == "ok", result
    rows = h.rows("SELECT * FROM post_media")
    assert rows and all(r["status"] == "ok" for r in rows)
    refused = [p for _, p, status in h.fake.log if p.startswith("/cdn/") and status == 403]
    assert refused and len(refused) == len(rows)
    # One read of each post for its fresh links, not one per file.
    reads = [r.url.path for r in h.requests if r.url.path.count("/") == 2 and "_" in r.url.path]
    assert len(reads) == len(set(reads)) == len({r["post_id"] for r in rows})


def test_refresh_media_gives_fresh_links_and_skips_posts_gone(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=5, comments_max=0, seed=11))
    album = next(p for p in h.fake.page()["posts"] if p["kind"] == "album")
    gone = next(p for p in h.fake.page()["posts"] if p["kind"] == "photo")
    h.fake.delete_post(gone["id"])
    connector = FacebookConnector(h.account, h.secrets, transport=h.transport)
    fresh = connector.refresh_media([album["id"], gone["id"]])
    assert list(fresh) == [album["id"]]
    assert [(r.role, r.position) for r in fresh[album["id"]] if r.role == "image"] == [
        ("image", n) for n, part in enumerate(album["parts"]) if part["kind"] == "photo"]


# --------------------------------------------------------------------------- errors


def test_missing_permission_on_the_posts_names_it(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=3, seed=12), scopes="pages_show_list,public_profile")
    result = h.run()
    assert result["status"] == "failed", result
    assert "pages_read_engagement" in result["message"] and "archiver auth facebook" in result["message"]


def test_missing_permission_on_comments_keeps_the_posts_and_says_so_once(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=6, comments_max=3, seed=13),
                        scopes="pages_show_list,pages_read_engagement")
    result = h.run()
    assert result["status"] == "ok", result
    assert h.post_ids() == h.fake_ids() and h.value("SELECT count(*) FROM comments") == 0
    refusals = [e for e in result["errors"] if "pages_read_user_content" in e["error"]]
    assert len(refusals) == 1
    assert len([r for r in h.requests if r.url.path.endswith("/comments")]) == 1   # asked once, not per post


@pytest.mark.parametrize("how", ["password", "role", "app"])
def test_a_page_token_that_died_mid_run_keeps_what_was_written_and_says_reauth(tmp_path, how):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=12, comments_max=0, seed=14))
    pages = []

    def kill(request, response):
        if request.url.path == h.listing_path:
            pages.append(1)
            if len(pages) == 1:
                {"password": h.fake.change_password, "role": h.fake.remove_page_role,
                 "app": h.fake.remove_app}[how]()

    h.after.append(kill)
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth", result
    assert "archiver auth facebook --account main" in result["message"]
    assert "the Facebook Page 'Roof Cam Studio'" in result["message"]     # which Page, in status too
    assert len(h.post_ids()) == 5
    if how == "password":
        assert "190/460" in result["message"]


def test_a_page_that_vanished_loses_nothing(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=6, comments_max=1, seed=21))
    assert h.run(full=True)["status"] == "ok"
    before = h.value("SELECT count(*) FROM posts")
    h.fake.delete_page()
    result = h.run(full=True)
    assert result["status"] == "failed" and result["failure_kind"] == "gone", result
    assert "no longer gives the Page 'Roof Cam Studio'" in result["message"]
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NULL") == before == 6


def test_an_expired_profile_token_asks_for_auth_without_calling_facebook(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=2, profile_posts=3, seed=15), profile=True)
    h.secrets.set("facebook", ACCOUNT, "tokens", json.dumps({**h.stored(), "expires_at": time.time() - 5}))
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert "archiver auth facebook --account main" in result["message"] and "expired" in result["message"]
    assert h.requests == []


def test_a_profile_token_near_its_end_raises_an_alert_that_a_renewed_one_resolves(tmp_path):
    import datetime as dt

    from archiver.ops import alerts
    from archiver.ops.status import account_status, render_status

    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=2, profile_posts=2, seed=16), profile=True)
    assert h.run()["status"] == "ok"
    ends = dt.datetime.fromtimestamp(h.stored()["expires_at"], dt.timezone.utc)
    [row] = account_status(h.archive, h.ws.config)
    assert row["authorization_expires_at"] == ends.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"authorization runs out: {row['authorization_expires_at']}" in render_status([row])

    def open_ones(now):
        alerts.evaluate_account(h.ws, h.account, now=now)
        return [a for a in account_status(h.archive, h.ws.config, now=now)[0]["open_alerts"]
                if a["kind"] == "auth_expiring"]

    assert open_ones(ends - dt.timedelta(days=20)) == []          # [alerts] auth_expiry_days = 14
    [alert] = open_ones(ends - dt.timedelta(days=10))
    assert "runs out in 10 days" in alert["message"], alert["message"]
    assert "archiver auth facebook --account main" in alert["message"]
    # Authorized again later (a new token, 60 days from then): the next run knows its end, the alert resolves.
    h.secrets.set("facebook", ACCOUNT, "tokens", json.dumps({**h.stored(), "expires_at": time.time() + 110 * DAY}))
    assert h.run()["status"] == "ok"
    assert open_ones(ends - dt.timedelta(days=10)) == []


def test_a_page_token_has_no_end_and_raises_no_expiry_alert(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=2, seed=17))
    assert h.run()["status"] == "ok"
    assert h.state("authorization") is None


@pytest.mark.parametrize("code,status", [(32, 400), (80001, 403), (4, 400)])
def test_throttle_codes_are_waited_out_then_the_run_goes_on(tmp_path, monkeypatch, code, status):
    monkeypatch.setattr(FacebookApi, "max_throttle_wait", 2 * 3600)
    profile = code == 4
    # A user token's X-App-Usage says no time to regain access: the waits double from a
    # minute, so the profile's window is ten minutes.
    config = FakeFacebookConfig(posts=6, profile_posts=6, rate_limit=2 if profile else 4,
                                rate_window=600 if profile else 3600, comments_max=1, replies_max=0, seed=16,
                                page_throttle_code=code if not profile else 32, throttle_status=status)
    h = FacebookHarness(tmp_path, config, profile=profile)
    result = h.run()
    assert result["status"] == "ok", result
    throttled = [r for r in h.responses if r.status_code == status and "error" in r.json()]
    assert throttled and {r.json()["error"]["code"] for r in throttled} == {code}
    assert h.post_ids() == h.fake_ids()
    assert sum(h.sleeps) >= 60


def test_a_throttle_longer_than_the_cap_stops_the_run_and_the_next_resumes(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=12, comments_max=0, seed=23))
    page_id = h.fake.page()["id"]

    def two_hours(request):   # the Pages BUC allowance is spent for the next two hours
        if request.url.path == h.listing_path and "after" in request.url.params:
            usage = {page_id: [{"type": "pages", "call_count": 100, "total_cputime": 40, "total_time": 40,
                                "estimated_time_to_regain_access": 120}]}
            return httpx.Response(400, headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
                                  json={"error": {"message": "(#80001) There have been too many calls to this "
                                                             "Page account.", "code": 80001, "type": "OAuthException"}})
        return None

    h.faults.append(two_hours)
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "rate_limited", result
    assert "resumes from its checkpoint" in result["message"] and len(h.post_ids()) == 5
    assert sum(h.sleeps) < 15 * 60                          # it did not sit out two hours
    h.faults.clear()
    assert h.run()["status"] == "ok" and h.post_ids() == h.fake_ids()


def test_temporarily_blocked_and_transient_errors_are_retried(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=4, comments_max=1, seed=17))
    h.fake.block_next(1)
    errors = iter([2, 1])

    def transient(request):
        if request.url.path == h.listing_path:
            code = next(errors, None)
            if code is not None:
                return httpx.Response(500, json={"error": {"message": "Please retry", "code": code,
                                                           "is_transient": True}})
        return None

    h.faults.append(transient)
    result = h.run()
    assert result["status"] == "ok", result
    assert [r.json()["error"]["code"] for r in h.responses if r.status_code >= 400] == [368, 2, 1]
    assert h.post_ids() == h.fake_ids()


def test_no_token_or_secret_reaches_the_archive_logs_or_stored_urls(tmp_path, caplog):
    install_log_scrubbing()          # what the CLI and the daemon do at start
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=8, comments_max=2, fail_rate=0.1, seed=18))
    caplog.set_level(logging.DEBUG)
    result = h.run()
    assert result["status"] == "ok", result
    stored = h.stored()
    secrets = [stored["access_token"], stored["user_access_token"], h.fake.config.client_secret]
    nexts = [r.json().get("paging", {}).get("next", "") for r in h.responses
             if r.headers.get("content-type", "").startswith("application/json")]
    assert any(stored["access_token"] in n for n in nexts)          # Facebook put it in paging.next
    blob = b"".join(p.read_bytes() for p in h.archive.folder.rglob("*") if p.is_file())
    for secret in secrets:
        assert secret.encode() not in blob
        assert secret not in caplog.text and secret not in json.dumps(result)
    assert b"access_token" not in blob and b"oe=" not in blob
    assert all("?" not in r["source_url"] for r in h.rows("SELECT source_url FROM post_media"))


# --------------------------------------------------------------------------- a profile


def test_profile_account_archives_own_posts_as_the_export_will_name_them(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=2, profile_posts=6, seed=19), profile=True,
                        token_age=50 * DAY)
    result = h.run()
    assert result["status"] == "ok", result
    posts = {p["post_id"]: p for p in h.rows("SELECT * FROM posts")}
    assert set(posts) == h.fake_ids()
    for source in h.fake.profile_posts:
        post = posts[source["id"]]
        assert post["created_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(source["created_time"]))
        assert post["text"] == source["message"] and post["visibility"] == "friends"   # ALL_FRIENDS
        assert post["like_count"] == source["reactions"]
    # Comments by others are not in the API: none asked for, none stored.
    assert not [r for r in h.requests if r.url.path.endswith("/comments")]
    assert h.value("SELECT count(*) FROM comments") == 0
    account = h.rows("SELECT native_id, display_name FROM accounts")[0]
    assert account == {"native_id": h.fake.person["id"], "display_name": h.fake.person["name"]}
    # Ten days left of the 60: the run says when it runs out, and what to do.
    notes = [line for line in result["summary"] if "runs out" in line]
    assert len(notes) == 1 and "archiver auth facebook --account main" in notes[0]
    # Reminders to request the export: for a profile, never for a Page.
    assert "friends" in FacebookConnector.export_only_holds_for({})
    assert FacebookConnector.export_only_holds_for({"page": "Roof Cam Studio"}) == ""


def test_profile_and_page_accounts_refuse_a_record_stored_for_the_other_kind(tmp_path):
    h = FacebookHarness(tmp_path, FakeFacebookConfig(posts=2, seed=20), profile=True)
    page_account = AccountConfig(name=ACCOUNT, platform="facebook", base_url=BASE_URL, options={"page": "Roof Cam Studio"})
    h.ws = Workspace(h.archive, Config(path=None, accounts=[page_account]), h.secrets)
    h.account = page_account
    result = h.run()
    assert result["status"] == "failed" and "archiver auth facebook" in result["message"]


# --------------------------------------------------------------------------- mapping


def test_mapping_of_the_notes_examples():
    item = {"id": "104512345678901_122101234567890123", "message": "Three sunsets, one week",
            "created_time": "2024-05-01T18:22:31+0000",
            "permalink_url": "https://www.facebook.com/104512345678901/posts/122101234567890123",
            "attachments": {"data": [{"media_type": "album", "url": "https://www.facebook.com/photo/?fbid=1",
                                      "subattachments": {"data": [{"media_type": "photo", "media": {"image": {
                                          "height": 720, "width": 960,
                                          "src": "https://scontent.fxyz1-1.fna.fbcdn.net/v/t39/4455_n.jpg?oh=00_A&oe=67B0C1D2"}},
                                          "target": {"id": "122101234567890100"}, "type": "photo"}]}}]},
            "comments": {"data": [], "summary": {"order": "ranked", "total_count": 14, "can_comment": True}},
            "reactions": {"data": [], "summary": {"total_count": 311, "viewer_reaction": "NONE"}},
            "shares": {"count": 3}}
    post = post_from(item)
    assert (post.created_at, post.text, post.kind) == ("2024-05-01T18:22:31Z", "Three sunsets, one week", "carousel")
    assert (post.like_count, post.comment_count, post.share_count) == (311, 14, 3)
    assert [(m.role, m.position) for m in post.media] == [("image", 0)]
    assert "oe=" not in json.dumps(post.raw)
    assert post_from({**item, "shares": None}).share_count == 0 and post_from(
        {k: v for k, v in item.items() if k != "shares"}).share_count == 0
    reply = comment_from({"id": "1_2", "message": "From our roof!", "created_time": "2024-05-01T19:10:00+0000",
                          "from": {"id": "104512345678901", "name": "Roof Cam Studio"},
                          "parent": {"id": "1_1"}}, item["id"], "104512345678901")
    assert (reply.parent_native_id, reply.by_owner, reply.author.display_name) == ("1_1", True, "Roof Cam Studio")


# --------------------------------------------------------------------------- authorization


def play_browser(fake: FakeFacebook):
    """Open the login URL on the fake and follow its redirect to the loopback callback."""
    def browser(url: str) -> None:
        answer = fake.handle(httpx.Request("GET", url))
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.endswith("#_=_")
        with httpx.Client(timeout=10) as real:     # the loopback server is real
            real.get(location)
    return browser


def authorize(fake: FakeFacebook, options: dict, secrets=None):
    secrets = secrets or open_secret_store("memory")
    connector = FacebookConnector(AccountConfig(name=ACCOUNT, platform="facebook", base_url=BASE_URL, options=options),
                                  secrets, transport=httpx.MockTransport(fake.handle))
    message = connector.authorize(echo=lambda text: None, open_browser=play_browser(fake),
                                  client_id=fake.config.client_id, client_secret=fake.config.client_secret, timeout=10)
    return message, secrets


def test_authorize_a_page_stores_its_page_token_from_a_long_lived_user_token(tmp_path):
    fake = FakeFacebook(FakeFacebookConfig(posts=2), base_url=BASE_URL)
    page = fake.page()
    message, secrets = authorize(fake, {"page": page["id"]})
    stored = json.loads(secrets.get("facebook", ACCOUNT, "tokens"))
    assert fake.token_info(stored["access_token"])["kind"] == "page"
    assert fake.token_info(stored["user_access_token"])["kind"] == "long"
    assert (stored["page_id"], stored["page_name"], stored["expires_at"]) == (page["id"], page["name"], None)
    assert stored["user_expires_at"] > time.time() + 59 * DAY
    assert "pages_read_engagement" in stored["permissions"]
    assert page["name"] in message and stored["access_token"] not in message
    assert secrets.get("facebook", ACCOUNT, "client_secret") == fake.config.client_secret


def test_authorize_a_page_the_person_does_not_manage_names_those_they_do(tmp_path):
    fake = FakeFacebook(FakeFacebookConfig(posts=2), base_url=BASE_URL)
    fake.remove_page_role()
    with pytest.raises(OAuthError) as refused:
        authorize(fake, {"page": "Roof Cam Studio"})
    text = str(refused.value)
    assert "'Roof Cam Studio'" in text and fake.pages[1]["name"] in text and fake.pages[1]["id"] in text
    assert "EAA" not in text


def test_authorize_a_profile_stores_the_long_lived_user_token_and_says_when_it_runs_out(tmp_path):
    fake = FakeFacebook(FakeFacebookConfig(posts=2), base_url=BASE_URL)
    message, secrets = authorize(fake, {})
    stored = json.loads(secrets.get("facebook", ACCOUNT, "tokens"))
    assert stored["kind"] == "profile" and fake.token_info(stored["access_token"])["kind"] == "long"
    assert stored["expires_at"] > time.time() + 59 * DAY and "valid until" in message
    assert "archiver auth facebook --account main" in message


def test_authorize_refuses_when_a_needed_permission_was_not_granted(tmp_path):
    fake = FakeFacebook(FakeFacebookConfig(posts=2, granted_scopes="public_profile,pages_show_list"),
                        base_url=BASE_URL)
    with pytest.raises(OAuthError, match="pages_read_engagement"):
        authorize(fake, {"page": fake.page()["name"]})
