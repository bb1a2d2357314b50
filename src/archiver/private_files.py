"""Files only their owner may read: exports, reports and logs hold the archive's contents.

A file made with plain ``open()`` is created with mode 0666 minus the umask (usually
0644: readable by every user of the machine), and a ``chmod`` after it leaves a moment
when another user can open it and keep reading. ``open_private`` asks for 0600 in the
``open`` call itself, so the file is private from the instant it exists, whatever the
umask. A file that exists already and is open to others is narrowed to 0600 too.
"""

from __future__ import annotations

import logging.handlers
import os
import stat
from pathlib import Path
from typing import IO

PRIVATE = 0o600

_FLAGS = {
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


def open_private(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = None,
                 errors: str | None = None, newline: str | None = None, buffering: int = -1) -> IO:
    """``open(path, mode)`` for writing ("w", "a", "x", each with "b" for bytes), the file
    private to the user (0600) from its creation on."""
    flags = _FLAGS[mode.replace("b", "")] | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, PRIVATE)
    try:
        narrow(fd)
        if "b" in mode:
            return os.fdopen(fd, mode, buffering=buffering)
        return os.fdopen(fd, mode, buffering=buffering, encoding=encoding or "utf-8", errors=errors,
                         newline=newline)
    except BaseException:
        os.close(fd)
        raise


def narrow(fd_or_path: int | str | os.PathLike) -> None:
    """A regular file of the user's that others may read or write becomes 0600 (a device
    such as /dev/null, or another user's file, is left alone)."""
    info = os.fstat(fd_or_path) if isinstance(fd_or_path, int) else os.stat(fd_or_path)
    if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
        if isinstance(fd_or_path, int):
            os.fchmod(fd_or_path, PRIVATE)
        else:
            os.chmod(fd_or_path, PRIVATE)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file whose every file (the current one, each one rotation starts)
    is private to the user from its creation."""

    def _open(self):
        return open_private(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors)

    def narrow_backups(self) -> None:
        """Rotated files written before logs were private become 0600 too."""
        for number in range(1, self.backupCount + 1):
            backup = Path(f"{self.baseFilename}.{number}")
            if backup.exists():
                narrow(backup)
