"""Deletions are found without a person (issue 10, point 3).

The daemon runs a full listing when the account's last one (recorded by archiver.sync.listing)
is ``full_every_days`` old, and `archiver status` shows when it was. Times are fixed: the
writer's clock starts at a known moment and the daemon's clock is set by the test.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from tiktok_sync_harness import ACCOUNT_ID, TikTokHarness, ticking_clock

from archiver.ops.daemon import Daemon
from archiver.ops.schedule import full_listing_due
from archiver.ops.status import account_status, render_status
from archiver.sync.listing import last_full_listing
from archiver_connectors.tiktok.sim.fake import FakeTikTokConfig

UTC = dt.timezone.utc
START = dt.datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock(START))
    monkeypatch.setattr("archiver.sync.listing.now_utc", ticking_clock(START))


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def last_mode(h: TikTokHarness) -> str:
    return h.last_run()["mode"]


def test_the_daemon_lists_everything_when_the_last_full_listing_is_full_every_days_old(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=30, short_pages=False, seed=61))
    h.account.full_every_days = 7
    daemon = Daemon(h.ws)
    daemon.transport = h.transport
    now = [START]
    daemon.clock = lambda: now[0]

    # No full listing yet: the first run lists everything.
    assert daemon.run_account(ACCOUNT_ID)["status"] == "ok"
    assert last_mode(h) == "full"
    first_full = parse(last_full_listing(h.db, ACCOUNT_ID))

    victim = sorted(h.fake.videos, key=lambda v: v["create_time"], reverse=True)[0]["id"]
    h.fake.delete_video(victim)

    # A day later: incremental, which never marks anything deleted.
    now[0] = first_full + dt.timedelta(days=1)
    assert daemon.run_account(ACCOUNT_ID)["status"] == "ok"
    assert last_mode(h) == "incremental"
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0
    assert parse(last_full_listing(h.db, ACCOUNT_ID)) == first_full

    # Six days and 23 hours: still not due.
    now[0] = first_full + dt.timedelta(days=7) - dt.timedelta(hours=1)
    assert daemon.run_account(ACCOUNT_ID)["status"] == "ok"
    assert last_mode(h) == "incremental"

    # Seven days: a full listing, nobody passed --full, and the deletion is found.
    now[0] = first_full + dt.timedelta(days=7)
    assert daemon.run_account(ACCOUNT_ID)["status"] == "ok"
    assert last_mode(h) == "full"
    assert h.rows("SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [{"post_id": victim}]
    second_full = parse(last_full_listing(h.db, ACCOUNT_ID))
    assert second_full > first_full

    # `archiver status` says when (text and --json), and when the next one is due.
    [row] = account_status(h.archive, h.ws.config)
    assert parse(row["last_full_listing_at"]) == second_full
    assert parse(row["full_listing_due_at"]) == second_full + dt.timedelta(days=7)
    json.dumps(row)   # what --json prints
    text = render_status([row])
    assert f"last full listing: {row['last_full_listing_at']} (next one due {row['full_listing_due_at']})" in text


def test_a_cut_off_full_listing_is_still_due_and_resumed(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=50, short_pages=False, seed=62))
    daemon = Daemon(h.ws)
    daemon.transport = h.transport
    daemon.clock = lambda: START
    pages = []

    def stop_after_one(line: str) -> None:
        if line.startswith("videos:"):
            pages.append(line)
            daemon.cancel.set()

    from archiver.sync.jobs import run_export

    assert run_export(h.ws, h.account, full=True, cancel=daemon.cancel, progress=stop_after_one,
                      transport=h.transport)["status"] == "interrupted"
    assert last_full_listing(h.db, ACCOUNT_ID) is None
    due, why = full_listing_due(h.db, h.account, START)
    assert due and "no full listing has finished" in why
    daemon.cancel = type(daemon.cancel)()
    assert daemon.run_account(ACCOUNT_ID)["status"] == "ok"
    assert last_mode(h) == "full" and last_full_listing(h.db, ACCOUNT_ID) is not None
    assert len(h.post_ids()) == 50


@pytest.mark.parametrize("every,age,expected", [
    (7, dt.timedelta(days=6, hours=23, minutes=59), False),
    (7, dt.timedelta(days=7), True),
    (1, dt.timedelta(hours=23), False),
    (1, dt.timedelta(days=1, seconds=1), True),
])
def test_full_listing_due_by_the_age_of_the_last_one(tmp_path, every, age, expected):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=5, short_pages=False, seed=63))
    assert h.run(full=True)["status"] == "ok"
    finished = parse(last_full_listing(h.db, ACCOUNT_ID))
    h.account.full_every_days = every
    due, why = full_listing_due(h.db, h.account, finished + age)
    assert due is expected, why
    assert "last full listing finished" in why


def test_no_full_listing_is_due_where_the_api_cannot_list_everything(tmp_path, monkeypatch):
    from archiver.connector import get_connector

    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=5, short_pages=False, seed=64))
    monkeypatch.setattr(get_connector("tiktok"), "full_listings", False)   # as X's API (a paid window)
    daemon = Daemon(h.ws)
    daemon.transport = h.transport
    daemon.clock = lambda: START
    assert daemon.run_account(ACCOUNT_ID)["status"] == "ok"
    assert last_mode(h) == "incremental"           # not full, though none has ever been made
    shown = render_status(account_status(h.ws.archive, h.ws.config, now=START))
    assert "last full listing: none on this platform" in shown and "next run lists everything" not in shown
