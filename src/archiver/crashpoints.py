"""Deterministic crash points: a debug switch for the crash tests.

A run must survive being killed at any instant. Random kills only sample that; these
points let a test kill a run exactly where the spine could lose something, one point
after another, and check each time that the resumed run converges.

    ARCHIVER_CRASH_AT="commit:3"        exit hard the 3rd time the process passes "commit"
    ARCHIVER_SIGNAL_AT="chunk:3:INT"    send this process SIGINT (or TERM) the 3rd time it
                                        passes "chunk": Ctrl-C / a service stop, delivered
                                        at an exact moment instead of after a sleep
    ARCHIVER_CRASH_COUNTS=/tmp/x.json   write {"commit": 5, "download": 2, ...}: how many
                                        times each point was passed so far (kept up to date
                                        at every point, so a test knows how many to walk)

The points (see POINTS) sit where the archive's writes become durable: just before and
just after every write transaction commits (archive.Archive.writing), while a download is
part-way into its ``.part`` file, and just before and after a finished file is renamed to
its content address (media.MediaStore), and after each chunk of a big follower list
commits (archiver.archive.lists). "Exit hard" is ``os._exit(CRASH_EXIT_CODE)``: no
finally blocks, no atexit, no flushing, as close to SIGKILL as a process can do to itself.

All three variables are read once, when this module is first imported; unset (always, outside
the tests), ``reached`` is a dictionary lookup that returns at once.
"""

from __future__ import annotations

import json
import os
import threading
from typing import BinaryIO, Callable

CRASH_AT = "ARCHIVER_CRASH_AT"
CRASH_COUNTS = "ARCHIVER_CRASH_COUNTS"
SIGNAL_AT = "ARCHIVER_SIGNAL_AT"
CRASH_EXIT_CODE = 86   # tells a test "it died at the point it asked for", not of a bug

POINTS = {
    "before-commit": "a write transaction's rows are written; COMMIT is next",
    "commit": "a write transaction has just committed",
    "download": "a download has written part of the body into its .part file",
    "before-rename": "a finished file is fsynced in its .part; renaming it into place is next",
    "rename": "a finished file has just been renamed to its content address",
    "chunk": "a chunk of a big follower / following list has just committed (staged, applied or cleared)",
}


class CrashSwitchError(ValueError):
    """ARCHIVER_CRASH_AT names no known point or no count."""


def _parse(value: str) -> tuple[str, int] | None:
    if not value.strip():
        return None
    point, _, number = value.strip().partition(":")
    if point not in POINTS or not number.isdigit() or int(number) < 1:
        raise CrashSwitchError(
            f"{CRASH_AT}={value!r} is not a crash point: write POINT:N, N >= 1, with POINT one of "
            f"{', '.join(POINTS)} (e.g. {CRASH_AT}=commit:3)")
    return point, int(number)


def _parse_signal(value: str) -> tuple[str, int, int] | None:
    import signal

    if not value.strip():
        return None
    where, _, name = value.strip().rpartition(":")
    if name.isdigit():   # no signal named: Ctrl-C's
        where, name = value.strip(), "INT"
    usage = f"{SIGNAL_AT}={value!r}: write POINT:N:INT or POINT:N:TERM (e.g. {SIGNAL_AT}=chunk:2:TERM)"
    if name not in ("INT", "TERM"):
        raise CrashSwitchError(usage)
    parsed = _parse(where)
    if parsed is None:   # ":TERM": no point named before the signal
        raise CrashSwitchError(usage)
    return parsed[0], parsed[1], getattr(signal, f"SIG{name}")


_target = _parse(os.environ.get(CRASH_AT, ""))
_signal = _parse_signal(os.environ.get(SIGNAL_AT, ""))
_counts_file = os.environ.get(CRASH_COUNTS) or None
_passed: dict[str, int] = {}
_enabled = _target is not None or _signal is not None or _counts_file is not None


def reached(point: str, cut: BinaryIO | None = None, stopped: Callable[[], bool] | None = None) -> None:
    """The process passes ``point``: count it, and exit hard (or signal itself) if it is
    the one asked for.

    ``cut``: the ``.part`` file being written at a "download" point. Dying there leaves
    half of the bytes written so far in it (flushed, then truncated), as a connection
    cut mid-body would; the next run must resume or restart that file correctly.
    ``stopped``: the run's stop flag. A signal is handled by the main thread; a run in a
    worker thread (the daemon's) waits here until the handler has set the flag, so the
    stop lands at this very point, not a few chunks later."""
    if not _enabled:
        return
    _passed[point] = _passed.get(point, 0) + 1
    if _counts_file is not None:
        _write_counts(_counts_file)
    if _target is not None and _target == (point, _passed[point]):
        if cut is not None:
            cut.flush()
            os.ftruncate(cut.fileno(), os.fstat(cut.fileno()).st_size // 2)
        os._exit(CRASH_EXIT_CODE)
    if _signal is not None and _signal[:2] == (point, _passed[point]):
        os.kill(os.getpid(), _signal[2])   # Python runs its handler in the main thread right after
        if stopped is not None and threading.current_thread() is not threading.main_thread():
            waited = threading.Event()
            for _ in range(1000):   # at most 10 s: the main thread handles it when it next runs
                if stopped():
                    break
                waited.wait(0.01)


def _write_counts(path: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(_passed, out, sort_keys=True)
    os.replace(temporary, path)
