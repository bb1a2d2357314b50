"""`archiver site`: a static website of the person's own posts, built from the archive.

The folder it writes is served by any web host as it is, or opened from disk (a USB stick,
file://): every link between its pages is relative, nothing loads from another host (a
Content-Security-Policy in each page says so), and the search runs in the browser over an
index kept in a .js file (fetch() of a JSON file does not work from file://).

What is on it (the `SITE_*` names below are the paths):
- the timeline: the person's own posts from every platform, newest first, paged;
- a page per post: its media (images, a video with its cover as poster, carousels in their
  order, alt text as `alt`), its caption with links and hashtags made clickable, the date,
  the counts at the last archive run, and a link to the original;
- a timeline per platform and per hashtag, an "about / links" page from the config's
  [owner] table, an Atom feed, and with --base-url a sitemap and canonical links.

What stays out: posts whose visibility is not public (unlisted, followers, friends,
private …; a post whose visibility the platform does not say is shown), posts deleted on the
platform, reposts of others' posts and replies to others (kinds `boost`, `reply`: out of their
thread they say little, as `archiver content` holds too), and everything that is not the person's
own post (comments, followers …) — unless `include_private` is set, which brings back the
non-public and deleted posts.

Rebuilding is incremental: a file is written only when its bytes differ, media files are
copied once under their sha256 name, and a manifest of what was written lets the next build
delete the pages and files of posts that left the selection (a post made private must leave
the site). Nothing else in the folder is touched.

Archived text was written on the platforms, partly by others: it is escaped everywhere, and
a link is made only from an http(s) URL (`archiver.views.web.web_link`).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

from archiver.config import OwnerConfig as Owner  # the person, from the config's [owner] table
from archiver.views.web import web_link

PAGE_SIZE = 20           # posts per timeline page
FEED_ENTRIES = 50        # newest posts in the Atom feed
EXCERPT_CHARS = 280      # of a caption on a timeline page
SEARCH_TEXT_CHARS = 2000  # of a caption in the search index
MANIFEST = ".archiver-site.json"
# The files a build wrote so far, one a line, until it finishes: an interrupted build's files
# are still the site's (a rebuild owns and may delete them).
PENDING = ".archiver-site.pending"

# Nothing may load from another host; scripts and styles only from the site's own files
# (Chromium counts other file:// files as 'self' when the site is opened from disk).
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; "
                           "script-src 'self'; base-uri 'none'; form-action 'none'")
SHOWN_VISIBILITY = "public"   # and NULL: the platform did not say (Bluesky posts are all public)

# URLs and hashtags in a caption. A URL ends before white space or quotes; the punctuation a
# sentence puts after it is not part of it. A hashtag starts after anything but a word
# character, '&' (an HTML entity) or '/' (a URL's fragment), and holds a letter.
_CAPTION_TOKENS = re.compile(r"(?P<url>https?://[^\s<>\"']+)|(?<![\w&/#])#(?P<tag>\w*[^\W\d]\w*)", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}'\""
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_SAFE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}")


class SiteError(Exception):
    """A site that cannot be written as asked: the message says why and what to do."""


# -- the owner's page ------------------------------------------------------------------------


# -- what the site shows ----------------------------------------------------------------------


@dataclass
class SiteMedia:
    role: str
    position: int
    description: str | None
    sha256: str
    mime: str
    source: Path          # the file in the archive's media/ folder
    path: str             # where the site keeps it: media/<sha256>.<ext>

    @property
    def kind(self) -> str:
        return self.mime.split("/")[0] if self.mime else "file"


@dataclass
class SitePost:
    platform: str
    post_id: str
    kind: str | None
    created_at: str | None
    title: str | None
    text: str | None
    url: str | None
    link: str | None
    visibility: str | None
    deleted_at: str | None
    counts: dict[str, int | None]
    counted_at: str | None
    width: int | None = None
    height: int | None = None
    path: str = ""                      # its page: post/<platform>/<id>.html
    media: list[SiteMedia] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)   # hashtags, as first written

    @property
    def heading(self) -> str:
        """The post's name on a page: its title, else the caption's first line, cut short."""
        if self.title and self.title.strip():
            return self.title.strip()
        first = (self.text or "").strip().split("\n", 1)[0]
        if not first:
            return "(no caption)"
        return first if len(first) <= 80 else first[:79].rstrip() + "…"

    @property
    def shown_media(self) -> list[SiteMedia]:
        """What the post's page shows: its files by position (a carousel's pictures and videos in
        their order); the cover is a video's poster, shown itself only when nothing else is there."""
        shown = [m for m in self.media if m.role not in ("cover", "thumbnail")]
        if shown:
            return sorted(shown, key=lambda m: (m.position, m.kind != "video"))
        return self.covers[:1]

    @property
    def covers(self) -> list[SiteMedia]:
        return [m for m in self.media if m.kind == "image" and m.role in ("cover", "thumbnail")]

    @property
    def picture(self) -> SiteMedia | None:
        """The one picture of the post on a timeline: its cover, else its first image."""
        images = self.covers + [m for m in self.shown_media if m.kind == "image"]
        return images[0] if images else None


