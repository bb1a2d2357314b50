"""The machinery Meta's three exports share (archiver_connectors.meta.export), on the shapes
of shared/platforms/instagram.md §6, facebook.md §6 and threads.md §6.

Every export here is written by the test into tmp_path, as a zip and as an extracted
folder, and opened by the core's real ``open_export``: Facebook's 2022 layout
(``posts/your_posts_1.json``) and 2024 layout (``your_facebook_activity/posts/
your_posts__check_ins__photos_and_videos_1.json``) with Meta's mojibake in the text and
in the media ``uri`` while the files' own names are real UTF-8, a post whose file is
missing, Threads' ``threads_and_replies.json`` (``text_post_app_…`` keys) inside an
Instagram download, and Instagram's own layouts as its export builder writes them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from pathlib import Path

import pytest

from archiver.sync.imports import NotInExport, open_export
from archiver_connectors.instagram.sim.export import export_files, make_account, write_export
from archiver_connectors.meta.export import (
    MediaIndex,
    both_layouts,
    clean_text,
    entry_pattern,
    epoch_iso,
    fix_strings,
    fix_text,
    iter_items,
    list_prefixes,
    matching,
    media_items,
    media_role,
    mime_hint,
    post_text,
    string_map,
    taken_at,
    username_of,
)

EXPORTED_AT = 1_717_200_000          # 2024-06-01T00:00:00Z: when Meta built the export


def meta(text: str) -> str:
    """``text`` the way Meta writes it: each UTF-8 byte as a Latin-1 code point."""
    return text.encode("utf-8").decode("latin-1")


def write(path: Path, files: dict[str, object], *, top_folder: str = "", moment: int = EXPORTED_AT) -> Path:
    """An export at ``path``: a zip when it ends in .zip, else a folder. JSON values are
    written as Meta writes them (ASCII, "\\u00c3\\u00a9"); bytes are written as they are.
    Entry names are real UTF-8, as in Meta's zips."""
    prefix = f"{top_folder}/" if top_folder else ""
    encoded = {prefix + name: data if isinstance(data, bytes) else json.dumps(data).encode("ascii")
               for name, data in files.items()}
    if path.suffix == ".zip":
        stamp = dt.datetime.fromtimestamp(moment, dt.timezone.utc).timetuple()[:6]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in encoded.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=stamp), data)
        return path
    for name, data in encoded.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.utime(target, (moment, moment))
    return path


def export_path(tmp_path: Path, zipped: bool, stem: str = "facebook-jane-2024-06-01-AbCd") -> Path:
    return tmp_path / (f"{stem}.zip" if zipped else stem)


def no_reports():
    reports: list[tuple[str, str]] = []
    return reports, lambda item, error: reports.append((item, error))


def read_all(source, name: str, what: str = "items", wrappers=()) -> list[dict]:
    reports, report = no_reports()
    items = list(iter_items(source, name, report, what, wrappers))
    assert reports == []
    return items


def opened(ref) -> bytes:
    with ref.opener() as handle:
        return handle.read()


# --------------------------------------------------------------------------- text


def test_fix_text_repairs_what_round_trips_and_leaves_the_rest():
    assert fix_text(meta("café au lait ☕")) == "café au lait ☕"
    assert fix_text("\u00f0\u009f\u0099\u008f") == "🙏"                         # threads.md §6.5
    assert fix_text("tilf\u00c3\u00b8jet") == "tilføjet"                         # facebook.md §6.5
    assert fix_text("café") == "café"             # already right: é alone is not UTF-8
    assert fix_text("😀 " + meta("é")) == "😀 " + meta("é")   # not all Latin-1: left alone
    # A partly hand-fixed string (real umlaut beside mojibake, threads.md §6.5) stays as it is.
    assert fix_text("Müller " + meta("é")) == "Müller " + meta("é")
    assert fix_text("plain") == "plain" and fix_text(None) is None   # type: ignore[arg-type]


def test_fix_strings_repairs_keys_values_and_nesting_and_keeps_other_types():
    value = {meta("Comentário"): [meta("olá"), {"n": 3, "ok": True, meta("é"): None}], "t": 1.5}
    assert fix_strings(value) == {"Comentário": ["olá", {"n": 3, "ok": True, "é": None}], "t": 1.5}
    assert clean_text(meta("  Zoë  ")) == "Zoë"
    assert clean_text("   ") is None and clean_text(None) is None and clean_text(42) == "42"


