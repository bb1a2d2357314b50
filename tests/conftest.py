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
# The crash-point switch is for the `archiver` processes a test starts, never this one.
os.environ.pop("ARCHIVER_CRASH_AT", None)
os.environ.pop("ARCHIVER_CRASH_COUNTS", None)

# Soak tests (random SIGKILLs aimed by timing) run on request only: ARCHIVER_SOAK=1.
# What they sample, the deterministic crash-point walk proves on every run
# (tests/test_crash_points_e2e.py).
SOAK = bool(os.environ.get("ARCHIVER_SOAK"))


# The fleet's long tests (a night of 200 accounts, …) run on request only: ARCHIVER_FLEET_LONG=1
# (`make fleet-test`).
FLEET_LONG = bool(os.environ.get("ARCHIVER_FLEET_LONG"))


# Groups whose module fixture is made per platform, named by the parameter that says which
# (test_platforms_e2e.py's leak scenarios): each platform's tests form a group of their own, so
# the platforms spread over the workers instead of queuing on one.
PER_PLATFORM_GROUPS = {"leak": "leak"}


@pytest.hookimpl(tryfirst=True)   # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Per-platform groups (above). Without ARCHIVER_SOAK the soaks, without ARCHIVER_FLEET_LONG
    the fleet's long tests are deselected (counted as such), never skipped."""
    for item in items:
        for mark in list(item.iter_markers("xdist_group")):
            param = PER_PLATFORM_GROUPS.get(mark.args[0] if mark.args else "")
            platform = getattr(getattr(item, "callspec", None), "params", {}).get(param)
            if platform:
                item.add_marker(pytest.mark.xdist_group(f"{mark.args[0]}-{platform}"))
    left_out = {marker for marker, wanted in (("soak", SOAK), ("fleet_long", FLEET_LONG)) if not wanted}
    deselected = [item for item in items if left_out & set(item.keywords)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not left_out & set(item.keywords)]

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def archive(tmp_path):
    """An empty archive (real SQLite file, schema applied) in the test's folder."""
    from empty_archive import new_archive

    store = new_archive(tmp_path / "archive")
    yield store
    store.close()


@pytest.fixture
def loopback():
    """An httpx transport for real HTTP to 127.0.0.1 only (see cli_world.LoopbackOnly)."""
    from cli_world import LoopbackOnly

    transport = LoopbackOnly()
    yield transport
    transport.really_close()
