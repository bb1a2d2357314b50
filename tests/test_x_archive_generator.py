"""The X archive generator (x/sim/export.py) writes the shapes ../shared/platforms/x-twitter.md
shows: read back with json after stripping the ``window.YTD… = `` wrapper, never with the
importer."""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import pytest

from archiver_connectors.x.sim.export import (
    STRAY_POST_ID,
    XMedia,
    XPost,
    XWorld,
    big_world,
    sample_world,
    tco_link,
    write_archive,
)

WRAPPER = re.compile(r"^window\.(YTD\.[a-z_]+\.part\d+|__THAR_CONFIG) = ")


def read_js(path: Path) -> tuple[str, object]:
    """A data file's global name and its JSON, the wrapper stripped."""
    text = path.read_text(encoding="utf-8")
    found = WRAPPER.match(text)
    assert found, f"{path.name} does not start with the window.YTD wrapper: {text[:60]!r}"
    return found.group(1), json.loads(text[found.end():])


def tweets_of(data: Path, stem: str = "tweets") -> dict[str, dict]:
    """Every tweet of the listed tweets files, by id."""
    found = {}
    for path in sorted(data.iterdir()):
        if not re.fullmatch(rf"{stem}(-part\d)?\.js", path.name) or "part9" in path.name:
            continue
        _, records = read_js(path)
        for record in records:
            found[record["tweet"]["id_str"]] = record["tweet"]
    return found


@pytest.fixture(scope="module")
def world() -> XWorld:
    return sample_world()


@pytest.fixture(scope="module")
def archive_2026(tmp_path_factory, world) -> Path:
    return write_archive(tmp_path_factory.mktemp("x26") / "archive", world, zipped=False, parts=2,
                         stray_part=True, part_order="shuffled")


def test_the_2026_archive_has_the_layout_and_wrappers_the_notes_show(archive_2026):
    data = archive_2026 / "data"
    assert (archive_2026 / "Your archive.html").is_file() and (archive_2026 / "assets").is_dir()
    for name in ("manifest.js", "account.js", "profile.js", "tweets.js", "tweets-part1.js", "tweet-headers.js",
                 "note-tweet.js", "deleted-tweets.js", "deleted-tweet-headers.js", "deleted-note-tweet.js",
                 "community-tweet.js", "follower.js", "following.js", "like.js", "block.js", "mute.js",
                 "grok-chat-item.js", "message-event.js", "README.txt"):
        assert (data / name).is_file(), name
    assert read_js(data / "tweets-part1.js")[0] == "YTD.tweets.part1"
    assert read_js(data / "tweet-headers.js")[0] == "YTD.tweet_headers.part0"
    # An empty file is the wrapper and `[ ]` (33 bytes for deleted-note-tweet.js's kin).
    assert (data / "mute.js").read_text() == "window.YTD.mute.part0 = [ ]"
    assert len((data / "deleted-note-tweet.js").read_bytes()) == len("window.YTD.deleted_note_tweet.part0 = [ ]")
    assert '"favorite_count" : "' in (data / "tweets.js").read_text()   # " : " separators, string numbers


def test_the_manifest_lists_parts_counts_and_media_only_types(archive_2026, world):
    name, config = read_js(archive_2026 / "data" / "manifest.js")
    assert name == "__THAR_CONFIG" and isinstance(config, dict)
    assert config["userInfo"] == {"accountId": "1234567890", "userName": "ada_example", "displayName": "Ada Example"}
    assert config["archiveInfo"]["generationDate"] == "2026-03-06T13:05:11.412Z"
    assert config["archiveInfo"]["sizeBytes"].isdigit()
    types = config["dataTypes"]
    files = types["tweets"]["files"]
    assert {f["fileName"] for f in files} == {"data/tweets.js", "data/tweets-part1.js"}   # not the stray part9
    assert all(isinstance(f["count"], str) for f in files)
    assert sum(int(f["count"]) for f in files) == len(tweets_of(archive_2026 / "data"))
    for camel, folder in (("tweetsMedia", "tweets_media"), ("deletedTweetsMedia", "deleted_tweets_media"),
                          ("profileMedia", "profile_media"), ("communityTweetMedia", "community_tweet_media")):
        assert types[camel] == {"mediaDirectory": f"data/{folder}"}           # media-only: no files
    assert types["tweets"]["mediaDirectory"] == "data/tweets_media"          # and on the type itself
    assert list(types) == sorted(types)
    for camel in ("grokChatItem", "messageEvent", "block", "mute", "noteTweet", "communityTweet", "like"):
        assert types[camel]["files"][0]["fileName"].startswith("data/"), camel
    # Every listed file exists.
    for entry in types.values():
        for listed in entry.get("files", []):
            assert (archive_2026 / listed["fileName"]).is_file(), listed


