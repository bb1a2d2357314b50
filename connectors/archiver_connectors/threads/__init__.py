"""Threads: the Threads API (posts with their files, the owner's replies, replies by
others under the owner's posts with their authors, counts, the follower count) and the
Threads files of Meta's "Download your information" export, alone or inside an
Instagram download (parsed in export.py; the only source of follower lists)."""

from __future__ import annotations

from typing import Iterator

from archiver.connector import Connector
from archiver.records import Page


class ThreadsConnector(Connector):
    name = "threads"
    title = "Threads"
    post_noun = "posts"
    default_base_url = "https://graph.threads.net"
    nested_export_folder = "threads"   # an Instagram download carries the Threads export in threads/

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.threads.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.threads.export import export_pages

        yield from export_pages(source, ctx)
