"""`archiver export` and `archiver auth` for X's pay-per-use API, in-process: the real
connector, runner, writer and media store against the stateful FakeX through
httpx.MockTransport. Every test checks archive rows, what the fake was asked and what it
charged: the run's count of money must be X's. Worlds are small (xgen's sample world, a few
posts); the fake's clock and the connector's (api.wall_clock) move together, without sleeping."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest
from tiktok_sync_harness import ticking_clock

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.net.oauth import OAuthError
from archiver.secrets import open_secret_store
from archiver.sync.jobs import Workspace, run_export
from archiver_connectors.x import XConnector
from archiver_connectors.x import api as x_api
from archiver_connectors.x.api import TOKEN_PATH, XTokens, post_from_tweet
from archiver_connectors.x.sim.fake import FakeX, FakeXConfig

BASE_URL = "http://127.0.0.1:8798"   # never contacted: MockTransport answers in-process
ACCOUNT = "main"
ACCOUNT_ID = f"x:{ACCOUNT}"
NOW = dt.datetime(2026, 3, 9, 12, tzinfo=dt.timezone.utc).timestamp()
TIMELINE = "/2/users/1234567890/tweets"


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


class XHarness:
    """A fake X, an archive, an in-memory secret store holding tokens the fake minted, and
    a switchboard (``faults`` answer instead of the fake). Waits move the fake's clock."""

    def __init__(self, tmp_path: Path, monkeypatch, config: FakeXConfig | None = None, *,
                 options: dict | None = None, scopes: str | None = None, base_url: str = BASE_URL):
        self.fake = FakeX(config or FakeXConfig(posts=6, followers=3, following=2), base_url=base_url)
        self.fake.clock_offset = NOW - time.time()
        monkeypatch.setattr(x_api, "wall_clock", self.fake.now)
        self.secrets = open_secret_store("memory")
        self.faults: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.transport = httpx.MockTransport(self._handle)
        options = {"max_cost_usd": 1.0} if options is None else options
        self.account = AccountConfig(name=ACCOUNT, platform="x", base_url=base_url if base_url != x_api.API_BASE_URL
                                     else None, options=options)
        self.secrets.set("x", ACCOUNT, "client_id", self.fake.config.client_id)
        self.secrets.set("x", ACCOUNT, "client_secret", self.fake.config.client_secret)
        self.initial = self.fake.issue_tokens(scopes)
        with httpx.Client(transport=self.transport) as client:
            XTokens(self.secrets, ACCOUNT, base_url + TOKEN_PATH, client).store(self.initial)
        self.archive = Archive(tmp_path / "archive")
        self.ws = Workspace(self.archive, Config(path=None, accounts=[self.account]), self.secrets)

    def run(self, *, full: bool = False, cancel=lambda: False) -> dict:
        return run_export(self.ws, self.account, full=full, cancel=cancel, progress=lambda line: None,
                          transport=self.transport, sleep=self.sleep)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.fake.advance(seconds)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for fault in list(self.faults):
            answer = fault(request)
            if answer is not None:
                return answer
        return self.fake.handle(request)

    def api_calls(self, since: int = 0) -> list[str]:
        return [r.url.path for r in self.requests[since:] if r.url.path.startswith("/2/")]

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

    def spent(self) -> int:
        return (self.state("spend") or {}).get("run_micros", 0)


def errors_of(result: dict) -> str:
    return " | ".join(e["error"] for e in result.get("errors") or [])


# --------------------------------------------------------------------------- a first run


