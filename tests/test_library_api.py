"""`import archiver` is the library API: a deliberate list of names (``__all__``), each
loaded on first use, documented in the README with an example that runs.

Changing the public surface means changing PUBLIC below on purpose."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import archiver

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "archiver"
SOURCE_ROOTS = (ROOT / "src", ROOT / "connectors")

PUBLIC = [
    "Archive", "MediaStore",
    "export_account", "import_file", "AccountBusy", "ExportFileError",
    "load_config", "Config", "AccountConfig", "ConfigError",
    "SecretStore", "open_secret_store", "SecretStoreError",
    "Connector", "Option", "installed_connectors", "get_connector", "UnknownPlatform", "SyncContext", "ExportSource",
    "Page", "Profile", "Post", "PostVersion", "Comment", "CommentsListed", "Person", "Interaction",
    "Membership", "Snapshot", "ListPage", "MediaRef", "Unmapped",
    "iso_utc", "pages_of", "PageBuffer", "Listing", "Batch",
    "ApiClient", "NetError", "AuthExpired", "OAuthError",
    "Simulator", "DemoWorld",
]


def test_the_public_names_are_the_ones_chosen():
    assert archiver.__all__ == PUBLIC


def test_every_public_name_resolves_to_its_defining_module_and_is_listed_by_dir():
    for name in PUBLIC:
        value = getattr(archiver, name)
        module = archiver._MODULE_OF[name]
        assert value is getattr(sys.modules[module], name), name
        assert value.__module__ == module, f"{name} is defined in {value.__module__}, not {module}"
    assert set(PUBLIC) <= set(dir(archiver))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        archiver.no_such_name  # noqa: B018


def test_type_checkers_see_the_same_names_from_the_same_modules():
    """The ``if TYPE_CHECKING:`` imports (what mypy and editors read) match the lazy map."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    guarded = next(node for node in tree.body if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    seen = {alias.name: node.module for node in guarded.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}
    assert seen == archiver._MODULE_OF
    assert sorted(seen) == sorted(PUBLIC)


def test_import_archiver_loads_none_of_its_parts():
    """`import archiver` (and so the start of every `archiver` command) stays fast: no
    database, HTTP or scheduling library is loaded until a name is used."""
    code = ("import sys, json, archiver; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('archiver') or m in "
            "('sqlite_utils', 'httpx', 'tenacity', 'apscheduler', 'click', 'datasette', 'keyring'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert loaded == ["archiver"]


def _python_files():
    for root in SOURCE_ROOTS:
        yield from sorted(root.rglob("*.py"))


def test_no_module_imports_through_the_package():
    """Inside src/ and connectors/ names come from the module that defines them:
    `from archiver import X` would run the lazy map (an import cycle through the package)."""
    offenders = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "archiver" and node.level == 0:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


# -------------------------------------------------------------------------- used through the API


def _tiktok_export(path: Path, *, videos: int = 3) -> Path:
    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig

    path.write_bytes(FakeTikTok(FakeTikTokConfig(videos=videos, followers=4, seed=7)).export_zip(layout="new"))
    return path


def test_import_a_file_and_read_the_archive_through_the_public_names(tmp_path):
    export = _tiktok_export(tmp_path / "TikTok_Data.zip")
    lines: list[str] = []

    result = archiver.import_file(tmp_path / "archive", export, progress=lines.append)

    assert result["status"] == "ok", result
    assert (result["platform"], result["account"]) == ("tiktok", "tiktok:main")
    assert result["counts"]["posts_new"] == 3
    assert lines, "progress was never called"
    archive = archiver.Archive(tmp_path / "archive")
    try:
        assert archive.db.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
    finally:
        archive.close()

    with pytest.raises(archiver.ExportFileError):
        archiver.import_file(tmp_path / "archive", tmp_path / "missing.zip")


def test_export_an_account_through_the_public_names(tmp_path):
    from tiktok_sync_harness import ACCOUNT, BASE_URL, TikTokHarness

    harness = TikTokHarness(tmp_path, folder="unused")   # a fake TikTok, tokens in a memory store
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "config.toml").write_text(
        f'[accounts.{ACCOUNT}]\nplatform = "tiktok"\nbase_url = "{BASE_URL}"\n', encoding="utf-8")

    result = archiver.export_account(folder, ACCOUNT, secrets=harness.secrets, transport=harness.transport)

    assert result["status"] == "ok", result
    archive = archiver.Archive(folder)
    try:
        archived = {row[0] for row in archive.db.execute("SELECT post_id FROM posts")}
    finally:
        archive.close()
    assert archived == harness.fake_ids()
    with pytest.raises(archiver.ConfigError, match="no account named 'nobody'"):
        archiver.export_account(folder, "nobody", secrets=harness.secrets, transport=harness.transport)


def test_the_readme_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use it as a library", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARCHIVER_CONFIG", raising=False)
    _tiktok_export(tmp_path / "TikTok_Data.zip", videos=4)

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README.md", "exec"), {"__name__": "readme_example"})

    lines = printed.getvalue().splitlines()
    assert lines[0].startswith("ok {"), lines
    assert len(lines) == 1 + 4   # the status, then the four posts
    assert os.path.exists(tmp_path / "my-archive" / "archive.db")
