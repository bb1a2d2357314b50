"""The "Request your data" export (../shared/platforms/pinterest.md §6): one HTML document
of `Key: value` blocks under `<h1>` headings, no image files; its Pins match the API's by id."""

from __future__ import annotations

from typing import Iterator

from archiver.records import Page


def find_export(source) -> list[str]:
    """The export's HTML files (empty: not a Pinterest export)."""
    return []


def export_pages(source, ctx) -> Iterator[Page]:
    raise NotImplementedError("the Pinterest export importer is not written yet")
    yield  # pragma: no cover