# --------------------------------------------------------------------------- Facebook, both layouts

FB_2022_POSTS = entry_pattern(r"your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_\d+\.json",
                              r"posts/your_posts_\d+\.json")
FB_COMMENTS = both_layouts("your_facebook_activity", r"comments_and_reactions/comments\.json")
PHOTO = "Fotky z časové osy"            # facebook.md §6.5: a folder name with accents
JPEG = b"\xff\xd8\xff\xe0 a jpeg"
PNG = b"\x89PNG\r\n\x1a\n a png"


def facebook_post(when: int, text: str | None, *uris: str) -> dict:
    """One post of your_posts_1.json (facebook.md §6.2), its strings as Meta writes them."""
    post: dict = {"timestamp": when, "title": meta("Jane Example har tilføjet et nyt billede."),
                  "data": ([{"post": meta(text)}] if text else []) + [{"update_timestamp": when + 60}]}
    if uris:
        post["attachments"] = [{"data": [{"media": {"uri": meta(uri), "creation_timestamp": when, "title": ""}}
                                         for uri in uris]}]
    return post


def facebook_2022(tmp_path: Path, zipped: bool, top_folder: str = "") -> tuple[Path, list[dict]]:
    """The 2020–2022 layout: files from the export root, uris relative to it."""
    posts = [facebook_post(1354805114, "Sne sne! ❄️", f"posts/media/{PHOTO}/28819_n_1251667781858.jpg"),
             facebook_post(1354900000, "Gone but kept", "posts/media/your_posts/manglende_ø_n_1.jpg"),
             facebook_post(1355000000, None, f"posts/media/{PHOTO}/28820_n_1251667781859 (2).png")]
    files = {"posts/your_posts_1.json": posts,
             f"posts/media/{PHOTO}/28819_n_1251667781858.jpg": JPEG,
             f"posts/media/{PHOTO}/28820_n_1251667781859 (2).png": PNG,
             "comments_and_reactions/comments.json": {"comments_v2": [
                 {"timestamp": 1257938047, "title": meta("Jane Example commented on Åse's post."),
                  "data": [{"comment": {"timestamp": 1257938047, "comment": meta("davs :i 😀"),
                                        "author": "Jane Example"}}]},
                 {"timestamp": 1260359515, "title": "Jane Example commented on Other Person's post."}]},
             "friends_and_followers/friends.json": {"friends_v2": [{"name": meta("Åse Ølstad"), "timestamp": 1609459200}]}}
    return write(export_path(tmp_path, zipped), files, top_folder=top_folder), posts


