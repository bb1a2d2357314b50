"""Leaving X: `archiver audience links` pairs X people with the same people on Bluesky and
Mastodon, in a real SQLite archive filled through the real writer.

Bluesky and Mastodon people are made by their connectors' own converters (profile views,
Mastodon accounts: the shapes the notes show); X people as the X importer writes them
(numeric account id, the screen name as handle, https://x.com/<handle>; docs/schema.md, "X").
What each reason is worth, and what is deliberately not claimed, is in README "Audience".
"""

from __future__ import annotations

import io
import json

from click.testing import CliRunner

from archiver.archive.media import MediaStore
from archiver.archive.writer import ArchiveWriter, StoredFile
from archiver.records import Person
from archiver.views import audience
from archiver_connectors.bluesky.api import person_from_view
from archiver_connectors.mastodon.api import person_from_account

NOW = "2026-12-01T12:00:00Z"


def x_person(account_id: str, handle: str | None, name: str | None = None, *, url: str | None = "default",
             bio: str | None = None, links: list[str] | None = None) -> Person:
    if url == "default":
        url = f"https://x.com/{handle}" if handle else f"https://twitter.com/intent/user?user_id={account_id}"
    return Person(account_id, handle=handle, display_name=name, url=url, bio=bio, links=links)


def sky(handle: str, name: str | None = None, bio: str | None = None, did: str | None = None) -> Person:
    view = {"did": did or "did:plc:" + handle.replace(".", "")[:24].ljust(24, "z"), "handle": handle}
    if name:
        view["displayName"] = name
    if bio:
        view["description"] = bio
    return person_from_view(view)


def masto(acct: str, name: str | None = None, note: str | None = None, fields: list[str] | None = None) -> Person:
    username, _, server = acct.partition("@")
    person = person_from_account({
        "acct": acct, "username": username, "display_name": name or "", "url": f"https://{server}/@{username}",
        "note": f"<p>{note}</p>" if note else "",
        "fields": [{"name": "Link", "value": f'<a href="{href}" rel="me">{href}</a>'} for href in fields or []],
    }, "home.example")
    assert person is not None
    return person


def write(archive, platform: str, *people: Person, avatars: dict[str, bytes] | None = None) -> None:
    store = MediaStore(archive.media_root)
    with archive.writing():
        writer = ArchiveWriter(archive.db, platform=platform, account_id=f"{platform}:me", source="api", now=NOW)
        for person in people:
            stored = None
            if avatars and person.native_id in avatars:
                kept = store.add_file(io.BytesIO(avatars[person.native_id]))
                stored = StoredFile(kept.sha256, str(kept.path), kept.mime, kept.size)
            writer.write_person(person, avatar=stored, avatar_source=person.avatar_url)


def suggestions(archive) -> dict[frozenset, dict]:
    audience.suggest_links(archive.db, now=NOW)
    return {frozenset((link["a"], link["b"])): link for link in audience.list_links(archive.db, "suggested")}


def pair(a: str, b: str) -> frozenset:
    return frozenset((a, b))


def test_same_handle_across_x_bluesky_and_mastodon_but_not_a_custom_domain(archive):
    write(archive, "x", x_person("101", "alice"), x_person("102", "bob"), x_person("103", "Carol_Q"))
    write(archive, "bluesky", sky("alice.bsky.social"), sky("bob.example.com"), sky("carol_q.bsky.social"))
    write(archive, "mastodon", masto("alice@mastodon.social"), masto("bob@fosstodon.org"))
    found = suggestions(archive)
    alice_sky, bob_sky = sky("alice.bsky.social").native_id, sky("bob.example.com").native_id
    assert found[pair("x:101", f"bluesky:{alice_sky}")]["reason"] == "same handle @alice"
    assert pair("x:101", "mastodon:alice@mastodon.social") in found
    assert pair(f"bluesky:{alice_sky}", "mastodon:alice@mastodon.social") in found
    assert found[pair("x:103", f"bluesky:{sky('carol_q.bsky.social').native_id}")]["confidence"] == 0.6  # any case
    # bob.example.com is a domain somebody proved they hold, not "bob": a different bob
    # may hold it. X's bob and Mastodon's bob pair by the name alone (0.6, a suggestion).
    assert not any(f"bluesky:{bob_sky}" in p for p in found)
    assert pair("x:102", "mastodon:bob@fosstodon.org") in found


