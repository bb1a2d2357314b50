"""The "Get a copy of your data" export (../shared/platforms/linkedin.md §2): a zip or
folder of CSV files (Basic and Complete archives, 2018 to now), read with every quirk of
its dialects; rows become records through rows.py, as the API's snapshot rows do."""

from __future__ import annotations

from typing import Iterator

from archiver.records import Page


def find_export(source) -> list[str]:
    """The export's CSV files LinkedIn's importer reads (empty: not a LinkedIn export)."""
    return []


def export_pages(source, ctx) -> Iterator[Page]:
    raise NotImplementedError("the LinkedIn export importer is not written yet")
    yield  # pragma: no cover