def facebook_2024(tmp_path: Path, zipped: bool, top_folder: str = "") -> Path:
    """The 2024+ layout: files below your_facebook_activity/, uris already prefixed by it
    (one written root-relative, as older tools do), posts split over _1 and _2."""
    media = f"your_facebook_activity/posts/media/{PHOTO}"
    files = {
        "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json":
            [facebook_post(1714587751, "Første indlæg 🌅", f"{media}/a_n_1.jpg")],
        "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_2.json":
            [facebook_post(1714587000, "Andet", f"posts/media/{PHOTO}/b_n_2.png")],   # root-relative
        f"{media}/a_n_1.jpg": JPEG,
        f"{media}/b_n_2.png": PNG,
        "your_facebook_activity/comments_and_reactions/comments.json": {"comments_v2": [
            {"timestamp": 1700000000, "data": [{"comment": {"timestamp": 1700000000, "comment": meta("Tak! 🙏")}}]}]},
        "connections/friends/your_friends.json": {"friends_v2": [{"name": meta("Bjørn"), "timestamp": 1690000000}]},
    }
    return write(export_path(tmp_path, zipped), files, top_folder=top_folder)


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "folder"])
@pytest.mark.parametrize("top_folder", ["", "facebook-jane-2024-06-01"], ids=["root", "top-folder"])
def test_facebook_2022_layout_text_and_mojibake_uris_resolve_to_the_real_utf8_files(tmp_path, zipped, top_folder):
    path, _posts = facebook_2022(tmp_path, zipped, top_folder)
    with open_export(path) as source:
        [posts_file] = matching(source, FB_2022_POSTS)
        assert posts_file.endswith("posts/your_posts_1.json")
        posts = read_all(source, posts_file, "posts")
        assert [p["data"][0].get("post") for p in posts] == ["Sne sne! ❄️", "Gone but kept", None]
        assert posts[0]["title"] == "Jane Example har tilføjet et nyt billede."
        assert [epoch_iso(p["timestamp"]) for p in posts] == [
            "2012-12-06T14:45:14Z", "2012-12-07T17:06:40Z", "2012-12-08T20:53:20Z"]

        index = MediaIndex(source)
        uris = [p["attachments"][0]["data"][0]["media"]["uri"] for p in posts]
        assert uris[0] == f"posts/media/{PHOTO}/28819_n_1251667781858.jpg"     # repaired by iter_items
        first = index.ref(uris[0], media_role(uris[0]), 0)
        assert first.url == f"{top_folder}/posts/media/{PHOTO}/28819_n_1251667781858.jpg".lstrip("/")
        assert opened(first) == JPEG and first.role == "image" and first.mime_hint == "image/jpeg"
        third = index.ref(uris[2], "image", 0)
        assert opened(third) == PNG and third.mime_hint == "image/png"

        comments = read_all(source, matching(source, FB_COMMENTS)[0], "comments", ("comments_v2",))
        assert comments[0]["data"][0]["comment"]["comment"] == "davs :i 😀"
        assert comments[0]["title"] == "Jane Example commented on Åse's post."
        assert "data" not in comments[1]                   # entries without data exist (§6.3)
        [friends_file] = matching(source, entry_pattern(r"friends\.json", r"your_friends\.json"))
        assert read_all(source, friends_file, "friends") == [{"name": "Åse Ølstad", "timestamp": 1609459200}]


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "folder"])
def test_a_mojibake_uri_is_repaired_before_the_lookup(tmp_path, zipped):
    """The uri as Meta writes it (mojibake) finds the file whose name is real UTF-8; the
    spelling as written is tried too, for a zip whose names kept the mojibake."""
    path, _posts = facebook_2022(tmp_path, zipped)
    with open_export(path) as source:
        index = MediaIndex(source)
        written = meta(f"posts/media/{PHOTO}/28819_n_1251667781858.jpg")
        assert written != f"posts/media/{PHOTO}/28819_n_1251667781858.jpg"
        assert index.resolve(written) == f"posts/media/{PHOTO}/28819_n_1251667781858.jpg"
        ref = index.ref(written, "image", 0)
        assert opened(ref) == JPEG and ref.url == f"posts/media/{PHOTO}/28819_n_1251667781858.jpg"
    odd = write(tmp_path / "odd.zip", {meta("posts/media/é.jpg"): JPEG})
    with open_export(odd) as source:
        assert MediaIndex(source).resolve(meta("posts/media/é.jpg")) == meta("posts/media/é.jpg")


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "folder"])
def test_a_post_whose_media_file_is_missing_gets_a_ref_that_fails_naming_the_file(tmp_path, zipped):
    path, _posts = facebook_2022(tmp_path, zipped)
    with open_export(path) as source:
        posts = read_all(source, matching(source, FB_2022_POSTS)[0])
        index = MediaIndex(source)
        uri = posts[1]["attachments"][0]["data"][0]["media"]["uri"]
        assert index.resolve(uri) is None
        ref = index.ref(meta(uri), "image", 0)       # building the post does not fail
        assert ref.url == "posts/media/your_posts/manglende_ø_n_1.jpg"
        with pytest.raises(NotInExport) as missing:
            ref.opener()
        assert "not in the export" in str(missing.value) and "posts/media/your_posts/manglende_ø_n_1.jpg" in str(missing.value)
        assert str(path) in str(missing.value)
        assert opened(index.ref(posts[0]["attachments"][0]["data"][0]["media"]["uri"], "image", 0)) == JPEG


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "folder"])
@pytest.mark.parametrize("top_folder", ["", "facebook-jane-2024-06-01"], ids=["root", "top-folder"])
def test_facebook_2024_layout_files_in_number_order_and_uris_against_root_then_activity_dir(tmp_path, zipped,
                                                                                             top_folder):
    path = facebook_2024(tmp_path, zipped, top_folder)
    at = f"{top_folder}/" if top_folder else ""
    with open_export(path) as source:
        names = matching(source, FB_2022_POSTS)
        assert names == [f"{at}your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_{n}.json"
                         for n in (1, 2)]
        posts = [post for name in names for post in read_all(source, name, "posts")]
        assert [p["data"][0]["post"] for p in posts] == ["Første indlæg 🌅", "Andet"]
        index = MediaIndex(source)
        refs = [index.ref(p["attachments"][0]["data"][0]["media"]["uri"], "image", 0) for p in posts]
        assert [r.url for r in refs] == [f"{at}your_facebook_activity/posts/media/{PHOTO}/a_n_1.jpg",
                                         f"{at}your_facebook_activity/posts/media/{PHOTO}/b_n_2.png"]
        assert [opened(r) for r in refs] == [JPEG, PNG]
        [comments] = matching(source, FB_COMMENTS)
        assert comments == f"{at}your_facebook_activity/comments_and_reactions/comments.json"
        assert read_all(source, comments, wrappers=("comments_v2",))[0]["data"][0]["comment"]["comment"] == "Tak! 🙏"


