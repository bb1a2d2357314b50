"""The inbox: a folder where the user drops official export files by hand.

Many platforms give the complete audience (followers, following) only through a
"download your data" export that a person has to request and download. The config's
``[inbox] path`` is a folder the daemon looks into every ``interval`` seconds:

    inbox/
      TikTok_Data_1700000000.zip      <- dropped here by the user
      done/                           <- imported (or already imported) files end up here
      failed/                         <- files that could not be imported, each with
        broken.zip                       a broken.zip.error.txt that says why and what to do
        broken.zip.error.txt

One call of ``scan_inbox`` looks at the folder once. A file is only imported once it has
stopped changing: a browser or a copy may still be writing it, and importing half a zip
would fail (or worse, import half an export). ``InboxState`` is what the caller keeps
between scans to tell a settled file from one still growing:

    state = InboxState()
    while True:
        for outcome in scan_inbox(ws, state):
            ...
        time.sleep(ws.config.inbox.interval)
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from archiver.config import ConfigError

log = logging.getLogger("archiver.ops.inbox")

DONE = "done"
FAILED = "failed"
ERROR_SUFFIX = ".error.txt"
# Names browsers and download tools give a file while it is still being downloaded; the
# finished file gets its real name by a rename, which the next scan sees as a new file.
PARTIAL_SUFFIXES = (".part", ".crdownload", ".download", ".tmp", ".partial")
# A lock file (a dot-file, so scans ignore it) that keeps the daemon and `archiver inbox`
# from importing the same file at the same moment.
LOCK_NAME = ".archiver-inbox.lock"


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # when a scan first saw the file with this size and mtime


@dataclass
class InboxState:
    """What the daemon remembers between scans: for each file in the inbox, its size, its
    modification time and when it was first seen like that. A file is settled when it has
    kept the same size and mtime for ``settle`` seconds."""

    seen: dict[str, _Seen] = field(default_factory=dict)

    def observe(self, name: str, size: int, mtime_ns: int, now: float) -> float:
        """Record what a scan found; return how long the file has been unchanged."""
        previous = self.seen.get(name)
        if previous is None or previous.size != size or previous.mtime_ns != mtime_ns:
            self.seen[name] = _Seen(size, mtime_ns, now)
            return 0.0
        return now - previous.since

    def forget_missing(self, present: set[str]) -> None:
        for name in list(self.seen):
            if name not in present:
                del self.seen[name]


def inbox_folder(ws) -> Path:
    """The configured inbox folder, or a ConfigError saying how to configure one."""
    if ws.config.inbox is None:
        where = ws.config.path or (ws.archive.folder / "config.toml")
        raise ConfigError(f"{where}: no inbox folder is configured. Add for example\n\n"
                          '[inbox]\npath = "~/archiver-inbox"\n\nthen drop export files into that folder.')
    return Path(ws.config.inbox.path).expanduser()


def is_candidate(name: str) -> bool:
    """Whether a name in the inbox may be an export to import (not a dot-file, not a
    download still in progress, not our own folders or error notes)."""
    lowered = name.lower()
    return not (name.startswith(".") or name in (DONE, FAILED)
                or lowered.endswith(PARTIAL_SUFFIXES) or lowered.endswith(ERROR_SUFFIX))


def scan_inbox(ws, state: InboxState, *, now: float | None = None, transport=None,
               cancel: Callable[[], bool] = lambda: False) -> list[dict]:
    """Look at the inbox once: import every settled export file, move it to done/ or
    failed/, leave files still being written for a later scan.

    Returns one dict per file looked at: ``file`` (its name in the inbox), ``status``
    ("imported", "skipped" = imported before, "failed" or "waiting"), ``moved_to`` (the
    new path, or None) and ``message`` (one line for a person). ``now`` replaces the
    clock (tests); ``transport`` replaces the network for media downloads (tests);
    ``cancel`` stops between files and leaves an interrupted file where it is.
    """
    folder = inbox_folder(ws)
    settle = ws.config.inbox.settle
    now = time.time() if now is None else now
    _make_folders(folder)
    outcomes: list[dict] = []
    with _scan_lock(folder) as locked:
        if not locked:
            log.info("another inbox scan is running on %s; this one does nothing", folder)
            return outcomes
        for name in _links(folder):  # never followed: said once, and moved out of the way
            if cancel():
                return outcomes
            outcomes.append(_fail_link(folder, name))
        candidates = _candidates(folder)
        state.forget_missing({name for name, _info in candidates})  # moved or deleted by hand
        for name, info in candidates:
            if cancel():
                break
            unchanged_for = state.observe(name, info.st_size, info.st_mtime_ns, now)
            if unchanged_for < settle:
                outcomes.append(_waiting(name, unchanged_for, settle))
                continue
            outcome = _import_one(ws, folder, name, transport=transport, cancel=cancel)
            if outcome["moved_to"] is not None:
                state.seen.pop(name, None)
            outcomes.append(outcome)
    return outcomes


# --------------------------------------------------------------------------- looking


def _make_folders(folder: Path) -> None:
    """The inbox and its done/ and failed/ folders, private to the user: exports hold
    messages, contacts and e-mail addresses."""
    for path in (folder, folder / DONE, folder / FAILED):
        if not path.is_dir():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path, 0o700)  # mkdir's mode is reduced by the umask


@contextlib.contextmanager
def _scan_lock(folder: Path) -> Iterator[bool]:
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): one scanner at a time is then up to the user
        yield True
        return
    handle = open(folder / LOCK_NAME, "a")  # noqa: SIM115 - held open for the whole scan
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                yield False
                return
            raise
        yield True
    finally:
        handle.close()  # closing releases the lock


def _candidates(folder: Path) -> list[tuple[str, os.stat_result]]:
    """Regular files directly in the inbox, oldest first. Links are left alone: a link
    could make us import (and then move) a file from anywhere on the disk."""
    found = []
    for entry in os.scandir(folder):
        if not is_candidate(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed while we looked
            continue
        if stat.S_ISREG(info.st_mode):
            found.append((entry.name, info))
    found.sort(key=lambda item: (item[1].st_mtime_ns, item[0]))
    return found


def _links(folder: Path) -> list[str]:
    """Symbolic links dropped into the inbox (sorted by name)."""
    return sorted(entry.name for entry in os.scandir(folder) if is_candidate(entry.name) and entry.is_symlink())


_FIX_LINK = ["Copy or move the export file itself into the inbox (not a link to it)."]


def _fail_link(folder: Path, name: str) -> dict:
    """A link is never imported: it could make archiver import, then move, a file from
    anywhere on the disk. It goes to failed/ (the link only; what it points to is left
    alone), so the person learns why nothing happened and it is not looked at again."""
    try:
        target = os.readlink(folder / name)
    except OSError:
        target = "?"
    why = (f"{folder / name} is a symbolic link (to {target}): the inbox imports only files dropped into it, "
           "never what a link points to")
    return _fail(folder, name, why, [], what_to_do=_FIX_LINK)


def _waiting(name: str, unchanged_for: float, settle: int) -> dict:
    if unchanged_for == 0:
        log.info("%s: new or still changing; waiting until it has not changed for %d s", name, settle)
    else:
        log.debug("%s: unchanged for %.0f s of %d s; waiting", name, unchanged_for, settle)
    return {"file": name, "status": "waiting", "moved_to": None,
            "message": f"still being written, or not yet unchanged for {settle} s; imported on a later scan"}


# --------------------------------------------------------------------------- importing


def _import_one(ws, folder: Path, name: str, *, transport, cancel) -> dict:
    from archiver.sync.jobs import run_import
    from archiver.sync.locks import AccountBusy

    path = folder / name
    try:
        result = run_import(ws, path, transport=transport, cancel=cancel)
    except AccountBusy as busy:   # another run has the account: this file waits for a later scan
        who = busy.holder.describe() if busy.holder else "another process"
        message = f"account {busy.account_id} is being archived by {who}; imported on a later scan"
        log.info("%s: %s", name, message)
        return {"file": name, "status": "waiting", "moved_to": None, "message": message}
    except Exception as error:  # noqa: BLE001 - ExportFileError, ConfigError, a bug: all go to failed/
        if isinstance(error, FileNotFoundError) or not path.exists():
            log.info("%s: removed from the inbox before it could be imported", name)
            return {"file": name, "status": "failed", "moved_to": None, "message": "removed before it was imported"}
        why, what_to_do = _why(error)
        return _fail(folder, name, why, [], what_to_do=what_to_do)

    if result["status"] == "interrupted":  # stopped by request: try again on the next scan
        log.info("%s: import interrupted; it stays in the inbox for the next scan", name)
        return {"file": name, "status": "waiting", "moved_to": None, "message": result.get("message") or "interrupted"}
    if result["status"] not in ("ok", "skipped"):
        message = result.get("message") or f"the import ended with status {result['status']}"
        return _fail(folder, name, message, result.get("errors") or [], run_id=result.get("run_id"))

    status = "imported" if result["status"] == "ok" else "skipped"
    message = _summary(result)
    try:
        moved = move_without_overwrite(path, folder / DONE)
    except OSError as error:
        log.error("%s: %s, but it could not be moved to %s: %s", name, message, folder / DONE, error)
        return {"file": name, "status": status, "moved_to": None,
                "message": f"{message}; could not be moved to done/ ({error})"}
    log.info("%s: %s; moved to %s", name, message, moved)
    return {"file": name, "status": status, "moved_to": str(moved), "message": message}


# What a person can do about a file that failed, by kind of failure.
_FIX_EXPORT = [
    ("If the file is a download that did not finish or is damaged, download the export again "
     "from the platform and drop the new file into the inbox."),
    "If it is not an export of a platform archiver supports, just delete it.",
]
_FIX_CONFIG = [
    "Fix the config file as the message above says, then move the file back into the inbox.",
]
_FIX_UNEXPECTED = [
    ("This looks like a problem in archiver rather than in the file: the file may be fine. "
     "Keep it, update archiver (or report the message above), then move it back into the inbox."),
]


def _why(error: BaseException) -> tuple[str, list[str]]:
    """The reason for a person, and what they can do about it."""
    from archiver.config import ConfigError
    from archiver.sync.imports import ExportFileError

    if isinstance(error, ExportFileError):
        return str(error), _FIX_EXPORT  # written for people already: names the file and the fix
    if isinstance(error, ConfigError):
        return str(error), _FIX_CONFIG
    return f"an unexpected error ({type(error).__name__}: {error})", _FIX_UNEXPECTED


def _summary(result: dict) -> str:
    if result.get("parts"):   # an export that filled several accounts: each one's summary
        return "; ".join(_summary(part) for part in result["parts"])
    account = result.get("account", "?")
    if result["status"] == "skipped":
        return f"{account}: {result.get('message') or 'already imported'}"
    counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(result.get("counts", {}).items()) if v)
    text = f"imported into {account} ({counts or 'nothing new'})"
    errors = result.get("errors") or []
    if errors:
        text += f"; {len(errors)} item(s) skipped, see `archiver status` (run {result.get('run_id')})"
    return text


def _fail(folder: Path, name: str, why: str, errors: list[dict], run_id: int | None = None,
          what_to_do: list[str] = _FIX_EXPORT) -> dict:
    """Move the file to failed/ and write the note beside it."""
    path = folder / name
    try:
        moved = move_without_overwrite(path, folder / FAILED)
    except OSError as error:
        # Left in place it would be retried on every scan and fail every time; say so loudly.
        log.error("%s: could not be imported (%s) and could not be moved to %s: %s",
                  name, why, folder / FAILED, error)
        return {"file": name, "status": "failed", "moved_to": None, "message": why}
    note = moved.with_name(moved.name + ERROR_SUFFIX)
    try:
        note.write_text(_error_note(name, why, errors, run_id, what_to_do), encoding="utf-8")
    except OSError as error:
        log.error("%s: could not write %s: %s", name, note, error)
    log.warning("%s: could not be imported: %s; moved to %s", name, why, moved)
    return {"file": name, "status": "failed", "moved_to": str(moved), "message": why}


def _error_note(name: str, why: str, errors: list[dict], run_id: int | None, what_to_do: list[str]) -> str:
    from archiver.net.client import scrubber

    when = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        f"archiver could not import {name} ({when}).",
        "",
        "Why:",
        f"  {why}",
    ]
    if errors:
        lines += ["", "Problems with single items in it:"]
        lines += [f"  - {e.get('item')}: {e.get('error')}" for e in errors[:50]]
        if len(errors) > 50:
            lines.append(f"  … and {len(errors) - 50} more")
    if run_id is not None:
        lines += ["", f"The attempt is recorded as run {run_id} in the archive (see `archiver status`)."]
    advice = [*what_to_do,
              (f"To try this file again, move it back into the inbox, or run `archiver import {name}` to see "
               "the error directly (`archiver import PLATFORM FILE` if the platform was not recognized).")]
    lines += ["", "What to do:"]
    lines += [textwrap.fill(line, 88, initial_indent="  - ", subsequent_indent="    ") for line in advice]
    lines += [
        "",
        "This note and the file can be deleted once you are done with them.",
        "",
    ]
    return scrubber.text("\n".join(lines))  # never a token in a note, should one be in a message


def move_without_overwrite(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` under its own name, or ``name-2.ext``, ``name-3.ext``
    … if that is taken. Never replaces a file already there."""
    for candidate in _free_names(path.name):
        target = folder / candidate
        try:
            # A hard link fails if the target exists, with no window between looking and
            # moving (os.rename would silently replace it).
            os.link(path, target, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            # No hard links here (some network or FAT file systems): look, then rename.
            if target.exists():
                continue
            os.rename(path, target)
            return target
        os.unlink(path)
        return target
    raise OSError(f"no free name for {path.name} in {folder}")


def _free_names(name: str, tries: int = 10_000) -> Iterator[str]:
    base, extension = _split_extension(name)
    yield name
    for number in range(2, tries):
        yield f"{base}-{number}{extension}"


def _split_extension(name: str) -> tuple[str, str]:
    """``export.tar.gz`` -> (``export``, ``.tar.gz``): the suffix goes before the whole extension."""
    lowered = name.lower()
    for double in (".tar.gz", ".tar.bz2", ".tar.xz"):
        if lowered.endswith(double) and len(name) > len(double):
            return name[:-len(double)], name[-len(double):]
    stem, dot, extension = name.rpartition(".")
    if dot and stem:
        return stem, "." + extension
    return name, ""


def scan_until_settled(ws, *, rounds: int = 3, transport=None,
                       cancel: Callable[[], bool] = lambda: False) -> list[dict]:
    """For `archiver inbox` (no daemon): scan, wait ``settle`` seconds while files are
    waiting, scan again, at most ``rounds`` times. Returns the last outcome of each file;
    a file still changing after the last round is reported as "waiting"."""
    state = InboxState()
    final: dict[str, dict] = {}
    for round_number in range(rounds):
        outcomes = scan_inbox(ws, state, transport=transport, cancel=cancel)
        final.update((o["file"], o) for o in outcomes)
        waiting = [o for o in outcomes if o["status"] == "waiting"]
        if not waiting or cancel() or round_number == rounds - 1:
            break
        # Just over `settle`: a file unchanged since the first look is then settled.
        # In short steps, so Ctrl-C stops the wait at once.
        deadline = time.monotonic() + ws.config.inbox.settle + 0.2
        while not cancel() and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    return list(final.values())
