"""`archiver export` and `archiver auth` for Pinterest, in-process: the real connector, runner,
writer and media store against the stateful FakePinterest through httpx.MockTransport. Every
test checks archive rows and what the fake was asked. Worlds are small (a few Pins); the
fake's clock and the connector's (api.wall_clock) move together, without sleeping."""

from __future__ import annotations

import datetime as dt
import hashlib
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
from archiver_connectors.pinterest import PinterestConnector
from archiver_connectors.pinterest import api as pinterest_api
from archiver_connectors.pinterest.api import TOKEN_PATH, PinterestTokens, original_of, post_from_pin
from archiver_connectors.pinterest.sim.fake import ALL_SCOPES, FakePinterest, FakePinterestConfig

BASE_URL = "http://127.0.0.1:8799"   # never contacted: MockTransport answers in-process
ACCOUNT = "main"
ACCOUNT_ID = f"pinterest:{ACCOUNT}"
DAY = 86400
DAY1_NOON = dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


class PinterestHarness:
    """A fake Pinterest, an archive, an in-memory secret store holding tokens the fake
    minted, and a switchboard (``faults`` answer instead of the fake). The connector's
    clock is the fake's; waits move it instead of sleeping."""

    def __init__(self, tmp_path: Path, monkeypatch, config: FakePinterestConfig | None = None, *,
                 options: dict | None = None, scopes: str | None = None):
        self.fake = FakePinterest(config or FakePinterestConfig(posts=6, followers=3, following=2), base_url=BASE_URL)
        self.fake.clock_offset = DAY1_NOON - time.time()
        monkeypatch.setattr(pinterest_api, "wall_clock", self.fake.now)
        self.secrets = open_secret_store("memory")
        self.faults: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.transport = httpx.MockTransport(self._handle)
        self.account = AccountConfig(name=ACCOUNT, platform="pinterest", base_url=BASE_URL, options=options or {})
        self.secrets.set("pinterest", ACCOUNT, "client_id", self.fake.config.client_id)
        self.secrets.set("pinterest", ACCOUNT, "client_secret", self.fake.config.client_secret)
        self.initial = self.fake.issue_tokens(scopes)
        with httpx.Client(transport=self.transport) as client:
            PinterestTokens(self.secrets, ACCOUNT, BASE_URL + TOKEN_PATH, client).store(self.initial)
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
        return [r.url.path for r in self.requests[since:] if r.url.path.startswith("/v5/")]

    def stored(self) -> dict:
        return json.loads(self.secrets.get("pinterest", ACCOUNT, "tokens"))

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

    def post_ids(self, *, alive: bool = True) -> set[str]:
        where = " WHERE deleted_at IS NULL" if alive else ""
        return {r["post_id"] for r in self.rows(f"SELECT post_id FROM posts{where}")}

    def visible_pins(self) -> set[str]:
        return set(self.fake.pins)


def media_of(h: PinterestHarness, pin_id: str) -> list[dict]:
    return h.rows("SELECT role, position, sha256, status, source_url, description FROM post_media WHERE post_id=? "
                  "ORDER BY role, position", pin_id)


def pins_of_kind(h: PinterestHarness, media_type: str, *, video_missing: bool | None = None) -> list[str]:
    return [p.id for p in h.fake.pins.values() if p.media_type == media_type
            and (video_missing is None or p.video_url_missing == video_missing)]


# --------------------------------------------------------------------------- a first run


