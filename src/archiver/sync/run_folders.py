"""Each run's own temporary folder: ``<archive>/media/.tmp/<account>.run-<run id>/``.

A run keeps its partial downloads (``.part``) and the export files it fetches there. It
lives beside media/ so a finished file is renamed into place, never copied.

- A run holds ``.alive`` in its folder with flock for its whole life: whoever finds that
  lock free knows the run is over (the kernel drops it however the process ended).
- A run that ends well removes its folder. A run that failed or was killed leaves it; the
  next run of the same account takes over its partial downloads (``<sha1 of key>.part``)
  and resumes them with Range requests.
- Sweeping removes only files of dead runs not touched for ``STALE_SECONDS`` (a day):
  another run's files are never touched while it runs, whatever account it archives.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import time
from pathlib import Path

from archiver.sync.locks import account_file_name

log = logging.getLogger("archiver.sync.run_folders")

ALIVE = ".alive"
STALE_SECONDS = 24 * 3600
# MediaStore.download's resumable parts, and the validator (ETag) kept beside each one.
_DOWNLOAD_PART = re.compile(r"^[0-9a-f]{40}\.part(\.validator)?$")


class RunFolder:
    def __init__(self, tmp_root: Path, account_id: str, run_id: int):
        self.tmp_root = Path(tmp_root)
        self.prefix = account_file_name(account_id) + ".run-"
        self.path = self.tmp_root / f"{self.prefix}{run_id}"
        self._fd: int | None = None

    def open(self) -> "RunFolder":
        """Create the folder and hold it for this run."""
        self.tmp_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.path / ALIVE, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)   # a new folder: nobody else holds it
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def take_over_parts(self) -> int:
        """Move the resumable downloads of this account's earlier, ended runs here."""
        moved = 0
        for folder in sorted(self.tmp_root.glob(self.prefix + "*")):
            if folder == self.path or not folder.is_dir() or _alive(folder):
                continue
            for part in folder.iterdir():
                if _DOWNLOAD_PART.match(part.name) and not (self.path / part.name).exists():
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(part, self.path / part.name)
                        moved += 1
        return moved

    def close(self, *, keep_parts: bool) -> None:
        """The run ended. ``keep_parts``: leave the folder for the next run to take over
        (a failed or interrupted run); else remove it with everything in it."""
        if not keep_parts:
            shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)   # releases the flock: the folder is now a dead run's
            self._fd = None


def _alive(folder: Path) -> bool:
    """Is a run still holding ``folder``? (A folder without .alive is one being made or
    one whose run is over; only old files are ever removed from it.)"""
    try:
        fd = os.open(folder / ALIVE, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)   # releases it at once if we got it
    return False


def sweep_stale(tmp_root: Path, *, older_than_s: float = STALE_SECONDS, now: float | None = None) -> int:
    """Remove files of ended runs not touched for ``older_than_s`` seconds, and their
    folders once empty. Files directly in ``tmp_root`` (left by versions before run
    folders) count as an ended run's. Returns how many files were removed."""
    cutoff = (time.time() if now is None else now) - older_than_s
    removed = 0
    if not Path(tmp_root).is_dir():
        return 0

    def remove_if_old(path: Path) -> None:
        nonlocal removed
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime <= cutoff:
                path.unlink()
                removed += 1

    for entry in Path(tmp_root).iterdir():
        if entry.is_dir():
            if _alive(entry):
                continue
            # Its own age, before removing files changes it: a folder just made is young.
            folder_old = entry.stat().st_mtime <= cutoff
            for path in entry.iterdir():
                if path.name != ALIVE:
                    remove_if_old(path)
            with contextlib.suppress(OSError):
                if folder_old and all(p.name == ALIVE for p in entry.iterdir()):
                    (entry / ALIVE).unlink(missing_ok=True)
                    entry.rmdir()
        else:
            remove_if_old(entry)
    if removed:
        log.info("removed %d partial file(s) left over a day ago by runs that ended", removed)
    return removed
