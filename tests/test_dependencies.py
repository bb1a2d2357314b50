"""The distributions pyproject.toml declares are the ones src/ and connectors/ import:
every third-party import is declared (not reached through another package's
dependencies, which may drop it), and nothing declared goes unused. The `fleet` extra's
distributions count as declared, but only src/archiver/fleet/ may import them (the
single-user install has no fleet extra). The `test` extra is for the tests and tools, and
is not checked here."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = (ROOT / "src", ROOT / "connectors")
FIRST_PARTY = {"archiver", "archiver_connectors"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extra: str | None = None) -> set[str]:
    """The distributions of [project] dependencies, or of one optional extra."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    requirements = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return {_normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group()) for requirement in requirements}


FLEET_FOLDER = "src/archiver/fleet/"


def imported_modules(roots=SOURCE_ROOTS) -> dict[str, set[str]]:
    """Top-level module name -> the files importing it, for every import that is neither
    the standard library's nor ours (function-level and TYPE_CHECKING imports included)."""
    found: dict[str, set[str]] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, set()).add(str(path.relative_to(root.parent)))
    return found


def test_every_third_party_import_is_declared_and_every_declared_dependency_is_imported():
    distributions_of = importlib.metadata.packages_distributions()
    fleet_only = declared("fleet") - declared()
    wanted = declared() | fleet_only
    undeclared, used = [], set()
    for module, files in sorted(imported_modules().items()):
        providers = {_normalized(d) for d in distributions_of.get(module, [])}
        outside_fleet = sorted(f for f in files if not f.startswith(FLEET_FOLDER))
        if providers and providers <= fleet_only and outside_fleet:
            undeclared.append(f"{module} is in the fleet extra only, yet {', '.join(outside_fleet)} imports it")
        if not providers:
            undeclared.append(f"{module} (imported by {', '.join(sorted(files))}; no installed distribution provides it)")
        elif not providers & wanted:
            undeclared.append(f"{module} from {' or '.join(sorted(providers))} (imported by {', '.join(sorted(files))})")
        used |= providers & wanted
    assert undeclared == [], "imported but not in [project] dependencies"
    assert sorted(wanted - used) == [], "declared in [project] dependencies but imported nowhere"


def test_the_check_sees_imports_inside_functions_and_for_type_checkers_only(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "module.py").write_text(
        "import os\nfrom typing import TYPE_CHECKING\nfrom . import sibling\nfrom archiver.records import Post\n"
        "if TYPE_CHECKING:\n    import httpx\n\n\ndef later():\n    from tzlocal import get_localzone\n",
        encoding="utf-8")
    assert imported_modules([tmp_path / "src"]) == {"httpx": {"src/module.py"}, "tzlocal": {"src/module.py"}}