def test_number_order_puts_ten_after_two(tmp_path):
    files = {f"your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_{n}.json": [] for n in (10, 2, 1)}
    with open_export(write(tmp_path / "parts.zip", files)) as source:
        assert [name.rsplit("_", 1)[1] for name in matching(source, FB_2022_POSTS)] == ["1.json", "2.json", "10.json"]
    lone = tmp_path / "lone" / "your_posts_3.json"
    lone.parent.mkdir()
    lone.write_text("[]", encoding="ascii")
    with open_export(lone) as source:
        assert matching(source, FB_2022_POSTS) == []
        assert matching(source, FB_2022_POSTS, bare=r"your_posts_\d+\.json") == source.names()


def test_uri_lookup_prefers_the_root_then_the_activity_dir_over_a_name_that_only_ends_the_same(tmp_path):
    """A uri written root-relative ("posts/media/…") in a 2024 export sits below the
    activity folder; a file elsewhere whose name merely ends the same is not it."""
    files = {
        "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json": [],
        "your_facebook_activity/posts/media/a.jpg": JPEG,
        "x/posts/media/a.jpg": b"decoy",                                # shorter, ends the same
        "media/b.jpg": PNG, "your_facebook_activity/media/b.jpg": b"second",   # root before activity
    }
    for zipped in (True, False):
        with open_export(write(export_path(tmp_path, zipped, f"order-{zipped}"), files, top_folder="top")) as source:
            index = MediaIndex(source)
            assert index.resolve("posts/media/a.jpg") == "top/your_facebook_activity/posts/media/a.jpg"
            assert index.resolve("media/b.jpg") == "top/media/b.jpg"
            assert index.resolve("your_facebook_activity/posts/media/a.jpg") == \
                "top/your_facebook_activity/posts/media/a.jpg"
            # Nothing outside the listed entries is ever named: .., absolute, backslashes.
            for hostile in ("../top/media/b.jpg", "/top/media/b.jpg", "media\\b.jpg", "", "  "):
                assert index.resolve(hostile) is None


# --------------------------------------------------------------------------- Threads inside an Instagram download

THREADS_POSTS = both_layouts("your_instagram_activity", r"threads/threads_and_replies\.json")
THREADS_FOLLOWERS = both_layouts("your_instagram_activity", r"threads/followers(?:_\d+)?\.json")
WEBP = b"RIFF\x00\x00\x00\x00WEBP a webp"


