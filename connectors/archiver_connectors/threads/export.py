"""The Threads files of Meta's "Download your information" export
(../shared/platforms/threads.md §6), from a Threads-only download or the ``threads/``
folder of an Instagram download; built on archiver_connectors.meta.export."""

from __future__ import annotations

from typing import Iterator

from archiver.records import Page


def find_export(source) -> list[str]:
    """The export's threads_and_replies files (empty: no Threads data in it)."""
    return []


def export_pages(source, ctx) -> Iterator[Page]:
    raise NotImplementedError("the Threads export importer is not written yet")
    yield  # pragma: no cover
