"""One tweet of X's archive (tweets.js, deleted-tweets.js, community-tweet.js …) as the
archive's records (../shared/platforms/x-twitter.md §2; docs/schema.md, "X", says what they
hold — the API's mapping in api.py writes the same).

- ``post_from_tweets(versions, …)``: the versions of one post (one tweet, or every tweet of
  one edit chain) → a ``Post`` keyed by the initial tweet id, the newest version's text,
  earlier texts as ``history``.
- ``text_of``, ``links_of``, ``kind_of``: the pieces, for any tweet-shaped dict.
- ``people_of``: the people a tweet names with their handles (mentions, the replied-to user).

Every number in the archive is a string ("3", and "0.0" for some counts); dates are
``"Fri Mar 06 13:02:05 +0000 2026"``.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any, Callable, Iterable

from archiver.records import MediaRef, Person, Post, PostVersion, iso_utc

X_DATE = "%a %b %d %H:%M:%S %z %Y"
_UTC_X_DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) (\d\d) (\d\d:\d\d:\d\d) \+0000 (\d{4})$")
_MONTHS = {name: f"{number:02d}" for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
# A link to a post on X: a quote's link (status/<id>), or the post's own media link
# (status/<id>/photo/1, /video/1).
_STATUS_LINK = re.compile(r"^https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/([^/?#]+)/status(?:es)?/(\d+)(/[^?#]*)?",
                          re.I)
_X_HOST = re.compile(r"^https?://(?:[\w-]+\.)*(?:x|twitter)\.com(?:[/:?#]|$)", re.I)


def x_date(value: Any) -> str | None:
    """``"Fri Mar 06 13:02:05 +0000 2026"`` (or an ISO-8601 time) → ISO-8601 UTC; None for
    nothing. ValueError for a text that is no date."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"a date cannot be a {type(value).__name__}")
    fast = _UTC_X_DATE.match(value)
    if fast and fast.group(2) in _MONTHS:   # X writes UTC: no need for strptime (a third of the reading)
        month, day, clock, year = _MONTHS[fast.group(2)], fast.group(3), fast.group(4), fast.group(5)
        try:
            dt.datetime(int(year), int(month), int(day), int(clock[:2]), int(clock[3:5]), int(clock[6:]))
        except ValueError:
            pass   # February 30th: strptime below says what is wrong
        else:
            return f"{year}-{month}-{day}T{clock}Z"
    try:
        return iso_utc(dt.datetime.strptime(value.strip(), X_DATE))
    except ValueError:
        pass
    try:
        return iso_utc(value)   # the manifest and note-tweet.js write ISO-8601
    except ValueError:
        raise ValueError(f"unreadable date {value[:60]!r} (X writes \"Fri Mar 06 13:02:05 +0000 2026\")") from None


def count(value: Any) -> int | None:
    """A count as the archive writes it ("3", "0.0", 3) → int; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value)) if isinstance(value, str) and "." in value else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _text_value(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dicts(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def tweet_id(tweet: dict) -> str:
    """The tweet's id (``id_str``, else ``id``) as text; ValueError when it has none."""
    for key in ("id_str", "id"):
        value = tweet.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip().isdigit():
            return str(value).strip()
    raise ValueError("no id_str (the tweet has no usable id)")


def media_of(tweet: dict) -> list[dict]:
    """All the tweet's media: ``extended_entities.media`` (``entities.media`` holds the first only)."""
    extended = tweet.get("extended_entities")
    media = _dicts(extended.get("media")) if isinstance(extended, dict) else []
    if not media:
        entities = tweet.get("entities")
        media = _dicts(entities.get("media")) if isinstance(entities, dict) else []
    return media


def links_of(tweet: dict) -> list[dict[str, str]]:
    """[{"url": expanded, "tco": t.co}] of ``entities.urls``, in the order they come."""
    entities = tweet.get("entities")
    links = []
    for entry in _dicts(entities.get("urls")) if isinstance(entities, dict) else []:
        expanded, tco = _text_value(entry.get("expanded_url")), _text_value(entry.get("url"))
        if expanded:
            links.append({"url": expanded, "tco": tco or ""})
    return links