def test_first_run_archives_profile_boards_sections_pins_files_and_lists(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=10, followers=3, following=2, boards=3))
    result = h.run()
    assert result["status"] == "ok", result
    fake = h.fake
    # Every Pin, from /pins alone: no board's own Pin list is read.
    assert h.post_ids() == set(fake.pins)
    assert not [p for p in h.api_calls() if p.endswith("/pins") and p != "/v5/pins"]
    profile = h.rows("SELECT username, followers, following, posts, avatar_sha256, url FROM accounts")[0]
    assert profile["avatar_sha256"]
    assert profile == {"username": "roofcam", "followers": 3, "following": 2, "posts": 10,
                       "avatar_sha256": profile["avatar_sha256"], "url": "https://www.pinterest.com/roofcam/"}
    # Boards (the secret one too) and their sections, each section under its board.
    boards = {r["collection_id"]: r for r in h.rows("SELECT * FROM collections WHERE kind='board'")}
    assert set(boards) == set(fake.boards)
    assert {b["visibility"] for b in boards.values()} == {"public", "private"}
    assert {json.loads(b["raw"])["api"]["privacy"] for b in boards.values()} == {"PUBLIC", "SECRET", "PROTECTED"}
    sections = h.rows("SELECT collection_id, parent_id, title FROM collections WHERE kind='section'")
    assert {(s["collection_id"], s["parent_id"]) for s in sections} == {
        (s["id"], s["board_id"]) for s in fake.sections.values()}
    # A Pin: title, description, link, counts, its board (and section), its visibility.
    for pin in fake.pins.values():
        row = h.rows("SELECT * FROM posts WHERE post_id=?", pin.id)[0]
        assert (row["title"], row["text"], row["link"]) == (pin.title, pin.description, pin.link)
        assert row["url"] == f"https://www.pinterest.com/pin/{pin.id}/"
        assert row["like_count"] == pin.metrics["reaction"] and row["view_count"] == pin.metrics["impression"]
        expected = {pin.board_id} | ({pin.board_section_id} if pin.board_section_id else set())
        assert {r["collection_id"] for r in h.rows("SELECT collection_id FROM collection_posts WHERE post_id=?",
                                                   pin.id)} == expected
        privacy = fake.boards[pin.board_id]["privacy"]
        assert row["visibility"] == ("public" if privacy == "PUBLIC" else "private")
    # Files: an image's original (its alt text kept), a carousel's three, a video and its
    # cover, a video still without video_url only its cover.
    image = next(p for p in fake.pins.values() if p.media_type == "image" and p.alt_text)
    assert [(m["role"], m["status"], m["description"]) for m in media_of(h, image.id)] == [
        ("image", "ok", image.alt_text)]
    assert "/originals/" in media_of(h, image.id)[0]["source_url"]
    carousel = pins_of_kind(h, "multiple_images")[0]
    assert [(m["role"], m["position"]) for m in media_of(h, carousel)] == [("image", 0), ("image", 1), ("image", 2)]
    assert len({m["sha256"] for m in media_of(h, carousel)}) == 3
    video = pins_of_kind(h, "video", video_missing=False)[0]
    assert [(m["role"], m["status"]) for m in media_of(h, video)] == [("cover", "ok"), ("video", "ok")]
    assert h.rows("SELECT kind, duration FROM posts WHERE post_id=?", video)[0] == {"kind": "video", "duration": 12}
    processing = pins_of_kind(h, "video", video_missing=True)[0]
    assert [m["role"] for m in media_of(h, processing)] == ["cover"]
    # The lists: usernames only, keyed by username.
    follows = h.rows("SELECT kind, person_id FROM follows WHERE ended_at IS NULL")
    assert {(f["kind"], f["person_id"]) for f in follows} == (
        {("followers", u) for u in fake.followers} | {("following", u) for u in fake.following})
    person = h.rows("SELECT handle, url FROM people WHERE person_id=?", fake.followers[0])[0]
    assert person == {"handle": fake.followers[0], "url": f"https://www.pinterest.com/{fake.followers[0]}/"}
    # The day's spending is kept for the next run and `archiver status`.
    assert h.state("quota")["spent"] == len(h.api_calls()) == fake.calls_today()


def test_a_quiet_second_run_asks_three_things_and_downloads_nothing(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch)
    assert h.run()["status"] == "ok"
    files = h.value("SELECT count(*) FROM media")
    before = len(h.requests)
    assert h.run()["status"] == "ok"
    assert [r.url.path for r in h.requests[before:]] == ["/v5/user_account", "/v5/boards", "/v5/pins"]
    assert h.value("SELECT count(*) FROM media") == files


