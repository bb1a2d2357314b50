"""LinkedIn: the member's own data through the Member Data Portability API (members in
the EEA and Switzerland: the member snapshot of every domain, then the changelog) and the
"Get a copy of your data" CSV export that works everywhere (parsed in export.py; both give
the same rows, mapped to records in rows.py)."""

from __future__ import annotations

from typing import Iterator

from archiver.connector import Connector
from archiver.records import Page


class LinkedInConnector(Connector):
    name = "linkedin"
    title = "LinkedIn"
    post_noun = "posts"
    default_base_url = "https://api.linkedin.com"

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.linkedin.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.linkedin.export import export_pages

        yield from export_pages(source, ctx)
