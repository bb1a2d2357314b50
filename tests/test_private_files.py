"""Files archiver writes for the person are private to them (issue 11.7): `audience export
--out`, `report`, the daemon's log (and every file its rotation starts), launchd's log, the
fake servers' request logs — 0600 from their creation, checked with os.stat.

"From their creation" is what the tests prove: they run with umask 0 (a plain ``open``
would then create 0666) and with ``os.chmod`` / ``os.fchmod`` made to do nothing for the
new file, so only a file *created* 0600 passes — a chmod after the fact would leave a
moment when another user can open it, and would not help here. An archive folder that is
open to others gets a warning in `archiver status` that names the chmod which fixes it.
"""

from __future__ import annotations

import io
import logging
import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.private_files import open_private


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def wide_umask(monkeypatch):
    """umask 0, and chmod / fchmod that change nothing: only the mode given when a file
    is created counts."""
    monkeypatch.setattr(os, "chmod", lambda path, mode, **kw: None)
    monkeypatch.setattr(os, "fchmod", lambda fd, mode: None)
    old = os.umask(0)
    yield
    os.umask(old)


def _cli(*args):
    from archiver.cli.main import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def small_archive(archive):
    from archiver.archive.writer import ArchiveWriter
    from archiver.records import Membership, Person, Snapshot

    with archive.writing():
        ArchiveWriter(archive.db, platform="tiktok", account_id="tiktok:main", source="api").write_snapshot(
            Snapshot("followers", "2024-05-01T00:00:00Z", [Membership(Person("1", handle="ann"))]))
    archive.close()
    return archive


