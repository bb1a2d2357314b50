"""`archiver export` and `archiver auth` for Instagram, in-process: the real connector,
runner, writer and media store against the stateful FakeInstagram through
httpx.MockTransport. Every test checks archive rows and what the fake was asked."""

from __future__ import annotations

import hashlib
import re
import json
import logging
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.sync.jobs import Workspace, run_export
from archiver.net.client import install_log_scrubbing
from archiver.net.oauth import OAuthError
from archiver.secrets import open_secret_store
from archiver_connectors.instagram import InstagramConnector
from archiver_connectors.instagram.api import (
    DAY, MEDIA_FIELDS, InstagramTokens, UsagePacer, comments_from, post_from_media, usage_of)
from archiver_connectors.instagram.sim.fake import FakeInstagram, FakeInstagramConfig
from tiktok_sync_harness import ticking_clock

BASE_URL = "http://127.0.0.1:8798"   # never contacted: MockTransport answers in-process
ACCOUNT = "main"
ACCOUNT_ID = f"instagram:{ACCOUNT}"
MEDIA_PATH = "/v23.0/me/media"


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


class InstagramHarness:
    """A fake Instagram, an archive, an in-memory secret store holding a token the fake
    minted, and a switchboard (``faults`` answer instead of the fake, ``after`` hooks see
    each answer). Waits are recorded and move the fake's clock instead of sleeping."""

    def __init__(self, tmp_path: Path, config: FakeInstagramConfig | None = None, *, token_age: float = 0,
                 folder: str = "archive", scopes: str | None = None):
        self.fake = FakeInstagram(config or FakeInstagramConfig(), base_url=BASE_URL)
        self.secrets = open_secret_store("memory")
        self.secrets.set("instagram", ACCOUNT, "client_id", self.fake.config.client_id)
        self.secrets.set("instagram", ACCOUNT, "client_secret", self.fake.config.client_secret)
        self.faults: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.after: list[Callable[[httpx.Request, httpx.Response], None]] = []
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self.sleeps: list[float] = []
        self.transport = httpx.MockTransport(self._handle)
        self.account = AccountConfig(name=ACCOUNT, platform="instagram", base_url=BASE_URL)
        self.initial = self.authorize(scopes, age=token_age)
        self.archive = Archive(tmp_path / folder)
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)

    def authorize(self, scopes=None, age: float = 0) -> dict:
        tokens = self.fake.issue_tokens(scopes, age=age)
        store = InstagramTokens(self.secrets, ACCOUNT, BASE_URL, httpx.Client(transport=self.transport),
                                clock=lambda: time.time() - age)
        store.store(tokens, user_id=tokens["user_id"], permissions=tokens["permissions"])
        return tokens

    def stored(self) -> dict:
        return json.loads(self.secrets.get("instagram", ACCOUNT, "tokens"))

    def edit_stored(self, **changes) -> None:
        self.secrets.set("instagram", ACCOUNT, "tokens", json.dumps(self.stored() | changes))

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

    def sent(self, path: str, since: int = 0) -> list[httpx.Request]:
        return [r for r in self.requests[since:] if r.url.path == path]

    @property
    def db(self):
        return self.archive.db

    def rows(self, sql: str, *params) -> list[dict]:
        cursor = self.db.execute(sql, list(params))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def value(self, sql: str, *params):
        return self.db.execute(sql, list(params)).fetchone()[0]

    def post_ids(self) -> set[str]:
        return {r["post_id"] for r in self.rows("SELECT post_id FROM posts")}

    def fake_ids(self) -> set[str]:
        return {m["id"] for m in self.fake.media}

    def state(self, stream: str) -> dict | None:
        row = self.db.execute("SELECT state FROM sync_state WHERE account_id=? AND stream=?",
                              [ACCOUNT_ID, stream]).fetchone()
        return json.loads(row[0]) if row else None


