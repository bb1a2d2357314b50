"""The simulated WooCommerce export: ``SIMULATOR`` (`archiver simulate woocommerce --out FILE`)
and ``write_export``, "Analytics → Customers → Download" as a CSV file."""

from __future__ import annotations

from pathlib import Path

from archiver_connectors.owned.sim import CsvExportSimulator, FakeContact, csv_bytes


def write_export(path: Path, people: list[FakeContact], *, country: str = "Country / Region") -> Path:
    """``country`` [U]: the country column's header ("Country / Region", or "Country" before 2021)."""
    header = ["Name", "Username", "Last Active", "Sign Up", "Email", "Orders", "Total Spend", "AOV", country, "City",
              "Region", "Postal Code"]
    rows = [[f"{p.first} {p.last}", f"user{i}" if i % 3 else "", p.left or p.joined, p.joined if i % 3 else "",
             p.email, str(p.orders), f"{p.orders * 31:.2f}", f"{31 if p.orders else 0:.2f}", "US", "Springfield",
             "IL", "62701"] for i, p in enumerate(people)]
    path.write_bytes(csv_bytes(header, rows))
    return path


class WooCommerceSimulator(CsvExportSimulator):
    name = "woocommerce"
    builder = staticmethod(write_export)
    knobs = {"country": "the country column's header"}


SIMULATOR = WooCommerceSimulator()
