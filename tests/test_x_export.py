"""X's "Download an archive of your data" (shared/platforms/x-twitter.md): the importer
(x/export.py, x/ytd.py, x/tweets.py) over archives of every generation written by the
generator (x/sim/export.py), and over files written by hand from the notes' examples."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from archive_rows import one, rows

import archiver_connectors.x.tweets as mapping
from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.records import iso_utc
from archiver.secrets import open_secret_store
from archiver.sync.imports import open_export
from archiver.sync.jobs import Workspace, run_import
from archiver_connectors.x.export import READ_TYPES, find_export
from archiver_connectors.x.sim.export import STRAY_POST_ID, XPost, sample_world, write_archive

ACCOUNT = AccountConfig(name="main", platform="x")


@pytest.fixture
def ws(tmp_path):
    workspace = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    yield workspace
    workspace.archive.close()


def import_archive(ws, path):
    return run_import(ws, path, account=ACCOUNT)


def everything(db) -> str:
    """Every value of every table, as text (to look for what must not be there)."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()]
    return "\n".join(repr(rows(db, f'SELECT * FROM "{table}"')) for table in tables)


def expected_posts(world, generation: str = "2026") -> dict[str, XPost]:
    posts = {post.tweet_id: post for post in world.iter_posts()}
    if generation == "2021":   # no edit_info then: an edited post is its newest version alone
        posts = {(post.version_ids[-1] if post.edits else key): post for key, post in posts.items()
                 if post.deleted_at is None and not post.community}
    elif generation == "2022":
        posts = {key: post for key, post in posts.items() if not post.community}
    return posts


def stored_posts(db) -> dict[str, dict]:
    found = {}
    for row in rows(db, "SELECT post_id, kind, text, created_at, like_count, share_count, visibility, deleted_at, "
                        "link, url, raw FROM posts"):
        post_id, kind, text, created_at, likes, shares, visibility, deleted_at, link, url, raw = row
        [payload] = json.loads(raw).values()
        found[post_id] = dict(kind=kind, text=text, created_at=created_at, likes=likes, shares=shares,
                              visibility=visibility, deleted_at=deleted_at, link=link, url=url, raw=payload)
    return found


# --------------------------------------------------------------------------- a whole archive


