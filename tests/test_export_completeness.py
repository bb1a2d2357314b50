"""Nothing silently dropped from an export: a file the export names but does not hold is a
failed slot "not in the export", counted by `archiver status`; the my-comments.html page
of older Takeouts is read; a part of the export the importer does not read is named in
the run's summary."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from archiver.archive import Archive
from archiver.config import Config
from archiver.sync.imports import open_export
from archiver.sync.jobs import Workspace, run_import
from archiver.ops.status import account_status, render_status
from archiver_connectors.youtube.sim.takeout import build_takeout

from archive_rows import one, rows

# A page no importer reads (a layout this version does not know).
UNKNOWN_PAGE = ("Takeout/YouTube and YouTube Music/live chats/live-chats.html",
                b"<html><body><ul><li>Sent at 2021-03-01 10:00:00 UTC in a live chat.<br>hello</li></ul></body></html>")


def workspace(tmp_path: Path) -> Workspace:
    return Workspace(Archive(tmp_path / "archive"), Config(path=None))


def rewrite_zip(path: Path, *, drop: str | None = None, add: dict[str, bytes] | None = None) -> None:
    """The zip again, without the entry ``drop`` and with ``add``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename != drop:
                new.writestr(info, old.read(info))
        for name, data in (add or {}).items():
            new.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def test_an_upload_whose_video_file_the_takeout_lacks_is_a_named_hole(tmp_path):
    [path] = build_takeout(tmp_path / "in", videos=3, comments=1, subscriptions=1, seed=8)
    with zipfile.ZipFile(path) as archive:
        video_files = [n for n in archive.namelist() if n.endswith(".mp4")]
    rewrite_zip(path, drop=video_files[0])     # listed in videos.csv, its file absent
    ws = workspace(tmp_path)

    result = run_import(ws, path)

    assert result["status"] == "ok", result
    db = ws.archive.db
    assert rows(db, "SELECT status, count(*) FROM post_media WHERE role='video' GROUP BY status ORDER BY 1") == [
        ("failed", 1), ("ok", 2)]
    error = one(db, "SELECT error FROM post_media WHERE status='failed'")
    assert error.startswith("not in the export") and "videos.csv" in error
    assert [e for e in result["errors"] if "not in the export" in e["error"]], result["errors"]
    [row] = account_status(ws.archive, Config(path=None))
    assert row["archive_holds"]["media_missing"] == 1
    assert "1 media missing" in render_status([row])


def test_a_2021_takeout_comments_page_is_read(tmp_path):
    """Takeouts of about 2021 keep the owner's comments in my-comments.html, not in a CSV:
    they are read (html.parser), each comment under its video, by the owner."""
    from archiver_connectors.youtube.sim.takeout import make_world

    options = dict(videos=2, comments=4, subscriptions=1, seed=9)
    world = make_world(**options)
    [path] = build_takeout(tmp_path / "in", comments_as="html", **options)
    ws = workspace(tmp_path)

    result = run_import(ws, path)

    assert result["status"] == "ok", result
    assert not [n for n in result.get("not_read", []) if n.endswith(".html")], result["not_read"]
    stored = rows(ws.archive.db, "SELECT post_id, created_at, text, by_owner FROM comments ORDER BY created_at, text")
    expected = sorted((c.video_id, c.created_at, c.text) for c in world.comments)
    from archiver.records import iso_utc

    assert [(p, c, t) for p, c, t, _ in stored] == sorted((v, iso_utc(c), t) for v, c, t in expected)
    assert {b for *_, b in stored} == {1}
    # Imported again: the same rows, no second copy.
    assert run_import(ws, path)["status"] == "skipped"


def test_a_part_of_the_export_no_importer_reads_is_named(tmp_path):
    [path] = build_takeout(tmp_path / "in", videos=1, comments=1, subscriptions=1, seed=9)
    rewrite_zip(path, add=dict([UNKNOWN_PAGE]))
    ws = workspace(tmp_path)

    result = run_import(ws, path)

    assert result["status"] == "ok", result
    # (The fake Takeout also holds a watch history, which is not archived either.)
    assert UNKNOWN_PAGE[0] in result["not_read"]
    message = one(ws.archive.db, "SELECT message FROM runs")
    assert f"not imported: {len(result['not_read'])} file(s)" in message and "live-chats.html" in message
    assert "live-chats.html" in render_status(account_status(ws.archive, Config(path=None)))


