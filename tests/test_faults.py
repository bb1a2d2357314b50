"""Faults during `archiver export` for TikTok: rate limits, server errors, timeouts, cut
bodies, a platform that vanishes. Each run ends complete or failed with its reason in
`runs`, and the archive is never damaged: the posts and media tables (and the media files
on disk, hashed again) are compared before and after, and SQLite's integrity check runs.

The fake's own knobs make the faults where it has them (rate limit + Retry-After,
fail_rate); the rest are made by the harness's switchboard (see tiktok_sync_harness.py).
"""

from __future__ import annotations

import json

import httpx
import pytest

from archiver.ops.status import account_status, render_status
from archiver_connectors.tiktok.api import RETRY_POLICY
from archiver_connectors.tiktok.sim.fake import FakeTikTokConfig
from tiktok_sync_harness import (
    DATA_PATHS, LIST_PATH, TOKEN_PATH, TikTokHarness, archive_snapshot, integrity_ok, ticking_clock)

VIDEOS = 40
ATTEMPTS = RETRY_POLICY.attempts  # per request, the first one included


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


@pytest.fixture
def archived(tmp_path):
    """An account already archived by a clean --full run, and that archive's snapshot.

    The fake's world does not change afterwards, so whatever a faulty run does, the
    archive must end exactly as it was (a run that completes finds nothing new)."""
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, seed=31))
    assert h.run(full=True)["status"] == "ok"
    assert len(h.post_ids()) == VIDEOS
    h.events.clear()     # the faulty run's requests and waits only, from here on
    h.exchanges.clear()
    return h, archive_snapshot(h)


def assert_undamaged(h: TikTokHarness, before: dict) -> None:
    assert integrity_ok(h)
    after = archive_snapshot(h)
    for table in before:
        assert after[table] == before[table], f"{table} changed"
    assert all(digest == sha for sha, digest in after["files"])  # every file whole on disk
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0


def assert_recorded(h: TikTokHarness, result: dict) -> dict:
    """The run's outcome is in `runs`, with its reason when it failed."""
    run = h.last_run()
    assert run["run_id"] == result["run_id"]
    assert run["status"] == result["status"] and run["status"] in ("ok", "failed")
    assert run["ended_at"] is not None
    if run["status"] == "failed":
        assert run["message"] and run["message"] == result["message"]
    return run


def statuses(h: TikTokHarness, path: str) -> list[int | None]:
    return [e.status for e in h.sent(path)]


def data_request(request: httpx.Request) -> bool:
    return request.url.path in DATA_PATHS


# --------------------------------------------------------------------------- 429


def rate_limit(h: TikTokHarness, per_minute: int, retry_after: str | None) -> None:
    h.fake.advance(120)  # the clean run's requests leave the one-minute window
    h.fake.config.rate_limit_per_minute = per_minute
    h.fake.config.retry_after = retry_after


def test_429_with_retry_after_waits_exactly_that_long_and_completes(archived):
    h, before = archived
    rate_limit(h, per_minute=2, retry_after="30")

    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "ok", result
    limited = statuses(h, LIST_PATH).count(429)
    assert limited >= 2
    # Each 429 was followed by a wait of exactly Retry-After (the window then really passed).
    assert h.waits() == [30.0] * limited
    assert_undamaged(h, before)


def test_429_without_retry_after_backs_off_until_the_window_has_passed(archived):
    h, before = archived
    rate_limit(h, per_minute=2, retry_after=None)   # TikTok documents no Retry-After

    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "ok", result
    waits = h.waits()
    assert len(waits) == statuses(h, LIST_PATH).count(429) >= ATTEMPTS - 2
    # Exponential backoff with jitter (1, 2, 4 … s plus up to 1 s) for the first limited
    # request, long enough in all to outlast TikTok's one-minute window.
    stretch = []
    for wait in waits:
        if stretch and wait < stretch[-1]:
            break
        stretch.append(wait)
    for n, wait in enumerate(stretch):
        assert 2 ** n <= wait <= 2 ** n + 1
    assert sum(stretch) >= 60
    assert_undamaged(h, before)


def test_retry_after_zero_does_not_become_a_tight_loop(archived):
    h, before = archived
    rate_limit(h, per_minute=2, retry_after="0")

    result = h.run(full=True)

    assert_recorded(h, result)
    waits = h.waits()
    # "Retry-After: 0" is raised to a floor that doubles: 0.5, 1, 2, 4 … s — never 0.
    floors = [0.5 * 2 ** n for n in range(ATTEMPTS - 1)]
    assert waits[:len(floors)] == floors[:len(waits)]
    assert len(waits) >= 2 and min(waits) >= 0.5
    refused = statuses(h, LIST_PATH).count(429)
    if result["status"] == "failed":
        assert "429" in result["message"]
        assert refused == len(waits) + 1 <= ATTEMPTS      # bounded attempts, a wait between each
    else:
        assert refused == len(waits)
    assert_undamaged(h, before)