def test_bio_links_to_x_on_either_host_point_at_the_x_person(archive):
    write(archive, "x", x_person("201", "carol"), x_person("202", "dave"), x_person("203", "gina", url=None),
          x_person("204", None))   # a follower known by id only (intent link)
    carol_sky = sky("carol.example.net", bio="Moved here. Old account: twitter.com/Carol")
    write(archive, "bluesky", carol_sky, sky("gina.example.org", bio="was https://mobile.twitter.com/gina/"))
    write(archive, "mastodon", masto("dave_m@hachyderm.io", fields=["https://x.com/dave"]),
          masto("ida@hachyderm.io", fields=["https://twitter.com/intent/user?user_id=204"]))
    found = suggestions(archive)
    link = found[pair("x:201", f"bluesky:{carol_sky.native_id}")]
    assert (link["confidence"], link["reason"]) == (0.9, f"bluesky:{carol_sky.native_id} links to twitter.com/Carol")
    assert found[pair("x:202", "mastodon:dave_m@hachyderm.io")]["confidence"] == 0.9
    # Without a stored profile link, a link on one of X's hosts with the handle points at it.
    assert pair("x:203", f"bluesky:{sky('gina.example.org').native_id}") in found
    assert not any("x:204" in p for p in found)   # "intent/user" is nobody's profile


def test_the_one_letter_platform_name_is_no_host(archive):
    """The old check `platform in host` took example.com for one of X's hosts ("x" is in it)."""
    write(archive, "x", x_person("301", "hank", url=None), x_person("302", "ivy"), x_person("303", "tea", url=None))
    write(archive, "bluesky", sky("h.example.com", bio="blog: https://example.com/hank and x.com/ivy/status/9"),
          sky("t.example.com", bio="twitter.com/hashtag/tea"))   # a search page, not tea's profile
    write(archive, "mastodon", masto("ivy_m@mastodon.social", fields=["https://box.example/ivy"]))
    assert suggestions(archive) == {}


def test_x_bio_links_to_bluesky_and_mastodon_profiles(archive):
    erin_sky = sky("erin.example.org")
    did_only = sky("someone.example", did="did:plc:abcdefghijklmnopqrstuvwx")
    write(archive, "bluesky", erin_sky, did_only)
    write(archive, "mastodon", masto("frank@fosstodon.org"), masto("frank@mastodon.social"),
          masto("gus@chaos.social"))
    write(archive, "x",
          x_person("401", "erin_x", bio="Now at https://bsky.app/profile/erin.example.org"),
          x_person("402", "frankly", links=["https://fosstodon.org/@frank"]),
          x_person("403", "gus_x", bio="see mastodon.online/@gus@chaos.social"),
          x_person("404", "zed", bio="bsky.app/profile/did:plc:abcdefghijklmnopqrstuvwx"))
    found = suggestions(archive)
    assert found[pair("x:401", f"bluesky:{erin_sky.native_id}")]["confidence"] == 0.9
    assert pair("x:402", "mastodon:frank@fosstodon.org") in found
    assert pair("x:402", "mastodon:frank@mastodon.social") not in found   # another server's frank
    assert pair("x:403", "mastodon:gus@chaos.social") in found            # seen through another server
    assert pair("x:404", f"bluesky:{did_only.native_id}") in found       # the DID's page


def test_a_link_to_a_domain_points_at_the_bluesky_handle_of_that_domain(archive):
    write(archive, "bluesky", sky("erin.example.org"), sky("pat.example.org"))
    write(archive, "x", x_person("501", "erin_w", links=["https://erin.example.org/"]),
          x_person("502", "pat_w", links=["https://pat.example.org/blog"]))   # a page on it: not claimed
    write(archive, "instagram", Person("i-erin", handle="erin.example.org"))   # not a domain handle there
    found = suggestions(archive)
    link = found[pair("x:501", f"bluesky:{sky('erin.example.org').native_id}")]
    assert "the domain of the handle @erin.example.org" in link["reason"]
    assert not any("x:502" in p for p in found)
    assert pair("x:501", "instagram:i-erin") not in found


