"""LinkedIn's "Get a copy of your data" export (archiver_connectors.linkedin.export and
rows.py), as shared/platforms/linkedin.md §2 describes it and linkedin/sim/export.py builds
it: every generation (2018's UTF-16 tab-separated Shares.csv, 2021 without profile links,
2024 and 2025) zipped and unzipped, with or without a top folder; the notes' quirks written
by hand (the ``Notes:`` preamble, SharedURL / SharedUrl, the multi-line ShareCommentary,
Comments.csv's raw newlines and backslash-escaped quotes, BOMs, mixed line ends, file-name
variants); one bad row among good ones; an import twice; the API's snapshot rows giving
the same records as the export's; hostile files under a memory limit.

Imports go through the real connector, the core's open_export and sync runner (or
run_import), with a network that fails the test at the first request.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
import textwrap
import types
import zipfile
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from archive_rows import one, rows
from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.records import Comment, Interaction, Membership, Post, Profile, Snapshot, name_key
from archiver.secrets import open_secret_store
from archiver.sync.imports import open_export
from archiver.sync.jobs import Workspace, recognizing, run_import
from archiver.sync.runner import Runner
from archiver_connectors.linkedin import LinkedInConnector
from archiver_connectors.linkedin import export as li_export
from archiver_connectors.linkedin import rows as li_rows
from archiver_connectors.linkedin.sim.export import (
    EXPORT_TIME,
    SimMember,
    World,
    export_files,
    make_world,
    snapshot_rows,
    write_export,
)

ZIP_NAME = "Complete_LinkedInDataExport_06-01-2024.zip"


def refuse_every_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"an export import must not make any request (it asked for {request.url})")


def connector() -> LinkedInConnector:
    return LinkedInConnector(AccountConfig(name="main", platform="linkedin"), open_secret_store("memory"),
                             transport=httpx.MockTransport(refuse_every_request))


def import_export(archive: Archive, path: Path) -> dict:
    """Import ``path`` through the real connector and the real sync runner."""
    li = connector()
    with open_export(path) as source:
        return Runner(archive, li).run(lambda ctx: li.import_pages(source, ctx), kind="import", mode=path.name,
                                       source=f"export:{source.sha256}")


def write_files(path: Path, files: dict[str, bytes | str]) -> Path:
    """A zip of hand-written files (text is written as UTF-8, bytes as they are)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 6, 1, 9, 30, 0)),
                             data.encode() if isinstance(data, str) else data)
    return path


def errors_text(result: dict) -> str:
    return " | ".join(f"{e['item']}: {e['error']}" for e in result["errors"])


class Ctx:
    """What export_pages asks of a run's context, for reading records without a run."""

    def __init__(self):
        self.errors: list[dict] = []
        self.notes: list[str] = []

    def report(self, item: str, error: str) -> None:
        self.errors.append({"item": item, "error": error})

    def note(self, line: str) -> None:
        self.notes.append(line)


def records_of(path: Path) -> tuple[dict[str, list], Ctx]:
    """Every record the importer yields for ``path``, by stream (snapshots' members read)."""
    ctx, found = Ctx(), {}
    with open_export(path) as source:
        for page in li_export.export_pages(source, ctx):
            for record in page.records:
                if isinstance(record, Snapshot):
                    record = Snapshot(record.kind, record.taken_at, list(record.members), record.complete)
                found.setdefault(page.stream, []).append(record)
    return found, ctx


def raw_of(stored: str) -> dict:
    """The one export's payload of a row's raw (which the writer keys by source)."""
    [payload] = json.loads(stored).values()
    return payload


# --------------------------------------------------------------------------- every generation