def text_of(tweet: dict, links: list[dict[str, str]] | None = None) -> str:
    """The text a person wrote: ``full_text`` (``text`` in older tweets) HTML-unescaped, each
    t.co link replaced by the URL it stands for, the media link X appends removed."""
    text = _text_value(tweet.get("full_text")) or _text_value(tweet.get("text")) or ""
    text = html.unescape(text)
    for media in media_of(tweet):
        tco = _text_value(media.get("url"))
        if tco:
            text = re.sub(r"\s*" + re.escape(tco) + r"(?=\s*$)", "", text)   # the trailing one
            text = text.replace(tco, "")
    for link in links_of(tweet) if links is None else links:
        if link["tco"]:
            text = text.replace(link["tco"], link["url"])
    return text.strip()


def quoted_post(tweet: dict, own_id: str, links: list[dict[str, str]]) -> dict[str, str] | None:
    """{"user", "post_id"} of the post this tweet quotes: a link to a post on X (either host)
    that is not the tweet's own media link."""
    for link in links:
        found = _STATUS_LINK.match(link["url"])
        if found and found.group(2) != own_id:
            return {"user": found.group(1), "post_id": found.group(2)}
    return None


def in_reply_to(tweet: dict) -> dict[str, str | None] | None:
    post_id = tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id")
    if not post_id:
        return None
    return {"post_id": str(post_id),
            "user_id": str(tweet.get("in_reply_to_user_id_str") or tweet.get("in_reply_to_user_id") or "") or None,
            "handle": _text_value(tweet.get("in_reply_to_screen_name"))}


def is_repost(tweet: dict) -> bool:
    """A repost: X's archive writes ``retweeted: false`` even for them; only the ``RT @`` says so."""
    text = _text_value(tweet.get("full_text")) or _text_value(tweet.get("text")) or ""
    return text.startswith("RT @")


def kind_of(tweet: dict, own_id: str, links: list[dict[str, str]]) -> str:
    """boost (a repost) > reply > quote > text: the first that holds (the API's mapping
    uses the same order on referenced_tweets)."""
    if is_repost(tweet):
        return "boost"
    if in_reply_to(tweet):
        return "reply"
    if quoted_post(tweet, own_id, links):
        return "quote"
    return "text"


def mentions_of(tweet: dict) -> list[dict[str, str | None]]:
    entities = tweet.get("entities")
    found = []
    for entry in _dicts(entities.get("user_mentions")) if isinstance(entities, dict) else []:
        user_id = entry.get("id_str") or entry.get("id")
        found.append({"id": str(user_id) if user_id not in (None, "", "-1") else None,
                      "handle": _text_value(entry.get("screen_name")), "name": _text_value(entry.get("name"))})
    return found


def hashtags_of(tweet: dict) -> list[str]:
    entities = tweet.get("entities")
    return [entry["text"] for entry in (_dicts(entities.get("hashtags")) if isinstance(entities, dict) else [])
            if _text_value(entry.get("text"))]


def people_of(tweet: dict) -> list[Person]:
    """The people a tweet names with their account id and handle (and name, for mentions):
    how follower ids get their handles and names where the archive gives them."""
    people = []
    for mention in mentions_of(tweet):
        if mention["id"] and mention["handle"] and mention["id"].isdigit():
            people.append(Person(native_id=mention["id"], handle=mention["handle"], display_name=mention["name"],
                                 url=f"https://x.com/{mention['handle']}"))
    reply = in_reply_to(tweet)
    if reply and reply["user_id"] and reply["handle"] and reply["user_id"].isdigit():
        people.append(Person(native_id=reply["user_id"], handle=reply["handle"],
                             url=f"https://x.com/{reply['handle']}"))
    return people


# --------------------------------------------------------------------------- media


def chosen_variant(media: dict) -> dict | None:
    """The video file X puts in the archive: the highest-bitrate ``video/mp4`` variant (a
    GIF's only one has bitrate "0"); never the m3u8 playlist."""
    info = media.get("video_info")
    variants = _dicts(info.get("variants")) if isinstance(info, dict) else []
    mp4 = [v for v in variants if v.get("content_type") == "video/mp4" and _text_value(v.get("url"))]
    if not mp4:
        return None
    return max(mp4, key=lambda v: count(v.get("bitrate")) or 0)