def test_handles_named_in_bios(archive):
    write(archive, "x", x_person("601", "jo_x"), x_person("602", "kim_k"), x_person("603", "lee"),
          x_person("604", "max_x", bio="Mostly at @max@mastodon.social now, or @nia.bsky.social"))
    jo = sky("jo.example.com", bio="find me @jo_x on X, and as Twitter: @kim_k")
    write(archive, "bluesky", jo, sky("nia.bsky.social"))
    write(archive, "mastodon", masto("lee_m@mastodon.social", note="friends with @lee"),
          masto("max@mastodon.social"), masto("max@other.example"), masto("jo_x@mastodon.social"))
    found = suggestions(archive)
    named = found[pair("x:601", f"bluesky:{jo.native_id}")]
    assert (named["confidence"], named["reason"]) == (0.8, f"bluesky:{jo.native_id} says '@jo_x on X'")
    assert found[pair("x:602", f"bluesky:{jo.native_id}")]["confidence"] == 0.8
    # "on X" names X's jo_x, not Mastodon's (who pairs with X's by the same handle only).
    assert pair(f"bluesky:{jo.native_id}", "mastodon:jo_x@mastodon.social") not in found
    # A bare @mention is often someone else: the weakest reason.
    assert found[pair("x:603", "mastodon:lee_m@mastodon.social")]["confidence"] == 0.5
    # A fediverse address or a Bluesky handle names one identity wherever it is written.
    assert found[pair("x:604", "mastodon:max@mastodon.social")]["confidence"] == 0.8
    assert pair("x:604", "mastodon:max@other.example") not in found
    assert found[pair("x:604", f"bluesky:{sky('nia.bsky.social').native_id}")]["confidence"] == 0.8


def test_name_and_avatar_compare_the_stored_pictures_not_their_links(archive):
    picture, other = b"\x89PNG\r\n\x1a\n" + b"same" * 40, b"\x89PNG\r\n\x1a\n" + b"else" * 40
    write(archive, "x", Person("701", handle="nia_x", display_name="Nia N", avatar_url="https://pbs.twimg.com/a.jpg"),
          Person("702", handle="oz_x", display_name="Oz", avatar_url="https://pbs.twimg.com/b.jpg"),
          Person("703", handle="pia_x", display_name="Pia", avatar_url="https://pbs.twimg.com/c.jpg"),
          avatars={"701": picture, "702": other, "703": picture})
    write(archive, "mastodon",
          Person("nia@m.example", handle="nia@m.example", display_name="nia n", avatar_url="https://m.example/1.png"),
          Person("oz@m.example", handle="oz@m.example", display_name="Oz", avatar_url="https://m.example/2.png"),
          Person("qi@m.example", handle="qi@m.example", display_name="Qi", avatar_url="https://m.example/3.png"),
          avatars={"nia@m.example": picture, "oz@m.example": picture, "qi@m.example": picture})
    found = suggestions(archive)
    link = found[pair("x:701", "mastodon:nia@m.example")]
    assert (link["confidence"], link["reason"]) == (
        0.7, "same display name 'Nia N' and the same avatar picture (identical file)")
    # Same name, other picture; same picture, other name: neither is claimed.
    assert set(found) == {pair("x:701", "mastodon:nia@m.example")}


def test_facts_come_from_the_connectors():
    facts = audience.platform_facts()
    assert facts["x"].profile_hosts[0] == "x.com" and "twitter.com" in facts["x"].profile_hosts
    assert "twitter" in facts["x"].names
    assert facts["bluesky"].handles_are_domains and facts["bluesky"].handle_domains == ("bsky.social",)
    platforms = audience._Platforms(facts)
    assert platforms.canonical_url("https://www.twitter.com/Alice?s=20") == "x.com/alice"
    assert not platforms.is_profile_host("x", "example.com")
    assert platforms.is_profile_host("instagram", "instagram.com")   # undeclared: "<name>.<tld>"
    assert not platforms.is_profile_host("instagram", "instagram.example.com")


