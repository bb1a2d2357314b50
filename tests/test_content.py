"""`archiver content gaps` and `archiver content bundle`: which of the person's posts are
missing where (same media by sha256, or the same caption normalized), a post's folder
made ready for another platform within its declared limits, and the README's table of
posting limits kept equal to the connectors' declarations. Real SQLite archives (built by
the writer, and by `archiver demo`) and the real command line."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from cli_world import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.archive import Archive
from archiver.archive.media import MediaStore
from archiver.archive.writer import ArchiveWriter, StoredFile
from archiver.connector import CHARS, EMOJI_AS_BYTES, LINKS_AS_23, UTF8_BYTES, UTF16, WEIGHTED, PostLimits, installed_connectors
from archiver.records import MediaRef, Post
from archiver.views.content import (
    Adapted,
    ContentError,
    adapt,
    caption_key,
    cut_at_word,
    find_post,
    gaps,
    hashtags,
    limits_table,
    measure,
    write_bundle,
)

# Its module fixtures are built once: the module's tests run in one worker (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("content")

NOW = "2026-12-01T10:00:00Z"
README = Path(__file__).resolve().parents[1] / "README.md"


# -- an archive of two platforms ------------------------------------------------------------------


def put(archive: Archive, account: str, post: Post, files=()) -> str:
    """Write ``post`` for ``account`` with ``files`` = [(role, position, bytes, alt text)]."""
    store = MediaStore(archive.media_root)
    with archive.writing():
        writer = ArchiveWriter(archive.db, platform=account.split(":")[0], account_id=account, source="api", now=NOW)
        post_id = writer.write_post(post)
        for role, position, data, alt in files:
            stored = store.add_file(io.BytesIO(data), mime_hint="image/png")
            writer.link_media(post_id, MediaRef(f"https://cdn.example/{post_id}/{position}", role, position,
                                                description=alt),
                              StoredFile(stored.sha256, str(stored.path), stored.mime, stored.size),
                              f"https://cdn.example/{post_id}/{position}")
    return post_id


PNG = b"\x89PNG\r\n\x1a\n" + b"picture one" * 20
PNG2 = b"\x89PNG\r\n\x1a\n" + b"picture two" * 20
PNG3 = b"\x89PNG\r\n\x1a\n" + b"picture three" * 20
LONG = ("A long walk along the river at dawn, with the fog lifting slowly over the old bridge and the "
        "first boats going out to sea while the city was still asleep and quiet")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Archive:
    built = Archive(tmp_path_factory.mktemp("content"))
    tt, ig = "tiktok:main", "instagram:main"
    # On TikTok: five posts of the person's own, one repost, one deleted.
    put(built, tt, Post("t1", "2026-01-01T00:00:00Z", text="Same picture, new words", kind="photo"),
        [("image", 0, PNG, "a roof at dusk")])
    put(built, tt, Post("t2", "2026-02-01T00:00:00Z", text="Sunset over the harbour tonight, the best one #sun"))
    put(built, tt, Post("t3", "2026-03-01T00:00:00Z", title="Only here", text="Nobody saw this elsewhere <b>",
                        kind="carousel", visibility="public"),
        [("image", 1, PNG3, None), ("image", 0, PNG2, "first frame"), ("cover", 0, PNG3, None)])
    put(built, tt, Post("t4", "2026-04-01T00:00:00Z", text=LONG + " #river #dawn"))
    put(built, tt, Post("t5", "2026-05-01T00:00:00Z", text="Also only on TikTok"))
    put(built, tt, Post("t6", "2026-06-01T00:00:00Z", text="someone else's video", kind="boost"))
    put(built, tt, Post("t7", "2026-06-02T00:00:00Z", text="deleted one", deleted_at="2026-06-03T00:00:00Z"))
    # On Instagram: t1's file with another caption, t2's words written otherwise, t4 cut short.
    put(built, ig, Post("i1", "2026-01-02T00:00:00Z", text="Different words entirely"), [("image", 0, PNG, None)])
    put(built, ig, Post("i2", "2026-02-02T00:00:00Z",
                        text="sunset over the HARBOUR tonight — the best one! #other https://x.example/p"))
    put(built, ig, Post("i4", "2026-04-02T00:00:00Z", text=cut_at_word(LONG, 100)))
    put(built, ig, Post("i9", "2026-07-01T00:00:00Z", text="Instagram first"))
    yield built
    built.close()


def test_gaps_are_the_posts_with_neither_the_same_file_nor_the_same_caption_newest_first(archive):
    found = gaps(archive.db, from_platform="tiktok", to_platform="instagram")
    assert [gap.ref for gap in found] == ["tiktok:t5", "tiktok:t3"]
    assert all(gap.missing_on == ["instagram"] for gap in found)
    back = gaps(archive.db, to_platform="tiktok")
    assert [gap.ref for gap in back] == ["instagram:i9"]
    every = gaps(archive.db)
    assert [gap.ref for gap in every] == ["instagram:i9", "tiktok:t5", "tiktok:t3"]


def test_a_caption_key_ignores_case_links_hashtags_and_punctuation_but_not_words():
    assert caption_key("Sunset over the harbour tonight, the best one #sun") == \
        caption_key(None, "sunset over the HARBOUR tonight — the best one! #other https://x.example/p")
    assert caption_key("Sunset over the harbour") != caption_key("Sunrise over the harbour")
    assert caption_key("#only #tags https://x.example") == ""


def test_a_post_id_names_one_post_or_says_which_to_choose(archive, tmp_path):
    assert find_post(archive.db, "tiktok:t3")["post_id"] == "t3"
    assert find_post(archive.db, "t3")["platform"] == "tiktok"
    put(archive, "instagram:main", Post("t5", "2026-05-05T00:00:00Z", text="same id elsewhere"))
    try:
        with pytest.raises(ContentError, match=r"on several platforms: name one of instagram:t5, tiktok:t5"):
            find_post(archive.db, "t5")
    finally:
        with archive.writing():
            archive.db.execute("DELETE FROM posts WHERE platform='instagram' AND post_id='t5'")
    with pytest.raises(ContentError, match="no post 'nope' in the archive"):
        find_post(archive.db, "nope")


# -- fitting a caption -------------------------------------------------------------------------------


def test_lengths_are_counted_as_each_platform_counts_them():
    text = "aé😀"
    assert measure(text, CHARS) == 3
    assert measure(text, UTF16) == 4            # the emoji is two UTF-16 units
    assert measure(text, UTF8_BYTES) == 1 + 2 + 4
    assert measure(text, EMOJI_AS_BYTES) == 1 + 1 + 4
    assert measure("a https://example.com/a/long/path 日😀", LINKS_AS_23) == 2 + 23 + 3
    assert measure("a https://example.com/a/long/path 日😀", WEIGHTED) == 2 + 23 + 1 + 2 + 2


def test_a_cut_ends_at_a_word_boundary_with_an_ellipsis():
    assert cut_at_word("one two three four", 12) == "one two…"
    assert cut_at_word("short", 12) == "short"
    assert cut_at_word("abcdefghijklmnop", 6) == "abcde…"      # one long word: cut inside it
    assert measure(cut_at_word("😀 " * 200, 500, EMOJI_AS_BYTES), EMOJI_AS_BYTES) <= 500


FIVE_TAGS = PostLimits("caption", caption_chars=120, hashtags_max=2, sources=("https://example.org",),
                       checked="2026-12-07")


def test_extra_hashtags_leave_the_closing_block_and_become_words_in_sentences():
    adapted = adapt(None, "I love #sunsets and #rivers today\n#sun #sky #sea", FIVE_TAGS, "Example")
    assert adapted.caption == "I love #sunsets and #rivers today"
    assert hashtags(adapted.caption) == ["sunsets", "rivers"]
    adapted = adapt(None, "A #calm evening\n#sun #calm #sky", FIVE_TAGS, "Example")
    assert adapted.caption == "A #calm evening\n\n#sun"
    assert "kept #calm #sun; left out #sky" in adapted.changes[0]
    assert adapt(None, "#one #two #three", FIVE_TAGS, "Example").caption == "#one #two"   # a caption of tags only
    assert adapt(None, "Line\n#one\n#two", FIVE_TAGS, "Example") == Adapted("Line\n#one\n#two")   # as it was


def test_a_long_caption_is_cut_but_keeps_its_tags():
    adapted = adapt(None, LONG + "\n#river #dawn", FIVE_TAGS, "Example")
    assert len(adapted.caption) <= 120 and adapted.caption.endswith("…\n#river #dawn")
    assert LONG.startswith(adapted.caption.split("…")[0])
    assert any("caption cut from" in change for change in adapted.changes)


def test_a_title_field_gets_a_title_and_refused_characters_are_replaced():
    limits = PostLimits("video", caption_chars=5000, caption_unit=UTF8_BYTES, title_chars=20, forbidden_chars="<>",
                        sources=("https://example.org",), checked="2026-12-07")
    adapted = adapt(None, "A <b>bold</b> first line that is long\nmore", limits, "Example")
    assert adapted.title == "A ‹b›bold‹/b› first…" and len(adapted.title) <= 20
    assert "<" not in adapted.caption and "‹b›" in adapted.caption


def test_a_single_topic_tag_is_the_first_hashtag_without_refused_characters():
    limits = PostLimits("post", caption_chars=500, hashtags_max=1, topic_tag_chars=5, topic_tag_forbidden=".&",
                        sources=("https://example.org",), checked="2026-12-07")
    adapted = adapt(None, "Night #Rhythm_and_blues\n#jazz", limits, "Example")
    assert adapted.topic_tag == "Rhyth" and adapted.caption == "Night #Rhythm_and_blues"
    assert hashtags("#R&B.music") == ["R"]       # "&" and "." end a hashtag: a topic tag never holds them


DECLARED = sorted((name, cls.post_limits) for name, cls in installed_connectors().items() if cls.post_limits)


PIECES = [*"ab cd\n#é😀<>&.", "#tag", " #x1", "word ", "\n#t", " https://x.example/a "]


@settings(max_examples=25, deadline=None)
@given(title=st.one_of(st.none(), st.text(max_size=150)),
       text=st.lists(st.sampled_from(PIECES), max_size=2000).map("".join))
def test_whatever_the_post_a_bundle_fits_every_declared_limit(title, text):
    for name, limits in DECLARED:
        adapted = adapt(title, text, limits, name)
        assert measure(adapted.caption, limits.caption_unit) <= limits.caption_chars, name
        if limits.hashtags_max is not None:
            assert len(hashtags(adapted.caption)) <= limits.hashtags_max, name
        if limits.title_chars is not None and adapted.title is not None:
            assert measure(adapted.title, limits.title_unit) <= limits.title_chars, name
        if limits.forbidden_chars:
            assert not set(limits.forbidden_chars) & set(adapted.caption + (adapted.title or "")), name
        if adapted.topic_tag is not None:
            assert len(adapted.topic_tag) <= limits.topic_tag_chars and \
                not set(limits.topic_tag_forbidden) & set(adapted.topic_tag), name


# -- the declarations and the README ---------------------------------------------------------------


def test_the_platforms_the_issue_names_declare_limits_with_a_source_and_a_date():
    names = {name for name, _ in DECLARED}
    assert {"youtube", "pinterest", "threads", "linkedin", "instagram", "tiktok", "bluesky", "mastodon", "x"} <= names
    for name, limits in DECLARED:
        assert limits.sources and all(url.startswith("https://") for url in limits.sources), name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", limits.checked), name


def test_the_readme_table_is_the_declarations():
    assert limits_table() in README.read_text(encoding="utf-8"), \
        "README's 'Posting limits' table differs from the connectors' post_limits: paste views.content.limits_table()"


# -- the command line ------------------------------------------------------------------------------


def test_bundle_writes_the_files_in_order_the_fitted_caption_and_a_checklist(archive, tmp_path):
    out = tmp_path / "for-youtube"
    done = run_cli(["content", "bundle", "tiktok:t3", "--for", "youtube", "--out", str(out),
                    "--archive", str(archive.folder)])
    assert done.returncode == 0, done.describe()
    assert done.stdout.strip() == str(out)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["01-image.png", "02-image.png", "03-cover.png", "checklist.md", "description.txt", "title.txt"]
    assert (out / "01-image.png").read_bytes() == PNG2 and (out / "02-image.png").read_bytes() == PNG3
    assert (out / "title.txt").read_text() == "Only here"
    assert (out / "description.txt").read_text() == "Nobody saw this elsewhere ‹b›"
    checklist = (out / "checklist.md").read_text()
    assert "Nothing was posted" in checklist and "Alt text of 01-image.png: first frame" in checklist
    # The cover is the video's picture, not one more file of the post.
    assert "Add the files in this order: 01-image.png, 02-image.png\n" in checklist
    assert "Cover, where YouTube lets you choose one: 03-cover.png" in checklist
    assert "https://developers.google.com/youtube/v3/docs/videos" in checklist
    assert "refuses the characters < >" in checklist
    assert (out / "checklist.md").stat().st_mode & 0o077 == 0

    with pytest.raises(ContentError, match="is not an empty folder: choose another with --out"):
        write_bundle(archive, "tiktok:t3", "youtube", out)
    with pytest.raises(ContentError, match="no posting limits are declared for facebook: a bundle can be made for"):
        write_bundle(archive, "tiktok:t3", "facebook", tmp_path / "fb")
    assert not (tmp_path / "fb").exists()


def test_bundle_for_instagram_trims_hashtags_and_says_what_the_archive_lacks(archive, tmp_path):
    with archive.writing():
        archive.db.execute("UPDATE post_media SET status='failed', sha256=NULL, error='HTTP 404' "
                           "WHERE platform='tiktok' AND post_id='t1'")
    try:
        put(archive, "tiktok:main", Post("t8", "2026-08-01T00:00:00Z",
                                         text="Seven tags\n#a1 #b2 #c3 #d4 #e5 #f6 #g7"))
        bundle = write_bundle(archive, "tiktok:t8", "instagram", tmp_path / "t8")
        assert (tmp_path / "t8" / "caption.txt").read_text() == "Seven tags\n\n#a1 #b2 #c3 #d4 #e5"
        assert bundle.files == []
        missing = write_bundle(archive, "tiktok:t1", "instagram", tmp_path / "t1")
        assert missing.files == [] and missing.missing == ["image 1: HTTP 404"]
        assert "not in the archive, so not here: image 1: HTTP 404" in (tmp_path / "t1" / "checklist.md").read_text()
    finally:
        with archive.writing():
            archive.db.execute("DELETE FROM posts WHERE post_id='t8'")
            archive.db.execute("UPDATE post_media SET status='ok', error=NULL, sha256=? WHERE platform='tiktok' "
                               "AND post_id='t1'", [hashlib.sha256(PNG).hexdigest()])


def test_gaps_on_the_command_line_and_as_json(archive):
    done = run_cli(["content", "gaps", "--from", "tiktok", "--to", "instagram", "--archive", str(archive.folder)])
    assert done.returncode == 0, done.describe()
    lines = done.stdout.splitlines()
    assert lines[0].startswith("2026-05-01  tiktok:t5") and "missing on instagram" in lines[0]
    assert "archiver content bundle tiktok:t5 --for instagram" in done.stdout
    # No example line naming a platform `bundle` refuses (Facebook declares no limits).
    to_facebook = run_cli(["content", "gaps", "--from", "tiktok", "--to", "facebook", "--archive", str(archive.folder)])
    assert to_facebook.returncode == 0 and "missing on facebook" in to_facebook.stdout, to_facebook.describe()
    assert "content bundle" not in to_facebook.stdout
    as_json = run_cli(["content", "gaps", "--json", "--archive", str(archive.folder)])
    assert [row["post"] for row in json.loads(as_json.stdout)] == [gap.ref for gap in gaps(archive.db)]
    with pytest.raises(ContentError, match="name two platforms"):
        gaps(archive.db, from_platform="tiktok", to_platform="tiktok")
    typo = run_cli(["content", "gaps", "--to", "tiktokk", "--archive", str(archive.folder)])
    assert typo.returncode == 1 and "unknown platform 'tiktokk'" in typo.stderr


def test_on_the_demo_archive_a_bundle_makes_the_gap_close(tmp_path):
    demo = tmp_path / "demo"
    made = run_cli(["demo", "--dir", str(demo), "--posts", "3", "--followers", "3"], timeout=120)
    assert made.returncode == 0, made.describe()
    # Pinterest is not archived yet: every post is missing there.
    listed = json.loads(run_cli(["content", "gaps", "--json", "--to", "pinterest", "--archive", str(demo)]).stdout)
    assert len(listed) == 3 and all(row["missing_on"] == ["pinterest"] for row in listed)
    ref = listed[0]["post"]
    out = tmp_path / "pin"
    assert run_cli(["content", "bundle", ref, "--for", "pinterest", "--out", str(out),
                    "--archive", str(demo)]).returncode == 0
    # Posted by hand on Pinterest, then archived: the same title and description there.
    archive = Archive(demo)
    try:
        put(archive, "pinterest:main", Post("new-pin", NOW, title=(out / "title.txt").read_text(),
                                            text=(out / "description.txt").read_text()))
        assert ref not in [gap.ref for gap in gaps(archive.db, to_platform="pinterest")]
        assert len(gaps(archive.db, to_platform="pinterest")) == 2
    finally:
        archive.close()
