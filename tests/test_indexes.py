"""The indexes the read queries need (migration m007_indexes_staging): SQLite's plan for
each query names the index, and media paths are unique."""

from __future__ import annotations

import sqlite3

import pytest


def plan(db, sql: str) -> str:
    return " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall())


def test_an_accounts_comments_over_time_and_a_comments_replies_use_an_index(archive):
    db = archive.db
    assert "comments_by_account_owner_time" in plan(
        db, "SELECT comment_id FROM comments WHERE account_id='x' AND by_owner=1 ORDER BY created_at DESC")
    assert "comments_by_parent" in plan(db, "SELECT comment_id FROM comments WHERE platform='x' AND parent_id='y'")


def test_two_media_rows_cannot_name_one_file(archive):
    db = archive.db
    db.execute("INSERT INTO media (sha256, path, size, first_seen_at) VALUES ('a', 'aa/bb/a.jpg', 1, 'now')")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO media (sha256, path, size, first_seen_at) VALUES ('b', 'aa/bb/a.jpg', 1, 'now')")
