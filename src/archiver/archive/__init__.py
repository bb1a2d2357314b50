"""The archive folder: ``archive.db`` (SQLite, WAL) and ``media/`` (content-addressed files)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from sqlite_utils import Database

import archiver.crashpoints as crashpoints
from archiver.archive.schema import migrations

DB_NAME = "archive.db"
MEDIA_DIR = "media"


class Archive:
    """An archive folder, created private to the user, with its schema up to date.

    ``media_elsewhere``: where the media folder's files are kept besides this disk (a
    fleet's object store): given a file's path under media/, whether it is kept there. A
    run then counts a file it archived before as held, not fetched from the platform
    again, though this folder never had it."""

    def __init__(self, folder: str | Path, *, media_elsewhere: Callable[[str], bool] | None = None):
        self.folder = Path(folder).expanduser()
        self.db_path = self.folder / DB_NAME
        self.media_root = self.folder / MEDIA_DIR
        self.media_elsewhere = media_elsewhere
        self._db: Database | None = None

    def has_media_file(self, relative: str) -> bool:
        """Whether media/``relative`` is on disk or kept where ``media_elsewhere`` says."""
        if (self.media_root / relative).is_file():
            return True
        return self.media_elsewhere is not None and self.media_elsewhere(relative)

    def create(self) -> "Archive":
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.media_root.mkdir(exist_ok=True, mode=0o700)
        return self

    @property
    def exists(self) -> bool:
        return self.db_path.exists()

    @property
    def db(self) -> Database:
        if self._db is None:
            self.create()
            if not self.db_path.exists():
                # Created private (0600) before SQLite opens it: a chmod after would leave a
                # moment when others could open it. SQLite gives its -wal and -shm files the
                # database file's mode. An empty file is an empty database to SQLite.
                try:
                    os.close(os.open(self.db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                except FileExistsError:
                    pass
            db = Database(self.db_path)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            # WAL + NORMAL is durable against process death (our crash model); a power
            # loss may lose the last transaction, which the next run fetches again.
            db.execute("PRAGMA synchronous=NORMAL")
            migrations.apply(db)
            self._db = db
        return self._db

    @contextmanager
    def reading(self, busy_timeout_ms: int = 2000):
        """A read-only connection (``archiver status``): it never writes, so it never waits
        for the write lock. In WAL mode a reader sees the last committed state while a
        long import holds the lock. (After an upgrade whose migrations are still pending,
        they are applied first, through the normal connection.)"""
        import sqlite3

        if not self.exists:
            raise FileNotFoundError(f"no archive at {self.folder}")
        conn = sqlite3.connect(f"{self.db_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            db = Database(conn)
            if migrations.pending(db):
                conn.close()
                _ = self.db  # applies them
                conn = sqlite3.connect(f"{self.db_path.resolve().as_uri()}?mode=ro", uri=True)
                conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
                db = Database(conn)
            yield db
        finally:
            conn.close()

    @contextmanager
    def writing(self):
        """A write transaction that takes the write lock at its start (BEGIN IMMEDIATE).

        sqlite-utils' ``atomic()`` begins a deferred transaction; one that reads first and
        then writes fails at once with "database is locked" when another connection
        (Datasette, `archiver status`) holds a read snapshot, without waiting for
        busy_timeout. Taking the lock up front makes it wait instead. Nested use becomes a
        savepoint.
        """
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():
                yield db
            return
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.conn.rollback()
            raise
        else:
            crashpoints.reached("before-commit")   # the crash tests' points (a no-op unless asked)
            db.conn.commit()
            crashpoints.reached("commit")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
