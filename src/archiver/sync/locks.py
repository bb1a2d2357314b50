"""Locks between processes: one run per account, one token refresh per token record.

Both are a file held with ``flock`` that names its holder (pid, command, since when), so a
process that finds it taken can say who has it. The kernel drops an flock when its holder
dies, however it dies: a crashed run never leaves a stale lock behind. The file itself
stays (deleting it would let two processes lock two different files).

Within one process the lock is re-entrant for the thread holding it (``run_import`` holds
the account while its Runner takes it again) and other threads wait on it like other
processes do.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger("archiver.sync.locks")

LOCKS_DIR = "locks"           # <archive>/locks/<account>.lock
POLL_SECONDS = 0.2            # how often a waiting process tries the lock again


@dataclass
class Holder:
    """Who holds a lock, as written in its file."""

    pid: int | None
    command: str
    since: str | None         # ISO-8601 UTC

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid else "another process"
        what = f" ({self.command})" if self.command else ""
        return f"{who}{what}" + (f" since {_local_time(self.since)}" if self.since else "")


class LockBusy(Exception):
    """The lock is held by someone else (and waiting for it, if asked, did not help)."""

    def __init__(self, message: str, holder: Holder | None):
        super().__init__(message)
        self.holder = holder


def _local_time(iso: str) -> str:
    """'21:03' today, '2026-12-05 21:03' another day, in the machine's local time."""
    try:
        when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso
    if when.date() == dt.datetime.now().astimezone().date():
        return when.strftime("%H:%M")
    return when.strftime("%Y-%m-%d %H:%M")