def all_tables(h: InstagramHarness) -> dict[str, list]:
    names = [r[0] for r in h.db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE '%_fts%' AND name != 'runs'")]
    return {name: sorted(map(repr, h.db.execute(f"SELECT * FROM [{name}]").fetchall())) for name in names}


# --------------------------------------------------------------------------- first run


def test_first_run_archives_profile_media_files_carousels_reels_and_comments_with_authors(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=60, seed=3, copyrighted_reels=0.5))
    result = h.run()
    assert result["status"] == "ok", result

    account = h.rows("SELECT * FROM accounts WHERE account_id=?", ACCOUNT_ID)[0]
    user = h.fake.user
    assert (account["native_id"], account["username"], account["display_name"], account["bio"]) == (
        user["user_id"], user["username"], user["name"], user["biography"])
    assert (account["followers"], account["following"], account["posts"]) == (50, 20, 60)

    # Paged: several /me/media pages, each asked with the cursor of the one before.
    pages = h.sent(MEDIA_PATH)
    assert len(pages) == 2 and "after" not in pages[0].url.params and pages[1].url.params["after"]
    posts = {p["post_id"]: p for p in h.rows("SELECT * FROM posts")}
    assert set(posts) == h.fake_ids()
    kinds = {"IMAGE": "image", "VIDEO": "video", "CAROUSEL_ALBUM": "carousel"}
    for media in h.fake.media:
        post = posts[media["id"]]
        expected = "reel" if media["media_product_type"] == "REELS" else kinds[media["media_type"]]
        assert post["kind"] == expected
        assert post["text"] == (media["caption"] or None)
        assert post["url"].startswith("https://www.instagram.com/")
        assert post["like_count"] == media["like_count"]
        assert post["comment_count"] == h.fake.comments_count(media)

    # Files: every carousel child at its position, videos with thumbnails, all downloaded.
    media_rows = h.rows("SELECT * FROM post_media")
    assert media_rows and all(r["status"] == "ok" and "?" not in r["source_url"] for r in media_rows)
    for row in media_rows:
        path = h.archive.media_root / h.value("SELECT path FROM media WHERE sha256=?", row["sha256"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
    by_post: dict[str, set] = {}
    for row in media_rows:
        by_post.setdefault(row["post_id"], set()).add((row["role"], row["position"]))
    carousels = [m for m in h.fake.media if m["media_type"] == "CAROUSEL_ALBUM"]
    assert carousels
    for media in carousels:
        for n, child in enumerate(media["children"]):
            role = "video" if child["media_type"] == "VIDEO" else "image"
            assert (role, n) in by_post[media["id"]]
            if role == "video":
                assert ("thumbnail", n) in by_post[media["id"]]
    copyrighted = [m for m in h.fake.media if m["copyrighted"]]
    assert copyrighted
    for media in copyrighted:           # no media_url: the thumbnail is kept, and says why
        assert by_post[media["id"]] == {("thumbnail", 0)}
        raw = json.loads(posts[media["id"]]["raw"])["api"]
        assert "copyrighted" in raw["archiver_note"]
        assert any(e["item"] == f"media {media['id']}" for e in result["errors"])
    # Said once: the next run, which refreshes recent media again, does not repeat it nightly.
    again = h.run()
    assert again["status"] == "ok" and not any("copyrighted" in e["error"] for e in again["errors"]), again

    # Comments with their replies and authors, linked to people.
    expected = {c["id"]: c for c in h.fake.all_comments()}
    assert expected
    comments = {c["comment_id"]: c for c in h.rows("SELECT * FROM comments")}
    assert set(comments) == set(expected)
    for cid, comment in comments.items():
        source = expected[cid]
        assert comment["text"] == source["text"] and comment["author_id"] == source["from"]["username"]
        assert comment["parent_id"] == source.get("parent_id")
        assert comment["by_owner"] == int(source["from"]["id"] == h.fake.user["user_id"])
        person = h.rows("SELECT handle FROM people WHERE person_id=?", comment["author_id"])
        assert person == [{"handle": source["from"]["username"]}]
    # Replies beyond the expansion's first page were fetched through /{comment-id}/replies.
    assert any(r.url.path.endswith("/replies") for r in h.requests)
    assert h.state("media") == {"mode": "incremental", "cursor": None, "pending": []}


# --------------------------------------------------------------------------- incremental


def test_incremental_run_stops_at_a_known_page_and_fetches_new_comments(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=160, seed=4))
    assert h.run()["status"] == "ok"
    assert len(h.sent(MEDIA_PATH)) == 4

    new = h.fake.add_media(media_type="IMAGE", media_product_type="FEED", copyrighted=False, comments=[])
    talked_about = h.fake.newest_first()[10]
    fresh = h.fake.add_comment(talked_about["id"], "Came back for this one", author=h.fake.fans[0])
    mark = len(h.requests)
    result = h.run()
    assert result["status"] == "ok", result
    assert len(h.sent(MEDIA_PATH, mark)) == 2                  # the new page, then a wholly known one
    assert new["id"] in h.post_ids() and result["counts"]["posts_new"] == 1
    assert h.rows("SELECT author_id, post_id FROM comments WHERE comment_id=?", fresh["id"]) == [
        {"author_id": h.fake.fans[0]["username"], "post_id": talked_about["id"]}]
    # Only media whose comment count changed had their comments asked for again.
    asked = {r.url.path.split("/")[2] for r in h.requests[mark:] if r.url.path.endswith("/comments")}
    assert asked <= {talked_about["id"], new["id"]} and talked_about["id"] in asked


def test_interrupted_first_run_resumes_from_its_cut_off_point(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=200, seed=5))
    from archiver.sync.runner import CancelFlag

    flag, written = CancelFlag(), []

    def progress(line):
        if line.startswith("media:"):
            written.append(line)
            if len(written) == 2:
                flag.set()

    assert h.run(cancel=flag, progress=progress)["status"] == "interrupted"
    cut = h.state("media")
    assert cut["cursor"] and 0 < len(h.post_ids()) < 200
    mark = len(h.requests)
    assert h.run()["status"] == "ok"
    sent = h.sent(MEDIA_PATH, mark)
    assert "after" not in sent[0].url.params and sent[1].url.params["after"] == cut["cursor"]
    assert h.post_ids() == h.fake_ids()


