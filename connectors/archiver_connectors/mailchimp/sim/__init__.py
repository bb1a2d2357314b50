"""The simulated Mailchimp export: ``SIMULATOR`` (`archiver simulate mailchimp --out FILE`) and
``write_export``, a zip of one CSV per status as "Export Audience" gives it."""

from __future__ import annotations

from pathlib import Path

from archiver_connectors.owned.sim import CsvExportSimulator, FakeContact, csv_bytes, write_zip

COMMON = ["Email Address", "First Name", "Last Name", "Address", "Phone Number", "MEMBER_RATING", "OPTIN_TIME",
          "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC",
          "REGION"]
TAIL = ["LEID", "EUID", "NOTES", "TAGS"]
EXTRA = {"subscribed": ["LAST_CHANGED"],
         "unsubscribed": ["UNSUB_TIME", "UNSUB_CAMPAIGN_TITLE", "UNSUB_CAMPAIGN_ID", "UNSUB_REASON",
                          "UNSUB_REASON_OTHER"],
         "cleaned": ["CLEAN_TIME", "CLEAN_CAMPAIGN_TITLE", "CLEAN_CAMPAIGN_ID"]}


def status_file(status: str, people: list[FakeContact], *, bom: bool = False) -> bytes:
    header = COMMON + EXTRA[status] + TAIL
    rows = []
    for index, p in enumerate(people):
        row = [p.email, p.first, p.last, "1 Main St", "+1 555 0100", "3", p.joined, "192.0.2.1", p.joined,
               "192.0.2.1", "", "", "", "", "", "US", ""]
        row += [p.joined] if status == "subscribed" else [p.left or "", "Spring issue", "abc123", "", ""] \
            if status == "unsubscribed" else [p.left or "", "Spring issue", "abc123"]
        row += [str(1000 + index), f"e{index:06x}", "", '"Readers"']
        rows.append(row)
    return csv_bytes(header, rows, bom=bom)


def write_export(path: Path, people: list[FakeContact], *, layout: str = "zip", bom: str = "no") -> Path:
    """``layout``: "zip" (the three files, as downloaded) or "subscribed" (that file alone)."""
    by_status = {s: [p for p in people if p.status == s or s == "subscribed" and p.status == "pending"]
                 for s in EXTRA}
    if layout == "subscribed":
        path.write_bytes(status_file("subscribed", by_status["subscribed"], bom=bom == "yes"))
        return path
    return write_zip(path, {f"{s}_members_export_9f8e7d.csv": status_file(s, group, bom=bom == "yes")
                            for s, group in by_status.items()})


class MailchimpSimulator(CsvExportSimulator):
    name = "mailchimp"
    builder = staticmethod(write_export)
    knobs = {"layout": "zip (default) or subscribed (that CSV alone)", "bom": "yes: start each CSV with a BOM"}
    demo_file = "members_export.zip"


SIMULATOR = MailchimpSimulator()
