"""X (Twitter): the person's "Download an archive of your data" zip of every generation
(parsed in export.py), and, only within a budget the account sets, the pay-per-use API v2
for what is newer than the archive (api.py)."""

from __future__ import annotations

from typing import Iterator

from archiver.connector import Connector
from archiver.records import Page


class XConnector(Connector):
    name = "x"
    title = "X"
    post_noun = "posts"
    # How people show here (archiver audience links): x.com and twitter.com are one site.
    profile_hosts = ("x.com", "twitter.com", "mobile.twitter.com", "mobile.x.com")
    other_names = ("twitter",)
    default_base_url = "https://api.x.com"

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.x.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.x.export import export_pages

        yield from export_pages(source, ctx)
