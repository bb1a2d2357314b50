"""`archiver daemon`: keeps every configured account archived, unattended, for months.

The moving parts, in the order a newcomer meets them:

- **Schedules** (schedule.py). Each account runs on its ``schedule`` (cron, local time). Without one it
  runs nightly at a minute between 02:00 and 05:00 picked from a hash of the account id —
  the same minute after every restart, a different one per account — plus a few minutes of
  jitter, so that many users do not hit a platform at the same second. A six-field cron
  whose first field is seconds ("*/4 * * * * *") is accepted too (tests, impatient users).
- **Catch-up.** APScheduler's memory job store forgets a fire time missed while the daemon
  was down (see DESIGN §6), so at start the archive's own ``runs`` table decides: an
  account whose schedule fired since its last successful export runs once, soon.
- **Never too much at once.** One account never runs twice at the same time (nor beside an
  `archiver export` or import of it in another process: the account's lock, locks.py, makes
  such a run wait ``BUSY_RETRY_SECONDS`` without counting as a failure); accounts of one
  platform run one after the other (they may share an app token and its rate limit); at
  most ``[daemon] max_parallel`` runs at once; one account's failure is logged and recorded
  in ``runs`` and never stops another's.
- **One daemon per archive.** ``daemon.lock`` in the archive folder, held with flock and
  holding the pid, so a second daemon can name the first.
- **Signals.** SIGTERM / SIGINT set the CancelFlag every run watches: runs stop between
  pages and are recorded as interrupted (the next run resumes from the checkpoint), and the
  daemon exits 0 within ``[daemon] stop_timeout``. SIGHUP re-reads the config; a broken
  config is logged and the old one kept.
- **Deletions found without a person.** A run is a full listing (the only kind that finds
  deleted posts) when the account's last one finished ``full_every_days`` ago or more, or
  never did (``full_listing_due``, schedule.py); otherwise incremental.
- **Side jobs.** Every minute ``archiver.ops.alerts.periodic(ws)``, after each run
  ``archiver.ops.alerts.after_run(ws, account, result)``, and every ``[inbox] interval``
  seconds ``archiver.ops.inbox.scan_inbox(ws, state)``.

Scheduler jobs name their function as ``"archiver.ops.daemon:run_account_job"`` strings (the
APScheduler 3 convention that keeps jobs serializable); those functions reach the running
:class:`Daemon` through the module-level ``_current`` — there is one daemon per process.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from archiver.config import AccountConfig, Config, ConfigError
from archiver.ops.schedule import (
    DEFAULT_JITTER_SECONDS,
    account_trigger,
    default_schedule,
    full_listing_due,
    local_now,
    needs_catch_up,
    next_run_time,
    show_moment,
)

if TYPE_CHECKING:   # imported when the daemon starts: `archiver --help` stays fast
    from apscheduler.schedulers.background import BackgroundScheduler

    from archiver.ops.inbox import InboxState

log = logging.getLogger("archiver.ops.daemon")

LOCK_NAME = "daemon.lock"
ALERTS_EVERY_SECONDS = 60
CATCH_UP_DELAY_SECONDS = 1
BUSY_RETRY_SECONDS = 5 * 60   # an account another process is archiving is tried again after this
LOG_FILE_BYTES = 5 * 1024 * 1024
LOG_FILE_BACKUPS = 5

# The module-level job functions below reach the running daemon through this.
_current: "Daemon | None" = None


# --------------------------------------------------------------------------- the lock


class DaemonAlreadyRunning(Exception):
    def __init__(self, pid: int | None, path: Path):
        self.pid, self.path = pid, path
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"another archiver daemon ({who}) is already running for this archive "
                         f"(lock file {path}); stop it first" + (f", e.g. `kill {pid}`" if pid else "") + ".")


class DaemonLock:
    """``<archive>/daemon.lock``: an flock held for the daemon's life, with its pid inside.

    flock dies with the process, so a crashed daemon never leaves a stale lock; the file
    itself stays (deleting it would let two daemons lock two different files)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "DaemonLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip()
            os.close(fd)
            raise DaemonAlreadyRunning(int(holder) if holder.isdigit() else None, self.path) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the flock
            self._fd = None


# --------------------------------------------------------------------------- logging