def threads_in_instagram(path: Path, top_folder: str = "") -> Path:
    """An Instagram download carrying a threads/ folder (threads.md §6): Threads' posts with
    ``text_post_app_…`` keys, one key itself in mojibake; media at the export root."""
    text_only = {"media": [{"uri": "", "creation_timestamp": 1709116601,
                            "title": meta("café at sunrise 🙏"),
                            "text_app_post": {"reply_control": "everyone", "is_reply": False},
                            meta("clé"): meta("valeur é")}]}
    image = {"media": [{"uri": "media/posts/202402/429888683_n_17985658415475706.jpg",
                        "creation_timestamp": 1709064890, "title": "",
                        "media_metadata": {"camera_metadata": {"has_camera_metadata": False}}}]}
    carousel = {"media": [{"uri": "media/429215738_n_18004325663366818.webp", "creation_timestamp": 1708714341,
                           "title": ""},
                          {"uri": meta("media/429425834_n_é.mp4"), "creation_timestamp": 1708714341, "title": ""}],
                "title": meta("carousel caption lives here ✨"), "creation_timestamp": 1708714341}
    files = {
        "your_instagram_activity/content/posts_1.json": [],
        "your_instagram_activity/threads/threads_and_replies.json": {"text_post_app_text_posts": [text_only, image,
                                                                                                  carousel]},
        "your_instagram_activity/threads/followers_1.json": {"text_post_app_text_post_app_followers": [
            {"title": meta("Pine Marten école"), "media_list_data": [],
             "string_list_data": [{"href": "https://www.threads.com/pine.marten", "value": "pine.marten",
                                   "timestamp": 1730000000}]},
            {"title": "", "string_list_data": [{"href": "https://www.threads.net/@old.style/", "timestamp": 1720000000}]}]},
        "media/posts/202402/429888683_n_17985658415475706.jpg": JPEG,
        "media/429215738_n_18004325663366818.webp": WEBP,
        "media/429425834_n_é.mp4": b"\x00\x00\x00\x18ftypmp42",
    }
    return write(path, files, top_folder=top_folder)


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "folder"])
@pytest.mark.parametrize("top_folder", ["", "instagram-pine-2024-06-01"], ids=["root", "top-folder"])
def test_threads_posts_with_text_post_app_keys_inside_an_instagram_download(tmp_path, zipped, top_folder):
    path = threads_in_instagram(export_path(tmp_path, zipped, "instagram-pine-2024-06-01-AbCd"), top_folder)
    at = f"{top_folder}/" if top_folder else ""
    with open_export(path) as source:
        [name] = matching(source, THREADS_POSTS)
        assert list_prefixes(source, name) == ["text_post_app_text_posts.item"]
        text_only, image, carousel = read_all(source, name, "threads")
        assert text_only["media"][0]["clé"] == "valeur é"                     # keys repaired too
        assert [post_text(p, media_items(p)) for p in (text_only, image, carousel)] == [
            "café at sunrise 🙏", None, "carousel caption lives here ✨"]
        assert [epoch_iso(media_items(p)[0]["creation_timestamp"]) for p in (text_only, image, carousel)] == [
            "2024-02-28T10:36:41Z", "2024-02-27T20:14:50Z", "2024-02-23T18:52:21Z"]

        index = MediaIndex(source)
        assert text_only["media"][0]["uri"] == "" and index.resolve("") is None    # a text post has no file
        [photo] = media_items(image)
        ref = index.ref(photo["uri"], media_role(photo["uri"]), 0)
        assert ref.url == f"{at}media/posts/202402/429888683_n_17985658415475706.jpg" and opened(ref) == JPEG
        refs = [index.ref(m["uri"], media_role(m["uri"]), i) for i, m in enumerate(media_items(carousel))]
        assert [(r.url, r.role, r.mime_hint) for r in refs] == [
            (f"{at}media/429215738_n_18004325663366818.webp", "image", "image/webp"),
            (f"{at}media/429425834_n_é.mp4", "video", "video/mp4")]
        assert opened(refs[0]) == WEBP

        [followers] = matching(source, THREADS_FOLLOWERS)
        people = read_all(source, followers, "followers")
        assert [username_of(p) for p in people] == ["pine.marten", "old.style"]
        assert people[0]["title"] == "Pine Marten école"
        assert epoch_iso(people[0]["string_list_data"][0]["timestamp"]) == "2024-10-27T03:33:20Z"


# --------------------------------------------------------------------------- Instagram's own layouts

INSTAGRAM_POSTS = entry_pattern(r"your_instagram_activity/(?:content|media)/posts_\d+\.json", r"content/posts_\d+\.json")


@pytest.mark.parametrize("layout,options", [
    ("new", {}), ("old", {}), ("new", {"content_folder": "media"}),
    ("new", {"top_folder": "instagram-roofcam.studio-2024-06-01"})])
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "folder"])
def test_instagram_layouts_captions_and_every_media_file(tmp_path, layout, options, zipped):
    account = make_account(posts=4, reels=0, stories=0, followers=2, following=1, comments=2, seed=3)
    files = export_files(account, layout, content_folder=options.get("content_folder", "content"))
    path = write_export(account, export_path(tmp_path, zipped, "instagram-roofcam.studio"), layout=layout,
                        exported_at=EXPORTED_AT, **options)
    with open_export(path) as source:
        [name] = matching(source, INSTAGRAM_POSTS)
        posts = read_all(source, name, "posts")
        captions = sorted((p["caption"] or "") for p in account.posts)
        assert sorted(post_text(p, media_items(p)) or "" for p in posts) == captions
        index = MediaIndex(source)
        for post in posts:
            for item in media_items(post):
                ref = index.ref(item["uri"], media_role(item["uri"]), 0)
                assert opened(ref) == files[item["uri"]]
        assert taken_at(source, [name]) == "2024-06-01T00:00:00Z"


