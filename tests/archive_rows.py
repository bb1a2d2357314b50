"""Reading an archive's rows in tests: ``rows(db, sql, *params)`` as tuples, ``one(...)``
for a single value."""

from __future__ import annotations


def rows(db, sql: str, *params) -> list[tuple]:
    return [tuple(r) for r in db.execute(sql, list(params)).fetchall()]


def one(db, sql: str, *params):
    return db.execute(sql, list(params)).fetchone()[0]