@pytest.mark.parametrize("fmt", ["csv", "vcf", "json"])
def test_audience_export_out_is_private_from_its_creation(small_archive, tmp_path, wide_umask, fmt):
    target = tmp_path / f"audience.{fmt}"
    result = _cli("audience", "export", "--archive", str(small_archive.folder), "--format", fmt, "--out", str(target))
    assert result.exit_code == 0, result.output
    assert mode_of(target) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_audience_export_never_writes_through_a_planted_link(small_archive, tmp_path):
    """In a shared folder another user may plant FILE.part -> a file of yours: the export
    must not follow it (today it truncated and overwrote the link's target)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "audience.csv"
    Path(str(target) + ".part").symlink_to(victim)
    assert _cli("audience", "export", "--archive", str(small_archive.folder), "--out", str(target)).exit_code == 0
    assert victim.read_text() == "keep me"
    assert "ann" in target.read_text() and not target.is_symlink()


def test_audience_export_over_a_readable_file_leaves_a_private_one(small_archive, tmp_path):
    target = tmp_path / "audience.csv"
    target.write_text("old")
    os.chmod(target, 0o644)
    assert _cli("audience", "export", "--archive", str(small_archive.folder), "--out", str(target)).exit_code == 0
    assert mode_of(target) == 0o600 and "ann" in target.read_text()


def test_report_is_private_from_its_creation(small_archive, tmp_path, wide_umask):
    for out in (tmp_path / "report.html", None):
        args = ["report", "--archive", str(small_archive.folder)] + (["--out", str(out)] if out else [])
        result = _cli(*args)
        assert result.exit_code == 0, result.output
        assert mode_of(out or small_archive.folder / "report.html") == 0o600


@contextmanager
def daemon_logging(folder: Path):
    from archiver.ops.daemon import setup_daemon_logging

    setup_daemon_logging(folder, "daemon.log", stream=io.StringIO())
    root = logging.getLogger("archiver")
    try:
        yield root
    finally:
        for logger in (root, logging.getLogger("apscheduler")):
            for handler in list(logger.handlers):
                if getattr(handler, "_archiver_daemon", False):
                    logger.removeHandler(handler)
                    handler.close()
        root.propagate = True


def test_daemon_log_and_every_rotated_file_are_private(tmp_path, wide_umask):
    folder = tmp_path / "archive"
    folder.mkdir()
    with daemon_logging(folder) as log:
        log.warning("a run ended")
        handler = next(h for h in log.handlers if isinstance(h, logging.handlers.RotatingFileHandler))
        handler.doRollover()
        log.warning("after the rotation")
    assert mode_of(folder / "daemon.log") == 0o600
    assert mode_of(folder / "daemon.log.1") == 0o600
    assert "after the rotation" in (folder / "daemon.log").read_text()


def test_an_old_readable_daemon_log_becomes_private(tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    for name in ("daemon.log", "daemon.log.1"):
        (folder / name).write_text("old lines\n")
        os.chmod(folder / name, 0o644)
    with daemon_logging(folder) as log:
        log.warning("new line")
    assert mode_of(folder / "daemon.log") == mode_of(folder / "daemon.log.1") == 0o600


def test_launchd_log_is_created_private_before_launchd_opens_it(tmp_path, wide_umask):
    from test_service import TWO_ACCOUNTS_AND_EMAIL, make_workspace

    from archiver.ops import service

    archive = tmp_path / "archive"
    ws = make_workspace(archive, TWO_ACCOUNTS_AND_EMAIL.format(backend="keyring"))
    service.install_launchd(ws, lambda line: None, agent_dir=tmp_path / "LaunchAgents")
    assert mode_of(archive / service.LAUNCHD_LOG_NAME) == 0o600


def test_fake_server_request_log_is_private(tmp_path, wide_umask):
    from archiver.sim.server import log_requests

    class Fake:
        def handle(self, request):
            return None

    log_requests(Fake(), str(tmp_path / "requests.log"))
    assert mode_of(tmp_path / "requests.log") == 0o600


def test_open_private_narrows_an_existing_file_and_leaves_devices_alone(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("a")
    os.chmod(path, 0o666)
    with open_private(path, "a") as out:
        out.write("b")
    assert mode_of(path) == 0o600 and path.read_text() == "ab"
    with open_private(os.devnull, "w") as out:   # not ours to change
        out.write("x")


# -- the archive folder --------------------------------------------------------------------------


def test_status_warns_about_an_archive_folder_open_to_others(archive):
    folder = archive.folder
    archive.close()
    os.chmod(folder, 0o755)
    result = _cli("status", "--archive", str(folder))
    assert result.exit_code == 0, result.output
    assert f"the archive folder {folder} is open to other users (mode 0755)" in result.stderr
    assert f"chmod 700 {folder}" in result.stderr
    json_result = _cli("status", "--archive", str(folder), "--json")
    assert "chmod 700" in json_result.stderr and "chmod" not in json_result.stdout

    os.chmod(folder, 0o700)
    assert "warning" not in _cli("status", "--archive", str(folder)).stderr


def test_status_names_a_folder_with_spaces_in_a_command_that_works(tmp_path):
    from archiver.archive import Archive

    folder = tmp_path / "my archive"
    folder.mkdir(mode=0o775)
    os.chmod(folder, 0o775)
    store = Archive(folder)
    _ = store.db
    store.close()
    result = _cli("status", "--archive", str(folder))
    assert f"chmod 700 '{folder}'" in result.stderr


def test_a_new_archive_database_and_its_wal_files_are_private_from_their_creation(tmp_path, wide_umask):
    from archiver.archive import Archive

    store = Archive(tmp_path / "archive")
    with store.writing() as db:
        db.execute("INSERT INTO sync_state (account_id, stream, state, updated_at) VALUES ('a', 's', '{}', 'now')")
    files = [store.db_path, Path(f"{store.db_path}-wal"), Path(f"{store.db_path}-shm")]
    assert [mode_of(path) for path in files] == [0o600] * 3
    store.close()


def test_init_writes_a_config_private_from_its_creation(tmp_path, wide_umask):
    folder = tmp_path / "fresh"
    result = _cli("init", "--archive", str(folder))
    assert result.exit_code == 0, result.output
    assert mode_of(folder / "config.toml") == 0o600
    assert mode_of(folder / "archive.db") == 0o600
