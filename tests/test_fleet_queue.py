"""The fleet's queue (issue 17, points 2 and 3): what is due is the daemon's rule; enqueueing
is idempotent (a queueing lock per account), a duplicate delivery runs nothing (the run
ledger), the once-a-minute tick is deferred once whatever the number of workers; a killed
worker's job goes back to the queue and resumes from its checkpoint on another worker; a
frozen worker whose job moved on is fenced off; SIGTERM ends a run between pages.

Real parts: PostgreSQL (tests/pg_server.py), Procrastinate, worker processes
(tests/fleet_world.py). Every wait is bounded; nothing waits for time to pass but the
heartbeats of the stall tests (set to fractions of a second there).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import threading
from dataclasses import dataclass

import pytest
from fleet_world import PagedRuns, WorkerProcess, fetch, ready_database, release, services, wait_until
from pg_server import fleet_database, postgres  # noqa: F401  (pytest fixtures)

from archiver.fleet import dispatch, ledger
from archiver.fleet.accounts import FleetAccount
from archiver.fleet.tasks import make_app, retry_stalled_jobs
from archiver.fleet.worker import run_worker

UTC = dt.timezone.utc
NOON = dt.datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
# Stall detection in fractions of a second, for the kill / freeze / stop tests.
# Heartbeats often, but a live worker is judged gone only after seconds of silence: on a busy
# 2-core machine a process may get no CPU for a second or two, and a live run taken over flakes.
FAST = {"heartbeat_seconds": 0.2, "stale_seconds": 5.0, "stalled_after_seconds": 6.0}
FAST_WORKER = {"update_heartbeat_interval": 0.2, "stalled_worker_timeout": 6.0}


def account(schedule: str | None = "30 3 * * *", **fields) -> FleetAccount:
    return FleetAccount(id=1, tenant="t", platform="mastodon", name="a", schedule=schedule, timezone="UTC", **fields)


# --------------------------------------------------------------------------- what is due


def test_due_is_the_daemons_rule_and_missed_times_coalesce():
    daily = account()
    today = dt.datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
    assert dispatch.due_slot(daily, None, NOON) == today   # never archived: due now, for today's time
    assert dispatch.due_slot(daily, ledger.AccountHistory(today, None), NOON) is None
    three_days_ago = today - dt.timedelta(days=3)
    assert dispatch.due_slot(daily, ledger.AccountHistory(three_days_ago, None), NOON) == today   # one run, not three
    assert dispatch.due_slot(account(enabled=False), None, NOON) is None
    # Weekdays only: Saturday noon owes nothing for Friday's run done.
    weekdays = account("0 9 * * 1-5")
    friday = dt.datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert dispatch.due_slot(weekdays, ledger.AccountHistory(friday, None), dt.datetime(2026, 12, 5, 12, tzinfo=UTC)) is None


def test_a_seconds_schedule_is_read_by_the_daemons_parser_never_the_queues():
    every_four_seconds = account("*/4 * * * * *")
    at = dt.datetime(2026, 12, 7, 12, 0, 7, tzinfo=UTC)
    assert dispatch.due_slot(every_four_seconds, None, at) == dt.datetime(2026, 12, 7, 12, 0, 4, tzinfo=UTC)
    from archiver.fleet import tasks

    assert tasks.STALLED_CHECK_CRON.split()[:5] == ["*"] * 5   # the queue's own cron: its sixth field is seconds
    # What the queue gets of such an account: its id and the scheduled time, never its cron line.
    app = make_app("postgresql://nobody@127.0.0.1:1/unused")   # not opened: nothing connects
    job = dispatch._deferrer(app, every_four_seconds).make_new_job(account=1, slot="2026-12-07T12:00:04+00:00",
                                                                    full=False)
    assert job.task_kwargs == {"account": 1, "slot": "2026-12-07T12:00:04+00:00", "full": False}
    assert every_four_seconds.schedule not in {task.cron for task in app.periodic_registry.periodic_tasks.values()}


def test_a_failed_scheduled_time_is_tried_again_later_a_few_times_then_waits_for_the_next():
    daily = account()
    slot = dt.datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
    yesterday = slot - dt.timedelta(days=1)
    failed_once = ledger.AccountHistory(yesterday, slot, 1, NOON - dt.timedelta(minutes=5))
    assert dispatch.due_slot(daily, failed_once, NOON) is None                         # not at once
    assert dispatch.due_slot(daily, failed_once, NOON + ledger.RETRY_AFTER) == slot     # later
    failed_thrice = ledger.AccountHistory(yesterday, slot, ledger.MAX_ATTEMPTS_PER_SLOT, NOON - dt.timedelta(hours=5))
    assert dispatch.due_slot(daily, failed_thrice, NOON) is None
    assert dispatch.due_slot(daily, failed_thrice, NOON + dt.timedelta(days=1)) == slot + dt.timedelta(days=1)


# --------------------------------------------------------------------------- queue and ledger


def _jobs(url):
    return fetch(url, "SELECT args->>'account', args->>'slot', status::text, lock, queueing_lock, queue_name "
                      "FROM procrastinate_jobs WHERE task_name = %s ORDER BY id", [dispatch.RUN_TASK])


def test_enqueueing_twice_queues_each_due_account_once_with_its_locks(fleet_database):
    ids = ready_database(fleet_database, accounts=3)
    app = make_app(fleet_database)
    from archiver.fleet import db

    with app.open(), db.connect(fleet_database) as connection:
        first = dispatch.enqueue_due(app, connection, NOON)
        second = dispatch.enqueue_due(app, connection, NOON)
    assert len(first.deferred) == 3 and second.deferred == [] and len(second.already_queued) == 3
    jobs = _jobs(fleet_database)
    assert [(int(j[0]), j[2], j[3], j[4], j[5]) for j in jobs] == [
        (i, "todo", f"account:{i}", f"account:{i}", "accounts") for i in ids]
    assert {j[1] for j in jobs} == {"2026-12-07T03:00:00+00:00"}


def test_a_duplicate_delivery_runs_nothing_and_one_scheduled_time_has_one_success(fleet_database):
    [account_id] = ready_database(fleet_database, accounts=1)
    app = make_app(fleet_database)
    slot = dt.datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    with app.open():
        for n in range(3):   # the same run delivered three times (queueing locks bypassed: a second trigger)
            app.configure_task(dispatch.RUN_TASK, queue="accounts", lock=f"account:{account_id}",
                               queueing_lock=f"dup{n}").defer(account=account_id, slot=slot.isoformat(), full=False)
    runner = PagedRuns(fleet_database)
    run_worker(services(fleet_database, runner), queues=["accounts"], wait=False, install_signal_handlers=False)
    assert fetch(fleet_database, "SELECT status, scheduled_for FROM fleet_runs") == [("ok", slot)]
    assert [row[2] for row in _jobs(fleet_database)] == ["succeeded"] * 3
    assert len(fetch(fleet_database, "SELECT * FROM test_run_log")) == 1   # the archive was run once


def test_the_tick_is_deferred_once_for_two_control_workers_and_queues_what_is_due(fleet_database):
    from procrastinate.periodic import PeriodicDeferrer

    ready_database(fleet_database, accounts=2)
    minute = int(NOON.timestamp())

    async def defer_tick(app):
        async with app.open_async():
            deferrer = PeriodicDeferrer(app.periodic_registry, max_delay=10 ** 9)
            ticks = [(task, ts) for task, ts in deferrer.get_previous_tasks(at=minute + 1) if task.periodic_id == "tick"]
            await deferrer.defer_jobs(ticks)

    for control_worker in (make_app(fleet_database), make_app(fleet_database)):
        asyncio.run(defer_tick(control_worker))
    ticks = fetch(fleet_database, "SELECT args FROM procrastinate_jobs WHERE task_name = 'archiver.fleet.tick'")
    assert ticks == [({"timestamp": minute},)]
    run_worker(services(fleet_database, PagedRuns(fleet_database)), queues=["control"], wait=False,
               install_signal_handlers=False)
    assert [(j[1], j[2]) for j in _jobs(fleet_database)] == [("2026-12-07T03:00:00+00:00", "todo")] * 2


def test_enqueue_of_one_account_twice_in_a_minute_is_one_run(fleet_database):
    from archiver.fleet import accounts, db

    ready_database(fleet_database, accounts=1)
    app = make_app(fleet_database)
    with app.open(), db.connect(fleet_database) as connection:
        one = accounts.find(connection, "t/mastodon:a00000")
        assert dispatch.enqueue_now(app, one, NOON).deferred == ["t/mastodon:a00000"]
        assert dispatch.enqueue_now(app, one, NOON + dt.timedelta(seconds=30)).already_queued == ["t/mastodon:a00000"]


def test_a_worker_that_stops_once_the_queue_is_empty_lets_its_running_runs_finish(fleet_database):
    """wait=False, concurrency 3: the first run ends while two are held mid-way; the worker's
    next fetch finds the queue empty. It stops only after the two end (they were once
    stopped "by request" there, recorded interrupted)."""
    import logging

    ids = ready_database(fleet_database, accounts=3)
    app = make_app(fleet_database)
    with app.open():
        dispatch.defer_runs(app, [(FleetAccount(i, "t", "mastodon", f"a{n:05d}"), NOON) for n, i in enumerate(ids)])
    queue_empty = threading.Event()

    class EmptyQueueSeen(logging.Handler):
        def emit(self, record):
            if "No job found" in record.getMessage():
                queue_empty.set()

    seen, worker_log = EmptyQueueSeen(), logging.getLogger("procrastinate.worker")
    level = worker_log.level
    worker_log.setLevel(logging.INFO)   # the "No job found" line is an INFO one
    worker_log.addHandler(seen)
    opener = threading.Thread(target=lambda: (queue_empty.wait(60), release(fleet_database)))
    opener.start()
    try:   # the process's second and third runs wait at their second page until the queue was found empty
        run_worker(services(fleet_database, PagedRuns(fleet_database, pages=3, hold_at_page=1, hold_from_run=2)),
                   queues=["accounts"], concurrency=3, wait=False, install_signal_handlers=False)
    finally:
        queue_empty.set()
        opener.join(60)
        worker_log.removeHandler(seen)
        worker_log.setLevel(level)
    assert fetch(fleet_database, "SELECT status FROM fleet_runs") == [("ok",)] * 3
    assert fetch(fleet_database, "SELECT status FROM test_run_log") == [("ok",)] * 3
    assert [j[2] for j in _jobs(fleet_database)] == ["succeeded"] * 3


def test_a_stop_request_reaches_the_runs_of_a_worker_that_would_stop_when_the_queue_is_empty(fleet_database):
    """wait=False waits for running runs; a stop request (SIGTERM sets FleetServices.stopping)
    still stops them at their next page."""
    [account_id] = ready_database(fleet_database, accounts=1)
    app = make_app(fleet_database)
    with app.open():
        dispatch.defer_runs(app, [(FleetAccount(account_id, "t", "mastodon", "a00000"), NOON)])
    fleet = services(fleet_database, PagedRuns(fleet_database, pages=3, hold_at_page=1))
    worker = threading.Thread(target=run_worker, args=(fleet,),
                              kwargs=dict(queues=["accounts"], wait=False, install_signal_handlers=False))
    worker.start()
    try:
        wait_until(lambda: fetch(fleet_database, "SELECT pages_done FROM test_pages") == [(1,)], 60, "never held")
        fleet.stopping.set()   # what SIGTERM's handler does
        worker.join(60)
        assert not worker.is_alive()
    finally:
        release(fleet_database)
        worker.join(60)
    assert fetch(fleet_database, "SELECT status FROM fleet_runs") == [("interrupted",)]
    assert fetch(fleet_database, "SELECT pages_done FROM test_pages") == [(1,)]   # kept for the next run


# --------------------------------------------------------------------------- workers that die, freeze, stop


@dataclass
class Stalled:
    url: str

    def retry(self, timeout: float = 30) -> None:
        """Wait (bounded) until the silent worker's job is back in the queue."""
        async def until_retried():
            app = make_app(self.url)
            async with app.open_async():
                for _ in range(int(timeout / 0.1)):
                    if await retry_stalled_jobs(app, FAST["stalled_after_seconds"]):
                        return True
                    await asyncio.sleep(0.1)
            return False

        assert asyncio.run(until_retried()), "the silent worker's job never went back to the queue"


