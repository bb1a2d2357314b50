"""The audience: the people behind the archived followers, following and comments.

Read-only over the archive except for ``person_links`` (suggested / confirmed / rejected
links between identities of one person on several platforms). Every function takes a
sqlite-utils ``Database`` (``Archive.db``) and, where time matters, ``now`` (UTC ISO-8601;
the current time when None) so reports are reproducible in tests.

Identities are named ``"platform:person_id"`` (e.g. ``instagram:17841400000``; a person id
may itself hold ':' as Bluesky DIDs do, the platform never does). Identities joined by
confirmed links are one person everywhere here; their ``person_key`` is the smallest
``"platform:person_id"`` of the group, so it is stable while the group is.

Engagement score (documented in README, "Audience"): the sum over the person's comments
and replies on the owner's posts (``comments.by_owner = 0``) of ``0.5 ** (age_days / 90)``:
a comment made today weighs 1, one 90 days old 0.5, one a year old about 0.06. Comments
without a date count in ``comment_count`` but add nothing to the score.
"""

from __future__ import annotations

import csv
import datetime as _dt
import heapq
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from archiver.inert import csv_cell, vcard_text
from archiver.records import iso_utc, now_utc
from archiver.views.reach import OWNED, owned_identity, reachable_contact_ids
from archiver.views.web import web_link

HALF_LIFE_DAYS = 90
SEGMENTS = ("followers", "following", "connections", "commenters", "top", "lost", "invite", "all")
FORMATS = ("csv", "json", "vcf")
EXPORT_COLUMNS = ("person_key", "display_name", "handles", "profile_urls", "follower_since",
                  "last_interaction", "comment_count", "engagement_score", "lost_at", "connected_since")
IDENTITY_EXAMPLE = "platform:person_id, e.g. instagram:17841400000, or owned:<email> for a subscriber or customer"

# Confidence of each reason a suggestion can have; several reasons for one pair combine
# as independent evidence: 1 - (1 - c1) * (1 - c2) ...
CONFIDENCE = {
    "bio_link": 0.9,          # the person links the other profile from this one
    "bio_names_handle": 0.8,  # the bio names the other handle with its platform, or one that is unique
                              # wherever written ("@alice on X", "@alice@mastodon.social")
    "name_and_avatar": 0.7,   # same display name and the same avatar
    "same_handle": 0.6,       # same handle on two platforms (common names collide)
    "bio_handle": 0.5,        # the bio mentions a bare @handle (often someone else's) of the other
}
# A handle shared by more identities than this is a common word, not a person.
MAX_SAME_HANDLE_GROUP = 6


class AudienceError(ValueError):
    """A bad argument from the user (an identity that is malformed or not in the archive)."""


def engagement_score_sql(created_at: str = "c.created_at", now: str = "'now'") -> str:
    """The SQL aggregate for the engagement score of a group of comments.

    ``created_at`` is the column holding each comment's time; ``now`` an SQL expression
    for the moment ages are measured from (a literal, or a parameter like ``:now``). Use it
    over comments with ``by_owner = 0``, grouped by (platform, author_id)::

        SELECT platform, author_id, {engagement_score_sql()} AS score
        FROM comments c WHERE by_owner = 0 GROUP BY platform, author_id

    A comment dated in the future (clock skew) weighs 1, never more.
    """
    return (f"coalesce(sum(pow(0.5, max(0.0, julianday({now}) - julianday({created_at})) / "
            f"{float(HALF_LIFE_DAYS)})), 0.0)")


# -- identities and links ---------------------------------------------------------------------


def parse_identity(value: str, argument: str = "identity") -> tuple[str, str]:
    """"platform:person_id" -> (platform, person_id), or AudienceError naming ``argument``."""
    platform, sep, person = (value or "").strip().partition(":")
    if not sep or not platform or not person or not re.fullmatch(r"[a-z0-9_.-]+", platform):
        raise AudienceError(f"{argument}: {value!r} is not an identity; expected {IDENTITY_EXAMPLE}")
    return platform, person


def identity(platform: str, person_id: str) -> str:
    return f"{platform}:{person_id}"


def _ordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass
class _Groups:
    """Confirmed links as groups: identity -> person_key (the smallest identity of its group).
    Only linked identities are in the map; everyone else is their own key. Confirmed links
    are made by hand, so this is small whatever the audience's size."""

    key_of: dict[str, str]
    members: dict[str, list[str]]

    def key(self, ident: str) -> str:
        return self.key_of.get(ident, ident)


def _groups(db) -> _Groups:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a_platform, a_person, b_platform, b_person in db.execute(
        "SELECT a_platform, a_person, b_platform, b_person FROM person_links WHERE status='confirmed'"
    ):
        ra, rb = find(identity(a_platform, a_person)), find(identity(b_platform, b_person))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for ident in list(parent):
        members.setdefault(find(ident), []).append(ident)
    key_of = {}
    for group in members.values():
        group.sort()
        for ident in group:
            key_of[ident] = group[0]
    return _Groups(key_of, {group[0]: group for group in members.values()})


def _require_person(db, ident: str, argument: str) -> tuple[str, str]:
    from archiver.connector import canonical_platform

    platform, person = parse_identity(ident, argument)
    if platform == OWNED:   # "owned:<email>": a subscriber or customer, kept by the digest of the address
        found = db.execute("SELECT 1 FROM owned_contacts WHERE contact_id=? LIMIT 1",
                           [person.strip().casefold()]).fetchone()
        if found is None:
            raise AudienceError(f"{argument}: no owned contact with that address in the archive (import your "
                                "newsletter's or shop's export first: `archiver import FILE`)")
        return parse_identity(owned_identity(person))
    platform = canonical_platform(platform)   # an alias names its platform: "twitter:42" is "x:42"
    if db.execute("SELECT 1 FROM people WHERE platform=? AND person_id=?", [platform, person]).fetchone() is None:
        raise AudienceError(f"{argument}: no person {ident} in the archive "
                            f"(identities are {IDENTITY_EXAMPLE}; see `archiver audience links --all`)")
    return platform, person


