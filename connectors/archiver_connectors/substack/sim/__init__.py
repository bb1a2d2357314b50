"""The simulated Substack export: ``SIMULATOR`` (`archiver simulate substack --out FILE`) and
``write_export``, the subscriber list as a CSV file (or zipped, as Settings → Exports gives it)."""

from __future__ import annotations

from pathlib import Path

from archiver_connectors.owned.sim import CsvExportSimulator, FakeContact, csv_bytes, write_zip


def _iso(moment: str) -> str:
    return moment.replace(" ", "T") + ".123Z"


def write_export(path: Path, people: list[FakeContact], *, layout: str = "csv", plan: str = "no") -> Path:
    """``layout``: "csv" or "zip" (email_list.<publication>.csv inside). ``plan``: "yes" adds
    the "plan" column [U]. Substack lists subscribers only: the gone ones are left out."""
    header = ["email", "active_subscription", "expiry", *(["plan"] if plan == "yes" else []), "email_disabled",
              "created_at"]
    rows = [[p.email, "true" if i % 5 == 0 else "", _iso("2026-06-01 00:00:00") if i % 5 == 0 else "",
             *(["yearly" if i % 5 == 0 else "free"] if plan == "yes" else []), "false" if p.consent else "true",
             _iso(p.joined)] for i, p in enumerate(people) if p.status == "subscribed"]
    data = csv_bytes(header, rows, line_end="\n")
    if layout == "zip":
        return write_zip(path, {"email_list.mypub.csv": data, "posts.csv": b"post_id,title\n1,Hello\n"})
    path.write_bytes(data)
    return path


class SubstackSimulator(CsvExportSimulator):
    name = "substack"
    builder = staticmethod(write_export)
    knobs = {"layout": "csv (default) or zip", "plan": "yes: add the plan column"}


SIMULATOR = SubstackSimulator()
