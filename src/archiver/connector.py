"""What a connector is, and how the installed ones are found.

A connector only knows its platform: how to ask, how to page, how to map a payload to
records (see records.py). Retries, pacing, checkpoints, media, versions and run records
live in the core. Connectors register in the entry-point group ``archiver.connectors``,
so a third party can ship one as its own package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

import archiver.plugins as plugins
from archiver.plugins import ConnectorLoadError  # noqa: F401  (raised by installed_connectors)

if TYPE_CHECKING:
    from archiver.config import AccountConfig
    from archiver.records import MediaRef, Page
    from archiver.secrets import SecretStore
    from archiver.sync.imports import ExportSource
    from archiver.sync.runner import SyncContext

ENTRY_POINT_GROUP = plugins.CONNECTORS


@dataclass(frozen=True)
class Option:
    """A setting a connector declares as data: an option of `archiver auth NAME`
    (``Connector.auth_options``) or a key of its accounts' config tables
    (``Connector.config_options``)."""

    name: str                   # "instance" -> `--instance` on the command line, key `instance` in the config
    help: str                   # one line for --help (and for the error naming a mistyped key)
    type: type = str            # str | int | float | bool (float accepts whole numbers too)
    required: bool = False
    secret: bool = False        # auth only: typed at a hidden prompt when asked for, never echoed
    flag: bool = False          # auth only: `--NAME` without a value: True when given
    stdin: bool = False         # auth only: no `--NAME VALUE` (it would show in the process list), but
                                # `--NAME-stdin`: the value is read from standard input before anything runs
    aliases: tuple[str, ...] = ()   # auth only: other option names, e.g. ("client_key",) -> also `--client-key`
    metavar: str | None = None      # auth only: how --help shows the value, e.g. "URL"


# How a platform counts the length of a text (PostLimits.caption_unit, title_unit).
CHARS = "chars"              # Unicode code points, as Python's len()
UTF16 = "utf16"              # UTF-16 code units: a character outside the BMP (most emoji) counts 2
UTF8_BYTES = "bytes"         # UTF-8 bytes
EMOJI_AS_BYTES = "chars, emoji as UTF-8 bytes"   # code points, but an emoji counts its UTF-8 bytes
GRAPHEMES = "graphemes"      # what a reader sees as one character (counted as code points: never fewer)
LINKS_AS_23 = "chars, each link 23"   # code points, but a link counts 23 whatever its length
# Weighted: Latin, general punctuation and the like count 1, any other character 2 (CJK,
# emoji), a link 23 (the counting of the open twitter-text library's configuration).
WEIGHTED = "weighted: a link 23, most non-Latin characters 2"
LENGTH_UNITS = (CHARS, UTF16, UTF8_BYTES, EMOJI_AS_BYTES, GRAPHEMES, LINKS_AS_23, WEIGHTED)


@dataclass(frozen=True)
class ApiRate:
    """The request rate a platform allows one app's API calls, as its documentation says
    (``Connector.api_rate``). A single user's run never comes near it and paces itself; a
    fleet's workers keep it together (fleet/limiter.py: every worker's requests to the
    platform's API hosts share one limit, a rate an operator may lower in the fleet's
    database, docs/fleet.md "Rates"). ``per_user``: the platform counts per user token, so
    each account has its own limit (else every account of one app shares it). ``endpoints``:
    the paths the platform counts apart (TikTok: each endpoint has its own 600 a minute), each
    with its own limit at this rate; every other request to the API host shares the host's."""

    per_minute: float                   # requests a minute on average (per API host, or per endpoint)
    burst: int = 1                      # at most this many at once
    per_user: bool = False
    source: str = ""                    # the official page the number comes from
    endpoints: tuple[str, ...] = ()     # URL paths counted apart ("/v2/video/list/")


