"""Realistic Google Takeout exports of a YouTube channel, for tests and the demo.

Built from shared/platforms/youtube.md §6; what the notes mark [U] is a knob:

- ``locale``: folder and file names (and the subscription list's header) in the
  account's language. Other CSV headers stay English [U].
- ``csv_order``: the comments.csv column order — "a" (before June 2024), "b" (after),
  "c" (with ``Post ID`` and ``Top-level comment ID``, lower-case spellings).
- ``comment_text``: "old" (``{"takeoutSegments":[…]}``), "new" (``{"text":…},{"text":…}``),
  "plain", or "mixed" (all three, row by row).
- ``encoding``: of every CSV file — "utf-8", "utf-8-sig" (with BOM) or "utf-16".
- ``parts``: 2 splits the export like Takeout does: every CSV and the first half of the
  video files in part 1, the other video files in part 2.
- ``duplicate_titles``: two uploads share one title (files ``T.mp4`` and ``T(1).mp4``).
- ``bad_rows``: adds one bad row to videos.csv, comments.csv and subscriptions.csv.
- ``comments_as``: "csv" (comments/comments.csv) or "html": the owner's comments as the
  my-comments/my-comments.html page of Takeouts of about 2021, one ``<li>`` each: "Sent at
  <time> UTC while watching <a href=…watch?v=<id>>a video</a>.<br/>" and the text (the
  form google_takeout_parser's tests show; whether the comment's own link with its id was
  there is [U]: it is left out, so the comments come without ids).

``make_world`` is deterministic for a seed, so a test builds the same world the export
was written from and derives every expectation from it.

    paths = build_takeout(tmp_path, videos=3, comments=5, subscriptions=4, locale="de", parts=2)
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import random
import string
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable

# Per locale: the YouTube folder and the relative paths of each file. German folder and
# subscription names are those other parsers saw in real exports; the rest is [U].
LOCALES: dict[str, dict[str, str]] = {
    "en": {"root": "YouTube and YouTube Music", "videos": "videos", "metadata": "video metadata/videos.csv",
           "comments": "comments/comments.csv", "subscriptions": "subscriptions/subscriptions.csv",
           "channel": "channels/channel.csv", "history": "history/watch-history.json",
           "playlist": "playlists/Favourites-videos.csv"},
    "de": {"root": "YouTube und YouTube Music", "videos": "Videos", "metadata": "Videometadaten/Videos.csv",
           "comments": "Kommentare/Kommentare.csv", "subscriptions": "Abos/Abos.csv",
           "channel": "Kanäle/Kanal.csv", "history": "Verlauf/Wiedergabeverlauf.json",
           "playlist": "Playlists/Favoriten-Videos.csv"},
    "fr": {"root": "YouTube et YouTube Music", "videos": "vidéos", "metadata": "métadonnées des vidéos/vidéos.csv",
           "comments": "commentaires/commentaires.csv", "subscriptions": "abonnements/abonnements.csv",
           "channel": "chaînes/chaîne.csv", "history": "historique/historique-de-visionnage.json",
           "playlist": "playlists/Favoris-vidéos.csv"},
    "es": {"root": "YouTube y YouTube Music", "videos": "videos", "metadata": "metadatos de vídeos/vídeos.csv",
           "comments": "comentarios/comentarios.csv", "subscriptions": "suscripciones/suscripciones.csv",
           "channel": "canales/canal.csv", "history": "historial/historial-de-reproducciones.json",
           "playlist": "listas de reproducción/Favoritos-vídeos.csv"},
}
# The subscription list's header, translated like a real export's ("Kanal-ID,…" is real).
SUBSCRIPTION_HEADERS = {
    "en": ["Channel Id", "Channel Url", "Channel Title"],
    "de": ["Kanal-ID", "Kanal-URL", "Kanaltitel"],
    "fr": ["ID des chaînes", "URL des chaînes", "Titre des chaînes"],        # [U]
    "es": ["ID del canal", "URL del canal", "Título del canal"],             # [U]
}
VIDEO_COLUMNS = ["Video ID", "Approx Duration (ms)", "Video Audio Language", "Video Category",
                 "Video Description (Original)", "Channel ID", "Tag 1", "Tag 2", "Video Title (Original)",
                 "Privacy", "Video State", "Video Create Timestamp", "Video Publish Timestamp"]
COMMENT_COLUMNS = {
    "a": ["Comment ID", "Channel ID", "Comment Create Timestamp", "Price", "Parent Comment ID", "Video ID",
          "Comment Text"],
    "b": ["Channel ID", "Comment Create Timestamp", "Price", "Comment ID", "Parent Comment ID", "Video ID",
          "Comment Text"],
    "c": ["Channel ID", "Comment create timestamp", "Price", "Comment ID", "Parent comment ID", "Post ID",
          "Top-level comment ID", "Video ID", "Comment text"],
}
CHANNEL_COLUMNS = ["Channel ID", "Channel Title (Original)", "Channel Visibility"]

_TITLES = ["Sunset timelapse", "Roof cam #12", "Café à l'aube", "Before/After: the garden", "Rain, again?",
           "Q&A — 10k subscribers", "Night sky 🌌", "Birds at 6 am", "Storm: part 2", "Drone test"]
_WORDS = ["lovely", "where", "is", "this", "great", "shot", "thanks", "again", "more", "please", "wow", "roof"]
_EPOCH = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
_ZIP_TIME = (2024, 6, 1, 12, 0, 0)  # fixed entry times: the same world gives byte-identical zips


@dataclass
class FakeVideo:
    video_id: str
    title: str
    description: str
    created_at: str      # ISO-8601 with offset, as Takeout writes it
    published_at: str
    duration_ms: int
    privacy: str         # "Public" | "Unlisted" | "Private"
    content: bytes       # the "video file"


@dataclass
class FakeComment:
    comment_id: str
    channel_id: str
    created_at: str
    video_id: str
    parent_id: str | None
    segments: list[str]  # the text, as Takeout segments it

    @property
    def text(self) -> str:
        return "".join(self.segments)


@dataclass
class FakeChannel:
    channel_id: str
    title: str


@dataclass
class TakeoutWorld:
    channel: FakeChannel
    videos: list[FakeVideo] = field(default_factory=list)
    comments: list[FakeComment] = field(default_factory=list)
    subscriptions: list[FakeChannel] = field(default_factory=list)


def _token(rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits + "-_") -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _iso(moment: dt.datetime, micro: bool = False) -> str:
    return moment.isoformat(timespec="microseconds" if micro else "seconds")


def make_world(*, videos: int = 3, comments: int = 5, subscriptions: int = 4, seed: int = 1,
               api_videos: Iterable[tuple[str, str, str]] | None = None, duplicate_titles: bool = False,
               channel_id: str | None = None, channel_title: str = "Roof Cam") -> TakeoutWorld:
    """The channel, uploads, comments and subscriptions an export is written from.

    ``api_videos``: (video_id, title, published_at ISO) triples mirroring an API fake's
    world; they replace the generated uploads.
    """
    rng = random.Random(seed)
    world = TakeoutWorld(FakeChannel(channel_id or "UC" + _token(rng, 22), channel_title))
    if api_videos is not None:
        triples = list(api_videos)
    else:
        triples = []
        for i in range(videos):
            moment = _EPOCH + dt.timedelta(days=3 * i, minutes=rng.randrange(600))
            title = _TITLES[i % len(_TITLES)] + (f" {i // len(_TITLES) + 1}" if i >= len(_TITLES) else "")
            triples.append((_token(rng, 11), title, _iso(moment)))
        if duplicate_titles and len(triples) >= 2:
            triples[1] = (triples[1][0], triples[0][1], triples[1][2])
    for video_id, title, published in triples:
        published_at = dt.datetime.fromisoformat(published.replace("Z", "+00:00"))
        created = published_at - dt.timedelta(minutes=15)
        digest = hashlib.sha256(f"{seed}:{video_id}".encode()).digest()
        world.videos.append(FakeVideo(
            video_id=video_id, title=title, description=f"{title}. Shot on the roof.\nSecond line.",
            created_at=_iso(created), published_at=_iso(published_at),
            duration_ms=rng.randrange(5_000, 600_000),
            privacy=rng.choice(["Public", "Public", "Unlisted", "Private"]),
            # An MP4 'ftyp' box, then bytes unique to the video: small, but a real file.
            content=b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + digest * 64))
    for i in range(comments if world.videos else 0):
        video = world.videos[i % len(world.videos)]
        created = _EPOCH + dt.timedelta(days=i, seconds=rng.randrange(86400), microseconds=rng.randrange(10**6))
        parent = None
        if i % 3 == 2 and world.comments:
            parent = world.comments[-1].comment_id.split(".")[0]
            video = next(v for v in world.videos if v.video_id == world.comments[-1].video_id)
        top = "Ugz" + _token(rng, 21)
        comment_id = f"{parent}.{_token(rng, 22)}" if parent else top
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(2, 7)))
        segments = [words.capitalize(), "\n", "«ça va?» ✓"] if i % 2 else [words.capitalize() + "!"]
        world.comments.append(FakeComment(comment_id, world.channel.channel_id, _iso(created, micro=True),
                                          video.video_id, parent, segments))
    for i in range(subscriptions):
        world.subscriptions.append(FakeChannel("UC" + _token(rng, 22), f"Channel {i} «{_token(rng, 4)}»"))
    return world


def _comment_cell(comment: FakeComment, form: str) -> str:
    segments = [{"text": s} for s in comment.segments]
    if form == "old":
        return json.dumps({"takeoutSegments": segments}, ensure_ascii=False)
    if form == "new":
        return ",".join(json.dumps(s, ensure_ascii=False) for s in segments)
    return comment.text


def _my_comments_page(comments: list[FakeComment]) -> bytes:
    import html

    items = []
    for c in comments:
        moment = dt.datetime.fromisoformat(c.created_at.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
        text = "<br>".join(html.escape(line) for line in c.text.split("\n"))
        items.append(f'<li>Sent at {moment:%Y-%m-%d %H:%M:%S} UTC while watching '
                     f'<a href="http://www.youtube.com/watch?v={c.video_id}">a video</a>.<br/>{text}</li>')
    page = ('<html><head><meta charset="UTF-8"><title>My comments</title></head><body>'
            '<div class="header_cell">My comments</div><ul>\n' + "\n".join(items) + "\n</ul></body></html>")
    return page.encode("utf-8")


def _csv_bytes(header: list[str], rows: list[list[str]], encoding: str, raw_lines: Iterable[str] = ()) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    for line in raw_lines:  # lines written as given (e.g. a row of the wrong width)
        buffer.write(line + "\n")
    return buffer.getvalue().encode(encoding)


def _file_name(title: str) -> str:
    """Takeout names a video file after its title; characters a file name cannot hold
    become "_" [U]."""
    return "".join("_" if c in '/\\:*?"<>|' else c for c in title)


def takeout_files(world: TakeoutWorld, *, locale: str = "en", csv_order: str = "b", encoding: str = "utf-8",
                  comment_text: str = "new", bad_rows: bool = False,
                  comments_as: str = "csv") -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(data files, video files): relative name inside the export -> bytes."""
    names = LOCALES[locale]
    root = f"Takeout/{names['root']}"
    data: dict[str, bytes] = {}

    data[f"{root}/{names['channel']}"] = _csv_bytes(
        CHANNEL_COLUMNS, [[world.channel.channel_id, world.channel.title, "Public"]], encoding)

    video_rows = []
    for v in world.videos:
        video_rows.append([v.video_id, str(v.duration_ms), "en", "People & Blogs", v.description,
                           world.channel.channel_id, "timelapse", "", v.title, v.privacy, "Processed",
                           v.created_at, v.published_at if v.privacy != "Private" else ""])
    bad_video_lines: list[str] = []
    if bad_rows:
        video_rows.append(["", "1000", "en", "People & Blogs", "no id", world.channel.channel_id, "", "",
                           "A row without id", "Public", "Processed", "2024-01-01T00:00:00+00:00", ""])
        video_rows.append(["BADSTAMP001", "1000", "en", "People & Blogs", "", world.channel.channel_id, "", "",
                           "A row with a bad date", "Public", "Processed", "yesterday-ish", ""])
    data[f"{root}/{names['metadata']}"] = _csv_bytes(VIDEO_COLUMNS, video_rows, encoding, bad_video_lines)

    header = COMMENT_COLUMNS[csv_order]
    forms = ["old", "new", "plain"]
    comment_rows = []
    for i, c in enumerate(world.comments):
        form = forms[i % 3] if comment_text == "mixed" else comment_text
        values = {"channel id": c.channel_id, "comment create timestamp": c.created_at, "price": "0",
                  "comment id": c.comment_id, "parent comment id": c.parent_id or "", "video id": c.video_id,
                  "comment text": _comment_cell(c, form), "post id": "",
                  "top-level comment id": c.parent_id or c.comment_id}
        comment_rows.append([values[h.lower()] for h in header])
    bad_comment_lines = []
    if bad_rows:
        bad_comment_lines.append("only,three,fields")  # the wrong width
    if comments_as == "html":
        data[f"{root}/my-comments/my-comments.html"] = _my_comments_page(world.comments)
    else:
        data[f"{root}/{names['comments']}"] = _csv_bytes(header, comment_rows, encoding, bad_comment_lines)

    subscription_rows = [[s.channel_id, f"http://www.youtube.com/channel/{s.channel_id}", s.title]
                         for s in world.subscriptions]
    if bad_rows:
        subscription_rows.append(["", "http://www.youtube.com/channel/", "A channel without id"])
    data[f"{root}/{names['subscriptions']}"] = _csv_bytes(
        SUBSCRIPTION_HEADERS.get(locale, SUBSCRIPTION_HEADERS["en"]), subscription_rows, encoding)

    # Files the importer must leave alone: the watch history and a playlist (whose CSV has
    # a "Video ID" column too, and is not a list of uploads).
    data[f"{root}/{names['history']}"] = json.dumps(
        [{"header": "YouTube", "title": f"Watched {v.title}", "titleUrl": f"https://www.youtube.com/watch?v={v.video_id}",
          "time": v.published_at} for v in world.videos[:2]], ensure_ascii=False).encode()
    data[f"{root}/{names['playlist']}"] = _csv_bytes(
        ["Video ID", "Playlist Video Creation Timestamp"],
        [[s.channel_id[2:13], "2024-04-01T10:00:00+00:00"] for s in world.subscriptions[:2]], encoding)

    videos: dict[str, bytes] = {}
    used: dict[str, int] = {}
    for v in sorted(world.videos, key=lambda v: (v.created_at, v.video_id)):
        stem = _file_name(v.title)
        count = used.get(stem, 0)
        used[stem] = count + 1
        videos[f"{root}/{names['videos']}/{stem}{f'({count})' if count else ''}.mp4"] = v.content
    return data, videos


