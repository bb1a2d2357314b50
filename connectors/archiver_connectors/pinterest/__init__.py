"""Pinterest: the owner's boards, board sections, Pins with their image and video files,
counts, follower and following lists and profile through API v5, within a daily request
budget (Trial access allows 1,000 requests a day), and the "Request your data" export
(one HTML file of `Key: value` blocks, parsed in export.py)."""

from __future__ import annotations

from typing import Iterator

from archiver.connector import Connector
from archiver.records import Page


class PinterestConnector(Connector):
    name = "pinterest"
    title = "Pinterest"
    post_noun = "Pins"
    default_base_url = "https://api.pinterest.com"

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.pinterest.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.pinterest.export import export_pages

        yield from export_pages(source, ctx)