def test_the_2026_archive_imports_everything_it_holds(tmp_path, ws):
    world = sample_world()
    path = write_archive(tmp_path / "twitter.zip", world)

    result = import_archive(ws, path)

    assert result["status"] == "ok", result
    db = ws.archive.db
    stored = stored_posts(db)
    wanted = expected_posts(world)
    assert set(stored) == set(wanted)
    for post_id, post in wanted.items():
        got = stored[post_id]
        assert got["text"] == post.final_text, post_id
        assert got["kind"] == post.kind, post_id
        assert got["created_at"] == iso_utc(post.created_at)
        assert (got["likes"], got["shares"]) == (post.like_count, post.repost_count)
        assert got["url"] == f"https://x.com/ada_example/status/{post_id}"
        assert got["visibility"] == ("community" if post.community else None)
        assert got["deleted_at"] == (iso_utc(post.deleted_at) if post.deleted_at else None)
        assert [link["url"] for link in got["raw"]["links"]] == post.links
        assert [m["handle"] for m in got["raw"]["mentions"]] == [u.handle for u in post.mentions]
        if post.edits:
            assert got["raw"]["edit_ids"] == post.version_ids
            assert rows(db, "SELECT text, replaced_at FROM post_versions WHERE post_id=?", post_id) == [
                (post.text, iso_utc(post.edits[0].created_at))]
        if post.reply_to:
            assert got["raw"]["in_reply_to"]["post_id"] == post.reply_to.post_id
        if post.community:
            assert got["raw"]["scopes"] == {"followers": False}
        if post.is_note:
            assert "noteTweetId" in got["raw"]["note"]
    assert any(post.is_note for post in wanted.values()) and any(post.edits for post in wanted.values())
    # Links beside the text, the first one off X as the post's link; hashtags.
    tea = next(post_id for post_id, post in wanted.items() if post.text.startswith("Tea & cake"))
    assert stored[tea]["link"] == "https://example.org/cafe?a=1&b=2"
    assert stored[tea]["raw"]["hashtags"] == ["sunday"]

    # Media: every file the archive holds, in its post's order; the re-used photo stored once.
    media = rows(db, "SELECT post_id, position, status, sha256, role FROM post_media ORDER BY post_id, position")
    for post_id, post in wanted.items():
        slots = [m for m in media if m[0] == post_id]
        assert [(m[1], m[2]) for m in slots] == [(n, "ok" if medium.in_archive else "failed")
                                                 for n, medium in enumerate(post.media)], post_id
        for slot, medium in zip(slots, post.media, strict=True):
            if medium.in_archive:
                stored_file = one(db, "SELECT path FROM media WHERE sha256=?", slot[3])
                assert (ws.archive.folder / "media" / stored_file).read_bytes() == medium.file_bytes()
    assert {m[4] for m in media} == {"media"}
    ok = [m for m in media if m[2] == "ok"]
    assert len({m[3] for m in ok}) == len(ok) - 1       # one photo is under two posts, stored once
    assert result["counts"]["media_not_in_export"] == 1

    # Likes, followers (bob named: a mention gave his handle), following, the profile.
    assert sorted(rows(db, "SELECT target, target_url FROM interactions WHERE kind='like'")) == sorted(
        (like.tweet_id, f"https://x.com/i/web/status/{like.tweet_id}") for like in world.likes)
    assert sorted(rows(db, "SELECT kind, person_id FROM follows WHERE ended_at IS NULL")) == sorted(
        [("followers", u.account_id) for u in world.followers] + [("following", u.account_id) for u in world.following])
    assert rows(db, "SELECT handle, display_name, url FROM people WHERE person_id='42'") == [
        ("bob", "Bob B.", "https://x.com/bob")]
    assert rows(db, "SELECT url FROM people WHERE person_id='1111111111'") == [
        ("https://twitter.com/intent/user?user_id=1111111111",)]
    assert rows(db, "SELECT kind, taken_at FROM snapshots ORDER BY kind") == [
        ("followers", "2026-03-06T13:05:11Z"), ("following", "2026-03-06T13:05:11Z")]
    profile = rows(db, "SELECT native_id, username, display_name, avatar_sha256 IS NOT NULL, "
                       "banner_sha256 IS NOT NULL, profile_as_of FROM accounts")
    assert profile == [("1234567890", "ada_example", "Ada Example", 1, 1, "2026-03-06T13:05:11Z")]

    # Every data type of the manifest imported or named; the email nowhere.
    summary = " ".join(result["summary"])
    for kind in ("grokChatItem", "messageEvent", "block", "mute", "directMessages", "expandedProfile",
                 "tweetHeaders"):
        assert kind in summary
    with zipfile.ZipFile(path) as archive:
        manifest_text = archive.read("data/manifest.js").decode()
    listed = json.loads(manifest_text[manifest_text.index("=") + 1:])["dataTypes"]
    for kind in listed:
        assert kind in READ_TYPES or re.search(rf"\b{kind}\b", summary), kind
    # Named by data type, a file is not listed again among the files not read; the viewer is.
    assert not [name for name in result["not_read"] if name.startswith("data/") and name.endswith(".js")]
    assert "Your archive.html" in result["not_read"]
    assert world.email not in everything(db)
    assert world.email not in json.dumps(result)


GENERATIONS = [
    ("2022", dict(tweet_wrapper=False, pretty=False)),   # bare tweets [U], compact JSON
    ("2021", dict(parts=3, stray_part=True, part_order="shuffled", zipped=False)),
    ("2026", dict(parts=3, stray_part=True, part_order="shuffled", edit_variant="edit", note_shape="core",
                  counts="float_zero", top_folder="twitter-2026-03-06")),
    ("2026", dict(zipped=False, data_folder_only=True)),
]


