"""The audience the person owns: how many people they can reach without any platform,
against their followers on each platform, over time (`archiver audience reach`, the report).

Owned contacts (table ``owned_contacts``: newsletter subscribers, shop customers, imported
from the providers' CSV exports) are people of the ``owned`` kind. Only counts leave this
module: no address, no name. A contact is **reachable** when their status is subscribed (a
newsletter) or customer (a shop) and their consent is on record (``consent = 1``); the same
address on several lists is one person. Customers of a shop that keeps no consent (consent
unknown) are counted apart, as "no consent on record": they bought, they did not agree to
receive email.

Over time, a contact is reachable from when they joined (their confirmed opt-in, else when
they subscribed or signed up, else when an import first listed them) until they left
(unsubscribed, cleaned): so a list that shrank shows it, though each contact has one row.
Followers per platform are each account's reported counts (``account_metrics``), else the
size of its complete follower lists (``snapshots``), the last one at or before each month's end.

In audience commands an owned contact is named ``owned:<email address>``; it is stored (in
``person_links``) only as ``owned:`` and a digest of the address (``owned_identity``), so the
address itself stays in ``owned_contacts``, a table `archiver serve` never shows.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

OWNED = "owned"
REACHABLE = "consent = 1 AND status IN ('subscribed', 'customer')"
# How many months `reach` shows at most (the archive keeps every date; a chart of more says little).
MAX_MONTHS = 36


def owned_identity(contact_id: str) -> str:
    """The identity of an owned contact in ``person_links``: "owned:" and the first 24 hex
    digits of the sha256 of the address (trimmed, case folded), never the address."""
    return f"{OWNED}:" + hashlib.sha256(contact_id.strip().casefold().encode()).hexdigest()[:24]


def has_contacts(db) -> bool:
    return db.execute("SELECT 1 FROM owned_contacts LIMIT 1").fetchone() is not None


def reachable_now(db) -> int:
    return db.execute(f"SELECT count(DISTINCT contact_id) FROM owned_contacts WHERE {REACHABLE}").fetchone()[0]


def reachable_contact_ids(db) -> set[str]:
    return {row[0] for row in db.execute(f"SELECT DISTINCT contact_id FROM owned_contacts WHERE {REACHABLE}")}


def _month_end(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    following = _dt.date(year + number // 12, number % 12 + 1, 1)
    return (following - _dt.timedelta(days=1)).strftime("%Y-%m-%dT23:59:59Z")


def _months(first: str, last: str, limit: int) -> list[str]:
    months, year, number = [], int(first[:4]), int(first[5:7])
    while f"{year:04d}-{number:02d}" <= last[:7]:
        months.append(f"{year:04d}-{number:02d}")
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return months[-limit:]


# When a contact became reachable, and until when (SQL over owned_contacts).
_START = "coalesce(consent_at, joined_at, first_seen_at)"
_INTERVALS = (f"SELECT contact_id, {_START} AS start, NULL AS stop FROM owned_contacts WHERE {REACHABLE} "
              f"UNION ALL SELECT contact_id, {_START}, left_at FROM owned_contacts "
              "WHERE status IN ('unsubscribed', 'cleaned') AND left_at IS NOT NULL AND channel = 'newsletter'")


def _followers_at(db, platforms: dict[str, list[str]], moment: str) -> dict[str, int | None]:
    """Followers per platform at ``moment``: the sum over its accounts of each one's last
    count at or before it (None for a platform none of whose accounts had one yet)."""
    found: dict[str, int | None] = {}
    for platform, accounts in platforms.items():
        total, known = 0, False
        for account in accounts:
            row = db.execute("SELECT followers FROM account_metrics WHERE account_id=? AND followers IS NOT NULL "
                             "AND observed_at <= ? ORDER BY observed_at DESC LIMIT 1", [account, moment]).fetchone()
            if row is None and db.execute("SELECT 1 FROM account_metrics WHERE account_id=? "
                                          "AND followers IS NOT NULL LIMIT 1", [account]).fetchone() is None:
                row = db.execute("SELECT max(member_count) FROM snapshots WHERE account_id=? AND kind='followers' "
                                 "AND complete=1 AND taken_at = (SELECT max(taken_at) FROM snapshots "
                                 "WHERE account_id=? AND kind='followers' AND complete=1 AND taken_at <= ?)",
                                 [account, account, moment]).fetchone()
            if row is not None and row[0] is not None:
                total, known = total + row[0], True
        found[platform] = total if known else None
    return found


def _follower_accounts(db) -> dict[str, list[str]]:
    """platform -> its accounts that have follower counts or complete follower lists."""
    platforms: dict[str, list[str]] = {}
    for (account,) in db.execute(
            "SELECT account_id FROM account_metrics WHERE followers IS NOT NULL "
            "UNION SELECT account_id FROM snapshots WHERE kind='followers' AND complete=1 ORDER BY 1"):
        platforms.setdefault(account.split(":", 1)[0], []).append(account)
    return platforms


def reach(db, *, now: str | None = None, months: int = 12) -> dict[str, Any]:
    """Counts only: ``reachable`` now, per channel and per list; ``no_consent`` (customers whose
    consent no list records); ``followers`` now per platform; ``timeline``: per month (its
    end, oldest first, at most ``months``) the people reachable then and the followers per
    platform then."""
    from archiver.records import iso_utc, now_utc

    now = (iso_utc(now) if now else None) or now_utc()
    months = max(1, min(months, MAX_MONTHS))
    reachable = reachable_now(db)
    per_list = [dict(zip(("account_id", "channel", "reachable", "contacts"), row, strict=True)) for row in db.execute(
        f"SELECT account_id, channel, count(DISTINCT CASE WHEN {REACHABLE} THEN contact_id END), count(*) "
        "FROM owned_contacts GROUP BY account_id, channel ORDER BY account_id")]
    per_channel = {row[0]: row[1] for row in db.execute(
        f"SELECT channel, count(DISTINCT contact_id) FROM owned_contacts WHERE {REACHABLE} GROUP BY channel")}
    no_consent = db.execute(
        "SELECT count(DISTINCT contact_id) FROM owned_contacts o WHERE consent IS NULL AND status = 'customer' "
        f"AND NOT EXISTS (SELECT 1 FROM owned_contacts r WHERE r.contact_id = o.contact_id AND r.{REACHABLE}) "
        "AND NOT EXISTS (SELECT 1 FROM owned_contacts n WHERE n.contact_id = o.contact_id AND n.consent = 0)"
    ).fetchone()[0]
    platforms = _follower_accounts(db)
    earliest = db.execute(f"SELECT min(start) FROM ({_INTERVALS})").fetchone()[0]
    firsts = [earliest] if earliest else []
    firsts += [r[0] for r in db.execute("SELECT min(observed_at) FROM account_metrics WHERE followers IS NOT NULL "
                                        "UNION ALL SELECT min(taken_at) FROM snapshots WHERE kind='followers'") if r[0]]
    timeline = []
    if firsts:
        for month in _months(min(firsts), now, months):
            moment = min(_month_end(month), now)
            count = db.execute(f"SELECT count(DISTINCT contact_id) FROM ({_INTERVALS}) "
                               "WHERE start <= ? AND (stop IS NULL OR stop > ?)", [moment, moment]).fetchone()[0]
            timeline.append({"month": month, "at": moment, "reachable": count,
                             "followers": _followers_at(db, platforms, moment)})
    return {"now": now, "reachable": reachable, "per_channel": per_channel, "per_list": per_list,
            "no_consent": no_consent, "followers": _followers_at(db, platforms, now), "timeline": timeline}
