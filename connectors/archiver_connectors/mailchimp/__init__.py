"""Mailchimp: an audience's contacts, from its export (docs/owned-channels.md).

"Audience → All contacts → Export audience" gives a zip of CSV files, one per status:
``subscribed_…csv``, ``unsubscribed_…csv``, ``cleaned_…csv`` (and, in newer exports,
``nonsubscribed_…csv``). Every file has "Email Address", "First Name", "Last Name", the
merge fields, then MEMBER_RATING, OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, …,
LAST_CHANGED (subscribed), UNSUB_TIME and UNSUB_* (unsubscribed) or CLEAN_TIME and CLEAN_*
(cleaned), LEID, EUID, NOTES, TAGS. Times are "YYYY-MM-DD HH:MM:SS", read as UTC [U: the
zone is not stated]. A single file (one status exported alone) imports too; its status is
told by its name, else by its columns.
"""

from __future__ import annotations

from archiver.records import OwnedContact
from archiver_connectors.owned.connector import OwnedListConnector
from archiver_connectors.owned.csvfile import CsvTable, email_of, first, joined_name, kept_columns, time_of

# Columns only Mailchimp's export has (any one, beside "Email Address").
MAILCHIMP_COLUMNS = ("member rating", "optin time", "confirm time", "leid", "euid")


def _status_of(table: CsvTable) -> str:
    """subscribed | unsubscribed | cleaned | contact (never subscribed), from the file name
    first ("unsubscribed_members_export_….csv"), else from its status columns."""
    name = table.name.rsplit("/", 1)[-1].casefold()
    for word, status in (("nonsubscribed", "contact"), ("non-subscribed", "contact"), ("unsubscribed", "unsubscribed"),
                         ("cleaned", "cleaned"), ("subscribed", "subscribed")):
        if word in name:
            return status
    if table.has("unsub time"):
        return "unsubscribed"
    if table.has("clean time"):
        return "cleaned"
    return "subscribed"


class MailchimpConnector(OwnedListConnector):
    name = "mailchimp"
    title = "Mailchimp"
    channel = "newsletter"
    manual_export_steps = "Mailchimp: Audience → All contacts → Export Audience, then download the zip"

    @classmethod
    def recognizes(cls, table: CsvTable) -> bool:
        return table.has("email address") and table.has_any(*MAILCHIMP_COLUMNS)

    def contact(self, row: dict[str, str], table: CsvTable) -> OwnedContact:
        written, key = email_of(row.get("email address"))
        status = _status_of(table)
        opted_in = time_of(first(row, "optin time"), "OPTIN_TIME")
        confirmed = time_of(first(row, "confirm time"), "CONFIRM_TIME")
        left = time_of(first(row, "unsub time", "clean time"), "UNSUB_TIME" if status == "unsubscribed" else "CLEAN_TIME")
        return OwnedContact(
            native_id=key, email=written, channel="newsletter", status=status,
            consent=status == "subscribed",
            display_name=joined_name(first(row, "first name", "fname"), first(row, "last name", "lname")),
            joined_at=opted_in or confirmed, consent_at=confirmed or opted_in, left_at=left,
            provider_id=first(row, "euid", "leid"), raw=kept_columns(row))
