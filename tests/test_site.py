"""`archiver site`: the static website of the owner's posts.

The main archive is a real one, built as a new user would: `archiver demo` (TikTok's simulator
through its API and its export), then a Mastodon export from Mastodon's simulator imported
with `archiver import`, then a few posts written through the archive's writer for what the
simulators do not hold (a hostile caption, a carousel with alt text out of order, posts that
are private, friends-only, deleted, a repost). The site is written by the real
`archiver site` command; headless Chromium then opens every page from disk."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter, StoredFile
from archiver.config import ConfigError, load_config
from archiver.records import MediaRef, Post, Profile
from archiver.views.site import (MANIFEST, Owner, SiteError, build_site, caption_html, hashtags, select_posts)
from cli_world import run_cli
from png_pixels import decode_png, make_png, pixels_of

# Its module fixtures are built once: the module's tests run in one worker (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("site")

HOSTILE = ("<script>window.pwned = 1</script><img src=x onerror=\"window.pwned=2\"> javascript:alert(1) "
           "see https://example.org/a?b=1&c=2. and #Café, not&#39;a tag, https://example.org/#frag")
RED, GREEN, BLUE, ORANGE, GREY = (200, 30, 30), (30, 160, 60), (30, 60, 200), (250, 140, 0), (90, 90, 90)


def colour(rgb: tuple[int, int, int]) -> str:
    return "#" + bytes(rgb).hex()


# -- an archive ---------------------------------------------------------------------------


def store(archive: Archive, png: bytes) -> StoredFile:
    sha = hashlib.sha256(png).hexdigest()
    path = f"{sha[:2]}/{sha[2:4]}/{sha}.png"
    (archive.media_root / path).parent.mkdir(parents=True, exist_ok=True)
    (archive.media_root / path).write_bytes(png)
    return StoredFile(sha, path, "image/png", len(png))


def write_posts(archive: Archive, account: str, posts: list[tuple[Post, list[tuple[MediaRef, bytes]]]],
                now: str = "2025-01-02T00:00:00Z") -> None:
    with archive.writing():
        writer = ArchiveWriter(archive.db, platform=account.split(":")[0], account_id=account, source="api", now=now)
        for post, files in posts:
            post_id = writer.write_post(post)
            for ref, data in files:
                writer.link_media(post_id, ref, store(archive, data), ref.url)


def own_posts(archive: Archive) -> None:
    """The posts the simulators do not make, on X (a third platform for the site)."""
    picture = [(MediaRef("https://cdn.example/p.png", "image"), make_png(40, 40, GREY))]
    carousel = [(MediaRef(f"https://cdn.example/{n}.png", "image", position=n, description=f"Slide {n + 1} alt"),
                 make_png(60, 60, rgb)) for n, rgb in ((2, BLUE), (0, RED), (1, GREEN))]
    write_posts(archive, "x:main", [
        (Post("900", "2025-01-01T10:00:00Z", kind="text", text=HOSTILE, url="https://x.com/me/status/900",
              like_count=7, view_count=70), []),
        (Post("901", "2024-12-30T10:00:00Z", kind="carousel", text="Three slides #slides",
              url="javascript:alert(2)", visibility="public"), carousel),
        (Post("902", "2024-12-29T10:00:00Z", kind="text", text="only me #secret", visibility="private"),
         [(MediaRef("https://cdn.example/private.png", "image"), make_png(30, 30, ORANGE))]),
        (Post("903", "2024-12-28T10:00:00Z", kind="text", text="friends only", visibility="friends"), []),
        (Post("904", "2024-12-27T10:00:00Z", kind="boost", text="RT someone else's post"), []),
        (Post("905", "2024-12-26T10:00:00Z", kind="text", text="gone for good", deleted_at="2025-01-01T00:00:00Z"), picture),
    ])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """The archive: TikTok's demo, a Mastodon export, and X posts (see the module's doc)."""
    from archiver_connectors.mastodon.sim.export import archive_name, make_account, write_archive

    top = tmp_path_factory.mktemp("site-world")
    folder = top / "archive"
    done = run_cli(["demo", "--dir", str(folder), "--posts", "3", "--followers", "3"])
    assert done.returncode == 0, done.describe()
    with open(folder / "config.toml", "a", encoding="utf-8") as config:
        config.write('\n[accounts.masto]\nplatform = "mastodon"\n\n[owner]\nname = "Robin Roof"\n'
                     'bio = "Timelapses from roofs. #roof"\nnewsletter = "https://robin.example/newsletter"\n'
                     'shop = "https://shop.robin.example/"\n\n[owner.profiles]\n'
                     'tiktok = "https://www.tiktok.com/@robin"\ngithub = "https://github.com/robin"\n')
    export = write_archive(make_account(posts=4), top / archive_name())
    done = run_cli(["import", "--archive", str(folder), "--account", "masto", str(export)])
    assert done.returncode == 0, done.describe()
    # Instagram's export (a carousel with a video between two pictures), imported in-process.
    from archiver.sync.jobs import Workspace, run_import
    from archiver_connectors.instagram.sim.export import build_instagram_export

    with open(folder / "config.toml", "a", encoding="utf-8") as config:
        config.write('\n[accounts.insta]\nplatform = "instagram"\n')
    workspace = Workspace.open(folder, None)
    instagram = build_instagram_export(top / "instagram.zip", posts=3, followers=1, following=1, stories=0, comments=0)
    assert run_import(workspace, instagram, account_name="insta", progress=lambda line: None)["status"] == "ok"
    workspace.archive.close()
    archive = Archive(folder)
    own_posts(archive)
    archive.close()
    return folder


@pytest.fixture(scope="module")
def site(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "www"
    done = run_cli(["site", "--archive", str(world), "--out", str(out)])
    assert done.returncode == 0, done.describe()
    assert "Open it: file://" in done.stdout and "0 removed" in done.stdout
    return out


class Page(HTMLParser):
    """The links, sources and text of one HTML page."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []   # (tag, attribute, value)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        for name in ("href", "src", "poster"):
            if a.get(name):
                self.refs.append((tag, name, a[name]))

    def handle_data(self, data):
        self.text.append(data)


