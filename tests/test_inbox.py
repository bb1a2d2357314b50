"""The inbox folder for official exports (src/archiver/ops/inbox.py), with real files and real
imports into a real archive.

The exports are written by the fake TikTok (connectors/archiver_connectors/tiktok/sim/fake.py). Their media links
point at the fake's signed /cdn/, so the fake is served over loopback HTTP and the import
really downloads them; the transport lets only 127.0.0.1 through. ``scan_inbox`` takes
``now``, so "a file unchanged for ``settle`` seconds" is tested without sleeping; the
one test of the real `archiver inbox` command waits the real (1 s) settle time.

Importing an export needs no API access: the one account configured names only where
the platform lives, the fake on 127.0.0.1 (links in an export may reach loopback only for
an account whose base URL is there, see src/archiver/net/links.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import sqlite3
import stat
import threading
import zipfile
from pathlib import Path

import pytest
from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve
from cli_world import run_cli

from archiver.archive import Archive
from archiver.config import AccountConfig, Config, ConfigError, InboxConfig
from archiver.ops.inbox import InboxState, move_without_overwrite, scan_inbox
from archiver.sync.jobs import Workspace
from archiver.secrets import open_secret_store

SETTLE = 5
T0 = 1_000_000.0  # the clock handed to scan_inbox; any value works, only differences count


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def fake():
    world = FakeTikTok(FakeTikTokConfig(videos=3, followers=4, following=2, seed=5))
    server, _thread = serve(world)
    yield world
    # shutdown() waits for the serve loop's next poll (up to 0.5 s): not on the test's time.
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()




@pytest.fixture
def ws(tmp_path, fake):
    """An archive with an inbox, and a TikTok account whose platform is the fake."""
    config = Config(path=None, inbox=InboxConfig(tmp_path / "inbox", interval=60, settle=SETTLE),
                    accounts=[AccountConfig(name="main", platform="tiktok", base_url=fake.base_url)])
    workspace = Workspace(Archive(tmp_path / "archive"), config, open_secret_store("memory"))
    yield workspace
    workspace.archive.close()


@pytest.fixture
def inbox(ws) -> Path:
    folder = ws.config.inbox.path
    folder.mkdir(parents=True)
    return folder


# --------------------------------------------------------------------------- helpers


def count(ws, sql: str, *params) -> int:
    return ws.archive.db.execute(sql, params).fetchone()[0]


def export_zip(fake: FakeTikTok, data: dict | None = None) -> bytes:
    if data is None:
        return fake.export_zip(layout="new")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("user_data_tiktok.json", json.dumps(data))
    return buffer.getvalue()


def scan_settled(ws, transport, start: float = T0) -> list[dict]:
    """Two scans ``settle`` seconds apart: the first sees the files, the second imports
    the ones that did not change in between."""
    first = scan_inbox(ws, InboxState(), now=start, transport=transport)
    assert all(outcome["status"] == "waiting" for outcome in first), first
    state = InboxState()
    scan_inbox(ws, state, now=start, transport=transport)
    return scan_inbox(ws, state, now=start + SETTLE, transport=transport)


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- a good export


def test_a_valid_export_is_imported_and_moved_to_done(ws, fake, loopback, caplog):
    caplog.set_level(logging.INFO, logger="archiver.ops.inbox")
    payload = export_zip(fake)
    (ws.config.inbox.path).mkdir(parents=True)
    dropped = ws.config.inbox.path / "TikTok_Data_1700000000.zip"
    dropped.write_bytes(payload)
    state = InboxState()

    first = scan_inbox(ws, state, now=T0, transport=loopback)
    assert [o["status"] for o in first] == ["waiting"]
    assert dropped.exists() and count(ws, "SELECT count(*) FROM runs") == 0
    too_early = scan_inbox(ws, state, now=T0 + SETTLE - 1, transport=loopback)
    assert [o["status"] for o in too_early] == ["waiting"] and dropped.exists()

    [outcome] = scan_inbox(ws, state, now=T0 + SETTLE, transport=loopback)

    done = ws.config.inbox.path / "done" / dropped.name
    assert outcome["file"] == dropped.name
    assert outcome["status"] == "imported", outcome
    assert outcome["moved_to"] == str(done)
    assert not dropped.exists() and done.read_bytes() == payload
    # The archive holds the export, for the account run_import made up ("main").
    assert count(ws, "SELECT count(*) FROM posts") == len(fake.videos)
    assert count(ws, "SELECT count(*) FROM follows WHERE kind='followers' AND account_id='tiktok:main'") \
        == len(fake.followers)
    assert count(ws, "SELECT count(*) FROM follows WHERE kind='following'") == len(fake.following)
    assert count(ws, "SELECT count(*) FROM runs WHERE kind='import' AND status='ok' AND mode=?", dropped.name) == 1
    assert any(path.startswith("/cdn/") for path in loopback.fetched), loopback.fetched  # media really fetched
    assert str(len(fake.videos)) in outcome["message"]
    # The folders were made private on the first scan; one log line said what happened.
    for folder in (ws.config.inbox.path / "done", ws.config.inbox.path / "failed"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    lines = [r.getMessage() for r in caplog.records if r.name == "archiver.ops.inbox" and dropped.name in r.getMessage()]
    assert any("moved to" in line and str(done) in line for line in lines), lines


def test_the_inbox_and_its_folders_are_created_private_on_the_first_scan(ws):
    folder = ws.config.inbox.path
    assert not folder.exists()

    assert scan_inbox(ws, InboxState(), now=T0) == []

    for path in (folder, folder / "done", folder / "failed"):
        assert path.is_dir() and stat.S_IMODE(path.stat().st_mode) == 0o700


def test_the_same_export_dropped_again_goes_to_done_as_skipped_under_a_new_name(ws, inbox, fake, loopback):
    payload = export_zip(fake)
    (inbox / "export.zip").write_bytes(payload)
    assert [o["status"] for o in scan_settled(ws, loopback)] == ["imported"]
    posts, runs = count(ws, "SELECT count(*) FROM posts"), count(ws, "SELECT count(*) FROM runs")

    (inbox / "export.zip").write_bytes(payload)
    [again] = scan_settled(ws, loopback, start=T0 + 100)

    assert again["status"] == "skipped", again
    assert "already imported" in again["message"]
    assert again["moved_to"] == str(inbox / "done" / "export-2.zip")
    assert names(inbox / "done") == {"export.zip", "export-2.zip"}
    assert (inbox / "done" / "export.zip").read_bytes() == payload  # the first one is untouched
    assert names(inbox) == {"done", "failed", ".archiver-inbox.lock"}
    assert count(ws, "SELECT count(*) FROM posts") == posts
    assert count(ws, "SELECT count(*) FROM runs") == runs  # nothing re-imported


def test_an_export_with_a_bad_item_is_imported_and_the_item_recorded(ws, inbox, fake, loopback):
    data = fake.export_json("new")
    followers = data["Your Activity"]["Follower"]["FansList"]
    nameless = followers[0].pop("UserName")
    (inbox / "export.zip").write_bytes(export_zip(fake, data))

    [outcome] = scan_settled(ws, loopback)

    assert outcome["status"] == "imported", outcome
    assert (inbox / "done" / "export.zip").exists()
    assert "1 item(s) skipped" in outcome["message"]
    errors = json.loads(ws.archive.db.execute("SELECT errors FROM runs WHERE kind='import'").fetchone()[0])
    assert len(errors) == 1 and "no UserName" in errors[0]["error"], errors
    assert count(ws, "SELECT count(*) FROM follows WHERE kind='followers'") == len(followers) - 1
    assert count(ws, "SELECT count(*) FROM follows WHERE person_id=?", nameless) == 0


# --------------------------------------------------------------------------- files that cannot be imported


def _hostile_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../user_data_tiktok.json", "{}")
    return buffer.getvalue()


def _truncated_export_zip(fake: FakeTikTok) -> bytes:
    text = json.dumps(fake.export_json("new"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("user_data_tiktok.json", text[: len(text) // 2])
    return buffer.getvalue()


BROKEN = {
    # name: (what is dropped, words the reason must contain)
    "hostile.zip": (lambda fake: _hostile_zip(), ["'..'", "refused for safety"]),
    "truncated.zip": (_truncated_export_zip, ["malformed JSON", "download the export again"]),
    "broken.json": (lambda fake: b'{"Post": {"Posts": {"VideoList": [{"Date": ', ["malformed JSON",
                                                                              "could not tell which platform"]),
    "empty.zip": (lambda fake: b"", ["empty (0 bytes)"]),
    "random.bin": (lambda fake: random.Random(7).randbytes(4096), ["unknown file type"]),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_file_that_cannot_be_imported_goes_to_failed_with_its_reason(ws, inbox, fake, loopback, name):
    make, reasons = BROKEN[name]
    payload = make(fake)
    (inbox / name).write_bytes(payload)

    [outcome] = scan_settled(ws, loopback)

    failed = inbox / "failed" / name
    assert outcome["status"] == "failed", outcome
    assert outcome["moved_to"] == str(failed)
    assert not (inbox / name).exists() and failed.read_bytes() == payload
    note = (inbox / "failed" / f"{name}.error.txt").read_text(encoding="utf-8")
    for reason in reasons:
        assert reason in outcome["message"] and reason in note, note
    assert f"could not import {name}" in note and "What to do:" in note
    assert names(inbox / "done") == set()
    assert count(ws, "SELECT count(*) FROM posts") == 0
    assert count(ws, "SELECT count(*) FROM imports") == 0


def test_a_failed_run_is_named_in_the_note(ws, inbox, fake, loopback):
    (inbox / "truncated.zip").write_bytes(_truncated_export_zip(fake))

    scan_settled(ws, loopback)

    run_id, status = ws.archive.db.execute("SELECT run_id, status FROM runs").fetchone()
    assert status == "failed"
    assert f"run {run_id}" in (inbox / "failed" / "truncated.zip.error.txt").read_text(encoding="utf-8")


def test_a_second_failure_of_the_same_name_keeps_the_first(ws, inbox, loopback):
    (inbox / "junk.zip").write_bytes(b"first junk")
    scan_settled(ws, loopback)
    (inbox / "junk.zip").write_bytes(b"second junk")
    scan_settled(ws, loopback, start=T0 + 100)

    failed = inbox / "failed"
    assert names(failed) == {"junk.zip", "junk.zip.error.txt", "junk-2.zip", "junk-2.zip.error.txt"}
    assert (failed / "junk.zip").read_bytes() == b"first junk"
    assert (failed / "junk-2.zip").read_bytes() == b"second junk"


def test_moving_never_replaces_a_file_and_keeps_double_extensions(tmp_path):
    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    target.mkdir()
    (target / "export.tar.gz").write_bytes(b"old")
    (target / "export-2.tar.gz").write_bytes(b"older")
    (source / "export.tar.gz").write_bytes(b"new")

    moved = move_without_overwrite(source / "export.tar.gz", target)

    assert moved == target / "export-3.tar.gz" and moved.read_bytes() == b"new"
    assert (target / "export.tar.gz").read_bytes() == b"old"
    assert not (source / "export.tar.gz").exists()


# --------------------------------------------------------------------------- files still being written


def test_a_growing_file_is_left_alone_until_it_has_been_stable_for_settle(ws, inbox, fake, loopback):
    payload = export_zip(fake)
    growing = inbox / "TikTok_Data.zip"
    growing.write_bytes(payload[: len(payload) // 2])
    state = InboxState()

    assert [o["status"] for o in scan_inbox(ws, state, now=T0, transport=loopback)] == ["waiting"]
    with growing.open("ab") as file:  # the download goes on
        file.write(payload[len(payload) // 2:])
    # Past `settle` since the first look, but it changed since: still waiting.
    assert [o["status"] for o in scan_inbox(ws, state, now=T0 + SETTLE + 1, transport=loopback)] == ["waiting"]
    assert [o["status"] for o in scan_inbox(ws, state, now=T0 + 2 * SETTLE, transport=loopback)] == ["waiting"]
    # Not touched meanwhile: not imported (not even tried), not moved.
    assert growing.read_bytes() == payload
    assert count(ws, "SELECT count(*) FROM runs") == 0
    assert names(inbox / "done") == names(inbox / "failed") == set()

    [outcome] = scan_inbox(ws, state, now=T0 + 2 * SETTLE + 1, transport=loopback)

    assert outcome["status"] == "imported", outcome
    assert count(ws, "SELECT count(*) FROM posts") == len(fake.videos)


def test_a_file_whose_mtime_changes_at_the_same_size_is_still_waiting(ws, inbox, fake, loopback):
    path = inbox / "export.zip"
    path.write_bytes(export_zip(fake))
    state = InboxState()
    scan_inbox(ws, state, now=T0, transport=loopback)
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))  # rewritten in place

    assert [o["status"] for o in scan_inbox(ws, state, now=T0 + SETTLE, transport=loopback)] == ["waiting"]
    assert path.exists()


def test_partial_downloads_dot_files_and_folders_are_never_touched(ws, inbox, fake, loopback):
    payload = export_zip(fake)
    untouchable = ["TikTok_Data.zip.part", "TikTok_Data.zip.crdownload", "TikTok_Data.zip.download",
                   "TikTok_Data.zip.tmp", ".TikTok_Data.zip"]
    for name in untouchable:
        (inbox / name).write_bytes(payload)
    (inbox / "extracted").mkdir()
    (inbox / "extracted" / "user_data_tiktok.json").write_text(json.dumps(fake.export_json("new")))
    state = InboxState()

    for seconds in (0, SETTLE, 10 * SETTLE, 100 * SETTLE):
        assert scan_inbox(ws, state, now=T0 + seconds, transport=loopback) == []

    assert all((inbox / name).read_bytes() == payload for name in untouchable)
    assert (inbox / "extracted" / "user_data_tiktok.json").exists()
    assert count(ws, "SELECT count(*) FROM runs") == 0
    # The browser finishes: the file gets its real name, and is imported like any other.
    (inbox / "TikTok_Data.zip.part").rename(inbox / "TikTok_Data.zip")
    scan_inbox(ws, state, now=T0 + 1000, transport=loopback)
    [outcome] = scan_inbox(ws, state, now=T0 + 1000 + SETTLE, transport=loopback)
    assert outcome["file"] == "TikTok_Data.zip" and outcome["status"] == "imported"


def test_without_an_inbox_in_the_config_the_scan_says_how_to_add_one(tmp_path):
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    with pytest.raises(ConfigError, match=r"\[inbox\]"):
        scan_inbox(ws, InboxState())


# --------------------------------------------------------------------------- the real command


def test_archiver_inbox_command_imports_and_explains(tmp_path, fake):
    archive_dir, inbox = tmp_path / "archive", tmp_path / "inbox"
    archive_dir.mkdir()
    # No account and no secret backend named: the default (keyring) is unusable in the
    # test (PYTHON_KEYRING_BACKEND=fail), as on a headless server; imports need no secret.
    (archive_dir / "config.toml").write_text(f'[inbox]\npath = "{inbox}"\nsettle = 1\n', encoding="utf-8")
    inbox.mkdir()
    payload = export_zip(fake)
    (inbox / "TikTok_Data.zip").write_bytes(payload)
    (inbox / "notes.txt").write_text("not an export at all")
    (inbox / "TikTok_Data (1).zip.crdownload").write_bytes(payload[:100])

    result = run_cli(["inbox", "--archive", str(archive_dir)], timeout=60)

    assert result.returncode == 1, result.describe()  # one file failed
    assert f"TikTok_Data.zip: imported → {inbox / 'done' / 'TikTok_Data.zip'}" in result.stdout, result.describe()
    assert f"notes.txt: failed → {inbox / 'failed' / 'notes.txt'}" in result.stdout, result.describe()
    assert "Traceback" not in result.output
    assert names(inbox / "done") == {"TikTok_Data.zip"}
    assert names(inbox / "failed") == {"notes.txt", "notes.txt.error.txt"}
    assert "unknown file type" in (inbox / "failed" / "notes.txt.error.txt").read_text()
    assert (inbox / "TikTok_Data (1).zip.crdownload").exists()
    db = sqlite3.connect(archive_dir / "archive.db")
    try:
        assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == len(fake.videos)
        assert db.execute("SELECT count(*) FROM follows WHERE kind='followers'").fetchone()[0] == len(fake.followers)
    finally:
        db.close()

    again = run_cli(["inbox", "--archive", str(archive_dir)], timeout=60)
    assert again.returncode == 0, again.describe()
    assert "nothing to import" in again.stdout


def test_archiver_inbox_command_without_an_inbox_configured(tmp_path):
    result = run_cli(["inbox", "--archive", str(tmp_path / "archive")], timeout=60)

    assert result.returncode == 1, result.describe()
    assert "no inbox folder is configured" in result.stderr and "[inbox]" in result.stderr
    assert "Traceback" not in result.output
