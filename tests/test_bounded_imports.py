"""Imports whose work and memory are bounded by the page, not by the export:
a compressed tar is decompressed once, and importing the same export again copies no
media bytes. Real files, the real job runner, the real Mastodon importer."""

from __future__ import annotations

import _compression

import pytest

from archiver.archive import Archive
from archiver.config import Config
from archiver.sync.jobs import Workspace, run_import
from archiver.secrets import open_secret_store
from archiver_connectors.mastodon.sim.export import make_account, write_archive


@pytest.fixture
def workspace(tmp_path):
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    yield ws
    ws.archive.close()


@pytest.fixture
def decompression_passes(monkeypatch):
    """How many times any compressed stream was read from its start: every gzip / bz2 /
    xz reader starts one pass, and every seek backwards within one (a rewind) another."""
    passes = {"n": 0}
    start, rewind = _compression.DecompressReader.__init__, _compression.DecompressReader._rewind

    def counted_start(self, *args, **kwargs):
        passes["n"] += 1
        return start(self, *args, **kwargs)

    def counted_rewind(self):
        passes["n"] += 1
        return rewind(self)

    monkeypatch.setattr(_compression.DecompressReader, "__init__", counted_start)
    monkeypatch.setattr(_compression.DecompressReader, "_rewind", counted_rewind)
    return passes


def test_a_tar_gz_export_is_decompressed_once_whatever_its_pages(tmp_path, workspace, decompression_passes):
    # 160 posts with media: 4 pages of posts, each opening files stored before outbox.json.
    account = make_account(posts=160, replies=0, boosts=0, media_per_post=1, seed=31)
    path = write_archive(account, tmp_path / "archive-20241101090000-0123456789abcdef0123456789abcdef.tar.gz")
    result = run_import(workspace, path)
    assert result["status"] == "ok", result
    assert workspace.archive.db.execute("SELECT count(*) FROM posts").fetchone()[0] == 160
    assert decompression_passes["n"] == 1
    # The unpacked copy is gone with the import.
    assert not list(workspace.archive.folder.glob("archiver-export-*"))


@pytest.fixture
def media_copies(monkeypatch):
    """The bytes copied into the media store from export files, per call."""
    from archiver.archive.media import MediaStore

    copies: list[int] = []
    add_file = MediaStore.add_file

    def counted(self, source, **kwargs):
        stored = add_file(self, source, **kwargs)
        copies.append(stored.size)
        return stored

    monkeypatch.setattr(MediaStore, "add_file", counted)
    return copies


def _archive_rows(db) -> dict:
    return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("media", "post_media")}


def test_importing_the_same_export_again_copies_no_media(tmp_path, workspace, media_copies):
    account = make_account(posts=120, replies=0, boosts=0, media_per_post=2, seed=32)
    path = write_archive(account, tmp_path / "archive-20241101090000-0123456789abcdef0123456789abcdef.tar.gz")
    # The first import stops after its second page (as if killed): it is not closed.
    pages = {"n": 0}

    def stop_after_two_pages() -> bool:
        return pages["n"] >= 2

    first = run_import(workspace, path, cancel=stop_after_two_pages,
                       progress=lambda line: pages.__setitem__("n", pages["n"] + 1))
    assert first["status"] == "interrupted", first
    copied_first = len(media_copies)
    assert copied_first > 0
    second = run_import(workspace, path)
    assert second["status"] == "ok", second
    db = workspace.archive.db
    # Each entry of the export (every one a different file) was copied once across both.
    assert len(media_copies) == db.execute("SELECT count(*) FROM media").fetchone()[0]
    kept = _archive_rows(db)

    # Imported again (an import re-opened for its holes, or `import` of the same file
    # once more): not one media byte is read or written.
    db.execute("DELETE FROM imports")
    media_copies.clear()
    third = run_import(workspace, path)
    assert third["status"] == "ok", third
    assert media_copies == []
    assert _archive_rows(db) == kept


def _moment(n: int) -> str:
    import datetime as dt

    return (dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_bluesky_repository_is_imported_in_memory_far_below_its_size(tmp_path, workspace):
    import tracemalloc

    from archiver_connectors.bluesky.sim.repo import build_repo_car
    from archiver_connectors.bluesky.repo import make_tid

    did = "did:plc:abcdefghijklmnopqrstuvwx"
    records = {f"app.bsky.feed.post/{make_tid(1_700_000_000_000_000 + n * 1000)}": {
        "$type": "app.bsky.feed.post", "text": f"post {n} " + "x" * 2_400, "createdAt": _moment(n)}
        for n in range(10_000)}   # few records, long ones: the time goes by record, the bound by size
    records.update({f"app.bsky.graph.follow/{make_tid(1_600_000_000_000_000 + n * 1000)}": {
        "$type": "app.bsky.graph.follow", "subject": f"did:plc:{n:024d}", "createdAt": "2023-01-01T00:00:00Z"}
        for n in range(2_500)})
    path = tmp_path / "repo.car"
    path.write_bytes(build_repo_car(did, records, rev=make_tid(1_717_200_000_000_000)))
    del records
    size = path.stat().st_size
    assert size > 20 * 2**20

    # A small repository first: the modules an import loads are not the import's memory.
    warm_up = tmp_path / "small.car"
    warm_up.write_bytes(build_repo_car(did, {f"app.bsky.feed.post/{make_tid(1_500_000_000_000_000)}": {
        "$type": "app.bsky.feed.post", "text": "first", "createdAt": _moment(-1)}}, rev=make_tid(1_717_100_000_000_000)))
    assert run_import(workspace, warm_up, platform="bluesky")["status"] == "ok"
    tracemalloc.start()
    try:
        result = run_import(workspace, path, platform="bluesky")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["status"] == "ok", result
    db = workspace.archive.db
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == 10_001
    assert db.execute("SELECT max(member_count) FROM snapshots WHERE kind='following'").fetchone()[0] == 2_500
    # A page of records at a time, never the file: the old reader held the whole CAR.
    assert peak < size / 8, (peak, size)


def _benchmark():
    """benchmarks/export_import.py: its streamed export writer and its measured import."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "export_import.py"
    spec = importlib.util.spec_from_file_location("export_import_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_import_peak_memory_does_not_grow_with_the_export(tmp_path):
    """The benchmark's check, small: `archiver import` (its own process) of a tar.gz with
    12 times more media and followers peaks at the same resident memory, give or take."""
    bench = _benchmark()
    peaks = {}
    for size_mb in (4, 48):
        export = tmp_path / f"export-{size_mb}.tar.gz"
        holds = bench.write_export(export, "tar.gz", size_mb)
        _seconds, peak_mb, process = bench.run_import(export, tmp_path / f"archive-{size_mb}")
        assert process.returncode == 0, process.stderr[-2000:]
        peaks[size_mb] = peak_mb
        assert holds["posts"] == size_mb * 2
    assert peaks[48] < peaks[4] + 16, peaks
    assert peaks[48] < bench.MEMORY_TARGET_MB, peaks