@dataclass
class SiteResult:
    out: Path
    posts: int
    pages: int
    written: int
    unchanged: int
    removed: int
    media_missing: int
    search: bool = True


def _slug(value: str) -> str:
    """A file name for `value`: itself when it is plain ASCII, else its plain part and a
    short hash (two ids never share a name, and no name leaves its folder)."""
    if _SAFE_NAME.fullmatch(value):
        return value
    plain = re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-")[:48]
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:10]
    return f"{plain}-{digest}" if plain else digest


def tag_key(tag: str) -> str:
    return tag.casefold()


def tag_path(tag: str, page: int = 1) -> str:
    return _list_page(f"tag/{_slug(tag_key(tag))}", page)


def platform_path(platform: str, page: int = 1) -> str:
    return _list_page(f"platform/{_slug(platform)}", page)


def timeline_path(page: int = 1) -> str:
    return "index.html" if page == 1 else f"page/{page}.html"


def _list_page(folder: str, page: int) -> str:
    return f"{folder}/index.html" if page == 1 else f"{folder}/{page}.html"


def hashtags(text: str | None) -> list[str]:
    """The hashtags in `text` (without '#'), each once (by its case-folded form), in order."""
    seen: dict[str, str] = {}
    for match in _CAPTION_TOKENS.finditer(text or ""):
        if match.group("tag") and tag_key(match.group("tag")) not in seen:
            seen[tag_key(match.group("tag"))] = match.group("tag")
    return list(seen.values())


# -- reading the archive ---------------------------------------------------------------------


def _rows(db, sql: str, params: Iterable[Any] = ()) -> list[dict]:
    cursor = db.execute(sql, list(params))
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def select_posts(db, media_root: Path, *, platforms: Iterable[str] = (), since: str | None = None,
                 include_private: bool = False) -> list[SitePost]:
    """The posts the site shows, newest first, with their stored media files."""
    where = ["(kind IS NULL OR kind NOT IN ('boost', 'reply'))"]
    params: list[Any] = []
    if not include_private:
        where.append("deleted_at IS NULL AND (visibility IS NULL OR visibility = ?)")
        params.append(SHOWN_VISIBILITY)
    platforms = list(platforms)
    if platforms:
        where.append(f"platform IN ({', '.join('?' for _ in platforms)})")
        params.extend(platforms)
    if since:
        where.append("created_at >= ?")
        params.append(since)
    rows = _rows(db, f"""
        SELECT platform, post_id, kind, created_at, title, text, url, link, visibility, deleted_at,
               like_count, comment_count, share_count, view_count, last_seen_at, width, height
        FROM posts WHERE {' AND '.join(where)}
        ORDER BY created_at IS NULL, created_at DESC, platform, post_id""", params)
    posts = []
    used_paths: set[str] = set()
    for row in rows:
        post = SitePost(
            platform=row["platform"], post_id=row["post_id"], kind=row["kind"], created_at=row["created_at"],
            title=row["title"], text=row["text"], url=row["url"], link=row["link"],
            visibility=row["visibility"], deleted_at=row["deleted_at"],
            counts={"likes": row["like_count"], "comments": row["comment_count"], "shares": row["share_count"],
                    "views": row["view_count"]},
            counted_at=row["last_seen_at"],
            width=row["width"] if isinstance(row["width"], int) and row["width"] > 0 else None,
            height=row["height"] if isinstance(row["height"], int) and row["height"] > 0 else None)
        name = _slug(post.post_id)
        if f"{post.platform}/{name}".lower() in used_paths:   # ids differing only in case, on a case-blind disk
            name += "-" + hashlib.sha256(post.post_id.encode("utf-8")).hexdigest()[:10]
        used_paths.add(f"{post.platform}/{name}".lower())
        path = f"post/{_slug(post.platform)}/{name}.html"
        post.path = path
        post.tags = hashtags(post.text) or hashtags(post.title)
        posts.append(post)
    _attach_media(db, media_root, posts)
    return posts


def _attach_media(db, media_root: Path, posts: list[SitePost]) -> None:
    by_key = {(p.platform, p.post_id): p for p in posts}
    if not by_key:
        return
    root = media_root.resolve()
    rows = _rows(db, """
        SELECT pm.platform, pm.post_id, pm.role, pm.position, pm.description, m.sha256, m.path, m.mime
        FROM post_media pm JOIN media m ON m.sha256 = pm.sha256
        WHERE pm.status = 'ok' ORDER BY pm.platform, pm.post_id, pm.position, pm.role""")
    for row in rows:
        post = by_key.get((row["platform"], row["post_id"]))
        if post is None:
            continue
        source = (root / row["path"]).resolve()
        if root not in source.parents:
            continue   # a path that leaves media/ is never read
        extension = Path(row["path"]).suffix
        if not _SAFE_EXTENSION.fullmatch(extension):
            extension = ""
        post.media.append(SiteMedia(row["role"], row["position"], row["description"], row["sha256"],
                                    row["mime"] or "", source, f"media/{row['sha256']}{extension.lower()}"))