def test_with_the_production_settings_a_dead_workers_job_runs_again_within_a_minute():
    """The stall tests use fractions of a second; with the shipped settings the chain from a
    worker's death to its job's run elsewhere is (worst case, seconds after its last beats):
    judged stalled, found by the next stalled-jobs check, fetched by a polling worker; and a
    job fetched before the dead run's ledger heartbeat is stale waits for it in RETRY_SECONDS
    steps. A live worker beats often enough never to be judged gone."""
    from procrastinate.worker import FETCH_JOB_POLLING_INTERVAL

    from archiver.fleet import tasks, worker

    check_every = int(tasks.STALLED_CHECK_CRON.split()[5].removeprefix("*/"))
    back_in_queue = worker.STALLED_AFTER_SECONDS + check_every + FETCH_JOB_POLLING_INTERVAL
    ledger_lets_it_run = ledger.STALE_SECONDS + tasks.RETRY_SECONDS + FETCH_JOB_POLLING_INTERVAL
    assert max(back_in_queue, ledger_lets_it_run) < 60
    assert worker.WORKER_HEARTBEAT_SECONDS * 3 <= worker.STALLED_AFTER_SECONDS   # a few missed beats are no death
    assert ledger.HEARTBEAT_SECONDS * 3 <= ledger.STALE_SECONDS


