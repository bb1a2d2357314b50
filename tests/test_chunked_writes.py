"""Big writes can be interrupted (issue 11, point 4).

A follower list of millions must not be one transaction: it is staged, applied and
cleared in chunks that each commit (archiver.archive.lists), a stop (Ctrl-C, SIGTERM, the
daemon's) is honoured at the next chunk boundary with the run marked interrupted, and
the next run goes on from there and converges on the archive an uninterrupted run makes.

Stops and crashes land at exact moments: a signal sent from inside the member stream or
at the n-th chunk (ARCHIVER_SIGNAL_AT), a hard exit at the n-th chunk (ARCHIVER_CRASH_AT);
never a sleep aimed at a moment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from cli_world import archiver_command, query
from crash_world import archive_contents

from archiver import crashpoints

from archiver.archive import lists
from archiver.archive import Archive
from archiver.config import AccountConfig
from archiver.records import Membership, Person, Snapshot
from archiver.secrets import open_secret_store
from archiver.sync.runner import CancelFlag, Runner

EXIT_INTERRUPTED = 3   # archiver.cli._common.EXIT_INTERRUPTED
TAKEN = "2025-03-01T00:00:00Z"


# --------------------------------------------------------------------------- helpers


def handle(index: int) -> str:
    # Scrambled, as an export lists people: chunks in key order cut across the file order.
    return f"fan_{(index * 2654435761) % 2**32:08x}"


def write_tiktok_export(path: Path, people: int, *, skip_every: int = 0) -> Path:
    """A TikTok "download your data" JSON with ``people`` followers, written as a stream."""
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"Profile": {"Profile Information": {"ProfileMap": {"userName": "me"}}}, '
                  '"Activity": {"Follower List": {"FansList": [')
        for index in range(people):
            item = {"Date": "2024-01-01 10:00:00", "UserName": handle(index)}
            if skip_every and index % skip_every == 0:
                item = {"Date": "2024-01-01 10:00:00"}   # no user name: reported, skipped
            out.write(("," if index else "") + json.dumps(item))
        out.write("]}}}")
    return path


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", ARCHIVER_SECRETS="env",
               HOME=str(tmp_path / "home"), **extra)
    return env


def archiver(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*archiver_command(), *args], env=env, capture_output=True, text=True, timeout=timeout)


def reference_import(tmp_path: Path, export: Path, env: dict[str, str]) -> dict:
    """The archive an import that nobody stopped makes of ``export``."""
    folder = tmp_path / "reference"
    done = archiver(["import", "tiktok", str(export), "--archive", str(folder)], env)
    assert done.returncode == 0, done.stdout + done.stderr
    return archive_contents(folder)


def members(people: range, seen: list[int] | None = None, on_member=None):
    for index in people:
        if seen is not None:
            seen.append(index)
        if on_member is not None:
            on_member(index)
        yield Membership(Person(handle(index), handle=handle(index), url=f"https://example.org/@{handle(index)}"),
                         since=None)


class ListsOnly:
    """The platform's part, stood in for: a connector that yields given pages. The runner,
    writer, staging and archive are the real ones."""

    def __init__(self, tmp_path: Path):
        from archiver_connectors.mastodon import MastodonConnector

        account = AccountConfig(name="main", platform="mastodon", base_url="http://127.0.0.1:9")
        self.connector = MastodonConnector(account, open_secret_store("memory"))

    def run(self, archive: Archive, pages, *, source: str, chunk: int, cancel=lambda: False) -> dict:
        runner = Runner(archive, self.connector)
        runner.list_chunk = chunk
        return runner.run(pages, kind="import" if source != "api" else "export", mode="test",
                          source=source, cancel=cancel)


def audience(archive: Archive) -> dict:
    db = archive.db
    return {
        "people": db.execute("SELECT count(*) FROM people").fetchone()[0],
        # Whether an interval ended, not when: an API list's time is the moment it was read.
        "follows": db.execute("SELECT kind, person_id, ended_at IS NULL FROM follows ORDER BY 1, 2").fetchall(),
        "events": db.execute("SELECT kind, person_id, event FROM audience_events ORDER BY 1, 2, 3").fetchall(),
        "snapshots": db.execute("SELECT kind, member_count, new_count, lost_count, complete FROM snapshots "
                                "ORDER BY taken_at").fetchall(),
        "staged": db.execute("SELECT (SELECT count(*) FROM staged_lists) + (SELECT count(*) FROM staged_members)"
                             ).fetchone()[0],
    }


@pytest.fixture
def chunk_points(monkeypatch):
    """Hooks called at every chunk boundary (the "chunk" crash point) with how many
    boundaries were passed since the hook was added."""
    hooks: list = []
    original = crashpoints.reached

    def reached(point, cut=None, stopped=None):
        if point == "chunk":
            for entry in hooks:
                entry[0] += 1
                entry[1](entry[0])
        return original(point, cut) if stopped is None else original(point, cut, stopped)

    monkeypatch.setattr(crashpoints, "reached", reached)

    class Hooks:
        def append(self, hook) -> None:
            hooks.append([0, hook])

        def clear(self) -> None:
            hooks.clear()

    return Hooks()


# --------------------------------------------------------------------------- Ctrl-C / SIGTERM


def test_ctrl_c_while_a_big_export_list_is_read_stops_at_the_next_chunk_and_the_next_run_resumes(tmp_path):
    """A real SIGINT, sent from inside the member stream (the 2,500th person of 10,000),
    through the same handler the CLI installs: the run stops once that chunk is
    committed, not after the whole list."""
    archive = Archive(tmp_path / "archive")
    flag, seen = CancelFlag(), []
    ctrl_c = lambda index: os.kill(os.getpid(), signal.SIGINT) if index == 2_500 else None  # noqa: E731
    page = lambda people, on_member=None: lambda ctx: iter([  # noqa: E731
        lists_page(Snapshot("followers", TAKEN, members(people, seen, on_member)))])

    stand_in = ListsOnly(tmp_path)

    with flag.on_signals():
        first = stand_in.run(archive, page(range(10_000), ctrl_c), source="export:big", chunk=1_000, cancel=flag)
    assert len(seen) <= 3_000, f"read {len(seen)} of 10,000 people after Ctrl-C at the 2,500th"
    assert first["status"] == "interrupted", first
    assert "chunk boundary" in first["message"] and "next run resumes" in first["message"]
    assert archive.db.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    assert archive.db.execute("SELECT read, members, complete FROM staged_lists").fetchall() == [(3_000, 3_000, None)]
    assert archive.db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0   # nothing half visible

    seen.clear()
    second = stand_in.run(archive, page(range(10_000)), source="export:big", chunk=1_000)
    assert second["status"] == "ok", second
    whole = Archive(tmp_path / "whole")
    assert stand_in.run(whole, page(range(10_000)), source="export:big", chunk=1_000)["status"] == "ok"
    assert audience(archive) == audience(whole)
    assert audience(archive)["snapshots"] == [("followers", 10_000, 0, 0, 1)]
    assert audience(archive)["staged"] == 0


def lists_page(snapshot: Snapshot):
    from archiver.records import Page

    return Page("export:followers", [snapshot])


@pytest.fixture(autouse=True)
def ticking_list_clock(monkeypatch):
    # Each API listing is a moment of its own, even two in the same second of a test.
    from tiktok_sync_harness import ticking_clock

    monkeypatch.setattr(lists, "now_utc", ticking_clock())


def api_pages(people: list[int], page_size: int = 1_000):
    """An API's follower listing of ``people``, ``page_size`` a page (archiver.archive.lists)."""
    def fetch(cursor):
        start = cursor or 0
        end = start + page_size
        return list(members(people[start:end])), (end if end < len(people) else None)
    return lambda ctx: lists.list_pages(ctx, "followers", fetch, stream="followers")