def test_an_incremental_run_stops_at_known_pins_and_gets_new_edited_and_moved_ones(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=7, followers=1, following=1, boards=4),
                         options={"page_size": 2})
    assert h.run()["status"] == "ok"
    newest = sorted(h.fake.pins.values(), key=lambda p: p.created_at)[-1]
    old_title, old_board = newest.title, newest.board_id
    target = next(b for b in h.fake.boards if b != newest.board_id and h.fake.boards[b]["privacy"] == "PUBLIC")
    h.fake.edit_pin(newest.id, title="Renamed tart")
    h.fake.move_pin(newest.id, target)
    added = h.fake.add_pin(board_id=target)
    before = len(h.requests)
    assert h.run()["status"] == "ok"
    assert h.api_calls(before).count("/v5/pins") == 2      # the new page, then a page all known
    assert added in h.post_ids()
    assert h.value("SELECT title FROM posts WHERE post_id=?", newest.id) == "Renamed tart"
    assert h.value("SELECT title FROM post_versions WHERE post_id=?", newest.id) == old_title
    memberships = {r["collection_id"] for r in h.rows("SELECT collection_id FROM collection_posts WHERE post_id=?",
                                                      newest.id)}
    assert {old_board, target} <= memberships      # the old board's row stays
    # The boards whose Pins changed had their sections read again; no other board.
    sections_read = {p for p in h.api_calls(before) if p.endswith("/sections")}
    assert sections_read == {f"/v5/boards/{b}/sections" for b in (old_board, target)}


def test_full_run_tombstones_a_deleted_pin_and_an_incremental_one_does_not(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=5, followers=1, following=1),
                         options={"page_size": 2})
    assert h.run()["status"] == "ok"
    gone = sorted(h.fake.pins.values(), key=lambda p: p.created_at)[0].id   # the oldest: past the first page
    h.fake.delete_pin(gone)
    assert h.run()["status"] == "ok"
    assert gone in h.post_ids()
    assert h.run(full=True)["status"] == "ok"
    assert gone not in h.post_ids() and gone in h.post_ids(alive=False)


def test_without_the_secret_scopes_secret_pins_are_left_and_nothing_is_tombstoned(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=6, followers=1, following=1))
    assert h.run()["status"] == "ok"
    secret = {p.id for p in h.fake.pins.values() if h.fake.boards[p.board_id]["privacy"] == "SECRET"}
    assert secret and secret <= h.post_ids()
    # The person authorizes again without the secret scopes: those Pins vanish from /pins.
    narrow = "user_accounts:read,boards:read,pins:read"
    with httpx.Client(transport=h.transport) as client:
        PinterestTokens(h.secrets, ACCOUNT, BASE_URL + TOKEN_PATH, client).store(h.fake.issue_tokens(narrow))
    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert secret <= h.post_ids()                            # never marked deleted
    assert "pins:read_secret" in json.dumps(result)


def test_originals_missing_on_the_cdn_fall_back_to_the_largest_listed_size(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=3, followers=1, following=1,
                                                                    originals=False))
    assert h.run()["status"] == "ok"
    image = pins_of_kind(h, "image")[0]
    [row] = media_of(h, image)
    assert row["status"] == "ok"
    sig = h.fake.pins[image].signatures[0]
    expected = hashlib.sha256(h.fake.file_bytes(f"/1200x/{sig[0:2]}/{sig[2:4]}/{sig[4:6]}/{sig}.jpg")).hexdigest()
    assert row["sha256"] == expected


def test_original_of_a_pinimg_link():
    assert original_of("https://i.pinimg.com/1200x/0d/f6/f1/0df6f1f0bfe7aaca849c1bbc3607a34b.jpg") == (
        "https://i.pinimg.com/originals/0d/f6/f1/0df6f1f0bfe7aaca849c1bbc3607a34b.jpg")
    assert original_of("https://i.pinimg.com/originals/0d/f6/f1/0df6f1f0bfe7aaca849c1bbc3607a34b.jpg") is None
    assert original_of("https://example.org/picture.jpg") is None


@pytest.mark.parametrize("created_at", ["2024-05-01T18:22:31", "2024-05-01T18:22:31Z", "2024-05-01T20:22:31+02:00"])
def test_a_pins_time_with_or_without_an_offset_is_utc(created_at):
    post = post_from_pin({"id": "1", "created_at": created_at, "board_id": "7", "media": None}, lambda _: "PUBLIC")
    assert post.created_at == "2024-05-01T18:22:31Z" and post.visibility == "public" and post.collections == ["7"]
    assert post.media == [] and post.like_count is None