def _set_link(db, a: str, b: str, status: str, reason: str, now: str | None) -> None:
    a_platform, a_person = _require_person(db, a, "A")
    b_platform, b_person = _require_person(db, b, "B")
    if (a_platform, a_person) == (b_platform, b_person):
        raise AudienceError(f"A and B are the same identity ({a}); name two different ones")
    first, second = _ordered(identity(a_platform, a_person), identity(b_platform, b_person))
    (p1, i1), (p2, i2) = parse_identity(first), parse_identity(second)
    existing = db.execute(
        "SELECT confidence, reason FROM person_links WHERE a_platform=? AND a_person=? AND b_platform=? AND b_person=?",
        [p1, i1, p2, i2],
    ).fetchone()
    confidence, why = existing if existing else (1.0, reason)
    with db.conn:
        db.execute(
            "INSERT INTO person_links (a_platform, a_person, b_platform, b_person, confidence, reason, status, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(a_platform, a_person, b_platform, b_person) DO UPDATE SET "
            "status=excluded.status, updated_at=excluded.updated_at",
            [p1, i1, p2, i2, confidence, why, status, now or now_utc()],
        )


def link(db, a: str, b: str, *, now: str | None = None) -> None:
    """Confirm that identities ``a`` and ``b`` are one person (joined in every report)."""
    _set_link(db, a, b, "confirmed", "linked by hand", now)


def unlink(db, a: str, b: str, *, now: str | None = None) -> None:
    """Reject a link: ``a`` and ``b`` are not one person; the pair is never suggested again."""
    _set_link(db, a, b, "rejected", "rejected by hand", now)


def list_links(db, status: str | None = None) -> list[dict]:
    """Links, most confident first: a, b ("platform:person_id"), confidence, reason, status."""
    sql = ("SELECT a_platform, a_person, b_platform, b_person, confidence, reason, status, updated_at "
           "FROM person_links")
    params: list[Any] = []
    if status:
        sql += " WHERE status=?"
        params.append(status)
    sql += " ORDER BY confidence DESC, a_platform, a_person, b_platform, b_person"
    return [
        {"a": identity(r[0], r[1]), "b": identity(r[2], r[3]), "confidence": r[4], "reason": r[5],
         "status": r[6], "updated_at": r[7]}
        for r in db.execute(sql, params)
    ]


# A link in a bio: with its scheme (then a bare domain counts: "https://alice.example"), or
# without one when it has a path ("x.com/alice"). It starts where a word does: tried inside
# every word, a long one ("aaaa…", a stranger's bio) took time growing with its square.
_URL = re.compile(r"(?<![\w.-])(?:https?://(?:www\.|m\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:/[^\s,;)\]\"'<>]*)?"
                  r"|(?:www\.|m\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)+/[^\s,;)\]\"'<>]+)", re.IGNORECASE)
# Bios are short on every platform (X 160 characters, Bluesky 256, Mastodon 500 by
# default); a longer one is read this far.
MAX_BIO_CHARS = 5000
_HANDLE = r"[\w.][\w.-]{1,60}\w"
_DOMAIN = r"[a-z0-9-]+(?:\.[a-z0-9-]+)+"
_MENTION = re.compile(rf"(?<![\w@])@({_HANDLE})")
# A fediverse address, "@alice@mastodon.social": one identity wherever it is written.
_ADDRESS = re.compile(rf"(?<![\w@])@({_HANDLE}@{_DOMAIN})(?![\w.-]*\w)", re.IGNORECASE)


# What may stand before the handle in a profile page's path (…/profile/alice, …/in/alice,
# …/users/alice); any other two-part path is not taken for a profile page unless it is
# the person's own stored profile link.
PROFILE_PATH_PREFIXES = frozenset(("profile", "in", "c", "u", "user", "users", "channel", "people"))


def normalize_handle(handle: str | None) -> str | None:
    if not handle:
        return None
    value = handle.strip().lstrip("@").lower()
    return value or None


def normalize_url(url: str | None) -> str | None:
    """A profile URL reduced to what identifies it: no scheme, www., query or trailing slash."""
    if not url:
        return None
    value = url.strip().lower()
    value = re.sub(r"^[a-z]+://", "", value)
    value = re.sub(r"^(www\.|m\.)", "", value)
    value = value.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return value or None


@dataclass(frozen=True)
class PlatformFacts:
    """How people show on one platform, as its connector declares it (``Connector.profile_hosts``,
    ``handles_are_domains``, ``handle_domains``, ``other_names``; see connector.py). ``names``:
    the platform's name, title, aliases and other names, lower case (what a bio calls it)."""

    profile_hosts: tuple[str, ...] = ()
    handles_are_domains: bool = False
    handle_domains: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


def platform_facts() -> dict[str, PlatformFacts]:
    """The facts of every installed connector, by platform name."""
    from archiver.connector import installed_connectors

    facts = {}
    for name, cls in installed_connectors().items():
        # getattr: a third party's connector written before these existed declares none.
        facts[name] = PlatformFacts(
            profile_hosts=tuple(h.lower() for h in getattr(cls, "profile_hosts", ())),
            handles_are_domains=bool(getattr(cls, "handles_are_domains", False)),
            handle_domains=tuple(d.lower().strip(".") for d in getattr(cls, "handle_domains", ())),
            names=tuple(dict.fromkeys(n.lower() for n in (name, getattr(cls, "title", ""),
                                                           *getattr(cls, "platform_aliases", ()),
                                                           *getattr(cls, "other_names", ())) if n)),
        )
    return facts