def _one_run_held(url, tmp_path, name="A"):
    [account_id] = ready_database(url, accounts=1)
    app = make_app(url)
    with app.open():
        dispatch.defer_runs(app, [(FleetAccount(account_id, "t", "mastodon", "a00000"), NOON)])
    worker = WorkerProcess(tmp_path, url, name, runner={"pages": 4, "hold_at_page": 2}, settings=FAST,
                           worker=FAST_WORKER)
    wait_until(lambda: fetch(url, "SELECT pages_done FROM test_pages") == [(2,)], 60,
               lambda: f"the worker never reached page 2:\n{worker.log}")
    return account_id, worker


def test_a_killed_workers_job_goes_back_to_the_queue_and_resumes_on_another(fleet_database, tmp_path):
    account_id, first = _one_run_held(fleet_database, tmp_path)
    try:
        first.signal(signal.SIGKILL)
        first.wait()
        Stalled(fleet_database).retry()
        release(fleet_database)
        run_worker(services(fleet_database, PagedRuns(fleet_database, pages=4, worker="B"), name="B", **FAST),
                   queues=["accounts"], wait=False, install_signal_handlers=False)
    finally:
        first.kill()
    runs = fetch(fleet_database, "SELECT worker, status, fence FROM fleet_runs ORDER BY id")
    assert [(r[0], r[1]) for r in runs] == [("A", "interrupted"), ("B", "ok")] and runs[1][2] > runs[0][2]
    assert fetch(fleet_database, "SELECT worker, first_page, status FROM test_run_log ORDER BY run_id") == [
        ("A", 0, "running"), ("B", 2, "ok")]   # B resumed from A's last checkpoint
    assert [j[2] for j in _jobs(fleet_database)] == ["succeeded"]   # the same job, retried


