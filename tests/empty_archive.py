"""A new, empty archive for a test, copied from one this process made with the real schema.

Making an archive runs every migration (about 0.2 s); a test suite makes hundreds, and a
property test two per example. A copy of the folder (archive.db, media/, their private modes)
is the same file the migrations wrote. Tests of making an archive itself use `Archive` directly.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from archiver.archive import Archive


@functools.cache
def _template() -> Path:
    parent = Path(tempfile.mkdtemp(prefix="archiver-template-"))
    atexit.register(shutil.rmtree, parent, ignore_errors=True)
    store = Archive(parent / "archive")
    _ = store.db   # creates it with its schema
    store.close()
    return parent / "archive"


def new_archive(folder: Path) -> Archive:
    """An empty archive in ``folder`` (which must not exist yet), opened."""
    shutil.copytree(_template(), folder)
    return Archive(folder)