# --------------------------------------------------------------------------- 5xx


def server_errors_on_list(h: TikTokHarness, first: int, count: int) -> None:
    """The fake answers 500 internal_error (its fail_rate knob) to list requests number
    ``first`` .. ``first + count - 1`` of the run, and normally otherwise."""
    seen = []

    def toggle(request):
        if request.url.path == LIST_PATH:
            seen.append(request)
            h.fake.config.fail_rate = 1.0 if first <= len(seen) < first + count else 0.0
        return None

    h.faults.append(toggle)


def test_short_5xx_burst_is_retried_with_growing_backoff(archived):
    h, before = archived
    server_errors_on_list(h, first=2, count=3)

    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "ok", result
    assert statuses(h, LIST_PATH).count(500) == 3
    waits = h.waits()
    assert len(waits) == 3 and waits[0] < waits[1] < waits[2]
    assert_undamaged(h, before)


def test_long_5xx_outage_fails_with_its_reason_and_the_next_run_converges(archived):
    h, before = archived
    server_errors_on_list(h, first=2, count=50)

    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "failed"
    assert "500" in result["message"] and "/v2/video/list/" in result["message"]
    assert statuses(h, LIST_PATH).count(500) == ATTEMPTS  # bounded attempts
    assert_undamaged(h, before)

    h.faults.clear()
    h.fake.config.fail_rate = 0.0
    assert h.run(full=True)["status"] == "ok"
    assert_undamaged(h, before)


def test_random_5xx_from_the_fake_fail_rate_knob(archived):
    h, before = archived
    h.fake.config.fail_rate = 0.3       # seeded: the same requests fail on every test run

    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "ok", result
    assert any(e.status == 500 for e in h.exchanges)
    assert_undamaged(h, before)


# --------------------------------------------------------------------------- timeouts


def test_timeouts_are_retried(archived):
    h, before = archived
    api_requests = []

    def every_third_api_request_times_out(request):
        if data_request(request):
            api_requests.append(request)
            if len(api_requests) % 3 == 0:
                raise httpx.ReadTimeout("simulated: no answer in time", request=request)
        return None

    h.faults.append(every_third_api_request_times_out)
    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "ok", result
    assert any(e.response is None for e in h.exchanges)   # some really timed out
    assert_undamaged(h, before)


def test_listing_that_always_times_out_fails_with_its_reason(archived):
    h, before = archived

    def list_times_out(request):
        if request.url.path == LIST_PATH:
            raise httpx.ReadTimeout("simulated", request=request)
        return None

    h.faults.append(list_times_out)
    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "failed"
    assert "timed out" in result["message"]
    assert len(h.sent(LIST_PATH)) == ATTEMPTS
    assert_undamaged(h, before)


def test_cover_downloads_that_time_out_are_recorded_per_item_and_fetched_later(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=25, seed=32))
    broken: set[str] = set()
    listed = []

    def two_covers_time_out(request):
        path = request.url.path
        if path == LIST_PATH:
            listed.append(path)
        elif path.startswith("/cdn/img/") and listed:
            if len(broken) < 2:
                broken.add(path)
            if path in broken:
                raise httpx.ReadTimeout("simulated", request=request)
        return None

    h.faults.append(two_covers_time_out)
    result = h.run()

    assert_recorded(h, result)
    assert result["status"] == "ok"                       # one bad item never aborts a run
    assert len(result["errors"]) == 2 and all("cover" in e["item"] for e in result["errors"])
    failed = h.rows("SELECT post_id, sha256, error FROM post_media WHERE status='failed'")
    assert len(failed) == 2 and all(f["sha256"] is None and f["error"] for f in failed)
    assert h.value("SELECT count(*) FROM post_media WHERE status='ok'") == 23
    assert h.post_ids() == h.fake_ids()                   # the posts themselves are all there
    assert not list((h.archive.media_root / ".tmp").glob("*.part"))

    h.faults.clear()
    assert h.run(full=True)["status"] == "ok"             # a full listing brings fresh links
    assert h.value("SELECT count(*) FROM post_media WHERE status='ok' AND sha256 IS NOT NULL") == 25
    for row in failed:
        sha = h.value("SELECT sha256 FROM post_media WHERE post_id=?", row["post_id"])
        assert h.media_file(sha).exists()


