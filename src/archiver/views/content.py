"""Content for every other platform: `archiver content gaps` and `archiver content bundle`.

Gaps: the person's own posts that are on one platform and not on another. A post counts as
on a platform when a post there has the same media file (by sha256, from `post_media`) or
the same caption once both are normalized (Unicode NFKC, case folded, links, hashtags and
punctuation left out); a caption cut short to fit a platform (at a word boundary, as a
bundle cuts it) still matches the whole one.

Bundle: one archived post made ready for another platform, as files in a folder: its media
files in order, the caption adapted to the target's limits (`PostLimits`, declared by each
connector: length in the platform's own unit, cut at a word boundary; hashtags trimmed to
the most it takes; a title where it has a title field; a single topic tag where it has
one), and a checklist.md of what to do by hand. Nothing is posted: archiver stays
read-only towards every platform.

The core names no platform: every number comes from the connectors' declarations.
"""

from __future__ import annotations

import bisect
import os
import re
import shutil
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archiver.connector import (
    CHARS,
    EMOJI_AS_BYTES,
    GRAPHEMES,
    LINKS_AS_23,
    UTF8_BYTES,
    UTF16,
    WEIGHTED,
    PostLimits,
    UnknownPlatform,
    get_connector,
    installed_connectors,
)

# Kinds of post that are not the person's own content to spread: a repost of someone
# else's post, and a reply in someone's conversation.
NOT_OWN_CONTENT = ("boost", "reply")
# A caption cut short matches the whole one only from this many normalized characters on
# (two short captions such as "new video" say nothing about being one post).
MIN_PREFIX = 30
ELLIPSIS = "…"
# Characters a platform refuses, and what takes their place (others are left out).
LOOKALIKES = {"<": "‹", ">": "›"}

# A hashtag: "#" and word characters, not all digits ("#1" is a number), not inside a word
# or a URL's fragment ("a#b", "page#top").
HASHTAG = re.compile(r"(?<![\w#/&])#(?=\w*[^\W\d])(\w+)")
URL = re.compile(r"https?://\S+", re.IGNORECASE)
NON_WORD = re.compile(r"[\W_]+")
# A line of hashtags only: the block a caption often ends with.
TAG_LINE = re.compile(r"^(?:\s*#\w+)+\s*$")


class ContentError(Exception):
    """A mistake the person can fix (an unknown post, a platform without limits, a folder
    in use): one clear line."""


# -- lengths as platforms count them ---------------------------------------------------------


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF or code in (0x200D, 0xFE0F)


# Code points a weighted count counts 1 (every other one counts 2).
WEIGHT_ONE = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
LINK_LENGTH = 23


def _weight(char: str) -> int:
    code = ord(char)
    return 1 if any(low <= code <= high for low, high in WEIGHT_ONE) else 2


def _with_links_as(text: str, count) -> int:
    """``count`` of the text between links, plus LINK_LENGTH for each link."""
    total, at = 0, 0
    for match in URL.finditer(text):
        total += count(text[at:match.start()]) + LINK_LENGTH
        at = match.end()
    return total + count(text[at:])


def measure(text: str, unit: str) -> int:
    """The length of ``text`` as a platform counts it (``unit``: one of LENGTH_UNITS).

    Graphemes are counted as code points, which are never fewer, and an emoji sequence as
    its code points' weights: a text that fits counted so fits the platform too."""
    if unit in (CHARS, GRAPHEMES):
        return len(text)
    if unit == LINKS_AS_23:
        return _with_links_as(text, len)
    if unit == WEIGHTED:
        return _with_links_as(text, lambda part: sum(_weight(c) for c in part))
    if unit == UTF16:
        return len(text.encode("utf-16-le")) // 2
    if unit == UTF8_BYTES:
        return len(text.encode("utf-8"))
    if unit == EMOJI_AS_BYTES:
        return sum(len(c.encode("utf-8")) if _is_emoji(c) else 1 for c in text)
    raise ValueError(f"unknown length unit {unit!r}")