def setup_daemon_logging(folder: Path, log_file: str, *, stream=None) -> None:
    """A rotating log file in the archive folder and plain lines on stdout (journald adds
    its own timestamps, but a terminal or a pipe wants them: keep them short)."""
    from archiver.net.client import install_log_scrubbing

    install_log_scrubbing()  # every record of every logger, before any handler sees it
    root = logging.getLogger("archiver")
    for handler in list(root.handlers):  # a reload must not stack handlers
        if getattr(handler, "_archiver_daemon", False):
            root.removeHandler(handler)
            handler.close()
    path = Path(folder) / log_file
    path.parent.mkdir(parents=True, exist_ok=True)
    from archiver.private_files import PrivateRotatingFileHandler

    # 0600 from creation, rotated files too: the log names accounts, posts and people.
    file_handler = PrivateRotatingFileHandler(path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS,
                                              encoding="utf-8")
    file_handler.narrow_backups()
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    stdout_handler = logging.StreamHandler(stream or sys.stdout)
    stdout_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handlers: tuple[logging.Handler, ...] = (file_handler, stdout_handler)
    for handler in handlers:
        handler._archiver_daemon = True  # type: ignore[attr-defined]  # our mark, to find our handlers again
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    install_log_scrubbing(root)
    # APScheduler's own warnings (a job that raised, a misfire) belong in the same log.
    scheduler_log = logging.getLogger("apscheduler")
    scheduler_log.setLevel(logging.WARNING)
    scheduler_log.handlers = list(root.handlers)
    scheduler_log.propagate = False
    install_log_scrubbing(scheduler_log)


# --------------------------------------------------------------------------- the daemon


