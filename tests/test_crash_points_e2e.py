"""A run killed at EVERY crash point converges: for each platform, one representative run
(the first `archiver export` of a small account, as the daemon runs it; for TikTok also
the import of its official export) is killed at each point it passes, one point at a
time, and each time the next run (the same command: it resumes from the checkpoints the
killed one left) must build exactly the archive an uninterrupted run builds (same rows,
same files).

The kills are deterministic (src/archiver/crashpoints.py): the uninterrupted run, with
ARCHIVER_CRASH_COUNTS set, says how many times it passed each point — just before and
just after every commit of the archive, mid-download (half a .part left behind), just
before and just after a stored file's rename — and the walk sets ARCHIVER_CRASH_AT to
each of them in turn. Nothing is aimed by timing, so a busy machine only makes it slower.

Everything is real: the `archiver` console script in subprocesses, `archiver simulate
PLATFORM` in another process over loopback HTTP, `archiver auth` with the test playing
the browser, SQLite files on disk. Helpers: cli_world.py, crash_world.py. The random
SIGKILLs of test_e2e_crash.py / test_platforms_e2e.py are an opt-in soak on top.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_world import authorize, cli_env, query, run_cli, start_simulator, write_account_config
from crash_world import (archive_contents, crash_at, crash_points_passed, every_crash_point, finish,
                         media_files)

# Small worlds: every point of a run is walked, and each costs two runs of `archiver`
# (about 170 points in all). Still every kind of point: pages, downloads, renames.
POSTS = 2
FOLLOWERS = 1
# No timing is aimed at, so a busy machine only makes the walk slower: this is a guard
# against a hang, far above the minute or two a walk takes.
WALK_TIMEOUT_S = 1200
SIMULATOR_EXTRA = {"tiktok": [], "instagram": ["--rate-limit", "1000000"],
                   "youtube": ["--daily-quota", "1000000", "--comment-threads", "1"],
                   "bluesky": ["--rate-limit", "1000000"],
                   "mastodon": ["--rate-limit", "1000000", "--paged-limit", "1000000"]}


def assert_converged(folder: Path, expected: dict, expected_files: dict, point: str) -> None:
    got = archive_contents(folder)
    for table in expected:
        assert got[table] == expected[table], f"{table} differs after a crash at {point}"
    assert media_files(folder) == expected_files, f"media files differ after a crash at {point}"
    # The killed run is recorded as interrupted (or ok, when it died after its last
    # commit); none is left 'running', and the run that resumed ended well.
    statuses = [status for (status,) in query(folder, "SELECT status FROM runs ORDER BY run_id")]
    assert statuses[-1] == "ok" and set(statuses[:-1]) <= {"interrupted", "ok"}, (point, statuses)


def walk_every_crash_point(args_for, env: dict, reference: Path, scratch: Path, logs: Path,
                           prepare=lambda folder: None) -> list[str]:
    """Build ``reference`` with one uninterrupted run of ``args_for(reference)``, counting
    the crash points it passes; then, for every one of them, run the same in a fresh
    ``scratch`` archive (``prepare``d as the reference was), killed at that point, run it
    again to the end, and check it converged. Returns the points walked."""
    prepare(reference)
    passed = crash_points_passed(args_for(reference), env, reference, logs)
    points = every_crash_point(passed)
    expected, expected_files = archive_contents(reference), media_files(reference)
    # A walk that never met a download or a rename would prove little.
    assert {point.split(":")[0] for point in points} >= {"before-commit", "commit", "download", "before-rename",
                                                          "rename"}, passed
    for point in points:
        if scratch.exists():
            shutil.rmtree(scratch)
        prepare(scratch)
        crash_at(point, args_for(scratch), env, scratch, logs)
        finish(args_for(scratch), env, scratch, logs)
        assert_converged(scratch, expected, expected_files, point)
    return points


@pytest.mark.timeout(WALK_TIMEOUT_S)
@pytest.mark.parametrize("platform", ["tiktok", "instagram", "youtube", "bluesky", "mastodon"])
def test_a_first_export_killed_at_every_crash_point_converges(tmp_path, platform):
    world = start_simulator(tmp_path / "sim", videos=POSTS, followers=FOLLOWERS, platform=platform,
                            extra=SIMULATOR_EXTRA[platform])
    try:
        env = cli_env(tmp_path / "state", platform=platform)
        reference, scratch, logs = tmp_path / "reference", tmp_path / "crashed", tmp_path / "logs"
        write_account_config(reference, world.base_url, platform=platform)
        authorize(reference, env, platform=platform)  # both archives' account is "main": one grant serves both

        def export(folder: Path) -> list[str]:
            return ["export", "--platform", platform, "--archive", str(folder)]

        points = walk_every_crash_point(
            export, env, reference, scratch, logs,
            prepare=lambda folder: write_account_config(folder, world.base_url, platform=platform))
    finally:
        world.stop()
    print(f"{platform}: walked {len(points)} crash points")
    # Not trivially equal: the small world is all there.
    assert query(reference, "SELECT count(*) FROM posts WHERE deleted_at IS NULL")[0][0] >= POSTS
    assert query(scratch, "SELECT count(*) FROM post_media WHERE status != 'ok' OR sha256 IS NULL") == [(0,)]
    assert query(scratch, "PRAGMA integrity_check") == [("ok",)]
    verify = run_cli(["verify", "--archive", str(scratch)], env)
    assert verify.returncode == 0, verify.describe()


@pytest.mark.timeout(WALK_TIMEOUT_S)
def test_a_tiktok_export_file_import_killed_at_every_crash_point_converges(tmp_path):
    """The official "Download your data" zip, imported over an archive the API filled:
    the export's own files are copied in (renames), its posts matched to the API's."""
    from archiver_connectors.tiktok.fake import FakeTikTok, FakeTikTokConfig

    world = start_simulator(tmp_path / "sim", videos=POSTS, followers=FOLLOWERS)
    try:
        env = cli_env(tmp_path / "state")
        filled, reference, scratch, logs = (tmp_path / name for name in ("filled", "reference", "crashed", "logs"))
        write_account_config(filled, world.base_url)
        authorize(filled, env)
        finish(["export", "--platform", "tiktok", "--full", "--archive", str(filled)], env, filled, logs)
        # The same seed builds the same world; its CDN links are valid on the simulator.
        twin = FakeTikTok(FakeTikTokConfig(videos=POSTS, followers=FOLLOWERS, seed=1), base_url=world.base_url)
        export_file = tmp_path / "TikTok_Data_1.zip"
        export_file.write_bytes(twin.export_zip(layout="new"))

        points = walk_every_crash_point(
            lambda folder: ["import", str(export_file), "--archive", str(folder)], env, reference, scratch, logs,
            prepare=lambda folder: shutil.copytree(filled, folder))
    finally:
        world.stop()
    print(f"tiktok import: walked {len(points)} crash points")
    assert query(scratch, "SELECT count(*) FROM imports") == [(1,)]