@pytest.mark.parametrize(("generation", "knobs"), GENERATIONS, ids=["2022", "2021", "2026", "2026-data-folder"])
def test_every_generation_and_layout_gives_the_same_posts(tmp_path, ws, generation, knobs):
    world = sample_world()
    knobs = dict(knobs)
    data_folder_only = knobs.pop("data_folder_only", False)
    path = write_archive(tmp_path / "archive-file", world, generation=generation, **knobs)
    if data_folder_only:   # someone gives the data folder itself
        path = path / "data"

    result = import_archive(ws, path)

    assert result["status"] == "ok", result
    assert not result["errors"] or {e.get("cause") for e in result["errors"]} == {"missing"}, result["errors"]
    stored = stored_posts(ws.archive.db)
    wanted = expected_posts(world, generation)
    assert set(stored) == set(wanted)
    assert STRAY_POST_ID not in stored   # a part the manifest does not list is never read
    for post_id, post in wanted.items():
        assert stored[post_id]["text"] == post.final_text, post_id
        assert stored[post_id]["kind"] == post.kind
    if knobs.get("stray_part"):
        assert any(name.endswith("tweets-part9.js") or name.endswith("tweet-part9.js")
                   for name in result["not_read"])
    media = rows(ws.archive.db, "SELECT status, count(*) FROM post_media GROUP BY status ORDER BY status")
    assert media == [("failed", 1), ("ok", sum(len(post.media) for post in wanted.values()) - 1)]
    if knobs.get("counts") == "float_zero":
        zero = next(p for p, post in wanted.items() if post.text == "Nobody liked this")
        assert (stored[zero]["likes"], stored[zero]["shares"]) == (0, 0)


def test_without_a_manifest_the_files_are_found_by_name_and_media_by_post_id(tmp_path, ws):
    world = sample_world()
    folder = write_archive(tmp_path / "x", world, zipped=False, parts=2)
    (folder / "data" / "manifest.js").unlink()
    # A file X named otherwise than its medium says: found as the post's one video file.
    video_post = next(post for post in world.iter_posts() if post.text == "A short film")
    medium = video_post.media[0]
    media = folder / "data" / "tweets_media"
    shutil.move(media / f"{video_post.tweet_id}-{medium.file_name}", media / f"{video_post.tweet_id}-renamed.mp4")
    # A re-used photo filed under the post it was first posted with only: found there.
    again = next(post for post in world.iter_posts() if post.text == "That garden photo again")
    (media / f"{again.tweet_id}-{again.media[0].file_name}").unlink()

    result = import_archive(ws, folder)

    assert result["status"] == "ok", result
    db = ws.archive.db
    assert set(stored_posts(db)) == set(expected_posts(world))
    assert one(db, "SELECT count(*) FROM follows") == len(world.followers) + len(world.following)
    sha = one(db, "SELECT sha256 FROM post_media WHERE post_id=? AND status='ok'", video_post.tweet_id)
    assert (ws.archive.folder / "media" / one(db, "SELECT path FROM media WHERE sha256=?", sha)).read_bytes() == \
        medium.file_bytes()
    assert rows(db, "SELECT status FROM post_media WHERE post_id=?", again.tweet_id) == [("ok",)]


def test_x_archives_are_recognised_and_other_files_are_not(tmp_path):
    folder = write_archive(tmp_path / "x", sample_world(), zipped=False)
    with open_export(folder) as source:
        found = find_export(source)
    assert "data/manifest.js" in found and "data/tweets.js" in found
    assert "data/block.js" not in found   # read by nobody: named in the summary, not claimed
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    (other / "data" / "tweets.js").write_text('var tweets = [];')   # not X's wrapper
    with open_export(other) as source:
        assert find_export(source) == []


# --------------------------------------------------------------------------- written by hand