def test_the_stray_part_is_written_but_not_listed(archive_2026):
    name, records = read_js(archive_2026 / "data" / "tweets-part9.js")
    assert name == "YTD.tweets.part9" and records[0]["tweet"]["id_str"] == STRAY_POST_ID


def test_tweets_have_the_2026_values(archive_2026, world):
    tweets = tweets_of(archive_2026 / "data")
    live = [p for p in world.posts if not p.deleted_at and not p.community]
    assert len(tweets) == sum(len(p.version_ids) for p in live)
    for tweet in tweets.values():
        assert tweet["retweeted"] is False and tweet["id"] == tweet["id_str"]
        assert re.fullmatch(r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \+0000 \d{4}", tweet["created_at"])
        assert tweet["edit_info"]["initial"]["isEditEligible"] in (False, True)
        assert all(isinstance(n, str) for n in tweet["display_text_range"])
    by_text = {t["full_text"]: t for t in tweets.values()}
    escaped = next(t for text, t in by_text.items() if text.startswith("Tea &amp; cake &lt;3"))
    url = escaped["entities"]["urls"][0]
    assert url["expanded_url"] == "https://example.org/cafe?a=1&b=2" and url["url"] in escaped["full_text"]
    start, end = map(int, url["indices"])
    assert escaped["full_text"][start:end] == url["url"]
    assert escaped["entities"]["hashtags"][0]["text"] == "sunday"
    repost = next(t for text, t in by_text.items() if text.startswith("RT @carol:"))
    assert repost["retweeted"] is False and repost["entities"]["user_mentions"][0]["id_str"] == "4343"
    reply = next(t for t in tweets.values() if t.get("in_reply_to_screen_name") == "bob")
    assert reply["in_reply_to_user_id_str"] == "42" and reply["display_text_range"][0] == "5"
    withheld = next(t for t in tweets.values() if "withheld_in_countries" in t)
    assert withheld["withheld_in_countries"] == ["IN"] and withheld["possibly_sensitive"] is True
    quote = next(t for t in tweets.values() if any("/dave/status/" in u["expanded_url"]
                                                   for u in t["entities"]["urls"]))
    assert quote["entities"]["urls"][0]["expanded_url"].startswith("https://x.com/dave/status/")


def test_media_names_hosts_and_the_chosen_video_variant(archive_2026, world):
    data = archive_2026 / "data"
    tweets = tweets_of(data)
    names = {p.name for p in (data / "tweets_media").iterdir()}
    video_tweet = next(t for t in tweets.values()
                       if t.get("extended_entities", {}).get("media", [{}])[0].get("type") == "video")
    medium = video_tweet["extended_entities"]["media"][0]
    variants = medium["video_info"]["variants"]
    mp4s = [v for v in variants if v["content_type"] == "video/mp4"]
    assert len(mp4s) == 4 and any(v["content_type"] == "application/x-mpegURL" for v in variants)
    assert [int(v["bitrate"]) for v in mp4s] != sorted(int(v["bitrate"]) for v in mp4s)   # not pre-sorted
    best = max(mp4s, key=lambda v: int(v["bitrate"]))["url"].split("?")[0].rsplit("/", 1)[1]
    assert f"{video_tweet['id_str']}-{best}" in names
    assert medium["expanded_url"].startswith("https://x.com/ada_example/status/")
    assert medium["display_url"].startswith("pic.x.com/")
    gif = next(t for t in tweets.values()
               if t.get("extended_entities", {}).get("media", [{}])[0].get("type") == "animated_gif")
    assert gif["extended_entities"]["media"][0]["video_info"]["variants"][0]["bitrate"] == "0"
    four = next(t for t in tweets.values() if len(t.get("extended_entities", {}).get("media", [])) == 4)
    assert len(four["entities"]["media"]) == 1                     # entities.media: the first only
    for medium in four["extended_entities"]["media"]:
        assert f"{four['id_str']}-{medium['media_url'].rsplit('/', 1)[1]}" in names
    # The same basename under two tweet ids, identical bytes.
    basenames = [n.split("-", 1)[1] for n in names]
    twice = {b for b in basenames if basenames.count(b) == 2}
    assert len(twice) == 1
    shared = twice.pop()
    same = sorted(p for p in (data / "tweets_media").iterdir() if p.name.endswith(shared))
    assert same[0].read_bytes() == same[1].read_bytes()
    # A medium named in its post but absent from the archive.
    missing = next(t for t in tweets.values() if t["full_text"].startswith("This one's photo is missing"))
    assert not any(n.startswith(missing["id_str"]) for n in names)


def test_edits_notes_deleted_and_community_posts(archive_2026, world):
    data = archive_2026 / "data"
    tweets = tweets_of(data)
    edited = next(p for p in world.posts if p.edits)
    for tweet_id in edited.version_ids:
        assert tweets[tweet_id]["edit_info"]["initial"]["editTweetIds"] == edited.version_ids
    note_post = next(p for p in world.posts if p.is_note)
    _, notes = read_js(data / "note-tweet.js")
    assert notes[0]["noteTweet"]["tweetId"] == note_post.tweet_id
    note_text = notes[0]["noteTweet"]["noteTweetResults"]["text"]
    assert note_text.replace(tco_link(note_post.tweet_id, note_post.links[0]), note_post.links[0]) == note_post.text
    assert tweets[note_post.tweet_id]["full_text"].endswith(
        tweets[note_post.tweet_id]["entities"]["urls"][-1]["url"])   # cut short, linking to the whole
    assert len(tweets[note_post.tweet_id]["full_text"]) < len(note_post.text)
    _, deleted = read_js(data / "deleted-tweets.js")
    gone = next(p for p in world.posts if p.deleted_at)
    assert deleted[0]["tweet"]["id_str"] == gone.tweet_id and "deleted_at" in deleted[0]["tweet"]
    assert (data / "deleted_tweets_media" / f"{gone.tweet_id}-{gone.media[0].file_name}").is_file()
    _, headers = read_js(data / "deleted-tweet-headers.js")
    assert set(headers[0]["tweet"]) == {"tweet_id", "user_id", "created_at", "deleted_at"}
    _, community = read_js(data / "community-tweet.js")
    assert community[0]["tweet"]["scopes"] == {"followers": False}
    assert gone.tweet_id not in tweets


def test_people_likes_account_and_profile(archive_2026, world):
    data = archive_2026 / "data"
    _, followers = read_js(data / "follower.js")
    assert followers[0] == {"follower": {"accountId": "42",
                                         "userLink": "https://twitter.com/intent/user?user_id=42"}}
    _, following = read_js(data / "following.js")
    assert len(following) == len(world.following) and "following" in following[0]
    _, likes = read_js(data / "like.js")
    assert likes[0]["like"]["expandedUrl"] == f"https://twitter.com/i/web/status/{likes[0]['like']['tweetId']}"
    assert "fullText" in likes[0]["like"] and "fullText" not in likes[-1]["like"]
    _, account = read_js(data / "account.js")
    assert account[0]["account"]["email"] == world.email and account[0]["account"]["createdVia"] == "oauth:3033300"
    _, profile = read_js(data / "profile.js")
    description = profile[0]["profile"]["description"]
    assert description["website"].startswith("https://t.co/") and "https://t.co/" in description["bio"]
    avatar = profile[0]["profile"]["avatarMediaUrl"].rsplit("/", 1)[1]
    assert (data / "profile_media" / f"1234567890-{avatar}").is_file()


def test_older_generations(tmp_path, world):
    old = write_archive(tmp_path / "2021", world, generation="2021", zipped=False, parts=2)
    data = old / "data"
    assert (data / "tweet.js").is_file() and (data / "tweet-part1.js").is_file() and not (data / "tweets.js").exists()
    assert read_js(data / "tweet-part1.js")[0] == "YTD.tweet.part1"
    assert (data / "tweet_media").is_dir() and not (data / "deleted-tweets.js").exists()
    tweets = tweets_of(data, "tweet")
    assert all("edit_info" not in t for t in tweets.values())
    _, config = read_js(data / "manifest.js")
    assert config["dataTypes"]["tweet"]["mediaDirectory"] == "data/tweet_media"
    mid = write_archive(tmp_path / "2022", world, generation="2022", zipped=False)
    tweets = tweets_of(mid / "data")
    media = [m for t in tweets.values() for m in t.get("extended_entities", {}).get("media", [])]
    assert all(m["expanded_url"].startswith("https://twitter.com/") for m in media)
    assert all(m["display_url"].startswith("pic.twitter.com/") for m in media)
    assert not (mid / "data" / "note-tweet.js").exists() and (mid / "data" / "deleted-tweets.js").is_file()
    note_post = next(p for p in world.posts if p.is_note)
    assert tweets[note_post.tweet_id]["full_text"].startswith("Why I keep")   # no notes: the whole text
    _, config = read_js(mid / "data" / "manifest.js")
    assert "tweetsMedia" not in config["dataTypes"] and "grokChatItem" not in config["dataTypes"]
    assert config["dataTypes"]["tweets"]["mediaDirectory"] == "data/tweets_media"


def test_knobs_edit_variant_note_shape_counts(tmp_path, world):
    root = write_archive(tmp_path / "k", world, zipped=False, edit_variant="edit", note_shape="core",
                         counts="zeroed")
    tweets = tweets_of(root / "data")
    edited = next(p for p in world.posts if p.edits)
    assert "initial" in tweets[edited.tweet_id]["edit_info"]
    later = tweets[edited.edits[0].tweet_id]["edit_info"]["edit"]
    assert later["initialTweetId"] == edited.tweet_id and later["editControlInitial"]["editTweetIds"] == edited.version_ids
    _, notes = read_js(root / "data" / "note-tweet.js")
    assert "tweetId" not in notes[0]["noteTweet"] and notes[0]["noteTweet"]["core"]["text"].startswith("Why I keep")
    assert {t["favorite_count"] for t in tweets.values()} == {"0.0"}
    _, bare = read_js(write_archive(tmp_path / "b", world, zipped=False, tweet_wrapper=False) / "data" / "tweets.js")
    assert isinstance(bare, list) and "tweet" not in bare[0] and "id_str" in bare[0]
    floats = tweets_of(write_archive(tmp_path / "f", world, zipped=False, counts="float_zero") / "data")
    zero = next(t for t in floats.values() if t["full_text"] == "Nobody liked this")
    assert zero["favorite_count"] == "0.0" and zero["retweet_count"] == "0.0"


def test_zipped_is_deterministic_and_holds_the_folder(tmp_path, world):
    first = write_archive(tmp_path / "a.zip", world, parts=3, stray_part=True)
    second = write_archive(tmp_path / "b.zip", world, parts=3, stray_part=True)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = set(archive.namelist())
        assert {"Your archive.html", "data/manifest.js", "data/tweets.js", "data/tweets-part2.js",
                "data/tweets-part9.js"} <= names
        assert archive.read("data/mute.js") == b"window.YTD.mute.part0 = [ ]"
    nested = write_archive(tmp_path / "c.zip", world, top_folder="twitter-2026-03-06")
    with zipfile.ZipFile(nested) as archive:
        assert "twitter-2026-03-06/data/manifest.js" in archive.namelist()
    assert not list(tmp_path.glob(".x-archive-*"))          # the staging folder is gone


def test_a_world_of_generated_posts_streams_and_splits_by_size(tmp_path):
    world = big_world(posts=300, text_bytes=200)
    assert callable(world.posts)
    root = write_archive(tmp_path / "big", world, zipped=False, part_bytes=100_000, media_files=False)
    data = root / "data"
    parts = sorted(data.glob("tweets*.js"))
    assert len(parts) >= 3
    assert all(p.stat().st_size < 100_000 + 5_000 for p in parts)
    tweets = tweets_of(data)
    assert len(tweets) == 300
    ids = [int(i) for i in tweets]
    assert ids != sorted(ids) and ids != sorted(ids, reverse=True)     # unsorted, as X's are
    _, config = read_js(data / "manifest.js")
    assert sum(int(f["count"]) for f in config["dataTypes"]["tweets"]["files"]) == 300
    compact = write_archive(tmp_path / "compact", world, zipped=False, media_files=False, pretty=False)
    assert tweets_of(compact / "data") == tweets


def test_an_inconsistent_world_is_refused(tmp_path):
    post = XPost("1", dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc), "no link here", links=["https://example.org/"])
    with pytest.raises(ValueError, match="not in its text"):
        write_archive(tmp_path / "bad", XWorld(posts=[post]), zipped=False)
    with pytest.raises(ValueError, match="generation"):
        write_archive(tmp_path / "bad2", XWorld(), generation="2019")
    assert XMedia("k", "1", kind="photo").file_name == "k.jpg"
