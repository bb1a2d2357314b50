"""LinkedIn's rows -> records, for both ways in (../shared/platforms/linkedin.md §1.4, §2).

The "Get a copy of your data" export is a set of CSV files; the Member Data Portability
API's snapshot gives the same data as ``snapshotData`` rows whose keys are the export's
column names ("First Name", "ShareCommentary" …). Both arrive here as ``dict[str, str]``
keyed by those names, so an API run and an import of the same data give the same records
(same native ids), never two copies.

Column names are looked up with ``cell(row, "Shared URL")``: case, spaces, underscores
and hyphens ignored, so ``SharedURL`` (2021), ``SharedUrl`` (2024) and ``Shared URL``
(2018) are one column. One mapper per domain / file:

====================  ======================  ===========================================
API domain            export file             mapper
====================  ======================  ===========================================
MEMBER_SHARE_INFO     Shares.csv              ``post_from_row``        -> Post
ALL_COMMENTS          Comments.csv            ``comment_from_row``     -> Comment (by owner)
ALL_LIKES             Reactions.csv           ``reaction_from_row``    -> Interaction "like"
CONNECTIONS           Connections.csv         ``connection_from_row``  -> Membership (friends)
INVITATIONS           Invitations.csv         ``invitation_from_row``  -> (list kind, Membership)
MEMBER_FOLLOWS [U]    Member_Follows.csv      ``member_follow_from_row``  -> Membership (following)
COMPANY_FOLLOWS [U]   Company Follows.csv     ``company_follow_from_row`` -> Membership (following)
PROFILE (+ sections)  Profile.csv, Positions  ``profile_from_rows``    -> Profile
RICH_MEDIA            Rich Media.csv          ``rich_media_note``      -> a line for the summary
====================  ======================  ===========================================

People (docs/schema.md, "LinkedIn"): a member with a ``linkedin.com/in/<vanity>`` link is
keyed by the vanity name (URL-decoded, case folded), anyone else by
``archiver.records.name_key(name)``, a company by ``name_key(name, "company:")``.

A mapper raises ValueError for a row it cannot turn into a record (the caller reports it
with its file and line, or its domain and position, and skips it); it returns None for a
row that holds nothing to keep (a reaction-less blank line).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
import urllib.parse
from typing import Any, Iterable, Mapping

from archiver.records import (
    Comment,
    Interaction,
    ListKind,
    MediaRef,
    Membership,
    Person,
    Post,
    Profile,
    iso_utc,
    name_key,
    visibility,
)

Row = Mapping[str, str]

# Who can see a post (plan: "LinkedIn visibility words"); the word itself stays in raw.
VISIBILITY_WORDS = {   # compared as archiver.records.visibility does: "_" as a space, no case
    "member network": "friends", "connections": "friends", "connections only": "friends",
    "public": "public", "anyone": "public",
}

PROFILE_URL = "https://www.linkedin.com/in/{}"
COMPANY_PREFIX = "company:"

# The API's domain of each export file, by the file's key (``file_key``: "Rich Media.csv",
# "Rich_Media.csv" and "rich media.CSV" are "richmedia"). Names marked [U] in the notes
# are accepted in both spellings the clients use.
DOMAIN_OF_FILE: dict[str, tuple[str, ...]] = {
    "shares": ("MEMBER_SHARE_INFO",),
    "comments": ("ALL_COMMENTS",),
    "reactions": ("ALL_LIKES",),
    "connections": ("CONNECTIONS",),
    "invitations": ("INVITATIONS", "INVITATION"),
    "memberfollows": ("MEMBER_FOLLOWS", "MEMBER_FOLLOWING"),
    "companyfollows": ("COMPANY_FOLLOWS", "COMPANY_FOLLOWING"),
    "richmedia": ("RICH_MEDIA",),
    "profile": ("PROFILE",),
    # Profile sections: kept in the profile's raw, under the file's name.
    "profilesummary": ("PROFILE_SUMMARY",),
    "positions": ("POSITIONS",),
    "education": ("EDUCATION",),
    "skills": ("SKILLS",),
    "certifications": ("CERTIFICATIONS",),
    "projects": ("PROJECTS",),
    "organizations": ("ORGANIZATIONS",),
    "languages": ("LANGUAGES",),
    "honors": ("HONORS",),
    "courses": ("COURSES",),
    "publications": ("PUBLICATIONS",),
    "patents": ("PATENTS",),
    "volunteering": ("VOLUNTEERING_EXPERIENCES", "VOLUNTEERING"),
    "volunteeringexperiences": ("VOLUNTEERING_EXPERIENCES",),
    "recommendationsreceived": ("RECOMMENDATIONS",),
    "causesyoucareabout": ("CAUSES_YOU_CARE_ABOUT",),
    "testscores": ("TEST_SCORES",),
}
FILE_OF_DOMAIN: dict[str, str] = {domain: key for key, domains in DOMAIN_OF_FILE.items() for domain in domains}
# The profile's sections (everything under "profile" in DOMAIN_OF_FILE but the profile).
PROFILE_SECTIONS = tuple(key for key in DOMAIN_OF_FILE if key not in {
    "shares", "comments", "reactions", "connections", "invitations", "memberfollows", "companyfollows",
    "richmedia", "profile"})
# Never copied from Profile.csv: contact data is not the profile the person shows.
PRIVATE_PROFILE_COLUMNS = frozenset({"address", "birthdate", "zipcode", "instantmessengers",
                                     "contactinstructions", "emailaddress", "emailaddresses", "phonenumbers"})
SECTION_ROWS_KEPT = 1000   # a profile section longer than this is cut (a real one holds dozens)


# --------------------------------------------------------------------------- cells


@functools.lru_cache(maxsize=4096)   # a few dozen column names, asked for on every row
def column_key(name: str) -> str:
    """A column name as compared: 'Shared URL', 'SharedUrl', 'shared_url' -> 'sharedurl'."""
    text = unicodedata.normalize("NFKC", name).replace("\ufeff", "")
    return re.sub(r"[\s_\-]+", "", text).casefold()


def file_key(name: str) -> str:
    """An export file's name as compared: its base name without ``.csv``, a member-id
    suffix some exports add (``Shares_7789716.csv``), case, spaces and underscores:
    'Rich Media.csv', 'Rich_Media.csv', 'Jobs/Rich media.CSV' -> 'richmedia'."""
    base = name.rsplit("/", 1)[-1]
    base = re.sub(r"\.csv$", "", base, flags=re.I)
    base = re.sub(r"_\d{4,}$", "", base)
    return column_key(base)


def cell(row: Row, *names: str) -> str:
    """The row's value of the first of ``names`` it has (compared by ``column_key``),
    stripped; "" when it has none."""
    wanted = [column_key(n) for n in names]
    folded = {column_key(k): v for k, v in row.items() if isinstance(k, str)}
    for key in wanted:
        value = folded.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _plain(row: Row) -> dict[str, str]:
    """The row as kept in ``raw``: string keys and values, no BOM in a key."""
    return {str(k).replace("\ufeff", "").strip(): ("" if v is None else str(v)) for k, v in row.items()}


# --------------------------------------------------------------------------- dates

# Every date format the notes list (§2.6 "Date formats in one archive"), as patterns read
# by hand: strptime tries its formats slowly and follows the process's locale for month names.
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
_CLOCK = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
_DATE_PATTERNS = tuple(re.compile(pattern, re.I) for pattern in (
    # 2024-03-17 18:03:34 · 2021-03-25 08:46 UTC · 2022/04/01 11:05:54 UTC · 2026-06-14
    rf"(?P<year>\d{{4}})[-/](?P<mon>\d{{1,2}})[-/](?P<day>\d{{1,2}})(?:[ T]{_CLOCK})?(?: ?(?:UTC|GMT|Z))?",
    # 3/12/24, 11:20 AM · 1/8/18, 6:14 PM (month first)
    rf"(?P<mon>\d{{1,2}})/(?P<day>\d{{1,2}})/(?P<year>\d{{2}}|\d{{4}}),? {_CLOCK} ?(?P<half>[AP]\.?M\.?)",
    # Wed Mar 13 18:51:14 UTC 2024
    rf"(?:[A-Za-z]{{3}},? )?{_MONTH} (?P<day>\d{{1,2}}) {_CLOCK} (?:UTC|GMT) (?P<year>\d{{4}})",
    # 20 Mar 2024 · 18-Jun-24
    rf"(?P<day>\d{{1,2}})[ -]{_MONTH}[ -](?P<year>\d{{4}}|\d{{2}})",
    # Feb 17, 1998 · Jan 2024 · 2024
    rf"{_MONTH} (?P<day>\d{{1,2}}), (?P<year>\d{{4}})",
    rf"{_MONTH} (?P<year>\d{{4}})",
    r"(?P<year>\d{4})",
))
_NO_DATE = {"", "na", "n/a", "none", "null", "-"}
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), start=1)}


def _moment(parts: dict[str, str | None]) -> dt.datetime:
    """The named parts of a matched date as a UTC datetime; ValueError for a part out of range."""
    year = int(parts["year"] or 0)
    if len(parts["year"] or "") == 2:
        year += 1900 if year >= 69 else 2000   # as strptime's %y
    if parts.get("month"):
        month = _MONTHS.get((parts["month"] or "")[:3].casefold())
        if month is None:
            raise ValueError(f"no month {parts['month']!r}")
    else:
        month = int(parts.get("mon") or 1)
    hour = int(parts.get("hour") or 0)
    half = (parts.get("half") or "").replace(".", "").upper()
    if half and not 1 <= hour <= 12:
        raise ValueError(f"hour {hour} with {half}")
    if half:
        hour = hour % 12 + (12 if half == "PM" else 0)
    return dt.datetime(year, month, int(parts.get("day") or 1), hour, int(parts.get("minute") or 0),
                       int(parts.get("second") or 0), tzinfo=dt.timezone.utc)


def parse_date(text: str | None) -> str | None:
    """Any of LinkedIn's date formats -> ISO-8601 UTC (times without a zone are UTC [U]);
    None for a blank or "NA". Anything else raises ValueError naming the text."""
    value = " ".join((text or "").replace("\u202f", " ").split())   # a narrow no-break space before AM/PM
    if value.casefold() in _NO_DATE:
        return None
    for pattern in _DATE_PATTERNS:
        found = pattern.fullmatch(value)
        if found:
            try:
                return iso_utc(_moment(found.groupdict()))
            except ValueError:
                break
    else:
        try:   # ISO with a zone or fractions ("2024-03-17T18:03:34.123+01:00")
            return iso_utc(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"unreadable date {value[:60]!r}")


def _date_or_none(text: str) -> str | None:
    """A date that only adds to a record (when a connection began): unreadable is None,
    the raw string stays in raw."""
    try:
        return parse_date(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- links and people

_URN = re.compile(r"urn:li:[A-Za-z]+:(?:\d+|\([^()\s]*\))")
_IN_PATH = re.compile(r"^(?:https?://)?(?:[\w-]+\.)*linkedin\.com/in/([^/?#\s]+)", re.I)


def urn_of(link: str) -> str | None:
    """The first URN a LinkedIn link names, URL-decoded: ``…/feed/update/urn%3Ali%3Ashare%3A73…``
    -> ``urn:li:share:73…``; None when it names none."""
    if not link:
        return None
    decoded = urllib.parse.unquote(link.split("?", 1)[0])
    found = _URN.search(decoded)
    return found.group(0) if found else None


def comment_urn_of(link: str) -> str | None:
    """The comment a link points at (``?commentUrn=urn%3Ali%3Acomment%3A%28activity%3A…%29``):
    a reaction to a comment names it so."""
    if "?" not in link:
        return None
    for key, value in urllib.parse.parse_qsl(link.split("?", 1)[1]):
        if key.casefold() == "commenturn":
            found = _URN.search(value)
            if found:
                return found.group(0)
    return None


def vanity_of(url: str) -> str | None:
    """The member a ``linkedin.com/in/<vanity>`` link names: the vanity URL-decoded and
    case folded (links come with and without scheme, with ``www.`` or a country host)."""
    found = _IN_PATH.match((url or "").strip())
    if not found:
        return None
    vanity = urllib.parse.unquote(found.group(1)).strip().casefold()
    return vanity or None


def member(name: str, url: str = "", raw: dict[str, Any] | None = None) -> Person | None:
    """A LinkedIn member: by vanity name when ``url`` is a profile link, else by name;
    None when neither is given."""
    name = " ".join(name.split())
    vanity = vanity_of(url)
    if vanity:
        return Person(native_id=vanity, handle=vanity, display_name=name or None,
                      url=PROFILE_URL.format(urllib.parse.quote(vanity, safe="-_.~")), raw=raw or {})
    if not name:
        return None
    return Person(native_id=name_key(name), display_name=name, raw=raw or {})


def company(name: str, raw: dict[str, Any] | None = None) -> Person | None:
    """A company (a followed organization), keyed by its name."""
    name = " ".join(name.split())
    if not name:
        return None
    return Person(native_id=name_key(name, COMPANY_PREFIX), display_name=name, raw={"kind": "company", **(raw or {})})


# --------------------------------------------------------------------------- posts


def share_text(text: str) -> str:
    """ShareCommentary as written. Multi-line posts come with every inner line wrapped in
    a literal quote (``first"`` / ``""`` / ``"second"`` / ``"last``, notes §2.4): when
    every line boundary is so wrapped, one quote is taken off each side of it. Text
    without that shape is left as it is."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) < 2:
        return text
    first, *middle, last = lines
    wrapped = (first.endswith('"') and last.startswith('"')
               and all(len(line) >= 2 and line.startswith('"') and line.endswith('"') for line in middle))
    if not wrapped:
        return text.replace("\r\n", "\n")
    return "\n".join([first[:-1], *(line[1:-1] for line in middle), last[1:]])