class Daemon:
    """The scheduler, its locks and the signal-driven main loop of `archiver daemon`."""

    def __init__(self, ws, *, config_path: Path | None = None):
        from archiver.config import CONFIG_NAME
        from archiver.sync.runner import CancelFlag

        self.ws = ws
        self.folder: Path = ws.archive.folder
        self.config_path = config_path or ws.config.path or self.folder / CONFIG_NAME
        self.cancel = CancelFlag()
        self.scheduler: BackgroundScheduler | None = None   # made when the daemon starts (run)
        self.inbox_state: InboxState | None = None
        self._guard = threading.Lock()                        # protects the dicts below
        self._running: dict[str, threading.Lock] = {}         # account id -> held while it runs
        self._platforms: dict[str, threading.Lock] = {}       # platform -> one run at a time
        self._max_parallel = max(1, ws.config.daemon.max_parallel)
        self._slots = threading.BoundedSemaphore(self._max_parallel)    # at most max_parallel runs at once
        self._active_runs = 0
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._stop_deadline: float | None = None
        # What the runs see of the world; tests set a fixed clock and an in-process transport.
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
        self.transport = None

    @property
    def config(self) -> Config:
        return self.ws.config

    # -- the scheduler -------------------------------------------------------------------
    def _make_scheduler(self) -> BackgroundScheduler:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        # Threads, not processes: a run mostly waits on the network. More threads than
        # max_parallel, because a run waiting for its platform's turn holds one.
        workers = max(8, len(self.config.accounts) + 3)
        return BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(workers)},
            # Late is better than never (a laptop waking up): run once, however late.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def _scheduler(self) -> BackgroundScheduler:
        """The scheduler, which run() makes before it schedules anything."""
        assert self.scheduler is not None, "the daemon schedules only once it runs"
        return self.scheduler

    def _schedule_accounts(self, *, catch_up_for: set[str]) -> None:
        """(Re)create every account's job; the accounts in ``catch_up_for`` are checked
        against the runs table and run once, soon, if they missed a run."""
        from apscheduler.triggers.date import DateTrigger

        from archiver.connector import api_off

        wanted = set()
        for account in self.config.accounts:
            if not account.enabled:
                log.info("%s: disabled in the config; not scheduled", account.account_id)
                continue
            off = api_off(account.platform, account.options)
            if off:
                log.info("%s: API runs off (%s); not scheduled, its exports are still imported from the inbox",
                         account.account_id, off)
                continue
            job_id = f"export:{account.account_id}"
            wanted.add(job_id)
            self._scheduler().add_job("archiver.ops.daemon:run_account_job", account_trigger(account),
                                   args=[account.account_id], id=job_id, name=job_id, replace_existing=True)
            log.info("%s: schedule %s; next run %s", account.account_id,
                     account.schedule or f"nightly ({default_schedule(account)} + up to "
                                         f"{DEFAULT_JITTER_SECONDS // 60} min jitter)",
                     show_moment(next_run_time(account)))
            if account.account_id not in catch_up_for:
                continue
            due, why = needs_catch_up(self.ws.archive.db, account)
            if due:
                log.info("%s: catching up now: %s", account.account_id, why)
                soon = local_now() + dt.timedelta(seconds=CATCH_UP_DELAY_SECONDS)
                self._scheduler().add_job("archiver.ops.daemon:run_account_job", DateTrigger(soon),
                                       args=[account.account_id], id=f"catch-up:{account.account_id}",
                                       name=f"catch-up:{account.account_id}", replace_existing=True)
            else:
                log.info("%s: no catch-up needed: %s", account.account_id, why)
        for job in self._scheduler().get_jobs():  # accounts removed from the config
            if job.id.startswith("export:") and job.id not in wanted:
                log.info("%s: no longer in the config; unscheduled", job.id.split(":", 1)[1])
                job.remove()

    def _schedule_side_jobs(self) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        self._scheduler().add_job("archiver.ops.daemon:run_alerts_job", IntervalTrigger(seconds=ALERTS_EVERY_SECONDS),
                               id="alerts", name="alerts", replace_existing=True)
        inbox = self.config.inbox
        if inbox is None:
            if self._scheduler().get_job("inbox"):
                self._scheduler().remove_job("inbox")
            return
        if self.inbox_state is None:
            from archiver.ops.inbox import InboxState

            self.inbox_state = InboxState()
        self._scheduler().add_job("archiver.ops.daemon:run_inbox_job", IntervalTrigger(seconds=inbox.interval),
                               id="inbox", name="inbox", replace_existing=True,
                               next_run_time=local_now() + dt.timedelta(seconds=1))
        log.info("watching the inbox %s every %d s", inbox.path, inbox.interval)

    # -- one account's run -----------------------------------------------------------------
    def _job_workspace(self, *, with_secrets: bool = False):
        """A Workspace for a worker thread: its own SQLite connection (connections must not
        cross threads), the daemon's config and its one secret store (opened by the first
        run that needs it, so a daemon that only watches the inbox needs no keyring)."""
        from archiver.archive import Archive
        from archiver.sync.jobs import Workspace

        with self._guard:
            secrets = self.ws.secrets if with_secrets else self.ws._secrets
            return Workspace(Archive(self.folder), self.config, secrets)

    def run_account(self, account_id: str) -> dict | None:
        """Run one account's export now, unless it is running already; waits for its
        platform's turn and for a free slot. Never raises: a failure is logged (and, from
        inside the run, recorded in ``runs``)."""
        account = next((a for a in self.config.accounts if a.account_id == account_id and a.enabled), None)
        if account is None:
            log.info("%s: no longer configured; skipped", account_id)
            return None
        with self._guard:
            running = self._running.setdefault(account_id, threading.Lock())
            platform_turn = self._platforms.setdefault(account.platform, threading.Lock())
            slots = self._slots
        if not running.acquire(blocking=False):
            log.info("%s: still running from before; this run is skipped", account_id)
            return None
        try:
            if not self._wait_for(platform_turn, f"{account_id}: waiting for another {account.platform} account"):
                return None
            try:
                if not self._wait_for(slots, f"{account_id}: waiting for a free slot (max_parallel)"):
                    return None
                try:
                    return self._export(account)
                finally:
                    slots.release()
            finally:
                platform_turn.release()
        finally:
            running.release()

    def _wait_for(self, lock, message: str) -> bool:
        """Acquire ``lock``, giving up when the daemon is stopping."""
        if lock.acquire(blocking=False):
            return True
        log.info("%s", message)
        while not self.cancel():
            if lock.acquire(timeout=0.5):
                return True
        return False

    def _export(self, account: AccountConfig) -> dict | None:
        from archiver.connector import lists_everything
        from archiver.sync.jobs import run_export
        from archiver.sync.locks import AccountBusy

        if self.cancel():
            return None
        with self._guard:
            self._active_runs += 1
        ws = None
        result = None
        try:
            ws = self._job_workspace(with_secrets=True)
            if lists_everything(account.platform):
                full, why = full_listing_due(ws.archive.db, account, self.clock())
            else:
                full, why = False, "its API cannot list everything (no full listings on this platform)"
            log.info("%s: run starts (%s: %s)", account.account_id, "full listing" if full else "incremental", why)
            result = run_export(ws, account, full=full, cancel=self.cancel, transport=self.transport,
                                progress=lambda line: log.info("%s: %s", account.account_id, line))
            counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(result["counts"].items()) if v)
            level = logging.INFO if result["status"] in ("ok", "interrupted") else logging.ERROR
            log.log(level, "%s: run #%s %s — %s%s", account.account_id, result["run_id"], result["status"],
                    counts or "nothing new", f"; {result['message']}" if result.get("message") else "")
        except AccountBusy as busy:
            # Someone else (an `archiver export`, an import) is archiving it right now: not a
            # failure. Deferred, not skipped: it runs again soon after.
            log.info("%s: %s; deferred, tried again in %d s", account.account_id, busy.holder.describe()
                     if busy.holder else busy, BUSY_RETRY_SECONDS)
            self._retry_soon(account)
            if ws is not None:
                ws.archive.close()
            return None
        except Exception as error:  # one account's failure never stops another's
            log.exception("%s: the run could not start", account.account_id)
            result = {"run_id": None, "status": "failed", "message": f"{type(error).__name__}: {error}",
                      "counts": {}, "errors": []}
        finally:
            with self._guard:
                self._active_runs -= 1
            self._wake.set()
        from archiver.ops.alerts import after_run

        if ws is not None:
            try:
                after_run(ws, account, result)
            except Exception:  # an alert problem must not stop the daemon
                log.exception("%s: checking alerts after the run failed", account.account_id)
        if ws is not None:
            ws.archive.close()
        return result

    def _retry_soon(self, account: AccountConfig) -> None:
        from apscheduler.triggers.date import DateTrigger

        if self.scheduler is None or self.cancel():
            return
        soon = local_now() + dt.timedelta(seconds=BUSY_RETRY_SECONDS)
        self.scheduler.add_job("archiver.ops.daemon:run_account_job", DateTrigger(soon), args=[account.account_id],
                               id=f"busy:{account.account_id}", name=f"busy:{account.account_id}",
                               replace_existing=True)

    # -- side jobs -----------------------------------------------------------------------
    def run_alerts(self) -> None:
        from archiver.ops.alerts import periodic

        if self.cancel():
            return
        ws = self._job_workspace()
        try:
            periodic(ws)
        except Exception:  # logged; the daemon goes on
            log.exception("the periodic alert check failed")
        finally:
            ws.archive.close()

    def run_inbox(self) -> None:
        from archiver.ops.inbox import scan_inbox

        if self.config.inbox is None or self.inbox_state is None or self.cancel():
            return
        ws = self._job_workspace()
        try:
            scan_inbox(ws, self.inbox_state, cancel=self.cancel)
        except Exception:  # logged; the daemon goes on
            log.exception("looking at the inbox failed")
        finally:
            ws.archive.close()

    # -- reload and stop -------------------------------------------------------------------
    def reload(self) -> bool:
        """Re-read the config; reschedule. A config with a mistake keeps the old one."""
        from archiver.config import load_config
        from archiver.connector import installed_connectors
        from archiver.sync.jobs import Workspace

        log.info("SIGHUP: reloading %s", self.config_path)
        try:
            config = load_config(Path(self.config_path), installed_connectors())
            for account in config.accounts:  # a schedule APScheduler refuses is a config error too
                account_trigger(account)
        except (ConfigError, ValueError) as error:
            log.error("the config was NOT reloaded, the previous one stays in force: %s", error)
            return False
        before = {a.account_id for a in self.config.accounts}
        with self._guard:
            self.ws = Workspace(self.ws.archive, config, self.ws._secrets)
            if max(1, config.daemon.max_parallel) != self._max_parallel:
                # Runs holding a slot of the old semaphore release it there; new runs use the new one.
                self._max_parallel = max(1, config.daemon.max_parallel)
                self._slots = threading.BoundedSemaphore(self._max_parallel)
        new = {a.account_id for a in config.accounts} - before
        self._schedule_accounts(catch_up_for=new)
        self._schedule_side_jobs()
        self._say_what_runs()
        return True

    def request_stop(self, signum: int) -> None:
        """Signal handler: the first signal stops gracefully, a second one stops now."""
        if self._stop_requested:
            log.warning("second %s: exiting without waiting for the running account", signal.Signals(signum).name)
            self._stop_deadline = 0.0
        else:
            log.info("%s: stopping; a running account stops after its current page or chunk", signal.Signals(signum).name)
            self._stop_requested = True
            self.cancel.set()
        self._wake.set()

    def request_reload(self, signum: int) -> None:
        self._reload_requested = True
        self._wake.set()

    # -- the main loop ---------------------------------------------------------------------
    def _say_what_runs(self) -> None:
        enabled = [a for a in self.config.accounts if a.enabled]
        if not enabled:
            log.info("no accounts configured in %s: nothing to archive on a schedule%s. "
                     "Add an [accounts.<name>] table and send SIGHUP (or restart).",
                     self.config_path, "; the inbox is watched" if self.config.inbox else "")

    def run(self) -> int:
        """Start the scheduler and wait for signals. Returns the exit status (0)."""
        global _current
        _current = self
        self.ws.archive.create()
        with self.ws.archive.writing():  # runs left 'running' by a dead process were interrupted
            from archiver.sync.runner import mark_dead_runs

            mark_dead_runs(self.ws.archive.db)
        self.scheduler = self._make_scheduler()
        previous = {sig: signal.signal(sig, handler) for sig, handler in (
            (signal.SIGTERM, lambda s, f: self.request_stop(s)),
            (signal.SIGINT, lambda s, f: self.request_stop(s)),
            (signal.SIGHUP, lambda s, f: self.request_reload(s)))}
        try:
            self._schedule_accounts(catch_up_for={a.account_id for a in self.config.accounts})
            self._schedule_side_jobs()
            self.scheduler.start()
            log.info("archiver daemon started (pid %d) for %s with %d account(s); log file %s",
                     os.getpid(), self.folder, len([a for a in self.config.accounts if a.enabled]),
                     self.folder / self.config.daemon.log_file)
            self._say_what_runs()
            while not self._stop_requested:
                self._wake.wait(5)
                self._wake.clear()
                if self._reload_requested and not self._stop_requested:
                    self._reload_requested = False
                    self.reload()
            return self._stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            _current = None

    def _stop(self) -> int:
        """Stop scheduling, give running accounts up to stop_timeout to reach a page
        boundary (they are cancelled already), then exit 0 either way: a run cut short is
        recorded as interrupted by the next start (its pid is gone)."""
        self._scheduler().shutdown(wait=False)
        self._stop_deadline = time.monotonic() + self.config.daemon.stop_timeout
        while True:
            with self._guard:
                active = self._active_runs
            if not active:
                log.info("archiver daemon stopped")
                return 0
            if time.monotonic() >= self._stop_deadline:
                log.warning("%d run(s) did not stop within %d s; exiting anyway (they resume next time)",
                            active, self.config.daemon.stop_timeout)
                _flush_logs()
                os._exit(0)  # worker threads cannot be killed; the process can
            self._wake.wait(0.2)
            self._wake.clear()


