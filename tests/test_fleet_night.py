"""The fleet at scale on one machine (issue 17, point 6): a night of 200 accounts over 3
worker processes with one killed mid-run, a database restart mid-night, and the dispatch of
2,000 accounts; a real `archiver worker` with object storage killed mid-run, its run resumed
from the last uploaded generation by another worker. Long: they run in `make fleet-test` (ARCHIVER_FLEET_LONG=1); `make test` runs
the dispatch of 200 accounts, and the short kill / freeze / stop tests of test_fleet_queue.py.

The issue's own night (test_a_night_of_200_simulated_accounts_…) runs real `archiver worker`
processes against the platforms' simulators with their rate limits on, through the fleet's
shared limiter. The other nights run PagedRuns (tests/fleet_world.py): pages with a fenced
checkpoint in PostgreSQL, each run logged with its worker, start and end, so that "exactly
once" and "never two at a time" are checked on what really happened. The figures are printed
(pytest -s, or make fleet-test's -rA, shows them).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from dataclasses import dataclass

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


def test_a_dead_workers_job_goes_back_to_the_queue_although_its_account_was_queued_again(fleet_database):
    """Found by the simulator night: a worker dies mid-run and, before the stalled-jobs check
    puts its job back, the account is queued again (`archiver enqueue --account`: the queueing
    lock holds one *waiting* job, and the dead one is `doing`). Putting the dead job back met
    that lock's unique index: the check failed every time, and the dead job held the account's
    lock for ever, so neither ran. Now the dead job goes back to its place at the front and the
    other is cancelled."""
    import asyncio

    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet.tasks import retry_stalled_jobs

    [account_id] = ready_database(fleet_database, accounts=1)
    first, _ = _enqueue(fleet_database, NOON)
    # A worker took it and died: a `doing` job of no live worker is a stalled one.
    fetch(fleet_database, "UPDATE procrastinate_jobs SET status = 'doing' RETURNING id")
    app = make_app(fleet_database)
    with app.open(), db.connect(fleet_database) as connection:
        again = dispatch.enqueue_now(app, fleet_accounts.get(connection, account_id), NOON)
    assert len(first.deferred) == len(again.deferred) == 1

    async def check() -> int:
        async with app.open_async():
            return await retry_stalled_jobs(app, 1.0)

    assert asyncio.run(check()) == 1
    assert [status for _, status in fetch(fleet_database, "SELECT id, status FROM procrastinate_jobs "
                                                          "ORDER BY id")] == ["todo", "cancelled"]


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


# -- the night through the platforms' simulators ------------------------------------------------------
#
# Each simulator answers 429 beyond its own limit (a tenth or so of the platform's documented
# one, windows of one real minute) and the fleet keeps its rate a little under it, as an operator
# would: the fleet's rate is what the night must keep; the simulator judges whether it did.

@dataclass(frozen=True)
class NightPlatform:
    name: str
    accounts: int
    limit: str            # the simulator's limit, in words
    fleet_rate: str       # the fleet's rate for it, in words
    fleet_per_minute: int  # at most this many requests of one limit key in any minute (per_minute + burst - 1)


NIGHT = (
    # TikTok counts each endpoint in a one-minute sliding window; the fleet keys it by API host (stricter).
    NightPlatform("tiktok", 70, "60 a minute per endpoint (sliding)", "54/min per API host, burst 1", 54),
    # Mastodon counts per token (one per account here) in fixed windows; the fleet keeps the
    # connector's declared rate, per account.
    NightPlatform("mastodon", 65, "30 a minute per token (fixed windows)", "20/min per account, burst 5 (declared)",
                  24),
    # Bluesky counts every XRPC request of the address in a sliding window, blob downloads
    # (getBlob, on the PDS) too: so does the fleet (one in six of a run's requests here).
    NightPlatform("bluesky", 65, "360 a minute per address (sliding)", "330/min per API host, burst 1", 330),
)


def _limited_by_the_simulator(platform: str, path: str) -> bool:
    """The requests the simulator counts against its limit (media files and OAuth are not)."""
    if platform == "tiktok":
        return path.startswith("/v2/") and "/oauth/" not in path
    if platform == "mastodon":
        return path.startswith("/api/")
    return path.startswith("/xrpc/")


def _start_simulators(stack) -> dict:
    """The three simulated platforms on loopback, their limits on; each answer's arrival noted."""
    from archiver.sim import installed_simulators

    worlds = {}
    for platform in NIGHT:
        world = stack.enter_context(installed_simulators()[platform.name].start_demo(posts=3, followers=3))
        config = world.fake.config
        if platform.name == "tiktok":
            config.rate_limit_per_minute = 60            # its window is a minute (fake.RATE_WINDOW)
        elif platform.name == "mastodon":
            config.rate_limit, config.rate_window = 30, 60
        else:
            config.rate_limit, config.rate_window = 360, 60
        world.arrivals = []   # (time, path, status, who: the token where the simulator counts per token)
        answer = world.fake.handle

        def timed(request, answer=answer, arrivals=world.arrivals):
            response = answer(request)
            arrivals.append((time.time(), request.url.path, response.status_code,
                             request.headers.get("authorization", "")))
            return response

        world.fake.handle = timed
        worlds[platform.name] = world
    return worlds