def test_pins_listed_oldest_first_are_walked_whole_so_new_ones_are_not_missed(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=5, followers=1, following=1,
                                                                    pins_order="oldest"),
                         options={"page_size": 2})
    assert h.run()["status"] == "ok"
    added = h.fake.add_pin()
    assert h.run()["status"] == "ok"
    assert added in h.post_ids()


# --------------------------------------------------------------------------- authorization


def play_browser(fake: FakePinterest, seen: list):
    """Open the consent page on the fake and follow its redirect to the loopback callback."""
    def browser(url: str) -> None:
        seen.append(url)
        answer = fake.handle(httpx.Request("GET", url))
        assert answer.status_code == 302, answer.text
        with httpx.Client(timeout=10) as real:     # the loopback server is real
            real.get(answer.headers["location"])
    return browser


def test_authorize_exchanges_the_code_with_basic_auth_and_stores_the_tokens(tmp_path):
    fake = FakePinterest(FakePinterestConfig(posts=1, granted_scopes="user_accounts:read,boards:read,pins:read"),
                         base_url=BASE_URL)
    secrets = open_secret_store("memory")
    connector = PinterestConnector(AccountConfig(name=ACCOUNT, platform="pinterest", base_url=BASE_URL), secrets,
                                   transport=httpx.MockTransport(fake.handle))
    seen: list[str] = []
    message = connector.authorize(echo=lambda text: None, open_browser=play_browser(fake, seen),
                                  client_id=fake.config.client_id, client_secret=fake.config.client_secret,
                                  timeout=10)
    assert seen[0].startswith(f"{BASE_URL}/oauth/?")
    assert httpx.URL(seen[0]).params["scope"] == ALL_SCOPES
    stored = json.loads(secrets.get("pinterest", ACCOUNT, "tokens"))
    assert stored["access_token"].startswith("pina_") and stored["refresh_token"].startswith("pinr_")
    assert stored["refresh_expires_at"] > time.time() + 59 * DAY
    assert "Not granted: boards:read_secret, pins:read_secret" in message
    assert stored["access_token"] not in message
    assert not [entry for entry in fake.log if entry[1].startswith("/v5/") and entry[1] != TOKEN_PATH]   # no budget spent
    # The exchange carried no client secret in its form: it went as HTTP Basic auth.
    [exchange] = fake.token_requests
    assert set(exchange) == {"grant_type", "redirect_uri"} and exchange["grant_type"] == "authorization_code"
    assert secrets.get("pinterest", ACCOUNT, "client_secret") == fake.config.client_secret


def test_authorize_with_a_wrong_secret_is_refused_with_what_to_check(tmp_path):
    fake = FakePinterest(FakePinterestConfig(posts=1), base_url=BASE_URL)
    connector = PinterestConnector(AccountConfig(name=ACCOUNT, platform="pinterest", base_url=BASE_URL),
                                   open_secret_store("memory"), transport=httpx.MockTransport(fake.handle))
    with pytest.raises(OAuthError, match="Authentication failed.*app id and secret key"):
        connector.authorize(echo=lambda text: None, open_browser=play_browser(fake, []),
                            client_id=fake.config.client_id, client_secret="not-the-secret", timeout=10)


def test_authorize_without_app_credentials_says_where_to_get_them():
    connector = PinterestConnector(AccountConfig(name=ACCOUNT, platform="pinterest", base_url=BASE_URL),
                                   open_secret_store("memory"))
    with pytest.raises(OAuthError, match="developers.pinterest.com"):
        connector.authorize(echo=lambda text: None, open_browser=False, timeout=1)


# --------------------------------------------------------------------------- refresh and rotation


def test_an_expired_access_token_is_refreshed_once_and_the_rotated_refresh_token_stored(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch)
    h.fake.advance(31 * DAY)                           # past the 30-day access token
    assert h.run()["status"] == "ok"
    stored = h.stored()
    assert stored["refresh_token"] != h.initial["refresh_token"]
    assert not h.fake.refresh_token_alive(h.initial["refresh_token"])    # rotated: the old one is dead
    assert h.fake.refresh_token_alive(stored["refresh_token"])
    assert h.fake.continuous_refresh_seen == 1
    assert [r for r in h.fake.token_requests if r["grant_type"] == "refresh_token"] == [
        {"grant_type": "refresh_token", "continuous_refresh": "true"}]
    # Renewed by archiver itself: no end for the alerts to announce.
    assert h.state("authorization") is None
    assert h.stored()["refresh_expires_at"] == pytest.approx(h.fake.now() + 60 * DAY, abs=60)