@dataclass(frozen=True)
class PostLimits:
    """What one new post on a platform may hold, as its official documentation says, for
    `archiver content bundle` (views/content.py), which adapts an archived post of another
    platform to them. Declared as data on the connector (``Connector.post_limits``) and shown
    in the README's "Posting limits" table, which a test keeps equal to these declarations.

    On a platform with a separate title (a video's title and description, a Pin's title
    and description), ``caption_chars`` is the description's limit and ``title_chars`` the
    title's; elsewhere the caption is the post's whole text and ``title_chars`` is None."""

    label: str                          # what the limits are for, e.g. "Shorts (a video's title and description)"
    caption_chars: int                  # the caption's (or description's) greatest length, in caption_unit
    sources: tuple[str, ...]            # the official pages (URLs) the numbers come from
    checked: str                        # when they were read there, YYYY-MM-DD
    caption_unit: str = CHARS           # how the platform counts it: one of LENGTH_UNITS
    title_chars: int | None = None      # a separate title field's greatest length; None: no title field
    title_unit: str = CHARS
    hashtags_max: int | None = None     # most hashtags one post may carry; None: no documented limit
    # A single topic tag of at most this many characters instead of hashtags (e.g. Threads'
    # topic tag, 1-50 characters); None: the platform has none.
    topic_tag_chars: int | None = None
    topic_tag_forbidden: str = ""       # characters a topic tag may not hold
    forbidden_chars: str = ""           # characters the platform refuses in a title or caption
    notes: str = ""                     # what else a person must know, one sentence, for the checklist
    # False where no official page states the numbers: then the sources are others' (a
    # scheduling service's docs) that match what the platform's own post box enforces.
    official: bool = True