def test_failed_redownload_never_replaces_a_stored_cover(archived):
    h, before = archived

    def cdn_down(request):
        if request.url.path.startswith("/cdn/"):
            raise httpx.ConnectTimeout("simulated", request=request)
        return None

    h.faults.append(cdn_down)
    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "ok"
    assert result["errors"]                               # each failed cover is reported
    assert_undamaged(h, before)                           # and every stored one kept


# --------------------------------------------------------------------------- cut bodies


def cut_list_bodies(h: TikTokHarness, which) -> None:
    """List responses whose number (1-based) ``which`` accepts lose the second half of
    their body, as when a connection drops mid-answer."""
    seen = []

    def cut(request, response):
        if request.url.path == LIST_PATH:
            seen.append(request)
            if which(len(seen)):
                whole = response.read()
                response._content = whole[: len(whole) // 2]
                response.headers["Content-Length"] = str(len(response._content))

    h.after.append(cut)


def test_truncated_json_is_retried(archived):
    h, before = archived
    cut_list_bodies(h, lambda n: n == 2)

    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "ok", result
    bodies = [e.response.content for e in h.sent(LIST_PATH)]
    with pytest.raises(ValueError):
        json.loads(bodies[1])                             # the fault really happened
    assert json.loads(bodies[2])["data"]["videos"]        # and the retry got the page
    assert_undamaged(h, before)


def test_always_truncated_json_fails_with_its_reason(archived):
    h, before = archived
    cut_list_bodies(h, lambda n: True)

    result = h.run(full=True)

    assert_recorded(h, result)
    assert result["status"] == "failed"
    assert "JSON" in result["message"]
    assert len(h.sent(LIST_PATH)) == ATTEMPTS
    assert_undamaged(h, before)


# --------------------------------------------------------------------------- vanished


def api_envelope(status: int, code: str, data: dict | None = None) -> httpx.Response:
    body = {"data": data if data is not None else {},
            "error": {"code": code, "message": "", "log_id": "20250101000000FAULT"}}
    return httpx.Response(status, json=body)


def everything_401(request):
    if request.url.path == TOKEN_PATH:
        return httpx.Response(401, json={"error": "invalid_client", "error_description": "Client is gone."})
    if request.url.path.startswith("/v2/"):
        return api_envelope(401, "access_token_invalid")
    return httpx.Response(401, text="Unauthorized")


def everything_404(request):
    return httpx.Response(404, text="<html><body>Not Found</body></html>",
                          headers={"Content-Type": "text/html"})


def everything_empty(request):
    path = request.url.path
    if path == "/v2/user/info/":
        return api_envelope(200, "ok", {"user": {}})
    if path == LIST_PATH:
        return api_envelope(200, "ok", {"videos": [], "cursor": 0, "has_more": False})
    if path.startswith("/v2/video/"):
        return api_envelope(200, "ok", {"videos": []})
    return None


@pytest.mark.parametrize("vanished,expect_status,expect_in_message", [
    (everything_401, "failed", "archiver auth tiktok"),
    (everything_404, "failed", "404"),
    (everything_empty, "ok", None),
], ids=["401", "404", "empty"])
@pytest.mark.parametrize("full", [True, False], ids=["full", "incremental"])
def test_platform_vanished_leaves_the_archive_whole(archived, vanished, expect_status, expect_in_message, full):
    h, before = archived
    profile_payload = h.value("SELECT raw FROM accounts")
    h.faults.append(vanished)

    result = h.run(full=full)

    run = assert_recorded(h, result)
    assert result["status"] == expect_status, result
    assert_undamaged(h, before)                           # no tombstones, every row and file
    assert h.value("SELECT count(*) FROM posts") == VIDEOS
    assert h.value("SELECT raw FROM accounts") == profile_payload  # not replaced by an empty answer

    [status] = account_status(h.archive, h.ws.config)
    assert status["last_run"]["run_id"] == run["run_id"]
    assert status["last_run"]["status"] == expect_status
    assert status["archive_holds"]["posts"] == VIDEOS
    assert status["archive_holds"]["posts_deleted_on_platform"] == 0
    text = render_status([status])
    if expect_in_message:
        assert expect_in_message in status["last_run"]["message"]
        assert "FAILED" in text and expect_in_message in text
    elif full:
        # An empty "complete" listing is reported, and nothing is marked deleted.
        assert any("listed no posts" in e["error"] for e in status["last_run"]["errors"])
        assert "listed no posts" in text
