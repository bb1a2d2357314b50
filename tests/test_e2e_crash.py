"""SIGKILL `archiver export` (and `archiver import`) at random moments; the archive must
converge to exactly what an uninterrupted run builds.

Everything is real: the `archiver` console script in subprocesses, `archiver simulate
tiktok` in another process over loopback HTTP, `archiver auth` with the test playing the
browser, SQLite files on disk. One simulator serves both archives, so the world they copy
is the same (the fake's world only changes when a test asks it to).

How the kills are aimed: each run is started, and once it commits its record in `runs`
(the run has begun; before that the process is only importing Python modules) it is
SIGKILLed after a random delay drawn over a share of an uninterrupted run's length,
measured first. --latency-ms makes paging and cover downloads fill that time, so kills
land before the first page, between pages and in the middle of a page's media downloads.
First the first listing is cut until it has filled the archive, then whole runs, full and
incremental, are cut at random. A kill counts when it left its run record 'running'; the
test aims for 20 export runs (3 of them incremental) and 4 import runs killed that way,
within a time budget; where the kills landed is printed, never asserted.

A soak, run on request (ARCHIVER_SOAK=1, `make soak`): timing decides where its kills
land. That a run killed at every point that matters converges is proven, without
timing, by tests/test_crash_points_e2e.py on every test run.
ARCHIVER_TEST_SEED=<n> replays a seed's choices (timing still varies).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from cli_world import authorize, cli_env, query, run_cli, start_simulator, write_account_config
import crash_world
from crash_world import finish, media_files, newest_run, part_files, run_and_maybe_kill, summary

VIDEOS = 60
FOLLOWERS = 200
FOLLOWING = 20          # the fake's default
WORLD_SEED = 1
LATENCY_MS = 5          # per request: an uninterrupted full export then runs about a second
EXPORT_KILLS = 20       # kills that land inside an export run (the issue asks for at least 20)
INCREMENTAL_KILLS = 3   # of which at least this many inside an incremental run
IMPORT_KILLS = 4        # and inside an import run
# Kills are drawn over a share of an uninterrupted run's length. While the first listing
# fills the archive, a short window cuts it many times (so kills land between pages and
# amid a page's cover downloads); afterwards a wider one also reaches the ends of runs.
FIRST_LISTING_WINDOW = 0.25
KILL_WINDOW = 0.6
# Stop aiming for more kills after this long (the kill counts then fail the test).
EXPORT_KILLS_BUDGET_S = 35
IMPORT_KILLS_BUDGET_S = 15


# --------------------------------------------------------------------------- what an archive holds


def archive_contents(archive_dir: Path) -> dict[str, list]:
    """crash_world's comparison, and two things a TikTok run must agree on exactly: when
    each follow started (the export dates them) and every snapshot with its counts."""

    def rows(sql: str) -> list[tuple]:
        return sorted(query(archive_dir, sql), key=repr)  # repr: rows may hold None

    return {
        **crash_world.archive_contents(archive_dir),
        "follows": rows("SELECT account_id, kind, person_id, started_at, ended_at FROM follows"),
        "snapshots": rows("SELECT account_id, kind, source, member_count, new_count, lost_count, complete "
                          "FROM snapshots"),
    }


def kill_until(done, choose, env: dict, archive_dir: Path, log_dir: Path, rng: random.Random,
               deadline: float) -> list[dict]:
    """Kill runs at random moments until ``done(outcomes)``. ``choose(rng)`` gives the
    next command and the window its kill moment is drawn from."""
    outcomes: list[dict] = []
    while not done(outcomes) and time.monotonic() < deadline:
        args, window_s = choose(rng)
        outcomes.append(run_and_maybe_kill(args, env, archive_dir, log_dir, kill_after=rng.uniform(0, window_s)))
    return outcomes


# --------------------------------------------------------------------------- the test


@pytest.fixture
def world(tmp_path):
    simulator = start_simulator(tmp_path / "sim", videos=VIDEOS, followers=FOLLOWERS, seed=WORLD_SEED,
                                latency_ms=LATENCY_MS)
    yield simulator
    simulator.stop()


def export_zip_of_the_same_world(base_url: str) -> bytes:
    """A "Download your data" zip of the simulator's world: a FakeTikTok with the same
    seed builds the same world, and its CDN signatures (keyed by the seed) are valid on
    the simulator, where the zip's video links point."""
    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig

    twin = FakeTikTok(FakeTikTokConfig(videos=VIDEOS, followers=FOLLOWERS, seed=WORLD_SEED), base_url=base_url)
    return twin.export_zip(layout="new")


