"""The simulated Shopify export: ``SIMULATOR`` (`archiver simulate shopify --out FILE`) and
``write_export``, "Customers → Export" as a CSV file, in the current or the older layout."""

from __future__ import annotations

from pathlib import Path

from archiver_connectors.owned.sim import CsvExportSimulator, FakeContact, csv_bytes

NEW = ["Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing", "Default Address Company",
       "Default Address Address1", "Default Address Address2", "Default Address City",
       "Default Address Province Code", "Default Address Country Code", "Default Address Zip",
       "Default Address Phone", "Phone", "Accepts SMS Marketing", "Total Spent", "Total Orders", "Note",
       "Tax Exempt", "Tags"]
OLD = ["First Name", "Last Name", "Email", "Company", "Address1", "Address2", "City", "Province", "Province Code",
       "Country", "Country Code", "Zip", "Phone", "Accepts Marketing", "Total Spent", "Total Orders", "Tags",
       "Note", "Tax Exempt"]


def write_export(path: Path, people: list[FakeContact], *, layout: str = "new", bom: str = "no") -> Path:
    """``layout`` [U]: "new" (Customer ID, Accepts Email Marketing …) or "old" (Accepts Marketing)."""
    rows = []
    for index, p in enumerate(people):
        yes = "yes" if p.consent else "no"
        spent = f"{p.orders * 24.5:.2f}"
        if layout == "old":
            rows.append([p.first, p.last, p.email, "", "1 Main St", "", "Springfield", "Ontario", "ON", "Canada",
                         "CA", "K1A 0B1", "+1 555 0100", yes, spent, str(p.orders), "", "", "no"])
        else:
            rows.append([f"'{7001000 + index}", p.first, p.last, p.email, yes, "", "1 Main St", "", "Springfield",
                         "ON", "CA", "K1A 0B1", "", "+1 555 0100", "no", spent, str(p.orders), "", "no", "vip"])
    path.write_bytes(csv_bytes(OLD if layout == "old" else NEW, rows, bom=bom == "yes"))
    return path


class ShopifySimulator(CsvExportSimulator):
    name = "shopify"
    builder = staticmethod(write_export)
    knobs = {"layout": "new (default) or old: the column layout", "bom": "yes: start with a BOM (CSV for Excel)"}


SIMULATOR = ShopifySimulator()