def _platform_titles(platforms: Iterable[str]) -> dict[str, str]:
    """Each platform's name for people, from its connector (the core names no platform)."""
    from archiver.connector import UnknownPlatform, get_connector

    titles = {}
    for platform in platforms:
        try:
            titles[platform] = get_connector(platform).title
        except UnknownPlatform:
            titles[platform] = platform
    return titles


# -- HTML ------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def caption_html(text: str | None, root: str, tags: set[str] | frozenset[str] | None = None) -> str:
    """A caption as HTML: escaped, its http(s) URLs linked, its hashtags linked to the
    site's tag pages (`root` leads from the page to the site's top; with `tags`, only the
    hashtags whose case-folded form is in it have a page), line breaks kept."""
    out = []
    text = text or ""
    at = 0
    for match in _CAPTION_TOKENS.finditer(text):
        out.append(_e(text[at:match.start()]))
        at = match.end()
        if match.group("tag"):
            tag = match.group("tag")
            if tags is not None and tag_key(tag) not in tags:
                out.append(_e(match.group(0)))
                continue
            out.append(f'<a class="tag" href="{_e(root + tag_path(tag))}">#{_e(tag)}</a>')
            continue
        url = match.group("url")
        trimmed = url.rstrip(_URL_TRAILING)
        # A ')' closing a '(' inside the URL is its own (Wikipedia links).
        while url[len(trimmed):].startswith(")") and trimmed.count("(") > trimmed.count(")"):
            trimmed += ")"
        at = match.start() + len(trimmed)
        if web_link(trimmed):
            out.append(f'<a href="{_e(trimmed)}" rel="nofollow noreferrer noopener">{_e(trimmed)}</a>')
        else:
            out.append(_e(trimmed))
    out.append(_e(text[at:]))
    return "".join(out).replace("\r\n", "\n").replace("\n", "<br>\n")