def _flush_logs() -> None:
    for handler in logging.getLogger("archiver").handlers:
        handler.flush()


# --------------------------------------------------------------------------- job functions
# Referenced by the scheduler as "archiver.ops.daemon:<name>" strings.


def run_account_job(account_id: str) -> None:
    if _current is not None:
        _current.run_account(account_id)


def run_alerts_job() -> None:
    if _current is not None:
        _current.run_alerts()


def run_inbox_job() -> None:
    if _current is not None:
        _current.run_inbox()


# --------------------------------------------------------------------------- entry point


def run_daemon(ws, *, config_path: Path | None = None) -> int:
    """`archiver daemon`: take the archive's lock, log, schedule, run until a signal.
    Returns the exit status (0 after a clean stop). Raises DaemonAlreadyRunning when
    another daemon holds this archive, ConfigError for a schedule that cannot run."""
    ws.archive.create()
    lock = DaemonLock(ws.archive.folder).acquire()
    try:
        for account in ws.config.accounts:  # a schedule APScheduler refuses: say so before starting
            try:
                account_trigger(account)
            except ValueError as error:
                raise ConfigError(f"{ws.config.path}: accounts.{account.name}.schedule = "
                                  f"{account.schedule!r}: {error}") from None
        setup_daemon_logging(ws.archive.folder, ws.config.daemon.log_file)
        return Daemon(ws, config_path=config_path).run()
    finally:
        lock.release()