def test_first_run_archives_profile_and_every_post_and_counts_the_money_as_x_does(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch, FakeXConfig())   # the sample world: every kind of post
    result = h.run()
    assert result["status"] == "ok", result
    fake = h.fake
    assert h.post_ids() == set(fake.posts)
    # Requests: the profile, then the timeline (one page: 16 posts fit in 100), nothing else.
    assert h.api_calls() == ["/2/users/me", TIMELINE]
    params = [p for _, path, _, p in fake.log if path == TIMELINE][0]
    assert params["max_results"] == "100" and "since_id" not in params
    # The money: one user and 16 posts, as X counted it.
    assert fake.spent_micro == 10_000 + 5_000 * len(fake.posts)
    assert h.spent() == fake.spent_micro
    profile = h.rows("SELECT username, display_name, followers, following, posts, bio, url FROM accounts")[0]
    assert profile == {"username": "ada_example", "display_name": "Ada Example", "followers": 5, "following": 3,
                       "posts": len(fake.posts), "bio": "Gardener and archivist. Elsewhere: "
                       "https://bsky.app/profile/ada.example", "url": "https://ada.example.org"}
    by_text = {r["text"]: r for r in h.rows("SELECT * FROM posts")}
    # HTML-unescaped, the t.co link expanded (its "&" kept), kept beside the text.
    first = by_text["Tea & cake <3 at https://example.org/cafe?a=1&b=2 #sunday"]
    assert first["kind"] == "text" and first["link"] == "https://example.org/cafe?a=1&b=2"
    raw = json.loads(first["raw"])["api"]
    assert raw["links"][0]["url"] == "https://example.org/cafe?a=1&b=2" and raw["links"][0]["tco"].startswith(
        "https://t.co/")
    assert raw["hashtags"] == ["sunday"]
    # Kinds: a reply (with whom it answers), a repost, a quote.
    reply = by_text["@bob I agree, see you there"]
    assert reply["kind"] == "reply"
    assert json.loads(reply["raw"])["api"]["in_reply_to"]["handle"] == "bob"
    assert by_text["RT @carol: The best gardening tip I ever got: water in the morning…"]["kind"] == "boost"
    quote = next(r for t, r in by_text.items() if t.startswith("So true https://x.com/dave/status/"))
    assert quote["kind"] == "quote" and quote["link"] is None
    # The edited post: keyed by its initial id, the newest text.
    edited = next(p for p in fake.world.posts if p.edits)
    row = h.rows("SELECT text, raw FROM posts WHERE post_id=?", edited.tweet_id)[0]
    assert row["text"] == "Fresh sourdough bread today"
    assert json.loads(row["raw"])["api"]["edit_ids"] == edited.version_ids
    assert h.value("SELECT created_at FROM posts WHERE post_id=?", edited.tweet_id) == \
        edited.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")      # the first version's time, from its id
    # The long post: its whole text (note_tweet), not the cut one.
    long_post = next(p for p in fake.world.posts if p.is_note)
    assert h.value("SELECT text FROM posts WHERE post_id=?", long_post.tweet_id) == long_post.final_text
    # Media: the four photos, the video's highest-bitrate variant, the media link gone from the text.
    album = next(p for p in fake.world.posts if len(p.media) == 4)
    files = h.rows("SELECT position, status, source_url FROM post_media WHERE post_id=? ORDER BY position",
                   album.tweet_id)
    assert [(f["position"], f["status"]) for f in files] == [(0, "ok"), (1, "ok"), (2, "ok"), (3, "ok")]
    assert by_text["Four photos of the garden"]["kind"] == "text"
    video = next(p for p in fake.world.posts if p.media and p.media[0].kind == "video")
    source = h.value("SELECT source_url FROM post_media WHERE post_id=?", video.tweet_id)
    assert source.endswith("/" + video.media[0].file_name)
    # Deleted posts are not on X any more: not asked, not archived from the API.
    gone = next(p for p in fake.world.posts if p.deleted_at)
    assert gone.tweet_id not in h.post_ids()


def test_a_quiet_second_run_asks_since_the_newest_post_and_pays_for_the_profile_only(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch)
    assert h.run()["status"] == "ok"
    before, spent = len(h.requests), h.fake.spent_micro
    assert h.run()["status"] == "ok"
    assert [r.url.path for r in h.requests[before:]] == ["/2/users/me", TIMELINE]   # no file downloaded again
    newest = max(int(p.version_ids[-1]) for p in h.fake.live_posts())
    assert [p for _, path, _, p in h.fake.log if path == TIMELINE][-1]["since_id"] == str(newest)
    assert h.fake.spent_micro - spent == 10_000 == h.spent()
    assert (h.state("spend") or {})["total_micros"] == h.fake.spent_micro