# The notes' example tweet (appendix §3), verbatim but for the media list the notes abbreviate
# (and one line wrapped).
NOTES_TWEET = """window.YTD.tweets.part0 = [ {
  "tweet" : {
    "edit_info" : { "initial" : { "editTweetIds" : [ "1590000000000000001" ],
                    "editableUntil" : "2022-11-10T10:30:00.000Z", "editsRemaining" : "5", "isEditEligible" : true } },
    "retweeted" : false,
    "source" : "<a href=\\"https://mobile.twitter.com\\" rel=\\"nofollow\\">Twitter Web App</a>",
    "entities" : {
      "hashtags" : [ { "text" : "garden", "indices" : [ "18", "25" ] } ],
      "symbols" : [ ],
      "user_mentions" : [ ],
      "urls" : [ ],
      "media" : [ { "id_str" : "1590000000000000099", "id" : "1590000000000000099", "type" : "photo",
                    "media_url" : "http://pbs.twimg.com/media/FgAbCdEfGhIjKlM.jpg",
                    "media_url_https" : "https://pbs.twimg.com/media/FgAbCdEfGhIjKlM.jpg",
                    "url" : "https://t.co/AbCdEf1234", "display_url" : "pic.twitter.com/AbCdEf1234",
                    "expanded_url" : "https://twitter.com/alice_example/status/1590000000000000001/photo/1",
                    "indices" : [ "26", "49" ],
                    "sizes" : { "large" : { "w" : "2048", "h" : "1536", "resize" : "fit" },
                                "thumb" : { "w" : "150", "h" : "150", "resize" : "crop" } } } ]
    },
    "display_text_range" : [ "0", "25" ],
    "favorite_count" : "7",
    "id_str" : "1590000000000000001",
    "truncated" : false,
    "retweet_count" : "1",
    "id" : "1590000000000000001",
    "possibly_sensitive" : false,
    "created_at" : "Thu Nov 10 09:30:00 +0000 2022",
    "favorited" : false,
    "full_text" : "Seedlings are up! #garden https://t.co/AbCdEf1234",
    "lang" : "en"
  }
} ]"""
NOTES_FOLLOWERS = """window.YTD.follower.part0 = [ {
  "follower" : { "accountId" : "1111111111", "userLink" : "https://twitter.com/intent/user?user_id=1111111111" }
} ]"""
NOTES_ACCOUNT = """window.YTD.account.part0 = [ {
  "account" : { "email" : "alice@example.com", "createdVia" : "web", "username" : "alice_example",
                "accountId" : "1234567890", "createdAt" : "2009-08-01T03:18:30.000Z",
                "accountDisplayName" : "Alice" }
} ]"""