def test_a_refresh_token_near_its_end_is_renewed_even_with_a_live_access_token(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=2, followers=1, following=1,
                                                                    access_ttl=90 * DAY))
    h.fake.advance(55 * DAY)
    assert h.run()["status"] == "ok"
    assert h.stored()["refresh_token"] != h.initial["refresh_token"]


class FlakySecrets:
    """A secret store whose next write of the tokens fails: the process dies between
    Pinterest's refresh answer and storing it."""

    def __init__(self, inner):
        self.inner, self.fail_next = inner, False

    def set(self, platform, account, key, value):
        if key == "tokens" and self.fail_next:
            self.fail_next = False
            raise Killed("killed while storing the refreshed tokens")
        return self.inner.set(platform, account, key, value)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("old_refresh", ["until_new_used", "rejected"])
def test_a_crash_between_refresh_and_store(tmp_path, monkeypatch, old_refresh):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=2, followers=1, following=1,
                                                                    old_refresh_after_rotation=old_refresh))
    flaky = FlakySecrets(h.secrets)
    h.ws._secrets = flaky
    h.fake.advance(31 * DAY)
    flaky.fail_next = True
    with pytest.raises(Killed):
        h.run()
    assert h.stored()["refresh_token"] == h.initial["refresh_token"]   # nothing half-written
    result = h.run()
    if old_refresh == "until_new_used":
        # The new pair was never used, so the old refresh token still works.
        assert result["status"] == "ok", result
        assert h.post_ids() == set(h.fake.pins)
    else:
        assert result["status"] != "ok"
        assert f"archiver auth pinterest --account {ACCOUNT}" in json.dumps(result)


def test_a_revoked_app_fails_with_the_command_that_fixes_it_and_keeps_every_row(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch)
    assert h.run()["status"] == "ok"
    pins = h.post_ids()
    h.fake.revoke_all()
    result = h.run(full=True)
    assert result["status"] != "ok"
    assert f"archiver auth pinterest --account {ACCOUNT}" in json.dumps(result)
    assert h.post_ids() == pins


def test_a_missing_scope_names_it(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, scopes="user_accounts:read,pins:read")
    result = h.run()
    assert result["status"] != "ok"
    text = json.dumps(result)
    assert "boards:read" in text and f"archiver auth pinterest --account {ACCOUNT}" in text


# --------------------------------------------------------------------------- the daily budget


def test_a_run_that_hits_the_budget_stops_cleanly_and_resumes_next_day_without_paying_twice(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=9, followers=4, following=2),
                         options={"daily_requests": 8, "page_size": 2})
    result = h.run()
    assert result["status"] == "ok", result
    assert "daily Pinterest request budget" in json.dumps(result)
    assert h.fake.calls_today() == 8 and h.state("quota")["spent"] == 8
    assert not [entry for entry in h.fake.log if entry[2] == 429]       # stopped before Pinterest's limit
    first_day = h.post_ids()
    assert 0 < len(first_day) < len(h.fake.pins)
    before = len(h.requests)
    assert h.run()["status"] == "ok"                                    # the same day: nothing left
    assert h.api_calls(before) == []
    days = 0
    while h.post_ids() != set(h.fake.pins) or h.state("followers") is None or h.state("following") is None:
        h.fake.advance(DAY)                                             # the next UTC day
        days += 1
        before = len(h.requests)
        assert h.run()["status"] == "ok"
        assert len(h.api_calls(before)) <= 8
        assert days < 4
    assert h.value("SELECT count(*) FROM follows WHERE ended_at IS NULL") == 6
    # The cut-off walk resumed at its bookmark: every Pins page beyond the first was read once.
    pins_pages = [r for r in h.requests if r.url.path == "/v5/pins"]
    bookmarks = [r.url.params.get("bookmark") for r in pins_pages if r.url.params.get("bookmark")]
    assert len(bookmarks) == len(set(bookmarks))