def test_caption_edit_goes_to_post_versions(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=20, seed=6))
    assert h.run()["status"] == "ok"
    top = h.fake.newest_first()[0]
    before = h.value("SELECT text FROM posts WHERE post_id=?", top["id"])
    h.fake.edit_caption(top["id"], "A better caption")
    assert h.run()["status"] == "ok"
    assert h.rows("SELECT post_id, text FROM post_versions") == [{"post_id": top["id"], "text": before}]
    assert h.value("SELECT text FROM posts WHERE post_id=?", top["id"]) == "A better caption"


def test_deleted_media_is_tombstoned_only_by_a_full_listing(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=70, seed=7))
    assert h.run(full=True)["status"] == "ok"
    victim = h.fake.newest_first()[3]
    h.fake.delete_media(victim["id"])
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 1
    assert h.rows("SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [{"post_id": victim["id"]}]
    assert "last_full_at" in h.state("media")


# --------------------------------------------------------------------------- tokens


def refreshes(h: InstagramHarness, since: int = 0) -> list[httpx.Request]:
    return h.sent("/refresh_access_token", since)


def test_young_token_is_not_refreshed(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=5, seed=8))
    assert h.run()["status"] == "ok"
    assert refreshes(h) == [] and h.stored()["access_token"] == h.initial["access_token"]


def test_token_past_the_refresh_point_is_refreshed_before_the_first_call(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=5, seed=9), token_age=20 * DAY)
    assert h.stored()["expires_at"] - time.time() < 45 * DAY
    result = h.run()
    assert result["status"] == "ok", result
    assert h.requests[0].url.path == "/refresh_access_token"
    stored = h.stored()
    assert stored["access_token"] != h.initial["access_token"]
    assert stored["expires_at"] > time.time() + 59 * DAY
    assert stored["user_id"] == h.fake.user["user_id"]
    # The data calls used the new token.
    assert {r.url.params["access_token"] for r in h.sent(MEDIA_PATH)} == {stored["access_token"]}
    mark = len(h.requests)
    assert h.run()["status"] == "ok" and refreshes(h, mark) == []     # fresh again: no refresh


def test_token_under_24_hours_old_is_never_refreshed_even_when_short_lived(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=5, seed=10), token_age=3600)
    h.edit_stored(expires_at=time.time() + 10 * DAY)   # close to its end, but only an hour old
    assert h.run()["status"] == "ok"
    assert refreshes(h) == []
    assert not any(r.status_code >= 400 for r in h.responses)


def test_refused_refresh_keeps_the_still_valid_token(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=5, seed=11), token_age=20 * DAY)
    h.faults.append(lambda r: httpx.Response(500, text="oops") if r.url.path == "/refresh_access_token" else None)
    assert h.run()["status"] == "ok"
    assert h.stored()["access_token"] == h.initial["access_token"] and len(refreshes(h)) == 1


def test_expired_token_asks_for_reauthorization_without_calling_instagram(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=5, seed=12))
    h.edit_stored(expires_at=time.time() - 5)
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert "archiver auth instagram" in result["message"]
    assert h.requests == []


@pytest.mark.parametrize("how", ["expire", "revoke"])
def test_token_rejected_mid_run_keeps_written_pages_and_says_reauth(tmp_path, how):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=160, seed=13))
    pages = []

    def kill_after_first_page(request, response):
        if request.url.path == MEDIA_PATH:
            pages.append(1)
            if len(pages) == 2:   # the first page (media and comments) is written by then
                h.fake.expire_tokens() if how == "expire" else h.fake.revoke_all()

    h.after.append(kill_after_first_page)
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert "archiver auth instagram" in result["message"]
    assert 0 < len(h.post_ids()) < 160
    assert refreshes(h) == []        # an Instagram token is never renewed after a 190