def media_file_name(media: dict) -> str | None:
    """The part of the file's name after ``<tweet id>-``: the photo's basename, or the chosen
    video variant's without its query (``?tag=16``)."""
    if media.get("type") in ("video", "animated_gif"):
        variant = chosen_variant(media)
        url = variant.get("url") if variant else None
    else:
        url = _text_value(media.get("media_url_https")) or _text_value(media.get("media_url"))
    if not isinstance(url, str) or not url:
        return None
    return url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None


def media_url(media: dict) -> str | None:
    """Where the file is on X: the chosen variant for a video or GIF, the photo's https URL."""
    if media.get("type") in ("video", "animated_gif"):
        variant = chosen_variant(media)
        if variant:
            return str(variant["url"]).split("?", 1)[0]
    return _text_value(media.get("media_url_https")) or _text_value(media.get("media_url"))


def _media_meta(media: dict) -> dict[str, Any]:
    meta: dict[str, Any] = {"type": media.get("type"), "media_id": media.get("id_str") or media.get("id")}
    sizes = media.get("sizes")
    large = sizes.get("large") if isinstance(sizes, dict) else None
    if isinstance(large, dict):
        meta["width"], meta["height"] = count(large.get("w")), count(large.get("h"))
    info = media.get("video_info")
    if isinstance(info, dict) and info.get("duration_millis") is not None:
        meta["duration_ms"] = count(info.get("duration_millis"))
    return {k: v for k, v in meta.items() if v is not None}


# A function giving the opener of one medium's file: (tweet id, medium, position) -> opener.
MediaOpener = Callable[[str, dict, int], Any]


def media_refs(tweet: dict, own_id: str, opener_of: MediaOpener | None) -> list[MediaRef]:
    refs = []
    for position, media in enumerate(media_of(tweet)):
        url = media_url(media)
        if not url:
            continue
        kind = media.get("type")
        hint = "video/mp4" if kind in ("video", "animated_gif") else None
        refs.append(MediaRef(url=url, role="media", position=position, mime_hint=hint,
                             opener=opener_of(own_id, media, position) if opener_of else None,
                             meta=_media_meta(media)))
    return refs


# --------------------------------------------------------------------------- edits


def edit_chain(tweet: dict) -> tuple[str | None, list[str]]:
    """(initial tweet id, every version's id) as ``edit_info`` says: ``initial.editTweetIds``
    (the initial version, and every version in the 2026 archive), or the unconfirmed
    ``edit.initialTweetId`` + ``edit.editControlInitial.editTweetIds``. (None, []) without."""
    info = tweet.get("edit_info")
    if not isinstance(info, dict):
        return None, []
    initial, edit = info.get("initial"), info.get("edit")
    if isinstance(edit, dict):
        control = edit.get("editControlInitial")
        ids = control.get("editTweetIds") if isinstance(control, dict) else None
        ids = [str(i) for i in ids if i] if isinstance(ids, list) else []
        first = edit.get("initialTweetId")
        first = str(first) if first else (ids[0] if ids else None)
        return first, ids
    if isinstance(initial, dict):
        ids = initial.get("editTweetIds")
        ids = [str(i) for i in ids if i] if isinstance(ids, list) else []
        return (ids[0] if ids else None), ids
    return None, []


def _version_key(tweet: dict) -> tuple[int, str]:
    own = tweet_id(tweet)
    return int(own), own   # a later version has a larger (time-ordered) id


# --------------------------------------------------------------------------- the post


