"""Completeness fails closed, in the core (issue 10, point 2), through TikTok's real
connector on archiver.sync.listing.

A video TikTok lists but that cannot be archived (its payload cannot be mapped, or the
writer refuses it) is reported, kept raw, never blocks the rest of its page, and is never
marked deleted by a full listing. A full listing that no longer lists more than
``max_deleted_percent`` of the account's videos marks nothing and opens an alert.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from archiver.ops.status import account_status, render_status
from archiver_connectors.tiktok.sim.fake import FakeTikTokConfig
from tiktok_sync_harness import LIST_PATH, QUERY_PATH, TikTokHarness, ticking_clock

VIDEOS = 30          # pages of 20 and 10 (short_pages=False)


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


def newest_first(h: TikTokHarness) -> list[str]:
    return [v["id"] for v in sorted(h.fake.videos, key=lambda v: v["create_time"], reverse=True)]


def unmappable(h: TikTokHarness, video_id: str, path: str = LIST_PATH):
    """TikTok sends this one video with a creation time that is no time at all."""
    def fault(request: httpx.Request):
        if request.url.path != path:
            return None
        answer = h.fake.handle(request)
        body = json.loads(answer.content)
        for video in body["data"].get("videos") or []:
            if str(video["id"]) == video_id:
                video["create_time"] = "the day before yesterday"
        return httpx.Response(answer.status_code, json=body, headers={"x-tt-logid": "fault"})
    return fault


def tombstoned(h: TikTokHarness) -> set[str]:
    return {r["post_id"] for r in h.rows("SELECT post_id FROM posts WHERE deleted_at IS NOT NULL")}


def test_one_payload_that_cannot_be_mapped_is_reported_and_the_rest_of_its_page_is_archived(tmp_path):
    """No poison pill: today one bad video fails the whole page, every night."""
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, short_pages=False, seed=51))
    bad = newest_first(h)[3]
    h.faults.append(unmappable(h, bad))

    result = h.run()
    assert result["status"] == "ok", result
    assert h.post_ids() == set(newest_first(h)) - {bad}
    [error] = [e for e in result["errors"] if bad in e["item"]]
    assert "could not be archived" in error["error"] and "ValueError" in error["error"]
    kept = h.rows("SELECT stream, error, raw FROM unmapped_items WHERE item_id=?", bad)
    assert len(kept) == 1 and kept[0]["stream"] == "videos"
    raw = json.loads(kept[0]["raw"])
    assert raw["create_time"] == "the day before yesterday"   # kept raw …
    assert raw["cover_image_url"] and "?" not in raw["cover_image_url"]   # … without a signed link
    [status] = account_status(h.archive, h.ws.config)
    assert status["archive_holds"]["items_not_archived"] == 1
    assert "1 items not archived" in render_status([status])

    # TikTok sends it whole again: it is archived and no longer listed as unmapped.
    h.faults.clear()
    assert h.run(full=True)["status"] == "ok"
    assert bad in h.post_ids()
    assert h.value("SELECT count(*) FROM unmapped_items") == 0


def test_a_listed_video_that_cannot_be_mapped_is_never_tombstoned_by_a_full_run(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, short_pages=False, seed=52))
    assert h.run(full=True)["status"] == "ok"
    bad = newest_first(h)[25]                    # archived; on the second page
    gone = newest_first(h)[2]
    h.fake.delete_video(gone)                    # really deleted on TikTok
    h.faults.append(unmappable(h, bad))

    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert bad not in tombstoned(h)              # listed, so not deleted, even though not mapped
    assert any(bad in e["item"] for e in result["errors"])       # and the run says so …
    # … and, with a listed item it could not archive, this listing marks nothing deleted.
    held = [e for e in result["errors"] if e["item"] == "videos listing"]
    assert held and "could not be archived" in held[0]["error"] and "nothing was marked deleted" in held[0]["error"]
    assert tombstoned(h) == set()
    listing = h.rows("SELECT completed_at, listed, failed, tombstoned, held_back FROM listings "
                     "WHERE completed_at IS NOT NULL ORDER BY completed_at DESC LIMIT 1")[0]
    assert listing["listed"] == VIDEOS - 1 and listing["failed"] == 1 and listing["tombstoned"] == 0

    # The payload is whole again: the next full listing is clean and finds the deletion.
    h.faults.clear()
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 1
    assert tombstoned(h) == {gone}


def test_a_listed_video_the_writer_refuses_is_never_tombstoned_by_a_full_run(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, short_pages=False, seed=53))
    assert h.run(full=True)["status"] == "ok"
    refused = newest_first(h)[7]
    # A rule of the database that refuses this one row's update (a UNIQUE violation, a
    # data error of that record: the page goes on without it).
    h.db.execute("CREATE TABLE refused (post_id TEXT PRIMARY KEY)")
    h.db.execute("INSERT INTO refused VALUES (?)", [refused])
    h.db.execute("CREATE TRIGGER refuse BEFORE UPDATE ON posts WHEN NEW.post_id IN (SELECT post_id FROM refused) "
                 "BEGIN INSERT INTO refused VALUES (NEW.post_id); END")

    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert any(refused in e["item"] for e in result["errors"])
    assert tombstoned(h) == set()
    assert h.value("SELECT count(*) FROM unmapped_items WHERE item_id=?", refused) == 1


def test_a_full_listing_that_would_tombstone_30_percent_tombstones_nothing_and_opens_an_alert(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, short_pages=False, seed=54))
    assert h.run(full=True)["status"] == "ok"
    for video_id in newest_first(h)[:9]:        # 9 of 30: 30 %
        h.fake.delete_video(video_id)

    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert tombstoned(h) == set()
    [held] = [e for e in result["errors"] if e["item"] == "videos listing"]
    assert "9 of 30 videos (30 %)" in held["error"] and "max_deleted_percent" in held["error"]
    alerts = h.rows("SELECT kind, state, message FROM alerts")
    assert [(a["kind"], a["state"]) for a in alerts] == [("deletions_held", "open")]
    assert "9 of 30" in alerts[0]["message"]

    # The owner did delete them: with a higher limit the next full listing marks them.
    h.account.max_deleted_percent = 50
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 9
    assert len(tombstoned(h)) == 9
    assert h.rows("SELECT kind, state FROM alerts") == [{"kind": "deletions_held", "state": "resolved"}]


def test_a_full_listing_within_the_limit_tombstones_and_keeps_only_its_own_listed_ids(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, short_pages=False, seed=55))
    assert h.run(full=True)["status"] == "ok"
    gone = newest_first(h)[:6]                   # 20 %: allowed
    for video_id in gone:
        h.fake.delete_video(video_id)
    result = h.run(full=True)
    assert result["status"] == "ok" and result["counts"]["posts_tombstoned"] == 6
    assert tombstoned(h) == set(gone)
    assert h.value("SELECT count(DISTINCT listing) FROM listed_ids") == 1   # older listings' ids dropped
    assert h.value("SELECT count(*) FROM listed_ids") == VIDEOS - 6
    assert h.value("SELECT count(*) FROM alerts") == 0


def test_one_broken_video_in_the_counts_refresh_is_reported_and_the_others_refreshed(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=0, short_pages=False, seed=56))
    now = int(time.time())
    for k in range(VIDEOS, 0, -1):               # all from the last days: "recent" (30 days)
        h.fake.add_video(create_time=now - k * 3600)
    assert h.run(full=True)["status"] == "ok"
    bad = newest_first(h)[25]                    # beyond the first page: refreshed by /video/query/
    h.faults.append(unmappable(h, bad, path=QUERY_PATH))
    mark = h.mark()

    result = h.run()
    assert result["status"] == "ok", result
    assert h.sent(QUERY_PATH, mark), "the refresh asked TikTok again"
    [error] = [e for e in result["errors"] if bad in e["item"]]
    assert error["item"].startswith("recent item") and "ValueError" in error["error"]
    assert h.value("SELECT count(*) FROM unmapped_items WHERE item_id=?", bad) == 1


def test_a_cut_off_full_listing_resumes_after_incremental_runs_and_never_judges_what_they_brought(tmp_path):
    from archiver.sync.runner import CancelFlag

    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=50, short_pages=False, seed=57))
    assert h.run(full=True)["status"] == "ok"
    gone = newest_first(h)[45]
    h.fake.delete_video(gone)

    flag, pages = CancelFlag(), []

    def stop_after_first(line: str) -> None:
        if line.startswith("videos:"):
            pages.append(line)
            flag.set()

    assert h.run(full=True, cancel=flag, progress=stop_after_first)["status"] == "interrupted"
    cut_at = h.state("videos")["cursor"]
    fresh = h.fake.add_video()                   # published meanwhile, above where the listing stands
    assert h.run()["status"] == "ok"             # incremental: archives it
    assert fresh["id"] in h.post_ids()
    assert h.state("videos")["full_cut_off"]["cursor"] == cut_at

    mark = h.mark()
    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert h.sent(LIST_PATH, mark)[0].body.get("cursor") == cut_at     # went on where it stood
    assert tombstoned(h) == {gone}               # the deleted one, not the new one it never saw
    assert "full_cut_off" not in h.state("videos")