def read_page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def pages_of(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


def post_page(out: Path, platform: str, text: str) -> Path:
    for path in sorted((out / "post" / platform).glob("*.html")):
        if text in path.read_text(encoding="utf-8"):
            return path
    raise AssertionError(f"no {platform} post page holds {text!r}")


# -- what is on the site ----------------------------------------------------------------------


def test_the_site_shows_every_public_post_newest_first_and_nothing_else(world, site):
    archive = Archive(world)
    with archive.reading() as db:
        public = db.execute("SELECT platform, post_id FROM posts WHERE deleted_at IS NULL AND coalesce(kind, '') "
                            "NOT IN ('boost', 'reply') AND coalesce(visibility, 'public') = 'public' "
                            "ORDER BY created_at DESC").fetchall()
        others = db.execute("SELECT count(*) FROM posts").fetchone()[0]
    archive.close()
    assert {p for p, _ in public} == {"tiktok", "mastodon", "instagram", "x"} and len(public) < others
    cards = [a["data-post"] for tag, a in read_page(site / "index.html").tags if tag == "article"]
    assert cards == [f"{platform}:{post_id}" for platform, post_id in public]
    every_page = "".join(p.read_text(encoding="utf-8") for p in pages_of(site))
    # Private, friends-only, followers-only, unlisted, deleted, reposts and replies stay out, files included.
    for text in ("only me", "friends only", "RT someone", "gone for good", "Line one", "Two paragraphs", "statuses/555",
                 "thanks, good idea"):
        assert text not in every_page, text
    private_picture = hashlib.sha256(make_png(30, 30, ORANGE)).hexdigest()
    assert not list((site / "media").glob(private_picture + "*"))
    search = (site / "assets" / "search-index.js").read_text(encoding="ascii")
    assert "only me" not in search and len(json.loads(search.split("=", 1)[1].rstrip().rstrip(";"))) == len(public)


def test_every_internal_link_and_file_resolves_and_nothing_is_remote(site):
    checked = 0
    for path in pages_of(site):
        page = read_page(path)
        for tag, attribute, value in page.refs:
            if tag == "a" and value.startswith(("https://", "http://")):
                continue   # a plain link to a platform or the owner's pages: loads nothing
            assert not re.match(r"[a-z]+:", value) and not value.startswith("/"), (path, value)
            target = (path.parent / unquote(urlsplit(value).path)).resolve()
            assert target.is_file() and site.resolve() in target.parents, (path, value)
            checked += 1
        html = path.read_text(encoding="utf-8")
        assert "Content-Security-Policy" in html and "default-src 'none'" in html
        assert not re.search(r"<(iframe|object|embed)\b|@import|style=", html, re.I)
    assert checked > 100
    assert set(os.listdir(site)) >= {"index.html", "about.html", "search.html", "feed.xml", "post", "platform", "tag",
                                      "media", "assets", MANIFEST}
    assert not (site / "sitemap.xml").exists()   # no --base-url: no absolute address to give


def test_a_post_page_has_its_media_in_order_its_caption_counts_and_original(site):
    carousel = read_page(post_page(site, "x", "Three slides"))
    images = [a for tag, a in carousel.tags if tag == "img"]
    assert [a["alt"] for a in images] == ["Slide 1 alt", "Slide 2 alt", "Slide 3 alt"]
    assert [a["src"] for a in images] == [f"../../media/{hashlib.sha256(make_png(60, 60, rgb)).hexdigest()}.png"
                                          for rgb in (RED, GREEN, BLUE)]
    # Its original's URL is not http(s): no link to it.
    assert not [a for tag, a in carousel.tags if tag == "a" and "javascript" in a.get("href", "")]

    tiktok = post_page(site, "tiktok", "tiktok.com/@")
    page = read_page(tiktok)
    [video] = [a for tag, a in page.tags if tag == "video"]
    assert video["src"].startswith("../../media/") and video["poster"].startswith("../../media/")
    assert (tiktok.parent / video["poster"]).is_file()
    text = " ".join(page.text)
    assert re.search(r"[\d,]+ likes · [\d,]+ comments", text) and "(as of " in text
    assert [a["href"] for tag, a in page.tags if tag == "a" and "original" in a.get("class", "")][0].startswith(
        "https://www.tiktok.com/@")
    # Instagram's carousel: picture, video, picture, in the order the export gives.
    carousel = read_page(post_page(site, "instagram", "Café au lait"))
    shown = [(tag, a["data-position"]) for tag, a in carousel.tags if tag == "figure"]
    assert [a["data-position"] for tag, a in carousel.tags if tag == "figure"] == ["0", "1", "2"], shown
    assert [tag for tag, a in carousel.tags if tag in ("img", "video")] == ["img", "video", "img"]
    # Mastodon's alt text becomes the picture's alt.
    garden = read_page(post_page(site, "mastodon", "Garden update"))
    assert [a["alt"] for tag, a in garden.tags if tag == "img"][:1] == ["Alt text 0.0: seedlings on a windowsill 🌱"]


def test_a_hostile_caption_stays_text_and_links_only_http():
    html = caption_html(HOSTILE, "../../", tags=None)
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noreferrer noopener">' in html
    assert "</a>. and" in html   # the sentence's full stop is not part of the link
    assert '<a class="tag" href="../../tag/caf' in html and "#Café</a>" in html
    assert "&amp;#39;a" in html and "#39;a</a>" not in html   # an entity is no hashtag
    assert "tag/frag" not in html and 'href="https://example.org/#frag"' in html   # a URL's fragment is no hashtag
    assert hashtags("#One #one #two x#no #1 #ünïcode") == ["One", "two", "ünïcode"]
    assert "#two" in caption_html("#two", "", tags={"one"}) and "<a" not in caption_html("#two", "", tags={"one"})


def test_pages_per_platform_and_hashtag(site):
    for platform in ("tiktok", "mastodon", "instagram", "x"):
        page = read_page(site / "platform" / platform / "index.html")
        assert {a["data-post"].split(":")[0] for tag, a in page.tags if tag == "article"} == {platform}
    slides = read_page(site / "tag" / "slides" / "index.html")
    assert [a["data-post"] for tag, a in slides.tags if tag == "article"] == ["x:901"]
    assert not (site / "tag" / "secret").exists()   # the private post's hashtag
    assert "TikTok" in " ".join(read_page(site / "index.html").text)   # the connector's title, not "tiktok"


def test_about_page_from_the_owner_table(site):
    page = read_page(site / "about.html")
    links = [a["href"] for tag, a in page.tags if tag == "a"]
    assert "https://robin.example/newsletter" in links and "https://shop.robin.example/" in links
    assert "https://github.com/robin" in links and "https://www.tiktok.com/@robin" in links
    # The archived Mastodon account's own profile link, which the table does not name.
    assert any(link.startswith("https://social.example/") for link in links)
    assert "Robin Roof" in " ".join(page.text)


def test_the_atom_feed_and_with_a_base_url_the_sitemap_and_canonical_links(world, tmp_path):
    out = tmp_path / "www"
    archive = Archive(world)
    result = build_site(archive, out, owner=Owner(name="Robin"), base_url="https://robin.example/posts")
    archive.close()
    feed = ElementTree.parse(out / "feed.xml").getroot()
    atom = "{http://www.w3.org/2005/Atom}"
    entries = feed.findall(f"{atom}entry")
    assert len(entries) == result.posts and entries[0].find(f"{atom}title").text.startswith("<script>")
    assert all(e.find(f"{atom}link").get("href").startswith("https://robin.example/posts/post/") for e in entries)
    urls = [loc.text for loc in ElementTree.parse(out / "sitemap.xml").getroot().iter(
        "{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert sorted(urls) == sorted("https://robin.example/posts/" + p.relative_to(out).as_posix()
                                  for p in pages_of(out))
    assert '<link rel="canonical" href="https://robin.example/posts/about.html">' in (out / "about.html").read_text()
    with pytest.raises(SiteError, match="--base-url"):
        build_site(Archive(world), tmp_path / "other", base_url="javascript:alert(1)")


# -- rebuilding ------------------------------------------------------------------------------


def small_archive(folder: Path) -> Archive:
    archive = Archive(folder)
    write_posts(archive, "x:main", [
        (Post(str(n), f"2025-01-{n:02d}T00:00:00Z", kind="text", text=f"post {n} #t{n % 2}", like_count=n),
         [(MediaRef(f"https://cdn.example/{n}.png", "image"), make_png(8, 8, (n, n, n)))]) for n in range(1, 22)])
    return archive


def test_a_rebuild_rewrites_only_what_changed_and_removes_what_left(tmp_path):
    archive = small_archive(tmp_path / "archive")
    out = tmp_path / "www"
    first = build_site(archive, out)
    assert first.posts == 21 and first.removed == 0 and (out / "page" / "2.html").exists()
    (out / "CNAME").write_text("robin.example\n")   # the person's own file: never touched
    again = build_site(archive, out)
    assert (again.written, again.removed) == (0, 0)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    # New counts for one post: its page changes, and nothing else.
    write_posts(archive, "x:main", [(Post("3", "2025-01-03T00:00:00Z", kind="text", text="post 3 #t1",
                                          like_count=300), [])], now="2025-02-01T00:00:00Z")
    changed = build_site(archive, out)
    assert changed.written == 1 and changed.removed == 0
    assert [p for p, t in before.items() if p.stat().st_mtime_ns != t] == [next(out.glob("post/x/3.html"))]

    # A post made private leaves: its page and its picture go, the pages listing it change.
    write_posts(archive, "x:main", [(Post("21", "2025-01-21T00:00:00Z", kind="text", text="post 21 #t1",
                                           visibility="private", like_count=21), [])], now="2025-02-02T00:00:00Z")
    smaller = build_site(archive, out)
    assert smaller.posts == 20 and smaller.removed == 4   # its page, its picture, the 2nd page of two lists
    assert not (out / "post" / "x" / "21.html").exists() and not (out / "page").exists()
    assert not (out / "platform" / "x" / "2.html").exists()
    assert not list((out / "media").glob(hashlib.sha256(make_png(8, 8, (21, 21, 21))).hexdigest() + "*"))
    assert (out / "CNAME").read_text() == "robin.example\n"
    # --platform and --since narrow it down; the rest leaves the folder.
    narrow = build_site(archive, out, platforms=["x"], since="2025-01-16")
    assert narrow.posts == 5 and not (out / "post" / "x" / "1.html").exists()
    assert select_posts(archive.db, archive.media_root, platforms=["tiktok"]) == []
    # --include-private brings the private post back.
    assert len(select_posts(archive.db, archive.media_root, include_private=True)) == 21
    archive.close()


class Killed(Exception):
    pass


def build_killed_after(archive: Archive, out: Path, monkeypatch, *, files: int = 0, name: str = "") -> None:
    """A build stopped (as by a kill) once it has written ``files`` files, or the file ``name``."""
    from archiver.views import site as site_module

    real = site_module.SiteFolder._replace
    written: list[Path] = []

    def replace(folder, target, fill):
        if (files and len(written) == files) or (name and any(p.name == name for p in written)):
            raise Killed(target)
        written.append(target)
        real(folder, target, fill)

    with monkeypatch.context() as patched:
        patched.setattr(site_module.SiteFolder, "_replace", replace)
        with pytest.raises(Killed):
            build_site(archive, out)


def test_an_interrupted_build_is_finished_by_the_next_and_its_pages_stay_the_sites(tmp_path, monkeypatch):
    archive = small_archive(tmp_path / "archive")
    out = tmp_path / "www"
    build_killed_after(archive, out, monkeypatch, files=9)
    assert not (out / MANIFEST).exists() and len([p for p in out.rglob("*") if p.is_file()]) >= 9
    first = build_site(archive, out)           # not refused as someone else's folder
    assert first.posts == 21 and not (out / ".archiver-site.pending").exists()
    # A later build killed after writing a new post's page; the post is then made private:
    # the page that build wrote goes, though no manifest ever listed it.
    write_posts(archive, "x:main", [(Post("22", "2025-01-22T00:00:00Z", kind="text", text="post 22"), [])],
                now="2025-02-01T00:00:00Z")
    build_killed_after(archive, out, monkeypatch, name="22.html")
    assert (out / "post" / "x" / "22.html").exists()
    write_posts(archive, "x:main", [(Post("22", "2025-01-22T00:00:00Z", kind="text", text="post 22",
                                          visibility="private"), [])], now="2025-02-02T00:00:00Z")
    build_site(archive, out)
    assert not (out / "post" / "x" / "22.html").exists()
    assert not (out / ".archiver-site.pending").exists()


def test_a_file_missing_from_the_archive_leaves_the_page_without_it(tmp_path):
    archive = small_archive(tmp_path / "archive")
    sha = hashlib.sha256(make_png(8, 8, (4, 4, 4))).hexdigest()
    (archive.media_root / sha[:2] / sha[2:4] / f"{sha}.png").unlink()
    result = build_site(archive, tmp_path / "www")
    assert result.media_missing == 1 and result.posts == 21
    page = (tmp_path / "www" / "post" / "x" / "4.html").read_text(encoding="utf-8")
    assert "post 4" in page and "<img" not in page and sha not in (tmp_path / "www" / "index.html").read_text()
    archive.close()


def test_a_folder_of_other_files_is_refused(tmp_path):
    archive = small_archive(tmp_path / "archive")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.pdf").write_bytes(b"%PDF")
    with pytest.raises(SiteError, match="did not write"):
        build_site(archive, tmp_path / "mine")
    assert os.listdir(tmp_path / "mine") == ["thesis.pdf"]
    archive.close()


# -- the command and the config ----------------------------------------------------------------


def test_the_command_says_what_is_wrong(world, site, tmp_path):
    from click.testing import CliRunner

    from archiver.cli.main import main

    def run(*args: str):
        return CliRunner().invoke(main, ["site", "--archive", str(world), *args])   # in-process: fast

    again = run("--out", str(site))
    assert again.exit_code == 0 and "0 files written" in again.stdout and "0 removed" in again.stdout
    only = run("--out", str(tmp_path / "t"), "--platform", "twitter")
    assert only.exit_code == 0, only.output
    assert {p.name for p in (tmp_path / "t" / "post").iterdir()} == {"x"}
    assert "social.example" not in (tmp_path / "t" / "about.html").read_text()   # other accounts' profiles too
    for args, message in ((["--platform", "myspace"], "unknown platform 'myspace'"),
                          (["--since", "last week"], "--since 'last week': expected a day as YYYY-MM-DD"),
                          (["--base-url", "ftp://robin.example"], "--base-url 'ftp://robin.example'"),
                          (["--out", str(world)], "did not write")):
        done = run(*args)
        assert done.exit_code == 1 and message in done.stderr, done.output
    missing = CliRunner().invoke(main, ["site", "--archive", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "no archive at" in missing.stderr


def test_the_owner_table_is_checked_and_names_the_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[owner]\nname = "Robin"\nprofiles = ["https://a.example/robin", "https://b.example/@r"]\n')
    owner = load_config(path).owner
    assert owner.name == "Robin" and owner.profiles == [(None, "https://a.example/robin"), (None, "https://b.example/@r")]
    for text, message in (
            ('[owner]\nshop = "shop.example"\n', "line 2: owner.shop = 'shop.example': expected an http(s) URL"),
            ('[owner]\nname = 3\n', "owner.name = 3: expected a string"),
            ('[owner]\nemail = "r@example.org"\n', "owner.email"),
            ('[owner.profiles]\ntiktok = "javascript:alert(1)"\n', "line 2: owner.profiles.tiktok = 'javascript:"),
            ('[owner]\nprofiles = ["https://ok.example", 5]\n', "as item 2 of the list")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(path)


# -- in a browser ------------------------------------------------------------------------------


def chromium_or_skip() -> str:
    found = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    if found:
        return found
    if os.environ.get("ARCHIVER_REQUIRE_CHROMIUM") == "1":
        pytest.fail("chromium not found and ARCHIVER_REQUIRE_CHROMIUM=1")
    pytest.skip("chromium is not installed")


# What each page shows once loaded: its pictures (each drawn, or not), its links inside the site
# and where they lead, and whether the hostile caption's script ran.
PAGE_STATE = """(() => ({
  title: document.title,
  images: [...document.images].map(i => ({src: i.currentSrc, drawn: i.complete && i.naturalWidth > 0})),
  videos: [...document.querySelectorAll('video')].map(v => v.poster),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href).filter(h => h.startsWith('file:')),
  scripts: [...document.scripts].map(s => s.src),
  pwned: window.pwned ?? null,
}))()"""


def test_chromium_renders_every_page_from_disk(site, tmp_path):
    from chromium_cdp import Chromium

    binary = chromium_or_skip()
    pages = pages_of(site)
    with Chromium(binary, tmp_path / "profile") as browser:
        browser.open_page()
        browser.send("Emulation.setDeviceMetricsOverride", {"width": 1000, "height": 1300, "deviceScaleFactor": 1,
                                                            "mobile": False})
        violations = []
        for path in pages:
            browser.navigate(path.as_uri())
            state = browser.evaluate(PAGE_STATE)
            violations += browser.csp_violations()
            assert state["title"], path
            assert all(image["drawn"] for image in state["images"]), (path, state["images"])
            for link in state["links"]:
                assert Path(unquote(urlsplit(link).path)).is_file(), (path, link)
            assert state["pwned"] is None, path
        assert violations == []

        # The hostile caption: shown as the text it is, its markup never run.
        hostile = post_page(site, "x", "window.pwned")
        browser.navigate(hostile.as_uri())
        assert browser.evaluate("document.querySelector('.caption').textContent").startswith(
            "<script>window.pwned = 1</script><img src=x")
        assert browser.evaluate("document.querySelectorAll('main script, main img').length") == 0
        assert browser.evaluate("window.pwned ?? null") is None

        # Search runs from disk: the index is a script the page's policy allows.
        browser.navigate((site / "search.html").as_uri() + "?q=slides")
        found = browser.evaluate("[...document.querySelectorAll('#results a')].map(a => a.textContent)")
        assert found == ["Three slides #slides"]
        browser.evaluate("(() => { const q = document.getElementById('q'); q.value = 'creme brulee'; "
                         "q.dispatchEvent(new Event('input')); })()")
        # "crème brûlée" on Mastodon and Instagram, found without its accents
        assert browser.evaluate("document.querySelectorAll('#results li').length") == 2
        assert browser.csp_violations() == []

        # What a person sees: the carousel's three pictures, drawn in their order.
        browser.navigate(post_page(site, "x", "Three slides").as_uri())

        shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
        if os.environ.get("ARCHIVER_KEEP_SCREENSHOT"):
            Path(os.environ["ARCHIVER_KEEP_SCREENSHOT"]).write_bytes(shot)
        image = decode_png(shot)
        tops = []
        for rgb in (RED, GREEN, BLUE):
            box = browser.evaluate(f"""(() => {{ const r = [...document.images].find(i => i.alt ===
                'Slide {(RED, GREEN, BLUE).index(rgb) + 1} alt').getBoundingClientRect();
                return [r.x, r.y, r.width, r.height].map(Math.round); }})()""")
            assert pixels_of(image, colour(rgb), tuple(box)) > 0.9 * box[2] * box[3], rgb
            tops.append(box[1])
        assert tops == sorted(tops)
