"""Facebook's "Download your information" export (JSON), every folder layout of
../shared/platforms/facebook.md §6; built on archiver_connectors.meta.export."""

from __future__ import annotations

from typing import Iterator

from archiver.records import Page


def find_export(source) -> list[str]:
    """The export's posts files (empty: not a Facebook export)."""
    return []


def export_pages(source, ctx) -> Iterator[Page]:
    raise NotImplementedError("the Facebook export importer is not written yet")
    yield  # pragma: no cover
