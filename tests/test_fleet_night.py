"""The fleet at scale on one machine (issue 17, point 6): a night of 200 accounts over 3
worker processes with one killed mid-run, a database restart mid-night, and the dispatch of
2,000 accounts; a real `archiver worker` with object storage killed mid-run, its run resumed
from the last uploaded generation by another worker. Long: they run in `make fleet-test` (ARCHIVER_FLEET_LONG=1); `make test` runs
the dispatch of 200 accounts, and the short kill / freeze / stop tests of test_fleet_queue.py.

The runs are PagedRuns (tests/fleet_world.py): pages with a fenced checkpoint in PostgreSQL,
each run logged with its worker, start and end, so that "exactly once" and "never two at a
time" are checked on what really happened. The figures are printed (pytest -s shows them).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import pytest
from fleet_world import WorkerProcess, fetch, ready_database, wait_until
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)
from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

from archiver.fleet import db, dispatch
from archiver.fleet.tasks import make_app

LONG = pytest.mark.fleet_long   # deselected unless ARCHIVER_FLEET_LONG=1 (tests/conftest.py)
NOON = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
SLOT = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.timezone.utc)
FAST = {"heartbeat_seconds": 0.5, "stale_seconds": 2.0, "stalled_after_seconds": 3.0}
FAST_WORKER = {"update_heartbeat_interval": 0.5, "stalled_worker_timeout": 3.0, "concurrency": 2}


def _enqueue(url: str, now: dt.datetime) -> tuple[dispatch.Enqueued, float]:
    app = make_app(url)
    started = time.monotonic()
    with app.open(), db.connect(url) as connection:
        result = dispatch.enqueue_due(app, connection, now)
    return result, time.monotonic() - started


def _check_night(url: str, accounts: int) -> dict:
    """Every account archived exactly once for the night's scheduled time, never two runs of
    one account at a time; the figures."""
    ok = fetch(url, "SELECT account_id, count(*) FROM fleet_runs WHERE status = 'ok' AND scheduled_for = %s "
                    "GROUP BY account_id", [SLOT])
    assert len(ok) == accounts and {n for _, n in ok} == {1}
    runs = fetch(url, "SELECT account_id, started, coalesce(ended, clock_timestamp()), worker, status "
                      "FROM test_run_log ORDER BY account_id, started")
    killed_ends = dict(fetch(url, "SELECT id, ended_at FROM fleet_runs WHERE status = 'interrupted'"))
    overlaps = []
    for before, after in zip(runs, runs[1:], strict=False):
        if before[0] == after[0] and before[4] == "running":   # a killed run: its end is when it was taken over
            continue
        if before[0] == after[0] and after[1] < before[2]:
            overlaps.append((before, after))
    assert not overlaps, f"runs of one account overlapped: {overlaps[:3]}"
    minutes = fetch(url, "SELECT date_trunc('minute', started), count(*) FROM test_run_log GROUP BY 1 ORDER BY 2 DESC")
    span = fetch(url, "SELECT extract(epoch FROM max(ended) - min(started)) FROM test_run_log")[0][0]
    return {"accounts": accounts, "wall_seconds": round(float(span), 1), "retried_runs": len(killed_ends),
            "busiest_minute_runs": minutes[0][1]}


def test_dispatch_of_200_accounts_is_quick_and_idempotent(fleet_database):
    ready_database(fleet_database, accounts=200)
    first, seconds = _enqueue(fleet_database, NOON)
    again, _ = _enqueue(fleet_database, NOON)
    assert len(first.deferred) == 200 and len(again.already_queued) == 200
    print(f"\ndispatch: 200 accounts in {seconds:.2f} s ({200 / seconds:.0f}/s)")


@LONG
def test_dispatch_of_2000_accounts(fleet_database):
    ready_database(fleet_database, accounts=2000)
    first, seconds = _enqueue(fleet_database, NOON)
    assert len(first.deferred) == 2000
    print(f"\ndispatch: 2000 accounts in {seconds:.1f} s ({2000 / seconds:.0f}/s)")
    assert seconds < 120


@LONG
def test_a_night_of_200_accounts_over_3_workers_with_one_killed_mid_run(fleet_database, tmp_path):
    ready_database(fleet_database, accounts=200)
    _enqueue(fleet_database, NOON)
    started = time.monotonic()
    workers = [
        # The one to kill holds its third run at page 1: killed mid-run, by construction.
        WorkerProcess(tmp_path, fleet_database, "W1", runner={"pages": 3, "page_seconds": 0.02, "hold_at_page": 1,
                                                              "hold_from_run": 3},
                      settings=FAST, worker={**FAST_WORKER, "concurrency": 1}, no_tick=True),
        # This one also takes the control queue: its retry_stalled (every 15 s) requeues W1's job.
        WorkerProcess(tmp_path, fleet_database, "W2", runner={"pages": 3, "page_seconds": 0.02}, settings=FAST,
                      worker={**FAST_WORKER, "queues": ["accounts", "control"]}, no_tick=True),
        WorkerProcess(tmp_path, fleet_database, "W3", runner={"pages": 3, "page_seconds": 0.02}, settings=FAST,
                      worker=FAST_WORKER, no_tick=True),
    ]
    try:
        held = "SELECT run_id FROM test_run_log WHERE worker = 'W1' AND status = 'running'"
        wait_until(lambda: len(fetch(fleet_database, "SELECT 1 FROM test_run_log WHERE worker = 'W1'")) >= 3
                   and fetch(fleet_database, held), 120, lambda: f"W1 never got to its third run:\n{workers[0].log}")
        [(killed_run,)] = fetch(fleet_database, held)
        workers[0].signal(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: fetch(fleet_database, "SELECT status FROM fleet_runs WHERE id = %s", [killed_run])
                   == [("interrupted",)], 90, lambda: f"W1's run was never taken over:\n{workers[1].log[-3000:]}")
        requeued_after = time.monotonic() - killed_at
        wait_until(lambda: fetch(fleet_database, "SELECT count(*) FROM fleet_runs WHERE status = 'ok'")[0][0] >= 200,
                   300, lambda: "the night did not finish:\n" + workers[1].log[-3000:] + workers[2].log[-3000:])
    finally:
        for worker in workers:
            worker.kill()
    figures = _check_night(fleet_database, 200)
    assert requeued_after < 60   # the killed worker's job ran again within a minute
    print(f"\nnight: {figures}, killed job taken over after {requeued_after:.1f} s, "
          f"test wall time {time.monotonic() - started:.1f} s")


@LONG
def test_a_database_restart_mid_night_loses_nothing_and_runs_nothing_twice(fleet_database, postgres, tmp_path):
    ready_database(fleet_database, accounts=60)
    _enqueue(fleet_database, NOON)
    workers = [WorkerProcess(tmp_path, fleet_database, f"W{n}", runner={"pages": 3, "page_seconds": 0.05},
                             settings=FAST, worker={**FAST_WORKER, "queues": ["accounts", "control"]}, no_tick=True)
               for n in (1, 2)]
    try:
        wait_until(lambda: fetch(fleet_database, "SELECT count(*) FROM fleet_runs WHERE status = 'ok'")[0][0] >= 15,
                   120, lambda: workers[0].log[-3000:])
        postgres.restart("fast")   # every connection breaks; the server is back on the same port
        wait_until(lambda: _ok_count(fleet_database) >= 60, 300,
                   lambda: "the night did not finish after the restart:\n" + workers[0].log[-4000:])
    finally:
        for worker in workers:
            worker.kill()
    print(f"\nrestart: {_check_night(fleet_database, 60)}")


def _ok_count(url: str) -> int:
    try:
        return fetch(url, "SELECT count(*) FROM fleet_runs WHERE status = 'ok'")[0][0]
    except db.FleetError:   # the server still starting
        return -1


@LONG
def test_a_worker_killed_mid_run_resumes_from_the_last_uploaded_generation(fleet_database, s3_bucket, tmp_path,
                                                                           monkeypatch):
    """`archiver worker` with object storage and a checkpoint after every page, archiving a
    simulated TikTok account with its tokens sealed in the fleet database, dies hard in the
    middle of the run (a crash point: os._exit after its 8th commit). Another worker takes the
    job over and goes on from the generation the dead one uploaded last: the final archive
    holds the dead run (marked interrupted, not trusted to a pid) and the one that finished."""
    import asyncio
    import sqlite3
    import subprocess

    from cli_world import archiver_command
    from s3_server import TEST_CREDENTIALS

    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet import schema
    from archiver.fleet.objects import open_object_store
    from archiver.fleet.secrets import ENV_MASTER_KEY, FleetSecretStore, generate_master_key
    from archiver.fleet.tasks import retry_stalled_jobs
    from archiver.fleet.worker import FleetServices, StoredArchives, run_worker
    from archiver.sim import installed_simulators

    master_key = generate_master_key()
    monkeypatch.setenv(ENV_MASTER_KEY, master_key)   # this process reads the sealed tokens too
    with installed_simulators()["tiktok"].start_demo(posts=60, followers=10) as world:
        with db.connect(fleet_database) as connection:
            schema.apply(connection)
            account, _ = fleet_accounts.add(connection, "acme", "tiktok", "main", schedule="0 3 * * *",
                                            timezone="UTC", options={"base_url": world.base_url, **world.settings})
            world.store_credentials(FleetSecretStore(connection, "acme"), "main")
        _enqueue(fleet_database, NOON)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}, **TEST_CREDENTIALS,
               "ARCHIVER_FLEET_DATABASE": fleet_database, "ARCHIVER_FLEET_STORAGE": s3_bucket.url("fleet/"),
               "ARCHIVER_FLEET_STORAGE_ENDPOINT": s3_bucket.endpoint_url, ENV_MASTER_KEY: master_key,
               "ARCHIVER_CRASH_AT": "commit:8", "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
        log_path = tmp_path / "dying-worker.log"
        with open(log_path, "wb") as log:
            dying = subprocess.Popen([*archiver_command(), "worker", "--queues", "accounts", "--checkpoint-seconds",
                                      "0", "--archive", str(tmp_path / "m1"), "--archives", str(tmp_path / "m1")],
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            assert dying.wait(120) == 86, log_path.read_text()   # the crash point's exit code
        finally:
            if dying.poll() is None:
                dying.kill()
                dying.wait()
        [(generation_left,)] = fetch(fleet_database, "SELECT generation FROM fleet_archives")
        assert generation_left >= 1, log_path.read_text()   # it uploaded pages before it died

        async def requeue():
            app = make_app(fleet_database)
            async with app.open_async():
                for _ in range(300):
                    if await retry_stalled_jobs(app, 1.0):
                        return
                    await asyncio.sleep(0.1)
            raise AssertionError("the dead worker's job never went back to the queue")

        asyncio.run(requeue())
        objects = open_object_store(s3_bucket.url("fleet/"), endpoint_url=s3_bucket.endpoint_url)
        with db.connect(fleet_database) as secrets_connection:
            runner = StoredArchives(fleet_database, objects, tmp_path / "m2", checkpoint_seconds=0,
                                    secrets_for=lambda tenant: FleetSecretStore(secrets_connection, tenant))
            run_worker(FleetServices(fleet_database, runner, stale_seconds=1.0), queues=["accounts"], wait=False,
                       install_signal_handlers=False)
    assert fetch(fleet_database, "SELECT status FROM fleet_runs ORDER BY id") == [("interrupted",), ("ok",)]
    [generation] = (tmp_path / "m2" / "cache" / str(account.id)).glob("*.sqlite")   # the last one m2 uploaded
    final = sqlite3.connect(generation)
    runs = final.execute("SELECT status FROM runs ORDER BY run_id").fetchall()
    posts = final.execute("SELECT count(*) FROM posts").fetchone()[0]
    final.close()
    assert runs == [("interrupted",), ("ok",)]   # the dead run's pages came with the generation it uploaded
    assert posts == 60
    [(generation,)] = fetch(fleet_database, "SELECT generation FROM fleet_archives")
    print(f"\nkilled mid-run: generation {generation_left} left by the dead worker, {generation} at the end")