_FILE_HOSTS = re.compile(r"^https://(?:media|dms)(?:-exp\d+)?\.licdn\.com/", re.I)


def media_of(url: str) -> MediaRef | None:
    """MediaUrl as a file to download: only a link to LinkedIn's media CDN is one (a
    ``media.licdn.com/dms/image/…`` file); any other MediaUrl is a page about the media
    and stays a link in the post's raw."""
    if not url or not _FILE_HOSTS.match(url):
        return None
    role = "video" if re.search(r"/(?:video|playlist)", url, re.I) else "image"
    return MediaRef(url, role)


def post_from_row(row: Row) -> Post:
    """One post (Shares.csv / MEMBER_SHARE_INFO): ``Date, ShareLink, ShareCommentary,
    SharedUrl, MediaUrl, Visibility`` (2018: ``Share Link, Share Commentary, Shared URL,
    Media URL``). The id is the URN the ShareLink names; a link without one (2018) leaves
    it None and the writer matches the post by its time."""
    created_at = parse_date(cell(row, "Date"))
    if created_at is None:
        raise ValueError("no Date: a post without its time could never be matched")
    link = cell(row, "ShareLink", "Share Link")
    media_url = cell(row, "MediaUrl", "Media URL")
    ref = media_of(media_url)
    text = share_text(cell(row, "ShareCommentary", "Share Commentary")) or None
    if ref is not None:
        kind = ref.role
    elif re.search(r"video", media_url, re.I):   # a page about the media: its kind only where it says it
        kind = "video"
    elif re.search(r"image|photo", media_url, re.I):
        kind = "image"
    else:
        kind = "text"
    return Post(
        native_id=urn_of(link), created_at=created_at, kind=kind, text=text,
        url=link or None, link=cell(row, "SharedUrl", "Shared URL") or None,
        visibility=visibility(cell(row, "Visibility") or None, VISIBILITY_WORDS),
        media=[ref] if ref else [], raw=_plain(row))