FIRST_LIST = list(range(5_000))
SECOND_LIST = [*range(500, 5_000), *range(10_000, 10_700)]   # 500 left, 700 came: 5,200


@pytest.mark.parametrize("stop_at", [1, 3, 6, 9])
def test_sigterm_while_an_api_list_is_applied_stops_at_that_chunk_and_the_next_run_finishes_it(
        tmp_path, chunk_points, stop_at):
    """A second API listing (5,200 people, pages of 1,000) is applied in 6 chunks of
    1,000 people, then its staging cleared in 6: SIGTERM (through the CLI's handler) at
    the n-th of those chunk boundaries. Today the whole list is applied in the last
    page's transaction, so there is no boundary to stop at."""
    stand_in = ListsOnly(tmp_path)
    whole = Archive(tmp_path / "whole")
    assert stand_in.run(whole, api_pages(FIRST_LIST), source="api", chunk=1_000)["status"] == "ok"
    assert stand_in.run(whole, api_pages(SECOND_LIST), source="api", chunk=1_000)["status"] == "ok"

    archive = Archive(tmp_path / "archive")
    assert stand_in.run(archive, api_pages(FIRST_LIST), source="api", chunk=1_000)["status"] == "ok"
    chunk_points.append(lambda n: os.kill(os.getpid(), signal.SIGTERM) if n == stop_at else None)
    flag = CancelFlag()
    with flag.on_signals():
        stopped = stand_in.run(archive, api_pages(SECOND_LIST), source="api", chunk=1_000, cancel=flag)
    assert stopped["status"] == "interrupted", stopped
    assert "next run resumes" in stopped["message"]
    snapshots = archive.db.execute("SELECT member_count, complete FROM snapshots ORDER BY taken_at").fetchall()
    if stop_at < 6:   # stopped half way through applying: the snapshot is not complete yet
        assert snapshots == [(5_000, 1), (5_200, 0)]
        assert archive.db.execute("SELECT applied_to IS NOT NULL FROM staged_lists").fetchall() == [(1,)]
    else:             # applied; some of its staging is left to clear
        assert snapshots == [(5_000, 1), (5_200, 1)]
        assert audience(archive)["staged"] > 0

    # The next run (which lists nothing itself) finishes what was left, and the archive
    # is the one an uninterrupted pair of runs made.
    chunk_points.clear()
    assert stand_in.run(archive, lambda ctx: iter([]), source="api", chunk=1_000)["status"] == "ok"
    assert audience(archive) == audience(whole)
    assert audience(whole)["snapshots"] == [("followers", 5_000, 0, 0, 1), ("followers", 5_200, 700, 500, 1)]