def test_a_frozen_worker_whose_job_moved_on_can_neither_write_nor_record(fleet_database, tmp_path):
    """Z freezes mid-run; its job goes back to the queue and B takes it (B holds it mid-way
    too); Z wakes while B runs: Z's run is fenced off (ledger, pages), and its end of the
    job is not written over B's in Procrastinate's tables (the job still doing on B, one
    end event: B's)."""
    account_id, zombie = _one_run_held(fleet_database, tmp_path, name="Z")
    b_runs = threading.Thread(target=run_worker, args=(
        services(fleet_database, PagedRuns(fleet_database, pages=4, hold_at_page=3, worker="B"), name="B", **FAST),),
        kwargs=dict(queues=["accounts"], wait=False, install_signal_handlers=False))
    try:
        zombie.signal(signal.SIGSTOP)   # frozen: no heartbeat, still holding its run
        Stalled(fleet_database).retry()
        b_runs.start()
        wait_until(lambda: fetch(fleet_database, "SELECT pages_done FROM test_pages") == [(3,)], 60,
                   "B never resumed the run")
        [(job_id, b_worker)] = fetch(fleet_database, "SELECT id, worker_id FROM procrastinate_jobs "
                                                     "WHERE task_name = %s AND status = 'doing'", [dispatch.RUN_TASK])
        zombie.signal(signal.SIGCONT)   # it wakes up and goes on where it was
        def job():
            return fetch(fleet_database, "SELECT status::text, worker_id FROM procrastinate_jobs WHERE id = %s", [job_id])

        wait_until(lambda: "fenced off" in zombie.log and ("moved on" in zombie.log or job() != [("doing", b_worker)]),
                   30, lambda: f"the zombie never noticed:\n{zombie.log}")
        assert job() == [("doing", b_worker)]   # Z wrote no end over B's running job
        release(fleet_database)
        b_runs.join(60)
        assert not b_runs.is_alive()
    finally:
        release(fleet_database)
        zombie.kill()
    assert fetch(fleet_database, "SELECT worker, status FROM fleet_runs ORDER BY id") == [
        ("Z", "interrupted"), ("B", "ok")]
    assert fetch(fleet_database, "SELECT worker, first_page, status FROM test_run_log ORDER BY run_id") == [
        ("Z", 0, "interrupted"), ("B", 2, "ok")]
    assert fetch(fleet_database, "SELECT pages_done FROM test_pages") == [(0,)]   # B's end, untouched by Z
    events = [row[0] for row in fetch(fleet_database, "SELECT type::text FROM procrastinate_events "
                                                      "WHERE job_id = %s ORDER BY id", [job_id])]
    assert [e for e in events if e in ("succeeded", "failed", "aborted")] == ["succeeded"] and events[-1] == "succeeded"
    assert fetch(fleet_database, "SELECT status::text FROM procrastinate_jobs WHERE id = %s", [job_id]) == [("succeeded",)]


