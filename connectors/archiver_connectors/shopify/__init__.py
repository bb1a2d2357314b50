"""Shopify: a shop's customers, from "Customers → Export" (a CSV file, docs/owned-channels.md).

Columns, current export: "Customer ID", "First Name", "Last Name", "Email", "Accepts Email
Marketing", "Default Address …", "Phone", "Accepts SMS Marketing", "Total Spent", "Total
Orders", "Note", "Tax Exempt", "Tags". Older exports: "Accepts Marketing" instead of "Accepts
Email Marketing", and "Company", "Address1", … without "Default Address". Both are read
[U: which one a shop gets depends on when it exported]. "yes"/"no" values; the file holds
no dates (a customer is dated by the first import that listed them). A customer ID may be
written with a leading apostrophe (so spreadsheets keep its digits): it is dropped.
"""

from __future__ import annotations

from archiver.records import OwnedContact
from archiver_connectors.owned.connector import OwnedListConnector
from archiver_connectors.owned.csvfile import CsvTable, count_of, email_of, first, joined_name, kept_columns, yes_no


class ShopifyConnector(OwnedListConnector):
    name = "shopify"
    title = "Shopify"
    channel = "shop"
    manual_export_steps = "Shopify admin: Customers → Export → All customers, CSV for Excel or plain CSV"

    @classmethod
    def recognizes(cls, table: CsvTable) -> bool:
        return (table.has("email") and table.has_any("accepts email marketing", "accepts marketing")
                and table.has_any("total orders", "total spent", "customer id"))

    def contact(self, row: dict[str, str], table: CsvTable) -> OwnedContact:
        written, key = email_of(row.get("email"))
        column = "accepts email marketing" if "accepts email marketing" in table.keys else "accepts marketing"
        consent = yes_no(row.get(column), column.title())
        return OwnedContact(
            native_id=key, email=written, channel="shop", status="customer", consent=consent,
            display_name=joined_name(row.get("first name"), row.get("last name")),
            orders=count_of(row.get("total orders"), "Total Orders"),
            provider_id=(first(row, "customer id") or "").lstrip("'") or None, raw=kept_columns(row))