def test_instagram_wrapped_lists_and_string_map_data(tmp_path):
    files = {
        "connections/followers_and_following/following.json": {
            "relationships_following": [{"title": "idol_two", "string_list_data": [
                {"href": "https://www.instagram.com/_u/idol_two", "timestamp": 1699990000}]}],
            "something_else": [{"title": "not a follow"}]},
        "your_instagram_activity/comments/post_comments_1.json": [{"string_map_data": {
            "Comment": {"value": meta("so good 😀")}, "Media Owner": {"value": "other_account"},
            "Time": {"timestamp": 1710000000}}}],
        "your_instagram_activity/comments/reels_comments.json": {"weird": "not a list"},
        "your_instagram_activity/content/stories.json": [1, {"uri": "media/stories/a.jpg"}],
    }
    with open_export(write(tmp_path / "ig.zip", files)) as source:
        following = "connections/followers_and_following/following.json"
        assert list_prefixes(source, following, ("relationships_following",)) == ["relationships_following.item"]
        assert list_prefixes(source, following) == ["relationships_following.item", "something_else.item"]
        [idol] = read_all(source, following, "following", ("relationships_following",))
        assert username_of(idol) == "idol_two"
        assert epoch_iso(idol["string_list_data"][0]["timestamp"]) == "2023-11-14T19:26:40Z"

        [comment] = read_all(source, "your_instagram_activity/comments/post_comments_1.json")
        fields = string_map(comment)
        assert fields is not None and set(fields) == {"comment", "media owner", "time"}
        assert fields["comment"]["value"] == "so good 😀"
        assert epoch_iso(fields["time"]["timestamp"]) == "2024-03-09T16:00:00Z"
        assert string_map({"title": "no map"}) is None

        reports, report = no_reports()
        assert list(iter_items(source, "your_instagram_activity/comments/reels_comments.json", report, "comments")) == []
        assert len(reports) == 1 and "not a JSON list of comments" in reports[0][1]
        reports.clear()
        stories = list(iter_items(source, "your_instagram_activity/content/stories.json", report, "stories"))
        assert stories == [{"uri": "media/stories/a.jpg"}]
        assert reports == [("stories item 0 in your_instagram_activity/content/stories.json",
                            "expected an object, found int '1'")]
        assert media_items(stories[0]) == [stories[0]] and media_items({"title": "x"}) is None


# --------------------------------------------------------------------------- times


def test_epoch_seconds_and_what_is_not_a_time():
    assert epoch_iso(1714587751) == "2024-05-01T18:22:31Z"
    assert epoch_iso("1714587751") == epoch_iso(1714587751.9) == "2024-05-01T18:22:31Z"
    for nothing in (None, "", 0, True, "yesterday", [1], 10**30):
        assert epoch_iso(nothing) is None, nothing


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "folder"])
def test_taken_at_is_the_newest_list_file_time_else_the_export_file_time(tmp_path, zipped):
    path = write(export_path(tmp_path, zipped), {"a/followers_1.json": [], "b/followers_2.json": []},
                 moment=EXPORTED_AT)
    with open_export(path) as source:
        assert taken_at(source, source.names()) == "2024-06-01T00:00:00Z"
        os.utime(path, (EXPORTED_AT + 86_400, EXPORTED_AT + 86_400))
        assert taken_at(source, []) == "2024-06-02T00:00:00Z"      # no list file: the export's own time


def test_usernames_value_then_title_then_href():
    assert username_of({"title": "t", "string_list_data": [{"value": "@v", "href": "https://x/h"}]}) == "v"
    assert username_of({"title": meta("zoë"), "string_list_data": [{"href": "https://x/h"}]}) == "zoë"
    assert username_of({"string_list_data": [{"href": "https://www.threads.com/@pine.marten/"}]}) == "pine.marten"
    assert username_of({"string_list_data": []}) is None and username_of({}) is None
    assert mime_hint("a.MOV") is None and media_role("a.MOV") == "video" and mime_hint("a.heic") == "image/heic"