def post_from_tweets(versions: Iterable[dict], *, username: str | None, opener_of: MediaOpener | None = None,
                     note: dict | None = None, extra_raw: dict | None = None) -> Post:
    """One post from the versions of one tweet (one dict, or every version of an edit chain
    in any order): keyed by the initial id, the newest version's text, media and counts,
    earlier texts as ``history`` (``replaced_at`` = the next version's time), oldest first.
    ``note``: the post's long text from note-tweet.js ({"text", "links", "record"}).
    ValueError / TypeError for a tweet that cannot be read."""
    ordered = sorted(versions, key=_version_key)
    if not ordered:
        raise ValueError("no tweet")
    newest = ordered[-1]
    own_id = tweet_id(newest)
    initial_id, chain_ids = edit_chain(newest)
    for version in ordered:
        first, ids = edit_chain(version)
        initial_id = initial_id or first
        chain_ids = chain_ids if len(chain_ids) >= len(ids) else ids
    oldest_id = tweet_id(ordered[0])
    native_id = initial_id if initial_id and int(initial_id) <= int(oldest_id) else oldest_id
    created_at = x_date(ordered[0].get("created_at"))
    if created_at is None:
        raise ValueError("no created_at")

    links = links_of(newest)
    text = text_of(newest, links)
    raw: dict[str, Any] = dict(newest)
    if note is not None:
        text = note["text"]
        links = note["links"] or links
        raw["note"] = note["record"]
    mentions, hashtags = mentions_of(newest), hashtags_of(newest)
    if note is not None:   # the cut text of tweets.js may have lost the end's mentions and hashtags
        known = {mention["handle"] for mention in mentions}
        mentions += [m for m in note.get("mentions", ()) if m["handle"] and m["handle"] not in known]
        hashtags += [tag for tag in note.get("hashtags", ()) if tag not in hashtags]
    reply = in_reply_to(newest)
    raw.update(links=links, mentions=mentions, hashtags=hashtags)
    if reply:
        raw["in_reply_to"] = reply
    quoted = quoted_post(newest, own_id, links)
    if quoted:
        raw["quotes"] = quoted
    edit_ids = list(dict.fromkeys([*chain_ids, *(tweet_id(v) for v in ordered)]))
    if len(edit_ids) > 1:
        raw["edit_ids"] = sorted(edit_ids, key=int)
        raw["versions"] = ordered[:-1]
    raw.update(extra_raw or {})

    history = []
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        replaced_at = x_date(later.get("created_at"))
        if replaced_at:
            history.append(PostVersion(replaced_at=replaced_at, text=text_of(earlier)))
    post_link = next((link["url"] for link in links if not _X_HOST.match(link["url"])), None)
    return Post(
        native_id=native_id,
        created_at=created_at,
        kind=kind_of(newest, own_id, links),
        text=text,
        url=f"https://x.com/{username}/status/{native_id}" if username else f"https://x.com/i/web/status/{native_id}",
        like_count=count(newest.get("favorite_count")),
        share_count=count(newest.get("retweet_count")),
        link=post_link,
        media=media_refs(newest, own_id, opener_of),
        history=history,
        raw=raw,
    )


def note_text(record: dict) -> dict[str, Any] | None:
    """The long text of one note-tweet.js element, in either shape the notes give [U]:
    ``noteTweetResults.text`` + ``entitySet.urls`` (url / expanded_url), or ``core.text`` +
    ``core.urls`` (shortUrl / expandedUrl). {"text", "links", "record", "tweet_id",
    "created_at"}; None when it holds no text."""
    note = record.get("noteTweet", record)
    if not isinstance(note, dict):
        return None
    results, core = note.get("noteTweetResults"), note.get("core")
    body = results if isinstance(results, dict) else core if isinstance(core, dict) else None
    if body is None or not _text_value(body.get("text")):
        return None
    entity_set = body.get("entitySet")
    entities: dict = entity_set if isinstance(entity_set, dict) else body
    links = []
    for entry in _dicts(entities.get("urls")):
        expanded = _text_value(entry.get("expanded_url")) or _text_value(entry.get("expandedUrl"))
        tco = _text_value(entry.get("url")) or _text_value(entry.get("shortUrl"))
        if expanded:
            links.append({"url": expanded, "tco": tco or ""})
    mentions = []
    for entry in _dicts(entities.get("user_mentions")) + _dicts(entities.get("mentions")):
        user_id = entry.get("id_str") or entry.get("id")
        mentions.append({"id": str(user_id) if user_id else None,
                         "handle": _text_value(entry.get("screen_name")) or _text_value(entry.get("screenName")),
                         "name": _text_value(entry.get("name"))})
    hashtags = [entry["text"] for entry in _dicts(entities.get("hashtags")) if _text_value(entry.get("text"))]
    text = html.unescape(body["text"])
    for link in links:
        if link["tco"]:
            text = text.replace(link["tco"], link["url"])
    tweet = note.get("tweetId")
    created = note.get("createdAt")
    try:
        created_at = x_date(created) if isinstance(created, str) else None
    except ValueError:
        created_at = None
    return {"text": text.strip(), "links": links, "mentions": mentions, "hashtags": hashtags, "record": note,
            "tweet_id": str(tweet) if tweet else None, "created_at": created_at}
