"""``OwnedListConnector``: the connector of an owned channel read from its CSV export.

A provider's subclass sets the class attributes of any connector (``name``, ``title``), its
``channel`` ("newsletter" or "shop") and two methods: ``recognizes(table)``, whether a CSV
file is its export (by its header, and its name where the provider's files differ by name),
and ``contact(row, table)``, one row as an ``OwnedContact`` (a ValueError for a malformed row:
reported with its file and line, and skipped).
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterator

from archiver.connector import Connector
from archiver.records import OwnedContact, Page, PageBuffer, iso_utc, now_utc
from archiver_connectors.owned.csvfile import CsvTable, csv_tables, iter_rows

PAGE_SIZE = 500


class OwnedListConnector(Connector):
    channel: ClassVar[str] = "newsletter"
    default_base_url = "https://localhost.invalid"   # never asked: there is no API to call
    post_noun = "contacts"
    # What to download and from where, for `archiver status` and the docs.
    manual_export_steps: ClassVar[str] = ""

    @classmethod
    def api_off(cls, options: dict[str, Any]) -> str:
        return (f"a {cls.title} list is archived from its CSV export: download it ({cls.manual_export_steps}) "
                "and run `archiver import FILE`")

    def authorize(self, *, echo, open_browser=None, port: int = 0, prompt=None) -> str:
        from archiver.net.oauth import OAuthError

        raise OAuthError(f"{self.title} needs no authorization: archiver reads its CSV export "
                         f"({self.manual_export_steps}) with `archiver import FILE`")

    def pages(self, ctx) -> Iterator[Page]:
        raise NotImplementedError(self.api_off({}))

    # -- what a provider says ---------------------------------------------------------------

    @classmethod
    def recognizes(cls, table: CsvTable) -> bool:
        raise NotImplementedError

    def contact(self, row: dict[str, str], table: CsvTable) -> OwnedContact:
        raise NotImplementedError

    # -- the export ---------------------------------------------------------------------------

    @classmethod
    def detect_export(cls, source) -> bool:
        return any(cls.recognizes(table) for table in csv_tables(source))

    def import_pages(self, source, ctx) -> Iterator[Page]:
        tables = [table for table in csv_tables(source) if self.recognizes(table)]
        source.named_by_importer([table.name for table in tables])
        buffer = PageBuffer("contacts", PAGE_SIZE)
        read = 0
        for table in tables:
            # When the export said so: its file's own time (a zip entry's, or the file's).
            stamped = source.modified_at(table.name)
            as_of = iso_utc(stamped) if stamped is not None else now_utc()
            for where, row in iter_rows(source, table, ctx.report):
                try:
                    contact = self.contact(row, table)
                except ValueError as error:
                    ctx.report(where, f"{error}; row skipped")
                    continue
                contact.where, contact.as_of = where, contact.as_of or as_of
                read += 1
                if page := buffer.add(contact):
                    yield page
        yield from buffer.rest()
        if not read:
            ctx.note(f"no {self.channel} contact could be read from this {self.title} export")