# --------------------------------------------------------------------------- comments and reactions


def comment_from_row(row: Row) -> Comment | None:
    """A comment the owner wrote (Comments.csv / ALL_COMMENTS): ``Date, Link, Message``.
    The export gives no comment id: the writer keys it by time and text (and joins the
    API's twin). It is on the post the Link names (a URN, often someone else's post);
    None for a row without a message."""
    text = cell(row, "Message")
    if not text:
        return None
    raw_date = cell(row, "Date")
    created_at = parse_date(raw_date) if raw_date else None
    link = cell(row, "Link")
    return Comment(native_id=None, text=text.replace("\r\n", "\n"), created_at=created_at,
                   post_native_id=urn_of(link), by_owner=True, url=link or None, raw=_plain(row))


def reaction_from_row(row: Row) -> Interaction:
    """A reaction the owner gave (Reactions.csv / ALL_LIKES): ``Date, Type, Link``; its
    target is the comment's URN for a reaction to a comment, else the post's URN, else
    the link itself. ``Type`` (LIKE, PRAISE, EMPATHY …) stays in raw as ``type``."""
    link = cell(row, "Link")
    target = comment_urn_of(link) or urn_of(link) or link
    if not target:
        raise ValueError("no Link: the reaction names nothing")
    return Interaction(kind="like", target=target, target_url=link or None,
                       created_at=_date_or_none(cell(row, "Date")),
                       raw={"type": cell(row, "Type") or None, **_plain(row)})