def _write_zip(path: Path | IO[bytes], files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".mp4") else zipfile.ZIP_DEFLATED
            archive.writestr(info, payload)


def build_takeout(path: str | Path, *, videos: int = 3, comments: int = 5, subscriptions: int = 4,
                  locale: str = "en", csv_order: str = "b", encoding: str = "utf-8", comment_text: str = "new",
                  parts: int = 1, as_zip: bool = True, seed: int = 1,
                  api_videos: Iterable[tuple[str, str, str]] | None = None, duplicate_titles: bool = False,
                  bad_rows: bool = False, channel_id: str | None = None, comments_as: str = "csv",
                  world: TakeoutWorld | None = None) -> list[Path]:
    """Write a Takeout export into the folder ``path``; returns the zip parts (or the
    extracted folders, one per part, with ``as_zip=False``)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    world = world or make_world(videos=videos, comments=comments, subscriptions=subscriptions, seed=seed,
                                api_videos=api_videos, duplicate_titles=duplicate_titles, channel_id=channel_id)
    data, video_files = takeout_files(world, locale=locale, csv_order=csv_order, encoding=encoding,
                                      comment_text=comment_text, bad_rows=bad_rows, comments_as=comments_as)
    if parts not in (1, 2):
        raise ValueError("parts must be 1 or 2")
    video_names = list(video_files)
    half = (len(video_names) + 1) // 2 if parts == 2 else len(video_names)
    part_files = [data | {n: video_files[n] for n in video_names[:half]}]
    if parts == 2:
        part_files.append({n: video_files[n] for n in video_names[half:]})
    written = []
    for number, files in enumerate(part_files, start=1):
        name = f"takeout-20240601T120000Z-{number:03d}"
        if as_zip:
            target = folder / f"{name}.zip"
            _write_zip(target, files)
        else:
            target = folder / name
            for relative, payload in files.items():
                file_path = target.joinpath(*relative.split("/"))
                file_path.parent.mkdir(parents=True, exist_ok=True)
                file_path.write_bytes(payload)
        written.append(target)
    return written


def video_file_names(world: TakeoutWorld, locale: str = "en") -> dict[str, str]:
    """video id -> the file's name inside the export (what the importer must match)."""
    _, files = takeout_files(world, locale=locale)
    by_content = {content: name for name, content in files.items()}
    return {v.video_id: by_content[v.content] for v in world.videos}


__all__ = ["LOCALES", "TakeoutWorld", "build_takeout", "make_world", "takeout_files", "video_file_names"]
