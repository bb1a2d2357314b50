"""Benchmark: the fleet's shared limiter and quota in PostgreSQL, against what 10,000
accounts need.

    python benchmarks/bench_fleet.py [--database URL] [--seconds 5] [--threads 1,4,16]

Without --database it starts a throw-away PostgreSQL of its own (Debian's binaries, as the
tests do: tests/pg_server.py) on a loopback port, and removes it at the end.

What it measures, for each number of threads (each its own connection, as workers are):
1. ``limiter``: SharedLimiter.reserve on 40 keys (platforms x apps x endpoints) at a rate
   that never makes a request wait -> reservations a second: what the limiter itself costs.
2. ``quota``: SharedQuota.charge of 1 unit on 10 projects -> charges a second.
3. ``dispatch``: 10,000 accounts that are all due at once (a cold start: none archived yet),
   one tick deciding and deferring them (fleet/dispatch.py) -> accounts a second, against the
   need: at night ~56 accounts a minute (the default schedule spreads them over three hours),
   at a cold start all of them within the minute before the next tick.
4. ``status``: `archiver fleet status` over those 10,000 accounts (each schedule's fire time
   computed once: fleet/dispatch.py LatestFireTimes), beside computing each account's apart.

The need it compares with (printed with its assumptions): 10,000 accounts a night, each
an incremental run of ~10 API requests plus its share of a full listing (~200 requests
every 7 nights, ~29 a night): ~390,000 requests in an 8-hour night, 14 a second on
average; a worker pool at its platform limits asks far less than the limiter can answer.
A benchmark reports, it is not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ACCOUNTS = 10_000
REQUESTS_INCREMENTAL = 10
REQUESTS_FULL = 200
FULL_EVERY_NIGHTS = 7
NIGHT_SECONDS = 8 * 3600


def need_per_second() -> float:
    per_account = REQUESTS_INCREMENTAL + REQUESTS_FULL / FULL_EVERY_NIGHTS
    return ACCOUNTS * per_account / NIGHT_SECONDS


def measure(url: str, threads: int, seconds: float, action: str) -> float:
    import psycopg

    from archiver.fleet.limiter import LimitKey, Rate, SharedLimiter, SharedQuota

    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    stop = threading.Event()

    def worker(index: int) -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            limiter = SharedLimiter(connection)
            quotas = [SharedQuota(connection, f"project-{n}", 10**12) for n in range(10)]
            keys = [LimitKey(f"platform-{p}", f"app-{a}", f"endpoint-{e}") for p in range(4) for a in range(5) for e in range(2)]
            rate = Rate(per_minute=10**9)
            start.wait()
            n = index
            while not stop.is_set():
                if action == "limiter":
                    limiter.reserve(keys[n % len(keys)], rate)
                else:
                    quotas[n % len(quotas)].charge(1)
                n += 1
                counts[index] += 1

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in pool:
        thread.join(timeout=60)
    return sum(counts) / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="postgresql:// URL of a database to use (its fleet tables are created)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each measure runs")
    parser.add_argument("--threads", default="1,4,16", help="numbers of threads (connections) to try")
    args = parser.parse_args()

    server = None
    url = args.database
    if url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from pg_server import start_server

        folder = tempfile.mkdtemp(prefix="bench-fleet-")
        server = start_server(Path(folder))
        url = server.create_database("bench")
    try:
        import psycopg

        from archiver.fleet import schema

        with psycopg.connect(url, autocommit=True) as connection:
            for part in schema.PARTS:
                connection.execute(part.sql)
        need = need_per_second()
        print(f"need for {ACCOUNTS:,} accounts: {need:.0f} limiter checks/s on average "
              f"({REQUESTS_INCREMENTAL} requests an incremental run + {REQUESTS_FULL} every "
              f"{FULL_EVERY_NIGHTS} nights for a full listing, over an {NIGHT_SECONDS // 3600}-hour night)")
        print(f"{'measure':<10} {'threads':>7} {'per second':>12} {'x need':>8}")
        for threads in [int(t) for t in args.threads.split(",")]:
            for action in ("limiter", "quota"):
                rate = measure(url, threads, args.seconds, action)
                print(f"{action:<10} {threads:>7} {rate:>12,.0f} {rate / need:>8.0f}")
        dispatch_benchmark(url)
        status_benchmark(url)
    finally:
        if server is not None:
            server.stop("immediate")
            shutil.rmtree(server.folder, ignore_errors=True)
    return 0


def dispatch_benchmark(url: str) -> None:
    """One tick over ACCOUNTS accounts, all due: the due decision, then the deferral."""
    import datetime as dt

    from archiver.fleet import db, dispatch, schema
    from archiver.fleet.tasks import make_app
    from archiver.ops.schedule import NIGHT_MINUTES

    with db.connect(url) as connection:
        schema.apply(connection)   # the queue's schema too
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO fleet_accounts (tenant, platform, name) VALUES (%s, 'mastodon', %s) "
                               "ON CONFLICT DO NOTHING",
                               [(f"t{n % 50}", f"bench{n:05d}") for n in range(ACCOUNTS)])
        connection.execute("DELETE FROM procrastinate_jobs WHERE task_name = %s", [dispatch.RUN_TASK])
        now = dt.datetime.now(dt.timezone.utc)
        started = time.perf_counter()
        due = dispatch.due_accounts(connection, now)
        decided = time.perf_counter() - started
        app = make_app(url)
        with app.open():
            started = time.perf_counter()
            result = dispatch.defer_runs(app, due, connection=connection)
            deferred = time.perf_counter() - started
    total = decided + deferred
    print(f"dispatch: {len(due):,} accounts due in one tick: decided in {decided:.1f} s, {len(result.deferred):,} "
          f"deferred in {deferred:.1f} s -> {len(due) / total:,.0f} accounts/s; need: "
          f"{ACCOUNTS / NIGHT_MINUTES:.0f} a minute at night, {ACCOUNTS:,} within 60 s at a cold start "
          f"({'met' if total < 60 else 'NOT met'})")


def status_benchmark(url: str) -> None:
    """`archiver fleet status` over the ACCOUNTS accounts dispatch_benchmark added (a third with
    one agency-wide cron line, the rest on the default nightly one; half in Europe/Berlin), beside
    what computing every account's fire time apart would cost (measured on 500, scaled)."""
    import datetime as dt

    from archiver.fleet import accounts as fleet_accounts
    from archiver.fleet import db
    from archiver.fleet.dispatch import LatestFireTimes
    from archiver.fleet.status import fleet_status
    from archiver.ops.schedule import latest_fire_time

    with db.connect(url) as connection:
        connection.execute("UPDATE fleet_accounts SET schedule = CASE WHEN id % 3 = 0 THEN '30 3 * * *' END, "
                           "timezone = CASE WHEN id % 2 = 0 THEN 'Europe/Berlin' END WHERE name LIKE 'bench%'")
        now = dt.datetime.now(dt.timezone.utc)
        fleet_status(connection, now)   # imports and the database's caches warm
        started = time.perf_counter()
        found = fleet_status(connection, now)
        took = time.perf_counter() - started
        sample = fleet_accounts.load(connection)[:500]
    started = time.perf_counter()
    for account in sample:
        latest_fire_time(account, now, timezone=account.zone())
    apart = (time.perf_counter() - started) / len(sample) * ACCOUNTS
    shared = LatestFireTimes(now)
    for account in sample:
        shared(account)
    accounts = sum(group.accounts for group in found.groups)
    print(f"status: {accounts:,} accounts in {took:.1f} s ({len(shared._found)} fire times computed for "
          f"{len(sample)} accounts; each account's apart would take {apart:.1f} s for {ACCOUNTS:,})")


if __name__ == "__main__":
    sys.exit(main())