def test_new_and_edited_posts_come_once_keyed_by_their_initial_id(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch)
    assert h.run()["status"] == "ok"
    h.fake.advance(3600)
    added = h.fake.add_post("Brand new post https://example.com/new", photos=1)
    old = h.fake.posts[-1]
    h.fake.advance(60)
    newer_id = h.fake.edit_post(added, "Brand new post, edited https://example.com/new")
    assert h.run()["status"] == "ok"
    assert added in h.post_ids() and newer_id not in h.post_ids() and old in h.post_ids()
    row = h.rows("SELECT text, link FROM posts WHERE post_id=?", added)[0]
    assert row == {"text": "Brand new post, edited https://example.com/new", "link": "https://example.com/new"}
    assert h.value("SELECT count(*) FROM post_media WHERE post_id=? AND status='ok'", added) == 1


# --------------------------------------------------------------------------- the budget


def test_the_budget_stops_the_run_before_it_is_exceeded_and_the_next_run_fills_the_gap(tmp_path, monkeypatch):
    # $0.06: the profile ($0.01) and 10 posts, in pages of 5 (the budget shrinks max_results).
    config = FakeXConfig(posts=12, followers=1, following=1)
    h = XHarness(tmp_path, monkeypatch, config, options={"max_cost_usd": 0.06})
    result = h.run()
    assert result["status"] == "ok", result
    assert "max_cost_usd" in json.dumps(result)
    assert h.fake.spent_micro == h.spent() <= 60_000
    assert len(h.post_ids()) == 10
    assert [p["max_results"] for _, path, _, p in h.fake.log if path == TIMELINE] == ["10"]   # shrunk to fit
    newest_ten = set(h.fake.posts[:10])
    assert h.post_ids() == newest_ten
    gaps = h.state("posts")["gaps"]
    assert gaps == [{"since_id": None, "until_id": min(newest_ten, key=lambda i: (len(i), i)), "above": 10}]
    # Meanwhile a new post: the next run reads it first, then the rest of the gap.
    h.fake.advance(3600)
    added = h.fake.add_post("After the cut")
    result = h.run()
    assert result["status"] == "ok", result
    assert h.post_ids() == set(h.fake.posts) and added in h.post_ids()
    assert h.state("posts")["gaps"] == []
    assert (h.state("spend") or {})["total_micros"] == h.fake.spent_micro


def test_every_paid_request_is_counted_in_the_archive_before_it_leaves(tmp_path, monkeypatch):
    """A run killed right after X answered must not have spent money the archive does not
    know of: the reservation is committed before the request goes out."""
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=12, max_results_cap=5), options={"max_cost_usd": 1,
                                                                                            "page_size": 5})
    seen: list[tuple[int, int]] = []

    def watch(request: httpx.Request) -> None:
        if request.url.path.startswith("/2/users/"):
            saved = (h.state("spend") or {}).get("run_micros", 0)
            price = 10_000 if request.url.path.endswith("/me") else 5 * 5_000
            seen.append((saved, h.fake.spent_micro + price))

    h.faults.append(lambda request: watch(request))
    assert h.run()["status"] == "ok"
    assert len(seen) == 4 and all(saved >= charged for saved, charged in seen), seen
    assert h.spent() == h.fake.spent_micro


def test_a_run_stopped_half_way_keeps_its_spending_and_the_next_goes_on(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=12, max_results_cap=5))
    result = h.run(cancel=lambda: sum(path == TIMELINE for _, path, _, _ in h.fake.log) >= 2)
    assert result["status"] == "interrupted"
    assert len(h.post_ids()) == 5                   # the second page, paid for, was not kept
    assert h.spent() == h.fake.spent_micro == 10_000 + 10 * 5_000   # saved on the way out too
    assert h.run()["status"] == "ok"
    assert h.post_ids() == set(h.fake.posts)
    assert h.state("spend")["total_micros"] == h.fake.spent_micro


def test_a_pagination_token_given_twice_stops_the_walk_instead_of_paying_in_circles(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=12, max_results_cap=5), options={"max_cost_usd": 100})
    first: list[dict] = []

    def circle(request: httpx.Request) -> httpx.Response | None:
        if request.url.path != TIMELINE:
            return None
        if not first:
            first.append(h.fake.handle(request).json())
        return httpx.Response(200, json=first[0])      # the same page and the same next_token, again and again

    h.faults.append(circle)
    result = h.run()
    assert result["status"] == "failed" and "circle" in result["message"]
    assert len(h.api_calls()) == 3                    # /users/me, the page, the page again: then it stopped
    assert len(h.post_ids()) == 5