@pytest.mark.parametrize("generation,zipped,options", [
    ("2024", True, {"folder": "Export"}),
    ("2024", False, {"bom": True}),
    ("2025", True, {"folder": "Complete_LinkedInDataExport_06-01-2024", "underscores": True,
                    "member_id_suffix": "7789716"}),
    ("2021", True, {}),
    ("2018", False, {"folder": "Export"}),
])
def test_every_generation_imports_profile_posts_comments_reactions_and_lists(tmp_path, archive, generation, zipped,
                                                                              options):
    world = make_world(posts=4, connections=5)
    path = write_export(tmp_path / (ZIP_NAME if zipped else "export"), world, generation=generation, zipped=zipped,
                        **options)

    result = import_export(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == []
    db = archive.db
    # Posts: the URN is the id, the ShareLink the url, the multi-line text as written
    # (its quirk undone), visibility in the archive's words; a repost without text.
    assert sorted(rows(db, "SELECT post_id, created_at, text, visibility FROM posts")) == sorted(
        (p.urn, p.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"), p.text or None,
         "friends" if p.visibility == "MEMBER_NETWORK" else "public") for p in world.posts)
    assert "\n\n1. Notes matter.\n2. \"Programs\" are poetry.\n\n" in one(
        db, "SELECT text FROM posts WHERE post_id=?", world.posts[1].urn)
    assert rows(db, "SELECT post_id, link FROM posts WHERE link IS NOT NULL") == [
        (world.posts[2].urn, "https://example.org/article")]
    # The media link (a page, not a file) stays in raw; no file slot is made for it.
    assert world.posts[1].media_url in one(db, "SELECT raw FROM posts WHERE post_id=?", world.posts[1].urn)
    assert one(db, "SELECT count(*) FROM post_media") == 0
    # Comments the owner wrote, on the commented posts' URNs, newlines and quotes intact.
    assert sorted(rows(db, "SELECT post_id, text, by_owner FROM comments")) == sorted(
        (c.post_urn, c.text, 1) for c in world.comments)
    # Reactions: likes whose target is the post's (or the comment's) URN, the type in raw.
    assert sorted(rows(db, "SELECT kind, target FROM interactions")) == sorted(
        ("like", r.target) for r in world.reactions)
    assert raw_of(one(db, "SELECT raw FROM interactions WHERE target=?", world.reactions[1].target))[
        "type"] == "PRAISE"
    # Connections: friends, by vanity name where the export gives the link (not 2021, 2018).
    with_links = generation in ("2024", "2025")

    def key(m: SimMember) -> str:
        return m.vanity if (with_links and m.vanity) else name_key(m.name)

    assert sorted(rows(db, "SELECT person_id FROM follows WHERE kind='friends' AND ended_at IS NULL")) == sorted(
        (key(c.member),) for c in world.connections)
    if with_links:
        assert ("grace-hopper-100", "Grace Hopper", "https://www.linkedin.com/in/grace-hopper-100") in rows(
            db, "SELECT person_id, display_name, url FROM people")
    started = dict(rows(db, "SELECT person_id, started_at FROM follows WHERE kind='friends'"))
    first = world.connections[0]
    # The date as precise as the generation writes it (2018: to the minute).
    assert started[key(first.member)] == first.connected_on.strftime(
        "%Y-%m-%dT%H:%M:00Z" if generation == "2018" else "%Y-%m-%dT00:00:00Z")
    # Open invitations each way (2018 names people only), members and companies followed together.
    links = generation != "2018"
    for kind, direction in (("invitations_received", "INCOMING"), ("invitations_sent", "OUTGOING")):
        assert rows(db, "SELECT person_id FROM follows WHERE kind=?", kind) == [
            (i.member.vanity if links else name_key(i.member.name),)
            for i in world.invitations if i.direction == direction]
    assert sorted(rows(db, "SELECT person_id FROM follows WHERE kind='following'")) == sorted(
        [(name_key(f.name),) for f in world.member_follows]
        + [(name_key(f.organization, "company:"),) for f in world.company_follows])
    assert rows(db, "SELECT kind, taken_at, complete FROM snapshots ORDER BY kind") == [
        (kind, "2024-06-01T09:30:00Z", 1) for kind in ("following", "friends", "invitations_received",
                                                       "invitations_sent")]
    # The profile: name, headline and summary; the user name from an invitation's link;
    # positions, education and skills in raw; contact data never copied.
    owner = world.owner
    assert rows(db, "SELECT username, display_name, bio, url FROM accounts") == [
        (owner.vanity if links else None, owner.name, f"{owner.headline}\n\n{owner.summary}",
         owner.url if links else None)]
    raw = raw_of(one(db, "SELECT raw FROM accounts"))
    assert raw["positions"][0]["Company Name"] == "Analytical Engines" and raw["skills"][1] == {"Name": "Programming"}
    everything = json.dumps(raw)
    assert owner.address not in everything and owner.birth_date not in everything and "SW1Y" not in everything
    # Rich Media.csv: where to download the media the export lacks, in the run's summary.
    assert any("psettings/member-data/videos" in line for line in result["summary"]), result["summary"]


def test_a_basic_archive_imports_its_lists_and_profile_and_claims_nothing_else(tmp_path, archive):
    world = make_world(posts=2)
    path = write_export(tmp_path / "Basic_LinkedInDataExport_06-01-2024.zip", world, complete=False)
    result = import_export(archive, path)
    assert result["status"] == "ok", result
    db = archive.db
    assert one(db, "SELECT count(*) FROM posts") == 0
    # No Member_Follows.csv: no following snapshot (its absence says nothing of who is followed).
    assert [r[0] for r in rows(db, "SELECT kind FROM snapshots ORDER BY kind")] == [
        "friends", "invitations_received", "invitations_sent"]
    assert one(db, "SELECT display_name FROM accounts") == "Ada Example"


def test_run_import_detects_linkedin_notes_what_it_did_not_read_and_skips_a_second_import(tmp_path):
    world = make_world(posts=2)
    path = write_export(tmp_path / ZIP_NAME, world)
    folder = write_export(tmp_path / "unzipped", world, zipped=False)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        with open_export(path) as source:
            assert recognizing(source) == ["linkedin"]
        first = run_import(ws, path)
        assert first["status"] == "ok", first
        assert first["platform"] == "linkedin" and first["account"] == "linkedin:main"
        # Files it does not read are named (contact data, jobs): nothing dropped silently.
        assert "Email Addresses.csv" in first["message"] and "Registration.csv" in first["message"]
        before = rows(ws.archive.db, "SELECT * FROM posts")
        # The same file again, and the folder it unzips to: already imported, nothing to do.
        assert run_import(ws, path)["status"] == "skipped"
        assert run_import(ws, folder)["status"] == "skipped"
        assert rows(ws.archive.db, "SELECT * FROM posts") == before
    finally:
        ws.archive.close()


def test_importing_the_same_export_twice_changes_nothing(tmp_path, archive):
    world = make_world(posts=3)
    path = write_export(tmp_path / ZIP_NAME, world)
    assert import_export(archive, path)["status"] == "ok"
    db = archive.db
    tables = ("posts", "comments", "interactions", "people", "follows", "post_media")
    before = {t: rows(db, f"SELECT * FROM {t}") for t in tables}
    second = import_export(archive, path)
    assert second["status"] == "ok" and second["errors"] == []
    counts = second["counts"]
    assert not any(counts.get(k) for k in counts if k.endswith(("_new", "_lost", "_changed", "_edited"))), counts
    after = {t: rows(db, f"SELECT * FROM {t}") for t in tables}
    for table in ("follows", "post_media"):
        assert after[table] == before[table]
    for table in ("posts", "comments", "interactions", "people"):
        assert len(after[table]) == len(before[table])
    assert one(db, "SELECT count(*) FROM profile_versions") == 0
    assert one(db, "SELECT count(*) FROM audience_events WHERE event='lost'") == 0


# --------------------------------------------------------------------------- the notes' quirks, by hand

CONNECTIONS_2024 = (
    "Notes:\n"
    '"When exporting your connection data, you may notice that some of the email addresses are missing. You will '
    "only see email addresses for connections who have allowed their connections to see or download their email "
    "address using this setting https://www.linkedin.com/psettings/privacy/email. You can learn more here "
    'https://www.linkedin.com/help/linkedin/answer/261"\n'
    "\n"
    "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
    "Ada,Example,https://www.linkedin.com/in/ada-example-1234,,Analytical Engines,Founder,20 Mar 2024\n"
    "Carabine ,Smith FCIPD ,https://www.linkedin.com/in/J%C3%B6rg-Smith,,\"Acme, Inc\",CEO,1 Apr 2024\n"
    "No,Link,,,Somewhere,Someone,NA\n")
SHARES_2021 = (   # SharedURL / MediaURL, CRLF, the multi-line quirk with a quote inside a line
    "Date,ShareLink,ShareCommentary,SharedURL,MediaURL,Visibility\r\n"
    '2021-06-01 10:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A6800000000000000001,'
    '"first line""\n""""\n""""What\'s changed"" in line three""\n""last line",'
    "https://example.org/a,,MEMBER_NETWORK\r\n"
    "2021-06-02 11:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3AugcPost%3A6800000000000000002,,,,PUBLIC\r\n")
COMMENTS_2025 = (   # raw newlines without quotes, backslash-escaped quotes, blank lines between records
    "Date,Link,Message\r\n"
    "2025-07-01 14:33:22,https://www.linkedin.com/feed/update/urn%3Ali%3Aactivity%3A7345821826846990338,"
    "Ayush Mandowara Haven't tried it yet\r\nbut I will\r\n"
    "\r\n"
    '2025-07-02 08:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3AugcPost%3A7345821826846990339,'
    '"He said \\"ship it\\", and we did.\r\n\r\nAll of us."\r\n'
    "2025-07-03 09:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3AgroupPost%3A123-7345,"
    '"Doubled ""quotes"", too"\r\n'
    "\r\n")
SHARES_2018 = (   # UTF-16LE with BOM, tab-separated
    "Date\tShare Title\tShare Description\tShare Link\tShare Commentary\tShared URL\tMedia URL\tType\tVisibility\r\n"
    "2017/06/08 08:15:44 UTC\t\t\thttps://www.linkedin.com/feed/update/urn:li:activity:6277000000000000000\t"
    "Old post, with a tab-free comma\thttps://example.org/2017\t\tHomepage\tConnections\r\n")


def test_the_notes_quirks_written_by_hand(tmp_path, archive):
    path = write_files(tmp_path / "quirks.zip", {
        "Export/Connections.csv": codecs.BOM_UTF8 + CONNECTIONS_2024.encode(),          # LF, BOM, preamble
        "Export/Shares.csv": SHARES_2021,
        "Export/Comments.csv": COMMENTS_2025,
        "Export/Older/SHARES_2018.csv": codecs.BOM_UTF16_LE + SHARES_2018.encode("utf-16-le"),
        "Export/member_follows.csv": "Date,Status,FullName\r\n2024-03-01 10:00:00,Active,Mary Somerville\r\n"
                                     "2024-03-02 10:00:00,Inactive,Gone Person\r\n",
        "Export/COMPANY FOLLOWS.csv": "Organization,Followed On\nRoyal Society,Wed Mar 13 18:51:14 UTC 2024\n",
        "Export/rich_media.csv": "Type,Link\nVideo content can be downloaded at, "
                                 "https://www.linkedin.com/psettings/member-data/videos\n",
        "Export/Invitations.csv": "From,To,Sent At,Message,Direction,inviterProfileUrl,inviteeProfileUrl\n"
                                  'Ada Example,Bob B,"3/12/24, 11:20 AM",,OUTGOING,'
                                  "https://www.linkedin.com/in/ada-example-1234,linkedin.com/in/Bob-B\n",
        "__MACOSX/Export/._Shares.csv": b"\x00\x05\x16\x07junk",
    })

    result = import_export(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == [], errors_text(result)
    db = archive.db
    assert sorted(rows(db, "SELECT post_id, created_at, text, visibility FROM posts")) == [
        ("urn:li:activity:6277000000000000000", "2017-06-08T08:15:44Z", "Old post, with a tab-free comma", "friends"),
        ("urn:li:share:6800000000000000001", "2021-06-01T10:00:00Z",
         'first line\n\n"What\'s changed" in line three\nlast line', "friends"),
        ("urn:li:ugcPost:6800000000000000002", "2021-06-02T11:00:00Z", None, "public")]
    assert sorted(rows(db, "SELECT post_id, text FROM comments")) == [
        ("urn:li:activity:7345821826846990338", "Ayush Mandowara Haven't tried it yet\nbut I will"),
        ("urn:li:groupPost:123", 'Doubled "quotes", too'),
        ("urn:li:ugcPost:7345821826846990339", 'He said "ship it", and we did.\n\nAll of us.')]
    # Names trimmed, a vanity URL-decoded and case folded, no link: keyed by name; "NA" is no date.
    assert sorted(rows(db, "SELECT person_id, started_at FROM follows WHERE kind='friends'")) == [
        ("ada-example-1234", "2024-03-20T00:00:00Z"), ("jörg-smith", "2024-04-01T00:00:00Z"),
        ("name:no link", "2024-06-01T09:30:00Z")]   # no date: the export's
    assert ("jörg-smith", "Carabine Smith FCIPD") in rows(db, "SELECT person_id, display_name FROM people")
    assert sorted(rows(db, "SELECT person_id FROM follows WHERE kind='following'")) == [
        ("company:royal society",), ("name:mary somerville",)]
    assert rows(db, "SELECT person_id, started_at FROM follows WHERE kind='invitations_sent'") == [
        ("bob-b", "2024-03-12T11:20:00Z")]
    # No Profile.csv: the account row has no profile, the invitations' owner link unused.
    assert any("member-data/videos" in line for line in result["summary"])


def test_one_bad_row_in_each_file_is_reported_with_file_and_line_and_the_rest_imports(tmp_path, archive):
    path = write_files(tmp_path / "bad.zip", {
        "Connections.csv": CONNECTIONS_2024.replace("No,Link,,,Somewhere,Someone,NA\n",
                                                    "Too,Many,,,cells,here,NA,extra,cells\n"
                                                    "Last,One,https://www.linkedin.com/in/last-one,,X,Y,2 Apr 2024\n"),
        "Shares.csv": SHARES_2021.replace("2021-06-02 11:00:00", "yesterday-ish"),
        "Comments.csv": COMMENTS_2025.replace('"Doubled ""quotes"", too"', '"never closed'),
        "Reactions.csv": "Date,Type,Link\r\n2024-01-01 00:00:00,LIKE,\r\n"
                         "2024-01-02 00:00:00,PRAISE,https://www.linkedin.com/feed/update/urn%3Ali%3Aactivity%3A1\r\n",
        "Invitations.csv": "From,To,Sent At,Message,Direction,inviterProfileUrl,inviteeProfileUrl\n"
                           'Zed,Ada Example,"3/12/24, 11:20 AM",,SIDEWAYS,https://www.linkedin.com/in/zed,\n'
                           'Yan,Ada Example,"3/13/24, 11:20 AM",,INCOMING,https://www.linkedin.com/in/yan,\n',
    })

    result = import_export(archive, path)

    assert result["status"] == "ok", result
    items = errors_text(result)
    for expected in ("line 7 of Connections.csv: 9 fields where the header has 7",
                     "post on line 6 of Shares.csv: unreadable date 'yesterday-ish'",
                     "line 8 of Comments.csv: the message's quote is never closed",
                     "reaction on line 2 of Reactions.csv: no Link",
                     "invitation on line 2 of Invitations.csv: Direction 'SIDEWAYS'"):
        assert expected in items, items
    assert len(result["errors"]) == 5, items   # the invitation once, though its file is read for both lists
    db = archive.db
    assert one(db, "SELECT count(*) FROM posts") == 1
    assert one(db, "SELECT count(*) FROM comments") == 2
    assert one(db, "SELECT count(*) FROM interactions") == 1
    assert one(db, "SELECT count(*) FROM follows WHERE kind='friends'") == 3
    assert rows(db, "SELECT person_id FROM follows WHERE kind='invitations_received'") == [("yan",)]
    # A list with a skipped row is partial: nobody is taken for gone on its word (the sent
    # invitations, none readable, make no snapshot at all).
    assert rows(db, "SELECT kind, complete FROM snapshots ORDER BY kind") == [
        ("friends", 0), ("invitations_received", 0)]


def test_a_later_export_ends_who_is_gone_and_a_missing_file_ends_nobody(tmp_path, archive):
    first = make_world(posts=1, connections=4)
    assert import_export(archive, write_export(tmp_path / "one.zip", first))["status"] == "ok"
    later = make_world(posts=1, connections=4)
    gone = later.connections.pop(0)
    later.member_follows.pop()                            # unfollowed …
    files = export_files(later)
    del files["Company Follows.csv"]                      # one of the two following files missing
    later_path = tmp_path / "two.zip"
    with zipfile.ZipFile(later_path, "w") as archive_file:
        for name, data in files.items():
            archive_file.writestr(zipfile.ZipInfo(name, date_time=(2024, 7, 1, 0, 0, 0)), data)
    assert import_export(archive, later_path)["status"] == "ok"
    db = archive.db
    assert rows(db, "SELECT person_id, ended_at FROM follows WHERE kind='friends' AND ended_at IS NOT NULL") == [
        (gone.member.vanity, "2024-07-01T00:00:00Z")]
    # … but Company Follows.csv is missing: the following list (members and companies in
    # one) is partial and ends nobody's interval, the companies' least of all.
    assert one(db, "SELECT count(*) FROM follows WHERE kind='following' AND ended_at IS NOT NULL") == 0
    assert one(db, "SELECT count(*) FROM follows WHERE kind='following'") == 4
    assert rows(db, "SELECT complete FROM snapshots WHERE kind='following' ORDER BY taken_at") == [(1,), (0,)]


def test_a_newer_export_is_the_profile_and_the_one_it_replaces_a_version(tmp_path, archive):
    """Outside the EEA the exports are all there is: the newest one's profile is current
    (a version kept of the one before, replaced at the newer export's time); an older
    export imported after it changes nothing."""
    def export_with(headline: str, stamp: tuple[int, ...], name: str) -> Path:
        world = make_world(posts=1, connections=1)
        world.owner.headline = headline
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive_file:
            for entry, data in export_files(world).items():
                archive_file.writestr(zipfile.ZipInfo(entry, date_time=stamp), data)
        return path

    for headline, stamp, name in (("Founder", (2024, 6, 1, 0, 0, 0), "june.zip"),
                                  ("Chief Engineer", (2024, 7, 1, 0, 0, 0), "july.zip"),
                                  ("Apprentice", (2024, 5, 1, 0, 0, 0), "may.zip")):
        assert import_export(archive, export_with(headline, stamp, name))["status"] == "ok"
    db = archive.db
    assert one(db, "SELECT bio FROM accounts").startswith("Chief Engineer")
    assert one(db, "SELECT profile_as_of FROM accounts") == "2024-07-01T00:00:00Z"
    versions = rows(db, "SELECT replaced_at, substr(bio, 1, 7) FROM profile_versions")
    assert versions == [("2024-07-01T00:00:00Z", "Founder")]


def test_an_export_never_replaces_a_profile_the_api_reads(archive):
    from archiver.archive.writer import ArchiveWriter

    def write(source: str, bio: str, as_of: str | None = None) -> None:
        with archive.writing():
            ArchiveWriter(archive.db, platform="linkedin", account_id="linkedin:main", source=source,
                          now="2024-06-01T00:00:00Z").write_profile(Profile(None, "ada", bio=bio, as_of=as_of))

    write("api", "from the API")
    write("export:" + "ab" * 32, "from a newer export", as_of="2025-01-01T00:00:00Z")
    assert one(archive.db, "SELECT bio FROM accounts") == "from the API"
    assert one(archive.db, "SELECT count(*) FROM profile_versions") == 0


# --------------------------------------------------------------------------- the API's rows are the export's


def _without_raw(record):
    if isinstance(record, Membership):
        return (record.person.native_id, record.person.display_name, record.person.url, record.since)
    data = asdict(record)
    data.pop("raw", None)
    data.pop("as_of", None)   # an export's profile says when it was made, the API's is now
    return data


def test_snapshot_rows_and_export_rows_give_the_same_records(tmp_path):
    world = make_world(posts=4, connections=5, comments=3, reactions=3)
    found, ctx = records_of(write_export(tmp_path / ZIP_NAME, world))
    assert ctx.errors == []
    posts = [li_rows.post_from_row(r) for r in snapshot_rows(world, "MEMBER_SHARE_INFO")]
    quirky = [li_rows.post_from_row(r) for r in snapshot_rows(world, "MEMBER_SHARE_INFO", share_quirk=True)]
    assert [_without_raw(p) for p in found["export:posts"]] == [_without_raw(p) for p in posts] == [
        _without_raw(p) for p in quirky]
    comments = [li_rows.comment_from_row(r) for r in snapshot_rows(world, "ALL_COMMENTS")]
    assert [_without_raw(c) for c in found["export:comments"]] == [_without_raw(c) for c in comments]
    assert all(isinstance(c, Comment) and c.by_owner and c.native_id is None for c in comments)
    likes = [li_rows.reaction_from_row(r) for r in snapshot_rows(world, "ALL_LIKES")]
    assert [_without_raw(i) for i in found["export:reactions"]] == [_without_raw(i) for i in likes]
    assert all(isinstance(i, Interaction) and i.raw["type"] for i in likes)
    friends = [li_rows.connection_from_row(r) for r in snapshot_rows(world, "CONNECTIONS")]
    [snapshot] = found["export:friends"]
    assert [_without_raw(m) for m in snapshot.members] == [_without_raw(m) for m in friends if m]
    invitations = [li_rows.invitation_from_row(r) for r in snapshot_rows(world, "INVITATIONS")]
    for kind in ("invitations_received", "invitations_sent"):
        [snapshot] = found[f"export:{kind}"]
        assert [_without_raw(m) for m in snapshot.members] == [
            _without_raw(m) for k, m in filter(None, invitations) if k == kind]
    follows = [li_rows.member_follow_from_row(r) for r in snapshot_rows(world, "MEMBER_FOLLOWS")] + [
        li_rows.company_follow_from_row(r) for r in snapshot_rows(world, "COMPANY_FOLLOWS")]
    [snapshot] = found["export:following"]
    assert [_without_raw(m) for m in snapshot.members] == [_without_raw(m) for m in follows if m]
    owner_url = li_rows.owner_url_of_invitation(snapshot_rows(world, "INVITATIONS")[0])
    profile = li_rows.profile_from_rows(snapshot_rows(world, "PROFILE")[0],
                                        {d: snapshot_rows(world, d) for d in ("POSITIONS", "EDUCATION", "SKILLS")},
                                        owner_url=owner_url)
    [exported] = found["export:profile"]
    assert isinstance(profile, Profile) and asdict(exported) == asdict(profile) | {"as_of": EXPORT_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert [li_rows.rich_media_note(r) for r in snapshot_rows(world, "RICH_MEDIA")] == ctx.notes
    with pytest.raises(ValueError, match="unknown snapshot domain"):
        snapshot_rows(world, "NOT_A_DOMAIN")


def test_rows_stream_in_pages_and_lists_stream_to_the_writer(tmp_path):
    world = make_world(posts=120, connections=30)
    with open_export(write_export(tmp_path / ZIP_NAME, world)) as source:
        pages = li_export.export_pages(source, Ctx())
        sizes = {}
        for page in pages:
            sizes.setdefault(page.stream, []).append(len(page.records))
            if page.stream == "export:friends":
                assert isinstance(page.records[0].members, types.GeneratorType)
    assert sizes["export:posts"] == [50, 50, 20]


# --------------------------------------------------------------------------- rows.py, cell by cell


@pytest.mark.parametrize("text,expected", [
    ("2024-03-17 18:03:34", "2024-03-17T18:03:34Z"), ("20 Mar 2024", "2024-03-20T00:00:00Z"),
    ("3/12/24, 11:20 AM", "2024-03-12T11:20:00Z"), ("1/8/18, 6:14 PM", "2018-01-08T18:14:00Z"),
    ("Wed Mar 13 18:51:14 UTC 2024", "2024-03-13T18:51:14Z"), ("2022/04/01 11:05:54 UTC", "2022-04-01T11:05:54Z"),
    ("2021-03-25 08:46 UTC", "2021-03-25T08:46:00Z"), ("Jan 2024", "2024-01-01T00:00:00Z"),
    ("18-Jun-24", "2024-06-18T00:00:00Z"), ("2026-06-14", "2026-06-14T00:00:00Z"), ("NA", None), ("", None),
])
def test_every_date_format_of_the_notes(text, expected):
    assert li_rows.parse_date(text) == expected


def test_cells_links_and_people():
    with pytest.raises(ValueError, match="unreadable date"):
        li_rows.parse_date("the 5th of never")
    assert li_rows.cell({"SharedURL": " https://a "}, "SharedUrl") == "https://a"
    assert li_rows.cell({"\ufeffShared URL": "x"}, "SharedUrl") == "x"
    assert li_rows.file_key("Export/Jobs/Rich_Media.csv") == li_rows.file_key("Rich Media.CSV") == "richmedia"
    assert li_rows.file_key("Shares_7789716.csv") == "shares" and li_rows.file_key("Receipts_v2.csv") == "receiptsv2"
    assert li_rows.urn_of("https://www.linkedin.com/feed/update/urn%3Ali%3AugcPost%3A7%3Fx") == "urn:li:ugcPost:7"
    assert li_rows.urn_of("https://lnkd.in/abc") is None
    assert li_rows.vanity_of("www.linkedin.com/in/Ada-X/") == "ada-x"
    assert li_rows.vanity_of("https://de.linkedin.com/in/j%C3%B6rg?trk=1") == "jörg"
    assert li_rows.vanity_of("https://www.linkedin.com/company/acme") is None
    assert li_rows.member("  Ada   Example ", "").native_id == "name:ada example"
    assert li_rows.company("ACME  Inc").native_id == "company:acme inc"
    # The ShareCommentary quirk is undone only where every line boundary has it.
    assert li_rows.share_text('one"\n""\n"two"\n"three') == "one\n\ntwo\nthree"
    assert li_rows.share_text('He said "hi"\nthen left') == 'He said "hi"\nthen left'
    # A MediaUrl on LinkedIn's media CDN is a file to keep; any other is a link in raw.
    post = li_rows.post_from_row({"Date": "2024-01-01 00:00:00", "ShareLink": "https://x/urn%3Ali%3Ashare%3A1",
                                  "MediaUrl": "https://media.licdn.com/dms/image/D4E/feedshare-shrink_800/0/1?e=1"})
    assert [(m.role, m.url[:24]) for m in post.media] == [("image", "https://media.licdn.com/")]
    assert isinstance(post, Post) and post.kind == "image"


# --------------------------------------------------------------------------- detection and hostile files


def test_detection_claims_linkedin_exports_only(tmp_path):
    from archiver_connectors.youtube.sim.takeout import build_takeout

    linkedin_zip = write_export(tmp_path / ZIP_NAME, make_world(posts=1))
    basic = write_export(tmp_path / "basic", make_world(), complete=False, zipped=False)
    [takeout] = build_takeout(tmp_path / "yt", videos=1, comments=1, subscriptions=1)
    only_comments = write_files(tmp_path / "comments.zip", {"Comments.csv": "Date,Link,Message\n"})
    for path in (linkedin_zip, basic):
        with open_export(path) as source:
            assert LinkedInConnector.detect_export(source)
            assert recognizing(source) == ["linkedin"]
    for path in (takeout, only_comments):
        with open_export(path) as source:
            assert not LinkedInConnector.detect_export(source), path


def test_a_file_that_is_not_a_linkedin_export_is_refused_with_its_reason(tmp_path, archive):
    path = write_files(tmp_path / "odd.zip", {"Connections.csv": "these,are,not\nlinkedin,columns,at all\n"})
    result = import_export(archive, path)
    assert result["status"] == "failed"
    assert "none of its files could be read" in result["message"]
    assert "no header row with the columns firstname, lastname" in errors_text(result)


HOSTILE_RUN = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (900 * 2**20, 900 * 2**20))
    sys.path.insert(0, sys.argv[3])
    from pathlib import Path
    from test_linkedin_export import import_export
    from archiver.archive import Archive
    archive = Archive(Path(sys.argv[2]))
    result = import_export(archive, Path(sys.argv[1]))
    print(json.dumps({"status": result["status"], "errors": result["errors"],
                      "posts": archive.db.execute("SELECT count(*) FROM posts").fetchone()[0],
                      "friends": archive.db.execute("SELECT count(*) FROM follows").fetchone()[0]}))
""")


def test_hostile_files_are_reported_and_contained_under_a_memory_limit(tmp_path):
    good_share = ("2024-01-01 00:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A1,Fine,,,PUBLIC\r\n")
    path = write_files(tmp_path / "hostile.zip", {
        # Comments.csv: one 3 MB line without a date, then 20,000 lines none of which starts a record.
        "Comments.csv": "Date,Link,Message\n" + "x" * 3_000_000 + "\n" + "no date here\n" * 20_000
                        + "2024-01-01 00:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3Aactivity%3A2,ok\n",
        # Shares.csv: a field past the csv module's limit, a NUL byte, bad UTF-8, then a good row.
        "Shares.csv": ("Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility\r\n"
                       '2024-01-02 00:00:00,https://x,"' + "y" * 200_000 + '",,,PUBLIC\r\n').encode()
                      + b"2024-01-03 00:00:00,https://x,nul\x00here,,,PUBLIC\r\n\xff\xfe broken\r\n"
                      + good_share.encode(),
        # Connections.csv: a header buried below 10,000 lines of preamble (no header found).
        "Connections.csv": "Notes:\n" * 10_000 + "First Name,Last Name\nA,B\n",
        "Invitations.csv": "From,To,Sent At,Message,Direction\na,b,c,d,INCOMING\ne,b,c,d,INCOMING\n",
    })
    process = subprocess.run(
        [sys.executable, "-c", HOSTILE_RUN, str(path), str(tmp_path / "archive"), str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["status"] == "ok", result
    items = " | ".join(f"{e['item']}: {e['error']}" for e in result["errors"])
    # The lines before the first record are one record (reported once), cut at its size limit.
    assert "line 2 of Comments.csv: a record of 3," in items and items.count("Comments.csv") == 1, items
    assert "field larger than field limit" in items and "NUL byte" in items, items
    assert "Connections.csv: " in items and "no header row" in items, items
    assert result["posts"] >= 1 and result["friends"] == 2


def test_the_world_holds_every_kind_of_row_the_notes_describe():
    world = make_world(posts=4, connections=4)
    assert isinstance(world, World)
    assert any("\n\n" in p.text for p in world.posts) and any(not p.text for p in world.posts)
    assert any(c.member.vanity is None for c in world.connections)
    assert {i.direction for i in world.invitations} == {"INCOMING", "OUTGOING"}
    assert any(r.comment_urn for r in world.reactions)
    files = export_files(world, generation="2018")
    assert files["Shares.csv"].startswith(codecs.BOM_UTF16_LE) and b"\t\x00" in files["Shares.csv"]
    assert files["Connections.csv"].startswith(b"First Name,") and EXPORT_TIME.year == 2024
    assert export_files(world)["Connections.csv"].startswith(b"Notes:\n")
    assert b"SharedURL,MediaURL" in export_files(world, generation="2021")["Shares.csv"]
    assert b'\\"exactly\\"' in export_files(world, generation="2025")["Comments.csv"]


def test_an_api_run_then_the_export_of_the_same_world_adds_nothing_twice(tmp_path, monkeypatch):
    """The API's snapshot and the export go through the same rows.py: after an API run,
    importing the export of the same member adds no post, comment, reaction, person or
    follow, and no profile version."""
    from archiver.sync.jobs import run_export
    from archiver_connectors.linkedin.api import LinkedInTokens
    from archiver_connectors.linkedin.sim.fake import FakeLinkedIn, FakeLinkedInConfig, write_matching_export

    base_url = "http://127.0.0.1:8798"   # never contacted: MockTransport answers in-process
    fake = FakeLinkedIn(FakeLinkedInConfig(posts=5, followers=5, page_size=3), base_url=base_url)
    monkeypatch.setattr("archiver_connectors.linkedin.api.now", fake.now)
    secrets = open_secret_store("memory")
    with httpx.Client() as unused:
        LinkedInTokens(secrets, "main", f"{base_url}/oauth/v2/accessToken", unused, clock=fake.now).store(
            fake.issue_token())
    account = AccountConfig(name="main", platform="linkedin", base_url=base_url)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None, accounts=[account]), secrets)
    try:
        api_run = run_export(ws, account, transport=httpx.MockTransport(fake.handle), progress=lambda line: None)
        assert api_run["status"] == "ok", api_run
        db = ws.archive.db
        tables = ("posts", "comments", "interactions", "people", "follows", "profile_versions")
        before = {t: one(db, f"SELECT count(*) FROM {t}") for t in tables}
        assert before["posts"] == 5 and before["follows"] > 5

        imported = run_import(ws, write_matching_export(fake, str(tmp_path / ZIP_NAME)))

        assert imported["status"] == "ok" and imported["errors"] == [], imported
        assert {t: one(db, f"SELECT count(*) FROM {t}") for t in tables} == before
        assert not any(v for k, v in imported["counts"].items() if k.endswith(("_new", "_lost"))), imported["counts"]
        assert one(db, "SELECT count(*) FROM follows WHERE ended_at IS NOT NULL") == 0
    finally:
        ws.archive.close()