# --------------------------------------------------------------------------- rate limits


@pytest.mark.parametrize("code,status", [(80002, 400), (4, 403), (17, 400), (613, 429)])
def test_throttle_error_codes_wait_then_go_on(tmp_path, monkeypatch, code, status):
    monkeypatch.setattr("archiver_connectors.instagram.api.MAX_THROTTLE_WAIT", 2 * 3600)
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=40, seed=14, rate_limit=12, throttle_code=code,
                                                       throttle_status=status, comments_max=2, replies_max=0))
    result = h.run()
    assert result["status"] == "ok", result
    throttled = [r for r in h.responses if r.status_code == status and "error" in r.json()]
    assert throttled and {r.json()["error"]["code"] for r in throttled} == {code}
    assert h.post_ids() == h.fake_ids()
    # Waited as long as the header's estimated_time_to_regain_access (minutes) said.
    regain = [json.loads(r.headers["x-business-use-case-usage"]).popitem()[1][0]["estimated_time_to_regain_access"]
              for r in throttled]
    assert sum(h.sleeps) >= max(regain) * 60 > 0


def test_throttle_longer_than_the_cap_stops_the_run_and_the_next_resumes(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=160, seed=15, rate_limit=3, comments_max=0))

    def hour_long_throttle(request):
        if request.url.path == MEDIA_PATH and "after" in request.url.params and not done:
            done.append(1)
            return httpx.Response(400, json={"error": {"message": "too many calls", "type": "OAuthException",
                                                       "code": 80002, "fbtrace_id": "x"}},
                                  headers={"X-Business-Use-Case-Usage": json.dumps(
                                      {"1": [{"type": "instagram", "call_count": 100,
                                              "estimated_time_to_regain_access": 60}]})})
        return None

    done: list = []
    h.fake.config.rate_limit = 10_000
    h.faults.append(hour_long_throttle)
    result = h.run()
    assert result["status"] == "failed" and result["failure_kind"] == "rate_limited"
    assert "resumes" in result["message"]
    cut = h.state("media")
    assert cut["cursor"] and 0 < len(h.post_ids()) < 160
    assert h.run()["status"] == "ok" and h.post_ids() == h.fake_ids()


def test_usage_headers_slow_the_client_down():
    pacer = UsagePacer()
    calm = httpx.Headers({"X-App-Usage": json.dumps({"call_count": 20, "total_time": 5, "total_cputime": 5})})
    busy = httpx.Headers({"X-Business-Use-Case-Usage": json.dumps(
        {"17841": [{"type": "instagram", "call_count": 90, "total_time": 1, "total_cputime": 1,
                    "estimated_time_to_regain_access": 0}]})})
    blocked = httpx.Headers({"X-Business-Use-Case-Usage": json.dumps(
        {"17841": [{"call_count": 100, "estimated_time_to_regain_access": 7}]})})
    assert usage_of(calm) == (20, 0) and usage_of(busy) == (90, 0) and usage_of(blocked) == (100, 7)
    pacer.observe("h", calm)
    assert pacer.delay_for("h") == 0
    pacer.observe("h", busy)
    assert 5 < pacer.delay_for("h") < 64
    pacer.observe("h", blocked)
    assert pacer.delay_for("h") > 7 * 60 - 5
    slept = []
    pacer.wait("h", slept.append)
    assert slept and pacer.delay_for("h") == 0   # a block slept off is over


def test_fake_rate_limit_headers_make_the_run_pause(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=30, seed=16, rate_limit=20, comments_max=1, replies_max=0))
    assert h.run()["status"] == "ok"
    assert sum(h.sleeps) >= 2                     # slowed down past 75 %
    assert not any(r.status_code >= 400 for r in h.responses)   # and was never refused


# --------------------------------------------------------------------------- secrets