def this_command() -> str:
    """What this process is, for other processes' messages: "archiver daemon", "archiver
    export" … (only the sub-command: arguments may hold paths a user would not share)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program == "archiver":
        return f"archiver {sys.argv[1]}" if len(sys.argv) > 1 else program
    return "python" if program in ("-c", "-") else program


class _InProcess:
    """The part of a lock this process holds: its thread lock, depth and file."""

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_held: dict[str, _InProcess] = {}
_held_guard = threading.Lock()


class FileLock:
    """An flock on ``path`` whose file names the holder."""

    def __init__(self, path: Path):
        self.path = Path(path)
        with _held_guard:
            self._state = _held.setdefault(str(self.path.absolute()), _InProcess())

    def holder(self) -> Holder | None:
        """Who the file says holds it (None when it names nobody)."""
        try:
            text = self.path.read_text(encoding="utf-8")
            data = json.loads(text) if text.strip() else None
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        return Holder(pid if isinstance(pid, int) else None, str(data.get("command") or ""), data.get("since"))

    def acquire(self, *, wait: float | None, doing: str = "", busy: Callable[[Holder | None], str],
                waiting: Callable[[Holder | None], None] | None = None,
                cancel: Callable[[], bool] = lambda: False) -> None:
        """Take the lock. ``wait``: seconds to wait for it (0: not at all, None: as long as it
        takes; a ``cancel`` that turns true ends the wait). ``busy(holder)`` words the
        LockBusy raised when it stays taken; ``waiting`` is told once, when this process
        starts waiting (to say so)."""
        deadline = None if wait is None else time.monotonic() + max(0.0, wait)
        state = self._state
        told = False
        # Other threads of this process first: they hold the same kernel lock.
        while not state.thread_lock.acquire(timeout=POLL_SECONDS):
            if not told and waiting:
                waiting(self.holder())
                told = True
            if (deadline is not None and time.monotonic() >= deadline) or cancel():
                raise LockBusy(busy(self.holder()), self.holder())
        try:
            if state.depth == 0:
                self._lock_file(deadline, busy, waiting, told, doing, cancel)
            state.depth += 1
        except BaseException:
            state.thread_lock.release()
            raise

    def _lock_file(self, deadline, busy, waiting, told: bool, doing: str, cancel) -> None:
        import fcntl

        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                holder = self.holder()
                if (deadline is not None and time.monotonic() >= deadline) or cancel():
                    raise LockBusy(busy(holder), holder)
                if not told and waiting:
                    waiting(holder)
                    told = True
                time.sleep(POLL_SECONDS)   # a poll, not a guess: the loop re-checks the lock
            command = this_command() + (f": {doing}" if doing else "")
            since = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": since}).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._state.fd = fd

    def release(self) -> None:
        state = self._state
        state.depth -= 1
        if state.depth == 0 and state.fd is not None:
            fd, state.fd = state.fd, None
            os.ftruncate(fd, 0)   # names nobody once free
            os.close(fd)          # closing releases the flock
        state.thread_lock.release()

    @contextmanager
    def held(self, **options) -> Iterator["FileLock"]:
        self.acquire(**options)
        try:
            yield self
        finally:
            self.release()


# --------------------------------------------------------------------------- one run per account


def _file_name(*parts: str) -> str:
    """A file name for these parts (readable; a short hash keeps odd names apart)."""
    import hashlib

    joined = "-".join(parts)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", joined)
    if safe != joined:
        safe += "-" + hashlib.sha1(joined.encode()).hexdigest()[:8]
    return safe


def account_file_name(account_id: str) -> str:
    """'tiktok:main' -> 'tiktok-main'."""
    return _file_name(*account_id.split(":", 1))


class AccountBusy(LockBusy):
    """Another run (CLI, daemon or inbox) is archiving this account right now."""

    def __init__(self, message: str, holder: Holder | None, account_id: str):
        super().__init__(message, holder)
        self.account_id = account_id


def account_lock_path(archive_folder: Path, account_id: str) -> Path:
    return Path(archive_folder) / LOCKS_DIR / f"{account_file_name(account_id)}.lock"


@contextmanager
def account_lock(archive_folder: Path, account_id: str, *, wait: float = 0, doing: str = "",
                 cancel: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Hold ``account_id`` for one run (``doing``: "export", "import of X.zip" — shown to
    whoever finds it taken). ``wait``: seconds to wait for a run in progress to end
    (``cancel``, e.g. Ctrl-C, ends the wait early)."""

    started = time.monotonic()

    def busy(holder: Holder | None) -> str:
        who = holder.describe() if holder else "another process"
        waited = f" (waited {time.monotonic() - started:.0f} s)" if wait else ""
        return (f"account {account_id} is being archived by {who}{waited}; try again later, or let this "
                "command wait for it with --wait SECONDS")

    def waiting(holder: Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        log.info("account %s is being archived by %s; waiting up to %g s for it to finish", account_id, who, wait)

    lock = FileLock(account_lock_path(archive_folder, account_id))
    try:
        lock.acquire(wait=wait, doing=doing, busy=busy, waiting=waiting, cancel=cancel)
    except LockBusy as error:
        raise AccountBusy(str(error), error.holder, account_id) from None
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------- one refresh per token

TOKEN_LOCK_WAIT = 300   # seconds: a refresh is a few requests with their own timeouts


@contextmanager
def token_lock(folder: Path | None, platform: str, account: str, title: str) -> Iterator[None]:
    """Hold the token record of (platform, account) while refreshing it. ``folder`` is
    where the secret store keeps its lock files; None (an in-process store): this
    process's threads only."""
    if folder is None:
        lock_key = f"memory:{platform}:{account}"
        with _held_guard:
            state = _held.setdefault(lock_key, _InProcess())
        with state.thread_lock:
            yield
        return

    def busy(holder: Holder | None) -> str:
        who = holder.describe() if holder else "another process"
        return (f"the {title} authorization of account {account!r} has been refreshing in {who} for more than "
                f"{TOKEN_LOCK_WAIT} s; stop it, then run again")

    def waiting(holder: Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        log.info("waiting for %s to finish refreshing the %s authorization of account %r", who, title, account)

    lock = FileLock(Path(folder) / f"{_file_name(platform, account, 'tokens')}.lock")
    with lock.held(wait=TOKEN_LOCK_WAIT, doing=f"refreshing {platform} tokens", busy=busy, waiting=waiting):
        yield
