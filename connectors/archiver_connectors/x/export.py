"""The "Download an archive of your data" zip or folder (../shared/platforms/x-twitter.md):
every generation (tweet.js / tweets.js / split parts), read as a stream."""

from __future__ import annotations

from typing import Iterator

from archiver.records import Page


def find_export(source) -> list[str]:
    """The archive's data files the importer reads (empty: not an X archive)."""
    return []


def export_pages(source, ctx) -> Iterator[Page]:
    raise NotImplementedError("the X archive importer is not written yet")
    yield  # pragma: no cover
