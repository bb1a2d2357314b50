"""The audience the person owns, against their followers: `archiver audience reach`, the
report's section, and the audience export's "invite" segment (platform people not reachable
directly yet, top fans first). Counts only ever leave: no address, no subscriber's name."""

from __future__ import annotations

import csv
import io
import sqlite3

import pytest
from click.testing import CliRunner

from archiver.archive.writer import ArchiveWriter
from archiver.records import Comment, Membership, OwnedContact, Person, Profile, Snapshot
from archiver.views import audience
from archiver.views.reach import owned_identity, reach

NOW = "2025-06-30T12:00:00Z"


def owned(archive, account, email, status, consent, *, joined=None, left=None, channel="newsletter", name=None):
    platform = account.split(":", 1)[0]
    with archive.writing():
        ArchiveWriter(archive.db, platform=platform, account_id=account, source="export:" + "ab" * 32,
                      now="2025-06-01T00:00:00Z").write_owned_contact(OwnedContact(
                          email.casefold(), email, channel, status, consent, display_name=name, joined_at=joined,
                          consent_at=joined, left_at=left, as_of="2025-06-01T00:00:00Z"))


def followers_count(archive, account, when, count):
    with archive.writing():
        ArchiveWriter(archive.db, platform=account.split(":")[0], account_id=account, source="api",
                      now=when).write_profile(Profile("me", "me", followers=count))


@pytest.fixture
def world(archive):
    # Two newsletters and two shops; ada is on three lists and is one person.
    owned(archive, "mailchimp:main", "Ada@Example.com", "subscribed", True, joined="2025-02-10T00:00:00Z",
          name="Ada Secret")
    owned(archive, "substack:main", "ada@example.com", "subscribed", True, joined="2025-01-05T00:00:00Z")
    owned(archive, "mailchimp:main", "bo@example.com", "unsubscribed", False, joined="2025-01-20T00:00:00Z",
          left="2025-04-15T00:00:00Z")
    owned(archive, "mailchimp:main", "dev@example.com", "pending", None, joined="2025-05-01T00:00:00Z")
    owned(archive, "shopify:main", "ada@example.com", "customer", True, channel="shop")
    owned(archive, "shopify:main", "eve@example.com", "customer", False, channel="shop")
    owned(archive, "woocommerce:main", "finn@example.com", "customer", None, channel="shop",
          joined="2025-03-03T00:00:00Z")
    owned(archive, "woocommerce:main", "gus@example.com", "customer", None, channel="shop")
    owned(archive, "substack:main", "gus@example.com", "subscribed", True, joined="2025-03-20T00:00:00Z")
    followers_count(archive, "instagram:main", "2025-02-01T00:00:00Z", 900)
    followers_count(archive, "instagram:main", "2025-05-01T00:00:00Z", 1200)
    followers_count(archive, "tiktok:main", "2025-04-01T00:00:00Z", 50)
    return archive


def test_reach_counts_one_person_per_address_month_by_month_against_followers(world):
    found = reach(world.db, now=NOW, months=6)
    assert found["reachable"] == 2                       # ada (three lists), gus (newsletter beats his shop)
    assert found["no_consent"] == 1                      # finn: a WooCommerce customer only
    assert found["per_channel"] == {"newsletter": 2, "shop": 1}
    assert found["followers"] == {"instagram": 1200, "tiktok": 50}
    by_month = {p["month"]: (p["reachable"], p["followers"]) for p in found["timeline"]}
    assert list(by_month) == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
    assert by_month["2025-01"] == (2, {"instagram": None, "tiktok": None})   # ada (Substack) and bo
    assert by_month["2025-02"][0] == 2
    assert by_month["2025-03"] == (3, {"instagram": 900, "tiktok": None})    # gus joined
    assert by_month["2025-04"] == (2, {"instagram": 900, "tiktok": 50})      # bo left on the 15th
    assert by_month["2025-06"] == (2, {"instagram": 1200, "tiktok": 50})
    per_list = {row["account_id"]: (row["reachable"], row["contacts"]) for row in found["per_list"]}
    assert per_list == {"mailchimp:main": (1, 3), "shopify:main": (1, 2), "substack:main": (2, 2),
                        "woocommerce:main": (0, 2)}


def test_the_cli_and_the_report_show_counts_and_never_an_address_or_a_name(world, tmp_path):
    from archiver.cli.main import main
    from archiver.views.report import render_report

    html = render_report(world, now=NOW)
    section = html[html.index('<section id="reach">'):]
    section = section[:section.index("</section>")]
    assert 'data-series="reachable directly" data-x="2025-06-30T12:00:00Z" data-value="2"' in section
    assert 'data-series="instagram followers"' in section and "2 people you can reach" in section
    assert "1 customers have no consent on record" in section
    folder = str(world.folder)
    world.close()
    said = CliRunner().invoke(main, ["audience", "reach", "--archive", folder, "--months", "3"],
                              catch_exceptions=False)
    assert said.exit_code == 0, said.output
    assert "reachable without any platform now: 2 people" in said.output
    assert "woocommerce:main (shop): 0 reachable of 2" in said.output and "1 customer(s) without consent" in said.output
    for text in (said.output, html):
        assert "@example.com" not in text and "Ada Secret" not in text