# --------------------------------------------------------------------------- lists


def connection_from_row(row: Row) -> Membership | None:
    """A connection (Connections.csv / CONNECTIONS): ``First Name, Last Name, URL, Email
    Address, Company, Position, Connected On`` (no URL before 2024's exports). None for a
    row that names nobody."""
    name = " ".join(filter(None, (cell(row, "First Name"), cell(row, "Last Name"))))
    person = member(name, cell(row, "URL", "Profile URL"))
    if person is None:
        return None
    return Membership(person, _date_or_none(cell(row, "Connected On")))


def invitation_from_row(row: Row) -> tuple[ListKind, Membership] | None:
    """An open invitation (Invitations.csv / INVITATIONS): ``From, To, Sent At, Message,
    Direction, inviterProfileUrl, inviteeProfileUrl`` (no URLs in 2018's). INCOMING ->
    ``invitations_received`` (the member is From), OUTGOING -> ``invitations_sent`` (the
    member is To). ValueError for another Direction."""
    direction = cell(row, "Direction").upper()
    if direction == "INCOMING":
        kind: ListKind = "invitations_received"
        person = member(cell(row, "From"), cell(row, "inviterProfileUrl"))
    elif direction == "OUTGOING":
        kind = "invitations_sent"
        person = member(cell(row, "To"), cell(row, "inviteeProfileUrl"))
    else:
        raise ValueError(f"Direction {direction[:30]!r} is neither INCOMING nor OUTGOING")
    if person is None:
        return None
    return kind, Membership(person, _date_or_none(cell(row, "Sent At")))