def hand_made(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp_path / "hand"
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def test_the_notes_examples_import(tmp_path, ws):
    photo = b"\xff\xd8\xff\xe0 seedlings \xff\xd9"
    folder = hand_made(tmp_path, {"data/tweets.js": NOTES_TWEET, "data/follower.js": NOTES_FOLLOWERS,
                                  "data/account.js": NOTES_ACCOUNT,
                                  "data/tweets_media/1590000000000000001-FgAbCdEfGhIjKlM.jpg": photo})

    result = import_archive(ws, folder)

    assert result["status"] == "ok", result
    db = ws.archive.db
    assert rows(db, "SELECT post_id, kind, text, created_at, like_count, share_count, url FROM posts") == [
        ("1590000000000000001", "text", "Seedlings are up! #garden", "2022-11-10T09:30:00Z", 7, 1,
         "https://x.com/alice_example/status/1590000000000000001")]
    sha = one(db, "SELECT sha256 FROM post_media WHERE status='ok'")
    assert (ws.archive.folder / "media" / one(db, "SELECT path FROM media WHERE sha256=?", sha)).read_bytes() == photo
    assert rows(db, "SELECT kind, person_id FROM follows") == [("followers", "1111111111")]
    assert rows(db, "SELECT native_id, username, display_name FROM accounts") == [
        ("1234567890", "alice_example", "Alice")]
    assert "alice@example.com" not in everything(db)


def tweet(tweet_id: str, text: str, **fields) -> dict:
    return {"tweet": {"id_str": tweet_id, "id": tweet_id, "created_at": "Thu Nov 10 09:30:00 +0000 2022",
                      "full_text": text, "favorite_count": "0", "retweet_count": "0", "entities": {}, **fields}}


def ytd(name: str, items: list) -> str:
    return f"window.YTD.{name}.part0 = " + json.dumps(items, indent=1, separators=(",", " : "))


def test_bad_items_and_files_are_reported_and_the_rest_imports(tmp_path, ws):
    followers = ytd("follower", [{"follower": {"accountId": str(1000 + n)}} for n in range(3)])
    folder = hand_made(tmp_path, {
        "data/account.js": NOTES_ACCOUNT,
        "data/tweets.js": ytd("tweets", [tweet("1590000000000000001", "fine"), {"tweet": {"full_text": "no id"}},
                                         ["not", "an", "object"], tweet("1590000000000000002", "bad date",
                                                                        created_at="yesterday"),
                                         tweet("1590000000000000003", "fine too")]),
        "data/follower.js": followers[: followers.rindex("1002")],     # cut short
        "data/following.js": "window.YTD.following.part0 [ ]",          # no "="
        "data/like.js": ytd("like", [{"like": {"tweetId": "55", "fullText": "a liked post"}}, {"like": {}}]),
    })

    result = import_archive(ws, folder)

    assert result["status"] == "ok", result
    db = ws.archive.db
    assert rows(db, "SELECT post_id FROM posts ORDER BY post_id") == [("1590000000000000001",), ("1590000000000000003",)]
    errors = {e["item"]: e["error"] for e in result["errors"]}
    assert "no id_str" in errors["item 1 of data/tweets.js"]
    assert "expected an object, found list" in errors["item 2 of data/tweets.js"]
    assert "unreadable date 'yesterday'" in errors["post 1590000000000000002 in data/tweets.js"]
    cut = next(error for item, error in errors.items() if item.startswith("follower in data/follower.js"))
    assert "data/follower.js" in cut and "truncated" in cut
    assert "wrapper" in next(error for item, error in errors.items() if "data/following.js" in item)
    assert "a like without a tweetId" in errors["item 1 of data/like.js"]
    # What the cut list holds is kept, as a partial snapshot: nobody is taken for lost.
    assert rows(db, "SELECT kind, complete, member_count FROM snapshots") == [("followers", 0, 2)]
    assert rows(db, "SELECT target FROM interactions") == [("55",)]
    assert "alice@example.com" not in everything(db) + json.dumps(result)


def test_an_endless_item_is_refused_without_holding_it(tmp_path, ws, monkeypatch):
    from archiver_connectors.x import ytd as reader

    monkeypatch.setattr(reader, "MAX_ITEM_BYTES", 256 * 1024)
    huge = tweet("1590000000000000002", "x" * (2 * 2**20))
    folder = hand_made(tmp_path, {"data/tweets.js": ytd("tweets", [tweet("1590000000000000001", "before"), huge,
                                                                   tweet("1590000000000000003", "after")])})

    result = import_archive(ws, folder)

    assert result["status"] == "ok", result
    assert rows(ws.archive.db, "SELECT post_id FROM posts") == [("1590000000000000001",)]
    [error] = result["errors"]
    assert "data/tweets.js" in error["error"] and "longer than" in error["error"]


def test_a_manifest_naming_files_outside_the_archive_is_not_followed(tmp_path, ws):
    world = sample_world()
    folder = write_archive(tmp_path / "x", world, zipped=False)
    manifest_path = folder / "data" / "manifest.js"
    text = manifest_path.read_text()
    manifest = json.loads(text[text.index("=") + 1:])
    manifest["dataTypes"]["block"]["files"][0]["fileName"] = "../../outside/block.js"
    manifest["dataTypes"]["mute"]["files"][0]["fileName"] = "/etc/passwd"
    manifest["dataTypes"]["follower"]["files"][0]["fileName"] = "data/../../follower.js"
    manifest_path.write_text("window.__THAR_CONFIG = " + json.dumps(manifest))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "block.js").write_text("window.YTD.block.part0 = [ ]")

    result = import_archive(ws, folder)

    assert result["status"] == "ok", result
    refused = [e for e in result["errors"] if "outside the archive" in e["error"]]
    assert len(refused) == 3
    assert one(ws.archive.db, "SELECT count(*) FROM snapshots WHERE kind='followers'") == 0
    assert set(stored_posts(ws.archive.db)) == set(expected_posts(world))


# --------------------------------------------------------------------------- the mapping


