"""Imports whose work and memory are bounded by the page, not by the export:
a compressed tar is decompressed once, and importing the same export again copies no
media bytes. Real files, the real job runner, the real Mastodon importer."""

from __future__ import annotations

import _compression

import pytest

from archiver.archive import Archive
from archiver.config import Config
from archiver.jobs import Workspace, run_import
from archiver.secrets import open_secret_store
from archiver_connectors.mastodon.fake_export import make_account, write_archive


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
