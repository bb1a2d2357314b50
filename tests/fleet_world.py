"""Helpers for the fleet tests (tests/test_fleet_*.py).

- ``ready_database(url, accounts=N)``: the fleet's schema applied, N accounts added.
- ``PagedRuns``: an archive runner whose runs are ``pages`` pages; before each page it
  checks cancel, after each it writes its checkpoint to PostgreSQL only while its run still
  holds the account (a fenced write, as storage does with the archive's pointer), so a
  taken-over run resumes from the last page written. It logs each run (start, end, worker,
  first page) in ``test_run_log`` for overlap checks. ``hold_at_page``: the run stops there
  until the test releases it (``release``) — a run caught mid-way, without timing;
  ``hold_from_run``: only from this process's n-th run on (a worker that did some work first).
- ``WorkerProcess``: `python tests/fleet_world.py URL …` — a real worker process running
  PagedRuns, to kill, freeze (SIGSTOP) or stop (SIGTERM); its log in a file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_TABLES = """
    CREATE TABLE IF NOT EXISTS test_pages (account_id bigint PRIMARY KEY, pages_done int NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS test_run_log (run_id bigint PRIMARY KEY, account_id bigint, worker text,
        first_page int, started timestamptz, ended timestamptz, status text);
    CREATE TABLE IF NOT EXISTS test_gate (id int PRIMARY KEY, open boolean NOT NULL);
"""


def ready_database(url: str, *, accounts: int = 0, schedule: str | None = "0 3 * * *", tenant: str = "t",
                   platform: str = "mastodon") -> list[int]:
    """Apply the fleet's schema (+ the test tables); add ``accounts`` accounts; their ids."""
    from archiver.fleet import db, schema

    with db.connect(url) as connection:
        schema.apply(connection)
        connection.execute(TEST_TABLES)
        connection.execute("INSERT INTO test_gate VALUES (1, false) ON CONFLICT DO NOTHING")
        ids = []
        with connection.transaction():
            for n in range(accounts):
                ids.append(connection.execute(
                    "INSERT INTO fleet_accounts (tenant, platform, name, schedule) VALUES (%s, %s, %s, %s) RETURNING id",
                    [tenant, platform, f"a{n:05d}", schedule]).fetchone()[0])
    return ids


def release(url: str) -> None:
    from archiver.fleet import db

    with db.connect(url) as connection:
        connection.execute("UPDATE test_gate SET open = true")


def wait_until(condition, timeout: float, describe) -> None:
    """Poll ``condition`` (a bounded wait for something another process does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(describe() if callable(describe) else describe)


def fetch(url: str, sql: str, params=()) -> list[tuple]:
    from archiver.fleet import db

    with db.connect(url) as connection:
        return connection.execute(sql, params).fetchall()


class PagedRuns:
    def __init__(self, url: str, *, pages: int = 3, page_seconds: float = 0.0, hold_at_page: int | None = None,
                 hold_from_run: int = 1, worker: str = "test"):
        self.url, self.pages, self.page_seconds = url, pages, page_seconds
        self.hold_at_page, self.hold_from_run, self.worker = hold_at_page, hold_from_run, worker
        self.runs = 0

    def __call__(self, account, ticket, *, full, cancel):
        from archiver.fleet import db
        from archiver.fleet.worker import RunOutcome

        self.runs += 1
        hold_at_page = self.hold_at_page if self.runs >= self.hold_from_run else None
        with db.connect(self.url) as connection:
            connection.execute("INSERT INTO test_pages (account_id) VALUES (%s) ON CONFLICT DO NOTHING", [account.id])
            done = connection.execute("SELECT pages_done FROM test_pages WHERE account_id = %s",
                                      [account.id]).fetchone()[0]
            connection.execute("INSERT INTO test_run_log VALUES (%s, %s, %s, %s, clock_timestamp(), NULL, 'running')",
                               [ticket.run_id, account.id, self.worker, done])

            def end(status: str):
                connection.execute("UPDATE test_run_log SET ended = clock_timestamp(), status = %s WHERE run_id = %s",
                                   [status, ticket.run_id])
                return RunOutcome(status, None, {"pages": done})

            for page in range(done, self.pages):
                if page == hold_at_page:
                    while not connection.execute("SELECT open FROM test_gate").fetchone()[0]:
                        if cancel():
                            return end("interrupted")
                        time.sleep(0.05)
                if cancel():
                    return end("interrupted")
                if self.page_seconds:
                    time.sleep(self.page_seconds)   # the page's work (not a wait for something)
                written = connection.execute(
                    "UPDATE test_pages SET pages_done = %s WHERE account_id = %s "
                    "AND (SELECT fence FROM fleet_accounts WHERE id = %s) = %s",
                    [page + 1, account.id, account.id, ticket.fence]).rowcount
                if not written:   # fenced off: another worker holds the account now
                    return end("interrupted")
                done = page + 1
            connection.execute("UPDATE test_pages SET pages_done = 0 WHERE account_id = %s", [account.id])
            return end("ok")


def services(url: str, runner, **settings):
    from archiver.fleet.worker import FleetServices

    return FleetServices(url, runner, **settings)


class WorkerProcess:
    """A worker in its own process (see the module's note); ``settings``: FleetServices'."""

    def __init__(self, folder: Path, url: str, name: str, *, runner: dict | None = None, settings: dict | None = None,
                 worker: dict | None = None, no_tick: bool = False):
        self.log_path = folder / f"{name}.log"
        spec = {"url": url, "name": name, "runner": runner or {}, "settings": settings or {}, "worker": worker or {},
                "no_tick": no_tick}
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, str(HERE / "fleet_world.py"), json.dumps(spec)],
                                            stdout=log, stderr=subprocess.STDOUT, env=env)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(30)


def _worker_main(spec: dict) -> None:
    import logging

    from archiver.fleet.worker import run_worker

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {spec['name']} %(name)s: %(message)s")
    runner = PagedRuns(spec["url"], worker=spec["name"], **spec["runner"])
    fleet = services(spec["url"], runner, name=spec["name"], **spec["settings"])
    if spec.get("no_tick"):   # a test's fixed scheduled time: the wall clock's tick stays out
        fleet.tick = lambda app, now: "tick off (test)"  # type: ignore[method-assign]
    run_worker(fleet, **{"queues": ["accounts"], **spec["worker"]})


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    _worker_main(json.loads(sys.argv[1]))