def exports_with_an_unknown_part(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """An export of each platform that imports without a network, with a file in it that
    no importer reads."""
    from archiver_connectors.instagram.sim.export import build_instagram_export
    from archiver_connectors.mastodon.sim.export import archive_name, make_account, write_archive

    unknown = "future_feature/new_data.json"
    [takeout] = build_takeout(tmp_path / "youtube", videos=1, comments=1, subscriptions=1, seed=2)
    rewrite_zip(takeout, add={f"Takeout/YouTube and YouTube Music/{unknown}": b"{}"})
    return {
        "youtube": (takeout, f"Takeout/YouTube and YouTube Music/{unknown}"),
        "instagram": (build_instagram_export(tmp_path / "instagram" / "export.zip", posts=2,
                                             extra_files={unknown: b"{}"}), unknown),
        "mastodon": (write_archive(make_account(posts=2, seed=2), tmp_path / "mastodon" / archive_name(seed=2),
                                   extra_files={unknown: b"{}"}), unknown),
    }


@pytest.mark.parametrize("platform", ["youtube", "instagram", "mastodon"])
def test_every_importer_ends_with_the_parts_it_did_not_read(tmp_path, platform):
    path, unknown = exports_with_an_unknown_part(tmp_path)[platform]
    ws = workspace(tmp_path)

    result = run_import(ws, path)

    assert result["status"] == "ok", result
    assert unknown in result["not_read"], result["not_read"]
    # The files it did read (every JSON / CSV it knows, every media file) are not listed.
    with open_export(path) as source:
        known = [n for n in source.names() if n.endswith((".csv", ".mp4", ".png", ".jpg"))]
    assert not set(known) & set(result["not_read"]), result["not_read"]


def test_not_read_counts_what_was_opened_or_handed_out_and_leaves_out_system_files(tmp_path):
    folder = tmp_path / "export"
    (folder / "__MACOSX").mkdir(parents=True)
    for name in ("data.json", "media.jpg", "other.json", ".DS_Store", "__MACOSX/._data.json"):
        (folder / name).write_bytes(b"{}")
    with open_export(folder) as source:
        source.load_json("data.json")
        opener = source.opener("media.jpg", named="media.jpg", named_in="data.json")
        missing = source.opener(None, named="gone.jpg", named_in="data.json")
        assert source.not_read() == ["other.json"]
        with pytest.raises(FileNotFoundError, match="not in the export"):
            missing()
        assert opener().read() == b"{}"


def test_a_file_not_in_the_export_leaves_no_hole_to_retry(tmp_path):
    """Retrying cannot bring a file the export does not hold: the import is done, and
    does not ask to be retried."""
    [path] = build_takeout(tmp_path / "in", videos=2, comments=1, subscriptions=1, seed=10)
    with zipfile.ZipFile(path) as archive:
        video_files = [n for n in archive.namelist() if n.endswith(".mp4")]
    rewrite_zip(path, drop=video_files[0])
    ws = workspace(tmp_path)

    result = run_import(ws, path)

    assert result["status"] == "ok" and result["counts"]["media_not_in_export"] == 1, result
    assert one(ws.archive.db, "SELECT holes FROM imports") == 0
    assert "--retry-failed" not in (result.get("message") or "")
    assert run_import(ws, path)["status"] == "skipped"


def test_the_comments_page_reader_takes_both_time_forms_ids_when_linked_and_reports_bad_items():
    import io as _io

    from archiver_connectors.youtube.takeout import comments_from_page

    page = ('<ul><li>Sent at 2020-04-27 23:18:23 UTC while watching <a href="http://www.youtube.com/watch?v=mM">'
            'a video</a>.<br/>content &amp; more<br>second line</li>\n'
            '<li>You added a <a href="https://www.youtube.com/watch?v=AbC&amp;lc=UgxID">comment</a> '
            '2016-06-15T08:50:49Z<br>old one</li>\n'
            '<li>Sent at some time<br>no date</li><li>Sent at 2020-01-01 00:00:00 UTC<br> </li></ul>')
    found = list(comments_from_page(_io.StringIO(page), "UCowner"))
    first, second = found[0][1], found[1][1]
    assert (first.native_id, first.post_native_id, first.created_at, first.text) == (
        None, "mM", "2020-04-27T23:18:23Z", "content & more\nsecond line")
    assert first.by_owner and first.author.native_id == "UCowner"
    assert (second.native_id, second.post_native_id, second.created_at, second.text) == (
        "UgxID", "AbC", "2016-06-15T08:50:49Z", "old one")
    assert [(n, str(e)) for n, e in found[2:]] == [(3, "no time in it"), (4, "no comment text")]