def test_the_window_of_the_newest_posts_is_said_with_where_the_rest_is(tmp_path, monkeypatch):
    monkeypatch.setattr(x_api, "TIMELINE_WINDOW", 8)        # X's 3,200, made small
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=12, window=8, max_results_cap=5))
    result = h.run()
    assert result["status"] == "ok"
    assert h.post_ids() == set(h.fake.posts[:8])
    said = " ".join(result["summary"])
    assert "only the 8 most recent posts" in said and "has 12" in said and "archiver import" in said
    assert h.state("posts")["gaps"] == []


def test_more_new_posts_than_the_window_since_the_archive_says_some_may_be_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(x_api, "TIMELINE_WINDOW", 8)        # X's 3,200, made small
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=3, window=8, max_results_cap=5),
                 options={"max_cost_usd": 0.045})           # the profile and 5 posts a run at most
    assert h.run()["status"] == "ok" and len(h.post_ids()) == 3
    for n in range(10):
        h.fake.advance(600)
        h.fake.add_post(f"New post {n}")
    first = h.run()                                          # 5 of the 8 X still shows: a gap remains
    assert not any("may be missing" in line for line in first["summary"])
    second = h.run()
    said = " ".join(second["summary"])
    assert "may be missing" in said and "archiver import" in said
    assert len(h.post_ids()) == 3 + 8 and h.state("posts")["gaps"] == []


def test_no_budget_means_no_api_and_words_that_say_how_to_import_the_archive(tmp_path, monkeypatch):
    assert XConnector.api_off({}) and "archiver import" in XConnector.api_off({})
    assert "max_cost_usd" in XConnector.api_off({"max_cost_usd": None})
    assert XConnector.api_off({"max_cost_usd": 0.5}) == ""
    h = XHarness(tmp_path, monkeypatch, options={})
    result = h.run()
    assert "archiver import" in json.dumps(result)
    assert h.api_calls() == [] and h.fake.spent_micro == 0


# --------------------------------------------------------------------------- X's limits


@pytest.mark.parametrize("status", [402, 403])
def test_credits_used_up_stop_the_run_cleanly_whichever_status_x_sends(tmp_path, monkeypatch, status):
    # [U] 402 or 403: both read as "credits exhausted".
    config = FakeXConfig(posts=8, max_results_cap=5, credits_usd=0.03, credits_status=status)
    h = XHarness(tmp_path, monkeypatch, config, options={"max_cost_usd": 5})
    result = h.run()
    assert result["status"] == "failed", result                  # the person must act: it alerts
    assert "credits" in result["message"] and "console" in result["message"]
    assert len(h.post_ids()) == 5                     # the page before the refusal is kept
    assert h.spent() == h.fake.spent_micro == 35_000
    assert h.state("posts")["gaps"]                   # and the rest is left for the next run
    h.fake.config.credits_usd = None                  # credits bought
    assert h.run()["status"] == "ok"
    assert h.post_ids() == set(h.fake.posts)


def test_x_rate_limit_headers_pace_the_run_until_the_window_resets(tmp_path, monkeypatch):
    config = FakeXConfig(posts=12, max_results_cap=5, rate_limit=2)
    h = XHarness(tmp_path, monkeypatch, config)
    assert h.run()["status"] == "ok"
    assert h.post_ids() == set(h.fake.posts)
    assert not any(status == 429 for _, _, status, _ in h.fake.log)   # the headers said when to wait
    assert h.sleeps and max(h.sleeps) <= 15 * 60


def _one_429(h: XHarness, wait: int, *, retry_after: bool):
    sent = []

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.url.path != TIMELINE or sent:
            return None
        sent.append(request)
        headers = {"x-rate-limit-limit": "900", "x-rate-limit-remaining": "0",
                   "x-rate-limit-reset": str(int(h.fake.now()) + wait)}
        if retry_after:
            headers["Retry-After"] = str(wait)
        return httpx.Response(429, headers=headers, json={"title": "Too Many Requests", "detail": "Too Many Requests",
                                                          "type": "about:blank", "status": 429})
    return fault


