"""Normalized records: what connectors yield and the writer stores.

A connector maps a platform payload to these plain dataclasses; it never touches the
database. Every record carries the raw payload it came from (scrubbed of secrets by the
writer) so a later version can re-derive fields without re-fetching.

Timestamps are UTC ISO-8601 strings ("2024-01-02T03:04:05Z"); use ``iso_utc`` to make one.
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, overload


@overload
def iso_utc(value: int | float | _dt.datetime) -> str: ...
@overload
def iso_utc(value: int | float | str | _dt.datetime | None) -> str | None: ...


def iso_utc(value: int | float | str | _dt.datetime | None) -> str | None:
    """Epoch seconds, a naive-UTC "YYYY-MM-DD HH:MM:SS" string or a datetime -> ISO-8601 UTC.

    A text that is no moment raises ValueError, one out of range too (not OverflowError
    or OSError), a value of another type TypeError: callers take either as "this item's
    date is unreadable"."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)):
            moment = _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
        elif isinstance(value, _dt.datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
        elif not isinstance(value, str):   # a list or an object where a date should be
            raise TypeError(f"a date cannot be a {type(value).__name__}: {str(value)[:60]!r}")
        else:
            text = value.strip().replace(" ", "T", 1)
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            moment = _dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=_dt.timezone.utc)
        return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError) as error:
        raise ValueError(f"{value!r} is out of the range of dates ({error})") from error


# Who can see a post, in one vocabulary across platforms (docs/schema.md). A platform's
# own word stays in the post's ``raw`` payload.
VISIBILITIES = ("public", "followers", "friends", "private", "unlisted")


def visibility(value: Any, words: dict[str, str] | None = None) -> str | None:
    """A platform's word for who can see a post -> one of ``VISIBILITIES``.

    ``words`` maps the platform's own words (compared without case, "_" or "-" as a
    space) to the archive's; the archive's words map to themselves unless ``words`` says
    otherwise (Mastodon's "private" means followers only). A word neither knows gives
    None: the column stays empty rather than hold a word no query expects.
    """
    if value is None:
        return None
    key = " ".join(str(value).replace("_", " ").replace("-", " ").split()).casefold()
    if not key:
        return None
    table = {word: word for word in VISIBILITIES} | {k.casefold(): v for k, v in (words or {}).items()}
    found = table.get(key)
    return found if found in VISIBILITIES else None


def now_utc() -> str:
    return iso_utc(_dt.datetime.now(_dt.timezone.utc))


@dataclass
class MediaRef:
    """A file that belongs to a post or profile, to be downloaded in the same run.

    ``role`` says what it is to its owner: "cover", "video", "image", "avatar", "banner".
    ``url`` may be a signed, expiring link: it is downloaded at once and never stored
    with its query string.
    """

    url: str
    role: str
    position: int = 0
    mime_hint: str | None = None
    # For files inside an export archive: opens the bytes instead of downloading ``url``.
    opener: Any = None
    # Optional, for signed links that expire (Instagram's CDN): asks the platform for a
    # fresh link to the same file, or returns None. The runner calls it at most once, when
    # the download of ``url`` was refused with HTTP 403/410, and retries with its answer.
    refresh: Callable[[], str | None] | None = None
    # Alt text the owner wrote for the file, and what the platform says of it (size,
    # duration, blurhash …) as a small JSON-able dict.
    description: str | None = None
    meta: dict[str, Any] | None = None
    # The file's sha256 when the platform names it (a Bluesky blob's CID is one): a
    # download with other bytes is refused and reported, never linked.
    sha256: str | None = None


@dataclass
class Profile:
    native_id: str | None
    username: str | None
    display_name: str | None = None
    bio: str | None = None
    url: str | None = None
    avatar: MediaRef | None = None
    # The wide picture at the top of the profile (Bluesky's banner, Mastodon's header).
    banner: MediaRef | None = None
    followers: int | None = None
    following: int | None = None
    likes: int | None = None
    posts: int | None = None
    # When the source's view of the profile was current (an export's creation time). An
    # export fills blanks only, except for an account no API reads: there the newest
    # export's profile is the current one and the one it replaces becomes a version.
    as_of: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Post:
    """One post of the account owner.

    ``native_id`` is the platform's id. An export item without an id (newer TikTok
    exports) sets it to None; the writer then matches it on ``created_at`` to a post
    already archived, or keeps it under a provisional id until the API names it.
    """

    native_id: str | None
    created_at: str | None
    kind: str = "video"  # video | photo | image | carousel | reel | text
    title: str | None = None
    text: str | None = None
    url: str | None = None
    duration: int | None = None
    width: int | None = None
    height: int | None = None
    visibility: str | None = None
    like_count: int | None = None
    comment_count: int | None = None
    share_count: int | None = None
    view_count: int | None = None
    # The page outside the platform the post points to (a Pin's or a shared post's link).
    link: str | None = None
    # Native ids of the collections (boards, board sections) the post is in.
    collections: list[str] = field(default_factory=list)
    media: list[MediaRef] = field(default_factory=list)
    # Earlier versions the platform itself keeps (Mastodon's edit history), oldest first.
    history: list["PostVersion"] = field(default_factory=list)
    # When the platform's own record says the post was deleted (an export's list of deleted
    # posts): archived with its tombstone set, unlike a post merely missing from a listing.
    deleted_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class PostVersion:
    """An earlier text of a post, as the platform reports it; ``replaced_at`` is when the
    next version replaced it (the edit's time)."""

    replaced_at: str
    text: str | None = None
    title: str | None = None
    visibility: str | None = None


