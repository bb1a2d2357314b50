"""Mastodon's account archive (archive-*.tar.gz, or its extracted folder), imported into a
real archive.

The archives are built by connectors/archiver_connectors/mastodon/sim/export.py from a small account model,
in the real member order and with the layout quirks of shared/platforms/mastodon.md §7
(the duplicated ``orderedItems`` key, edited notes with ``updated``, media urls with a
``/system/`` or bucket prefix, missing files) and a hostile variant (``../`` names,
absolute paths, symbolic and hard links). Most tests drive the real connector's
``import_pages`` through the real sync runner (on a network that fails the test at any
request); the ``run_import`` tests go through the job every front end uses (the imports
table), and the CLI test through ``archiver import``.

Every expectation is derived from the fake account and checked against the SQLite file
and the media folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from archive_rows import one, rows
from archiver_connectors.mastodon import MastodonConnector
from archiver_connectors.mastodon.api import html_to_text, post_from_status
from archiver_connectors.mastodon.export import (
    acct_from_uri,
    looks_like_archive,
    outbox_items,
    status_id,
)
from archiver_connectors.mastodon.sim.export import (
    HOSTILE_STATUS_ID,
    archive_files,
    archive_name,
    make_account,
    png_bytes,
    write_archive,
)

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.sync.imports import open_export
from archiver.records import Page
from archiver.secrets import open_secret_store
from archiver.sync.runner import Runner

ACCOUNT = "mastodon:main"


# --------------------------------------------------------------------------- harness


def mastodon_connector(files: dict[str, bytes] | None = None) -> MastodonConnector:
    """The real connector, on a network of this test's own: without ``files`` every
    request fails the test (an archive import must never download anything, its files
    are inside the archive); with ``files`` (url -> bytes) it serves those in-process,
    for an API run's media downloads, and remembers what was fetched
    (``connector.fetched``)."""
    fetched: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        if files is None:
            raise AssertionError(f"an archive import must not make any request (it asked for {request.url})")
        fetched.append(str(request.url))
        body = files.get(str(request.url))
        return httpx.Response(200, content=body) if body is not None else httpx.Response(404)

    connector = MastodonConnector(AccountConfig(name="main", platform="mastodon"), open_secret_store("memory"),
                                  transport=httpx.MockTransport(serve))
    connector.fetched = fetched
    return connector


def import_archive(archive: Archive, path: Path) -> dict:
    connector = mastodon_connector()
    with open_export(path) as source:
        result = Runner(archive, connector).run(
            lambda ctx: connector.import_pages(source, ctx), kind="import", mode=path.name,
            source=f"export:{source.sha256}")
        result["warnings"] = list(source.warnings)
        result["provenance"] = f"export:{source.sha256}"
        return result


def key(status_id: str, host: str = "social.example") -> str:
    """The archive's key of a status: its id is local to its instance (``<host>:<id>``)."""
    return f"{host}:{status_id}"


def export_payload(raw: str) -> dict:
    """The one export's payload in a row's raw JSON (keyed "export:<sha256>")."""
    [payload] = [v for k, v in json.loads(raw).items() if k.startswith("export:")]
    return payload


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def errors_text(result: dict) -> str:
    return " | ".join(f"{e['item']}: {e['error']}" for e in result["errors"])


def own_statuses(account, kind=None):
    return [s for s in account.statuses if kind is None or s["kind"] == kind]


# --------------------------------------------------------------------------- keys


def test_keys_shared_with_the_api_connector():
    assert status_id("https://social.example/users/alice/statuses/113400000000000042") == "113400000000000042"
    assert status_id("https://social.example/users/alice/statuses/113400000000000099/activity") == "113400000000000099"
    assert acct_from_uri("https://Other.Example/users/Bob") == "bob@other.example"
    assert acct_from_uri("https://other.example/@bob") == "bob@other.example"
    assert acct_from_uri("https://other.example/profile/12345") is None      # never guessed
    assert acct_from_uri("mailto:bob@other.example") is None


# --------------------------------------------------------------------------- everything, every layout

