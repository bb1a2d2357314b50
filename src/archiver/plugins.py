"""What is installed as a plug-in, found by entry point: connectors and their simulators.

The built-in connectors register exactly as a third party's do (pyproject.toml), so the
core finds every platform here and names none. Nothing here imports a plug-in's module
before it is asked for, and this module imports nothing of archiver's: any layer may use it.
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any

CONNECTORS = "archiver.connectors"
SIMULATORS = "archiver.simulators"

# The package the built-in connectors (and their simulators) install as; a plug-in of
# another package is a third party's.
BUILT_IN_PACKAGE = "archiver_connectors"


class ConnectorLoadError(Exception):
    """A built-in connector that cannot be loaded: a broken installation or a bug."""


def names(group: str) -> list[str]:
    """The names registered in ``group``, without importing any plug-in (fast --help)."""
    return sorted(entry.name for entry in importlib.metadata.entry_points(group=group))


def load(group: str, *, built_in_must_load: bool) -> dict[str, Any]:
    """name -> the loaded object of each entry point in ``group``.

    A third party's plug-in that fails to load is skipped with a warning, so one broken
    plug-in cannot stop the others. With ``built_in_must_load``, a built-in one that fails
    is an error: hiding it would turn a broken install into a platform that silently stops
    being archived."""
    found: dict[str, Any] = {}
    for entry in importlib.metadata.entry_points(group=group):
        try:
            found[entry.name] = entry.load()
        except Exception as error:
            if built_in_must_load and entry.value.split(":")[0].split(".")[0] == BUILT_IN_PACKAGE:
                raise ConnectorLoadError(
                    f"the built-in {entry.name} connector ({entry.value}) could not be loaded: "
                    f"{type(error).__name__}: {error}. The installation of archiver is broken: reinstall it "
                    "(e.g. `pip install --force-reinstall archiver`), and report this if it persists.") from error
            logging.getLogger("archiver").warning(
                "%s %r (%s) could not be loaded and is skipped: %s: %s", group.rpartition(".")[2][:-1],
                entry.name, entry.value, type(error).__name__, error)
    return found