@dataclass
class Interaction:
    """Something the owner did to another person's post: a ``like`` or a ``bookmark``.

    ``target`` is what the platform names the post by (an at:// URI, a status URL).
    Shares of others' posts (boosts, reposts) are the owner's own posts, kind "boost".
    """

    kind: Literal["like", "bookmark"]
    target: str
    target_url: str | None = None
    native_id: str | None = None
    created_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)   # slots: a chunk of a follower list holds thousands
class Person:
    """One identity on a platform. ``native_id`` is the platform's stable id where it has
    one, otherwise the handle (TikTok exports name followers only by user name)."""

    native_id: str
    handle: str | None = None
    display_name: str | None = None
    url: str | None = None
    avatar_url: str | None = None
    # Their picture as a file to keep, when the platform gives a link archiver may fetch
    # (connectors set it for the authors of comments and replies). The runner downloads it
    # for Person records and comment authors only when the archive holds no picture of
    # them yet or the link (without its query) changed; never for the members of a
    # follower Snapshot (a million people). ``avatar_url`` stays the platform's link.
    avatar: MediaRef | None = None
    # What the person says about themselves (where the platform gives it): the profile's
    # bio text and the links in the profile. Used to find the same person elsewhere.
    bio: str | None = None
    links: list[str] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def name_key(name: str, prefix: str = "name:") -> str:
    """The id of someone an export names only by display name (Facebook's friends, LinkedIn's
    members followed): ``prefix`` and the name in Unicode NFKC, case folded, its white space
    collapsed. Two people with the same name are therefore one; someone who renames is new."""
    return prefix + " ".join(unicodedata.normalize("NFKC", name).casefold().split())


@dataclass
class Comment:
    native_id: str | None
    text: str
    created_at: str | None
    post_native_id: str | None = None
    author: Person | None = None
    by_owner: bool = False  # written by the account owner
    parent_native_id: str | None = None
    url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Membership:
    """One person in a follower / following list, with the date the platform gives."""

    person: Person
    since: str | None = None


@dataclass
class Collection:
    """A named group of the owner's posts: a Pinterest board, or a section inside one
    (``parent_native_id`` is its board). Posts name the collections they are in."""

    native_id: str
    title: str | None
    kind: str = "board"  # board | section
    parent_native_id: str | None = None
    description: str | None = None
    url: str | None = None
    visibility: str | None = None
    created_at: str | None = None
    post_count: int | None = None
    follower_count: int | None = None
    cover: MediaRef | None = None
    raw: dict[str, Any] = field(default_factory=dict)


# What an owned contact's status says of them, in one vocabulary across providers.
OWNED_STATUSES = ("subscribed", "pending", "unsubscribed", "cleaned", "customer")


@dataclass
class OwnedContact:
    """Someone the owner can reach without any platform: a subscriber of their newsletter or
    a customer of their shop, from the provider's own CSV export. People of the ``owned``
    kind: kept apart from platform identities (table ``owned_contacts``), and never shown
    by `archiver serve` or the site.

    ``native_id`` is the email address trimmed and case folded, so the same person is one
    across providers. ``status`` is one of ``OWNED_STATUSES``; ``consent`` whether they
    agreed to receive email from the owner (None: the file does not say). Times are UTC
    ISO-8601: ``joined_at`` (subscribed, signed up), ``consent_at`` (opt-in confirmed or
    consent last changed), ``left_at`` (unsubscribed, cleaned, bounced). ``as_of`` is when
    the export said so (the file's own time): an older export never overrides a newer one.
    """

    native_id: str
    email: str
    channel: Literal["newsletter", "shop"]
    status: str
    consent: bool | None = None
    display_name: str | None = None
    joined_at: str | None = None
    consent_at: str | None = None
    left_at: str | None = None
    provider_id: str | None = None
    orders: int | None = None
    as_of: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # Where it was read ("subscribed_members.csv, line 12"): how an error about it names it,
    # as the address must not be named. Not stored.
    where: str = ""

    def __repr__(self) -> str:   # an address is personal data: never in a log or a traceback
        return f"OwnedContact(channel={self.channel!r}, status={self.status!r})"


