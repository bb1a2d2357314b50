"""`archiver verify` and `archiver status` against a real archive file: verify stamps only
the files that passed; status reads without writing and without waiting behind a writer."""

from __future__ import annotations

import hashlib

from archive_rows import one


def _store(archive, content: bytes) -> tuple[str, str]:
    """Put a file into the media store and record it, as a download would."""
    from archiver.archive.media import MediaStore

    source = archive.folder / f"in-{hashlib.sha256(content).hexdigest()[:8]}.jpg"
    source.write_bytes(content)
    stored = MediaStore(archive.media_root).add_file(source, mime_hint="image/jpeg")
    path = stored.path.as_posix()
    with archive.writing() as db:
        db.execute("INSERT INTO media (sha256, path, mime, size, first_seen_at) VALUES (?,?,?,?,?)",
                   [stored.sha256, path, "image/jpeg", stored.size, "2026-01-01T00:00:00Z"])
    return stored.sha256, path


def test_verify_stamps_verified_at_only_on_files_that_passed(archive):
    from archiver.ops.status import verify_archive

    good, _ = _store(archive, b"\xff\xd8good picture")
    damaged, damaged_path = _store(archive, b"\xff\xd8picture to be damaged")
    missing, missing_path = _store(archive, b"\xff\xd8picture to be lost")
    (archive.media_root / damaged_path).write_bytes(b"\xff\xd8bit rot")
    (archive.media_root / missing_path).unlink()

    lines: list[str] = []
    assert verify_archive(archive, echo=lines.append) == 2
    db = archive.db
    assert one(db, "SELECT verified_at FROM media WHERE sha256=?", good) is not None
    assert one(db, "SELECT verified_at FROM media WHERE sha256=?", damaged) is None, lines
    assert one(db, "SELECT verified_at FROM media WHERE sha256=?", missing) is None, lines


def test_status_answers_while_another_process_holds_the_write_lock_and_writes_nothing(archive):
    """A long import holds the write lock; `archiver status` reads the last committed state
    at once. The archive's own connection is given a short busy timeout: were status to
    ask for the write lock, it would fail here instead of answering."""
    import sqlite3

    from archiver.config import Config
    from archiver.ops.status import account_status, render_status

    with archive.writing() as db:
        # A run whose process is gone (pid 0 never runs a run): status shows it interrupted.
        db.execute("INSERT INTO runs (account_id, platform, kind, mode, pid, started_at, status) "
                   "VALUES ('tiktok:main', 'tiktok', 'export', 'full', 0, '2026-01-01T00:00:00Z', 'running')")
    archive.db.execute("PRAGMA busy_timeout=50")
    writer = sqlite3.connect(archive.db_path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO accounts (account_id, platform, name, first_seen_at, last_seen_at) "
                       "VALUES ('tiktok:other', 'tiktok', 'other', 'x', 'x')")
        rows = account_status(archive, Config(path=None))
        assert [r["account"] for r in rows] == ["tiktok:main"]      # not the uncommitted one
        assert rows[0]["last_run"]["status"] == "interrupted"
        assert "INTERRUPTED" in render_status(rows)
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    # Status wrote nothing: the run stays as it was until the next run records it.
    assert one(archive.db, "SELECT status FROM runs") == "running"