def test_a_bookmark_refused_the_next_day_starts_the_listing_again_from_the_top(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=7, followers=1, following=1,
                                                                    bookmark_ttl=3600),
                         options={"daily_requests": 9, "page_size": 2})
    assert h.run()["status"] == "ok"
    assert 0 < len(h.post_ids()) < 7
    h.fake.advance(DAY)
    result = h.run()
    assert result["status"] == "ok", result
    assert "the saved cursor was refused" in json.dumps(result)
    # (A day's budget must cover the walk from the top: with bookmarks that expire, a list
    # longer than that could never be finished. Trial's 1,000 requests are 250,000 Pins.)
    assert h.post_ids() == set(h.fake.pins)


def test_a_list_that_hands_out_the_same_bookmark_again_fails_the_run_and_marks_nothing_deleted(tmp_path, monkeypatch):
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=5, followers=1, following=1),
                         options={"page_size": 2})
    assert h.run()["status"] == "ok"

    def circle(request: httpx.Request):
        if request.url.path == "/v5/pins" and request.url.params.get("bookmark"):
            answer = h.fake.handle(request)
            return httpx.Response(200, json={**answer.json(), "bookmark": request.url.params["bookmark"]})
        return None

    h.faults.append(circle)
    result = h.run(full=True)
    assert result["status"] != "ok" and "circle" in json.dumps(result)
    assert h.post_ids() == set(h.fake.pins)


@pytest.mark.parametrize("headers", [False, True])
def test_a_429_from_pinterest_ends_the_day(tmp_path, monkeypatch, headers):
    # [U] x-ratelimit-* headers or none: a reset hours away is the day's end either way.
    h = PinterestHarness(tmp_path, monkeypatch, FakePinterestConfig(posts=4, followers=1, following=1,
                                                                    daily_limit=2, ratelimit_headers=headers))
    result = h.run()
    assert result["status"] == "ok", result
    assert "Pinterest refused more requests for today (HTTP 429)" in json.dumps(result)
    assert h.state("quota")["spent"] >= h.state("quota")["budget"]      # nothing more today


def test_standard_access_waits_out_a_429_that_asks_for_a_short_wait(tmp_path, monkeypatch):
    h2 = PinterestHarness(tmp_path / "standard", monkeypatch,
                          FakePinterestConfig(posts=4, followers=1, following=1, access="standard", rate_limit=3),
                          options={"daily_requests": 0})
    result = h2.run()
    assert result["status"] == "ok", result
    assert h2.post_ids() == set(h2.fake.pins) and h2.sleeps and max(h2.sleeps) <= 61


# --------------------------------------------------------------------------- a killed run


def contents(h: PinterestHarness) -> dict:
    return {
        "posts": h.rows("SELECT post_id, title, text, link, visibility, deleted_at IS NULL AS alive FROM posts "
                        "ORDER BY post_id"),
        "media": h.rows("SELECT post_id, role, position, sha256 FROM post_media ORDER BY post_id, role, position"),
        "collections": h.rows("SELECT collection_id, kind, parent_id, title FROM collections ORDER BY collection_id"),
        "memberships": h.rows("SELECT collection_id, post_id FROM collection_posts ORDER BY collection_id, post_id"),
        "follows": h.rows("SELECT kind, person_id FROM follows WHERE ended_at IS NULL ORDER BY kind, person_id"),
    }


class Killed(BaseException):
    """The process dies here: nothing after it runs but finally blocks, as a kill leaves it."""


@pytest.mark.parametrize("kill_at", [4, 11])
def test_a_run_killed_at_a_request_converges_to_the_uninterrupted_archive(tmp_path, monkeypatch, kill_at):
    config = FakePinterestConfig(posts=5, followers=3, following=2, seed=4)
    clean = PinterestHarness(tmp_path / "clean", monkeypatch, config, options={"page_size": 2})
    assert clean.run()["status"] == "ok"
    h = PinterestHarness(tmp_path / "killed", monkeypatch, config, options={"page_size": 2})
    count = [0]

    def kill(request: httpx.Request):
        count[0] += 1
        if count[0] == kill_at:
            raise Killed()
        return None

    h.faults.append(kill)
    with pytest.raises(Killed):
        h.run()
    h.faults.clear()
    assert h.run()["status"] == "ok"
    assert contents(h) == contents(clean)