@pytest.mark.parametrize("retry_after", [False, True])
def test_a_429_is_waited_out_by_its_reset_with_or_without_retry_after(tmp_path, monkeypatch, retry_after):
    # [U] X is said to send no Retry-After, only x-rate-limit-reset: both are read.
    h = XHarness(tmp_path, monkeypatch)
    h.faults.append(_one_429(h, 120, retry_after=retry_after))
    assert h.run()["status"] == "ok"
    assert h.post_ids() == set(h.fake.posts)
    assert 119 <= sum(h.sleeps) <= 125          # the reset's wait, not a blind backoff
    assert h.spent() == h.fake.spent_micro      # a 429 costs nothing


def test_a_429_whose_window_resets_far_ahead_stops_the_run_for_the_next_one(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch)
    h.faults.append(_one_429(h, 3 * 3600, retry_after=False))
    result = h.run()
    assert "429" in errors_of(result) and "next run" in errors_of(result)
    assert not h.sleeps and h.post_ids() == set()
    assert h.run()["status"] == "ok" and h.post_ids() == set(h.fake.posts)


def test_the_monthly_post_cap_stops_the_run_and_says_when_it_resets(tmp_path, monkeypatch):
    config = FakeXConfig(posts=12, max_results_cap=5, monthly_post_cap=5)
    h = XHarness(tmp_path, monkeypatch, config)
    result = h.run()
    assert "monthly" in errors_of(result)
    assert len(h.post_ids()) == 5


def test_a_refused_token_is_refreshed_once_then_the_run_names_archiver_auth(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch)
    h.fake.expire_tokens()
    assert h.run()["status"] == "ok"
    assert h.api_calls().count(TOKEN_PATH) == 1
    h.fake.revoke_all()
    result = h.run()
    assert result["status"] == "failed" and not h.sleeps        # said at once, never retried
    assert "archiver auth x --account main" in (result.get("message") or "") + errors_of(result)


def test_the_access_token_is_refreshed_before_it_expires_and_a_rotated_refresh_token_is_kept(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch)
    h.fake.advance(2 * 3600 + 5)                   # the 2-hour access token is past
    assert h.run()["status"] == "ok"
    stored = json.loads(h.secrets.get("x", ACCOUNT, "tokens"))
    assert stored["refresh_token"] != h.initial["refresh_token"]    # rotated: the new one kept
    form = h.fake.token_requests[-1]
    assert form["grant_type"] == "refresh_token" and form["client_id"] == h.fake.config.client_id
    assert not any(r.url.path == TOKEN_PATH and "client_secret" in r.content.decode() for r in h.requests)


@pytest.mark.parametrize("client_type, rotate", [("public", False), ("confidential", True)])
def test_refresh_for_a_public_or_confidential_client_rotated_or_not(tmp_path, monkeypatch, client_type, rotate):
    # [U] whether X rotates the refresh token; a public app has no secret (client_id in the form).
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=2, client_type=client_type, rotate_refresh=rotate))
    if client_type == "public":
        h.secrets.delete("x", ACCOUNT, "client_secret")
    h.fake.expire_tokens()
    assert h.run()["status"] == "ok"
    stored = json.loads(h.secrets.get("x", ACCOUNT, "tokens"))
    assert (stored["refresh_token"] != h.initial["refresh_token"]) is rotate
    refresh = next(r for r in h.requests if r.url.path == TOKEN_PATH)
    assert ("authorization" in refresh.headers) is (client_type == "confidential")
    h.fake.expire_tokens()
    assert h.run()["status"] == "ok"                 # the refresh token kept (or the new one) works again


# --------------------------------------------------------------------------- followers


