"""The same export in another wrapper is the same export: the zip (or tar.gz), then the
folder or JSON file it was unzipped to (macOS unzips downloads by itself), is imported
once — no second snapshot, no second provenance."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.sync.imports import open_export
from archiver.sync.jobs import Workspace, run_import
from archiver_connectors.mastodon.sim.export import archive_name, make_account, write_archive
from archiver_connectors.youtube.sim.takeout import build_takeout

from archive_rows import one, rows


def workspace(tmp_path: Path, base_url: str | None = None) -> Workspace:
    """``base_url``: a TikTok account on that server (none configured without it)."""
    accounts = [AccountConfig(name="main", platform="tiktok", base_url=base_url)] if base_url else []
    return Workspace(Archive(tmp_path / "archive"), Config(path=None, accounts=accounts))


def archived(db) -> dict:
    return {
        "snapshots": rows(db, "SELECT kind, taken_at, source, member_count FROM snapshots ORDER BY 1, 2"),
        "sources": sorted({s for (sources,) in rows(db, "SELECT sources FROM posts") for s in json.loads(sources)}),
        "posts": one(db, "SELECT count(*) FROM posts"),
        "imports": one(db, "SELECT count(*) FROM imports"),
        "runs": one(db, "SELECT count(*) FROM runs"),
    }


def test_a_mastodon_archive_then_its_extracted_folder_is_one_export(tmp_path):
    path = write_archive(make_account(posts=3, seed=4), tmp_path / archive_name(seed=4))
    folder = tmp_path / "Downloads" / path.name.removesuffix(".tar.gz")
    folder.mkdir(parents=True)
    with tarfile.open(path) as tar:
        tar.extractall(folder, filter="data")
    (folder / ".DS_Store").write_bytes(b"Bud1 Finder's own file")   # the Finder adds these
    ws = workspace(tmp_path)

    first = run_import(ws, path)
    assert first["status"] == "ok", first
    before = archived(ws.archive.db)
    assert before["sources"] and before["imports"] == 1

    again = run_import(ws, folder)

    assert again["status"] == "skipped", again
    assert path.name in again["message"]
    assert archived(ws.archive.db) == before       # no second snapshot, provenance or run


def test_a_takeout_zip_then_its_unzipped_folder_is_one_export(tmp_path):
    [path] = build_takeout(tmp_path / "in", videos=2, comments=2, subscriptions=3, seed=3)
    folder = tmp_path / "Downloads" / path.stem
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    ws = workspace(tmp_path)

    assert run_import(ws, path)["status"] == "ok"
    before = archived(ws.archive.db)
    assert before["snapshots"]                       # the subscriptions list

    again = run_import(ws, folder)

    assert again["status"] == "skipped", again
    assert archived(ws.archive.db) == before


def test_a_zip_holding_one_json_file_and_that_file_have_one_fingerprint(tmp_path):
    document = json.dumps({"Profile": {"userName": "someone"}, "Video": {}}).encode()
    bare = tmp_path / "user_data_tiktok.json"
    bare.write_bytes(document)
    packed = tmp_path / "TikTok_Data.zip"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("TikTok_Data/user_data_tiktok.json", document)
        archive.writestr("__MACOSX/TikTok_Data/._user_data_tiktok.json", b"resource fork")
    other = tmp_path / "other.json"
    other.write_bytes(document.replace(b"someone", b"another"))
    with open_export(bare) as a, open_export(packed) as b, open_export(other) as c:
        assert a.sha256 != b.sha256
        assert a.fingerprint == b.fingerprint != c.fingerprint


def test_a_retry_through_another_wrapper_keeps_the_first_wrappers_provenance(tmp_path, loopback):
    """The zip imported with a file missing (its link failed for now), then its unzipped
    JSON: the second retries only the hole, under the zip's provenance."""
    import httpx

    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig, serve

    fake = FakeTikTok(FakeTikTokConfig(videos=3, followers=2, following=1))
    refuse: set[str] = set()
    answer = fake.handle
    fake.handle = lambda request: (httpx.Response(404, content=b"gone for now") if request.url.path in refuse
                                   else answer(request))
    server, _ = serve(fake)
    try:
        document = json.dumps(fake.export_json("new")).encode()
        packed = tmp_path / "TikTok_Data.zip"
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("user_data_tiktok.json", document)
        bare = tmp_path / "Downloads" / "user_data_tiktok.json"
        bare.parent.mkdir()
        bare.write_bytes(document)
        first_post = json.loads(document)["Post"]["Posts"]["VideoList"][0]
        refuse.add(httpx.URL(first_post["Link"].splitlines()[0]).path)
        ws = workspace(tmp_path, base_url=fake.base_url)   # the export's media links are on loopback

        first = run_import(ws, packed, transport=loopback)
        assert first["status"] == "ok" and first["counts"].get("media_failed") == 1, first
        refuse.clear()
        second = run_import(ws, bare, transport=loopback)
    finally:
        server.shutdown()
        server.server_close()

    assert second["status"] == "ok" and second["counts"].get("media_saved") == 1, second
    db = ws.archive.db
    assert rows(db, "SELECT file_name, holes FROM imports") == [("TikTok_Data.zip", 0)]
    with open_export(packed) as source:
        assert archived(db)["sources"] == [f"export:{source.sha256}"]
