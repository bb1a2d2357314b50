"""A simulated LinkedIn member ("the world") and the two ways it comes out: the "Get a copy
of your data" export (``write_export``) and the Member Snapshot API's rows
(``snapshot_rows``), faithful to ../shared/platforms/linkedin.md §1.4 and §2.

    world = make_world(posts=3, connections=4)
    write_export(tmp / "Complete_LinkedInDataExport_06-01-2024.zip", world, generation="2024")
    rows = snapshot_rows(world, "CONNECTIONS")   # [{"First Name": "Ada", …}, …]

Generations (``generation``), as the notes' real exports have them:

- ``"2024"`` (default): UTF-8 without BOM; Connections.csv with the ``Notes:`` preamble
  and a ``URL`` column, ``20 Mar 2024`` dates; Shares.csv ``…,SharedUrl,MediaUrl,…`` with
  the multi-line ShareCommentary quirk; Comments.csv with raw unquoted newlines in
  messages without a comma and doubled quotes; line ends mixed per file (CRLF: Shares,
  Comments, Reactions, Member_Follows; LF: Connections, Invitations, Profile, Company Follows).
- ``"2025"``: the 2024 files, but Comments.csv escapes quotes with a backslash (``\\"``).
- ``"2021"``: Connections.csv with the preamble and no ``URL`` column; Shares.csv
  ``…,SharedURL,MediaURL,…``.
- ``"2018"``: Shares.csv in UTF-16LE with BOM, tab-separated, columns ``Date, Share Title,
  Share Description, Share Link, Share Commentary, Shared URL, Media URL, Type,
  Visibility`` (``2017/06/08 08:15:44 UTC``, ``Connections``); Connections.csv without
  preamble or URL, ``1/8/18, 6:14 PM`` dates; Invitations.csv without the URL columns;
  Profile.csv with ``Contact Instructions, Country``.

Knobs: ``zipped`` (a zip, else the folder it unzips to), ``complete`` (the Complete
archive, else the Basic one: connections, invitations and profile only [U]), ``folder``
(a top folder inside, e.g. ``"Export"`` [C3 claim] or the zip's own name), ``bom`` (a
UTF-8 BOM on every UTF-8 file), ``underscores`` (``Rich_Media.csv``, ``Company_Follows.csv``),
``member_id_suffix`` (``Shares_7789716.csv``, ``Comments_7789716.csv``).

``snapshot_rows`` gives the same data as the API's ``snapshotData``: string values keyed
by the 2024 column names, one list per domain (MEMBER_SHARE_INFO, CONNECTIONS, ALL_COMMENTS,
ALL_LIKES, INVITATIONS, MEMBER_FOLLOWS [U], COMPANY_FOLLOWS [U], RICH_MEDIA, PROFILE,
POSITIONS, EDUCATION, SKILLS); ``share_quirk=True`` wraps multi-line texts as the export
does [U whether the API does].
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

GENERATIONS = ("2018", "2021", "2024", "2025")
UTC = dt.timezone.utc
EXPORT_TIME = dt.datetime(2024, 6, 1, 9, 30, tzinfo=UTC)   # when the default world's export was made

CONNECTIONS_NOTES = (
    "Notes:\n"
    '"When exporting your connection data, you may notice that some of the email addresses are missing. '
    "You will only see email addresses for connections who have allowed their connections to see or "
    "download their email address using this setting https://www.linkedin.com/psettings/privacy/email. "
    'You can learn more here https://www.linkedin.com/help/linkedin/answer/261"\n'
    "\n")


# --------------------------------------------------------------------------- the world


@dataclass
class SimMember:
    """Another LinkedIn member. ``vanity`` None: an export that gives no link for them."""

    first_name: str
    last_name: str
    vanity: str | None = None
    company: str = ""
    position: str = ""

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def url(self) -> str:
        return f"https://www.linkedin.com/in/{urllib.parse.quote(self.vanity)}" if self.vanity else ""


@dataclass
class SimOwner:
    """The member whose data it is, and the profile sections the export holds."""

    first_name: str = "Ada"
    last_name: str = "Example"
    vanity: str = "ada-example-1234"
    headline: str = "Founder at Analytical Engines"
    summary: str = "I build engines.\nAnd I write about them, \"carefully\"."
    industry: str = "Computer Software"
    geo_location: str = "London, England, United Kingdom"
    websites: str = "[PERSONAL:https://ada.example]"
    birth_date: str = "Dec 10"                     # contact data: must not reach the archive
    address: str = "12 St James's Square, London"
    positions: list[dict[str, str]] = field(default_factory=lambda: [
        {"Company Name": "Analytical Engines", "Title": "Founder", "Description": "Engines, notes, programs.",
         "Location": "London", "Started On": "Jan 2024", "Finished On": ""}])
    education: list[dict[str, str]] = field(default_factory=lambda: [
        {"School Name": "Home tutors", "Start Date": "1828", "End Date": "1833", "Notes": "",
         "Degree Name": "Mathematics", "Activities": ""}])
    skills: list[str] = field(default_factory=lambda: ["Mathematics", "Programming"])

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def url(self) -> str:
        return f"https://www.linkedin.com/in/{self.vanity}"


@dataclass
class SimPost:
    """One post: ``urn`` its id (``urn:li:share:…`` or ``urn:li:ugcPost:…``)."""

    urn: str
    created_at: dt.datetime
    text: str = ""
    shared_url: str = ""
    media_url: str = ""
    visibility: str = "MEMBER_NETWORK"

    @property
    def share_link(self) -> str:
        return "https://www.linkedin.com/feed/update/" + urllib.parse.quote(self.urn, safe="")


@dataclass
class SimComment:
    """A comment the owner wrote on a post (``post_urn``: usually someone else's)."""

    post_urn: str
    created_at: dt.datetime
    text: str

    @property
    def link(self) -> str:
        return "https://www.linkedin.com/feed/update/" + urllib.parse.quote(self.post_urn, safe="")


@dataclass
class SimReaction:
    """A reaction the owner gave to a post, or to a comment on it (``comment_urn``)."""

    post_urn: str
    created_at: dt.datetime
    type: str = "LIKE"
    comment_urn: str | None = None

    @property
    def link(self) -> str:
        link = "https://www.linkedin.com/feed/update/" + urllib.parse.quote(self.post_urn, safe="")
        if self.comment_urn:
            link += "?commentUrn=" + urllib.parse.quote(self.comment_urn, safe="")
        return link

    @property
    def target(self) -> str:
        return self.comment_urn or self.post_urn


@dataclass
class SimConnection:
    member: SimMember
    connected_on: dt.datetime
    email: str = ""


@dataclass
class SimInvitation:
    """An open invitation: ``direction`` INCOMING (they invited the owner) or OUTGOING."""

    member: SimMember
    sent_at: dt.datetime
    direction: str = "INCOMING"
    message: str = ""


@dataclass
class SimMemberFollow:
    name: str
    followed_on: dt.datetime
    status: str = "Active"


@dataclass
class SimCompanyFollow:
    organization: str
    followed_on: dt.datetime


@dataclass
class World:
    owner: SimOwner = field(default_factory=SimOwner)
    posts: list[SimPost] = field(default_factory=list)
    comments: list[SimComment] = field(default_factory=list)
    reactions: list[SimReaction] = field(default_factory=list)
    connections: list[SimConnection] = field(default_factory=list)
    invitations: list[SimInvitation] = field(default_factory=list)
    member_follows: list[SimMemberFollow] = field(default_factory=list)
    company_follows: list[SimCompanyFollow] = field(default_factory=list)
    rich_media: list[tuple[str, str]] = field(default_factory=lambda: [
        ("Video content can be downloaded at", "https://www.linkedin.com/psettings/member-data/videos"),
        ("Image content can be downloaded at", "https://www.linkedin.com/psettings/member-data/images")])


_FIRST = ("Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken", "Margaret")
_LAST = ("Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Perlman", "Thompson", "Hamilton")
_POST_TEXTS = (
    "Shipped the difference engine, v2.",
    "Three things I learned this year:\n\n1. Notes matter.\n2. \"Programs\" are poetry.\n\nThat's all, folks!",
    "A reshare, with a comma, and an emoji 🚂",
    "",   # a repost without commentary
)
_COMMENT_TEXTS = (
    "Congratulations!",
    "Grace Hopper Thanks for sharing\nthis made my day",          # no comma: raw unquoted newlines
    "Well said, and \"exactly\" right.\nSecond line, too.",       # comma and quotes: quoted
)


def make_world(*, posts: int = 3, connections: int = 4, comments: int = 3, reactions: int = 3,
               invitations: int = 2, follows: int = 2, seed: int = 0) -> World:
    """A small world for tests and the simulator: every kind of row the notes describe
    (a multi-line post, a post without text, one with a shared link and one with a media
    link; a comment with raw newlines and one with quotes; a reaction to a comment; a
    connection without a profile link; one invitation each way)."""
    world = World()
    base = EXPORT_TIME - dt.timedelta(days=1)
    share_id = 7_200_000_000_000_000_000 + seed * 1_000_000
    for i in range(posts):
        kind = "ugcPost" if i % 3 == 2 else "share"
        world.posts.append(SimPost(
            urn=f"urn:li:{kind}:{share_id + i}", created_at=base - dt.timedelta(days=i % 7300, seconds=17 * i),
            text=_POST_TEXTS[i % len(_POST_TEXTS)],
            shared_url="https://example.org/article" if i % 4 == 2 else "",
            media_url=f"https://www.linkedin.com/posts/ada-example-1234_activity-{share_id + i}-media"
            if i % 4 == 1 else "",
            visibility="PUBLIC" if i % 2 else "MEMBER_NETWORK"))
    for i in range(comments):
        world.comments.append(SimComment(
            post_urn=f"urn:li:activity:{share_id + 500 + i}", created_at=base - dt.timedelta(hours=i + 1, seconds=i),
            text=_COMMENT_TEXTS[i % len(_COMMENT_TEXTS)]))
    types = ("LIKE", "PRAISE", "EMPATHY", "INTEREST")
    for i in range(reactions):
        world.reactions.append(SimReaction(
            post_urn=f"urn:li:activity:{share_id + 600 + i}", created_at=base - dt.timedelta(hours=i + 2),
            type=types[i % len(types)],
            comment_urn=f"urn:li:comment:(activity:{share_id + 600 + i},{share_id + 700 + i})" if i == 1 else None))
    for i in range(connections):
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i // len(_FIRST) + i) % len(_LAST)]
        suffix = f"-{i}" if i >= len(_FIRST) else ""
        world.connections.append(SimConnection(
            SimMember(first, last + suffix, None if i == 3 else f"{first}-{last}{suffix}-{100 + i}".lower(),
                      company="Analytical Engines" if i % 2 else "Navy", position="Engineer"),
            connected_on=(base - dt.timedelta(days=30 * (i % 100 + 1) + i // 100)).replace(hour=18, minute=14,
                                                                                   second=0)))
    for i in range(invitations):
        world.invitations.append(SimInvitation(
            SimMember("Charles", f"Babbage{i}", f"charles-babbage-{i}"),
            sent_at=(base - dt.timedelta(days=i % 7300 + 2)).replace(hour=11, minute=20, second=0),
            direction="INCOMING" if i % 2 == 0 else "OUTGOING",
            message="Hello Ada, let's connect, shall we?" if i == 0 else ""))
    for i in range(follows):
        world.member_follows.append(SimMemberFollow(
            f"Mary Somerville{'' if i == 0 else f' {i}'}", (base - dt.timedelta(days=40 + i % 7300)).replace(microsecond=0)))
        world.company_follows.append(SimCompanyFollow(
            "Royal Society" if i == 0 else f"Society {i}, Ltd", (base - dt.timedelta(days=50 + i % 7300)).replace(microsecond=0)))
    return world


# --------------------------------------------------------------------------- formats


def _iso_seconds(moment: dt.datetime) -> str:                 # 2024-03-17 18:03:34
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _day_month_year(moment: dt.datetime) -> str:              # 20 Mar 2024
    return moment.astimezone(UTC).strftime("%d %b %Y")


def _us_short(moment: dt.datetime) -> str:                    # 3/12/24, 11:20 AM
    m = moment.astimezone(UTC)
    return f"{m.month}/{m.day}/{m:%y}, {int(m.strftime('%I'))}:{m:%M} {m:%p}"


def _java_date(moment: dt.datetime) -> str:                   # Wed Mar 13 18:51:14 UTC 2024
    return moment.astimezone(UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


def _slashed_utc(moment: dt.datetime) -> str:                 # 2017/06/08 08:15:44 UTC
    return moment.astimezone(UTC).strftime("%Y/%m/%d %H:%M:%S UTC")


def share_commentary(text: str) -> str:
    """ShareCommentary as the export writes a multi-line text (notes §2.4): every inner
    line wrapped in a literal quote, an empty line as ``""``."""
    lines = text.split("\n")
    if len(lines) < 2:
        return text
    first, *middle, last = lines
    return "\n".join([first + '"', *('"' + line + '"' for line in middle), '"' + last])


def _csv_text(header: list[str], rows: list[list[str]], *, line_end: str = "\n", delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=line_end, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _comments_text(world: World, *, backslash: bool, line_end: str) -> str:
    """Comments.csv as LinkedIn writes it: a message without a comma is written bare,
    even across lines (raw unquoted newlines); one with a comma or quote is quoted, its
    quotes doubled (2024) or backslash-escaped (2025); a blank line after a multi-line one."""
    lines = ["Date,Link,Message"]
    for comment in world.comments:
        text = comment.text
        if "," in text or '"' in text:
            inner = text.replace('"', '\\"') if backslash else text.replace('"', '""')
            text = f'"{inner}"'
        lines.append(f"{_iso_seconds(comment.created_at)},{comment.link},{text}")
        if "\n" in comment.text:
            lines.append("")
    return ("\n".join(lines) + "\n").replace("\n", line_end)


# --------------------------------------------------------------------------- the rows, by file


def _shares_rows(world: World, *, quirk: bool) -> list[dict[str, str]]:
    return [{"Date": _iso_seconds(p.created_at), "ShareLink": p.share_link,
             "ShareCommentary": share_commentary(p.text) if quirk else p.text,
             "SharedUrl": p.shared_url, "MediaUrl": p.media_url, "Visibility": p.visibility} for p in world.posts]


def _connection_rows(world: World) -> list[dict[str, str]]:
    return [{"First Name": c.member.first_name, "Last Name": c.member.last_name, "URL": c.member.url,
             "Email Address": c.email, "Company": c.member.company, "Position": c.member.position,
             "Connected On": _day_month_year(c.connected_on)} for c in world.connections]


def _invitation_rows(world: World) -> list[dict[str, str]]:
    rows = []
    for inv in world.invitations:
        incoming = inv.direction == "INCOMING"
        rows.append({"From": inv.member.name if incoming else world.owner.name,
                     "To": world.owner.name if incoming else inv.member.name,
                     "Sent At": _us_short(inv.sent_at), "Message": inv.message, "Direction": inv.direction,
                     "inviterProfileUrl": inv.member.url if incoming else world.owner.url,
                     "inviteeProfileUrl": world.owner.url if incoming else inv.member.url})
    return rows


def _profile_row(world: World, *, generation: str = "2024") -> dict[str, str]:
    o = world.owner
    row = {"First Name": o.first_name, "Last Name": o.last_name, "Maiden Name": "", "Address": o.address,
           "Birth Date": o.birth_date, "Headline": o.headline, "Summary": o.summary, "Industry": o.industry,
           "Zip Code": "SW1Y 4LE", "Geo Location": o.geo_location, "Twitter Handles": "", "Websites": o.websites,
           "Instant Messengers": ""}
    if generation == "2018":
        row |= {"Contact Instructions": "Write to me", "Country": "United Kingdom"}
    return row


DOMAINS = ("MEMBER_SHARE_INFO", "CONNECTIONS", "ALL_COMMENTS", "ALL_LIKES", "INVITATIONS", "MEMBER_FOLLOWS",
           "COMPANY_FOLLOWS", "RICH_MEDIA", "PROFILE", "POSITIONS", "EDUCATION", "SKILLS")


def snapshot_rows(world: World, domain: str, *, share_quirk: bool = False) -> list[dict[str, str]]:
    """The Member Snapshot API's ``snapshotData`` rows of one domain: the export's 2024
    column names as keys, strings as values. An empty list for a domain the world holds
    nothing of (the fake answers 404 "No data found"); ValueError for a domain unknown here."""
    if domain == "MEMBER_SHARE_INFO":
        return _shares_rows(world, quirk=share_quirk)
    if domain == "CONNECTIONS":
        return _connection_rows(world)
    if domain == "ALL_COMMENTS":
        return [{"Date": _iso_seconds(c.created_at), "Link": c.link, "Message": c.text} for c in world.comments]
    if domain == "ALL_LIKES":
        return [{"Date": _iso_seconds(r.created_at), "Type": r.type, "Link": r.link} for r in world.reactions]
    if domain == "INVITATIONS":
        return _invitation_rows(world)
    if domain == "MEMBER_FOLLOWS":
        return [{"Date": _iso_seconds(f.followed_on), "Status": f.status, "FullName": f.name}
                for f in world.member_follows]
    if domain == "COMPANY_FOLLOWS":
        return [{"Organization": f.organization, "Followed On": _java_date(f.followed_on)}
                for f in world.company_follows]
    if domain == "RICH_MEDIA":
        return [{"Type": what, "Link": link} for what, link in world.rich_media]
    if domain == "PROFILE":
        return [_profile_row(world)]
    if domain == "POSITIONS":
        return [dict(row) for row in world.owner.positions]
    if domain == "EDUCATION":
        return [dict(row) for row in world.owner.education]
    if domain == "SKILLS":
        return [{"Name": skill} for skill in world.owner.skills]
    raise ValueError(f"unknown snapshot domain {domain!r} (known: {', '.join(DOMAINS)})")


# --------------------------------------------------------------------------- the export


def _table(rows: list[dict[str, str]], header: list[str]) -> list[list[str]]:
    return [[row.get(column, "") for column in header] for row in rows]


def export_files(world: World, *, generation: str = "2024", complete: bool = True, bom: bool = False,
                 underscores: bool = False, member_id_suffix: str | None = None) -> dict[str, bytes]:
    """The export's files (name -> bytes) for one generation (see the module's text)."""
    if generation not in GENERATIONS:
        raise ValueError(f"generation must be one of {', '.join(GENERATIONS)}")
    files: dict[str, str] = {}
    crlf = "\r\n"
    suffix = f"_{member_id_suffix}" if member_id_suffix else ""

    # Connections.csv (LF)
    if generation == "2018":
        header = ["First Name", "Last Name", "Email Address", "Company", "Position", "Connected On"]
        rows = [[c.member.first_name, c.member.last_name, c.email, c.member.company, c.member.position,
                 _us_short(c.connected_on)] for c in world.connections]
        files["Connections.csv"] = _csv_text(header, rows)
    else:
        header = ["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"]
        if generation == "2021":
            header.remove("URL")
        files["Connections.csv"] = CONNECTIONS_NOTES + _csv_text(header, _table(_connection_rows(world), header))

    # Invitations.csv (LF)
    header = ["From", "To", "Sent At", "Message", "Direction", "inviterProfileUrl", "inviteeProfileUrl"]
    if generation == "2018":
        header = header[:5]
    files["Invitations.csv"] = _csv_text(header, _table(_invitation_rows(world), header))

    # Profile and its sections (LF)
    profile = _profile_row(world, generation=generation)
    files["Profile.csv"] = _csv_text(list(profile), [list(profile.values())])
    positions = ["Company Name", "Title", "Description", "Location", "Started On", "Finished On"]
    files["Positions.csv"] = _csv_text(positions, _table(world.owner.positions, positions))
    education = ["School Name", "Start Date", "End Date", "Notes", "Degree Name", "Activities"]
    files["Education.csv"] = _csv_text(education, _table(world.owner.education, education))
    files["Skills.csv"] = _csv_text(["Name"], [[s] for s in world.owner.skills])
    files["Email Addresses.csv"] = _csv_text(["Email Address", "Confirmed", "Primary", "Updated On"],
                                             [["ada@example.org", "Yes", "Yes", "1/1/20, 9:00 AM"]])
    files["Registration.csv"] = _csv_text(["Registered At", "Registration Ip", "Subscription Types"],
                                          [["1/1/20, 9:00 AM", "192.0.2.1", ""]])

    if complete:
        # Shares.csv (CRLF; 2018: UTF-16 TSV, written below)
        if generation != "2018":
            header = ["Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility"]
            rows = _table(_shares_rows(world, quirk=True), header)
            if generation == "2021":
                header = ["Date", "ShareLink", "ShareCommentary", "SharedURL", "MediaURL", "Visibility"]
            files[f"Shares{suffix}.csv"] = _csv_text(header, rows, line_end=crlf)
        files[f"Comments{suffix}.csv"] = _comments_text(world, backslash=generation == "2025", line_end=crlf)
        header = ["Date", "Type", "Link"]
        files["Reactions.csv"] = _csv_text(header, _table(snapshot_rows(world, "ALL_LIKES"), header), line_end=crlf)
        header = ["Date", "Status", "FullName"]
        files["Member_Follows.csv"] = _csv_text(header, _table(snapshot_rows(world, "MEMBER_FOLLOWS"), header),
                                                line_end=crlf)
        header = ["Organization", "Followed On"]
        files["Company_Follows.csv" if underscores else "Company Follows.csv"] = _csv_text(
            header, _table(snapshot_rows(world, "COMPANY_FOLLOWS"), header))
        header = ["Type", "Link"]
        files["Rich_Media.csv" if underscores else "Rich Media.csv"] = _csv_text(
            header, [[what, " " + link] for what, link in world.rich_media])
        files["Hashtag_Follows.csv"] = _csv_text(["HashTag", "CreatedTime", "LastModifiedTime", "State"], [],
                                                 line_end=crlf)
        files["Jobs/Job Applications.csv"] = _csv_text(["Application Date", "Company Name", "Job Title"], [])

    data: dict[str, bytes] = {}
    for name, text in files.items():
        data[name] = ("\ufeff" + text if bom else text).encode("utf-8")
    if complete and generation == "2018":
        header = ["Date", "Share Title", "Share Description", "Share Link", "Share Commentary", "Shared URL",
                  "Media URL", "Type", "Visibility"]
        rows = [[_slashed_utc(p.created_at), "", "", p.share_link.replace(urllib.parse.quote(p.urn, safe=""), p.urn),
                 share_commentary(p.text), p.shared_url, p.media_url, "Homepage",
                 "Connections" if p.visibility == "MEMBER_NETWORK" else "Public"] for p in world.posts]
        data["Shares.csv"] = _csv_text(header, rows, delimiter="\t", line_end=crlf).encode("utf-16")  # BOM FF FE
    return data


def write_export(path: str | Path, world: World, *, generation: str = "2024", zipped: bool = True,
                 complete: bool = True, folder: str = "", bom: bool = False, underscores: bool = False,
                 member_id_suffix: str | None = None) -> Path:
    """Write ``world``'s export to ``path`` (a zip, or with ``zipped=False`` a folder) and
    return ``path``. ``folder`` puts every file below that top folder inside."""
    path = Path(path)
    files = export_files(world, generation=generation, complete=complete, bom=bom, underscores=underscores,
                         member_id_suffix=member_id_suffix)
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    stamp = EXPORT_TIME.timetuple()[:6]
    if zipped:
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(zipfile.ZipInfo(prefix + name, date_time=stamp), data)
    else:
        import os

        for name, data in files.items():
            target = path / (prefix + name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.utime(target, (EXPORT_TIME.timestamp(), EXPORT_TIME.timestamp()))
    return path