class _Platforms:
    """The platform facts as ``suggest_links`` asks them: canonical profile URLs, handle keys."""

    def __init__(self, facts: dict[str, PlatformFacts]):
        self.facts = facts
        # Every profile host -> the platform's usual one ("twitter.com" -> "x.com").
        self.host_alias = {host: f.profile_hosts[0] for f in facts.values() for host in f.profile_hosts}
        self.default_domains = sorted({d for f in facts.values() for d in f.handle_domains}, key=len, reverse=True)

    def of(self, platform: str) -> PlatformFacts:
        return self.facts.get(platform) or PlatformFacts(names=(platform,))

    def canonical_url(self, url: str | None) -> str | None:
        """``normalize_url`` with the host replaced by its platform's usual one."""
        value = normalize_url(url)
        if not value:
            return None
        host, sep, path = value.partition("/")
        return self.host_alias.get(host, host) + sep + path

    def is_profile_host(self, platform: str, host: str) -> bool:
        """Whether ``host`` (canonical) serves ``platform``'s profile pages: one of its declared
        hosts, or for a platform that declares none, "<platform>.<tld>" (the whole first
        label: "example.com" is nobody's, though the platform "x" is in its name)."""
        hosts = self.of(platform).profile_hosts
        if hosts:
            return host in hosts
        label, _, tld = host.partition(".")
        return label == platform and bool(tld) and "." not in tld

    def handle_key(self, platform: str | None, handle: str | None) -> str | None:
        """The comparable form of a handle: lower case, without a leading "@"; a fediverse
        handle ("alice@mastodon.social") by its name before the server; a handle under a
        domain the platform hands out ("alice.bsky.social") by the name before it (with
        ``platform`` None: under any platform's). Any other handle with dots is whole."""
        bare = normalize_handle(handle)
        if not bare:
            return None
        if bare.find("@") > 0:
            return bare.split("@", 1)[0]
        domains = self.of(platform).handle_domains if platform else self.default_domains
        for domain in domains:
            if bare.endswith("." + domain) and len(bare) > len(domain) + 1:
                return bare[: -len(domain) - 1]
        return bare

    def handle_key_sql(self, handle: str, platform: str) -> tuple[str, list[Any]]:
        """``handle_key`` in SQL over the columns ``handle`` and ``platform``, with its parameters."""
        bare = f"lower(ltrim({handle}, '@'))"
        cases = [f"WHEN instr({bare}, '@') > 1 THEN substr({bare}, 1, instr({bare}, '@') - 1)"]
        params: list[Any] = []
        for name, facts in sorted(self.facts.items()):
            for domain in facts.handle_domains:
                cases.append(f"WHEN {platform} = ? AND length({bare}) > ? AND substr({bare}, -?) = ? "
                             f"THEN substr({bare}, 1, length({bare}) - ?)")
                suffix = "." + domain
                params += [name, len(suffix), len(suffix), suffix, len(suffix)]
        return f"(CASE {' '.join(cases)} ELSE {bare} END)", params


@dataclass(frozen=True)
class _Pointer:
    """Something a profile says that points at an identity elsewhere.

    ``how``: "url" (a link: ``value`` its canonical form), "domain" (a link to a bare domain),
    "named" (a handle with its platform's name: "@alice on X"), "mention" (a bare @handle or
    a fediverse address). ``platform``: the platform a "named" pointer names."""

    source: tuple[str, str]
    how: str
    value: str
    text: str
    platform: str | None = None


def _pointers(platform: str, person_id: str, bio: str | None, links: str | None,
              platforms: _Platforms, named: re.Pattern | None) -> Iterator[_Pointer]:
    source = (platform, person_id)
    urls: list[str] = []
    try:
        urls = [u for u in json.loads(links or "[]") if isinstance(u, str)]
    except ValueError:
        pass
    text = (bio or "")[:MAX_BIO_CHARS]
    urls += _URL.findall(text)
    for url in dict.fromkeys(urls):
        canonical = platforms.canonical_url(url)
        if not canonical:
            continue
        yield _Pointer(source, "url" if "/" in canonical else "domain", canonical, url)
    # Links are out of the way of the mentions (an "@" in a link's path is not one).
    text = _URL.sub(" ", text)
    if named is not None:
        for match in named.finditer(text):
            name = (match.group("n1") or match.group("n2")).lower()
            handle = match.group("h1") or match.group("h2")
            target = next((p for p, f in platforms.facts.items() if name in f.names), None)
            if target:
                yield _Pointer(source, "named", handle.lower(), match.group(0).strip(), target)
        text = named.sub(" ", text)
    for address in _ADDRESS.findall(text):
        yield _Pointer(source, "mention", address.lower(), "@" + address)
    for mention in _MENTION.findall(_ADDRESS.sub(" ", text)):
        yield _Pointer(source, "mention", mention.lower(), "@" + mention)


def _named_pattern(platforms: _Platforms) -> re.Pattern | None:
    """ "@alice on X", "@alice (Twitter)", "X: @alice", "Mastodon: @alice@mastodon.social"."""
    names = sorted({n for f in platforms.facts.values() for n in f.names}, key=len, reverse=True)
    if not names:
        return None
    name = "|".join(re.escape(n) for n in names)
    handle = rf"{_HANDLE}(?:@{_DOMAIN})?"
    return re.compile(
        rf"(?<![\w@])@(?P<h1>{handle})(?:\s+(?:on|at)\s+(?:the\s+)?|\s*[(\[]\s*)(?P<n1>{name})(?!\w|\.\w)"
        rf"|(?<![\w.@])(?P<n2>{name})\s*[:：]\s*@?(?P<h2>{handle})(?![\w@])",
        re.IGNORECASE)