def _longest_prefix(text: str, limit: int, unit: str) -> int:
    """How many characters of ``text`` fit in ``limit`` (in ``unit``)."""
    low, high = 0, len(text)
    while low < high:   # the longest prefix that fits: lengths only grow with more characters
        middle = (low + high + 1) // 2
        if measure(text[:middle], unit) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def cut_at_word(text: str, limit: int, unit: str = CHARS) -> str:
    """``text`` if it fits in ``limit``, else its beginning cut at the last word boundary
    that leaves room for "…" (mid-word only when the first word alone is too long)."""
    text = text.strip()
    if measure(text, unit) <= limit:
        return text
    room = limit - measure(ELLIPSIS, unit)
    if room <= 0:
        return ""
    end = _longest_prefix(text, room, unit)
    space = max(text.rfind(" ", 0, end + 1), text.rfind("\n", 0, end + 1))
    if space > 0 and text[end:end + 1] not in ("", " ", "\n"):
        end = space
    return text[:end].rstrip(" \n,;:-–—") + ELLIPSIS


# -- captions ---------------------------------------------------------------------------------


def hashtags(text: str) -> list[str]:
    """The hashtags of ``text`` in order, each once (compared case-insensitively), without "#"."""
    seen, found = set(), []
    for match in HASHTAG.finditer(text):
        key = match.group(1).casefold()
        if key not in seen:
            seen.add(key)
            found.append(match.group(1))
    return found


def caption_key(*texts: str | None) -> str:
    """What two captions of one post have in common across platforms: the words of its
    title and text, normalized (NFKC, case folded), without links, hashtags, punctuation."""
    joined = " ".join(t for t in texts if t)
    joined = unicodedata.normalize("NFKC", joined).casefold()
    joined = HASHTAG.sub(" ", URL.sub(" ", joined))
    return NON_WORD.sub(" ", joined).strip()


@dataclass
class Adapted:
    """A post's words made to fit one platform."""

    caption: str
    title: str | None = None
    topic_tag: str | None = None
    changes: list[str] = field(default_factory=list)   # what was changed and why, for the checklist


def _split_tag_block(text: str) -> tuple[str, str]:
    """``text`` as its body and its closing lines of hashtags only, with the white space
    between them (body + tail == text)."""
    lines = text.split("\n")
    kept = len(lines)
    while kept and TAG_LINE.match(lines[kept - 1]):
        kept -= 1
    body = "\n".join(lines[:kept]).rstrip()
    return body, text[len(body):]


def _without_forbidden(text: str, forbidden: str) -> str:
    for char in forbidden:
        text = text.replace(char, LOOKALIKES.get(char, ""))
    return text