def test_a_token_inside_paging_next_is_found_nowhere_afterwards(tmp_path, caplog):
    install_log_scrubbing()          # what the CLI and the daemon do at start
    planted = "IGAAplanted" + "Q" * 30
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=120, seed=17, fail_rate=0.1))
    token = h.initial["access_token"]

    def plant(request):   # a paging.next carrying a token the client never sent
        if request.url.path == MEDIA_PATH and "after" not in request.url.params:
            body = json.loads(h.fake.handle(request).content)
            body["paging"]["next"] = body["paging"]["next"].replace(token, planted)
            return httpx.Response(200, json=body)
        return None

    h.faults.append(plant)
    caplog.set_level(logging.DEBUG)
    result = h.run()
    assert result["status"] == "ok", result
    nexts = [r.json().get("paging", {}).get("next", "") for r in h.responses
             if r.headers.get("content-type", "").startswith("application/json")]
    assert any(token in n for n in nexts) and any(planted in n for n in nexts)

    stored = b""
    for path in h.archive.folder.rglob("*"):
        if path.is_file():
            stored += path.read_bytes()
    texts = [caplog.text, json.dumps(result)]
    for secret in (token, planted):
        assert secret.encode() not in stored
        assert all(secret not in t for t in texts)
    assert b"access_token" not in stored
    assert planted not in caplog.text and planted not in json.dumps(result)
    # A paging URL is never stored: not in state, not in a raw payload.
    assert "after=" not in json.dumps(h.state("media"))


# --------------------------------------------------------------------------- failure modes


def test_vanished_platform_changes_nothing(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=30, seed=18))
    assert h.run()["status"] == "ok"
    before = all_tables(h)

    def gone(request):
        raise httpx.ConnectError("Name or service not known", request=request)

    h.faults.append(gone)
    for full in (False, True):
        result = h.run(full=full)
        assert result["status"] == "failed" and result["failure_kind"] == "transport"
    assert all_tables(h) == before

    h.faults[:] = [lambda r: httpx.Response(404, html="<html>Sorry, this page isn't available.</html>")]
    assert h.run(full=True)["status"] == "failed"
    assert all_tables(h) == before


def test_empty_complete_listing_tombstones_nothing(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=10, seed=19))
    assert h.run(full=True)["status"] == "ok"
    h.faults.append(lambda r: httpx.Response(200, json={"data": []}) if r.url.path == MEDIA_PATH else None)
    result = h.run(full=True)
    assert result["status"] == "ok"
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0


def test_personal_account_run_is_told_its_path_is_the_export(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=5, account_type="PERSONAL", personal_refusal="api"))
    result = h.run()
    assert result["status"] == "failed" and "Download your information" in result["message"]
    assert h.value("SELECT count(*) FROM posts") == 0


def test_comments_without_the_permission_are_reported_not_failed(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=10, seed=20), scopes="instagram_business_basic")
    result = h.run()
    assert result["status"] == "ok" and h.post_ids() == h.fake_ids()
    assert any("instagram_business_manage_comments" in e["error"] for e in result["errors"])
    assert len([r for r in h.requests if r.url.path.endswith("/comments")]) == 1   # asked once, then stopped


# --------------------------------------------------------------------------- auth


def play_browser(fake: FakeInstagram):
    """Open the authorize URL on the fake and follow its redirect to the loopback callback."""
    def browser(url: str) -> None:
        answer = fake.handle(httpx.Request("GET", url))
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.endswith("#_")
        with httpx.Client(timeout=10) as real:     # the loopback server is real
            real.get(location)
    return browser


@pytest.mark.parametrize("shape", ["data", "flat"])
def test_authorize_exchanges_code_for_a_long_lived_token(tmp_path, shape):
    fake = FakeInstagram(FakeInstagramConfig(media=3, code_response=shape), base_url=BASE_URL)
    secrets = open_secret_store("memory")
    connector = InstagramConnector(AccountConfig(name=ACCOUNT, platform="instagram", base_url=BASE_URL), secrets,
                                   transport=httpx.MockTransport(fake.handle))
    message = connector.authorize(echo=lambda text: None, open_browser=play_browser(fake),
                                  client_id=fake.config.client_id, client_secret=fake.config.client_secret,
                                  timeout=10)
    stored = json.loads(secrets.get("instagram", ACCOUNT, "tokens"))
    assert fake.token_info(stored["access_token"])["kind"] == "long"
    assert stored["user_id"] == fake.user["user_id"] and isinstance(stored["user_id"], str)
    assert stored["expires_at"] > time.time() + 59 * DAY
    assert fake.user["username"] in message and stored["access_token"] not in message
    assert secrets.get("instagram", ACCOUNT, "client_id") == fake.config.client_id