def test_sigterm_ends_the_run_between_pages_and_the_next_worker_finishes_it(fleet_database, tmp_path):
    account_id, first = _one_run_held(fleet_database, tmp_path)
    try:
        first.signal(signal.SIGTERM)
        assert first.wait(30) == 0, first.log
    finally:
        first.kill()
    assert fetch(fleet_database, "SELECT status FROM fleet_runs") == [("interrupted",)]
    app = make_app(fleet_database)
    from archiver.fleet import db

    with app.open(), db.connect(fleet_database) as connection:   # the next tick: still due, queued again
        assert len(dispatch.enqueue_due(app, connection, NOON + dt.timedelta(minutes=1)).deferred) == 1
    release(fleet_database)
    run_worker(services(fleet_database, PagedRuns(fleet_database, pages=4, worker="B"), name="B"),
               queues=["accounts"], wait=False, install_signal_handlers=False)
    assert fetch(fleet_database, "SELECT worker, first_page, status FROM test_run_log ORDER BY run_id") == [
        ("A", 0, "interrupted"), ("B", 2, "ok")]


def test_sigterm_stops_a_real_simulator_run_between_pages_and_the_next_run_resumes_it(fleet_database, tmp_path,
                                                                                      monkeypatch):
    """`archiver worker` (the command) archiving a simulated TikTok account over loopback gets
    SIGTERM mid-listing (delivered at its 4th archive commit: ARCHIVER_SIGNAL_AT, no timing):
    the run stops at its next page, recorded interrupted in the ledger and in the archive's
    own runs table with the pages it wrote kept, and the worker exits 0. The next tick queues
    the account again and another worker's run finishes it from there."""
    import sqlite3
    import subprocess

    from cli_world import archiver_command

    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet import db, schema
    from archiver.fleet.secrets import ENV_MASTER_KEY, FleetSecretStore, generate_master_key
    from archiver.fleet.worker import FleetServices, LocalArchives
    from archiver.sim import installed_simulators

    master_key = generate_master_key()
    monkeypatch.setenv(ENV_MASTER_KEY, master_key)   # this process reads the sealed tokens too
    archives = tmp_path / "archives"
    with installed_simulators()["tiktok"].start_demo(posts=30, followers=4) as world:
        with db.connect(fleet_database) as connection:
            schema.apply(connection)
            fleet_accounts.add(connection, "acme", "tiktok", "main", schedule="0 3 * * *", timezone="UTC",
                               options={"base_url": world.base_url, **world.settings})
            world.store_credentials(FleetSecretStore(connection, "acme"), "main")
            app = make_app(fleet_database)
            with app.open():
                assert len(dispatch.enqueue_due(app, connection, NOON).deferred) == 1
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")},
               "ARCHIVER_FLEET_DATABASE": fleet_database, ENV_MASTER_KEY: master_key,
               "ARCHIVER_SIGNAL_AT": "commit:4:TERM", "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
        log_path = tmp_path / "worker.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen([*archiver_command(), "worker", "--queues", "accounts", "--archive",
                                       str(tmp_path), "--archives", str(archives)],
                                      env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            assert worker.wait(120) == 0, log_path.read_text()
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        archive_file = archives / "acme" / "tiktok" / "main" / "archive.db"
        assert fetch(fleet_database, "SELECT status FROM fleet_runs") == [("interrupted",)], log_path.read_text()
        first = sqlite3.connect(archive_file)
        stopped = first.execute("SELECT status FROM runs").fetchall()
        kept = first.execute("SELECT count(*) FROM posts").fetchone()[0]
        first.close()
        assert stopped == [("interrupted",)] and 0 < kept < 30, (stopped, kept, log_path.read_text())
        with db.connect(fleet_database) as connection:
            with app.open():   # the next tick: still due for 03:00, queued again
                assert len(dispatch.enqueue_due(app, connection, NOON + dt.timedelta(minutes=1)).deferred) == 1
            runner = LocalArchives(archives, secrets_for=lambda tenant: FleetSecretStore(connection, tenant))
            run_worker(FleetServices(fleet_database, runner), queues=["accounts"], wait=False,
                       install_signal_handlers=False)
    assert fetch(fleet_database, "SELECT status FROM fleet_runs ORDER BY id") == [("interrupted",), ("ok",)]
    final = sqlite3.connect(archive_file)
    assert final.execute("SELECT status FROM runs ORDER BY run_id").fetchall() == [("interrupted",), ("ok",)]
    assert final.execute("SELECT count(*) FROM posts").fetchone()[0] == 30
    final.close()