def adapt(title: str | None, text: str | None, limits: PostLimits, platform_title: str) -> Adapted:
    """A post's ``title`` and ``text`` (either may be empty) as ``limits`` allow them."""
    title, text = (title or "").strip(), (text or "").strip()
    changes: list[str] = []
    if limits.title_chars is None:
        # No title field: a title the text does not start with goes before the text.
        caption = text if not title or text.casefold().startswith(title.casefold()) else \
            (f"{title}\n\n{text}" if text else title)
        new_title = None
    else:
        caption = text or title
        first_line = caption.split("\n", 1)[0]
        new_title = title or title_from_line(first_line)
    if limits.forbidden_chars and any(c in caption + (new_title or "") for c in limits.forbidden_chars):
        caption = _without_forbidden(caption, limits.forbidden_chars)
        new_title = _without_forbidden(new_title, limits.forbidden_chars) if new_title else new_title
        changes.append(f"{platform_title} refuses the characters {' '.join(limits.forbidden_chars)}: "
                       f"replaced with {' '.join(LOOKALIKES.get(c, '(nothing)') for c in limits.forbidden_chars)}")

    body, tail = _split_tag_block(caption)
    tags = hashtags(caption)
    kept = tags if limits.hashtags_max is None else tags[:limits.hashtags_max]
    if len(kept) < len(tags):
        keep = {t.casefold() for t in kept}
        dropped = [t for t in tags if t.casefold() not in keep]
        # In a sentence an extra hashtag stays a word ("#sunset" -> "sunset"); in the
        # closing block of tags it goes.
        body = HASHTAG.sub(lambda m: m.group(0) if m.group(1).casefold() in keep else m.group(1), body)
        in_body = {t.casefold() for t in hashtags(body)}
        block_tags = [t for t in hashtags(tail) if t.casefold() in keep and t.casefold() not in in_body]
        separator = "\n\n" if body else ""
        tail = separator + " ".join("#" + t for t in block_tags) if block_tags else ""
        changes.append(f"{platform_title} takes at most {limits.hashtags_max} hashtag(s): kept "
                       f"{' '.join('#' + t for t in kept) or 'none'}; left out {' '.join('#' + t for t in dropped)}")
    caption = body + tail

    size = measure(caption, limits.caption_unit)
    if size > limits.caption_chars:
        room = limits.caption_chars - measure(tail, limits.caption_unit)
        if body and room > len(ELLIPSIS) * 4:
            caption = cut_at_word(body, room, limits.caption_unit) + tail
        else:
            caption = cut_at_word(caption, limits.caption_chars, limits.caption_unit)
        changes.append(f"caption cut from {size:,} to {measure(caption, limits.caption_unit):,} "
                       f"{_unit_words(limits.caption_unit)} at a word boundary (the limit: {limits.caption_chars:,})")

    if new_title is not None and limits.title_chars is not None:
        fitted = cut_at_word(new_title, limits.title_chars, limits.title_unit)
        if fitted != new_title:
            changes.append(f"title cut from {measure(new_title, limits.title_unit):,} to "
                           f"{measure(fitted, limits.title_unit):,} {_unit_words(limits.title_unit)} "
                           f"(the limit: {limits.title_chars:,})")
        elif not title:
            changes.append("title made from the caption's first line (the post had none)")
        new_title = fitted

    topic = None
    if limits.topic_tag_chars is not None and kept:
        topic = _without_forbidden(kept[0], limits.topic_tag_forbidden)[:limits.topic_tag_chars] or None
    return Adapted(caption=caption, title=new_title, topic_tag=topic, changes=changes)


def title_from_line(line: str) -> str:
    """A title made from a caption's first line: without links and hashtags, spaces collapsed."""
    line = HASHTAG.sub("", URL.sub("", line))
    return " ".join(line.split())


def _unit_words(unit: str) -> str:
    return {CHARS: "characters", GRAPHEMES: "characters", UTF16: "UTF-16 units", UTF8_BYTES: "bytes",
            EMOJI_AS_BYTES: "characters (emoji as bytes)", LINKS_AS_23: "characters (a link: 23)",
            WEIGHTED: "weighted characters (a link: 23, CJK and emoji: 2)"}.get(unit, unit)


# -- which posts are where ----------------------------------------------------------------------


@dataclass
class Gap:
    """An own post of one platform that is missing on others."""

    platform: str
    post_id: str
    created_at: str | None
    title: str | None
    text: str | None
    url: str | None
    missing_on: list[str]

    @property
    def ref(self) -> str:
        """How `archiver content bundle` names it."""
        return f"{self.platform}:{self.post_id}"


@dataclass
class _Side:
    """What one platform holds, to look other platforms' posts up in."""

    hashes: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    sorted_keys: list[str] = field(default_factory=list)

    def holds(self, post_hashes: set[str], key: str) -> bool:
        if post_hashes & self.hashes:
            return True
        if not key:
            return False
        if key in self.keys:
            return True
        if len(key) >= MIN_PREFIX:
            # A longer caption there that starts with this one (this one was cut) …
            at = bisect.bisect_left(self.sorted_keys, key)
            if at < len(self.sorted_keys) and self.sorted_keys[at].startswith(key):
                return True
            # … or a cut one there: this caption's beginning, up to a word's end.
            for match in re.finditer(" ", key):
                if match.start() >= MIN_PREFIX and key[:match.start()] in self.keys:
                    return True
        return False