class Connector:
    """Base class. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]                 # "tiktok": the platform key in config and CLI
    title: ClassVar[str]                # "TikTok"
    # Other names a user may call the platform by (an old name): accepted wherever a
    # platform is named, stored under ``name``.
    platform_aliases: ClassVar[tuple[str, ...]] = ()
    default_base_url: ClassVar[str]
    # What a user must do by hand to get what the API does not give (followers lists).
    manual_export_steps: ClassVar[str] = ""
    # What only that export holds ("followers and following"), for the reminder to
    # request a new one; empty when the API gives it all (no reminder, no alert).
    export_only_holds: ClassVar[str] = ""
    # True where that is only so for people the API does not serve (LinkedIn's is open to
    # members in the EEA and Switzerland alone): an account whose API export succeeded
    # within the export's maximum age needs no reminder.
    export_needless_after_api_run: ClassVar[bool] = False
    # False where the API cannot list everything the account has (a window of recent posts,
    # a price per item returned): every run is incremental, the daemon schedules no full
    # listing, and only the platform's own records (an export) say what was deleted.
    full_listings: ClassVar[bool] = True
    # The SecretStore keys an account of this platform reads (for service installers).
    secret_keys: ClassVar[tuple[str, ...]] = ()
    # The folder this platform's export files sit in when they arrive inside another
    # platform's export ("threads" for a download that carries them in a threads/ folder):
    # importing that export without naming a platform fills both accounts, each its own run.
    nested_export_folder: ClassVar[str] = ""
    # What the platform calls a post, in messages to the user ("142 videos").
    post_noun: ClassVar[str] = "posts"
    # What the platform calls a list kind where the archive's word is not its own
    # ({"friends": "connections"}), in `archiver status`.
    list_nouns: ClassVar[dict[str, str]] = {}
    # The platform's words for who can see a post -> the archive's (records.VISIBILITIES),
    # where they differ: records.visibility(word, visibility_words).
    visibility_words: ClassVar[dict[str, str]] = {}
    # What `archiver auth NAME` asks for besides the core's --account, --no-browser and --port
    # (an instance URL, a handle, a token on standard input, the app's client id and secret);
    # ``authorize`` receives each by its name.
    auth_options: ClassVar[tuple[Option, ...]] = ()
    # The keys an [accounts.X] table of this platform may hold besides the core's
    # (config.ACCOUNT_KEYS); load_config refuses any other key, and a value of another type.
    config_options: ClassVar[tuple[Option, ...]] = ()
    # How people show on this platform, for `archiver audience links` (views/audience.py),
    # which suggests the identities of one person on several platforms.
    # The hosts of its profile pages, the usual one first: a link to any of them is a link to
    # the same page (X's: "twitter.com/alice" is "x.com/alice"). Empty where profiles have no
    # fixed host (the fediverse: each server's own); then a host "<name>.<tld>" counts.
    profile_hosts: ClassVar[tuple[str, ...]] = ()
    # True where a handle is a domain name its holder proved they control ("alice.example.com"
    # on Bluesky): a link to that domain in another profile points at them.
    handles_are_domains: ClassVar[bool] = False
    # The domains the platform hands handles out under (Bluesky's "bsky.social"): compared with
    # other platforms' handles, "alice.bsky.social" is the name "alice". A handle under any
    # other domain is the person's own domain and only ever compared whole.
    handle_domains: ClassVar[tuple[str, ...]] = ()
    # What else people call the platform in a bio besides its name, title and aliases
    # (Bluesky: "bsky"), as in "find me @alice on bsky".
    other_names: ClassVar[tuple[str, ...]] = ()
    # What one new post may hold there (caption length, hashtags, title), from the official
    # docs, for `archiver content bundle`; None where nobody has looked it up yet.
    post_limits: ClassVar[PostLimits | None] = None
    # The API request rate the platform allows (what a fleet keeps for all its workers);
    # None: not declared (a fleet then uses its default rate, fleet/limiter.py).
    api_rate: ClassVar[ApiRate | None] = None

    @classmethod
    def api_off(cls, options: dict[str, Any]) -> str:
        """Why this account's API runs are off, given its table's connector keys
        (``options``), or "" when they are on. A platform whose API costs money per use
        runs it only when the account sets what a run may spend; an account with its API
        off is archived from its exports alone: `archiver export` and the daemon skip it,
        saying this (which says how to get the data instead)."""
        return ""

    @classmethod
    def export_only_holds_for(cls, options: dict[str, Any]) -> str:
        """What only the export holds for one account, given its table's connector keys
        (``options``): ``export_only_holds`` unless a platform's accounts differ (one whose
        API gives everything its export holds, such as an organisation's page, needs no
        reminder: return "")."""
        return cls.export_only_holds

    def __init__(
        self,
        account: "AccountConfig",
        secrets: "SecretStore",
        *,
        transport: Any = None,
        sleep: Callable[[float], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ):
        self.account = account
        self.secrets = secrets
        self.transport = transport
        self.sleep = sleep
        self.cancel = cancel
        self.base_url = (account.base_url or self.default_base_url).rstrip("/")

    # -- authorization ---------------------------------------------------------------
    def authorize(self, *, echo: Callable[[str], None], open_browser: bool | None = None, port: int = 0,
                  prompt: Callable[[str], str] | None = None) -> str:
        """Interactive authorization; stores credentials through the SecretStore and
        returns a one-line summary for the user.

        A connector adds its declared ``auth_options`` as keyword arguments of their names,
        each defaulting to None (they are given a value, or None when not given; a ``stdin``
        option's value is what was read). ``open_browser``: None opens one, False
        prints the URL instead, a callable is called with it (tests play the browser).
        ``port``: the loopback redirect's port (0: any free one). ``prompt(key)`` asks the
        user for a value (hidden for a secret one); None when nobody is at a terminal."""
        raise NotImplementedError

    @classmethod
    def account_settings_from_auth(cls, options: dict[str, Any]) -> dict | None:
        """Config settings for a new account built from the `archiver auth` options
        (``options``: the declared auth options by name, e.g. an instance URL or a handle),
        or None when this platform needs a config entry first."""
        return None

    # -- API sync --------------------------------------------------------------------
    def pages(self, ctx: "SyncContext") -> Iterator["Page"]:
        """Yield pages of records for every stream, resuming from ``ctx.state(stream)``."""
        raise NotImplementedError

    # -- official export files -------------------------------------------------------
    @classmethod
    def detect_export(cls, source: "ExportSource") -> bool:
        """True when ``source`` looks like this platform's official export."""
        return False

    def import_pages(self, source: "ExportSource", ctx: "SyncContext") -> Iterator["Page"]:
        raise NotImplementedError

    def media_client(self):
        """The client media is downloaded with (CDN links carry no auth): the same policy as
        API calls — retries on 429/5xx/timeouts with Retry-After honoured, pacing per host
        from the rate-limit headers, a total time cap, cancellation during every wait."""
        import logging

        from archiver.net.client import ApiClient

        kwargs = {"sleep": self.sleep} if self.sleep else {}
        return ApiClient(transport=self.transport, timeout=60, cancel=self.cancel,
                         retry_log_level=logging.DEBUG, links=self.link_policy(), **kwargs)

    def link_policy(self):
        """Where links taken from data (media, avatars, download links in a payload) may
        lead for this account: public hosts only, unless the account's own base URL is on
        loopback (a simulator), see links.py. Every client that fetches such links uses it."""
        from archiver.net.links import LinkPolicy

        return LinkPolicy.for_account(self.base_url)

    def refresh_media(self, post_ids: list[str]) -> dict[str, list["MediaRef"]]:
        """Fresh media links for archived posts, asked of the platform again: post_id -> its
        MediaRefs (role and position as the posts' own). Called by the repair pass at the
        start of a run for slots whose download failed; a platform whose links expire
        implements it. Posts the platform no longer gives are simply absent."""
        return {}

    def close(self) -> None:
        pass

    @classmethod
    def upgrade_archive(cls, db, migration: str) -> None:
        """Rewrite this platform's rows where the schema migration ``migration`` changed
        what they mean (e.g. how they are keyed). Called inside the migration's
        transaction, once per archive; most connectors have nothing to do."""


def installed_connectors() -> dict[str, type[Connector]]:
    """name -> connector class, from the entry-point group (built-in ones included); a
    built-in one that fails to load is an error, a third party's is skipped (plugins.py)."""
    return plugins.load(ENTRY_POINT_GROUP, built_in_must_load=True)


def connector_names() -> list[str]:
    """Names only, without importing any connector module (for fast --help and errors)."""
    return plugins.names(ENTRY_POINT_GROUP)


class UnknownPlatform(Exception):
    pass


def lists_everything(platform: str) -> bool:
    """Whether the platform's API can list all an account has (``Connector.full_listings``);
    an unknown platform is left to the run to report."""
    try:
        return get_connector(platform).full_listings
    except UnknownPlatform:
        return True


def api_off(platform: str, options: dict[str, Any]) -> str:
    """Why an account's API runs are off (``Connector.api_off``), "" when they are on; an
    unknown platform is left to the run to report."""
    try:
        return get_connector(platform).api_off(options)
    except UnknownPlatform:
        return ""


def canonical_platform(name: str) -> str:
    """The platform's own name for ``name`` (one of its ``platform_aliases``, in any case),
    else ``name`` as it is (an unknown one is reported by whoever looks it up)."""
    if name in connector_names():
        return name
    wanted = name.strip().lower()
    for platform, cls in installed_connectors().items():
        if wanted == platform or wanted in cls.platform_aliases:
            return platform
    return name


def get_connector(name: str) -> type[Connector]:
    connectors = installed_connectors()
    name = canonical_platform(name)
    if name not in connectors:
        raise UnknownPlatform(
            f"unknown platform {name!r}. Installed connectors: {', '.join(sorted(connectors)) or 'none'} "
            "(`archiver connectors` lists them)."
        )
    return connectors[name]