def _url_points_at(pointer: _Pointer, platforms: _Platforms, target: tuple[str, str], handle: str | None,
                   url: str | None) -> bool:
    """Whether the link ``pointer.value`` (canonical) is the profile page of ``target``."""
    if url and platforms.canonical_url(url) == pointer.value:
        return True
    host, _, path = pointer.value.partition("/")
    segments = path.split("/")
    if len(segments) > 2 or (len(segments) == 2 and segments[0] not in PROFILE_PATH_PREFIXES):
        return False   # x.com/alice/status/1 is a post, x.com/hashtag/tea a search: not profiles
    tail = segments[-1].lstrip("@")
    bare = normalize_handle(handle)
    # On the platform's own site, the page of the handle (or of the id: bsky.app/profile/did:…).
    if platforms.is_profile_host(target[0], host) and tail in (bare, target[1].lower()):
        return True
    # A fediverse profile: on the person's server (mastodon.social/@alice, /users/alice), or
    # seen through another server (other.example/@alice@mastodon.social).
    if bare and "@" in bare:
        name, _, server = bare.partition("@")
        return (host == server and tail == name and segments[0] in ("@" + name, "users")) or \
            (len(segments) == 1 and tail == bare)
    return False


def suggest_links(db, *, now: str | None = None, facts: dict[str, PlatformFacts] | None = None) -> int:
    """Recompute the suggested links; returns how many are open (status "suggested").

    Confirmed and rejected pairs are kept as they are and never suggested again. Reasons
    (README, "Audience"): the same handle on two platforms; a bio or profile link of one that
    points at the other's profile, a handle it names; the same display name and avatar.
    Only identities on different platforms are paired. ``facts``: how people show on each
    platform (``platform_facts()``, from the installed connectors, when None).
    """
    now = now or now_utc()
    platforms = _Platforms(platform_facts() if facts is None else facts)
    found: dict[tuple[str, str], dict[str, str]] = {}  # pair -> reason kind -> text

    def add(x: tuple[str, str], y: tuple[str, str], kind: str, text: str) -> None:
        if x[0] == y[0]:
            return
        pair = _ordered(identity(*x), identity(*y))
        found.setdefault(pair, {}).setdefault(kind, text)

    def grouped(sql: str, params: list[Any]) -> Iterator[list[tuple]]:
        """Rows sorted by their first column, in runs of equal first column (streamed)."""
        run: list[tuple] = []
        for row in db.execute(sql, params):
            if run and row[0] != run[0][0]:
                yield run
                run = []
            if len(run) <= MAX_SAME_HANDLE_GROUP:
                run.append(row)
        if run:
            yield run

    def pairs(sql: str, params: list[Any]) -> Iterator[tuple[tuple, tuple]]:
        for run in grouped(sql, params):
            if 2 <= len(run) <= MAX_SAME_HANDLE_GROUP:
                for i, first in enumerate(run):
                    for second in run[i + 1:]:
                        yield first, second

    # 1. Same handle (see _Platforms.handle_key) on different platforms.
    key_sql, key_params = platforms.handle_key_sql("handle", "platform")
    for first, second in pairs(f"SELECT {key_sql} AS h, platform, person_id FROM people "
                               "WHERE handle IS NOT NULL AND handle != '' ORDER BY h", key_params):
        add(first[1:], second[1:], "same_handle", f"same handle @{first[0]}")

    # 2. Same display name and the same avatar: the same picture file (the stored avatars'
    # sha256, where both were downloaded), or the same link (only ever within one site:
    # across platforms the links always differ).
    for column, what in (("avatar_sha256", "the same avatar picture (identical file)"),
                         ("avatar_url", "the same avatar link")):
        for first, second in pairs(
            f"SELECT lower(trim(display_name)) || char(10) || {column} AS k, platform, person_id, display_name "
            f"FROM people WHERE display_name IS NOT NULL AND trim(display_name) != '' AND {column} IS NOT NULL "
            f"AND {column} != '' ORDER BY k", []
        ):
            add(first[1:3], second[1:3], "name_and_avatar", f"same display name {first[3]!r} and {what}")

    # 3. What bios and profile links point at: collect the pointers of the (few) people
    # with a bio or links, then find the identities they may name in one pass.
    named = _named_pattern(platforms)
    pointers: list[_Pointer] = []
    wanted: set[str] = set()
    for platform, person_id, bio, links in db.execute(
        "SELECT platform, person_id, bio, links FROM people WHERE bio IS NOT NULL OR links IS NOT NULL"
    ):
        for pointer in _pointers(platform, person_id, bio, links, platforms, named):
            pointers.append(pointer)
            if pointer.how == "url":
                host, _, path = pointer.value.partition("/")
                tail = path.rsplit("/", 1)[-1].lstrip("@")
                wanted.update((tail, f"{tail}@{host}"))
            elif pointer.how == "domain":
                wanted.add(pointer.value)
            else:
                wanted.update((pointer.value, platforms.handle_key(pointer.platform, pointer.value) or ""))
    if not pointers:
        return _store_suggestions(db, found, now)
    db.execute("DROP TABLE IF EXISTS temp.audience_pointed")
    db.execute("CREATE TEMP TABLE audience_pointed (h TEXT PRIMARY KEY) WITHOUT ROWID")
    db.conn.executemany("INSERT OR IGNORE INTO temp.audience_pointed VALUES (?)", [(w,) for w in wanted if w])
    key_sql, key_params = platforms.handle_key_sql("p.handle", "p.platform")
    rows = db.execute(
        f"SELECT p.platform, p.person_id, p.handle, p.url, {key_sql} FROM people p "
        "WHERE lower(ltrim(p.handle, '@')) IN (SELECT h FROM temp.audience_pointed) "
        f"OR {key_sql} IN (SELECT h FROM temp.audience_pointed) "
        "OR lower(p.person_id) IN (SELECT h FROM temp.audience_pointed)",
        key_params * 2,
    ).fetchall()
    db.execute("DROP TABLE temp.audience_pointed")
    by_value: dict[str, list[tuple]] = {}   # a handle, key or id -> the identities it may name
    for row in rows:
        for value in {normalize_handle(row[2]), row[4], row[1].lower()}:
            if value:
                by_value.setdefault(value, []).append(row)
    for pointer in pointers:
        _match_pointer(pointer, platforms, by_value, add)
    return _store_suggestions(db, found, now)