def _own_posts(db) -> list[dict[str, Any]]:
    marks = ",".join("?" for _ in NOT_OWN_CONTENT)
    return [dict(row) for row in db.query(
        "SELECT platform, post_id, created_at, title, text, url FROM posts "
        f"WHERE deleted_at IS NULL AND coalesce(kind, '') NOT IN ({marks})", NOT_OWN_CONTENT)]


def archived_platforms(db) -> list[str]:
    """The platforms the archive holds accounts or posts of."""
    names = {row["platform"] for row in db.query("SELECT DISTINCT platform FROM accounts")}
    names |= {row["platform"] for row in db.query("SELECT DISTINCT platform FROM posts")}
    return sorted(names)


def gaps(db, *, from_platform: str | None = None, to_platform: str | None = None) -> list[Gap]:
    """Own posts on ``from_platform`` (every platform when None) missing on ``to_platform``
    (every other platform in the archive when None), newest first."""
    if from_platform and from_platform == to_platform:
        raise ContentError(f"--from and --to are both {from_platform}: name two platforms")
    posts = _own_posts(db)
    media: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in db.query("SELECT platform, post_id, sha256 FROM post_media WHERE status = 'ok' AND sha256 IS NOT NULL"):
        media[(row["platform"], row["post_id"])].add(row["sha256"])
    sides: dict[str, _Side] = defaultdict(_Side)
    keys = {}
    for post in posts:
        key = caption_key(post["title"], post["text"])
        keys[(post["platform"], post["post_id"])] = key
        side = sides[post["platform"]]
        side.hashes |= media[(post["platform"], post["post_id"])]
        if key:
            side.keys.add(key)
    for side in sides.values():
        side.sorted_keys = sorted(side.keys)
    targets = [to_platform] if to_platform else archived_platforms(db)
    found = []
    for post in posts:
        platform = post["platform"]
        if from_platform and platform != from_platform:
            continue
        ident = (platform, post["post_id"])
        missing = [target for target in targets if target != platform
                   and not sides[target].holds(media[ident], keys[ident])]
        if missing:
            found.append(Gap(platform, post["post_id"], post["created_at"], post["title"], post["text"], post["url"],
                             missing))
    found.sort(key=lambda gap: (gap.created_at or "", gap.ref), reverse=True)
    return found


# -- a bundle ---------------------------------------------------------------------------------------


def platform_limits(platform: str) -> tuple[str, PostLimits]:
    """The target's title and declared limits; a ContentError naming those that have some."""
    try:
        connector = get_connector(platform)
    except UnknownPlatform as error:
        raise ContentError(str(error)) from None
    if connector.post_limits is None:
        known = sorted(name for name, cls in installed_connectors().items() if cls.post_limits is not None)
        raise ContentError(f"no posting limits are declared for {connector.name}: a bundle can be made for "
                           f"{', '.join(known)}")
    return connector.title, connector.post_limits


def find_post(db, ref: str) -> dict[str, Any]:
    """The archived post ``ref`` names: "platform:post_id" (as `content gaps` shows it) or a
    post id alone when only one platform has it."""
    platform, _, rest = ref.partition(":")
    if rest:
        row = next(iter(db.query("SELECT * FROM posts WHERE platform = ? AND post_id = ?", [platform, rest])), None)
        if row is not None:
            return dict(row)
    rows = [dict(r) for r in db.query("SELECT * FROM posts WHERE post_id = ? ORDER BY platform", [ref])]
    if len(rows) == 1:
        return rows[0]
    if len(rows) > 1:
        names = ", ".join(f"{r['platform']}:{r['post_id']}" for r in rows)
        raise ContentError(f"post id {ref!r} is on several platforms: name one of {names}")
    raise ContentError(f"no post {ref!r} in the archive: `archiver content gaps` lists posts as platform:id")


