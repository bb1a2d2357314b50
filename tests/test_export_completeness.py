"""Nothing silently dropped from an export: a file the export names but does not hold is a
failed slot "not in the export", counted by `archiver status`; a part of the export the
importer does not read is named in the run's summary."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from archiver.archive import Archive
from archiver.config import Config
from archiver.imports import open_export
from archiver.jobs import Workspace, run_import
from archiver.status import account_status, render_status
from archiver_connectors.youtube.fake_takeout import build_takeout

from archive_rows import one, rows

# A Takeout of 2021 kept the owner's comments as a web page (8 comments in a real one).
MY_COMMENTS_HTML = ("Takeout/YouTube and YouTube Music/my-comments/my-comments.html",
                    b"<html><body><ul><li>You added a <a href=\"https://www.youtube.com/watch?v=x\">comment</a> "
                    b"on <a href=\"https://www.youtube.com/watch?v=x\">a video</a>.<br>Nice!</li></ul></body></html>")


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


def test_a_2021_takeout_comments_page_is_named_as_not_imported(tmp_path):
    [path] = build_takeout(tmp_path / "in", videos=1, comments=1, subscriptions=1, seed=9)
    rewrite_zip(path, add=dict([MY_COMMENTS_HTML]))
    ws = workspace(tmp_path)

    result = run_import(ws, path)

    assert result["status"] == "ok", result
    # (The fake Takeout also holds a watch history, which is not archived either.)
    assert MY_COMMENTS_HTML[0] in result["not_read"]
    message = one(ws.archive.db, "SELECT message FROM runs")
    assert f"not imported: {len(result['not_read'])} file(s)" in message and "my-comments.html" in message
    assert "my-comments.html" in render_status(account_status(ws.archive, Config(path=None)))


def exports_with_an_unknown_part(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """An export of each platform that imports without a network, with a file in it that
    no importer reads."""
    from archiver_connectors.instagram.fake_export import build_instagram_export
    from archiver_connectors.mastodon.fake_export import archive_name, make_account, write_archive

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