def _busiest_minute(times: list[float]) -> int:
    """The most requests in any one-minute window [t, t + 60) starting at a request."""
    times = sorted(times)
    busiest, first = 0, 0
    for last, when in enumerate(times):
        while times[first] <= when - 60:
            first += 1
        busiest = max(busiest, last - first + 1)
    return busiest


def _night_figures(worlds: dict) -> dict:
    """Per platform: API requests, 429s, and the busiest minute of each limit key the simulator
    counts (TikTok: an endpoint; Mastodon: a token; Bluesky: the address) and of the fleet's key."""
    figures = {}
    for platform in NIGHT:
        limited = [a for a in worlds[platform.name].arrivals if _limited_by_the_simulator(platform.name, a[1])]
        by_key: dict[str, list[float]] = {}
        for when, path, _status, who in limited:
            key = {"tiktok": path, "mastodon": who}.get(platform.name, "address")
            by_key.setdefault(key, []).append(when)
        fleet_keys = by_key if platform.name == "mastodon" else {"host": [a[0] for a in limited]}
        figures[platform.name] = {
            "requests": len(limited),
            "429s": sum(1 for a in worlds[platform.name].arrivals if a[2] == 429),
            "busiest_minute_simulator_key": max(_busiest_minute(t) for t in by_key.values()),
            "busiest_minute_fleet_key": max(_busiest_minute(t) for t in fleet_keys.values()),
        }
    return figures


def _archive_runs(path) -> list[tuple[str, str, str | None]]:
    import sqlite3

    archive = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return archive.execute("SELECT status, started_at, ended_at FROM runs WHERE kind = 'export' "
                               "ORDER BY run_id").fetchall()
    finally:
        archive.close()