def _match_pointer(pointer: _Pointer, platforms: _Platforms, by_value: dict[str, list[tuple]], add) -> None:
    """Pair ``pointer.source`` with the identities (rows of ``by_value``) the pointer names."""
    source = identity(*pointer.source)
    if pointer.how == "url":
        host, _, path = pointer.value.partition("/")
        tail = path.rsplit("/", 1)[-1].lstrip("@")
        candidates = by_value.get(tail, []) + by_value.get(f"{tail}@{host}", [])
        for platform, person_id, handle, url, _key in dict.fromkeys(candidates):
            if _url_points_at(pointer, platforms, (platform, person_id), handle, url):
                add(pointer.source, (platform, person_id), "bio_link", f"{source} links to {pointer.text}")
        return
    if pointer.how == "domain":
        # A link to a bare domain points at the identity whose handle is that domain, on a
        # platform where a handle is a domain its holder proved they control.
        for platform, person_id, handle, _url, _key in by_value.get(pointer.value, []):
            if platforms.of(platform).handles_are_domains and normalize_handle(handle) == pointer.value:
                add(pointer.source, (platform, person_id), "bio_link",
                    f"{source} links to {pointer.text}, the domain of the handle @{pointer.value}")
        return
    mention_key = platforms.handle_key(pointer.platform, pointer.value)
    candidates = by_value.get(pointer.value, []) + by_value.get(mention_key or "", [])
    for platform, person_id, handle, _url, key in dict.fromkeys(candidates):
        bare = normalize_handle(handle)
        if pointer.how == "named":
            exact = "@" in pointer.value   # a fediverse address names one server's account
            if platform == pointer.platform and (bare == pointer.value or (not exact and key == mention_key)):
                add(pointer.source, (platform, person_id), "bio_names_handle", f"{source} says {pointer.text!r}")
        elif bare == pointer.value and ("@" in bare or platforms.of(platform).handles_are_domains):
            # A fediverse address or a domain handle written out: one identity only.
            add(pointer.source, (platform, person_id), "bio_names_handle",
                f"{source} names {pointer.text} in the bio")
        elif key == mention_key == pointer.value:   # a plain name, on any platform
            add(pointer.source, (platform, person_id), "bio_handle",
                f"{source} mentions {pointer.text} in the bio")