def test_followers_only_when_asked_priced_per_person(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=3, followers=4, following=2),
                 options={"max_cost_usd": 1, "page_size": 2})       # 2: below X's least, 5 is asked
    assert h.run()["status"] == "ok"
    assert not [p for p in h.api_calls() if p.endswith("/followers")]
    assert [p["max_results"] for _, path, _, p in h.fake.log if path == TIMELINE] == ["5"]
    h.account.options["followers"] = True
    spent = h.fake.spent_micro
    assert h.run()["status"] == "ok"
    follows = h.rows("SELECT person_id FROM follows WHERE kind='followers' AND ended_at IS NULL")
    assert {f["person_id"] for f in follows} == {u.account_id for u in h.fake.world.followers}
    person = h.rows("SELECT handle, url, bio, json(links) AS links FROM people WHERE person_id='42'")[0]
    person["links"] = json.loads(person["links"])
    # The bio's t.co link expanded and unescaped, its links (and the website) kept for the audience's pairing.
    assert person == {"handle": "bob", "url": "https://x.com/bob",
                      "bio": "I am bob & more. Elsewhere: https://bsky.app/profile/bob.bsky.social",
                      "links": ["https://bob.example.net", "https://bsky.app/profile/bob.bsky.social"]}
    assert h.fake.spent_micro - spent == 10_000 + 4 * 10_000 == h.spent()
    # Read once a week at most: the next run does not pay for it again.
    before = len(h.requests)
    assert h.run()["status"] == "ok"
    assert not [p for p in h.api_calls(before) if p.endswith("/followers")]


# --------------------------------------------------------------------------- mapping


def test_hostile_items_in_an_answer_are_reported_and_the_rest_kept(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=3, followers=2),
                 options={"max_cost_usd": 1, "followers": True})

    def spoil(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == TIMELINE:
            body = h.fake.handle(request).json()
            body["data"] += [{"id": "77", "text": ["not", "text"], "created_at": {"no": "date"}},
                             {"id": {"nested": 1}, "text": "x"}, "a string", None]
            return httpx.Response(200, json=body)
        if request.url.path.endswith("/followers"):
            body = h.fake.handle(request).json()
            body["data"] += [{"id": {"x": 1}, "username": 5}, {"name": "no id"}, 7]
            return httpx.Response(200, json=body)
        return None

    h.faults.append(spoil)
    result = h.run()
    assert result["status"] == "ok", result
    assert h.post_ids() == set(h.fake.posts)
    assert "post 77" in json.dumps(result["errors"])
    follows = h.rows("SELECT person_id FROM follows WHERE kind='followers' AND ended_at IS NULL")
    assert {f["person_id"] for f in follows} == {u.account_id for u in h.fake.world.followers}


def test_a_tweet_maps_to_the_same_post_an_archive_gives():
    tweet = {"id": "20", "text": "RT @carol: a &amp; b https://t.co/abc",
             "edit_history_tweet_ids": ["10", "20"], "created_at": "2026-03-01T10:00:00.000Z",
             "referenced_tweets": [{"type": "retweeted", "id": "5"}],
             "entities": {"urls": [{"url": "https://t.co/abc", "expanded_url": "https://example.org/?x=1&copy=2"}],
                          "mentions": [{"username": "carol", "id": "4343"}]},
             "public_metrics": {"like_count": 3, "retweet_count": 1, "impression_count": 40}}
    post = post_from_tweet(tweet, "ada")
    assert (post.native_id, post.kind, post.url) == ("10", "boost", "https://x.com/ada/status/10")
    assert post.text == "RT @carol: a & b https://example.org/?x=1&copy=2"
    assert (post.like_count, post.share_count, post.view_count) == (3, 1, 40)
    assert post.raw["mentions"] == [{"id": "4343", "handle": "carol", "name": None}]


def test_auth_offers_both_consent_hosts_and_stores_the_tokens(tmp_path, monkeypatch):
    # [U] x.com or twitter.com: the fake shows the consent page on twitter.com only; the
    # browser (the test) opens the first address, then the fallback the command printed.
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=2, authorize_hosts=("twitter.com",)),
                 base_url=x_api.API_BASE_URL)
    lines: list[str] = []

    def browser(url: str) -> None:
        import threading

        def play():
            for address in [url, *[line.split()[-1] for line in lines if "twitter.com/i/oauth2" in line]]:
                answer = h.transport.handle_request(httpx.Request("GET", address))
                if answer.status_code == 302:
                    httpx.get(answer.headers["Location"])
                    return
        threading.Thread(target=play, daemon=True).start()

    import socket

    with socket.socket() as probe:       # a free port: X wants the registered one, 8086 by default
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = XConnector(h.account, h.secrets, transport=h.transport)
    said = connector.authorize(echo=lines.append, open_browser=browser, port=port, timeout=10)
    assert "authorized" in said
    assert any("https://x.com/i/oauth2/authorize?" in line for line in lines)
    stored = json.loads(h.secrets.get("x", ACCOUNT, "tokens"))
    assert stored["refresh_token"] and "offline.access" in stored["scope"]
    with pytest.raises(OAuthError, match="client id"):
        XConnector(h.account, open_secret_store("memory"), transport=h.transport).authorize(
            echo=lines.append, open_browser=browser, port=port, timeout=1)
    bare = open_secret_store("memory")
    with pytest.raises(OAuthError, match="--public-client"):
        XConnector(h.account, bare, transport=h.transport).authorize(
            echo=lines.append, open_browser=browser, port=port, timeout=1, client_id="abc")