def test_leaving_x_with_the_cli(archive, tmp_path):
    write(archive, "x", x_person("801", "rae"), x_person("802", "sol"))
    rae_sky = sky("rae.bsky.social")
    write(archive, "bluesky", rae_sky)
    write(archive, "mastodon", masto("sol@mastodon.social", fields=["https://twitter.com/sol"]))
    folder = str(archive.folder)
    archive.close()
    from archiver.cli.main import main

    def cli(*args):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    shown = cli("audience", "links", "--archive", folder)
    assert "x:801" in shown and f"bluesky:{rae_sky.native_id}" in shown and "same handle @rae" in shown
    assert "mastodon:sol@mastodon.social links to https://twitter.com/sol" in shown
    cli("audience", "link", "--archive", folder, "x:801", f"bluesky:{rae_sky.native_id}")
    cli("audience", "link", "--archive", folder, "mastodon:sol@mastodon.social", "twitter:802")  # X's old name
    out = tmp_path / "audience.json"
    cli("audience", "export", "--archive", folder, "--format", "json", "--out", str(out))
    rows = {row["person_key"]: row for row in json.loads(out.read_text(encoding="utf-8"))}
    assert rows[f"bluesky:{rae_sky.native_id}"]["profile_urls"] == [
        "https://bsky.app/profile/rae.bsky.social", "https://x.com/rae"]
    assert rows["mastodon:sol@mastodon.social"]["handles"] == ["mastodon:@sol@mastodon.social", "x:@sol"]


def test_people_of_an_imported_x_archive_pair_with_bluesky_and_mastodon(tmp_path):
    """The X people as the real importer writes them from an archive (xgen's writer): the
    people mentioned and replied to get their handles; followers known by id only do not pair."""
    import datetime as dt

    from archiver.archive import Archive
    from archiver.config import AccountConfig, Config
    from archiver.secrets import open_secret_store
    from archiver.sync.jobs import Workspace, run_import
    from archiver_connectors.x.sim.export import XPost, XReply, XUser, XWorld, snowflake, write_archive

    when = dt.datetime(2025, 3, 1, 12, tzinfo=dt.timezone.utc)
    kite, tea = XUser("9001", "kite17", "Kite"), XUser("9002", "Tea38", "Tea")
    world = XWorld(posts=[XPost(snowflake(when), when, "kites with @kite17", mentions=[kite]),
                          XPost(snowflake(when, 1), when, "@Tea38 thanks!", mentions=[tea],
                                reply_to=XReply(snowflake(when - dt.timedelta(hours=1)), tea))],
                   followers=[kite, tea, XUser("9003")])
    zipped = write_archive(tmp_path / "twitter.zip", world)
    workspace = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        run_import(workspace, zipped, account=AccountConfig(name="main", platform="x"))
        archive = workspace.archive
        write(archive, "mastodon", masto("kite17@other3.example"))
        tea_sky = sky("tea38.bsky.social")
        write(archive, "bluesky", tea_sky, sky("x-person.example", bio="I was twitter.com/intent/user?user_id=9003"))
        found = suggestions(archive)
        assert set(found) == {pair("x:9001", "mastodon:kite17@other3.example"),
                              pair("x:9002", f"bluesky:{tea_sky.native_id}")}
    finally:
        workspace.archive.close()


def test_long_strange_bios_cost_little(archive):
    """Strangers write the bios. A link was once looked for inside every word, so a bio of
    one long word cost time growing with its square (2 s of CPU for 5,000 letters). Measured
    in this thread's CPU time, with a wide margin: the old way took some 40 s here."""
    import time

    write(archive, "mastodon", *[masto(f"odd{i}@m.example", note=("a" if i % 2 else "-") * 6000) for i in range(20)])
    write(archive, "x", x_person("901", "odd1"))
    started = time.thread_time()
    found = suggestions(archive)
    assert time.thread_time() - started < 5
    assert set(found) == {pair("x:901", "mastodon:odd1@m.example")}