def test_values_as_the_archive_writes_them():
    assert [mapping.count(v) for v in ("3", "0.0", "12.0", None, "", "n/a", 7)] == [3, 0, 12, None, None, None, 7]
    assert mapping.x_date("Fri Mar 06 13:02:05 +0000 2026") == "2026-03-06T13:02:05Z"
    assert mapping.x_date("2022-11-10T10:30:00.000Z") == "2022-11-10T10:30:00Z"
    assert mapping.x_date("Thu Nov 10 09:30:00 +0100 2022") == "2022-11-10T08:30:00Z"
    for unreadable in ("yesterday", "Mon Feb 30 09:30:00 +0000 2022", ["Fri Mar 06 13:02:05 +0000 2026"]):
        with pytest.raises(ValueError):
            mapping.x_date(unreadable)
    video = {"type": "video", "video_info": {"variants": [
        {"bitrate": "632000", "content_type": "video/mp4", "url": "https://video.twimg.com/v/a.mp4?tag=16"},
        {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/v/pl.m3u8?tag=16"},
        {"bitrate": "2176000", "content_type": "video/mp4", "url": "https://video.twimg.com/v/best.mp4?tag=16"},
        {"bitrate": "950000", "content_type": "video/mp4", "url": "https://video.twimg.com/v/c.mp4?tag=16"}]}}
    assert mapping.media_file_name(video) == "best.mp4"
    assert mapping.media_url(video) == "https://video.twimg.com/v/best.mp4"


def test_text_kind_and_links_of_one_tweet():
    quote = {"id_str": "10", "full_text": "So true &amp; more https://t.co/q https://t.co/m",
             "entities": {"urls": [{"url": "https://t.co/q", "expanded_url": "https://twitter.com/dave/status/9"}]},
             "extended_entities": {"media": [{"url": "https://t.co/m", "type": "photo",
                                              "expanded_url": "https://x.com/ada/status/10/photo/1"}]}}
    links = mapping.links_of(quote)
    assert mapping.text_of(quote) == "So true & more https://twitter.com/dave/status/9"
    assert mapping.kind_of(quote, "10", links) == "quote"
    own_media_only = {"id_str": "11", "full_text": "x", "entities": {"urls": [
        {"url": "https://t.co/o", "expanded_url": "https://x.com/ada/status/11/photo/1"}]}}
    assert mapping.kind_of(own_media_only, "11", mapping.links_of(own_media_only)) == "text"
    reply_quoting = dict(quote, in_reply_to_status_id_str="8", in_reply_to_user_id_str="42",
                         in_reply_to_screen_name="bob")
    assert mapping.kind_of(reply_quoting, "10", links) == "reply"
    repost = dict(reply_quoting, full_text="RT @carol: hello", retweeted=False)
    assert mapping.kind_of(repost, "10", links) == "boost"


def test_a_long_post_without_tweet_id_joins_its_post_by_time_and_text(tmp_path, ws):
    whole = "An archive of my own, " * 20 + "and the end https://example.org/end"
    cut = whole[:270] + "… https://t.co/note"
    note = {"noteTweet": {"noteTweetId": "1590000000000000900", "createdAt": "2022-11-10T09:30:01.000Z",
                          "core": {"text": whole.replace("https://example.org/end", "https://t.co/end"),
                                   "urls": [{"shortUrl": "https://t.co/end", "expandedUrl": "https://example.org/end"}],
                                   "mentions": [], "hashtags": []}}}
    stray = {"noteTweet": {"noteTweetId": "1590000000000000901", "createdAt": "2022-11-11T09:30:00.000Z",
                           "core": {"text": "A long post whose post is gone"}}}
    folder = hand_made(tmp_path, {
        "data/tweets.js": ytd("tweets", [tweet("1590000000000000001", cut, entities={"urls": [
            {"url": "https://t.co/note", "expanded_url": "https://twitter.com/i/web/status/1590000000000000001"}]})]),
        "data/note-tweet.js": ytd("note_tweet", [note, stray]),
    })

    result = import_archive(ws, folder)

    assert result["status"] == "ok", result
    [(text, kind, raw)] = rows(ws.archive.db, "SELECT text, kind, raw FROM posts")
    assert (text, kind) == (whole, "text")
    assert next(iter(json.loads(raw).values()))["note"]["noteTweetId"] == "1590000000000000900"
    [error] = result["errors"]
    assert error["item"] == "long post 1590000000000000901 of note-tweet.js"