LAYOUTS = [
    # (file name, options)
    (archive_name(), {}),                                               # the real tar.gz
    ("archive-extracted", {}),                                          # its extracted folder
    ("repacked.tar.gz", {"top_folder": "archive-20241120120000"}),     # packed again with a top folder
    ("bucket-folder", {"media_url_prefix": "/bucketname/"}),            # object-storage server
    ("system.tar.gz", {"media_url_prefix": "/system/"}),
]


@pytest.mark.parametrize("name,options", LAYOUTS)
def test_archive_imports_posts_boosts_media_profile_and_interactions(tmp_path, archive, name, options):
    account = make_account(posts=4, replies=2, boosts=2, likes=3, bookmarks=2, seed=3)
    path = write_archive(account, tmp_path / name, **options)

    result = import_archive(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == [] and result["warnings"] == []
    db = archive.db
    provenance = result["provenance"]

    # Posts: keyed by status id; originals "text", replies "reply", boosts "boost".
    stored = {r[0]: r[1:] for r in rows(db, "SELECT post_id, kind, created_at, text, title, url, visibility, "
                                            "sources, account_id FROM posts")}
    assert set(stored) == {key(s["id"]) for s in account.statuses}
    for status in account.statuses:
        kind, created_at, text, title, url, visibility, sources, account_id = stored[key(status["id"])]
        assert (kind, created_at, account_id) == (status["kind"], status["published"], ACCOUNT)
        assert json.loads(sources) == [provenance]
        if status["kind"] == "boost":
            # Keyed by the Announce's own status id, pointing at the boosted post.
            assert (text, url, title) == (status["boost_of"], status["boost_of"], None)
        else:
            assert text == html_to_text(status["content"]) and text and "<" not in text
            assert title == status.get("summary")
            assert url == f"https://social.example/@alice/{status['id']}"
            # Mastodon's words in the archive's vocabulary: "private" is followers only.
            assert visibility == {"private": "followers", "direct": "private"}.get(status["visibility"],
                                                                                   status["visibility"])
    assert stored[key(own_statuses(account)[1]["id"])][2] == "Two paragraphs.\n\nSecond one with a #plants tag & an ampersand"
    assert {s["kind"] for s in account.statuses} == {"text", "reply", "boost"}
    # The archive holds no edit history: none is invented.
    assert one(db, "SELECT count(*) FROM post_versions") == 0

    # Media: every file stored under its sha256, linked in order with its alt text and metadata.
    with_media = [s for s in account.statuses if s.get("media")]
    assert len(with_media) == 2 and any(m["mediaType"] == "video/mp4" for s in with_media for m in s["media"])
    for status in with_media:
        linked = rows(db, "SELECT role, position, status, sha256, description, meta FROM post_media "
                          "WHERE post_id=? ORDER BY position", key(status["id"]))
        assert len(linked) == len(status["media"])
        for (role, position, state, digest, description, meta), media in zip(linked, status["media"]):
            assert (role, state) == (media["mediaType"].split("/")[0], "ok")
            assert digest == sha(media["bytes"])
            assert description == media["name"]
            assert json.loads(meta) == {"mediaType": media["mediaType"], "width": 1600, "height": 1200,
                                        "blurhash": media["blurhash"], "focalPoint": media["focalPoint"]}
            stored_path = one(db, "SELECT path FROM media WHERE sha256=?", digest)
            assert (archive.media_root / stored_path).read_bytes() == media["bytes"]
    assert one(db, "SELECT count(*) FROM post_media") == sum(len(s["media"]) for s in with_media)

    # Profile: bio as text (its HTML kept in raw), avatar from the archive, counts unknown.
    (username, display_name, bio, url, avatar, followers, posts, raw), = rows(
        db, "SELECT username, display_name, bio, url, avatar_sha256, followers, posts, raw FROM accounts")
    assert (username, display_name, url) == ("alice", account.display_name, "https://social.example/@alice")
    assert bio == "Gardener & coder.\n\nshe/her"
    assert account.summary in export_payload(raw)["actor"]["summary"]
    assert avatar == sha(account.avatar) and (followers, posts) == (None, None)
    # The header picture (actor.json "image") is the profile's banner, from the archive too.
    banner = one(db, "SELECT banner_sha256 FROM accounts")
    assert banner == sha(account.header)
    assert (archive.media_root / one(db, "SELECT path FROM media WHERE sha256=?", banner)).read_bytes() == account.header

    # Likes and bookmarks of other people's posts.
    assert sorted(rows(db, "SELECT kind, target, target_url FROM interactions")) == sorted(
        [("like", u, u) for u in account.likes] + [("bookmark", u, u) for u in account.bookmarks])

    # People: mentioned and boosted accounts, keyed user@domain.
    people = {r[0] for r in rows(db, "SELECT person_id FROM people")}
    mentioned = {m for s in account.statuses for m in s.get("mentions", [])}
    boosted = {acct_from_uri(s["boost_of"].rsplit("/statuses/", 1)[0]) for s in own_statuses(account, "boost")}
    assert people == mentioned | boosted


# --------------------------------------------------------------------------- layout quirks


def test_duplicated_ordered_items_key_gives_each_post_once(tmp_path, archive):
    account = make_account(posts=3, replies=1, boosts=2, seed=4)
    path = write_archive(account, tmp_path / "dup.tar.gz", duplicate_ordered_items="empty")
    raw = archive_files(account, duplicate_ordered_items="empty")["outbox.json"].decode()
    assert raw.count('"orderedItems"') == 2 and '"orderedItems": []' in raw   # the quirk is really there

    result = import_archive(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == []
    assert result["counts"]["posts_new"] == len(account.statuses)
    assert sorted(r[0] for r in rows(archive.db, "SELECT post_id FROM posts")) == sorted(
        key(s["id"]) for s in account.statuses)


def test_duplicated_ordered_items_later_copy_wins(tmp_path, archive):
    """Both copies full, the first with the pre-edit text: the later copy is the one
    ``json.load`` keeps, and the one imported — once per post."""
    account = make_account(posts=3, replies=0, boosts=1, edited=1, seed=5)
    path = write_archive(account, tmp_path / "stale", duplicate_ordered_items="stale")
    edited = account.statuses[0]
    with open_export(path) as source:
        ijson_sees = sum(1 for _ in source.iter_json("outbox.json", "orderedItems.item"))
        assert ijson_sees == 2 * len(account.statuses)   # ijson yields both copies …
        items = list(outbox_items(source, "outbox.json", lambda item, error: pytest.fail(f"{item}: {error}")))
    assert len(items) == len(account.statuses)            # … the importer each item once,
    assert items == json.loads((path / "outbox.json").read_text())["orderedItems"]   # json.load's pick

    result = import_archive(archive, path)

    assert result["status"] == "ok", result
    assert one(archive.db, "SELECT count(*) FROM posts") == len(account.statuses)
    assert one(archive.db, "SELECT text FROM posts WHERE post_id=?", key(edited["id"])) == html_to_text(edited["content"])
    assert one(archive.db, "SELECT count(*) FROM post_versions") == 0


def test_a_post_cut_inside_an_emoji_is_imported_with_a_replacement_character(tmp_path, archive):
    """JavaScript writes a string cut between an emoji's two halves as a lone surrogate
    escape. ijson refused a lone low half as malformed JSON (the whole outbox was lost)
    and read a lone high half as "?"; both now read as U+FFFD, every post kept."""
    account = make_account(posts=3, replies=0, boosts=1, edited=0, seed=6)
    path = write_archive(account, tmp_path / "cut")
    outbox = json.loads((path / "outbox.json").read_text())
    posts = [item for item in outbox["orderedItems"] if isinstance(item["object"], dict)]
    posts[0]["object"]["content"] = "<p>cut after \ud83d</p>"
    posts[1]["object"]["content"] = "<p>\ude00 cut before</p>"
    (path / "outbox.json").write_text(json.dumps(outbox))   # ensure_ascii: lone halves as "\\udXXX" escapes
    assert "\\ud83d" in (path / "outbox.json").read_text()

    result = import_archive(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == []
    assert one(archive.db, "SELECT count(*) FROM posts") == len(account.statuses)
    post_key = key(posts[0]["object"]["id"].rsplit("/", 1)[-1])
    assert one(archive.db, "SELECT text FROM posts WHERE post_id=?", post_key) == "cut after \ufffd"
    post_key = key(posts[1]["object"]["id"].rsplit("/", 1)[-1])
    assert one(archive.db, "SELECT text FROM posts WHERE post_id=?", post_key) == "\ufffd cut before"


def test_edited_post_keeps_its_latest_text_and_edit_time_without_inventing_versions(tmp_path, archive):
    account = make_account(posts=2, replies=0, boosts=0, edited=1, seed=6)
    edited, plain = account.statuses
    path = write_archive(account, tmp_path / archive_name(seed=6))

    assert import_archive(archive, path)["status"] == "ok"

    db = archive.db
    for status in (edited, plain):
        text, raw = rows(db, "SELECT text, raw FROM posts WHERE post_id=?", key(status["id"]))[0]
        assert text == html_to_text(status["content"])
        assert export_payload(raw)["edited_at"] == status.get("updated")
    assert edited["updated"] > edited["published"]
    assert one(db, "SELECT count(*) FROM post_versions") == 0


def test_missing_files_and_sections_are_fine(tmp_path, archive):
    account = make_account(posts=3, replies=0, boosts=1, likes=2, bookmarks=2, seed=7)
    first_media = archive_files(account)
    media_name = next(n for n in first_media if n.startswith("media_attachments/"))
    path = write_archive(account, tmp_path / "partial.tar.gz",
                         missing=("likes.json", "actor.json", "avatar.png", "header.png", media_name))

    result = import_archive(archive, path)

    assert result["status"] == "ok", result
    db = archive.db
    assert one(db, "SELECT count(*) FROM posts") == len(account.statuses)
    assert one(db, "SELECT count(*) FROM accounts") == 0
    assert rows(db, "SELECT kind, count(*) FROM interactions GROUP BY kind") == [("bookmark", 2)]
    # The one file the archive lacks: recorded as failed on its post, and reported.
    assert rows(db, "SELECT status FROM post_media WHERE source_url=?", media_name) == [("failed",)]
    assert one(db, "SELECT count(*) FROM post_media WHERE status='ok'") == sum(
        len(s["media"]) for s in account.statuses if s.get("media")) - 1
    assert len(result["errors"]) == 1 and "not in the export" in errors_text(result)

    # An archive of a profile only (no outbox) still imports.
    lone = tmp_path / "profile-only"
    write_archive(account, lone, missing=("outbox.json", "likes.json", "bookmarks.json"))
    other = Archive(tmp_path / "archive2")
    try:
        assert import_archive(other, lone)["status"] == "ok"
        assert one(other.db, "SELECT username FROM accounts") == "alice"
        assert one(other.db, "SELECT count(*) FROM posts") == 0
    finally:
        other.close()


def test_bad_items_are_reported_and_skipped(tmp_path, archive):
    account = make_account(posts=2, replies=0, boosts=1, likes=2, seed=8)
    actor = "https://social.example/users/alice"
    bad = [
        "not an activity",
        {"id": f"{actor}/statuses/1/activity", "type": "Create", "actor": actor, "object": "https://x/1"},
        {"id": f"{actor}/statuses/2/activity", "type": "Create", "actor": actor, "object": {"type": "Note"}},
        {"id": f"{actor}/statuses/3/activity", "type": "Announce", "actor": actor},
        {"id": f"{actor}#delete/4", "type": "Delete", "actor": actor, "object": f"{actor}/statuses/4"},
    ]
    likes = json.dumps({"type": "OrderedCollection", "orderedItems": [42, *account.likes]}).encode()
    bad.append({"id": f"{actor}/statuses/5/activity", "type": "Create", "actor": actor,
                "object": {"id": f"{actor}/statuses/5", "type": "Note", "content": 42, "published": "2024-11-05T00:00:00Z"}})
    actor_json = json.dumps({"type": "Person", "name": "no username", "summary": ["not", "html"]}).encode()
    path = write_archive(account, tmp_path / "bad.tar.gz", extra_items=bad,
                         extra_files={"likes.json": likes, "actor.json": actor_json})

    result = import_archive(archive, path)

    assert result["status"] == "ok", result
    errors = errors_text(result)
    assert "expected an activity object, found str 'not an activity'" in errors
    assert "its object is str, not a Note" in errors
    assert "its Note has no id" in errors
    assert "the Announce names no boosted post" in errors
    assert "type 'Delete' is not a post" in errors
    assert "expected a post URI, found '42'" in errors
    assert "profile in actor.json: ValueError: no preferredUsername" in errors
    assert len(result["errors"]) == 7, errors
    db = archive.db
    # The good posts, and the post whose content is not text (kept, without text).
    assert sorted(r[0] for r in rows(db, "SELECT post_id FROM posts")) == sorted(
        [key(s["id"]) for s in account.statuses] + [key("5")])
    assert one(db, "SELECT text FROM posts WHERE post_id=?", key("5")) is None
    assert one(db, "SELECT count(*) FROM accounts") == 0
    assert one(db, "SELECT count(*) FROM interactions WHERE kind='like'") == len(account.likes)


def test_a_truncated_outbox_keeps_what_was_read_and_says_so(tmp_path, archive):
    account = make_account(posts=4, replies=0, boosts=2, seed=9)
    outbox = archive_files(account)["outbox.json"]
    cut = outbox[: outbox.index(account.status_uri(account.statuses[-1]["id"]).encode())]  # inside the last item
    path = write_archive(account, tmp_path / "cut.tar.gz", extra_files={"outbox.json": cut})

    result = import_archive(archive, path)

    assert result["status"] == "ok", result
    (error,) = result["errors"]
    assert error["item"] == "posts in outbox.json" and "malformed JSON" in error["error"], error
    assert str(path) in error["error"], error
    imported = {r[0] for r in rows(archive.db, "SELECT post_id FROM posts")}
    assert imported == {key(s["id"]) for s in account.statuses[:-1]}
    assert one(archive.db, "SELECT count(*) FROM interactions") == len(account.likes) + len(account.bookmarks)


def test_not_a_mastodon_archive_is_a_clear_failure(tmp_path, archive):
    path = tmp_path / "random.tar.gz"
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("notes/readme.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    result = import_archive(archive, path)
    assert result["status"] == "failed"
    assert str(path) in result["message"] and "no Mastodon archive files found" in result["message"]


# --------------------------------------------------------------------------- idempotence


def snapshot_of(db) -> dict:
    return {
        "posts": rows(db, "SELECT post_id, kind, created_at, text, title, url, visibility, sources FROM posts "
                          "ORDER BY post_id"),
        "post_media": rows(db, "SELECT post_id, role, position, sha256, status, description, meta FROM post_media "
                               "ORDER BY 1,2,3"),
        "media": rows(db, "SELECT sha256, path, size FROM media ORDER BY sha256"),
        "people": rows(db, "SELECT person_id, handle, url FROM people ORDER BY person_id"),
        "interactions": rows(db, "SELECT kind, target, target_url FROM interactions ORDER BY 1,2"),
        "accounts": rows(db, "SELECT username, display_name, bio, url, avatar_sha256 FROM accounts"),
        "versions": rows(db, "SELECT * FROM post_versions") + rows(db, "SELECT * FROM profile_versions"),
    }


@pytest.mark.parametrize("name", ["twice.tar.gz", "twice-folder"])
def test_importing_the_same_archive_twice_adds_nothing(tmp_path, archive, name):
    path = write_archive(make_account(seed=10), tmp_path / name, duplicate_ordered_items="empty")
    first = import_archive(archive, path)
    before = snapshot_of(archive.db)
    files = sorted(p for p in archive.media_root.rglob("*") if p.is_file())

    second = import_archive(archive, path)

    assert first["status"] == second["status"] == "ok"
    assert snapshot_of(archive.db) == before
    assert sorted(p for p in archive.media_root.rglob("*") if p.is_file()) == files
    assert not any(v for k, v in second["counts"].items() if k.endswith("_new") or k in (
        "posts_edited", "profile_changed", "post_versions")), second["counts"]


# --------------------------------------------------------------------------- hostile archives


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def test_hostile_tar_entries_are_skipped_reported_and_nothing_lands_outside(tmp_path, archive):
    account = make_account(posts=2, replies=0, boosts=1, seed=11)
    work = tmp_path / "work"
    work.mkdir()
    path = write_archive(account, work / archive_name(seed=11), hostile=True)
    before = files_under(tmp_path)

    cwd = os.getcwd()
    os.chdir(work)
    try:
        result = import_archive(archive, path)
    finally:
        os.chdir(cwd)

    assert result["status"] == "ok", result
    warnings = " | ".join(result["warnings"])
    assert "'../escaped-dotdot.png': its name contains '..'" in warnings
    assert "escaped-absolute.png': it has an absolute path" in warnings
    assert "link.png': it is a link" in warnings and "hard.png': it is a link" in warnings
    assert len(result["warnings"]) == 4
    # Nothing written outside the archive folder, nothing in the working directory.
    created = files_under(tmp_path) - before
    assert all(p.is_relative_to(tmp_path / "archive") for p in created), sorted(map(str, created))
    assert not list(tmp_path.rglob("escaped-*.png")) and list(work.iterdir()) == [path]
    # The post naming those entries is kept; each of its four files failed and was reported.
    db = archive.db
    assert rows(db, "SELECT status, count(*) FROM post_media WHERE post_id=? GROUP BY status", key(HOSTILE_STATUS_ID)) == [
        ("failed", 4)]
    assert len(result["errors"]) == 4 and all("not in the export" in e["error"] for e in result["errors"])
    assert {sha(png_bytes("evil-dotdot")), sha(png_bytes("evil-absolute"))}.isdisjoint(
        r[0] for r in rows(db, "SELECT sha256 FROM media"))
    assert one(db, "SELECT count(*) FROM posts") == len(account.statuses) + 1


def test_a_link_in_an_extracted_folder_is_never_followed(tmp_path, archive):
    account = make_account(posts=2, replies=0, boosts=0, seed=12)
    path = write_archive(account, tmp_path / "extracted", hostile=True)
    secret = (tmp_path / "outside-secret.txt").read_bytes()

    result = import_archive(archive, path)

    assert result["status"] == "ok", result
    assert any("link.png" in w and "leads out" in w for w in result["warnings"]), result["warnings"]
    assert sha(secret) not in {r[0] for r in rows(archive.db, "SELECT sha256 FROM media")}
    assert rows(archive.db, "SELECT count(*) FROM post_media WHERE post_id=? AND status='ok'",
                key(HOSTILE_STATUS_ID)) == [(0,)]


# --------------------------------------------------------------------------- API + archive


MEDIA_HOST = "https://files.social.example/"


def api_status(account, status: dict) -> dict:
    """The API's Status for one of the account's statuses (notes §4's shape)."""
    uri = account.status_uri(status["id"])
    created = status["published"].replace("Z", ".118Z")
    if status["kind"] == "boost":
        return {"id": status["id"], "created_at": created, "uri": f"{uri}/activity", "url": None,
                "visibility": "public", "content": "", "media_attachments": [],
                "reblog": {"id": "99" + status["id"][-6:], "uri": status["boost_of"],
                           "url": status["boost_of"].replace("/users/", "/@").replace("/statuses/", "/"),
                           "content": "<p>boosted</p>"}}
    return {
        "id": status["id"], "created_at": created, "edited_at": status.get("updated"),
        "in_reply_to_id": "900" if status.get("in_reply_to") else None,
        "spoiler_text": status.get("summary") or "", "visibility": status["visibility"], "uri": uri,
        "url": f"https://social.example/@alice/{status['id']}", "content": status["content"], "reblog": None,
        "replies_count": 1, "reblogs_count": 2, "favourites_count": 5,
        "media_attachments": [{"id": m["id"], "type": m["mediaType"].split("/")[0],
                               "url": MEDIA_HOST + account.media_path(m), "description": m["name"],
                               "blurhash": m["blurhash"]} for m in status.get("media", [])],
    }


@pytest.mark.parametrize("api_first", [True, False])
def test_a_post_from_the_api_and_the_archive_is_one_row(tmp_path, archive, api_first):
    account = make_account(posts=4, replies=1, boosts=2, seed=13)
    api_posts = [post_from_status(api_status(account, s), instance=account.domain) for s in account.statuses]
    served = {MEDIA_HOST + account.media_path(m): m["bytes"] for s in account.statuses for m in s.get("media", [])}
    path = write_archive(account, tmp_path / archive_name(seed=13))
    api = mastodon_connector(files=served)

    def api_run():
        result = Runner(archive, api).run(lambda ctx: iter([Page("statuses", api_posts)]), kind="export",
                                          mode="incremental")
        assert result["status"] == "ok" and result["errors"] == [], result

    if api_first:
        api_run()
        assert import_archive(archive, path)["status"] == "ok"
    else:
        assert import_archive(archive, path)["status"] == "ok"
        api_run()

    db = archive.db
    assert sorted(api.fetched) == sorted(served)
    assert one(db, "SELECT count(*) FROM posts") == len(account.statuses)
    for status in account.statuses:
        (kind, text, sources, likes), = rows(db, "SELECT kind, text, sources, like_count FROM posts WHERE post_id=?",
                                             key(status["id"]))
        assert kind == status["kind"]
        assert text == (status["boost_of"] if kind == "boost" else html_to_text(status["content"]))
        assert sorted(s.split(":")[0] for s in json.loads(sources)) == ["api", "export"]
        assert likes == (None if status["kind"] == "boost" else 5)
        media = status.get("media", [])
        linked = rows(db, "SELECT role, position, sha256, description FROM post_media WHERE post_id=? "
                          "ORDER BY position", key(status["id"]))
        assert linked == [(m["mediaType"].split("/")[0], i, sha(m["bytes"]), m["name"]) for i, m in enumerate(media)]
    # Same text, same roles: the merge made no versions and no second media rows.
    assert one(db, "SELECT count(*) FROM post_versions") == 0
    assert one(db, "SELECT count(*) FROM post_media") == sum(len(s.get("media", [])) for s in account.statuses)


# --------------------------------------------------------------------------- detection and the job


def instagram_export(tmp_path: Path) -> Path:
    from archiver_connectors.instagram.sim.export import make_account as ig_account
    from archiver_connectors.instagram.sim.export import write_export

    return write_export(ig_account(seed=1), tmp_path / "ig.zip")


def test_detection_claims_mastodon_archives_only(tmp_path):
    account = make_account(seed=14)
    ours = [write_archive(account, tmp_path / archive_name()), write_archive(account, tmp_path / "folder"),
            write_archive(account, tmp_path / "top.tar.gz", top_folder="archive-x")]
    bare = tmp_path / "outbox.json"
    bare.write_bytes(archive_files(account)["outbox.json"])
    for path in [*ours, bare]:
        with open_export(path) as source:
            assert looks_like_archive(source), path
    other_outbox = tmp_path / "mail.zip"
    with zipfile.ZipFile(other_outbox, "w") as z:
        z.writestr("outbox.json", b'{"messages": [{"to": "bob@example.org"}]}')
    for path in (instagram_export(tmp_path), other_outbox):
        with open_export(path) as source:
            assert not looks_like_archive(source), path


def test_run_import_detects_the_platform_and_imports_once(tmp_path):
    from archiver.sync.jobs import Workspace, detect_platform, run_import
    from archiver.secrets import open_secret_store

    account = make_account(seed=15)
    path = write_archive(account, tmp_path / archive_name(seed=15), duplicate_ordered_items="empty")
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        with open_export(path) as source:
            assert detect_platform(source) == "mastodon"
        with open_export(instagram_export(tmp_path)) as source:
            assert detect_platform(source) == "instagram"
        first = run_import(ws, path)
        assert first["status"] == "ok", first
        assert (first["platform"], first["account"]) == ("mastodon", ACCOUNT)
        db = ws.archive.db
        counts = {t: one(db, f"SELECT count(*) FROM {t}") for t in ("posts", "post_media", "interactions", "people")}
        assert counts["posts"] == len(account.statuses)
        assert rows(db, "SELECT account_id, file_name FROM imports") == [(ACCOUNT, path.name)]

        second = run_import(ws, path)

        assert second["status"] == "skipped", second
        assert {t: one(db, f"SELECT count(*) FROM {t}") for t in counts} == counts
        assert one(db, "SELECT count(*) FROM imports") == 1
        assert one(db, "SELECT count(*) FROM runs WHERE kind='import'") == 1
    finally:
        ws.archive.close()


def test_run_import_reports_the_hostile_entries_in_the_run(tmp_path):
    from archiver.sync.jobs import Workspace, run_import
    from archiver.secrets import open_secret_store

    path = write_archive(make_account(posts=1, replies=0, boosts=0, seed=16), tmp_path / "evil.tar.gz", hostile=True)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        result = run_import(ws, path)
        assert result["status"] == "ok", result
        stored = json.loads(one(ws.archive.db, "SELECT errors FROM runs WHERE run_id=?", result["run_id"]))
        text = " | ".join(e["error"] for e in stored)
        for needle in ("escaped-dotdot.png", "escaped-absolute.png", "link.png", "hard.png"):
            assert needle in text
    finally:
        ws.archive.close()


def test_cli_import_detects_a_mastodon_archive_from_its_content(tmp_path):
    account = make_account(seed=17)
    path = write_archive(account, tmp_path / "inputs" / "downloaded-file.bin.tar.gz", duplicate_ordered_items="empty")
    script = Path(sys.executable).parent / "archiver"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "archiver.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update(ARCHIVER_SECRETS="env", ARCHIVER_STATE_DIR=str(tmp_path / "state"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    work = tmp_path / "cwd"
    work.mkdir()

    def run():
        return subprocess.run([*command, "import", str(path), "--archive", str(tmp_path / "archive")],
                              capture_output=True, text=True, env=env, cwd=work, timeout=120)

    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    again = run()
    assert again.returncode == 0, again.stdout + again.stderr
    archive = Archive(tmp_path / "archive")
    try:
        db = archive.db
        assert one(db, "SELECT count(*) FROM posts") == len(account.statuses)
        assert one(db, "SELECT username FROM accounts") == "alice"
        assert one(db, "SELECT count(*) FROM imports") == 1
        assert one(db, "SELECT count(*) FROM post_media WHERE status='ok'") == sum(
            len(s.get("media", [])) for s in account.statuses)
    finally:
        archive.close()
    assert list(work.iterdir()) == []


def test_default_pictures_of_the_instance_are_not_the_owners():
    """An actor whose icon / image is the instance's "missing.png", and an API account
    with the default avatar and header: no avatar, no banner."""
    from archiver_connectors.mastodon.api import person_avatar, profile_from_account
    from archiver_connectors.mastodon.export import profile_from_actor

    class NoFiles:
        def ref(self, url, role, position, **_):
            raise AssertionError(f"{role} {url} should not be kept")

    actor = {"preferredUsername": "alice", "icon": {"type": "Image", "url": "avatars/original/missing.png"},
             "image": {"type": "Image", "url": "/headers/original/missing.png"}}
    profile = profile_from_actor(actor, NoFiles())
    assert profile.avatar is None and profile.banner is None
    account = {"id": "1", "username": "alice", "avatar": "https://m.example/avatars/original/missing.png",
               "avatar_static": "https://m.example/avatars/original/missing.png",
               "header": "https://m.example/headers/original/missing.png",
               "header_static": "https://m.example/headers/original/missing.png"}
    profile = profile_from_account(account)
    assert profile.avatar is None and profile.banner is None and person_avatar(account) is None
    account.update(header="https://m.example/system/accounts/headers/000/000/001/original/a.gif",
                   header_static="https://m.example/system/accounts/headers/000/000/001/static/a.png",
                   avatar_static="https://m.example/system/accounts/avatars/000/000/001/static/b.png")
    profile = profile_from_account(account)
    assert profile.banner.url.endswith("/original/a.gif") and profile.banner.role == "banner"
    assert person_avatar(account).url.endswith("/static/b.png")
