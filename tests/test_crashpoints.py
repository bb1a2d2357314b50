"""The crash-point switch itself (src/archiver/crashpoints.py), in child processes: it is
read once at import, and a crash is os._exit, which would end the test process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from archiver.crashpoints import CRASH_EXIT_CODE


def run_child(code: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**clean, **env},
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


PASS_POINTS = """
    from archiver import crashpoints
    for n in range(1, 4):
        crashpoints.reached("commit")
        print("passed commit", n, flush=True)
        crashpoints.reached("rename")
        print("passed rename", n, flush=True)
"""


def test_the_process_exits_hard_at_the_nth_pass_of_the_point_asked_for(tmp_path):
    done = run_child(PASS_POINTS, tmp_path, ARCHIVER_CRASH_AT="rename:2",
                     ARCHIVER_CRASH_COUNTS=str(tmp_path / "counts.json"))
    assert done.returncode == CRASH_EXIT_CODE, done.stderr
    assert done.stdout.splitlines() == ["passed commit 1", "passed rename 1", "passed commit 2"]
    # The counts are written at every point: a crashed process says how far it came.
    assert json.loads((tmp_path / "counts.json").read_text()) == {"commit": 2, "rename": 2}


def test_without_the_switch_nothing_happens_and_with_counts_only_they_are_written(tmp_path):
    done = run_child(PASS_POINTS, tmp_path)
    assert done.returncode == 0 and done.stdout.count("passed") == 6, done.stderr
    assert list(tmp_path.iterdir()) == []

    counted = run_child(PASS_POINTS, tmp_path, ARCHIVER_CRASH_COUNTS=str(tmp_path / "counts.json"))
    assert counted.returncode == 0, counted.stderr
    assert json.loads((tmp_path / "counts.json").read_text()) == {"commit": 3, "rename": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.json"]   # no temporary left


def test_a_download_crash_leaves_half_of_the_bytes_written_in_the_part_file(tmp_path):
    code = """
        from archiver import crashpoints
        with open("x.part", "wb") as out:
            out.write(b"0123456789" * 10)      # buffered: only the crash point flushes it
            crashpoints.reached("download", cut=out)
    """
    done = run_child(code, tmp_path, ARCHIVER_CRASH_AT="download:1")
    assert done.returncode == CRASH_EXIT_CODE, done.stderr
    assert (tmp_path / "x.part").read_bytes() == b"0123456789" * 5


def test_a_switch_that_names_no_point_is_a_clear_error(tmp_path):
    for value in ("comit:1", "commit", "commit:0", "commit:x"):
        done = run_child("import archiver.crashpoints", tmp_path, ARCHIVER_CRASH_AT=value)
        assert done.returncode == 1
        assert f"ARCHIVER_CRASH_AT={value!r} is not a crash point" in done.stderr
        assert "before-commit, commit, download, before-rename, rename" in done.stderr


def test_a_signal_switch_that_names_no_point_is_a_clear_error(tmp_path):
    for value in (":TERM", "commit:1:KILL"):
        done = run_child("import archiver.crashpoints", tmp_path, ARCHIVER_SIGNAL_AT=value)
        assert done.returncode == 1
        assert f"ARCHIVER_SIGNAL_AT={value!r}: write POINT:N:INT or POINT:N:TERM" in done.stderr


WRITE_THREE_TRANSACTIONS = """
    from archiver.archive import Archive
    archive = Archive("archive")
    for n in range(3):
        with archive.writing() as db:
            db.execute("INSERT INTO sync_state (account_id, stream, state, updated_at) VALUES (?,?,?,?)",
                       ["main", f"stream{n}", "{}", "now"])
"""


def test_the_points_sit_around_every_commit_of_the_archive(tmp_path):
    import sqlite3

    def streams_after(point: str) -> int:
        for leftover in tmp_path.glob("archive/archive.db*"):
            leftover.unlink()
        done = run_child(WRITE_THREE_TRANSACTIONS, tmp_path, ARCHIVER_CRASH_AT=point)
        assert done.returncode == CRASH_EXIT_CODE, done.stderr
        db = sqlite3.connect(tmp_path / "archive" / "archive.db")
        try:
            return db.execute("SELECT count(*) FROM sync_state").fetchone()[0]
        finally:
            db.close()

    # Creating the schema commits first (its migrations are not transactions of writing()).
    assert streams_after("before-commit:2") == 1   # the second insert never committed
    assert streams_after("commit:2") == 2          # it did, and nothing after it


def test_the_points_sit_before_and_after_a_finished_file_is_renamed_into_place(tmp_path):
    code = """
        import io
        from pathlib import Path
        from archiver.archive.media import MediaStore
        MediaStore(Path("media")).add_file(io.BytesIO(b"\\xff\\xd8\\xff" + b"x" * 100))
    """
    def files_left_by_a_crash_at(point: str, folder) -> list[str]:
        folder.mkdir()
        done = run_child(code, folder, ARCHIVER_CRASH_AT=point)
        assert done.returncode == CRASH_EXIT_CODE, done.stderr
        return [p.suffix for p in (folder / "media").rglob("*") if p.is_file()]

    assert files_left_by_a_crash_at("before-rename:1", tmp_path / "before") == [".part"]
    assert files_left_by_a_crash_at("rename:1", tmp_path / "after") == [".jpg"]