def _role_order(row: dict[str, Any]) -> tuple:
    # The post's own files in carousel order first, its cover (a thumbnail) last.
    return (row["role"] in ("cover", "thumbnail"), row["position"], row["role"] != "video", row["role"])


@dataclass
class Bundle:
    folder: Path
    files: list[str]           # the media files written, in order
    missing: list[str]         # the post's files the archive does not hold, and why
    adapted: Adapted


def write_bundle(archive, ref: str, target: str, out: Path | None = None) -> Bundle:
    """Write the folder of post ``ref`` made ready for ``target`` (``out``, else
    bundle-<target>-<post id> in the current folder). Refuses a folder that is not empty."""
    target_title, limits = platform_limits(target)
    target_name = get_connector(target).name
    db = archive.db
    post = find_post(db, ref)
    try:
        source_title = get_connector(post["platform"]).title
    except UnknownPlatform:
        source_title = post["platform"]
    folder = Path(out) if out else Path.cwd() / f"bundle-{target_name}-{_safe_name(post['post_id'])}"
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ContentError(f"{folder} is not an empty folder: choose another with --out")
    adapted = adapt(post["title"], post["text"], limits, target_title)

    files: list[tuple[str, str | None]] = []   # (file name, alt text)
    missing: list[str] = []
    rows = sorted((dict(r) for r in db.query(
        "SELECT pm.role, pm.position, pm.status, pm.error, pm.description, m.path FROM post_media pm "
        "LEFT JOIN media m ON m.sha256 = pm.sha256 WHERE pm.platform = ? AND pm.post_id = ?",
        [post["platform"], post["post_id"]])), key=_role_order)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for number, row in enumerate(rows, start=1):
        what = f"{row['role']} {row['position'] + 1}"
        source = archive.media_root / row["path"] if row["status"] == "ok" and row["path"] else None
        if source is None or not source.is_file():
            missing.append(f"{what}: {row['error'] or 'not in the media folder (`archiver verify` checks it)'}")
            continue
        name = f"{number:02d}-{row['role']}{Path(row['path']).suffix}"
        shutil.copyfile(source, folder / name)
        os.chmod(folder / name, 0o600)
        files.append((name, row["description"]))

    texts = {"title.txt": adapted.title, ("description.txt" if limits.title_chars is not None else "caption.txt"):
             adapted.caption, "topic.txt": adapted.topic_tag}
    for name, value in texts.items():
        if value:
            _write_private(folder / name, value)
    _write_private(folder / "checklist.md", _checklist(post, source_title, target_title, target_name, limits,
                                                       adapted, files, missing))
    return Bundle(folder, [name for name, _ in files], missing, adapted)


def _safe_name(post_id: str) -> str:
    return re.sub(r"[^\w.-]+", "_", post_id)[:80] or "post"


def _write_private(path: Path, text: str) -> None:
    from archiver.private_files import open_private

    with open_private(path, "w", encoding="utf-8") as out:
        out.write(text)


def _is_cover(name: str) -> bool:
    """A bundle's cover file ("04-thumbnail.png"): the video's picture, not a file to post."""
    return name.split("-", 1)[-1].rsplit(".", 1)[0] in ("cover", "thumbnail")