def test_auth_of_a_public_client_sends_no_secret(tmp_path, monkeypatch):
    h = XHarness(tmp_path, monkeypatch, FakeXConfig(posts=2, client_type="public"))

    def browser(url: str) -> None:
        import threading

        def play():
            answer = h.transport.handle_request(httpx.Request("GET", url))
            httpx.get(answer.headers["Location"])
        threading.Thread(target=play, daemon=True).start()

    said = XConnector(h.account, h.secrets, transport=h.transport).authorize(
        echo=lambda line: None, open_browser=browser, public_client=True, timeout=10)
    assert "authorized" in said and h.secrets.get("x", ACCOUNT, "client_secret") is None
    exchange = next(r for r in h.requests if r.url.path == TOKEN_PATH)
    assert "authorization" not in exchange.headers and b"code_verifier=" in exchange.content


# --------------------------------------------------------------------------- archive and API together


def test_an_imported_archive_then_the_api_gives_each_post_once(tmp_path, monkeypatch):
    """The contract of PLAN.md: the archive and the API key a post alike (the initial id of
    an edited one), so the API run after an import reads only what is newer, and adds no
    post twice; the media the archive brought are not stored again."""
    from archiver.sync.jobs import run_import
    from archiver_connectors.x.sim.fake import write_matching_export

    h = XHarness(tmp_path, monkeypatch, FakeXConfig())
    archive = write_matching_export(h.fake, tmp_path / "twitter-2026-03-06-abc.zip")
    result = run_import(h.ws, archive, platform="x", account_name=ACCOUNT)
    assert result["status"] == "ok", result
    imported = h.post_ids()
    files = h.value("SELECT count(*) FROM media")
    h.fake.advance(3600)
    added = h.fake.add_post("Written after the archive", photos=1)
    avatar = h.value("SELECT avatar_sha256 FROM accounts")
    assert h.run()["status"] == "ok"
    assert h.post_ids() == imported | {added}
    # Only the new post was read (the edited post's newest version too, if newer than the rest).
    assert h.fake.spent_micro == 10_000 + 5_000
    rows = h.rows("SELECT post_id, text, kind FROM posts")
    assert len(rows) == len({r["post_id"] for r in rows})
    # New files: the new post's photo, and the photo the archive lacked (the run's repair
    # pass fetched it by its link); the profile picture is the archive's (its original size).
    assert h.value("SELECT count(*) FROM media") == files + 2
    assert h.value("SELECT avatar_sha256 FROM accounts") == avatar
    # A full run (the daemon asks for one each run: X records no full listing) pays for nothing again.
    spent = h.fake.spent_micro
    assert h.run(full=True)["status"] == "ok"
    assert h.fake.spent_micro - spent == 10_000
    # The API maps every post to what the archive gave: the same text, kind and link.
    archived = {r["post_id"]: r for r in h.rows("SELECT post_id, text, kind, link, created_at FROM posts")}
    for post in h.fake.live_posts():
        tweet = h.fake.tweet_json(post)
        media = {m["media_key"]: m for m in map(h.fake.media_json, post.media)}
        mapped = post_from_tweet(tweet, "ada_example", media)
        row = archived[mapped.native_id]
        assert (mapped.text, mapped.kind, mapped.link, mapped.created_at) == (
            row["text"], row["kind"], row["link"], row["created_at"]), post.tweet_id