# --------------------------------------------------------------------------- bounded transactions


@pytest.mark.parametrize("path", ["export", "api"])
def test_a_big_list_never_grows_the_wal_past_a_few_chunks(tmp_path, chunk_points, path):
    """120,000 followers with chunks of 5,000: every transaction is one chunk, so the WAL
    (which SQLite reuses after each automatic checkpoint and never shrinks while the
    archive is open) stays a few MB. Today the list is one transaction, and the WAL
    grows with it (45 MB from an export, 66 MB from an API here; 2.2 GB for 9 million). (A few seconds: the list must be
    big enough for one transaction to show.)"""
    people = 120_000
    archive = Archive(tmp_path / "archive")
    stand_in = ListsOnly(tmp_path)
    boundaries: list[int] = []
    chunk_points.append(boundaries.append)
    if path == "export":
        pages = lambda ctx: iter([lists_page(Snapshot("followers", TAKEN, members(range(people))))])  # noqa: E731
        result = stand_in.run(archive, pages, source="export:big", chunk=5_000)
    else:
        result = stand_in.run(archive, api_pages(list(range(people)), page_size=5_000), source="api", chunk=5_000)
    assert result["status"] == "ok", result
    wal = Path(f"{archive.db_path}-wal").stat().st_size
    assert archive.db.execute("SELECT member_count, complete FROM snapshots").fetchall() == [(people, 1)]
    archive.close()
    assert wal < 8 * 2**20, f"the WAL grew to {wal / 2**20:.1f} MB"
    # Staged (export), applied and cleared in 24 chunks each.
    assert len(boundaries) >= (3 if path == "export" else 2) * people // 5_000


# --------------------------------------------------------------------------- the CLI and the daemon