def _excerpt(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) <= EXCERPT_CHARS:
        return text
    cut = text[:EXCERPT_CHARS]
    space = cut.rfind(" ")
    return (cut[:space] if space > EXCERPT_CHARS // 2 else cut).rstrip() + " …"


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _outside_link(url: str | None, text: str) -> str:
    link = web_link(url)
    if not link:
        return ""
    return f'<a class="original" href="{_e(link)}" rel="noreferrer noopener">{_e(text)}</a>'


@dataclass
class Site:
    """Everything a page needs to know of the whole site."""

    title: str
    platforms: dict[str, str]            # name -> title, in the order of the navigation
    base_url: str | None
    tags: frozenset[str] = frozenset()   # the case-folded hashtags that have a page
    search: bool = True

    def page(self, path: str, title: str, body: str, *, scripts: Iterable[str] = ()) -> bytes:
        root = _root(path)
        nav = [f'<a href="{root}index.html">Posts</a>']
        nav += [f'<a href="{_e(root + platform_path(name))}">{_e(title)}</a>' for name, title in self.platforms.items()]
        nav += [f'<a href="{root}about.html">About</a>']
        if self.search:
            nav.append(f'<a href="{root}search.html">Search</a>')
        canonical = (f'<link rel="canonical" href="{_e(self.base_url + path)}">' if self.base_url else "")
        head_title = title if title == self.title else f"{title} — {self.title}"
        script_tags = "".join(f'<script src="{root}{_e(s)}"></script>' for s in scripts)
        text = (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">"
            "<meta name=\"referrer\" content=\"no-referrer\">"
            f"<title>{_e(head_title)}</title>"
            f"<link rel=\"stylesheet\" href=\"{root}assets/site.css\">"
            f"<link rel=\"alternate\" type=\"application/atom+xml\" href=\"{root}feed.xml\" title=\"{_e(self.title)}\">"
            f"{canonical}</head>\n<body>\n"
            f"<header><a class=\"site-name\" href=\"{root}index.html\">{_e(self.title)}</a>"
            f"<nav>{' '.join(nav)}</nav></header>\n<main>\n{body}\n</main>\n"
            "<footer>Built from an archive by archiver: a copy of these posts kept on the owner's own disk."
            "</footer>\n" + script_tags + "</body></html>\n")
        return text.encode("utf-8")


def _root(path: str) -> str:
    """The way from the page at `path` back to the site's top folder."""
    return "../" * path.count("/")


def _media_html(post: SitePost, root: str) -> str:
    parts = []
    cover = post.covers[0] if post.covers else None
    for number, item in enumerate(post.shown_media, start=1):
        src = _e(root + item.path)
        if item.kind == "image":
            alt = item.description or f"{post.heading}: picture {number}"
            element = f'<img src="{src}" alt="{_e(alt)}">'
        elif item.kind == "video":
            poster = f' poster="{_e(root + cover.path)}"' if cover else ""
            # The post's size keeps the player's shape before the file loads (an inline
            # style would break the CSP); a vertical video's shape when it is not known.
            size = (f' width="{post.width}" height="{post.height}"' if post.width and post.height
                    else ' class="unsized"')
            element = f'<video src="{src}" controls preload="metadata"{poster}{size}></video>'
        elif item.kind == "audio":
            element = f'<audio src="{src}" controls preload="none"></audio>'
        else:
            element = f'<a href="{src}">{_e(item.role)} file</a>'
        caption = f"<figcaption>{_e(item.description)}</figcaption>" if item.description and item.kind != "image" else ""
        parts.append(f'<figure data-role="{_e(item.role)}" data-position="{item.position}">{element}{caption}</figure>')
    return f'<div class="media">{"".join(parts)}</div>' if parts else ""


def _labels(post: SitePost) -> str:
    labels = []
    if post.deleted_at:
        labels.append(f"deleted on the platform {post.deleted_at[:10]}")
    if post.visibility and post.visibility != SHOWN_VISIBILITY:
        labels.append(f"visible to: {post.visibility}")
    return "".join(f' <span class="label">{_e(label)}</span>' for label in labels)


def _date(post: SitePost) -> str:
    if not post.created_at:
        return '<span class="date">date unknown</span>'
    return f'<time datetime="{_e(post.created_at)}">{_e(post.created_at[:10])}</time>'


def post_page(site: Site, post: SitePost) -> bytes:
    root = _root(post.path)
    platform = site.platforms.get(post.platform, post.platform)
    title = post.title.strip() if post.title and post.title.strip() else None
    caption = post.text if post.text and post.text.strip() else None
    heading = post.heading   # the page's <title>
    # Without a title of its own, the caption's first line would show twice: the page's
    # heading says what it is instead.
    shown_heading = title or (f"{platform} post" + (f" of {post.created_at[:10]}" if post.created_at else "")
                              if caption else heading)
    counts = " · ".join(f"{_number(v)} {k}" for k, v in post.counts.items() if v is not None)
    counted = f' <small>(as of {_e((post.counted_at or "")[:10])})</small>' if counts and post.counted_at else ""
    body = [
        f'<article class="post" data-post="{_e(post.platform)}:{_e(post.post_id)}">',
        f"<h1>{_e(shown_heading)}</h1>",
        f'<p class="meta">{_date(post)} · <a href="{_e(root + platform_path(post.platform))}">{_e(platform)}</a>'
        f"{_labels(post)}</p>",
        _media_html(post, root),
    ]
    if caption:
        body.append(f'<div class="caption">{caption_html(caption, root, site.tags)}</div>')
    elif title and title != shown_heading:
        body.append(f'<div class="caption">{caption_html(title, root, site.tags)}</div>')
    if post.link and web_link(post.link):
        body.append(f'<p class="link">Links to {_outside_link(post.link, post.link)}</p>')
    if counts:
        body.append(f'<p class="counts">{_e(counts)}{counted}</p>')
    original = _outside_link(post.url, f"See it on {platform}")
    if original:
        body.append(f"<p>{original}</p>")
    body.append("</article>")
    return site.page(post.path, heading, "\n".join(b for b in body if b))


def _card(site: Site, post: SitePost, root: str) -> str:
    picture = post.picture
    href = _e(root + post.path)
    image = ""
    if picture:
        alt = picture.description or post.heading
        image = f'<a class="thumb" href="{href}"><img src="{_e(root + picture.path)}" alt="{_e(alt)}"></a>'
    platform = site.platforms.get(post.platform, post.platform)
    excerpt = _excerpt(post.text or post.title)
    if excerpt == post.heading:
        excerpt = ""   # a one-line caption is the card's heading already
    video = ' <span class="label">video</span>' if any(m.kind == "video" for m in post.media) else ""
    return (f'<article class="card" data-post="{_e(post.platform)}:{_e(post.post_id)}">{image}<div>'
            f'<h2><a href="{href}">{_e(post.heading)}</a></h2>'
            f'<p class="meta">{_date(post)} · {_e(platform)}{video}{_labels(post)}</p>'
            + (f'<p class="excerpt">{caption_html(excerpt, root, site.tags)}</p>' if excerpt else "")
            + "</div></article>")


def list_pages(site: Site, posts: list[SitePost], heading: str, path_of: Callable[[int], str],
               note: str = "") -> list[tuple[str, bytes]]:
    """A paged list of posts: PAGE_SIZE a page, links to the pages before and after."""
    chunks = [posts[i:i + PAGE_SIZE] for i in range(0, len(posts), PAGE_SIZE)] or [[]]
    pages = []
    for number, chunk in enumerate(chunks, start=1):
        path = path_of(number)
        root = _root(path)
        cards = "\n".join(_card(site, post, root) for post in chunk)
        if not cards:
            cards = '<p class="empty">No posts to show yet — run `archiver export` or import an export, then build again.</p>'
        links = []
        if number > 1:
            links.append(f'<a rel="prev" href="{_e(root + path_of(number - 1))}">← newer</a>')
        if len(chunks) > 1:
            links.append(f"<span>page {number} of {len(chunks)}</span>")
        if number < len(chunks):
            links.append(f'<a rel="next" href="{_e(root + path_of(number + 1))}">older →</a>')
        pager = f'<nav class="pager">{" ".join(links)}</nav>' if links else ""
        title = heading if number == 1 else f"{heading} (page {number})"
        body = (f"<h1>{_e(heading)}</h1>" + (f'<p class="note">{_e(note)}</p>' if note else "")
                + f'\n<div class="cards">\n{cards}\n</div>\n{pager}')
        pages.append((path, site.page(path, title, body)))
    return pages


def about_page(site: Site, owner: Owner, accounts: list[dict], avatar: str | None) -> bytes:
    path = "about.html"
    body = [f"<h1>{_e(owner.name or site.title)}</h1>"]
    if avatar:
        body.append(f'<img class="avatar" src="{_e(avatar)}" alt="{_e(owner.name or site.title)}">')
    if owner.bio:
        body.append(f'<div class="bio">{caption_html(owner.bio, "", site.tags)}</div>')
    own = [(label, url) for label, url in (("Newsletter", owner.newsletter), ("Shop", owner.shop),
                                            ("Blog", owner.blog)) if url and web_link(url)]
    if own:
        body.append("<h2>My own channels</h2><ul class=\"links\">" + "".join(
            f'<li>{_e(label)}: <a href="{_e(url)}" rel="me noopener">{_e(url)}</a></li>' for label, url in own) + "</ul>")
    profiles: list[tuple[str, str]] = []
    for label, url in owner.profiles:
        if web_link(url):
            profiles.append((site.platforms.get(label or "", None) or _title_of(label) or url, url))
    named = {url.rstrip("/") for _, url in profiles}
    for account in accounts:   # the archived accounts' own profile links, where the config names none
        url = web_link(account["url"]) or ""
        if url and url.rstrip("/") not in named:
            profiles.append((_title_of(account["platform"]) or account["platform"], url))
            named.add(url.rstrip("/"))
    if profiles:
        body.append("<h2>Me elsewhere</h2><ul class=\"links profiles\">" + "".join(
            f'<li>{_e(label)}: <a href="{_e(url)}" rel="me noopener">{_e(url)}</a></li>' for label, url in profiles)
            + "</ul>")
    if len(body) == 1:
        body.append('<p class="empty">Nothing here yet: add an [owner] table to config.toml (name, bio, '
                    "newsletter, shop, blog, profiles) and build again.</p>")
    body.append('<p class="note">Feed: <a href="feed.xml">Atom</a>.</p>')
    return site.page(path, "About", "\n".join(body))


def _title_of(platform: str | None) -> str | None:
    if not platform:
        return None
    return _platform_titles([platform])[platform]


def search_page(site: Site) -> bytes:
    body = ('<h1>Search</h1>\n<p><label for="q">Words in a post: </label>'
            '<input id="q" type="search" autocomplete="off" autofocus></p>\n'
            '<p id="count" class="note"></p>\n<ol id="results"></ol>\n'
            '<noscript><p class="empty">Search needs JavaScript; every post is also listed on the '
            '<a href="index.html">timeline</a>, by platform and by hashtag.</p></noscript>')
    return site.page("search.html", "Search", body, scripts=("assets/search-index.js", "assets/search.js"))


def search_index(site: Site, posts: list[SitePost]) -> bytes:
    """The posts as a script assigning a global: a page opened from disk cannot fetch() JSON."""
    entries = [{"u": p.path, "t": p.heading, "d": (p.created_at or "")[:10],
                "n": site.platforms.get(p.platform, p.platform),
                "x": " ".join(filter(None, [p.title, p.text]))[:SEARCH_TEXT_CHARS]} for p in posts]
    # ensure_ascii: no raw U+2028 or "</script>" can reach the script.
    return ("// The site's posts for search.html (archiver site). Data only.\nwindow.ARCHIVER_SEARCH = "
            + json.dumps(entries, ensure_ascii=True, separators=(",", ":")) + ";\n").encode("ascii")


SEARCH_SCRIPT = """\
// Search for a site written by `archiver site`: filters the posts of search-index.js in the
// browser; nothing is sent anywhere. Results are built with textContent, never as HTML.
(function () {
  "use strict";
  var posts = window.ARCHIVER_SEARCH || [];
  var input = document.getElementById("q");
  var list = document.getElementById("results");
  var count = document.getElementById("count");
  function fold(text) {
    return text.normalize("NFKD").replace(/[\\u0300-\\u036f]/g, "").toLowerCase();
  }
  var haystacks = posts.map(function (p) { return fold([p.t, p.x, p.n, p.d].join(" ")); });
  function show() {
    var words = fold(input.value).split(/\\s+/).filter(Boolean);
    list.textContent = "";
    if (!words.length) { count.textContent = posts.length + " posts"; return; }
    var found = 0;
    for (var i = 0; i < posts.length; i++) {
      if (!words.every(function (w) { return haystacks[i].indexOf(w) >= 0; })) { continue; }
      found++;
      if (found > 200) { continue; }
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = posts[i].u;
      link.textContent = posts[i].t;
      var meta = document.createElement("small");
      meta.textContent = " " + posts[i].d + " · " + posts[i].n;
      item.appendChild(link);
      item.appendChild(meta);
      list.appendChild(item);
    }
    count.textContent = found === 0 ? "Nothing found." : found + (found === 1 ? " post" : " posts");
  }
  input.addEventListener("input", show);
  var asked = new URLSearchParams(location.search).get("q");
  if (asked) { input.value = asked; }
  show();
})();
"""

STYLE = """\
/* archiver site */
body { font: 16px/1.5 system-ui, sans-serif; color: #1d1d1f; background: #fafafa; margin: 0; }
header { display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: baseline; padding: 14px 24px;
         background: #fff; border-bottom: 1px solid #e5e5e5; }
header .site-name { font-weight: 700; font-size: 20px; color: #1d1d1f; text-decoration: none; }
nav a { margin-right: 14px; }
main { max-width: 880px; margin: 0 auto; padding: 16px 24px 40px; }
footer { max-width: 880px; margin: 0 auto; padding: 16px 24px; color: #777; font-size: 13px; }
a { color: #0a58ca; }
h1 { font-size: 26px; margin: 16px 0 8px; } h2 { font-size: 18px; margin: 0 0 4px; }
.meta, .note, small { color: #666; font-size: 14px; }
.label { background: #eee; border-radius: 4px; padding: 0 6px; font-size: 12px; color: #444; }
.cards { display: flex; flex-direction: column; gap: 14px; }
.card { display: flex; gap: 14px; background: #fff; border: 1px solid #e5e5e5; border-radius: 8px; padding: 12px; }
.card .thumb img { width: 120px; height: 120px; object-fit: cover; border-radius: 6px; display: block; background: #ddd; }
.card h2 a { color: #1d1d1f; text-decoration: none; } .card h2 a:hover { text-decoration: underline; }
.excerpt { margin: 4px 0 0; overflow-wrap: anywhere; }
.pager { margin: 20px 0; display: flex; gap: 16px; }
.post .media { display: flex; flex-direction: column; gap: 12px; margin: 12px 0; }
.post .media figure { margin: 0; }
.post .media img, .post .media video { max-width: 100%; max-height: 80vh; display: block; border-radius: 6px;
                                       background: #ddd; }
.post .media img { min-width: 64px; min-height: 64px; }
.post .media video { width: 100%; max-width: 480px; height: auto; object-fit: contain; background: #111; }
.post .media video.unsized { aspect-ratio: 9 / 16; }
figcaption { color: #666; font-size: 14px; }
.caption { font-size: 17px; overflow-wrap: anywhere; margin: 12px 0; }
.empty { padding: 16px; background: #f0f0f0; border-radius: 6px; }
.bio { margin: 8px 0 20px; font-size: 17px; }
img.avatar { width: 96px; height: 96px; border-radius: 50%; object-fit: cover; }
#q { font-size: 17px; padding: 4px 8px; width: min(420px, 90%); }
"""


# -- feed and sitemap ---------------------------------------------------------------------------


def atom_feed(site: Site, posts: list[SitePost], author: str) -> bytes:
    base = site.base_url or ""
    newest = [p for p in posts if p.created_at][:FEED_ENTRIES]
    updated = max((p.created_at or "" for p in newest), default="") or "1970-01-01T00:00:00Z"
    feed_id = base + "feed.xml" if base else "urn:archiver:site:feed"
    lines = ['<?xml version="1.0" encoding="utf-8"?>', '<feed xmlns="http://www.w3.org/2005/Atom">',
             f"<title>{_e(site.title)}</title>", f"<id>{_e(feed_id)}</id>", f"<updated>{_e(updated)}</updated>",
             f"<author><name>{_e(author)}</name></author>", f'<link rel="alternate" href="{_e(base)}index.html"/>']
    if base:
        lines.append(f'<link rel="self" href="{_e(base)}feed.xml"/>')
    for post in newest:
        entry_id = (base + post.path) if base else f"urn:archiver:post:{quote(post.platform)}:{quote(post.post_id, safe='')}"
        content = _media_preview(post, base) + caption_html(post.text or post.title, base, site.tags)
        lines += ["<entry>", f"<title>{_e(post.heading)}</title>", f"<id>{_e(entry_id)}</id>",
                  f'<link rel="alternate" href="{_e(base + post.path)}"/>',
                  f"<published>{_e(post.created_at)}</published>", f"<updated>{_e(post.created_at)}</updated>",
                  f'<category term="{_e(site.platforms.get(post.platform, post.platform))}"/>',
                  f'<content type="html">{_e(content)}</content>', "</entry>"]
    lines.append("</feed>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _media_preview(post: SitePost, root: str) -> str:
    picture = post.picture
    if not picture:
        return ""
    return f'<p><img src="{_e(root + picture.path)}" alt="{_e(picture.description or post.heading)}"></p>'


def sitemap(base_url: str, pages: Iterable[str]) -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
    lines += [f"<url><loc>{_e(base_url + page)}</loc></url>" for page in sorted(pages)]
    lines.append("</urlset>")
    return ("\n".join(lines) + "\n").encode("utf-8")


# -- writing the folder ---------------------------------------------------------------------


class SiteFolder:
    """The output folder: writes a file only when its bytes differ, copies a media file only
    when it is not there yet, and at the end deletes what an earlier build wrote that this
    one did not (from the manifest) — never anything else."""

    def __init__(self, out: Path):
        self.out = out
        self.manifest = out / MANIFEST
        self.pending = out / PENDING
        self.previous = self._read_manifest() | self._read_pending()
        self._journal: Any = None
        self.files: set[str] = set()
        self.written = 0
        self.unchanged = 0
        self.removed = 0

    def _read_manifest(self) -> set[str]:
        if not self.out.exists():
            return set()
        if not self.out.is_dir():
            raise SiteError(f"{self.out} is a file, not a folder: choose a folder with --out")
        if not self.manifest.exists():
            if not self.pending.exists() and any(self.out.iterdir()):   # a site's folder has one or both
                raise SiteError(f"{self.out} holds files `archiver site` did not write: choose an empty or new "
                                "folder with --out (a site's folder is its own; a rebuild deletes what it wrote "
                                "before and nothing else)")
            return set()
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
            files = data["files"]
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise ValueError("files is not a list of paths")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SiteError(f"{self.manifest}: not a manifest archiver can read ({error}); delete the folder "
                            "and build again") from None
        return {f for f in files if self._safe(f)}

    def _read_pending(self) -> set[str]:
        try:
            lines = self.pending.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return set()
        except OSError as error:
            raise SiteError(f"{self.pending}: cannot read it ({error}); delete the folder and build again") from None
        return {line for line in lines if self._safe(line)}

    def _note_written(self, target: Path) -> None:
        relative = target.relative_to(self.out).as_posix()
        if relative in self.previous:
            return
        if self._journal is None:
            self._journal = open(self.pending, "a", encoding="utf-8")
        self._journal.write(relative + "\n")
        self._journal.flush()

    @staticmethod
    def _safe(relative: str) -> bool:
        parts = relative.split("/")
        return bool(relative) and not relative.startswith("/") and all(p not in ("", ".", "..") for p in parts)

    def _target(self, relative: str) -> Path:
        if not self._safe(relative):
            raise ValueError(f"not a path inside the site: {relative!r}")
        self.files.add(relative)
        return self.out / relative

    def write(self, relative: str, data: bytes) -> None:
        target = self._target(relative)
        try:
            if target.stat().st_size == len(data) and target.read_bytes() == data:
                self.unchanged += 1
                return
        except FileNotFoundError:
            pass
        self._replace(target, lambda out: out.write(data))
        self.written += 1

    def copy(self, relative: str, source: Path) -> bool:
        """Copy a media file named by its sha256: there already (same size), it is the same file.
        False when the archive's file is missing."""
        target = self._target(relative)
        try:
            size = source.stat().st_size
        except FileNotFoundError:
            self.files.discard(relative)
            return False
        if target.exists() and target.stat().st_size == size:
            self.unchanged += 1
            return True
        # A copy, not a hard link: a tool that edits the site's files in place (an image
        # optimizer, an upload client) must never change the archive's.
        with open(source, "rb") as stream:
            self._replace(target, lambda out: shutil.copyfileobj(stream, out, 1 << 20))
        self.written += 1
        return True

    def _replace(self, target: Path, fill: Callable[[Any], Any]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target != self.manifest:
            self._note_written(target)
        handle, temporary = tempfile.mkstemp(prefix=".part-", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                fill(out)
            os.chmod(temporary, 0o644)   # a web server reads the site as another user
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def finish(self) -> None:
        """Delete what the last build wrote and this one did not, then record this build's files."""
        top = self.out.resolve()
        for relative in sorted(self.previous - self.files - {MANIFEST}):
            path = self.out / relative
            # Never through a link: a folder of the site replaced by a symlink leads elsewhere.
            if path.is_file() and path.resolve() == top / relative:
                path.unlink()
                self.removed += 1
                self._prune(path.parent)
        listing = {"written_by": "archiver site", "files": sorted(self.files)}
        data = (json.dumps(listing, indent=1) + "\n").encode("utf-8")
        self.files.add(MANIFEST)
        try:
            unchanged = self.manifest.read_bytes() == data
        except FileNotFoundError:
            unchanged = False
        if not unchanged:
            self._replace(self.manifest, lambda out: out.write(data))
        if self._journal is not None:
            self._journal.close()
        self.pending.unlink(missing_ok=True)

    def _prune(self, folder: Path) -> None:
        """Remove folders the deletions left empty, up to the site's top."""
        out = self.out.resolve()
        folder = folder.resolve()
        while folder != out and out in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


# -- the whole site ---------------------------------------------------------------------------


def normalized_base_url(value: str | None) -> str | None:
    """`--base-url` as the prefix of every absolute link: an http(s) URL ending in '/'."""
    if value is None:
        return None
    if not web_link(value) or "?" in value or "#" in value:
        raise SiteError(f"--base-url {value!r}: expected the http(s) address the site will be served at, "
                        "e.g. https://example.org/ or https://example.org/posts/")
    return value if value.endswith("/") else value + "/"


def build_site(archive, out: Path, *, owner: Owner | None = None, platforms: Iterable[str] = (),
               since: str | None = None, base_url: str | None = None, include_private: bool = False,
               progress: Callable[[str], None] | None = None) -> SiteResult:
    """Write (or bring up to date) the website of `archive` (an archiver.archive.Archive) in `out`."""
    owner = owner or Owner()
    platforms = list(platforms)
    base = normalized_base_url(base_url)
    out = Path(out).expanduser()
    folder = SiteFolder(out)   # checks the folder before anything is read or written
    media_root = archive.media_root
    with archive.reading() as db:
        posts = select_posts(db, media_root, platforms=platforms, since=since, include_private=include_private)
        accounts = [a for a in _rows(db, "SELECT platform, username, display_name, url, avatar_sha256 FROM accounts "
                                         "ORDER BY account_id")
                    if not platforms or a["platform"] in platforms]   # --platform: the others' profiles stay out too
        avatar_row = next((_rows(db, "SELECT sha256, path FROM media WHERE sha256 = ?", [a["avatar_sha256"]])
                           for a in accounts if a["avatar_sha256"]), [])
    out.mkdir(parents=True, exist_ok=True)

    # Media first: a post whose files are all missing on disk still gets its page, without them.
    missing = 0
    for post in posts:
        kept = []
        for item in post.media:
            if folder.copy(item.path, item.source):
                kept.append(item)
            else:
                missing += 1
        post.media = kept
    avatar = None
    if avatar_row:
        source = (media_root / avatar_row[0]["path"]).resolve()
        extension = Path(avatar_row[0]["path"]).suffix.lower()
        relative = f"media/{avatar_row[0]['sha256']}{extension if _SAFE_EXTENSION.fullmatch(extension) else ''}"
        if media_root.resolve() in source.parents and folder.copy(relative, source):
            avatar = relative

    shown_platforms = sorted({p.platform for p in posts})
    titles = _platform_titles(shown_platforms)
    name = owner.name or next((a["display_name"] or a["username"] for a in accounts
                               if a["display_name"] or a["username"]), None)
    site = Site(title=name or "My posts", platforms=dict(sorted(titles.items(), key=lambda kv: kv[1].lower())),
                base_url=base)
    site.tags = frozenset(tag_key(t) for p in posts for t in p.tags)
    pages: list[tuple[str, bytes]] = []
    pages += list_pages(site, posts, "Posts" if not owner.name else f"Posts by {owner.name}", timeline_path,
                        note=f"{len(posts)} posts from {', '.join(site.platforms.values()) or 'no platform yet'}, "
                             "newest first.")
    for platform, title in site.platforms.items():
        mine = [p for p in posts if p.platform == platform]
        pages += list_pages(site, mine, f"On {title}", functools.partial(platform_path, platform))
    by_tag: dict[str, list[SitePost]] = {}
    tag_names: dict[str, str] = {}
    for post in posts:
        for tag in post.tags:
            by_tag.setdefault(tag_key(tag), []).append(post)
            tag_names.setdefault(tag_key(tag), tag)
    for key, tagged in sorted(by_tag.items()):
        tag = tag_names[key]
        pages += list_pages(site, tagged, f"#{tag}", functools.partial(tag_path, tag))
    for post in posts:
        pages.append((post.path, post_page(site, post)))
    pages.append(("about.html", about_page(site, owner, accounts, avatar)))
    pages.append(("search.html", search_page(site)))

    for path, data in pages:
        folder.write(path, data)
    folder.write("assets/site.css", STYLE.encode("utf-8"))
    folder.write("assets/search.js", SEARCH_SCRIPT.encode("utf-8"))
    folder.write("assets/search-index.js", search_index(site, posts))
    folder.write("feed.xml", atom_feed(site, posts, owner.name or site.title))
    if base:
        folder.write("sitemap.xml", sitemap(base, [p for p, _ in pages]))
    folder.finish()
    if progress:
        progress(f"{len(posts)} posts, {len(pages)} pages")
    return SiteResult(out=out, posts=len(posts), pages=len(pages), written=folder.written,
                      unchanged=folder.unchanged, removed=folder.removed, media_missing=missing)
