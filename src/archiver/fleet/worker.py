"""`archiver worker`: what a fleet worker does with a job, and how it runs.

A run job (``tasks.run_account``) goes: the ledger first (ledger.start_run: its scheduled
time done already -> nothing to do; another live run -> wait), then a heartbeat thread
that refreshes the run's ledger row every few seconds and turns "no longer ours" (another
worker took the account over: the fence moved) into a cancel, then the run itself (an
``ArchiveRunner``: the account's archive, the same run_export a single user's run is), then
the ledger's end (fenced: a run that lost the account records nothing).

The run stops between pages when the worker is asked to stop (SIGTERM: Procrastinate sets
the job's should_abort) or when it is fenced off; the run is recorded interrupted and the
next tick queues it again, resuming from its checkpoint.

Where the archive lives is the ArchiveRunner's business: ``StoredArchives`` keeps each in
object storage by generation (fleet/storage.py), checked out and checkpointed under the
run's fence; ``LocalArchives`` keeps each in a folder of this machine (one machine, or a
shared disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from archiver.fleet import accounts as fleet_accounts
from archiver.fleet import db, ledger
from archiver.fleet.accounts import FleetAccount
from archiver.fleet.storage import KEEP_GENERATIONS
from archiver.net.client import run_limits

log = logging.getLogger("archiver.fleet.worker")

# Procrastinate's worker heartbeat (procrastinate_workers) and when a silent one's jobs go
# back to the queue (tasks.retry_stalled, every 15 s): a killed worker's job runs again
# within about 40 s.
WORKER_HEARTBEAT_SECONDS = 5.0
STALLED_AFTER_SECONDS = 20.0
CHECKPOINT_SECONDS = 5 * 60   # a long run uploads its archive this often (and at its end)


@dataclass
class RunOutcome:
    status: str                 # ok, failed, interrupted (a run_export result's, 'skipped' counts as ok)
    message: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


class ArchiveRunner(Protocol):
    def __call__(self, account: FleetAccount, ticket: ledger.RunTicket, *, full: bool,
                 cancel: Callable[[], bool]) -> RunOutcome: ...


class LocalArchives:
    """Each account's archive in ``folder``/<tenant>/<platform>/<name> on this machine.
    Secrets: ``secrets`` (one store), or ``secrets_for(tenant)``."""

    def __init__(self, folder: Path, *, secrets=None, secrets_for: Callable[[str], Any] | None = None, transport=None):
        self.folder = Path(folder)
        self.secrets_for = secrets_for or (lambda tenant: secrets)
        self.transport = transport     # tests: the simulators' in-process transport

    def archive_folder(self, account: FleetAccount) -> Path:
        return self.folder / account.tenant / account.platform / account.name

    def __call__(self, account: FleetAccount, ticket: ledger.RunTicket, *, full: bool,
                 cancel: Callable[[], bool]) -> RunOutcome:
        return _run_in_folder(account, self.archive_folder(account), self.secrets_for(account.tenant), full=full,
                              cancel=cancel, transport=self.transport)


class StoredArchives:
    """Each account's archive in object storage by generation (fleet/storage.py): checked
    out for the run (this worker's cached copy when it is current), checkpointed every
    ``checkpoint_seconds`` during the run (after a page) and at its end — interrupted or
    failed runs too, so that whoever runs the account next resumes from the pages written;
    a run that wrote nothing uploads nothing.
    A checkpoint refused because another run holds the account now (FencedOut) stops the
    run at its next page; nothing it did after its last checkpoint counts.

    ``secrets_for(tenant)``: the tenant's SecretStore (fleet/secrets.py in production)."""

    def __init__(self, database_url: str, objects, work_dir: Path, *, secrets_for: Callable[[str], Any],
                 transport=None, checkpoint_seconds: float = CHECKPOINT_SECONDS):
        self.database_url, self.objects, self.work_dir = database_url, objects, Path(work_dir)
        self.secrets_for, self.transport, self.checkpoint_seconds = secrets_for, transport, checkpoint_seconds

    def __call__(self, account: FleetAccount, ticket: ledger.RunTicket, *, full: bool,
                 cancel: Callable[[], bool]) -> RunOutcome:
        import time

        from archiver.fleet.storage import ArchiveStore, FencedOut

        with db.connect(self.database_url) as connection:
            store = ArchiveStore(connection, self.objects, self.work_dir / "cache", worker=worker_name())
            copy = store.checkout(account.id, self.work_dir / "runs" / str(account.id), fence=ticket.fence)
            fenced = threading.Event()
            last = [time.monotonic()]
            pages = [0]   # committed by this run

            def checkpoint() -> None:
                try:
                    copy.checkpoint()
                except FencedOut as error:
                    log.warning("%s: %s", account.label(), error)
                    fenced.set()

            def after_page(line: str) -> None:
                pages[0] += 1
                log.info("%s: %s", account.label(), line)
                if time.monotonic() - last[0] >= self.checkpoint_seconds and not fenced.is_set():
                    checkpoint()
                    last[0] = time.monotonic()

            outcome = _run_in_folder(account, copy.folder, self.secrets_for(account.tenant), full=full,
                                     cancel=lambda: fenced.is_set() or cancel(), transport=self.transport,
                                     progress=after_page, media_elsewhere=copy.has_media)
            # A run that kept nothing (stopped or failed before its first page: the shared limit
            # full, a token refused) uploads no generation: the current one holds all there is.
            # Its row in the archive's runs table goes with the working copy; the ledger has it.
            if not fenced.is_set() and (pages[0] or any(outcome.counts.values())):
                checkpoint()
            if not fenced.is_set():   # all of it is in the store: this disk does not keep every account's media
                shutil.rmtree(copy.folder, ignore_errors=True)
            if fenced.is_set():
                return RunOutcome("interrupted", "another run of the account started; this one's work after its "
                                  "last checkpoint does not count", outcome.counts)
            return outcome


def _run_in_folder(account: FleetAccount, folder: Path, secrets, *, full: bool, cancel: Callable[[], bool],
                   transport=None, progress: Callable[[str], None] | None = None,
                   media_elsewhere: Callable[[str], bool] | None = None) -> RunOutcome:
    """One account's API run into the archive in ``folder``: the same run_export a single
    user's run is, with the daemon's rule for when it is a full listing."""
    from archiver.archive import Archive
    from archiver.config import Config
    from archiver.connector import lists_everything
    from archiver.ops.schedule import full_listing_due
    from archiver.sync.jobs import Workspace, run_export
    from archiver.sync.runner import mark_dead_runs

    config = account.config()
    workspace = Workspace(Archive(folder, media_elsewhere=media_elsewhere), Config(path=None, accounts=[config]),
                          secrets)
    try:
        workspace.archive.create()
        with workspace.archive.writing():
            # The ledger gave this worker the account: a run the archive shows running is a
            # dead worker's, whatever process has its pid on this machine.
            mark_dead_runs(workspace.archive.db, trust_pids=False)
        if not full and lists_everything(account.platform):
            full, why = full_listing_due(workspace.archive.db, config)
            if full:
                log.info("%s: full listing: %s", account.label(), why)
        result = run_export(workspace, config, full=full, cancel=cancel, transport=transport,
                            progress=progress or (lambda line: log.info("%s: %s", account.label(), line)))
    finally:
        workspace.archive.close()
    status = "ok" if result["status"] == "skipped" else result["status"]
    return RunOutcome(status, result.get("message"), result.get("counts") or {})


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class FleetServices:
    """What the fleet's tasks need, handed to them by the worker (Procrastinate's
    additional_context["fleet"]): the database and the archive runner. Tests set the clock."""

    database_url: str
    run_archive: ArchiveRunner
    name: str = field(default_factory=worker_name)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
    heartbeat_seconds: float = ledger.HEARTBEAT_SECONDS
    stale_seconds: float = ledger.STALE_SECONDS
    stalled_after_seconds: float = STALLED_AFTER_SECONDS
    # Each run's API requests keep the fleet's shared limits (fleet/limiter.py FleetRunLimits,
    # installed with net.client.run_limits around the run); False: each run paces itself.
    shared_limits: bool = True
    # The daily retention job (tasks.run_retention): generations kept per account; 0: none pruned.
    keep_generations: int = KEEP_GENERATIONS
    # Set when the worker is asked to stop (SIGTERM/SIGINT): every running run stops at its
    # next page. The worker's own flag, not Procrastinate's abort: a worker that stops because
    # its queue is empty (wait=False) lets its runs finish (see _supervise).
    stopping: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    # -- one account's run -----------------------------------------------------------------
    def run_job(self, account_id: int, slot: dt.datetime, *, full: bool, job_id: int | None,
                should_abort: Callable[[], bool] = lambda: False) -> str:
        """Run the account for its scheduled time ``slot``, once. Returns what happened
        (for the log). Raises ledger.AccountBusy, db.DatabaseUnavailable and ledger.TryLater
        (the task tries again later) and RunFailed. ``should_abort``: Procrastinate's (an
        abort request, or its shutdown); the worker's stop request counts too."""
        def stop_asked() -> bool:
            return self.stopping.is_set() or should_abort()

        try:
            return self._run_job(account_id, slot, full=full, job_id=job_id, should_abort=stop_asked)
        except Exception as error:
            if db.database_gone(error) and not isinstance(error, db.DatabaseUnavailable):
                raise db.DatabaseUnavailable(f"the fleet database went away: {error}") from error
            raise

    def _run_job(self, account_id: int, slot: dt.datetime, *, full: bool, job_id: int | None,
                 should_abort: Callable[[], bool]) -> str:
        with db.connect(self.database_url) as connection:
            account = fleet_accounts.get(connection, account_id)
            if account is None or not account.enabled:
                log.info("account %s: removed or disabled; nothing to do", account_id)
                return "gone"
            try:
                ticket = ledger.start_run(connection, account.id, slot, job_id=job_id, worker=self.name, full=full,
                                          stale_seconds=self.stale_seconds)
            except ledger.SlotDone as done:
                log.info("%s: %s; nothing to do (a duplicate delivery)", account.label(), done)
                return "done already"
            except ledger.SlotNotDue as waiting:   # the tick queues it again when it is due
                log.info("%s: %s; nothing to do now", account.label(), waiting)
                return "not due"
        log.info("%s: run %s starts for %s (fence %d) on %s", account.label(), ticket.run_id,
                 slot.isoformat(), ticket.fence, self.name)
        limits = self.run_limits(account, ticket)   # connects when the run makes its first API client
        beat = _Heartbeat(self.database_url, ticket, self.heartbeat_seconds)
        beat.start()
        try:
            with run_limits(limits):
                outcome = self.run_archive(account, ticket, full=full,
                                           cancel=lambda: beat.lost.is_set() or should_abort())
        except Exception as error:
            if db.database_gone(error):   # not the account's failure: the run resumes on the job's retry
                log.warning("%s: run %s cut short: the fleet database went away (%s)", account.label(),
                            ticket.run_id, error)
                outcome = RunOutcome("interrupted", "the fleet database went away; the run resumes from its checkpoint")
            else:   # a bug in a run: the ledger says so, the worker goes on
                log.exception("%s: run %s failed", account.label(), ticket.run_id)
                outcome = RunOutcome("failed", f"{type(error).__name__}: {error}")
        finally:
            beat.stop()
            if limits is not None:
                limits.close()
        if beat.lost.is_set():
            log.warning("%s: run %s was taken over by another worker (fenced off); nothing recorded",
                        account.label(), ticket.run_id)
            return "fenced"
        with db.connect(self.database_url) as connection:
            if not ledger.finish_run(connection, ticket, outcome.status, message=outcome.message, counts=outcome.counts):
                log.warning("%s: run %s was taken over by another worker (fenced off); nothing recorded",
                            account.label(), ticket.run_id)
                return "fenced"
        log.info("%s: run %s %s%s", account.label(), ticket.run_id, outcome.status,
                 f": {outcome.message}" if outcome.message else "")
        if outcome.status == "failed":
            raise RunFailed(f"{account.label()}: {outcome.message}")
        if outcome.status == "interrupted" and not should_abort():
            refused = limits.limiter.refused if limits is not None else None
            if refused is not None:
                # The shared limit's next slot is further away than a run waits: the job tries
                # again when the slot is near, not every few seconds (each try is a checkout).
                raise ledger.TryLater(f"{account.label()}: {outcome.message}", refused.wait)
            # Cut short by the database, not by a stop: the job tries again (retry strategy).
            raise db.DatabaseUnavailable(f"{account.label()}: {outcome.message}")
        return outcome.status

    def run_limits(self, account: FleetAccount, ticket: ledger.RunTicket):
        """The run's shared limits (None when ``shared_limits`` is off): the platform's rate
        for the account's app (option ``app``: accounts of one app registration share a
        limit; "default" otherwise), per account where the platform counts per user."""
        if not self.shared_limits:
            return None
        from archiver.fleet.limiter import FleetRunLimits

        return FleetRunLimits(self.database_url, account.platform, app=str(account.options.get("app") or "default"),
                              user=f"account-{account.id}", fence=(account.id, ticket.fence),
                              cancel=self.stopping.is_set)

    # -- the tick ------------------------------------------------------------------------------
    def tick(self, app, now: dt.datetime) -> str:
        from archiver.fleet import dispatch

        with db.connect(self.database_url) as connection:
            return dispatch.enqueue_due(app, connection, now).summary()


class RunFailed(Exception):
    """A run ended failed (recorded in the ledger); the job shows failed in the queue."""


class _Heartbeat:
    """A thread refreshing the run's ledger row; sets ``lost`` when the run is no longer
    ours (fenced). A database that does not answer is tried again: no one can take the
    account over while it is down either."""

    def __init__(self, url: str, ticket: ledger.RunTicket, every: float):
        self.url, self.ticket, self.every = url, ticket, every
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{ticket.run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _beat(self) -> None:
        connection = None
        try:
            while not self._stop.wait(self.every):
                try:
                    connection = connection or db.connect(self.url)
                    if not ledger.heartbeat(connection, self.ticket):
                        self.lost.set()
                        return
                except Exception as error:   # the database restarting: keep trying
                    log.warning("run %s: heartbeat failed (%s); trying again", self.ticket.run_id, error)
                    if connection is not None:
                        connection.close()
                    connection = None
        finally:   # stopped or fenced off: a worker runs thousands of runs, each with its heartbeat
            if connection is not None:
                connection.close()


def run_worker(services: FleetServices, *, queues: list[str] | None = None, concurrency: int = 1,
               wait: bool = True, install_signal_handlers: bool = True, **options: Any) -> None:
    """`archiver worker`: take jobs until stopped. SIGTERM/SIGINT: running runs stop at their
    next page boundary (recorded interrupted) and the worker exits. The database going away
    (a restart, a failover) does not end it: Procrastinate's worker stops then, and this
    starts it again, waiting a little longer each time (up to RESTART_MAX_SECONDS); the jobs
    it held come back through the stalled-jobs check. ``wait=False``: until the queue is empty
    (the runs under way then finish first)."""
    asyncio.run(_supervise(services, queues=queues, concurrency=concurrency, wait=wait,
                           install_signal_handlers=install_signal_handlers, options=options))


RESTART_MAX_SECONDS = 30


def _worker_plans(queues: list[str] | None, concurrency: int, name: str) -> list[dict[str, Any]]:
    """The Procrastinate workers of one `archiver worker`: a worker taking account runs and the
    control queue gets a worker of its own for the control jobs (the tick, the stalled-jobs
    check, retention), so that they never wait behind a backlog of runs holding every slot."""
    from archiver.fleet.dispatch import ACCOUNT_QUEUE
    from archiver.fleet.tasks import CONTROL_QUEUE

    runs = [ACCOUNT_QUEUE] if queues is None else [queue for queue in queues if queue != CONTROL_QUEUE]
    if not runs or (queues is not None and CONTROL_QUEUE not in queues):
        return [{"queues": queues, "concurrency": concurrency, "name": name}]
    return [{"queues": runs, "concurrency": concurrency, "name": name},
            {"queues": [CONTROL_QUEUE], "concurrency": 1, "name": f"{name}/control"}]


async def _supervise(services: FleetServices, *, queues, concurrency: int, wait: bool, install_signal_handlers: bool,
                     options: dict[str, Any]) -> None:
    from procrastinate.exceptions import ConnectorException

    from archiver.fleet.tasks import make_app

    stopping = asyncio.Event()
    services.stopping.clear()

    def request_stop() -> None:   # runs stop at their next page (FleetServices.stopping), then the worker
        services.stopping.set()
        stopping.set()

    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if install_signal_handlers else ()
    for number in signals:
        loop.add_signal_handler(number, request_stop)
    settings = dict(queues=queues, concurrency=concurrency, wait=wait, name=services.name,
                    additional_context={"fleet": services}, install_signal_handlers=False,
                    update_heartbeat_interval=options.pop("update_heartbeat_interval", WORKER_HEARTBEAT_SECONDS),
                    stalled_worker_timeout=options.pop("stalled_worker_timeout", services.stalled_after_seconds),
                    # When Procrastinate's worker stops by itself (the database went away), runs
                    # are told at once (should_abort) and stop at their next page; when it stops
                    # because the queue is empty (wait=False), its running runs finish first.
                    # A stop request tells the runs itself (request_stop).
                    shutdown_graceful_timeout=options.pop("shutdown_graceful_timeout", 0 if wait else None),
                    **options)
    delay = 1.0
    try:
        while True:
            failure: BaseException | None = None
            try:
                app = make_app(services.database_url)
                async with app.open_async():
                    workers = {asyncio.create_task(app.run_worker_async(**{**settings, **plan}))
                               for plan in _worker_plans(queues, concurrency, services.name)}
                    stop = asyncio.create_task(stopping.wait())
                    pending = set(workers)
                    while pending and not stopping.is_set():
                        done, pending = await asyncio.wait(pending | {stop}, return_when=asyncio.FIRST_COMPLETED)
                        pending.discard(stop)
                        if any(not task.cancelled() and task.exception() for task in done if task is not stop):
                            break   # one failed (the database went away): all start again
                    if stopping.is_set() or pending:
                        if stopping.is_set():
                            log.info("stopping: running accounts stop at their next page")
                        for task in workers:
                            task.cancel()
                        await asyncio.gather(*workers, return_exceptions=True)
                        if stopping.is_set():
                            return
                    stop.cancel()
                    for task in workers:
                        if not task.cancelled() and task.exception():
                            raise task.exception()  # type: ignore[misc]   # its failure, if it failed
            except (ConnectorException, OSError) as error:
                failure = error
            except Exception as error:
                if type(error).__module__.split(".")[0] not in ("psycopg", "psycopg_pool"):
                    raise
                failure = error
            if stopping.is_set() or (failure is None and not wait):
                return
            log.warning("the worker stopped (%s); starting again in %.0f s", failure or "the database went away", delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            delay = min(delay * 2, RESTART_MAX_SECONDS)
    finally:
        for number in signals:
            loop.remove_signal_handler(number)
