"""The simulated Buttondown export: ``SIMULATOR`` (`archiver simulate buttondown --out FILE`) and
``write_export``, the subscribers CSV with the API's column names or the dashboard's."""

from __future__ import annotations

from pathlib import Path

from archiver_connectors.owned.sim import CsvExportSimulator, FakeContact, csv_bytes

TYPE_OF_STATUS = {"subscribed": "regular", "pending": "unactivated", "unsubscribed": "unsubscribed",
                  "cleaned": "undeliverable"}


def write_export(path: Path, people: list[FakeContact], *, names: str = "old") -> Path:
    """``names`` [U]: "old" (email, subscriber_type, creation_date), "new" (email_address, type,
    creation_date) or "dashboard" (Email, Status, Subscription date)."""
    header = {"old": ["id", "email", "notes", "metadata", "tags", "creation_date", "subscriber_type",
                      "unsubscription_date", "referrer_url", "utm_source"],
              "new": ["id", "email_address", "notes", "metadata", "tags", "creation_date", "type",
                      "unsubscription_date", "referrer_url", "utm_source"],
              "dashboard": ["Email", "Tags", "Status", "Subscription date", "Unsubscription date", "IP address"]}[names]
    rows = []
    for index, p in enumerate(people):
        kind, joined, left = TYPE_OF_STATUS[p.status], p.joined.replace(" ", "T") + "Z", (p.left or "").replace(" ", "T")
        left = left + "Z" if left else ""
        if names == "dashboard":
            rows.append([p.email, "fans", kind.title(), joined, left, "192.0.2.7"])
        else:
            rows.append([f"9c1e{index:04d}-aaaa-bbbb-cccc-000000000000", p.email, "", "{}", "fans", joined, kind,
                         left, "", ""])
    path.write_bytes(csv_bytes(header, rows))
    return path


class ButtondownSimulator(CsvExportSimulator):
    name = "buttondown"
    builder = staticmethod(write_export)
    knobs = {"names": "old (default), new or dashboard: the column names"}


SIMULATOR = ButtondownSimulator()
