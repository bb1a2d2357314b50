"""A page is all or nothing (issue 10, point 1).

One record whose data the writer cannot take is reported and skipped; but when the
database itself refuses (disk full, a trigger that aborts the transaction), the records
before it may already be gone: then nothing of the page is kept, its cursor included, and
the run fails saying so. The failures are real SQLite ones: a temporary trigger, and
``PRAGMA max_page_count`` (SQLite's own "database or disk is full").
"""

from __future__ import annotations

import pytest

from archiver_connectors.tiktok.sim.fake import FakeTikTokConfig
from tiktok_sync_harness import LIST_PATH, TikTokHarness, ticking_clock

VIDEOS = 50          # pages of 20, 20 and 10 (short_pages=False)


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


def newest_first(h: TikTokHarness) -> list[str]:
    return [v["id"] for v in sorted(h.fake.videos, key=lambda v: v["create_time"], reverse=True)]


def assert_only_first_page_kept(h: TikTokHarness, result: dict, expected_message: str) -> None:
    order = newest_first(h)
    assert result["status"] == "failed", result
    assert h.last_run()["status"] == "failed"
    assert expected_message in result["message"]
    assert "nothing of that page was kept" in result["message"]
    # Every record of page 1, none of page 2 (not even the ones before the failure) …
    assert h.post_ids() == set(order[:20])
    # … and the cursor still says "after page 1": the next run asks for page 2 again.
    asked = [e.body.get("cursor") for e in h.sent(LIST_PATH)]
    assert h.state("videos")["cursor"] == asked[1]


@pytest.mark.parametrize("action", ["ROLLBACK", "FAIL"])
def test_a_trigger_refusing_a_record_mid_page_keeps_nothing_of_the_page_and_fails_the_run(tmp_path, action):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, short_pages=False, seed=41))
    victim = newest_first(h)[24]      # the fifth video of page 2
    h.db.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON posts WHEN NEW.post_id = '{victim}' "
                 f"BEGIN SELECT RAISE({action}, 'refused by test'); END")

    result = h.run(full=True)
    assert_only_first_page_kept(h, result, "while writing page 2 of videos")

    h.db.execute("DROP TRIGGER refuse")
    assert h.run(full=True)["status"] == "ok"
    assert h.post_ids() == set(newest_first(h))


def test_disk_full_mid_run_keeps_nothing_of_the_page_and_says_what_to_do(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, short_pages=False, seed=42))
    pages = []

    def progress(line: str) -> None:
        if line.startswith("videos:"):
            pages.append(line)
            if len(pages) == 1:   # the disk fills up right after page 1 was committed
                used = h.value("PRAGMA page_count")
                h.db.execute(f"PRAGMA max_page_count = {used}")

    result = h.run(full=True, progress=progress)
    assert_only_first_page_kept(h, result, "disk full while writing page 2 of videos")
    assert result["message"].endswith("free space and run again")

    h.db.execute("PRAGMA max_page_count = 1073741823")   # space freed
    assert h.run(full=True)["status"] == "ok"
    assert h.post_ids() == set(newest_first(h))


def test_a_record_with_bad_data_is_still_skipped_alone(tmp_path):
    """The per-record rule stays for data errors: the page's other records are kept."""
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, short_pages=False, seed=43))
    victim = newest_first(h)[24]
    # A CHECK-like refusal of one row's value that does not end the transaction.
    h.db.execute("CREATE TABLE refused (post_id TEXT PRIMARY KEY)")
    h.db.execute(f"INSERT INTO refused VALUES ('{victim}')")
    h.db.execute("CREATE TRIGGER refuse_data BEFORE INSERT ON posts WHEN NEW.post_id IN (SELECT post_id FROM refused) "
                 "BEGIN INSERT INTO refused VALUES (NEW.post_id); END")  # a UNIQUE violation: IntegrityError

    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert h.post_ids() == set(newest_first(h)) - {victim}
    assert any(victim in e["item"] for e in result["errors"])