def _checklist(post, source_title, target_title, target_name, limits: PostLimits, adapted: Adapted,
               files: list[tuple[str, str | None]], missing: list[str]) -> str:
    caption_file = "description.txt" if limits.title_chars is not None else "caption.txt"
    lines = [f"# For {target_title}: {limits.label}", "",
             f"From {source_title}, posted {(post['created_at'] or 'at an unknown time')[:10]}"
             + (f": {post['url']}" if post["url"] else "") + ".",
             "Nothing was posted: archiver never writes to a platform. Post it yourself, then tick the boxes.", ""]
    covers = [name for name, _ in files if _is_cover(name)]
    posted = [name for name, _ in files if not _is_cover(name)]
    if posted:
        lines.append(f"- [ ] Add the files in this order: {', '.join(posted)}")
    if covers:
        lines.append(f"- [ ] Cover, where {target_title} lets you choose one: {', '.join(covers)}")
    if not files:
        lines.append("- [ ] This post has no media files in the archive: add your own if the platform needs one")
    for name, alt in files:
        if alt:
            lines.append(f"- [ ] Alt text of {name}: {' '.join(alt.split())}")
    if adapted.title:
        lines.append(f"- [ ] Title: paste title.txt ({measure(adapted.title, limits.title_unit):,} of "
                     f"{limits.title_chars:,} {_unit_words(limits.title_unit)})")
    if adapted.caption:
        lines.append(f"- [ ] {'Description' if limits.title_chars is not None else 'Caption'}: paste {caption_file} "
                     f"({measure(adapted.caption, limits.caption_unit):,} of {limits.caption_chars:,} "
                     f"{_unit_words(limits.caption_unit)})")
    if adapted.topic_tag:
        lines.append(f"- [ ] Topic tag: {adapted.topic_tag} (topic.txt)")
    if post.get("visibility"):
        lines.append(f"- [ ] Who may see it: it was {post['visibility']} on {source_title}")
    if post.get("link"):
        lines.append(f"- [ ] The link it pointed to: {post['link']}")
    lines.append(f"- [ ] Afterwards run `archiver export --platform {target_name}`: the archive then holds the new "
                 "post, and `archiver content gaps` stops listing this one")
    if adapted.changes or missing:
        lines += ["", "## What differs from the original", ""]
        lines += [f"- {change}" for change in adapted.changes]
        lines += [f"- not in the archive, so not here: {item}" for item in missing]
    lines += ["", f"## {target_title}'s limits used", "",
              f"- {'description' if limits.title_chars is not None else 'caption'}: {limits.caption_chars:,} "
              f"{_unit_words(limits.caption_unit)}"]
    if limits.title_chars is not None:
        lines.append(f"- title: {limits.title_chars:,} {_unit_words(limits.title_unit)}")
    if limits.hashtags_max is not None:
        lines.append(f"- hashtags: at most {limits.hashtags_max}")
    if limits.topic_tag_chars is not None:
        lines.append(f"- one topic tag of at most {limits.topic_tag_chars} characters")
    if limits.notes:
        lines.append(f"- {limits.notes}")
    checked = "as documented" if limits.official else "as others document it (no official page says it)"
    lines.append(f"- {checked}, checked {limits.checked}: {', '.join(limits.sources)}")
    return "\n".join(lines) + "\n"


# -- the README's table ----------------------------------------------------------------------------


def limits_table() -> str:
    """The README's "Posting limits" table, made from the connectors' declarations (a test
    keeps the README equal to it)."""
    rows = ["| platform | for | caption | title | hashtags | topic tag | source (checked) |",
            "|---|---|---|---|---|---|---|"]
    for _name, cls in sorted(installed_connectors().items()):
        limits = cls.post_limits
        if limits is None:
            continue
        title = f"{limits.title_chars:,} {_unit_words(limits.title_unit)}" if limits.title_chars is not None else "—"
        tags = str(limits.hashtags_max) if limits.hashtags_max is not None else "no limit documented"
        topic = f"one, ≤ {limits.topic_tag_chars} characters" if limits.topic_tag_chars is not None else "—"
        links = ", ".join(f"[{i}]({url})" for i, url in enumerate(limits.sources, start=1))
        kind = "" if limits.official else " not official:"
        rows.append(f"| {cls.title} | {limits.label} | {limits.caption_chars:,} {_unit_words(limits.caption_unit)} | "
                    f"{title} | {tags} | {topic} |{kind} {links} ({limits.checked}) |")
    return "\n".join(rows)
