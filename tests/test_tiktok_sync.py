"""`archiver export` for TikTok, in-process: the real connector, runner, writer and media
store against the stateful fake TikTok (see tiktok_sync_harness.py). Every test checks
the archive's rows and what the fake was asked."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time

import httpx
import pytest

from archiver.sync.runner import CancelFlag
from archiver_connectors.tiktok.sim.fake import FakeTikTokConfig
from tiktok_sync_harness import (
    ACCOUNT_ID, DEFAULT_SCOPES, LIST_PATH, QUERY_PATH, TOKEN_PATH, TikTokHarness, archive_snapshot,
    integrity_ok, ticking_clock)

ADD_PATH, CHECK_PATH, DOWNLOAD_PATH = "/v2/user/data/add/", "/v2/user/data/check/", "/v2/user/data/download/"
OLD_LIFETIMES = (86400, 31536000)        # older docs: 24 h access, 365 d refresh
NEW_LIFETIMES = (7200, 180 * 86400)      # newer docs: 2 h access, 180 d refresh


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    """Archive rows are stamped to the second; these runs follow each other within one.
    Without a ticking clock two count samples would share an observed_at."""
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


def newest_first(harness: TikTokHarness) -> list[dict]:
    return sorted(harness.fake.videos, key=lambda v: v["create_time"], reverse=True)


def samples(harness: TikTokHarness, post_id: str) -> list[dict]:
    return harness.rows("SELECT * FROM post_metrics WHERE post_id=? ORDER BY observed_at", post_id)


def cancel_after_video_pages(pages: int):
    """A cancel flag and a progress callback that sets it once ``pages`` video pages are written."""
    flag, written = CancelFlag(), []

    def progress(line: str) -> None:
        if line.startswith("videos:"):
            written.append(line)
            if len(written) >= pages:
                flag.set()

    return flag, progress


# --------------------------------------------------------------------------- first run


def test_first_run_archives_profile_every_video_once_covers_and_counts(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=45, followers=33, following=12, seed=11))
    result = h.run()

    assert result["status"] == "ok", result
    assert h.last_run()["status"] == "ok"

    # Profile and its stats, as a row and as the first sample of the time series.
    user = h.fake.user
    account = h.rows("SELECT * FROM accounts WHERE account_id=?", ACCOUNT_ID)[0]
    expected_likes = sum(v["like_count"] for v in h.fake.videos) + user["extra_likes"]
    assert (account["native_id"], account["username"], account["display_name"], account["bio"]) == (
        user["open_id"], user["username"], user["display_name"], user["bio_description"])
    assert (account["followers"], account["following"], account["likes"], account["posts"]) == (
        33, 12, expected_likes, 45)
    metrics = h.rows("SELECT followers, following, likes, posts FROM account_metrics")
    assert metrics == [{"followers": 33, "following": 12, "likes": expected_likes, "posts": 45}]
    assert h.media_file(account["avatar_sha256"]).exists()

    # The fake really served short pages while has_more was true; they were all walked.
    pages = [e.json()["data"] for e in h.sent(LIST_PATH)]
    assert any(len(p["videos"]) < 20 and p["has_more"] for p in pages)
    assert [p["has_more"] for p in pages] == [True] * (len(pages) - 1) + [False]
    listed = [v["id"] for p in pages for v in p["videos"]]
    assert len(listed) == len(set(listed)) == 45

    # Every video exactly once, with its caption, date and counts.
    posts = {p["post_id"]: p for p in h.rows("SELECT * FROM posts")}
    assert set(posts) == h.fake_ids() and len(posts) == 45
    for video in h.fake.videos:
        post = posts[video["id"]]
        assert post["title"] == (video["title"] or None)
        assert post["text"] == (video["video_description"] or None)
        assert post["created_at"] == dt.datetime.fromtimestamp(video["create_time"], dt.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        assert post["deleted_at"] is None
        assert [(s["like_count"], s["comment_count"], s["share_count"], s["view_count"])
                for s in samples(h, video["id"])] == [
            (video["like_count"], video["comment_count"], video["share_count"], video["view_count"])]

    # Every cover downloaded, stored under media/ by its sha256, the bytes the CDN served.
    covers = h.cover_bytes(sorted(posts))
    media = h.rows("SELECT * FROM post_media")
    assert {(m["post_id"], m["role"]) for m in media} == {(i, "cover") for i in posts}
    for row in media:
        assert row["status"] == "ok" and row["error"] is None
        path = h.media_file(row["sha256"])
        assert path.is_relative_to(h.archive.media_root) and path.exists()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
        assert row["sha256"] == hashlib.sha256(covers[row["post_id"]]).hexdigest()
        assert "?" not in row["source_url"]  # the signed part of the link is never stored
    assert "x-signature" not in h.value("SELECT group_concat(raw) FROM posts")
    assert integrity_ok(h)


# --------------------------------------------------------------------------- incremental


def test_incremental_run_stops_at_a_known_page_and_refreshes_recent_counts(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=10, short_pages=False, seed=12))
    now = int(time.time())
    for k in range(50, 0, -1):  # 50 videos from the last week: all "recent" (30 days)
        h.fake.add_video(create_time=now - k * 3 * 3600)
    assert h.run()["status"] == "ok"
    assert len(h.sent(LIST_PATH)) == 3  # a first run walks all 60 (3 full pages)

    new = [h.fake.add_video(), h.fake.add_video()]
    order = newest_first(h)            # page 1: the 2 new + 18 known; page 2: 20 known
    unlisted_recent = order[40:52]     # recent, but below where the listing will stop
    old_videos = order[52:]
    changed, unchanged = unlisted_recent[3], unlisted_recent[4]
    changed_on_page_one, changed_old = order[5], old_videos[2]
    h.fake.set_counts(changed["id"], like_count=changed["like_count"] + 100, view_count=changed["view_count"] + 999)
    h.fake.set_counts(changed_on_page_one["id"], comment_count=changed_on_page_one["comment_count"] + 7)
    h.fake.set_counts(changed_old["id"], like_count=changed_old["like_count"] + 5)
    h.fake.gain_followers(3)

    mark = h.mark()
    result = h.run()

    assert result["status"] == "ok", result
    assert len(h.sent(LIST_PATH, mark)) == 2  # stopped at the first wholly known page
    assert result["counts"]["posts_new"] == 2
    assert h.post_ids() == h.fake_ids()
    for video in new:
        cover = h.rows("SELECT status, sha256 FROM post_media WHERE post_id=?", video["id"])
        assert cover[0]["status"] == "ok" and h.media_file(cover[0]["sha256"]).exists()

    # /v2/video/query/ asked exactly for the recent videos the listing did not reach.
    queried = [i for e in h.sent(QUERY_PATH, mark) for i in e.body["filters"]["video_ids"]]
    assert sorted(queried) == sorted(v["id"] for v in unlisted_recent)

    assert [s["like_count"] for s in samples(h, changed["id"])] == [changed["like_count"] - 100,
                                                                     changed["like_count"]]
    assert samples(h, changed["id"])[-1]["view_count"] == changed["view_count"]
    assert h.value("SELECT like_count FROM posts WHERE post_id=?", changed["id"]) == changed["like_count"]
    assert len(samples(h, unchanged["id"])) == 1          # same counts: no new sample
    assert len(samples(h, changed_on_page_one["id"])) == 2
    assert len(samples(h, changed_old["id"])) == 1        # old and not listed: not refreshed

    account_samples = h.rows("SELECT followers, posts FROM account_metrics ORDER BY observed_at")
    assert account_samples[-1] == {"followers": len(h.fake.followers), "posts": 62}
    assert len(account_samples) == 2


def test_caption_edit_moves_the_old_text_to_post_versions(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=30, short_pages=False, seed=13))
    assert h.run()["status"] == "ok"
    order = newest_first(h)
    top, deep = order[0], order[25]    # page 1 (any run sees it) and page 2 (only --full)
    before = {p["post_id"]: p for p in h.rows("SELECT post_id, title, text FROM posts")}
    h.fake.edit_caption(top["id"], "Brand new title", "Brand new title #fresh")
    h.fake.edit_caption(deep["id"], "Older, edited", "Older, edited #late")

    assert h.run()["status"] == "ok"
    versions = h.rows("SELECT post_id, title, text FROM post_versions")
    assert versions == [{"post_id": top["id"], "title": before[top["id"]]["title"],
                         "text": before[top["id"]]["text"]}]
    assert h.rows("SELECT title, text FROM posts WHERE post_id=?", top["id"]) == [
        {"title": "Brand new title", "text": "Brand new title #fresh"}]

    assert h.run(full=True)["status"] == "ok"
    assert h.run(full=True)["status"] == "ok"  # seen again unchanged: no further version
    versions = {v["post_id"]: v for v in h.rows("SELECT post_id, title, text FROM post_versions")}
    assert set(versions) == {top["id"], deep["id"]}
    assert (versions[deep["id"]]["title"], versions[deep["id"]]["text"]) == (
        before[deep["id"]]["title"], before[deep["id"]]["text"])
    assert h.rows("SELECT title, text FROM posts WHERE post_id=?", deep["id"]) == [
        {"title": "Older, edited", "text": "Older, edited #late"}]


def test_deleted_video_is_tombstoned_only_by_a_full_listing_and_revived_when_back(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=30, short_pages=False, seed=14))
    assert h.run(full=True)["status"] == "ok"
    victim = newest_first(h)[1]        # on the first page, which every run lists
    cover = h.rows("SELECT sha256 FROM post_media WHERE post_id=?", victim["id"])[0]["sha256"]
    h.fake.delete_video(victim["id"])

    result = h.run()                   # incremental: a partial view never tombstones
    assert result["status"] == "ok"
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0

    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 1
    tombstoned = h.rows("SELECT post_id, title FROM posts WHERE deleted_at IS NOT NULL")
    assert tombstoned == [{"post_id": victim["id"], "title": victim["title"] or None}]
    assert h.value("SELECT count(*) FROM posts") == 30          # the row is kept
    media = h.rows("SELECT sha256, status FROM post_media WHERE post_id=?", victim["id"])
    assert media == [{"sha256": cover, "status": "ok"}]
    assert hashlib.sha256(h.media_file(cover).read_bytes()).hexdigest() == cover

    # It comes back (made public again): the next full listing clears the tombstone.
    h.fake.deleted_videos.remove(victim)
    h.fake.videos.append(victim)
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"].get("posts_reappeared") == 1
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0


def test_video_seen_only_by_incremental_runs_is_tombstoned_by_the_first_full_run(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=30, short_pages=False, seed=14))
    assert h.run()["status"] == "ok"   # `archiver export`: incremental, the default
    victim = newest_first(h)[1]
    h.fake.delete_video(victim["id"])

    assert h.run(full=True)["status"] == "ok"
    assert h.rows("SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [{"post_id": victim["id"]}]


# --------------------------------------------------------------------------- interruptions


def test_interrupted_full_run_resumes_from_sync_state_and_converges(tmp_path):
    config = dict(videos=70, seed=15)
    reference = TikTokHarness(tmp_path, FakeTikTokConfig(**config), folder="reference")
    assert reference.run(full=True)["status"] == "ok"
    total_pages = len(reference.sent(LIST_PATH))
    assert total_pages > 4

    h = TikTokHarness(tmp_path, FakeTikTokConfig(**config))
    flag, progress = cancel_after_video_pages(2)
    result = h.run(full=True, cancel=flag, progress=progress)
    assert result["status"] == "interrupted"
    assert h.last_run()["status"] == "interrupted"
    state = h.state("videos")
    assert state["mode"] == "full" and state["cursor"] is not None
    assert 0 < len(h.post_ids()) < 70

    mark = h.mark()
    result = h.run(full=True)
    assert result["status"] == "ok", result
    resumed = h.sent(LIST_PATH, mark)
    assert resumed[0].body.get("cursor") == state["cursor"]   # not from the top again
    assert len(resumed) == total_pages - 2
    assert h.state("videos").get("cursor") is None and "last_full_at" in h.state("videos")

    def converged(harness):
        snap = archive_snapshot(harness)
        # Everything but when it was seen: ids, captions, counts, tombstones, media.
        return ([row[:-1] for row in snap["posts"]], snap["post_media"], snap["files"])

    assert converged(h) == converged(reference)
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0


def test_interrupted_first_incremental_run_finishes_older_pages_next_time(tmp_path):
    config = dict(videos=70, seed=16)
    reference = TikTokHarness(tmp_path, FakeTikTokConfig(**config), folder="reference")
    assert reference.run()["status"] == "ok"
    total_pages = len(reference.sent(LIST_PATH))

    h = TikTokHarness(tmp_path, FakeTikTokConfig(**config))
    flag, progress = cancel_after_video_pages(2)
    assert h.run(cancel=flag, progress=progress)["status"] == "interrupted"
    cut_at = h.state("videos")
    assert cut_at["mode"] == "incremental" and cut_at["cursor"] is not None
    assert h.post_ids() < h.fake_ids()

    mark = h.mark()
    assert h.run()["status"] == "ok"
    sent = h.sent(LIST_PATH, mark)
    # The top page (all known), then straight on from where the first run stopped.
    assert "cursor" not in sent[0].body and sent[1].body["cursor"] == cut_at["cursor"]
    assert len(sent) == 1 + total_pages - 2
    assert h.post_ids() == h.fake_ids()
    assert h.state("videos") == {"mode": "incremental", "cursor": None, "pending": []}


def test_second_interruption_on_new_videos_keeps_the_older_cut_off_listing(tmp_path):
    """Cut off on the first run; then, before the top of the list is known again, cut off
    a second time while walking newly published videos: the older cut-off point must
    survive in sync_state, and the third run must end with every video."""
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=70, seed=18))
    flag, progress = cancel_after_video_pages(2)
    assert h.run(cancel=flag, progress=progress)["status"] == "interrupted"
    first_cut = h.state("videos")["cursor"]

    for _ in range(45):  # more than two pages of new videos above the known ones
        h.fake.add_video()
    flag, progress = cancel_after_video_pages(1)
    assert h.run(cancel=flag, progress=progress)["status"] == "interrupted"
    state = h.state("videos")
    assert first_cut in [state["cursor"], *(p["cursor"] for p in state["pending"])]
    assert h.post_ids() < h.fake_ids()

    assert h.run()["status"] == "ok"
    assert h.post_ids() == h.fake_ids()
    assert h.state("videos")["pending"] == []


# --------------------------------------------------------------------------- tokens


def token_requests(h: TikTokHarness, since: int = 0):
    return h.sent(TOKEN_PATH, since)


@pytest.mark.parametrize("access_ttl,refresh_ttl", [OLD_LIFETIMES, NEW_LIFETIMES])
def test_token_expired_mid_run_is_refreshed_and_the_rotated_one_stored_before_use(tmp_path, access_ttl, refresh_ttl):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=45, seed=17, access_ttl=access_ttl, refresh_ttl=refresh_ttl))
    first = h.initial_tokens
    expired = []

    def expire_after_first_page(request, response):
        if request.url.path == LIST_PATH and not expired:
            h.fake.expire_access_tokens()
            expired.append(True)

    checked, violations = [], []

    def new_token_must_already_be_stored(request):
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer and bearer != first["access_token"]:
            stored = h.stored_tokens()
            checked.append(bearer)
            if stored["access_token"] != bearer or stored["refresh_token"] == first["refresh_token"]:
                violations.append(request.url.path)
        return None

    h.after.append(expire_after_first_page)
    h.faults.append(new_token_must_already_be_stored)
    started = time.time()
    result = h.run()

    assert result["status"] == "ok", result
    assert h.post_ids() == h.fake_ids()
    assert len(token_requests(h)) == 1
    assert [e.path for e in h.exchanges if e.status == 401] == [LIST_PATH]  # one rejection, then fine
    assert checked and not violations
    stored = h.stored_tokens()
    assert stored["refresh_token"] != first["refresh_token"]
    assert not h.refresh_token_alive(first["refresh_token"])      # rotated: the old one is dead
    # Expiry comes from the answer's expires_in, whatever the lifetimes are.
    assert started + access_ttl - 5 <= stored["access_expires_at"] <= time.time() + access_ttl + 5
    assert started + refresh_ttl - 5 <= stored["refresh_expires_at"] <= time.time() + refresh_ttl + 5

    # The stored (rotated) refresh token is the live one: the next expiry is handled too.
    h.fake.expire_access_tokens()
    mark = h.mark()
    assert h.run()["status"] == "ok"
    assert len(token_requests(h, mark)) == 1


@pytest.mark.parametrize("access_ttl,refresh_ttl", [OLD_LIFETIMES, NEW_LIFETIMES])
def test_token_close_to_expiry_is_refreshed_before_the_first_call(tmp_path, access_ttl, refresh_ttl):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=12, seed=18, access_ttl=access_ttl, refresh_ttl=refresh_ttl))
    h.edit_stored_tokens(access_expires_at=time.time() + 60)  # still valid, but not for long

    result = h.run()

    assert result["status"] == "ok", result
    assert h.exchanges[0].path == TOKEN_PATH             # refreshed ahead, not after a 401
    assert not [e for e in h.exchanges if e.status == 401]
    stored = h.stored_tokens()
    assert stored["access_token"] != h.initial_tokens["access_token"]
    assert stored["access_expires_at"] > time.time() + access_ttl - 60
    assert not h.refresh_token_alive(h.initial_tokens["refresh_token"])


def test_expired_refresh_token_asks_for_reauthorization_without_calling_tiktok(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=5, seed=19))
    h.edit_stored_tokens(access_expires_at=time.time() - 10, refresh_expires_at=time.time() - 5)

    result = h.run()

    assert result["status"] == "failed"
    assert "archiver auth tiktok" in result["message"]
    assert h.exchanges == []
    assert h.value("SELECT count(*) FROM posts") == 0


def all_tables(h: TikTokHarness) -> dict[str, list]:
    names = [r[0] for r in h.db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE '%_fts%' AND name != 'runs'")]
    return {name: sorted(map(repr, h.db.execute(f"SELECT * FROM [{name}]").fetchall())) for name in names}


def test_revoked_grant_fails_with_reauth_message_and_changes_nothing(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=25, seed=20))
    assert h.run()["status"] == "ok"
    h.fake.add_video()                 # something new to fetch, if the run could
    before = all_tables(h)
    h.fake.revoke_all()

    result = h.run(full=True)

    assert result["status"] == "failed"
    assert "archiver auth tiktok" in result["message"]
    run = h.last_run()
    assert run["status"] == "failed" and "archiver auth tiktok" in run["message"]
    assert all_tables(h) == before
    assert integrity_ok(h)


def test_grant_revoked_between_pages_keeps_what_was_written_and_resumes_after_reauth(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=70, seed=21))
    pages_seen = []

    def revoke_after_second_page(request, response):
        if request.url.path == LIST_PATH:
            pages_seen.append(1)
            if len(pages_seen) == 2:
                h.fake.revoke_all()

    h.after.append(revoke_after_second_page)
    result = h.run()
    assert result["status"] == "failed" and "archiver auth tiktok" in result["message"]
    kept = h.post_ids()
    assert 0 < len(kept) < 70 and kept <= h.fake_ids()

    h.after.clear()
    h.authorize()                      # the user runs `archiver auth tiktok` again
    assert h.run()["status"] == "ok"
    assert h.post_ids() == h.fake_ids()


# --------------------------------------------------------------------------- Data Portability


def portability_harness(tmp_path, term: str, **config) -> TikTokHarness:
    return TikTokHarness(tmp_path, FakeTikTokConfig(videos=20, followers=40, following=15, seed=22, **config),
                         scopes=f"{DEFAULT_SCOPES},portability.postsandprofile.{term}")


def set_completed_at(h: TikTokHarness, days_ago: int) -> None:
    state = h.state("portability")
    state["completed_at"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    with h.db.atomic():
        h.db.execute("UPDATE sync_state SET state=? WHERE account_id=? AND stream='portability'",
                     [json.dumps(state), ACCOUNT_ID])


def test_portability_ongoing_requests_polls_opaque_statuses_then_imports(tmp_path):
    statuses = ["accepted", "collecting/2", "Ω-some-new-state", "downloadable"]
    h = portability_harness(tmp_path, "ongoing", portability_statuses=statuses)

    assert h.run()["status"] == "ok"
    adds = h.sent(ADD_PATH)
    assert len(adds) == 1
    request_id = adds[0].json()["data"]["request_id"]          # parsed exactly: an int64
    assert request_id > 2**53                                    # a float would have lost it
    raw_state = h.value("SELECT state FROM sync_state WHERE stream='portability'")
    assert json.loads(raw_state)["request_id"] == str(request_id)
    assert f'"request_id": "{request_id}"' in raw_state
    assert [e.body["request_id"] for e in h.sent(CHECK_PATH)] == [request_id]

    for _ in range(len(statuses) - 2):   # statuses it does not know: keep polling
        mark = h.mark()
        assert h.run()["status"] == "ok"
        assert h.sent(ADD_PATH, mark) == []
        assert len(h.sent(CHECK_PATH, mark)) == 1
        assert [e.status for e in h.sent(DOWNLOAD_PATH, mark)] == [400]   # not ready yet
        assert h.state("portability")["request_id"] == str(request_id)
        assert h.value("SELECT count(*) FROM follows") == 0

    mark = h.mark()
    result = h.run()
    assert result["status"] == "ok", result
    assert [e.status for e in h.sent(DOWNLOAD_PATH, mark)] == [200]
    open_follows = "SELECT person_id FROM follows WHERE kind=? AND ended_at IS NULL"
    assert {r["person_id"] for r in h.rows(open_follows, "followers")} == {p["username"] for p in h.fake.followers}
    assert {r["person_id"] for r in h.rows(open_follows, "following")} == {p["username"] for p in h.fake.following}
    comments = h.rows("SELECT text, by_owner FROM comments")
    assert sorted(c["text"] for c in comments) == sorted(c["comment"] for c in h.fake.comments_written)
    assert all(c["by_owner"] == 1 for c in comments)
    state = h.state("portability")
    assert "request_id" not in state and state["last_request_id"] == str(request_id) and state["completed_at"]
    assert state["single_used"] is False
    # The export merged into the API's rows: no duplicate posts, no spurious "edits".
    assert h.post_ids() == h.fake_ids()
    assert h.value("SELECT count(*) FROM post_versions") == 0
    sources = {r["source"] for r in h.rows("SELECT source FROM snapshots")}
    assert len(sources) == 1 and sources.pop().startswith("export:")

    mark = h.mark()
    assert h.run()["status"] == "ok"   # done recently: no new request yet
    assert h.sent(ADD_PATH, mark) == [] and h.sent(CHECK_PATH, mark) == []

    set_completed_at(h, days_ago=8)    # ongoing: a week later, a fresh export is asked for
    mark = h.mark()
    assert h.run()["status"] == "ok"
    again = h.sent(ADD_PATH, mark)
    assert len(again) == 1 and again[0].status == 200
    assert h.state("portability")["request_id"] == str(again[0].json()["data"]["request_id"]) != str(request_id)


def test_a_full_disk_during_the_portability_download_leaves_no_half_zip(tmp_path, monkeypatch):
    """The disk fills up while the export zip streams in: the run fails saying so, no half
    zip is left in the archive, and the next run (space again) imports the export."""
    import errno

    from archiver_connectors.tiktok.api import TikTokApi

    h = portability_harness(tmp_path, "single")
    for _ in range(2):                 # pending, processing
        assert h.run()["status"] == "ok"
    real_download = TikTokApi.portability_download

    def disk_fills_up(self, request_id, dest, **bounds):
        dest.write(b"PK\x03\x04" + b"\x00" * 5000)
        raise OSError(errno.ENOSPC, "No space left on device", str(getattr(dest, "name", "")))

    monkeypatch.setattr(TikTokApi, "portability_download", disk_fills_up)
    failed = h.run()
    assert failed["status"] == "failed", failed
    assert failed["message"].startswith(f"disk full in {h.archive.folder} (No space left on device: "), failed
    assert "nothing of the unfinished page was kept" in failed["message"]
    assert list(h.archive.folder.rglob("tiktok-portability-*")) == []
    monkeypatch.setattr(TikTokApi, "portability_download", real_download)
    assert h.run()["status"] == "ok"
    assert h.value("SELECT count(*) FROM follows WHERE kind='followers'") == 40


def test_portability_single_scope_never_asks_twice(tmp_path):
    h = portability_harness(tmp_path, "single")
    for _ in range(3):                 # pending, processing, ready
        assert h.run()["status"] == "ok"
    assert h.state("portability")["single_used"] is True
    assert h.value("SELECT count(*) FROM follows WHERE kind='followers'") == 40

    set_completed_at(h, days_ago=60)
    for _ in range(2):
        assert h.run()["status"] == "ok"
    assert len(h.sent(ADD_PATH)) == 1
    assert all(e.status == 200 for e in h.sent(ADD_PATH))


def test_portability_request_that_expires_is_made_again(tmp_path):
    h = portability_harness(tmp_path, "ongoing")
    assert h.run()["status"] == "ok"
    first_id = h.state("portability")["request_id"]
    h.fake.expire_data_requests()

    result = h.run()
    assert result["status"] == "ok"
    assert any(first_id in e["error"] and "expired" in e["error"] for e in result["errors"])
    assert h.state("portability") == {}

    assert h.run()["status"] == "ok"
    assert len(h.sent(ADD_PATH)) == 2
    assert h.state("portability")["request_id"] != first_id


def test_portability_request_tiktok_no_longer_knows_is_made_again(tmp_path):
    h = portability_harness(tmp_path, "ongoing")
    assert h.run()["status"] == "ok"
    first_id = h.state("portability")["request_id"]

    def check_refused(request):
        if request.url.path == CHECK_PATH:
            return httpx.Response(400, json={"data": {}, "error": {
                "code": "invalid_params", "message": "request_id is missing or unknown.", "log_id": "x"}})
        return None

    h.faults.append(check_refused)
    result = h.run()
    assert result["status"] == "ok", result              # the API part of the run is not lost
    assert any(first_id in e["error"] for e in result["errors"])
    assert h.state("portability") == {}

    h.faults.clear()
    assert h.run()["status"] == "ok"
    assert len(h.sent(ADD_PATH)) == 2 and h.state("portability")["request_id"] != first_id


def test_portability_without_the_scope_is_reported_not_failed(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=5, seed=23), portability=True)
    result = h.run()
    assert result["status"] == "ok"
    assert any(e["item"] == "portability" and "archiver auth tiktok" in e["error"] for e in result["errors"])
    assert h.sent(ADD_PATH) == []
    assert h.post_ids() == h.fake_ids()