@LONG
@pytest.mark.timeout(1200)   # about 4 minutes of night; a busy machine's CPU can make it 10
@pytest.mark.parametrize("storage", ["folder", "s3"])
def test_a_night_of_200_simulated_accounts_over_3_archiver_workers_with_one_killed(fleet_database, tmp_path,
                                                                                    monkeypatch, request, storage):
    """The issue's night: 200 accounts of three simulated platforms (TikTok, Mastodon, Bluesky:
    loopback HTTP, their rate limits on) archived by three `archiver worker` processes (and a
    fourth for the control queue) into one
    folder of archives (a shared disk), tokens sealed in the fleet database, every API request
    through the fleet's shared limiter. The third worker dies hard in the middle of its first
    run (a crash point: os._exit after the run's first page commits); the stalled-jobs check
    puts its job back and another worker resumes it. Every account archived exactly once for
    the night's scheduled time, no two runs of an account at once (ledger and archives), no 429
    from any simulator, the busiest minute of each limit within the fleet's rate. Real
    one-minute windows: the night takes about three minutes. The figures are printed.

    ``storage``: "folder": the archives in one folder all workers share; "s3": in object
    storage by generation (moto, as production has S3), each worker with its own working
    folder; the worker that dies checkpoints after every page, so the run that takes over
    resumes from the generation it uploaded."""
    import contextlib
    import subprocess

    from cli_world import archiver_command

    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet import schema
    from archiver.fleet.limiter import Rate, set_rate
    from archiver.fleet.secrets import ENV_MASTER_KEY, FleetSecretStore, generate_master_key

    # The night's scheduled time: an hour ago (the next fire time is a day away, so a tick of a
    # worker during the night decides for the same one).
    now = dt.datetime.now(dt.timezone.utc)
    slot = (now - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    schedule = f"{slot.minute} {slot.hour} * * *"
    master_key = generate_master_key()
    monkeypatch.setenv(ENV_MASTER_KEY, master_key)   # this process seals the tokens
    archives = tmp_path / "archives"
    stored: dict[str, str] = {}
    if storage == "s3":
        from s3_server import TEST_CREDENTIALS

        bucket = request.getfixturevalue("s3_bucket")
        stored = {**TEST_CREDENTIALS, "ARCHIVER_FLEET_STORAGE": bucket.url("night/"),
                  "ARCHIVER_FLEET_STORAGE_ENDPOINT": bucket.endpoint_url}
        for variable, value in TEST_CREDENTIALS.items():
            monkeypatch.setenv(variable, value)   # this process reads the archives at the end
    with contextlib.ExitStack() as stack:
        worlds = _start_simulators(stack)
        with db.connect(fleet_database) as connection:
            schema.apply(connection)
            set_rate(connection, "tiktok", Rate(54, 1))
            set_rate(connection, "bluesky", Rate(330, 1))
            # Interleaved, as a real fleet's accounts would be: every platform busy all night.
            names = [(p, n) for n in range(max(p.accounts for p in NIGHT)) for p in NIGHT if n < p.accounts]
            assert len(names) == 200
            for platform, n in names:
                world, tenant = worlds[platform.name], ("acme", "globex")[n % 2]
                fleet_accounts.add(connection, tenant, platform.name, f"{platform.name}{n:03d}", schedule=schedule,
                                   timezone="UTC", options={"base_url": world.base_url, **world.settings})
                world.store_credentials(FleetSecretStore(connection, tenant), f"{platform.name}{n:03d}")
        for world in worlds.values():
            world.fake.advance(120)    # the authorizations were made long before the night
            world.arrivals.clear()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}, **stored,
               "ARCHIVER_FLEET_DATABASE": fleet_database, ENV_MASTER_KEY: master_key,
               "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "PYTHONUNBUFFERED": "1"}
        enqueued = subprocess.run([*archiver_command(), "enqueue", "--due", "--archive", str(tmp_path / "home")],
                                  env=env, capture_output=True, text=True, timeout=120)
        assert enqueued.returncode == 0 and "200" in enqueued.stdout, enqueued.stdout + enqueued.stderr

        def worker(name: str, queues: str, concurrency: int, *options: str, **extra: str):
            log = open(tmp_path / f"{name}.log", "wb")
            stack.callback(log.close)
            folder = archives if storage == "folder" else tmp_path / f"work-{name}"
            process = subprocess.Popen(
                [*archiver_command(), "worker", "--queues", queues, "--concurrency", str(concurrency),
                 "--archive", str(tmp_path / f"home-{name}"), "--archives", str(folder), *options],
                env={**env, **extra}, stdout=log, stderr=subprocess.STDOUT)
            stack.callback(_stop, process)
            return process

        def logs() -> str:
            return "".join(f"\n--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
                           for p in sorted(tmp_path.glob("[CW]*.log")))

        def ok_runs() -> int:
            return fetch(fleet_database, "SELECT count(*) FROM fleet_runs WHERE status = 'ok'")[0][0]

        started = time.monotonic()
        # The control queue (the tick, the stalled-jobs check) on a worker of its own, as
        # docs/fleet.md suggests: on a worker that also runs accounts, its jobs would wait
        # behind the night's backlog of runs (jobs are taken by priority, then in order).
        worker("C", "control", 1)
        worker("W1", "accounts", 4)
        worker("W2", "accounts", 4)
        wait_until(lambda: ok_runs() >= 20, 180, lambda: "the night did not start:" + logs())
        # The third joins mid-night and dies at its first run's third commit (after its first
        # page): one run at a time, so exactly that run is cut.
        if storage == "folder":
            dying = worker("W3", "accounts", 1, ARCHIVER_CRASH_AT="commit:3")
        else:   # its first page uploaded (a checkpoint after each page), it dies at the next commit
            dying = worker("W3", "accounts", 1, "--checkpoint-seconds", "0", ARCHIVER_CRASH_AT="commit:4")
        assert dying.wait(180) == 86, "W3 did not die at its crash point:" + logs()
        killed_at = time.monotonic()
        [(killed_run, killed_account)] = fetch(fleet_database, "SELECT id, account_id FROM fleet_runs WHERE "
                                                               "status = 'running' AND worker LIKE %s",
                                               [f"%:{dying.pid}"])
        wait_until(lambda: fetch(fleet_database, "SELECT status FROM fleet_runs WHERE id = %s", [killed_run])
                   == [("interrupted",)], 120, lambda: "the killed run was never taken over:" + logs())
        taken_over_after = time.monotonic() - killed_at
        wait_until(lambda: ok_runs() >= 200, 600, lambda: f"the night did not finish ({ok_runs()} ok):" + logs())
        wall = time.monotonic() - started

    # Exactly once, for the night's scheduled time; nothing else ran (a tick during the night
    # decided for the same time; a duplicate delivery did nothing).
    ledger = fetch(fleet_database, "SELECT account_id, status, scheduled_for, started_at, ended_at FROM fleet_runs "
                                   "ORDER BY account_id, started_at")
    assert {(status, scheduled_for) for _, status, scheduled_for, *_ in ledger} <= {("ok", slot), ("interrupted", slot)}
    assert sorted(row[0] for row in ledger if row[1] == "ok") == sorted({row[0] for row in ledger})
    assert len({row[0] for row in ledger}) == 200
    retried = [row for row in ledger if row[1] == "interrupted"]
    assert [row[0] for row in retried] == [killed_account]
    for before, after in zip(ledger, ledger[1:], strict=False):
        assert before[0] != after[0] or before[4] <= after[3], f"runs of one account overlapped: {before} {after}"
    # Each archive: one run that finished; the killed account's also the dead run, marked
    # interrupted by the run that took over (no pid trusted), before it.
    by_id = {row[0]: row for row in fetch(fleet_database, "SELECT id, tenant, platform, name FROM fleet_accounts")}
    for account_id, tenant, platform, name in by_id.values():
        runs = _archive_runs(_final_archive(fleet_database, storage, archives / tenant / platform / name, account_id,
                                            stored, tmp_path / "check"))
        expected = [("interrupted",), ("ok",)] if account_id == killed_account else [("ok",)]
        assert [(status,) for status, *_ in runs] == expected, (tenant, platform, name, runs)
        # The dead run has no end (its process never wrote one): the next one started after it.
        assert all((before[2] or before[1]) <= after[1] for before, after in zip(runs, runs[1:], strict=False))
    figures = _night_figures(worlds)
    print(f"\nnight of 200 simulated accounts ({storage}), 3 `archiver worker` processes, one killed mid-run: "
          f"{wall:.0f} s wall time, {len(retried)} run retried (taken over {taken_over_after:.0f} s after the kill)")
    for platform in NIGHT:
        f = figures[platform.name]
        print(f"  {platform.name:9} {platform.accounts} accounts, {f['requests']} API requests, {f['429s']} 429s; "
              f"busiest minute {f['busiest_minute_fleet_key']} (fleet's rate {platform.fleet_rate}), "
              f"{f['busiest_minute_simulator_key']} by the simulator's count (its limit {platform.limit})")
    for platform in NIGHT:
        f = figures[platform.name]
        assert f["429s"] == 0, (platform.name, f)
        assert f["busiest_minute_fleet_key"] <= platform.fleet_per_minute, (platform.name, f)
    assert taken_over_after < 90


def _final_archive(url: str, storage: str, folder, account_id: int, stored: dict, cache):
    """The account's archive file: in the shared folder, or its current generation in the store."""
    if storage == "folder":
        return folder / "archive.db"
    from archiver.fleet.objects import open_object_store
    from archiver.fleet.storage import ArchiveStore

    objects = open_object_store(stored["ARCHIVER_FLEET_STORAGE"], endpoint_url=stored["ARCHIVER_FLEET_STORAGE_ENDPOINT"])
    with db.connect(url) as connection:
        _pointer, path = ArchiveStore(connection, objects, cache, worker="test").read_only_copy(account_id)
    assert path is not None, f"account {account_id}: no generation in the store"
    return path


def _stop(process) -> None:
    """SIGTERM (running accounts stop at their next page), then SIGKILL if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
