"""Substack: a publication's subscribers, from "Settings → Exports → Create new export"
(a zip holding the subscriber list) or the subscribers page's CSV (docs/owned-channels.md).

The subscriber list's columns are "email", "active_subscription", "expiry", "plan",
"email_disabled", "created_at" [U: Substack documents no column list; these are the ones
exports in the wild carry — the paid-subscriber file has "type" and
"stripe_connected_customer_id" instead of "created_at"]. "created_at" is ISO-8601 with
milliseconds and Z. Everyone listed is subscribed; "email_disabled" true means they asked
for no email (not reachable). Spellings of the dashboard's own CSV ("Email", "Subscription
date", "Email disabled") are read too.
"""

from __future__ import annotations

from archiver.records import OwnedContact
from archiver_connectors.owned.connector import OwnedListConnector
from archiver_connectors.owned.csvfile import CsvTable, email_of, first, kept_columns, time_of, yes_no

# Columns only Substack's export has (any one, beside the email).
SUBSTACK_COLUMNS = ("active subscription", "email disabled", "stripe connected customer id", "expiry")


class SubstackConnector(OwnedListConnector):
    name = "substack"
    title = "Substack"
    channel = "newsletter"
    manual_export_steps = "Substack: Settings → Exports → Create new export, then download it"

    @classmethod
    def recognizes(cls, table: CsvTable) -> bool:
        named = table.name.rsplit("/", 1)[-1].casefold().startswith("email_list")
        return table.has("email") and (table.has_any(*SUBSTACK_COLUMNS) or named and table.has("created at"))

    def contact(self, row: dict[str, str], table: CsvTable) -> OwnedContact:
        written, key = email_of(row.get("email"))
        disabled = yes_no(first(row, "email disabled"), "email_disabled")
        joined = time_of(first(row, "created at", "subscription date", "subscription created at"), "created_at")
        return OwnedContact(
            native_id=key, email=written, channel="newsletter", status="subscribed",
            consent=None if disabled is None and "email disabled" in table.keys else not disabled,
            display_name=first(row, "name"), joined_at=joined, consent_at=joined,
            provider_id=first(row, "stripe connected customer id"), raw=kept_columns(row))
