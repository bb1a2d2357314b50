"""Buttondown: a newsletter's subscribers, from "Settings → Exports" (a zip with
``subscribers.csv``, and ``unsubscribers.csv`` when asked for) or the subscribers page's
CSV (docs/owned-channels.md).

Columns [U: both spellings are read, Buttondown renamed them in its API]: "email" or
"email_address", "subscriber_type" or "type" (the dashboard's CSV: "Status"),
"creation_date" (the dashboard's: "Subscription date"), "unsubscription_date", "id",
"notes", "tags", "metadata", "referrer_url", "utm_*". Dates are ISO-8601.

A type says who is reachable: regular, premium, trialed, gifted, complimentary (and churned
and paused, still on the list [U]) are subscribed; unactivated is pending (no confirmed
opt-in); unsubscribed; undeliverable, spammy, removed and blocked are cleaned.
"""

from __future__ import annotations

from archiver.records import OwnedContact
from archiver_connectors.owned.connector import OwnedListConnector
from archiver_connectors.owned.csvfile import CsvTable, email_of, first, kept_columns, time_of

STATUS_OF_TYPE = {
    "regular": "subscribed", "premium": "subscribed", "trialed": "subscribed", "gifted": "subscribed",
    "complimentary": "subscribed", "churned": "subscribed", "paused": "subscribed", "past due": "subscribed",
    "unactivated": "pending", "unpaid": "pending",
    "unsubscribed": "unsubscribed",
    "undeliverable": "cleaned", "spammy": "cleaned", "removed": "cleaned", "blocked": "cleaned",
}


class ButtondownConnector(OwnedListConnector):
    name = "buttondown"
    title = "Buttondown"
    channel = "newsletter"
    manual_export_steps = "Buttondown: Settings → Exports → Export subscribers, then download it"

    @classmethod
    def recognizes(cls, table: CsvTable) -> bool:
        has_email = table.has_any("email", "email address")
        by_api_names = table.has_any("subscriber type", "creation date") and table.has_any(
            "subscriber type", "type", "secondary id", "referrer url")
        by_dashboard = table.has("status", "subscription date") and table.has("email")
        return has_email and (by_api_names or by_dashboard)

    def contact(self, row: dict[str, str], table: CsvTable) -> OwnedContact:
        written, key = email_of(first(row, "email", "email address"))
        kind = (first(row, "subscriber type", "type", "status") or "regular").replace("_", " ").casefold()
        if "unsubscriber" in table.name.rsplit("/", 1)[-1].casefold():
            kind = "unsubscribed"
        status = STATUS_OF_TYPE.get(kind)
        if status is None:
            raise ValueError("subscriber_type is not a type archiver knows")
        joined = time_of(first(row, "creation date", "subscription date"), "creation_date")
        left = time_of(first(row, "unsubscription date", "undeliverability date"), "unsubscription_date")
        return OwnedContact(
            native_id=key, email=written, channel="newsletter", status=status,
            consent=True if status == "subscribed" else (None if status == "pending" else False),
            joined_at=joined, consent_at=joined if status == "subscribed" else None, left_at=left,
            provider_id=first(row, "id"), raw=kept_columns(row))
