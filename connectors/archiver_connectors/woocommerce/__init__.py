"""WooCommerce: a shop's customers, from "Analytics → Customers → Download" (a CSV file, or
a link by email for a big report; docs/owned-channels.md).

Columns: "Name", "Username", "Last Active", "Sign Up", "Email", "Orders", "Total Spend",
"AOV", "Country / Region" (older versions: "Country"), "City", "Region", "Postal Code".
Dates are "YYYY-MM-DD HH:MM:SS" in the site's time zone [U: read as UTC, the file does not
say the zone]. WooCommerce keeps no marketing consent: every customer's consent is unknown,
so no customer counts as reachable until another list (a newsletter) says they agreed.
"""

from __future__ import annotations

from archiver.records import OwnedContact
from archiver_connectors.owned.connector import OwnedListConnector
from archiver_connectors.owned.csvfile import CsvTable, count_of, email_of, first, kept_columns, time_of


class WooCommerceConnector(OwnedListConnector):
    name = "woocommerce"
    title = "WooCommerce"
    channel = "shop"
    manual_export_steps = "WordPress admin: Analytics → Customers → Download"

    @classmethod
    def recognizes(cls, table: CsvTable) -> bool:
        return table.has("email", "sign up") and table.has_any("last active", "total spend", "aov")

    def contact(self, row: dict[str, str], table: CsvTable) -> OwnedContact:
        written, key = email_of(row.get("email"))
        return OwnedContact(
            native_id=key, email=written, channel="shop", status="customer", consent=None,
            display_name=first(row, "name"), joined_at=time_of(first(row, "sign up"), "Sign Up"),
            orders=count_of(row.get("orders"), "Orders"), provider_id=first(row, "username"),
            raw=kept_columns(row, also_drop=("username",)))
