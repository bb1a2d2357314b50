"""Facebook: a Page through the Graph API (posts with their files, comments with their
authors, counts, followers and fans as counts, profile picture and cover), the personal
profile's own posts through ``/me/posts``, and the "Download your information" export
for everything else of a profile (parsed in export.py).

An account with ``page = "<id or name>"`` is that Page; an account without it is the
person's own profile."""

from __future__ import annotations

from typing import Iterator

from archiver.connector import Connector, Option
from archiver.records import Page


class FacebookConnector(Connector):
    name = "facebook"
    title = "Facebook"
    post_noun = "posts"
    default_base_url = "https://graph.facebook.com"
    config_options = (
        Option("page", "The Facebook Page this account archives, by id or name (leave it out for your own profile)."),
    )

    # -- official export -----------------------------------------------------------------
    @classmethod
    def detect_export(cls, source) -> bool:
        from archiver_connectors.facebook.export import find_export

        return bool(find_export(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        from archiver_connectors.facebook.export import export_pages

        yield from export_pages(source, ctx)
