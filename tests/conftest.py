"""Shared test fixtures: a fake TikTok in-process, an archive in tmp_path, a secret store
in memory. Tests never touch a real keyring or the network."""

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
