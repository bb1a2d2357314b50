"""Facebook's "Download your information" export (archiver_connectors.facebook.export), as
facebook.md §6 describes it and facebook/sim/export.py builds it: every layout generation
zipped and extracted, Meta's mojibake in text and uris (files with real UTF-8 names), a
post whose file is missing, media-only and update_timestamp-only posts, localized profile
labels, friends / followers / following as dated snapshots keyed by name, the HTML export
refused, a download split in parts, an API post and its export twin as one row, bad items
skipped, and the real `archiver import` detecting Facebook.

Imports go through the real connector, the core's open_export and sync runner (or
run_import), with a network that fails the test at the first request.
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
from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.records import Page, Post, iso_utc
from archiver.secrets import open_secret_store
from archiver.sync.imports import open_export
from archiver.sync.jobs import Workspace, detect_platform, run_import
from archiver.sync.runner import Runner
from archiver_connectors.facebook import FacebookConnector
from archiver_connectors.facebook.export import find_export, person_key
from archiver_connectors.facebook.sim.export import (
    ExportMedia,
    ExportPerson,
    ExportPost,
    FacebookExportWorld,
    jpeg_bytes,
    mis_encode,
    sample_world,
    write_export,
)
from archiver_connectors.meta.export import LabelledValues

ACCOUNT = "facebook:main"
NAME = "facebook-jane.example-2024-06-01-AbCd"


def refuse_every_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"an export import must not make any request (it asked for {request.url})")


def connector() -> FacebookConnector:
    return FacebookConnector(AccountConfig(name="main", platform="facebook"), open_secret_store("memory"),
                             transport=httpx.MockTransport(refuse_every_request))


def import_export(archive: Archive, path: Path) -> dict:
    """Import ``path`` through the real connector and the real sync runner."""
    fb = connector()
    with open_export(path) as source:
        return Runner(archive, fb).run(lambda ctx: fb.import_pages(source, ctx), kind="import", mode=path.name,
                                       source=f"export:{source.sha256}")


def workspace(tmp_path: Path) -> Workspace:
    return Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))


def media_of(world: FacebookExportWorld) -> list[ExportMedia]:
    return [m for p in world.posts for m in p.media]


# --------------------------------------------------------------------------- every layout


@pytest.mark.parametrize("layout,zipped,top_folder", [
    ("2019", True, None), ("2022", True, None), ("2022", False, None), ("2023", True, None),
    ("2024", True, None), ("2024", False, None), ("2024", True, NAME)])
def test_every_layout_imports_posts_media_comments_reactions_people_and_profile(tmp_path, archive, layout, zipped,
                                                                                 top_folder):
    world = sample_world(posts=3, friends=3)
    path = write_export(tmp_path / (f"{NAME}.zip" if zipped else NAME), world, layout=layout, zipped=zipped,
                        top_folder=top_folder, posts_per_file=2)

    result = import_export(archive, path)

    assert result["status"] == "ok", result
    assert result["errors"] == []
    db = archive.db
    # Posts: one row at each exact second, text repaired (accents, emoji), the media-only
    # post (data: [] … only an update_timestamp row) without text; provisional until the
    # API names them.
    assert sorted(rows(db, "SELECT post_id, created_at, text FROM posts")) == sorted(
        (f"provisional:{iso_utc(p.timestamp)}", iso_utc(p.timestamp), p.text) for p in world.posts)
    assert world.posts[2].text is None and world.posts[1].edited_at
    # Files: stored by content, looked up through mojibake uris ("Fotky z \u00c4\u008dasov\u00c3\u00a9
    # osy") while the entries have real UTF-8 names.
    assert {r[0] for r in rows(db, "SELECT status FROM post_media")} == {"ok"}
    stored = {r[0] for r in rows(db, "SELECT m.sha256 FROM post_media pm JOIN media m ON m.sha256 = pm.sha256")}
    assert stored == {hashlib.sha256(m.data).hexdigest() for m in media_of(world)}
    assert all("časové" in url for (url,) in rows(db, "SELECT source_url FROM post_media"))
    # The link attachment and the narration stay in raw; the upload IP does not.
    raws = " ".join(r[0] for r in rows(db, "SELECT raw FROM posts"))
    assert "https://example.org/artikel" in raws and "203.0.113.7" not in raws
    # Comments the owner wrote (group ones too; an entry without data left out).
    assert sorted(rows(db, "SELECT text, by_owner, post_id FROM comments")) == sorted(
        (c.text, 1, None) for c in world.comments if c.text)
    # Reactions given: likes of the owner's, with their time.
    assert sorted(rows(db, "SELECT kind, created_at FROM interactions")) == sorted(
        ("like", iso_utc(r.timestamp)) for r in world.reactions)
    assert "LOVE" in one(db, "SELECT group_concat(raw) FROM interactions")
    # Friends (and, from 2020 on, followers and following): dated snapshots, names only.
    lists = {"friends": world.friends} | ({} if layout == "2019" else
                                          {"followers": world.followers, "following": world.following})
    for kind, people in lists.items():
        assert sorted(rows(db, "SELECT person_id, started_at, ended_at FROM follows WHERE kind=?", kind)) == sorted(
            (person_key(p.name), iso_utc(p.timestamp), None) for p in people)
    assert ("name:åse ørsted", "Åse Ørsted") in rows(db, "SELECT person_id, display_name FROM people")
    # Profile: repaired, contact data never copied.
    assert rows(db, "SELECT username, display_name, bio, url FROM accounts") == [
        (world.username, world.owner_name, world.bio, f"https://www.facebook.com/{world.username}")]
    everything = json.dumps(rows(db, "SELECT raw FROM accounts"))
    assert world.email not in everything and "1990" not in everything


def test_localized_profile_labels_are_read_without_english(tmp_path, archive):
    world = sample_world(posts=1)
    path = write_export(tmp_path / f"{NAME}.zip", world, profile_style="labels")
    assert import_export(archive, path)["status"] == "ok"
    assert rows(archive.db, "SELECT username, display_name, bio, url FROM accounts") == [
        (world.username, world.owner_name, world.bio, f"https://www.facebook.com/{world.username}")]
    raw = one(archive.db, "SELECT raw FROM accounts")
    assert world.email not in raw and world.birthday not in raw


def test_labelled_values_by_english_label_or_by_shape():
    english = {"string_map_data": {"Comment": {"value": "so good"}, "Media Owner": {"value": "ana"},
                                   "Time": {"timestamp": 1710000000}}}
    portuguese = {"string_map_data": {"Comentário": {"value": "muito bom"}, "Dono da mídia": {"value": "ana"},
                                      "Hora": {"timestamp": 1710000000}}}
    labels = ("comment", "media owner", "time")
    for item, text in ((english, "so good"), (portuguese, "muito bom")):
        values = LabelledValues(item, labels)
        assert (values.text("comment", 0), values.text("media owner", 1), values.time("time")) == (
            text, "ana", "2024-03-09T16:00:00Z")
    # English labels, one missing: that one is missing, never guessed from the others.
    partial = LabelledValues({"string_map_data": {"Media Owner": {"value": "ana"}}}, labels)
    assert partial.text("comment", 0) is None and partial.time("time") is None
    private = LabelledValues({"string_map_data": {"E-mail": {"value": "a@b.example"}, "Tlf": {"value": "+45 12 34 56 78"},
                                                  "Født": {"value": "1990-01-01"}, "Navn": {"value": "Jane"}}})
    assert private.texts == ["Jane"]


# --------------------------------------------------------------------------- holes, bad items


def test_a_missing_file_is_reported_and_the_import_goes_on_without_keeping_a_hole(tmp_path):
    world = FacebookExportWorld(posts=[
        ExportPost(1_700_000_000, "Med billede", media=[ExportMedia("ok.jpg", jpeg_bytes(1)),
                                                          ExportMedia("gone ø.jpg", jpeg_bytes(2), present=False)]),
        ExportPost(1_700_000_100, "Efter")])
    path = write_export(tmp_path / f"{NAME}.zip", world)
    ws = workspace(tmp_path)
    try:
        result = run_import(ws, path)
        assert result["status"] == "ok", result
        db = ws.archive.db
        assert one(db, "SELECT count(*) FROM posts") == 2
        assert rows(db, "SELECT position, status, cause FROM post_media ORDER BY position") == [
            (0, "ok", None), (1, "failed", "missing")]
        assert "not in the export" in one(db, "SELECT error FROM post_media WHERE status='failed'")
        assert any("gone ø.jpg" in e["error"] for e in result["errors"])
        # Not a hole a retry of this file could fill: the import is done.
        assert one(db, "SELECT holes FROM imports") == 0
        assert run_import(ws, path)["status"] == "skipped"
    finally:
        ws.archive.close()


def test_bad_items_are_reported_and_skipped(tmp_path, archive):
    world = sample_world(posts=2, friends=2)
    good = write_export(tmp_path / "good", world, zipped=False)
    posts_file = good / "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json"
    posts = json.loads(posts_file.read_text())
    posts += [{"data": [{"post": "no time"}]}, "not an object", {"timestamp": 1_700_000_000, "data": "oops"}]
    posts_file.write_text(json.dumps(posts))
    reactions_file = good / "your_facebook_activity/comments_and_reactions/likes_and_reactions_1.json"
    reactions_file.write_text(json.dumps(json.loads(reactions_file.read_text()) + [{"timestamp": "soon"}]))
    friends_file = good / "connections/friends/your_friends.json"
    friends_file.write_text(json.dumps({"friends_v2": [{"name": "Åse Ørsted", "timestamp": 1}, {"timestamp": 2}]}))
    (good / "connections/followers/people_who_followed_you.json").write_text('{"followers_v3": [')   # damaged

    result = import_export(archive, good)

    assert result["status"] == "ok", result
    db = archive.db
    assert one(db, "SELECT count(*) FROM posts") == 2
    assert one(db, "SELECT count(*) FROM interactions") == len(world.reactions)
    items = " | ".join(f"{e['item']}: {e['error']}" for e in result["errors"])
    for expected in ("no usable timestamp", "expected an object", "data is a str", "reaction 2",
                     "friends entry 1", "people_who_followed_you.json"):
        assert expected in items, items
    # A friends list with a skipped entry is partial: nobody is taken for gone on its word.
    assert rows(db, "SELECT kind, complete FROM snapshots ORDER BY kind") == [("following", 1), ("friends", 0)]


# --------------------------------------------------------------------------- people known by name


def test_a_later_export_ends_the_friendship_of_who_is_gone_and_matches_the_same_names(tmp_path, archive):
    first = sample_world(posts=1, friends=3)
    first.exported_at = 1_717_200_000
    later = sample_world(posts=1, friends=3)
    later.exported_at = first.exported_at + 86_400 * 30
    gone = later.friends.pop(1)
    later.friends[0] = ExportPerson("  åse   ØRSTED ", later.friends[0].timestamp)   # the same name, spelt loosely
    assert import_export(archive, write_export(tmp_path / "one.zip", first))["status"] == "ok"
    assert import_export(archive, write_export(tmp_path / "two.zip", later))["status"] == "ok"

    db = archive.db
    assert one(db, "SELECT count(*) FROM people") == 3 + 2      # 3 friends, a follower, a followed page
    ended = rows(db, "SELECT person_id, ended_at FROM follows WHERE kind='friends' AND ended_at IS NOT NULL")
    assert ended == [(person_key(gone.name), iso_utc(later.exported_at))]
    assert one(db, "SELECT count(*) FROM follows WHERE kind='friends' AND ended_at IS NULL") == 2
    assert rows(db, "SELECT event, person_id FROM audience_events WHERE kind='friends' AND event='lost'") == [
        ("lost", person_key(gone.name))]
    # `archiver status` counts the friends (an account without any shows no friends at all).
    from archiver.ops.status import archive_holds

    assert archive_holds(db, ACCOUNT)["friends"] == 2


# --------------------------------------------------------------------------- what is refused


def test_an_html_export_is_refused_asking_for_json(tmp_path):
    path = write_export(tmp_path / f"{NAME}.zip", sample_world(), layout="html")
    ws = workspace(tmp_path)
    try:
        with open_export(path) as source:
            assert detect_platform(source) == "facebook"
        result = run_import(ws, path)
        assert result["status"] == "failed"
        assert "HTML" in result["message"] and "JSON" in result["message"]
        assert one(ws.archive.db, "SELECT count(*) FROM posts") == 0
    finally:
        ws.archive.close()


def test_detection_claims_facebook_exports_and_not_instagram_or_threads(tmp_path):
    from archiver_connectors.instagram.sim.export import build_instagram_export
    from archiver_connectors.threads.sim.export import ThreadsExportPost, ThreadsExportWorld
    from archiver_connectors.threads.sim.export import write_export as write_threads

    for layout in ("2019", "2022", "2023", "2024"):
        with open_export(write_export(tmp_path / f"fb-{layout}.zip", sample_world(), layout=layout)) as source:
            assert find_export(source) and detect_platform(source) == "facebook"
    threads_world = ThreadsExportWorld(posts=[ThreadsExportPost(1_700_000_000, "hej")])
    others = [build_instagram_export(tmp_path / "ig.zip"), build_instagram_export(tmp_path / "ig-old", layout="old"),
              write_threads(tmp_path / "threads.zip", threads_world),
              write_threads(tmp_path / "ig-threads.zip", threads_world, inside_instagram=True)]
    for path in others:
        with open_export(path) as source:
            assert find_export(source) is None, path


# --------------------------------------------------------------------------- a download in parts


def test_a_download_in_parts_is_imported_as_one_from_its_folder(tmp_path):
    world = sample_world(posts=5)
    folder = write_export(tmp_path / NAME, world, parts=3)
    parts = sorted(folder.iterdir())
    assert len(parts) == 3
    # Most files sit in another part than the JSON naming them.
    first = set(zipfile.ZipFile(parts[0]).namelist())
    assert sum(1 for m in media_of(world) if not any(m.name in n for n in first)) >= 2
    ws = workspace(tmp_path)
    try:
        # One part alone: its posts, and the files it lacks reported, not held open.
        alone = run_import(ws, parts[0])
        assert alone["status"] == "ok" and alone["counts"]["media_not_in_export"] >= 2
        assert all("put them all in one folder" in e["error"] for e in alone["errors"]), alone["errors"]
        # A part holding media only, imported alone, says what to do.
        lonely = run_import(ws, parts[1])
        assert lonely["status"] == "failed" and "one folder" in lonely["message"]
        # The folder holding every part: one export; the files the first part lacked are stored.
        whole = run_import(ws, folder)
        assert whole["status"] == "ok", whole
        assert whole["errors"] == []
        db = ws.archive.db
        assert one(db, "SELECT count(*) FROM posts") == len(world.posts)
        assert {r[0] for r in rows(db, "SELECT status FROM post_media")} == {"ok"}
        assert one(db, "SELECT count(*) FROM post_media") == len(media_of(world))
        assert run_import(ws, folder)["status"] == "skipped"
    finally:
        ws.archive.close()


def test_parts_unzipped_each_into_its_own_folder_import_as_one(tmp_path, archive):
    world = sample_world(posts=5)
    folder = write_export(tmp_path / "zips", world, parts=2)
    unzipped = tmp_path / "unzipped"
    for part in sorted(folder.iterdir()):
        with zipfile.ZipFile(part) as z:
            z.extractall(unzipped / part.stem)
    result = import_export(archive, unzipped)
    assert result["status"] == "ok" and result["errors"] == [], result
    assert {r[0] for r in rows(archive.db, "SELECT status FROM post_media")} == {"ok"}
    assert one(archive.db, "SELECT count(*) FROM post_media") == len(media_of(world))


def test_a_folder_with_other_files_is_an_extracted_export_not_parts(tmp_path):
    folder = write_export(tmp_path / "parts", sample_world(), parts=2)
    with open_export(folder) as source:
        assert source.kind == "parts" and find_export(source)
    (folder / "notes.txt").write_text("mine")
    with open_export(folder) as source:
        assert source.kind == "folder" and find_export(source) is None


# --------------------------------------------------------------------------- API and export


def test_an_api_post_and_its_export_twin_are_one_row(tmp_path, archive):
    world = sample_world(posts=2)
    post = world.posts[0]
    fb = connector()
    api_post = Post(native_id="100000000000001_987654321", created_at=iso_utc(post.timestamp), kind="image",
                    text=post.text, url="https://www.facebook.com/100000000000001/posts/987654321",
                    raw={"id": "100000000000001_987654321", "message": post.text})
    result = Runner(archive, fb).run(lambda ctx: iter([Page("posts", [api_post])]), kind="export", mode="incremental")
    assert result["status"] == "ok", result

    assert import_export(archive, write_export(tmp_path / f"{NAME}.zip", world))["status"] == "ok"

    db = archive.db
    assert sorted(rows(db, "SELECT post_id, text FROM posts")) == sorted([
        ("100000000000001_987654321", post.text),
        (f"provisional:{iso_utc(world.posts[1].timestamp)}", world.posts[1].text)])
    assert one(db, "SELECT count(*) FROM post_media WHERE post_id='100000000000001_987654321' AND status='ok'") == 1


# --------------------------------------------------------------------------- the command


def test_cli_import_detects_facebook(tmp_path):
    world = sample_world(posts=2)
    path = write_export(tmp_path / "inputs" / f"{NAME}.zip", world)
    script = Path(sys.executable).parent / "archiver"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "archiver.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update(ARCHIVER_SECRETS="env", ARCHIVER_STATE_DIR=str(tmp_path / "state"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    work = tmp_path / "cwd"
    work.mkdir()

    result = subprocess.run([*command, "import", str(path), "--archive", str(tmp_path / "archive")],
                            capture_output=True, text=True, env=env, cwd=work, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    assert ACCOUNT in result.stdout + result.stderr
    archive = Archive(tmp_path / "archive")
    try:
        assert one(archive.db, "SELECT count(*) FROM posts") == 2
        assert one(archive.db, "SELECT account_id FROM accounts") == ACCOUNT
    finally:
        archive.close()


def test_the_builder_writes_meta_mojibake_with_real_utf8_entry_names(tmp_path):
    path = write_export(tmp_path / f"{NAME}.zip", sample_world(posts=1), layout="2022")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        posts = z.read("posts/your_posts_1.json").decode("ascii")
    assert any("časové" in n for n in names)
    assert "\\u00c4\\u008dasov" in posts                       # the uri as Meta writes it
    assert json.loads(posts)[0]["data"][0]["post"] == mis_encode("Sne sne! ❄️")


def test_instagram_comments_and_profile_with_localized_labels(tmp_path, archive):
    # The same reader on Instagram's string_map_data (point 5): Portuguese labels, nothing
    # English to lean on; contact data still never copied.
    from archiver_connectors.instagram import InstagramConnector
    from archiver_connectors.instagram.sim.export import make_account
    from archiver_connectors.instagram.sim.export import write_export as write_instagram

    account = make_account(posts=1, reels=0, stories=0, followers=1, following=1, comments=0, seed=3)
    profile = {"profile_user": [{"string_map_data": {
        "E-mail": {"href": "", "value": account.email, "timestamp": 0},
        "Nome de usuário": {"href": "", "value": account.username, "timestamp": 0},
        "Nome": {"href": "", "value": account.name, "timestamp": 0},
        "Biografia": {"href": "", "value": account.bio, "timestamp": 0},
        "Data de nascimento": {"href": "", "value": "1990-01-01", "timestamp": 0},
        "Conta privada": {"href": "", "value": "False", "timestamp": 0}}}]}
    comments = [{"string_map_data": {"Comentário": {"value": "Muito bom! 😍"}, "Dono da mídia": {"value": "ana.sp"},
                                     "Hora": {"timestamp": 1_710_000_000}}}]
    path = write_instagram(account, tmp_path / "instagram-pt.zip", extra_files={
        "personal_information/personal_information/personal_information.json":
            json.dumps(mis_encode(profile)).encode("ascii"),
        "your_instagram_activity/comments/post_comments_1.json": json.dumps(mis_encode(comments)).encode("ascii")})
    instagram = InstagramConnector(AccountConfig(name="main", platform="instagram"), open_secret_store("memory"),
                                   transport=httpx.MockTransport(refuse_every_request))
    with open_export(path) as source:
        result = Runner(archive, instagram).run(lambda ctx: instagram.import_pages(source, ctx), kind="import",
                                                mode=path.name, source=f"export:{source.sha256}")
    assert result["status"] == "ok" and result["errors"] == [], result
    db = archive.db
    assert rows(db, "SELECT username, display_name, bio FROM accounts") == [(account.username, account.name, account.bio)]
    raw = one(db, "SELECT raw FROM accounts")
    assert account.email not in raw and "1990-01-01" not in raw
    assert rows(db, "SELECT text, created_at, by_owner FROM comments") == [("Muito bom! 😍", "2024-03-09T16:00:00Z", 1)]
    assert "ana.sp" in one(db, "SELECT raw FROM comments")


def test_parts_with_one_name_twice_or_a_damaged_part(tmp_path):
    from archiver.sync.imports import ExportFileError

    folder = tmp_path / "parts"
    folder.mkdir()
    for number, body in ((1, b"[1]"), (2, b"[1, 2, 3]")):
        with zipfile.ZipFile(folder / f"export-{number}.zip", "w") as z:
            z.writestr("posts/your_posts_1.json", body)
            z.writestr(f"only-in-{number}.txt", b"x")
    with open_export(folder) as source:
        assert sorted(source.names()) == ["only-in-1.txt", "only-in-2.txt", "posts/your_posts_1.json"]
        assert source.load_json("posts/your_posts_1.json") == [1]          # the first part's
        assert any("export-1.zip holds a file of that name too" in w for w in source.warnings), source.warnings
    (folder / "export-3.zip").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(ExportFileError) as refused:
        open_export(folder)
    assert "export-3.zip" in str(refused.value)