def test_a_worker_of_both_queues_runs_control_jobs_while_runs_hold_its_slots(fleet_database, tmp_path):
    """`archiver worker --queues accounts,control --concurrency 1` (the docs' systemd line): its
    one run slot held by a long run, a control job (here a tick) still runs at once — the
    control queue has a worker of its own — instead of waiting behind the backlog of runs
    (seen in the 200-account night: a killed worker's job waited minutes for the stalled check)."""
    import time

    from archiver.fleet.tasks import TICK_TASK

    [account_id] = ready_database(fleet_database, accounts=1)
    app = make_app(fleet_database)
    with app.open():
        dispatch.defer_runs(app, [(FleetAccount(account_id, "t", "mastodon", "a00000"), NOON)])
    worker = WorkerProcess(tmp_path, fleet_database, "both", runner={"pages": 4, "hold_at_page": 2}, settings=FAST,
                           worker={**FAST_WORKER, "queues": ["accounts", "control"], "concurrency": 1}, no_tick=True)
    try:
        wait_until(lambda: fetch(fleet_database, "SELECT pages_done FROM test_pages") == [(2,)], 60,
                   lambda: f"the run never reached page 2:\n{worker.log}")
        with app.open():
            # (its own queueing lock: the worker's periodic deferrer queues the minute's ticks too)
            tick_job = app.configure_task(TICK_TASK, queueing_lock="test").defer(timestamp=int(time.time()) - 3600)
        wait_until(lambda: fetch(fleet_database, "SELECT status::text FROM procrastinate_jobs WHERE id = %s",
                                 [tick_job]) == [("succeeded",)], 30,
                   lambda: f"the control job waited behind the held run:\n{worker.log}")
        assert fetch(fleet_database, "SELECT status FROM test_run_log") == [("running",)]   # still held
    finally:
        release(fleet_database)
        worker.kill()
