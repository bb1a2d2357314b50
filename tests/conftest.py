"""Test-wide settings: tests never touch a real keyring, the user's archive or the network.
Shared helpers live beside the tests (tiktok_sync_harness.py, cli_world.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Any keyring use in a test must be explicit (tests/keyring_memory.py); never a real one.
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
os.environ.pop("ARCHIVER_HOME", None)
os.environ.pop("ARCHIVER_SECRETS", None)

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def archive(tmp_path):
    """An empty archive (real SQLite file, schema applied) in the test's folder."""
    from archiver.archive import Archive

    store = Archive(tmp_path / "archive")
    _ = store.db  # create it with its schema
    yield store
    store.close()


@pytest.fixture
def loopback():
    """An httpx transport for real HTTP to 127.0.0.1 only (see cli_world.LoopbackOnly)."""
    from cli_world import LoopbackOnly

    transport = LoopbackOnly()
    yield transport
    transport.really_close()