@pytest.mark.parametrize("refusal", ["authorize", "api"])
def test_authorize_tells_a_personal_account_its_path_is_the_export(tmp_path, refusal):
    fake = FakeInstagram(FakeInstagramConfig(media=3, account_type="PERSONAL", personal_refusal=refusal),
                         base_url=BASE_URL)

    def browser(url):
        location = fake.handle(httpx.Request("GET", url)).headers["location"]
        with httpx.Client(timeout=10) as real:
            real.get(location)

    connector = InstagramConnector(AccountConfig(name=ACCOUNT, platform="instagram", base_url=BASE_URL),
                                   open_secret_store("memory"), transport=httpx.MockTransport(fake.handle))
    with pytest.raises(OAuthError) as raised:
        connector.authorize(echo=lambda text: None, open_browser=browser, client_id=fake.config.client_id,
                            client_secret=fake.config.client_secret, timeout=10)
    assert "personal account" in str(raised.value) and "Download your information" in str(raised.value)


# --------------------------------------------------------------------------- mapping


def test_mapping_of_the_notes_examples():
    reel = {"id": "18045678901234567", "caption": "Timelapse", "media_type": "VIDEO", "media_product_type": "REELS",
            "thumbnail_url": "https://scontent.cdninstagram.com/v/t51/7777_n.jpg?oe=67B0C1D2",
            "permalink": "https://www.instagram.com/reel/C6aBcDeFgHi/", "timestamp": "2024-04-28T07:05:10+0000",
            "like_count": 1520, "comments_count": 48}
    post = post_from_media(reel)
    assert (post.kind, post.created_at, post.comment_count) == ("reel", "2024-04-28T07:05:10Z", 48)
    assert [(m.role, m.position) for m in post.media] == [("thumbnail", 0)]
    assert "?" not in post.raw["thumbnail_url"] and post.raw["archiver_note"]
    comment = {"id": "1", "text": "Where?", "timestamp": "2024-05-01T19:02:11+0000", "username": "fan_one",
               "from": {"id": "17841411111111111", "username": "fan_one"},
               "replies": {"data": [{"id": "2", "text": "Roof!", "timestamp": "2024-05-01T19:10:00+0000",
                                     "username": "roofcam.studio", "parent_id": "1"}]}}
    top, reply = comments_from(comment, "m", "999", "roofcam.studio")
    # People are keyed by user name (the export knows no ids); the id stays in raw.
    assert (top.author.native_id, top.by_owner, top.parent_native_id) == ("fan_one", False, None)
    assert top.author.raw["id"] == "17841411111111111"
    assert (reply.author.native_id, reply.by_owner, reply.parent_native_id) == ("roofcam.studio", True, "1")
    assert "children{" in MEDIA_FIELDS


# --------------------------------------------------------------------------- recent media

ONE_OBJECT = r"^/v23\.0/(\d+)$"   # GET /{media-id} (or a child's, or a comment's)


def single_reads(h: InstagramHarness, since: int = 0) -> list[httpx.Request]:
    import re

    return [r for r in h.requests[since:] if re.match(ONE_OBJECT, r.url.path)]


def test_recent_media_the_listing_did_not_reach_get_fresh_counts_and_new_comments(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=20, seed=21))
    now = int(time.time())
    # 56 media of the last four weeks: 50 on the first page, 6 recent ones on the second.
    recent = [h.fake.add_media(timestamp=now - 3600 - n * 12 * 3600, copyrighted=False) for n in range(56)]
    assert h.run()["status"] == "ok"
    assert single_reads(h) == []            # the first run listed everything: nothing to re-read
    beyond = {m["id"] for m in recent[50:]}

    # Nothing changed: one listing page, one read per recent media beyond it, and nothing else.
    mark, samples = len(h.requests), h.value("SELECT count(*) FROM post_metrics")
    result = h.run()
    assert result["status"] == "ok", result
    assert len(h.sent(MEDIA_PATH, mark)) == 1
    reads = single_reads(h, mark)
    assert len(reads) == len(beyond) and {r.url.path.split("/")[2] for r in reads} == beyond
    assert all(r.url.params["fields"] == MEDIA_FIELDS for r in reads)
    assert "metrics_samples" not in result["counts"]
    assert h.value("SELECT count(*) FROM post_metrics") == samples
    assert not any(r.url.path.endswith(("/comments", "/replies")) for r in h.requests[mark:])
    # Their files are archived already: none is downloaded again (the listed page's are).
    first_read = h.requests.index(reads[0])
    assert not any(r.url.path.startswith("/cdn/") for r in h.requests[first_read:])

    # Counts change on an older-but-recent media item: a new sample, and its new comment.
    target = recent[-1]
    target["like_count"] += 7
    fresh = h.fake.add_comment(target["id"], "Still watching this one", author=h.fake.fans[1])
    mark = len(h.requests)
    result = h.run()
    assert result["status"] == "ok", result
    assert len(single_reads(h, mark)) == len(beyond)
    assert result["counts"]["metrics_samples"] == 1
    metrics = h.rows("SELECT like_count, comment_count FROM post_metrics WHERE post_id=? ORDER BY observed_at",
                     target["id"])
    assert len(metrics) == 2 and metrics[-1] == {"like_count": target["like_count"],
                                                 "comment_count": h.fake.comments_count(target)}
    assert h.value("SELECT like_count FROM posts WHERE post_id=?", target["id"]) == target["like_count"]
    assert h.rows("SELECT author_id, post_id, text FROM comments WHERE comment_id=?", fresh["id"]) == [
        {"author_id": h.fake.fans[1]["username"], "post_id": target["id"], "text": "Still watching this one"}]
    asked = {r.url.path for r in h.requests[mark:] if r.url.path.endswith("/comments")}
    assert asked == {f"/v23.0/{target['id']}/comments"}