@pytest.mark.parametrize("signal_at, stage", [("chunk:2:INT", "staging"), ("chunk:7:TERM", "applying")])
def test_a_signal_at_a_chunk_boundary_exits_3_marks_the_run_interrupted_and_the_next_import_resumes(
        tmp_path, signal_at, stage):
    """`archiver import` of an export with 1,000 followers, chunks of 200 (5 staged, 5
    applied, then cleared): Ctrl-C (INT) or a service stop (TERM) delivered at a chunk
    boundary by ARCHIVER_SIGNAL_AT. The run stops there, says so, exits 3, and the next
    import converges on the archive of an import nobody stopped."""
    export = write_tiktok_export(tmp_path / "user_data_tiktok.json", 1_000, skip_every=97)
    env = cli_env(tmp_path, ARCHIVER_LIST_CHUNK="200")
    reference = reference_import(tmp_path, export, env)
    folder = tmp_path / "archive"
    args = ["import", "tiktok", str(export), "--archive", str(folder)]

    stopped = archiver(args, {**env, "ARCHIVER_SIGNAL_AT": signal_at})
    assert stopped.returncode == EXIT_INTERRUPTED, stopped.stdout + stopped.stderr
    assert "interrupted" in stopped.stdout and "the next run resumes" in stopped.stdout, stopped.stdout
    assert query(folder, "SELECT kind, status FROM runs") == [("import", "interrupted")]
    assert query(folder, "SELECT count(*) FROM imports") == [(0,)]   # not done: importing it again resumes
    if stage == "staging":   # two chunks of 200 people staged, no snapshot
        assert query(folder, "SELECT read, members, complete FROM staged_lists") == [(400, 400, None)]
        assert query(folder, "SELECT count(*) FROM snapshots") == [(0,)]
    else:                    # applying: the snapshot is there, not complete until its last chunk
        assert query(folder, "SELECT complete FROM snapshots") == [(0,)]

    resumed = archiver(args, env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert archive_contents(folder) == reference
    assert query(folder, "SELECT member_count, complete FROM snapshots") == [(1_000 - 11, 1)]
    assert query(folder, "SELECT (SELECT count(*) FROM staged_lists) + (SELECT count(*) FROM staged_members)") == [(0,)]


def test_a_kill_at_any_chunk_boundary_of_an_import_converges(tmp_path, monkeypatch):
    """A hard exit (ARCHIVER_CRASH_AT, as close to SIGKILL as a process gets) at every
    chunk boundary of an import in turn (600 followers, chunks of 200: staged, applied,
    cleared); each time the next import converges on the archive of an import nobody
    stopped. (About 10 s on a loaded machine: one process a boundary.)"""
    from crash_world import crash_at

    from archiver.sync.jobs import Workspace, run_import

    export = write_tiktok_export(tmp_path / "user_data_tiktok.json", 600)
    env = cli_env(tmp_path, ARCHIVER_LIST_CHUNK="200")
    counts = tmp_path / "points.json"
    reference = reference_import(tmp_path, export, {**env, "ARCHIVER_CRASH_COUNTS": str(counts)})
    boundaries = json.loads(counts.read_text())["chunk"]
    assert boundaries >= 9
    monkeypatch.setattr(lists, "CHUNK", 200)   # the resumed imports run here, with the same chunks
    for n in range(1, boundaries + 1):
        folder = tmp_path / f"crash-{n}"
        crash_at(f"chunk:{n}", ["import", "tiktok", str(export), "--archive", str(folder)], env, folder,
                 tmp_path / "logs")
        ws = Workspace.open(folder)
        try:
            assert run_import(ws, export, platform="tiktok")["status"] == "ok"
        finally:
            ws.archive.close()
        assert archive_contents(folder) == reference, f"killed at chunk boundary {n}"
        shutil.rmtree(folder)


def test_the_daemon_stops_an_inbox_import_at_a_chunk_boundary_on_sigterm_and_exits_0(tmp_path):
    """The daemon's SIGTERM (ARCHIVER_SIGNAL_AT delivers it at the 2nd chunk boundary of
    the import it runs from the inbox): the import stops there and is recorded as
    interrupted, the file stays in the inbox, the daemon exits 0; `archiver inbox` then
    finishes the import."""
    folder, inbox = tmp_path / "archive", tmp_path / "inbox"
    folder.mkdir()
    inbox.mkdir()
    (folder / "config.toml").write_text(
        f'[secrets]\nbackend = "env"\n\n[inbox]\npath = "{inbox}"\ninterval = 1\nsettle = 1\n', encoding="utf-8")
    write_tiktok_export(inbox / "user_data_tiktok.json", 1_000)
    env = cli_env(tmp_path, ARCHIVER_LIST_CHUNK="200")

    daemon = subprocess.run([*archiver_command(), "daemon", "--archive", str(folder)], capture_output=True, text=True,
                            env={**env, "ARCHIVER_SIGNAL_AT": "chunk:2:TERM"}, timeout=60)
    assert daemon.returncode == 0, daemon.stdout + daemon.stderr
    assert query(folder, "SELECT kind, status FROM runs") == [("import", "interrupted")]
    assert query(folder, "SELECT read FROM staged_lists") == [(400,)]   # stopped at that boundary
    assert (inbox / "user_data_tiktok.json").exists()

    scan = archiver(["inbox", "--archive", str(folder)], env)
    assert scan.returncode == 0, scan.stdout + scan.stderr
    assert query(folder, "SELECT status FROM runs ORDER BY run_id") == [("interrupted",), ("ok",)]
    assert query(folder, "SELECT member_count, complete FROM snapshots") == [(1_000, 1)]
    assert query(folder, "SELECT count(*) FROM follows WHERE ended_at IS NULL") == [(1_000,)]


# --------------------------------------------------------------------------- the upgrade


def test_a_list_half_read_before_the_upgrade_is_finished_after_it_in_chunks(tmp_path, chunk_points):
    """An archive left by the version before m013_chunked_writes, in the middle of an API
    listing (3 pages of 1,000 staged, with the cursor): after the upgrade the next run
    goes on from that cursor, applies the list in chunks, and the snapshot is the list
    an uninterrupted run stores."""
    import sqlite3

    from archiver.records import now_utc

    from sqlite_utils import Database

    from archiver.archive.schema import migrations

    folder = tmp_path / "archive"
    folder.mkdir()
    old = Database(folder / "archive.db")
    migrations.apply(old, stop_before="m013_chunked_writes")
    with old.conn:
        old.execute("INSERT INTO staged_lists (account_id, kind, taken_at, source, cursor, pages, members, "
                    "started_at, updated_at) VALUES ('mastodon:main', 'followers', ?, 'api', '3000', 3, 3000, ?, ?)",
                    [TAKEN, now_utc(), now_utc()])
        old.conn.executemany(
            "INSERT INTO staged_members (account_id, kind, taken_at, person_id, handle) VALUES (?,?,?,?,?)",
            [("mastodon:main", "followers", TAKEN, handle(i), handle(i)) for i in range(3_000)])
    old.close()

    archive = Archive(folder)   # applies m013 (and whatever comes after it)
    boundaries: list[int] = []
    chunk_points.append(boundaries.append)
    asked: list = []
    people = list(range(5_000))

    def fetch(cursor):
        asked.append(cursor)
        start = cursor or 0
        return list(members(people[start:start + 1_000])), (start + 1_000 if start + 1_000 < len(people) else None)

    result = ListsOnly(tmp_path).run(archive, lambda ctx: lists.list_pages(ctx, "followers", fetch, stream="followers"),
                                     source="api", chunk=1_000)
    assert result["status"] == "ok", result
    assert asked == [3_000, 4_000]   # went on from the staged cursor
    assert len(boundaries) >= 5 + 5   # applied and cleared 1,000 people a transaction
    assert archive.db.execute("SELECT taken_at, member_count, complete FROM snapshots").fetchall() == [
        (TAKEN, 5_000, 1)]
    assert archive.db.execute("SELECT count(*) FROM follows WHERE ended_at IS NULL").fetchone()[0] == 5_000
    assert audience(archive)["staged"] == 0
    assert sqlite3.connect(folder / "archive.db").execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_stop_while_the_staged_people_are_sorted_interrupts_the_sort_and_keeps_the_list(tmp_path, monkeypatch):
    """Sorting a staged list is one statement (no chunk boundary inside): a stop asked
    during it interrupts it through SQLite's progress handler instead of waiting for a
    sort of millions. Nothing durable is lost; the next call applies the list."""
    from archiver.archive.writer import ArchiveWriter
    from archiver.net.client import Cancelled

    archive = Archive(tmp_path / "archive")
    writer = ArchiveWriter(archive.db, platform="mastodon", account_id="mastodon:main", source="export:big")
    snapshot = Snapshot("followers", TAKEN, members(range(5_000)))
    assert lists.stage_snapshot(archive, writer, snapshot, cancel=lambda: False, chunk=1_000) is True
    with archive.writing():
        writer.finish_staging("followers", TAKEN, True)
    stop = {"asked": False}
    original = crashpoints.reached

    def reached(point, cut=None, stopped=None):
        planned = archive.db.execute("SELECT plan FROM staged_lists").fetchone()
        if point == "commit" and planned and planned[0]:
            stop["asked"] = True   # the plan is committed: the sort is next
        return original(point, cut) if stopped is None else original(point, cut, stopped)

    monkeypatch.setattr(crashpoints, "reached", reached)
    with pytest.raises(Cancelled, match="sorted"):
        lists.apply_staged(archive, writer, "followers", cancel=lambda: stop["asked"], chunk=1_000)
    assert archive.db.execute("SELECT members, applied_to FROM staged_lists").fetchall() == [(5_000, None)]
    assert archive.db.execute("SELECT count(*) FROM temp.sqlite_master WHERE name='snapshot_all'").fetchone() == (0,)

    lists.apply_staged(archive, writer, "followers", cancel=lambda: False, chunk=1_000)
    assert archive.db.execute("SELECT member_count, complete FROM snapshots").fetchall() == [(5_000, 1)]
    assert audience(archive)["staged"] == 0
