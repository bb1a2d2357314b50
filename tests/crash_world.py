"""Running `archiver` in a subprocess and SIGKILLing it at a chosen moment, for the crash
tests of every platform (tests/test_e2e_crash.py, tests/test_platforms_e2e.py): what a
kill hit (inside a run? how many posts were committed? files stored for a page that never
committed?) and what an archive holds on disk."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from cli_world import archiver_command, query


def media_files(archive_dir: Path) -> dict[str, str]:
    """Stored media files (paths relative to media/) -> sha256 of their bytes, leaving out
    the download scratch folder."""
    root = archive_dir / "media"
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file() and ".tmp" not in p.relative_to(root).parts}


def part_files(archive_dir: Path) -> list[str]:
    return sorted(str(p) for p in (archive_dir / "media").rglob("*.part"))


def newest_run(archive_dir: Path) -> tuple | None:
    """(run_id, status) of the newest run record; None while there is none (or no schema yet)."""
    if not (archive_dir / "archive.db").exists():
        return None
    try:
        found = query(archive_dir, "SELECT run_id, status FROM runs ORDER BY run_id DESC LIMIT 1")
    except sqlite3.OperationalError:  # the first run is still creating the schema
        return None
    return found[0] if found else None


def count(archive_dir: Path, sql: str) -> int:
    return query(archive_dir, sql)[0][0] if newest_run(archive_dir) else 0


# --------------------------------------------------------------------------- killing runs


def write_marks(archive_dir: Path) -> tuple:
    """(mtime, size) of archive.db and its WAL: they change when a transaction commits."""
    marks = []
    for name in ("archive.db", "archive.db-wal"):
        try:
            info = os.stat(archive_dir / name)
            marks.append((info.st_mtime_ns, info.st_size))
        except FileNotFoundError:
            marks.append(None)
    return tuple(marks)


def run_and_maybe_kill(args: list[str], env: dict, archive_dir: Path, log_dir: Path,
                       kill_after: float | None) -> dict:
    """Start `archiver ARGS`; once it has committed its first write (its record in `runs`:
    before that the process only imports modules), SIGKILL it ``kill_after`` seconds later
    (None: let it finish). Returns what happened."""
    before = newest_run(archive_dir)
    marks_before = write_marks(archive_dir)
    log_dir.mkdir(exist_ok=True)
    out_path = log_dir / f"run-{time.monotonic_ns()}.out"
    with open(out_path, "wb") as out:
        process = subprocess.Popen([*archiver_command(), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    started = time.monotonic()
    # Watch the files rather than query the database: a reader must not disturb the run.
    while process.poll() is None and time.monotonic() - started < 20:
        if write_marks(archive_dir) != marks_before:
            break
        time.sleep(0.005)
    run_began = time.monotonic()
    killed = False
    try:
        process.wait(timeout=kill_after if kill_after is not None else 120)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()  # reaped: its pid is really gone when the next run looks for dead runs
        killed = True
    record = newest_run(archive_dir)
    record = record if record is not None and (before is None or record[0] > before[0]) else None
    outcome = {
        "mode": "full" if "--full" in args else args[0] if args[0] == "import" else "incremental",
        "kill_after": None if kill_after is None else round(kill_after, 3),
        "killed": killed,
        "returncode": process.returncode,
        "in_run_s": time.monotonic() - run_began,
        "run_id": record[0] if record else None,
        # Still 'running' in its record: the kill landed inside the run.
        "inside_run": killed and record is not None and record[1] == "running",
        "output": out_path,
    }
    if outcome["inside_run"]:
        outcome["posts"] = count(archive_dir, "SELECT count(*) FROM posts")
        recorded = {row[0] for row in query(archive_dir, "SELECT path FROM media")}
        # Files already moved into media/ for a page whose transaction never committed.
        outcome["uncommitted_media"] = len(set(media_files(archive_dir)) - recorded)
    return outcome


def finish(args: list[str], env: dict, archive_dir: Path, log_dir: Path) -> dict:
    outcome = run_and_maybe_kill(args, env, archive_dir, log_dir, kill_after=None)
    assert outcome["returncode"] == 0, (args, outcome["output"].read_text())
    return outcome


def summary(outcomes: list[dict]) -> str:
    return "\n".join(f"{o['mode']} kill_after={o['kill_after']} killed={o['killed']} inside={o['inside_run']} "
                     f"posts={o.get('posts')} uncommitted_media={o.get('uncommitted_media')}" for o in outcomes)


# --------------------------------------------------------------------------- deterministic crash points


def archive_contents(archive_dir: Path) -> dict[str, list]:
    """Every row that describes the account, without the columns that say *when* we
    looked (first/last seen, observed_at, run ids; of deleted_at only whether it is set):
    those differ between two archives built at different moments even when their
    content is the same."""

    def rows(sql: str) -> list[tuple]:
        return sorted(query(archive_dir, sql), key=repr)  # repr: rows may hold None

    return {
        "accounts": rows("SELECT account_id, platform, name, native_id, username, display_name, bio, url, "
                         "avatar_sha256, followers, following, likes, posts, sources FROM accounts"),
        "account_metrics": rows("SELECT account_id, followers, following, likes, posts FROM account_metrics"),
        "profile_versions": rows("SELECT account_id, username, display_name, bio, url, avatar_sha256 "
                                 "FROM profile_versions"),
        "posts": rows("SELECT platform, post_id, account_id, kind, created_at, title, text, url, duration, "
                      "width, height, visibility, like_count, comment_count, share_count, view_count, "
                      "deleted_at IS NOT NULL, sources FROM posts"),
        "post_versions": rows("SELECT post_id, title, text, visibility FROM post_versions"),
        "post_metrics": rows("SELECT post_id, like_count, comment_count, share_count, view_count "
                             "FROM post_metrics"),
        "post_media": rows("SELECT post_id, role, position, sha256, status, source_url, description "
                           "FROM post_media"),
        "media": rows("SELECT sha256, path, mime, size FROM media"),
        "people": rows("SELECT platform, person_id, handle, display_name, url, avatar_sha256 FROM people"),
        "follows": rows("SELECT account_id, kind, person_id, ended_at FROM follows"),
        "audience_events": rows("SELECT account_id, kind, person_id, event FROM audience_events"),
        "comments": rows("SELECT comment_id, account_id, post_id, parent_id, author_id, by_owner, text, created_at, "
                         "url, deleted_at IS NOT NULL FROM comments"),
        # Each run that reads a whole list records a snapshot of it (an observation, like a
        # run record): a killed run and its resumption may record two where one run
        # recorded one. What they must agree on is the newest list, and the events above.
        "newest_snapshots": rows("SELECT account_id, kind, source, member_count, complete FROM snapshots s "
                                 "WHERE taken_at = (SELECT max(taken_at) FROM snapshots n WHERE "
                                 "n.account_id = s.account_id AND n.kind = s.kind AND n.source = s.source)"),
        "interactions": rows("SELECT account_id, platform, kind, target, target_url, native_id, created_at, "
                             "deleted_at IS NOT NULL FROM interactions"),
        "imports": rows("SELECT sha256, account_id, file_name FROM imports"),
    }


def crash_points_passed(args: list[str], env: dict, archive_dir: Path, log_dir: Path) -> dict[str, int]:
    """Run `archiver ARGS` to its end with ARCHIVER_CRASH_COUNTS set: how many times it
    passed each crash point (src/archiver/crashpoints.py)."""
    counts = log_dir / f"points-{time.monotonic_ns()}.json"
    finish(args, {**env, "ARCHIVER_CRASH_COUNTS": str(counts)}, archive_dir, log_dir)
    return json.loads(counts.read_text()) if counts.exists() else {}


def every_crash_point(passed: dict[str, int]) -> list[str]:
    """"commit:1", "commit:2", … for every time a run passed every point."""
    from archiver.crashpoints import POINTS

    return [f"{point}:{n}" for point in POINTS for n in range(1, passed.get(point, 0) + 1)]


def crash_at(point: str, args: list[str], env: dict, archive_dir: Path, log_dir: Path) -> None:
    """Run `archiver ARGS` with ARCHIVER_CRASH_AT=POINT: it must die right there."""
    from archiver.crashpoints import CRASH_EXIT_CODE

    log_dir.mkdir(exist_ok=True)
    out_path = log_dir / f"crash-{point.replace(':', '-')}-{time.monotonic_ns()}.out"
    with open(out_path, "wb") as out:
        done = subprocess.run([*archiver_command(), *args], env={**env, "ARCHIVER_CRASH_AT": point},
                              stdout=out, stderr=subprocess.STDOUT, timeout=120)
    assert done.returncode == CRASH_EXIT_CODE, (
        f"`archiver {' '.join(args)}` with ARCHIVER_CRASH_AT={point} exited {done.returncode} instead of "
        f"crashing there:\n{out_path.read_text()}")