def test_a_recent_media_item_gone_from_instagram_is_reported_not_failed(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=5, seed=23))
    now = int(time.time())
    recent = [h.fake.add_media(timestamp=now - 3600 - n * 3600, copyrighted=False) for n in range(52)]
    assert h.run()["status"] == "ok"
    h.fake.delete_media(recent[-1]["id"])
    result = h.run()
    assert result["status"] == "ok", result
    assert any(e["item"] == f"media {recent[-1]['id']}" and "--full" in e["error"] for e in result["errors"])
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0   # only --full decides


# --------------------------------------------------------------------------- expiring links


def expire_links_after_listing(h: InstagramHarness) -> None:
    """Every listing page is followed by the links' lifetime passing: by the time the
    runner downloads the page's files, the links in it answer 403."""
    def advance(request, response):
        if request.url.path == MEDIA_PATH:
            h.fake.advance(2 * h.fake.config.media_url_ttl)
    h.after.append(advance)


def file_objects(h: InstagramHarness) -> set[str]:
    """The ids whose links the archive's files came from: each media item's, or each
    carousel child's."""
    found = set()
    for media in h.fake.media:
        if media["media_type"] == "CAROUSEL_ALBUM":
            found.update(c["id"] for c in media["children"])
        else:
            found.add(media["id"])
    return found


def test_expired_cdn_links_are_asked_for_again_and_the_files_archived(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=14, seed=24, media_url_ttl=60, copyrighted_reels=0.5))
    expire_links_after_listing(h)
    result = h.run()
    assert result["status"] == "ok", result
    assert not any("403" in e["error"] for e in result["errors"]), result["errors"]

    rows = h.rows("SELECT * FROM post_media")
    assert rows and all(r["status"] == "ok" and r["sha256"] for r in rows)
    assert {r["post_id"] for r in rows} == h.fake_ids()
    # The CDN refused the listed links, and the fresh ones worked.
    cdn = [(status, path) for method, path, status in h.fake.log if path.startswith("/cdn/")]
    refused = [path for status, path in cdn if status == 403]
    assert len(refused) == len(rows)                      # the avatar was fetched before the listing
    assert {path for status, path in cdn if status == 200} >= set(refused)
    # One refresh call per file's object (a video and its thumbnail share it), in the fake's log.
    refreshed = [entry for entry in h.fake.log if re.match(ONE_OBJECT, entry[1])]
    assert sorted(p.split("/")[2] for _, p, status in refreshed if status == 200) == sorted(file_objects(h))
    assert {r.url.params["fields"] for r in single_reads(h)} == {"media_url,thumbnail_url"}
    # Stored links never carry the signature.
    assert all("?" not in r["source_url"] for r in rows)


def test_a_fresh_link_that_is_refused_too_is_recorded_as_a_failed_file(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=6, seed=25, copyrighted_reels=0.0))
    h.faults.append(lambda r: httpx.Response(403, text="URL signature expired") if r.url.path.startswith("/cdn/") else None)
    result = h.run()
    assert result["status"] == "ok", result
    rows = h.rows("SELECT * FROM post_media")
    assert rows and all(r["status"] == "failed" and "HTTP 403" in r["error"] for r in rows)
    cdn = [r for r in h.requests if r.url.path.startswith("/cdn/")]
    assert len(cdn) == 2 * (len(rows) + 1)                # each file (and the avatar): its link, then one fresh link
    objects = [r.url.path.split("/")[2] for r in single_reads(h)] + [
        r.url.params["fields"] for r in h.sent("/v23.0/me") if r.url.params["fields"] == "profile_picture_url"]
    assert sorted(objects) == sorted([*file_objects(h), "profile_picture_url"])   # asked once each, no loop