def _store_suggestions(db, found: dict[tuple[str, str], dict[str, str]], now: str) -> int:
    """Replace the open suggestions with ``found`` (but for pairs decided by hand)."""
    with db.conn:
        db.execute("DELETE FROM person_links WHERE status='suggested'")
        decided = {
            (identity(r[0], r[1]), identity(r[2], r[3]))
            for r in db.execute("SELECT a_platform, a_person, b_platform, b_person FROM person_links")
        }
        rows = []
        for (a, b), reasons in found.items():
            if (a, b) in decided:
                continue
            doubt = 1.0
            for kind in reasons:
                doubt *= 1.0 - CONFIDENCE[kind]
            (p1, i1), (p2, i2) = parse_identity(a), parse_identity(b)
            rows.append((p1, i1, p2, i2, round(1.0 - doubt, 4), "; ".join(reasons[k] for k in sorted(reasons)),
                         "suggested", now))
        db.conn.executemany(
            "INSERT INTO person_links (a_platform, a_person, b_platform, b_person, confidence, reason, status, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )
    return db.execute("SELECT count(*) FROM person_links WHERE status='suggested'").fetchone()[0]


# -- time helpers --------------------------------------------------------------------------------


def _now(now: str | None) -> str:
    return (iso_utc(now) if now else None) or now_utc()   # iso_utc of a non-empty text is never None


def _since_days(now: str, days: int | None) -> str | None:
    if days is None:
        return None
    moment = _dt.datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ") - _dt.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _platform_of_account(column: str = "account_id") -> str:
    return f"substr({column}, 1, instr({column}, ':') - 1)"


# -- top fans -------------------------------------------------------------------------------------


def top_fans(db, *, platform: str | None = None, days: int | None = None, limit: int = 50,
             now: str | None = None) -> list[dict]:
    """The most engaged people: comments and replies on the owner's posts, recency weighted
    (see ``engagement_score_sql``), identities joined by confirmed links merged into one row.
    ``days`` counts only comments of the last N days; ``platform`` only that platform's."""
    now = _now(now)
    cutoff = _since_days(now, days)
    groups = _groups(db)
    where = ["c.by_owner = 0", "c.author_id IS NOT NULL"]
    params: dict[str, Any] = {"now": now}
    if platform:
        where.append("c.platform = :platform")
        params["platform"] = platform
    if cutoff:
        where.append("c.created_at >= :cutoff")
        params["cutoff"] = cutoff
    # One pass over the covering index comments_by_author: per identity, its count, newest
    # comment and score. Merging linked identities happens here in Python (few of them).
    merged: dict[str, list] = {}
    for plat, author, count, last, score in db.execute(
        f"SELECT c.platform, c.author_id, count(*), max(c.created_at), {engagement_score_sql('c.created_at', ':now')} "
        f"FROM comments c WHERE {' AND '.join(where)} GROUP BY c.platform, c.author_id",
        params,
    ):
        ident = identity(plat, author)
        key = groups.key(ident)
        if key == ident and key not in groups.members:
            merged[key] = [count, last, score, [ident]]
            continue
        entry = merged.setdefault(key, [0, None, 0.0, []])
        entry[0] += count
        entry[1] = max(filter(None, (entry[1], last)), default=None)
        entry[2] += score
        entry[3].append(ident)
    best = heapq.nlargest(limit, merged.items(), key=lambda item: (round(item[1][2], 9), item[1][0], item[0]))
    result = []
    for key, (count, last, score, idents) in best:
        platforms = sorted(set(idents) | set(groups.members.get(key, [])))
        profile = _profile(db, platforms, prefer=idents)
        result.append({
            "person_key": key, "platforms": platforms, "handle": profile.get("handle"),
            "display_name": profile.get("display_name"), "url": profile.get("url"),
            "avatar_url": profile.get("avatar_url"), "comment_count": count,
            "last_interaction": last, "score": round(score, 6),
        })
    # Highest score first; ties by more comments, then the key, so the order is stable.
    result.sort(key=lambda r: (-r["score"], -r["comment_count"], r["person_key"]))
    return result


def _profile(db, idents: list[str], prefer: list[str]) -> dict:
    """Name, handle, URL and avatar for a merged person: from the identity that commented
    most recently named first in ``prefer``, else the first that has them."""
    order = list(dict.fromkeys(list(prefer) + list(idents)))
    profile: dict[str, Any] = {}
    for ident in order:
        plat, person = parse_identity(ident)
        row = db.execute(
            "SELECT handle, display_name, url, avatar_url FROM people WHERE platform=? AND person_id=?", [plat, person]
        ).fetchone()
        if row is None:
            continue
        for name, value in zip(("handle", "display_name", "url", "avatar_url"), row, strict=True):
            if profile.get(name) is None and value is not None:
                profile[name] = value
    return profile


# -- churn ------------------------------------------------------------------------------------------


def churn(db, *, platform: str | None = None, days: int = 30, now: str | None = None) -> list[dict]:
    """New and lost followers per day and platform over the last ``days`` days, oldest day
    first, from ``audience_events`` (kind "followers")."""
    now = _now(now)
    params: dict[str, Any] = {"cutoff": _since_days(now, days), "now": now}
    where = "kind = 'followers' AND at >= :cutoff AND at <= :now"
    if platform:
        where += " AND account_id >= :lo AND account_id < :hi"
        params |= {"lo": platform + ":", "hi": platform + ";"}
    # Grouped in the order of the covering index audience_events_by_kind_time (kind, at,
    # account_id, event), so SQLite counts while it walks the index, without a sort;
    # the few groups (one per event time and account) are summed per day here.
    per_day: dict[tuple[str, str], dict[str, Any]] = {}
    for at, account_id, event, count in db.execute(
        f"SELECT at, account_id, event, count(*) FROM audience_events WHERE {where} "
        "GROUP BY at, account_id, event",
        params,
    ):
        key = (at[:10], account_id.split(":", 1)[0])
        row = per_day.setdefault(key, {"day": key[0], "platform": key[1], "new": 0, "lost": 0})
        if event in ("new", "lost"):
            row[event] += count
    return [per_day[key] for key in sorted(per_day)]


def lost_followers(db, *, platform: str | None = None, days: int = 30, now: str | None = None) -> list[dict]:
    """Followers lost in the last ``days`` days, newest first, with their names."""
    now = _now(now)
    params: dict[str, Any] = {"cutoff": _since_days(now, days), "now": now}
    where = "e.kind = 'followers' AND e.event = 'lost' AND e.at >= :cutoff AND e.at <= :now"
    if platform:
        where += " AND e.account_id >= :lo AND e.account_id < :hi"
        params |= {"lo": platform + ":", "hi": platform + ";"}
    platform_sql = _platform_of_account("e.account_id")
    return [
        {"at": at, "platform": plat, "person_id": person_id, "handle": handle, "display_name": name, "url": url}
        for at, plat, person_id, handle, name, url in db.execute(
            f"SELECT e.at, {platform_sql} AS plat, e.person_id, p.handle, p.display_name, p.url "
            "FROM audience_events e LEFT JOIN people p ON p.platform = "
            f"{platform_sql} AND p.person_id = e.person_id "
            f"WHERE {where} ORDER BY e.at DESC, plat, e.person_id",
            params,
        )
    ]


# -- export ------------------------------------------------------------------------------------------

def _identity_rows(db, *, platform: str | None, now: str) -> Iterator[dict]:
    """One dict per identity (platform account of a person), straight from a cursor.

    Per person: the open follower interval's start, the last lost follower interval (when
    none is open), the open following interval's start, and the comment aggregates, all
    through index lookups (the follows primary key per account of the platform, the
    comments_by_author covering index).
    """
    accounts: dict[str, list[str]] = {}
    for (account_id,) in db.execute("SELECT DISTINCT account_id FROM snapshots ORDER BY account_id"):
        accounts.setdefault(account_id.split(":", 1)[0], []).append(account_id)
    platforms = [r[0] for r in db.execute("SELECT DISTINCT platform FROM people ORDER BY platform")]
    if platform:
        platforms = [p for p in platforms if p == platform]
    score = engagement_score_sql("c.created_at", ":now")
    for plat in platforms:
        account_ids = accounts.get(plat, [])
        in_accounts = ",".join("?" for _ in account_ids) or "NULL"
        follows = f"FROM follows f WHERE f.account_id IN ({in_accounts}) AND f.person_id = p.person_id "
        sql = (
            "SELECT p.person_id, p.handle, p.display_name, p.url, p.avatar_url, p.first_seen_at, "
            f"(SELECT min(f.started_at) {follows} AND f.kind = 'followers' AND f.ended_at IS NULL) AS follower_since, "
            f"(SELECT max(f.ended_at) {follows} AND f.kind IN ('followers', 'friends')) AS ended_at, "
            f"(SELECT min(f.started_at) {follows} AND f.kind = 'following' AND f.ended_at IS NULL) AS following_since, "
            f"(SELECT min(f.started_at) {follows} AND f.kind = 'friends' AND f.ended_at IS NULL) AS connected_since, "
            "(SELECT count(*) FROM comments c WHERE c.platform = p.platform AND c.author_id = p.person_id "
            " AND c.by_owner = 0) AS comment_count, "
            "(SELECT max(c.created_at) FROM comments c WHERE c.platform = p.platform AND c.author_id = p.person_id "
            " AND c.by_owner = 0) AS last_interaction, "
            f"(SELECT {score} FROM comments c WHERE c.platform = p.platform AND c.author_id = p.person_id "
            " AND c.by_owner = 0) AS score "
            "FROM people p WHERE p.platform = ? ORDER BY p.person_id"
        )
        # Named ":now" and positional "?" cannot mix: substitute the literal (a checked
        # ISO timestamp) for the score's ":now".
        sql = sql.replace(":now", "'" + now.replace("'", "") + "'")
        params = list(account_ids) * 4 + [plat]
        cursor = db.conn.execute(sql, params)
        names = [c[0] for c in cursor.description]
        for row in cursor:
            item = dict(zip(names, row, strict=True))
            item["platform"] = plat
            # Lost: followed or connected once, neither now (a connection is mutual: the
            # person sees the owner's posts like a follower does).
            audience_now = item["follower_since"] or item["connected_since"]
            item["lost_at"] = item["ended_at"] if audience_now is None else None
            yield item


def _merge_person(key: str, items: list[dict]) -> dict:
    """One export row from the identities of one person (one or several platforms)."""
    items = sorted(items, key=lambda i: identity(i["platform"], i["person_id"]))

    def first(name):
        return next((i[name] for i in items if i[name] not in (None, "")), None)

    follower_since = min((i["follower_since"] for i in items if i["follower_since"]), default=None)
    connected_since = min((i["connected_since"] for i in items if i["connected_since"]), default=None)
    lost_at = None
    if follower_since is None and connected_since is None:
        lost_at = max((i["lost_at"] for i in items if i["lost_at"]), default=None)
    return {
        "person_key": key,
        "display_name": first("display_name"),
        "handles": "; ".join(f"{i['platform']}:@{i['handle'].lstrip('@')}" for i in items if i["handle"]),
        "profile_urls": "; ".join(i["url"] for i in items if i["url"]),
        "follower_since": follower_since,
        "following_since": min((i["following_since"] for i in items if i["following_since"]), default=None),
        "connected_since": connected_since,
        "last_interaction": max((i["last_interaction"] for i in items if i["last_interaction"]), default=None),
        "comment_count": sum(i["comment_count"] or 0 for i in items),
        "engagement_score": round(sum(i["score"] or 0.0 for i in items), 6),
        "lost_at": lost_at,
        "first_seen_at": min((i["first_seen_at"] for i in items if i["first_seen_at"]), default=None),
        "_urls": [(i["platform"], i["url"]) for i in items if i["url"]],
        "_handles": [(i["platform"], i["handle"]) for i in items if i["handle"]],
    }


def iter_people(db, *, segment: str = "all", platform: str | None = None, since: str | None = None,
                now: str | None = None, top_limit: int = 100) -> Iterator[dict]:
    """The people of a segment, one merged dict per person, streamed from a cursor.

    Memory is bounded by the number of *linked* identities (held back until the cursor is
    done so their group is whole), never by the audience's size — except ``top``, which
    keeps its ``top_limit`` best in a heap.
    """
    if segment not in SEGMENTS:
        raise AudienceError(f"segment: {segment!r} is not one of {', '.join(SEGMENTS)}")
    now = _now(now)
    since = iso_utc(since) if since else None
    groups = _groups(db)

    def people() -> Iterator[dict]:
        held: dict[str, list[dict]] = {}
        for item in _identity_rows(db, platform=platform, now=now):
            ident = identity(item["platform"], item["person_id"])
            key = groups.key(ident)
            if ident in groups.key_of:
                held.setdefault(key, []).append(item)
            else:
                yield _merge_person(key, [item])
        for key, items in held.items():
            yield _merge_person(key, items)

    date_of = {
        "followers": "follower_since", "following": "following_since", "connections": "connected_since",
        "commenters": "last_interaction",
        "top": "last_interaction", "lost": "lost_at", "invite": "first_seen_at", "all": "first_seen_at",
    }[segment]

    def wanted(person: dict) -> bool:
        if segment == "followers" and not person["follower_since"]:
            return False
        if segment == "following" and not person["following_since"]:
            return False
        if segment == "connections" and not person["connected_since"]:
            return False
        if segment in ("commenters", "top") and not person["comment_count"]:
            return False
        if segment == "lost" and not person["lost_at"]:
            return False
        return not (since and (person[date_of] or "") < since)

    if segment == "invite":
        yield from _to_invite(db, people, groups, since)
        return
    selected = (person for person in people() if wanted(person))
    if segment == "top":
        yield from heapq.nlargest(top_limit, selected,
                                  key=lambda p: (p["engagement_score"], p["comment_count"], p["person_key"]))
        return
    yield from selected


_EMAIL = re.compile(r"[^@\s<>()\[\],;:\"']+@[^@\s<>()\[\],;:\"']+\.[a-z]{2,}", re.IGNORECASE)


def reachable_person_keys(db, groups: _Groups | None = None) -> set[str]:
    """The person keys of platform people the owner can already reach without any platform:
    joined by a confirmed link to a reachable owned contact (``archiver audience link
    instagram:42 owned:<email>``), or whose own bio or profile links give the address of one."""
    groups = groups or _groups(db)
    contacts = reachable_contact_ids(db)
    keys = {groups.key(owned_identity(contact)) for contact in contacts}
    for plat, person, bio, links in db.execute(
            "SELECT platform, person_id, bio, links FROM people WHERE bio LIKE '%@%' OR links LIKE '%@%'"):
        said = {address.casefold().removeprefix("mailto:") for address in _EMAIL.findall(f"{bio or ''} {links or ''}")}
        if said & contacts:
            keys.add(groups.key(identity(plat, person)))
    return keys


def _to_invite(db, people, groups: _Groups, since: str | None) -> Iterator[dict]:
    """Segment "invite": the platform audience (followers, connections, commenters; not the
    lost) the owner cannot reach directly yet, top fans first. Two passes over ``people()``:
    the people who commented, by engagement score (held in memory: commenters are few beside
    followers), then the others as the cursor streams them."""
    reachable = reachable_person_keys(db, groups)

    def wanted() -> Iterator[dict]:
        for person in people():
            if person["person_key"] in reachable or person["lost_at"]:
                continue
            if not (person["follower_since"] or person["connected_since"] or person["comment_count"]):
                continue
            if since and (person["first_seen_at"] or "") < since:
                continue
            yield person

    fans = [person for person in wanted() if person["comment_count"]]
    fans.sort(key=lambda p: (-p["engagement_score"], -p["comment_count"], p["person_key"]))
    yield from fans
    yield from (person for person in wanted() if not person["comment_count"])


def _vcard_fold(line: str) -> str:
    """RFC 2425 folding: lines of at most 75 octets, continued with a leading space."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line + "\r\n"
    parts: list[str] = []
    current = b""
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > (75 if not parts else 74):
            parts.append(current.decode("utf-8"))
            current = b""
        current += encoded
    parts.append(current.decode("utf-8"))
    return "\r\n ".join(parts) + "\r\n"


def _vcard(person: dict) -> str:
    name = person["display_name"] or (person["_handles"][0][1] if person["_handles"] else person["person_key"])
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{vcard_text(name)}", f"N:{vcard_text(name)};;;;"]
    nicknames = [h.lstrip("@") for _, h in person["_handles"]]
    if nicknames:
        lines.append("NICKNAME:" + ",".join(vcard_text(n) for n in nicknames))
    for plat, url in person["_urls"]:
        if web_link(url):  # contacts apps make it a link: only http(s), like the archive's pages
            lines.append(f"URL;TYPE={vcard_text(plat)}:{vcard_text(url)}")
    note = [f"handles: {person['handles']}"] if person["handles"] else []
    for label, name_ in (("follower since", "follower_since"), ("connected since", "connected_since"),
                         ("lost at", "lost_at"),
                         ("last interaction", "last_interaction")):
        if person[name_]:
            note.append(f"{label}: {person[name_]}")
    note.append(f"comments: {person['comment_count']}, engagement score: {person['engagement_score']}")
    lines.append("NOTE:" + vcard_text("\n".join(note)))
    lines.append(f"UID:archiver-{vcard_text(person['person_key'])}")
    lines.append("END:VCARD")
    return "".join(_vcard_fold(line) for line in lines)


def export_people(db, out: TextIO, *, segment: str = "all", platform: str | None = None, since: str | None = None,
                  fmt: str = "csv", bom: bool = False, now: str | None = None, top_limit: int = 100) -> int:
    """Write the people of ``segment`` to ``out`` as csv, json (one array) or vcf (vCard
    3.0); returns how many. Streams: rows go out as the cursor yields them.

    CSV columns: ``EXPORT_COLUMNS``; text cells that a spreadsheet would run as a formula
    are neutralised and vCard values kept to one line (archiver.inert); ``bom`` writes a UTF-8 byte-order mark first (for Excel).
    """
    if fmt not in FORMATS:
        raise AudienceError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    people = iter_people(db, segment=segment, platform=platform, since=since, now=now, top_limit=top_limit)
    if bom:
        out.write("\ufeff")
    count = 0
    if fmt == "csv":
        # Text always quoted, numbers bare: a reader splitting on ";" or a tab keeps a
        # text cell whole, and numeric columns stay numbers (archiver.inert).
        writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
        out.write(",".join(EXPORT_COLUMNS) + "\r\n")   # plain names: nothing to quote
        for person in people:
            writer.writerow([csv_cell(person[c]) for c in EXPORT_COLUMNS])
            count += 1
    elif fmt == "json":
        out.write("[")
        for person in people:
            row = {c: person[c] for c in EXPORT_COLUMNS}
            row["handles"] = [f"{p}:@{h.lstrip('@')}" for p, h in person["_handles"]]
            row["profile_urls"] = [u for _, u in person["_urls"]]
            out.write(("\n" if count == 0 else ",\n") + json.dumps(row, ensure_ascii=False))
            count += 1
        out.write("\n]\n" if count else "]\n")
    else:
        for person in people:
            out.write(_vcard(person))
            count += 1
    return count

