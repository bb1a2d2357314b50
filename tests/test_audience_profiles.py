"""What the open platforms say about a person (bio, profile links, fediverse handles)
reaches `people` and lets `archiver audience links` find the same person elsewhere."""

from __future__ import annotations

from archiver.views import audience
from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter
from archiver.records import Person
from archiver_connectors.bluesky.api import person_from_view
from archiver_connectors.mastodon.api import person_from_account


def test_mastodon_and_bluesky_people_carry_bio_and_links():
    kite = person_from_account({
        "acct": "kite@fedi.example", "username": "kite", "display_name": "Kite Fan",
        "url": "https://fedi.example/@kite", "note": "<p>Flying things &amp; more</p>",
        "fields": [{"name": "Instagram", "value": '<a href="https://www.instagram.com/kite.fan/" rel="me">'
                                                  'instagram.com/kite.fan</a>'},
                   {"name": "Pronouns", "value": "they/them"}],
    }, "home.example")
    assert (kite.native_id, kite.bio, kite.links) == ("kite@fedi.example", "Flying things & more",
                                                      ["https://www.instagram.com/kite.fan/"])
    sky = person_from_view({"did": "did:plc:abc", "handle": "kite.bsky.social",
                            "description": "Kites! Also https://youtube.com/@kitefan and more."})
    assert sky.bio.startswith("Kites!") and sky.links == ["https://youtube.com/@kitefan"]


def test_links_in_profiles_and_fediverse_handles_become_suggestions(tmp_path):
    archive = Archive(tmp_path / "archive")
    people = {
        "mastodon": [person_from_account({
            "acct": "kite@fedi.example", "url": "https://fedi.example/@kite",
            "fields": [{"name": "IG", "value": '<a href="https://www.instagram.com/kite.fan/">ig</a>'}]}, "x")],
        "instagram": [Person("kite.fan", handle="kite.fan", url="https://www.instagram.com/kite.fan/")],
        "youtube": [Person("UC1", handle="@kite", url="https://www.youtube.com/@kite")],
    }
    with archive.writing():
        for platform, persons in people.items():
            writer = ArchiveWriter(archive.db, platform=platform, account_id=f"{platform}:main", source="api",
                                   now="2026-01-01T00:00:00Z")
            for person in persons:
                writer.write_person(person)
    assert audience.suggest_links(archive.db) == 2
    found = {(link["a"], link["b"]): link["reason"] for link in audience.list_links(archive.db)}
    assert any("links to" in reason for pair, reason in found.items()
               if set(pair) == {"mastodon:kite@fedi.example", "instagram:kite.fan"}), found
    assert any("same handle @kite" in reason for pair, reason in found.items()
               if set(pair) == {"mastodon:kite@fedi.example", "youtube:UC1"}), found
    archive.close()