def test_the_report_says_how_to_get_a_list_when_none_is_imported(archive):
    from archiver.views.report import EMPTY_REACH, render_report

    assert EMPTY_REACH.split("—")[0] in render_report(archive, now=NOW)


def _people(archive, platform, *people):
    with archive.writing():
        writer = ArchiveWriter(archive.db, platform=platform, account_id=f"{platform}:main", source="api", now=NOW)
        for p in people:
            writer.write_person(p)


def test_invite_lists_the_platform_audience_not_reachable_yet_top_fans_first(world):
    db = world.db
    people = {pid: Person(pid, handle=pid, display_name=pid.title(), bio=bio) for pid, bio in (
        ("fan", None), ("bigfan", None), ("quiet", None), ("linked", None), ("mailer", "write me: GUS@example.com"),
        ("gone", None), ("unsub", None))}
    with world.writing():
        writer = ArchiveWriter(db, platform="instagram", account_id="instagram:main", source="api", now=NOW)
        writer.write_snapshot(Snapshot("followers", "2025-06-01T00:00:00Z", [
            Membership(people[p]) for p in ("fan", "bigfan", "quiet", "linked", "mailer", "gone", "unsub")]))
        for p in people.values():
            writer.write_person(p)
    with world.writing():
        writer = ArchiveWriter(db, platform="instagram", account_id="instagram:main", source="api",
                               now="2025-06-20T00:00:00Z")
        writer.write_snapshot(Snapshot("followers", "2025-06-20T00:00:00Z", [
            Membership(people[p]) for p in ("fan", "bigfan", "quiet", "linked", "mailer", "unsub")]))  # gone left
        for index, (author, when) in enumerate([("fan", "2025-06-01T00:00:00Z"), ("bigfan", "2025-06-25T00:00:00Z"),
                                                ("bigfan", "2025-06-26T00:00:00Z"), ("linked", NOW)]):
            writer.write_comment(Comment(f"c{index}", "nice", when, "p1", author=people[author]))
    audience.link(db, "instagram:linked", "owned:ADA@example.com")   # reachable: subscribed with consent
    audience.link(db, "instagram:unsub", "owned:bo@example.com")     # linked, but bo unsubscribed
    rows = list(csv.DictReader(io.StringIO(_export(world))))
    assert [r["person_key"] for r in rows] == ["instagram:bigfan", "instagram:fan", "instagram:quiet",
                                               "instagram:unsub"]
    stored = db.execute("SELECT a_platform || ':' || a_person || ' ' || b_platform || ':' || b_person "
                        "FROM person_links").fetchall()
    assert all("@" not in row[0] for row in stored)   # the link keeps a digest of the address
    assert f"instagram:linked {owned_identity('ada@example.com')}" in [row[0] for row in stored]


def _export(archive):
    out = io.StringIO(newline="")
    audience.export_people(archive.db, out, segment="invite", now=NOW)
    return out.getvalue()


def test_a_link_to_an_address_no_list_holds_is_refused_without_repeating_it(world):
    with pytest.raises(audience.AudienceError) as refused:
        audience.link(world.db, "owned:nobody@example.com", "owned:ada@example.com")
    assert "no owned contact with that address" in str(refused.value) and "nobody" not in str(refused.value)


def test_serve_never_shows_an_owned_contact(world):
    import asyncio

    from archiver.views.serve import make_datasette

    datasette = make_datasette(world)

    async def pages():
        return [await datasette.client.get(path) for path in (
            "/archive/owned_contacts.json?_shape=array", "/archive.json?sql=select+email,display_name+from+owned_contacts",
            "/archive.json?sql=select+count(*)+from+owned_contact_versions",
            "/archive.json?sql=select+count(*)+from+owned_contacts+where+email+like+'%25ada%25'", "/archive")]

    table, query, versions, probe, listing = asyncio.run(pages())
    assert table.status_code == query.status_code == 200
    assert "@example.com" not in table.text + query.text and "Ada Secret" not in table.text + query.text
    assert len(table.json()) == 9 and {v for row in table.json() for v in row.values()} == {None}
    assert probe.json()["rows"] == [[0]]           # a WHERE cannot probe an address either
    assert versions.status_code == 200
    assert "owned_contacts" not in listing.text    # hidden from the database page
    assert sqlite3.connect(world.db_path).execute("SELECT count(*) FROM owned_contacts").fetchone()[0] == 9


def test_the_site_holds_no_owned_contact(world, tmp_path):
    from archiver.records import Post
    from archiver.views.site import build_site

    with world.writing():
        ArchiveWriter(world.db, platform="instagram", account_id="instagram:main", source="api",
                      now=NOW).write_post(Post("p1", "2025-06-01T00:00:00Z", kind="text", text="Hello #news"))
    out = tmp_path / "site"
    build_site(world, out, include_private=True)
    written = [path for path in out.rglob("*") if path.is_file()]
    assert written and not any(b"@example.com" in path.read_bytes() or b"Ada Secret" in path.read_bytes()
                               for path in written)