def test_a_link_refused_for_another_reason_is_not_asked_for_again(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=6, seed=26))
    h.faults.append(lambda r: httpx.Response(404, text="gone") if r.url.path.startswith("/cdn/") else None)
    assert h.run()["status"] == "ok"
    rows = h.rows("SELECT * FROM post_media")
    assert rows and all(r["status"] == "failed" and "HTTP 404" in r["error"] for r in rows)
    assert single_reads(h) == []
    assert len([r for r in h.requests if r.url.path.startswith("/cdn/")]) == len(rows) + 1


# --------------------------------------------------------------------------- completeness


def graph_error(code: int = 100, status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": "Unsupported get request.", "type": "GraphMethodException",
                                                  "code": code, "fbtrace_id": "FAULT"}})


def test_a_carousel_whose_children_cannot_be_fetched_is_reported_and_never_tombstoned(tmp_path):
    """The listing served a carousel without its children and /{id}/children is refused:
    the item was listed, so a --full run must not call it deleted, and must say so."""
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=30, seed=21))
    assert h.run(full=True)["status"] == "ok"
    carousel = next(m for m in h.fake.newest_first() if m["media_type"] == "CAROUSEL_ALBUM")
    gone = next(m for m in h.fake.newest_first() if m is not carousel)
    h.fake.delete_media(gone["id"])

    def without_children(request: httpx.Request):
        if request.url.path.endswith(f"/{carousel['id']}/children"):
            return graph_error()
        if not request.url.path.endswith("/me/media"):
            return None
        answer = h.fake.handle(request)
        body = json.loads(answer.content)
        for item in body.get("data") or []:
            if item["id"] == carousel["id"]:
                item.pop("children", None)
        return httpx.Response(answer.status_code, json=body)

    h.faults.append(without_children)
    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert h.value("SELECT deleted_at FROM posts WHERE post_id=?", carousel["id"]) is None
    assert any(carousel["id"] in e["item"] for e in result["errors"])
    assert any(e["item"] == "media listing" and "nothing was marked deleted" in e["error"] for e in result["errors"])
    assert h.value("SELECT count(*) FROM unmapped_items WHERE item_id=?", carousel["id"]) == 1

    h.faults.clear()
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 1
    assert h.rows("SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [{"post_id": gone["id"]}]


def test_a_comment_deleted_on_instagram_is_tombstoned_after_a_complete_listing_of_its_media(tmp_path):
    h = InstagramHarness(tmp_path, FakeInstagramConfig(media=20, seed=22))
    assert h.run(full=True)["status"] == "ok"
    media = next(m for m in h.fake.newest_first() if len(m["comments"]) >= 2 and m["comments"][0]["replies"])
    deleted = media["comments"][1]
    media["comments"].remove(deleted)           # its author deleted it (and its replies)
    gone = {deleted["id"], *(r["id"] for r in deleted["replies"])}

    result = h.run()                            # the count changed: its comments are listed again
    assert result["status"] == "ok", result
    marked = {r["comment_id"] for r in h.rows("SELECT comment_id FROM comments WHERE deleted_at IS NOT NULL")}
    assert marked == gone
    assert result["counts"]["comments_tombstoned"] == len(gone)
    kept = h.value("SELECT count(*) FROM comments WHERE post_id=? AND deleted_at IS NULL", media["id"])
    assert kept == sum(1 + len(c["replies"]) for c in media["comments"])
    assert h.value("SELECT count(*) FROM comments WHERE comment_id IN (%s)" % ",".join("?" * len(gone)), *gone) \
        == len(gone)                            # the rows stay

    # Shown again (it was hidden, not deleted): the mark is cleared.
    media["comments"].insert(1, deleted)
    result = h.run()
    assert result["status"] == "ok" and result["counts"]["comments_reappeared"] == len(gone)
    assert h.value("SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL") == 0
    media["comments"].remove(deleted)
    assert h.run()["status"] == "ok"

    # A listing of the comments that fails part way marks nothing.
    media["comments"].pop(0)
    h.faults.append(lambda request: graph_error() if request.url.path.endswith(f"/{media['id']}/comments") else None)
    assert h.run(full=True)["status"] == "ok"
    again = {r["comment_id"] for r in h.rows("SELECT comment_id FROM comments WHERE deleted_at IS NOT NULL")}
    assert again == gone