@pytest.mark.soak
def test_random_sigkills_converge_to_the_archive_of_an_uninterrupted_run(tmp_path, world):
    seed = int(os.environ.get("ARCHIVER_TEST_SEED") or random.randrange(10**6))
    rng = random.Random(seed)
    env = cli_env(tmp_path / "state")
    logs = tmp_path / "logs"
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    for folder in (reference, crashed):
        write_account_config(folder, world.base_url)
    authorize(reference, env)  # both archives' account is "main": one grant in the state folder serves both
    export_file = tmp_path / "TikTok_Data_1.zip"
    export_file.write_bytes(export_zip_of_the_same_world(world.base_url))

    def export(folder: Path, *extra: str) -> list[str]:
        return ["export", "--platform", "tiktok", "--archive", str(folder), *extra]

    def import_(folder: Path) -> list[str]:
        return ["import", str(export_file), "--archive", str(folder)]

    # The uninterrupted archive: full, incremental, then the official export. Their
    # lengths (from the run record to the end) set the window the kills are drawn from.
    t0 = time.monotonic()
    full = finish(export(reference, "--full"), env, reference, logs)
    incremental = finish(export(reference), env, reference, logs)
    imported = finish(import_(reference), env, reference, logs)
    t_reference = time.monotonic()

    # The same, killed again and again on the way: first while the first listing fills
    # the archive, then over whole runs, full and incremental.
    def inside(outcomes: list[dict]) -> int:
        return sum(o["inside_run"] for o in outcomes)

    def first_listing_complete(outcomes: list[dict]) -> bool:
        return newest_run(crashed) is not None and query(crashed, "SELECT count(*) FROM posts") == [(VIDEOS,)]

    def full_or_incremental(r: random.Random):
        if r.random() < 0.8:
            return export(crashed, "--full"), full["in_run_s"] * KILL_WINDOW
        # An incremental run over a filled archive is short: aim within its own length.
        return export(crashed), incremental["in_run_s"]

    # A resumed run re-downloads the covers of the page it was cut in (their signed links
    # change, and only the committed page records them), so a window too short for the
    # biggest page would never let the listing finish: it widens after each kill that
    # added no post (up to KILL_WINDOW, still too short for the whole listing at once),
    # and narrows again once one did.
    first_listing = {"window": FIRST_LISTING_WINDOW, "posts": -1}

    def cut_the_first_listing(r: random.Random):
        posts = query(crashed, "SELECT count(*) FROM posts")[0][0] if newest_run(crashed) else 0
        progressed = posts > first_listing["posts"]
        widened = min(first_listing["window"] * 1.5, KILL_WINDOW)
        first_listing.update(posts=posts, window=FIRST_LISTING_WINDOW if progressed else widened)
        # Now and then an incremental run: over a half-filled archive it meets known
        # pages and the full listing's checkpoint.
        mode = ["--full"] if r.random() < 0.8 else []
        return export(crashed, *mode), full["in_run_s"] * first_listing["window"]

    deadline = time.monotonic() + EXPORT_KILLS_BUDGET_S
    export_kills = kill_until(first_listing_complete, cut_the_first_listing, env, crashed, logs, rng, deadline)

    def enough(later: list[dict]) -> bool:
        every = export_kills + later
        incremental_ones = [o for o in every if o["mode"] == "incremental"]
        # ... and end on a kill, to see what `archiver status` makes of it.
        return (inside(every) >= EXPORT_KILLS and inside(incremental_ones) >= INCREMENTAL_KILLS
                and every[-1]["inside_run"])

    export_kills += kill_until(enough, full_or_incremental, env, crashed, logs, rng, deadline)
    landed = [o for o in export_kills if o["inside_run"]]
    story = f"seed {seed}, full run {full['in_run_s']:.2f}s:\n" + summary(export_kills)
    print(story)
    print(f"phase times: reference {t_reference - t0:.1f}s, export kills {time.monotonic() - t_reference:.1f}s")
    # Where the kills landed depends on the machine's speed, so it is only told, never
    # asserted (a busy machine must not fail this soak): that every point of a run is
    # survived is proven by the deterministic walk (test_crash_points_e2e.py).

    # `archiver status` notices a run a kill left 'running': interrupted (it only reads;
    # the next run records it).
    status = run_cli(["status", "--archive", str(crashed)], env)
    assert status.returncode == 0, status.describe()
    if export_kills and export_kills[-1]["inside_run"]:
        assert "INTERRUPTED" in status.stdout, status.describe()

    # Let it finish the way the reference went, then the import, killed a few times too.
    finish(export(crashed, "--full"), env, crashed, logs)
    killed_ids = [o["run_id"] for o in landed]
    statuses = dict(query(crashed, "SELECT run_id, status FROM runs"))
    assert {run_id: statuses[run_id] for run_id in killed_ids} == {run_id: "interrupted" for run_id in killed_ids}
    assert query(crashed, "SELECT count(*) FROM runs WHERE status='running'") == [(0,)]
    finish(export(crashed), env, crashed, logs)
    import_kills = kill_until(lambda outcomes: inside(outcomes) >= IMPORT_KILLS,
                              lambda r: (import_(crashed), imported["in_run_s"] * KILL_WINDOW),
                              env, crashed, logs, rng, time.monotonic() + IMPORT_KILLS_BUDGET_S)
    print(summary(import_kills))
    print(f"phase times: status + finishing + import kills {time.monotonic() - t_reference:.1f}s since the reference")
    finish(import_(crashed), env, crashed, logs)

    # Same archive, row for row.
    expected, got = archive_contents(reference), archive_contents(crashed)
    for table in expected:
        assert got[table] == expected[table], f"{table} differs after the kills (seed {seed})"
    assert media_files(crashed) == media_files(reference)

    # Not trivially equal: the whole world is there, once.
    assert len(expected["posts"]) == VIDEOS
    assert query(crashed, "SELECT count(DISTINCT url), count(DISTINCT created_at) FROM posts") == [(VIDEOS, VIDEOS)]
    assert query(crashed, "SELECT count(*) FROM posts WHERE post_id LIKE 'provisional:%'") == [(0,)]
    open_follows = "SELECT kind, count(*) FROM follows WHERE ended_at IS NULL GROUP BY kind ORDER BY kind"
    assert query(crashed, open_follows) == [("followers", FOLLOWERS), ("following", FOLLOWING)]
    # Counts never changed in this world: one sample per post (a change-only series),
    # however many times the killed runs re-read them.
    assert query(crashed, "SELECT count(*), count(DISTINCT post_id) FROM post_metrics") == [(VIDEOS, VIDEOS)]
    assert query(crashed, "SELECT count(*) FROM post_media WHERE role='cover' AND status='ok'") == [(VIDEOS,)]
    assert query(crashed, "SELECT count(*) FROM post_media WHERE status != 'ok' OR sha256 IS NULL") == [(0,)]

    # Nothing half-written is left, and the archive checks out.
    assert part_files(crashed) == []
    assert query(crashed, "PRAGMA integrity_check") == [("ok",)]
    verify = run_cli(["verify", "--archive", str(crashed)], env)
    assert verify.returncode == 0, verify.describe()
    assert "integrity check ok" in verify.stdout
    interrupted = len(killed_ids) + inside(import_kills)
    assert query(crashed, "SELECT count(*) FROM runs WHERE status='interrupted'") == [(interrupted,)]