Record = Profile | Post | Comment | Person | Interaction | Collection | OwnedContact
# The lists of a person's audience: who follows them, whom they follow, and, where a
# platform has a mutual connection beside following, their friends (LinkedIn's
# connections); the invitations to connect still open, each way.
ListKind = Literal["followers", "following", "friends", "invitations_received", "invitations_sent"]


@dataclass
class Page:
    """A batch of records and the stream state that follows it.

    The sync runner commits ``records`` and ``state`` in one transaction, so a run killed
    at any instant resumes from ``state``. ``complete`` on the last page of a listing
    says the listing was whole: only then may the writer tombstone what is missing.
    """

    stream: str
    records: list[Any] = field(default_factory=list)
    state: dict[str, Any] | None = None
    # A full listing (``--full``) names itself; posts on its pages are marked with it, and
    # its last page (``complete=True``) lets the writer tombstone posts it no longer had.
    # Pages made by archiver.sync.listing also say which ids the platform listed on them
    # (``listed``, kept whether or not each item could be archived), which items could
    # not be mapped (``unmapped``), and what the listing is of (``listing_of``: "posts",
    # or the owner's "like" / "bookmark" interactions).
    listing: str | None = None
    complete: bool = False
    listed: list[str] | None = None
    unmapped: list["Unmapped"] = field(default_factory=list)
    listing_of: str = "posts"
    # A listing of comments ("comment") says which posts' comments its page covered, each
    # with how deep the platform's answer reached (None: every level): only comments of
    # those posts, within that depth, may be marked deleted when it completes.
    covered: list[tuple[str, int | None]] | None = None
    # Provenance when it differs from the run's: an export zip fetched during an API run
    # (TikTok's Data Portability) is written as "export:<sha256>", like an imported file.
    source: str | None = None


class PageBuffer:
    """Records of one stream gathered into pages of ``size`` as an importer streams a file
    (far bigger than memory): ``add`` returns a page to yield once one is full, ``rest`` the
    last, partly filled one."""

    def __init__(self, stream: str, size: int):
        self.stream, self.size = stream, size
        self.records: list[Any] = []

    def add(self, record: Any) -> Page | None:
        self.records.append(record)
        if len(self.records) < self.size:
            return None
        page, self.records = Page(self.stream, self.records), []
        return page

    def rest(self) -> Iterator[Page]:
        if self.records:
            page, self.records = Page(self.stream, self.records), []
            yield page


def pages_of(stream: str, records: Iterable[Any], size: int) -> Iterator[Page]:
    """``records`` as pages of ``size`` of ``stream``."""
    buffer = PageBuffer(stream, size)
    for record in records:
        if page := buffer.add(record):
            yield page
    yield from buffer.rest()


@dataclass
class Unmapped:
    """An item the platform listed that could not be turned into a record: reported with
    its id and why, and kept raw (table ``unmapped_items``) for a later version to read."""

    item_id: str
    error: str
    raw: Any = None


@dataclass
class CommentsListed:
    """The platform listed every comment of one post, and these are their ids: comments
    of that post the archive had from the platform before and that are not among them
    are marked deleted. Yield it only after a complete, error-free listing of them, after
    (or on the same page as) the comments themselves."""

    post_id: str
    comment_ids: list[str]
    # The listing gave the top-level comments only (their replies may have been cut
    # short): replies are then never marked deleted by it.
    top_level_only: bool = False


@dataclass
class Snapshot:
    """A whole follower or following list at one moment (from an export or an API).

    ``members`` is an iterable so a million people stream through in bounded memory.
    """

    kind: ListKind
    taken_at: str
    members: Iterable[Membership]
    complete: bool = True


@dataclass
class ListPage:
    """One page of a follower or following list read from an API (see archiver.archive.lists).

    The writer adds ``members`` to the list staged under (account, ``kind``, ``taken_at``)
    and keeps ``cursor`` beside them in the same transaction, so a run killed half way
    goes on from the cursor. The ``last`` page turns the staged list into a Snapshot
    (``complete`` as for a Snapshot) and clears the staging.
    """

    kind: ListKind
    taken_at: str
    members: list[Membership] = field(default_factory=list)
    cursor: Any = None
    last: bool = False
    complete: bool = True