def owner_url_of_invitation(row: Row) -> str | None:
    """The owner's own profile link, which an invitation names on the owner's side
    (the inviter of an OUTGOING one, the invitee of an INCOMING one)."""
    direction = cell(row, "Direction").upper()
    url = cell(row, "inviterProfileUrl") if direction == "OUTGOING" else (
        cell(row, "inviteeProfileUrl") if direction == "INCOMING" else "")
    vanity = vanity_of(url)
    return PROFILE_URL.format(urllib.parse.quote(vanity, safe="-_.~")) if vanity else None


def member_follow_from_row(row: Row) -> Membership | None:
    """A member the owner follows (Member_Follows.csv): ``Date, Status, FullName``, keyed
    by name (the file has no link). A follow whose Status is not Active (ended) is None."""
    status = cell(row, "Status")
    if status and status.casefold() != "active":
        return None
    person = member(cell(row, "FullName", "Full Name", "Name"), cell(row, "URL", "Profile URL"))
    if person is None:
        return None
    return Membership(person, _date_or_none(cell(row, "Date", "Followed On")))


def company_follow_from_row(row: Row) -> Membership | None:
    """A company the owner follows (Company Follows.csv): ``Organization, Followed On``."""
    person = company(cell(row, "Organization", "Company", "Company Name"))
    if person is None:
        return None
    return Membership(person, _date_or_none(cell(row, "Followed On", "Date")))


# --------------------------------------------------------------------------- profile


def profile_from_rows(profile: Row | None, sections: Mapping[str, Iterable[Row]] | None = None,
                      *, owner_url: str | None = None) -> Profile | None:
    """The owner's profile: Profile.csv's (first) row (PROFILE) and the other sections
    (Positions, Education, Skills … keyed by ``file_key`` or API domain name) kept in raw.
    Contact data (address, birth date, zip code, messenger ids) is never copied.
    ``owner_url`` (the owner's ``/in/`` link, which Invitations.csv names) gives the user
    name and URL the profile files lack. None when there is no name."""
    row = profile or {}
    name = " ".join(filter(None, (cell(row, "First Name"), cell(row, "Last Name"))))
    vanity = vanity_of(owner_url or "")
    if not (name or vanity):
        return None
    kept = {k: v for k, v in _plain(row).items() if column_key(k) not in PRIVATE_PROFILE_COLUMNS}
    raw: dict[str, Any] = {"Profile": kept}
    for key, rows in (sections or {}).items():
        section = FILE_OF_DOMAIN.get(key.upper(), file_key(key))
        collected = []
        for position, section_row in enumerate(rows):
            if position >= SECTION_ROWS_KEPT:
                raw.setdefault("cut", []).append(section)
                break
            collected.append(_plain(section_row))
        if collected:
            raw[section] = collected
    headline, summary = cell(row, "Headline"), cell(row, "Summary")
    bio = "\n\n".join(filter(None, (headline, summary))) or None
    return Profile(native_id=None, username=vanity, display_name=name or None, bio=bio,
                   url=PROFILE_URL.format(urllib.parse.quote(vanity, safe="-_.~")) if vanity else None,
                   raw=raw)


# --------------------------------------------------------------------------- what is not in the export


def rich_media_note(row: Row) -> str | None:
    """A Rich Media.csv / RICH_MEDIA row ("Video content can be downloaded at",
    ``https://www.linkedin.com/psettings/member-data/videos``) as a line for the run's
    summary: the media itself is not in the export, the person must fetch it there."""
    what = cell(row, "Type").rstrip(" ,:")
    link = cell(row, "Link")
    if not link.startswith("https://"):
        return None
    what = re.sub(r"\s*(?:can be )?download(?:ed)?(?: at)?$", "", what, flags=re.I)[:80].strip() or "media"
    return (f"LinkedIn keeps {what[:1].lower() + what[1:]} outside this export: download it yourself at {link[:200]} "
            "(archiver cannot fetch it for you)")
