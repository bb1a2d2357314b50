"""Connectors read the archive only through SyncContext's methods (issue 12, point 5): no
connector module runs SQL on a table of the archive's schema, nor reaches for the
archive's database itself.

The check reads every module of connectors/archiver_connectors (the simulators in sim/
folders are fakes of the platforms, not connectors, and are left out) with ``ast``:

* every SQL a module executes (``.execute``, ``.executemany``, ``.executescript``,
  sqlite-utils' ``.query``) must be readable: a string, an f-string, a concatenation of
  those, or a name the same function assigns one of those to. The tables it names (after
  FROM, JOIN, INTO, UPDATE, TABLE, and INDEX … ON) must be none of the archive's, which are
  read from a freshly created archive, so a table added later is covered. An f-string hole
  where a table name stands, or SQL the check cannot read, counts as a finding;
* a table taken by name (sqlite-utils' ``db["posts"]``, ``db.table("posts")``) is checked
  the same way;
* ``ctx.db`` and ``ctx.archive`` (the runner's handles on the archive) are never used, and
  the archive's own modules (Archive, the writer, the schema) are never imported.

The exemption is named, and must still be needed (an unused one fails).
The self-tests below run the check on the SQL connectors held before they were moved to
SyncContext, so it cannot pass by reading nothing.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

CONNECTORS = Path(__file__).resolve().parent.parent / "connectors" / "archiver_connectors"

SQL_METHODS = {"execute", "executemany", "executescript", "query"}
# The modules of archiver.archive a connector may use: the rest (Archive, the writer, the
# schema) is the archive's own; a connector gets what it needs of it through SyncContext.
ARCHIVE_HELPERS = {"media", "lists", "text"}
HOLE = "{}"   # an f-string's expression, in the SQL text the check reads

# (module path below archiver_connectors, function) -> why it may run such SQL.
EXEMPT = {
    ("mastodon/api.py", "key_statuses_by_instance"):
        "a schema migration's rewrite of Mastodon's own rows: Connector.upgrade_archive hands "
        "the connector the archive inside the migration (m008_small_promises_instance_keys)",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    function: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.function or 'module'}): {self.what}"


@pytest.fixture(scope="module")
def core_tables(tmp_path_factory) -> set[str]:
    from archiver.archive import Archive

    archive = Archive(tmp_path_factory.mktemp("schema") / "archive")
    tables = {row[0] for row in archive.db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    archive.close()
    assert {"posts", "post_media", "comments", "accounts", "sync_state"} <= tables
    return tables


# --------------------------------------------------------------------------- the check


def sql_text(node: ast.expr, assigned: dict[str, ast.expr]) -> str | None:
    """The SQL an expression holds, with HOLE for each f-string expression; None when
    it cannot be read from the code."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else HOLE for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = sql_text(node.left, assigned), sql_text(node.right, assigned)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Name) and node.id in assigned:
        return sql_text(assigned.pop(node.id), assigned)   # popped: a name assigned to itself ends
    return None


TABLE_AFTER = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?)\s+(.+?)"
    r"(?=\bWHERE\b|\bGROUP\b|\bORDER\b|\bLIMIT\b|\bJOIN\b|\bON\b|\bUNION\b|\bSET\b|\bVALUES\b|\bSELECT\b"
    r"|\bLEFT\b|\bINNER\b|\bCROSS\b|\bUSING\b|\bAS\b\s+SELECT|[();]|$)",
    re.IGNORECASE | re.DOTALL)
INDEX_ON = re.compile(r"\bINDEX\b.*?\bON\s+(\S+?)\s*\(", re.IGNORECASE | re.DOTALL)


def tables_named(sql: str) -> set[str]:
    """The tables a statement (or script) names; HOLE where a name is not in the code."""
    names = set()
    for match in TABLE_AFTER.finditer(sql):
        for part in match.group(1).split(","):   # FROM a, b
            words = part.split()
            if words and not words[0].startswith("("):
                names.add(words[0])
    names.update(match.group(1) for match in INDEX_ON.finditer(sql))
    bare = set()
    for name in names:
        name = name.strip("\"'`[]")
        bare.add(HOLE if HOLE in name else name.rsplit(".", 1)[-1].lower())   # temp.x, main.x -> x
    return bare


def is_archive(module: str) -> bool:
    return module == "archiver.archive" or module.startswith("archiver.archive.")


def archive_helper(module: str) -> bool:
    """archiver.archive.media (and what is in it) is a helper; archiver.archive.Archive is not."""
    parts = module.split(".")
    return len(parts) > 2 and parts[2] in ARCHIVE_HELPERS


def is_ctx(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "ctx") or (isinstance(node, ast.Attribute) and node.attr == "ctx")


def findings_in(source: str, path: str, core: set[str]) -> tuple[list[Finding], int]:
    """What breaks the rule in one module, and how many SQL statements it runs."""
    tree = ast.parse(source)
    findings: list[Finding] = []
    statements = 0

    def walk(node: ast.AST, function: str, assigned: dict[str, ast.expr]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{function}.{child.name}" if function else child.name
                # Names a function assigns a string to (SQL kept in a variable first).
                inner = {target.id: sub.value for sub in ast.walk(child) if isinstance(sub, ast.Assign)
                         for target in sub.targets if isinstance(target, ast.Name)} \
                    if not isinstance(child, ast.ClassDef) else {}
                walk(child, name, inner)
                continue
            check(child, function, assigned)
            walk(child, function, assigned)

    def found(node: ast.AST, function: str, what: str) -> None:
        findings.append(Finding(path, node.lineno, function, what))

    def check_tables(node: ast.AST, function: str, sql: str) -> None:
        names = tables_named(sql)
        if HOLE in names:
            found(node, function, f"a table named by an f-string expression: {sql!r}")
        if names & core:
            found(node, function, f"SQL on the archive's table(s) {sorted(names & core)}: {sql!r}")

    def check(node: ast.AST, function: str, assigned: dict[str, ast.expr]) -> None:
        nonlocal statements
        if isinstance(node, ast.Attribute) and node.attr in ("db", "archive") and is_ctx(node.value):
            found(node, function, f"uses ctx.{node.attr}: ask the archive through a SyncContext method")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "archiver.archive":
                modules = [f"archiver.archive.{alias.name}" for alias in node.names]
            else:
                modules = [node.module]
            if any(not archive_helper(module) for module in modules if is_archive(module)):
                found(node, function, f"imports the archive's own modules ({', '.join(modules)})")
        elif isinstance(node, ast.Import):
            if any(not archive_helper(alias.name) for alias in node.names if is_archive(alias.name)):
                found(node, function, "imports the archive's own modules")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in SQL_METHODS and node.args:
                statements += 1
                sql = sql_text(node.args[0], dict(assigned))
                if sql is None:
                    found(node, function, f"SQL the check cannot read: {ast.unparse(node.args[0])}")
                else:
                    check_tables(node, function, sql)
            elif node.func.attr == "table" and node.args:
                name = sql_text(node.args[0], dict(assigned))
                if name is None or name.lower() in core:
                    found(node, function, f"takes the table {ast.unparse(node.args[0])} by name")
        elif isinstance(node, ast.Subscript) and (
                (isinstance(node.value, ast.Name) and node.value.id == "db")
                or (isinstance(node.value, ast.Attribute) and node.value.attr == "db")):
            name = sql_text(node.slice, dict(assigned))
            if name is None or name.lower() in core:
                found(node, function, f"takes the table {ast.unparse(node.slice)} by name")

    walk(tree, "", {})
    return findings, statements


def connector_modules() -> list[Path]:
    return sorted(path for path in CONNECTORS.rglob("*.py") if "sim" not in path.relative_to(CONNECTORS).parts)


# --------------------------------------------------------------------------- the rule


def test_no_connector_module_runs_sql_on_the_archives_tables(core_tables):
    modules = connector_modules()
    platforms = {path.relative_to(CONNECTORS).parts[0] for path in modules}
    assert {"bluesky", "instagram", "mastodon", "tiktok", "youtube"} <= platforms

    findings, statements = [], 0
    for path in modules:
        found, count = findings_in(path.read_text(), path.relative_to(CONNECTORS).as_posix(), core_tables)
        findings += found
        statements += count
    # Bluesky's repository reader keeps its blocks in a private SQLite: the check reads SQL.
    assert statements >= 10

    exempted = {key for key in EXEMPT if any((f.path, f.function) == key for f in findings)}
    left = [f for f in findings if (f.path, f.function) not in EXEMPT]
    assert not left, "connectors read the archive through SyncContext methods:\n" + "\n".join(map(str, left))
    assert exempted == set(EXEMPT), f"exemptions no longer needed: {sorted(set(EXEMPT) - exempted)}"


# --------------------------------------------------------------------------- the check itself


# What Instagram and YouTube ran before their reads moved to SyncContext (issue 12).
BEFORE = '''
class _MediaWalk:
    def _archived_file_counts(self, ids):
        rows = self.ctx.db.execute(
            f"SELECT post_id, count(*) FROM post_media WHERE platform='instagram' AND status='ok' AND post_id IN "
            f"({','.join('?' * len(ids))}) GROUP BY post_id", ids).fetchall()
        return {r[0]: r[1] for r in rows}

def _archived_uploads(ctx):
    rows = ctx.db.execute(
        "SELECT post_id, title, created_at FROM posts WHERE account_id=? AND post_id NOT LIKE 'provisional:%'",
        [ctx.account.account_id],
    ).fetchall()

def _owner_channel(ctx):
    row = ctx.db.execute("SELECT native_id FROM accounts WHERE account_id=?", [ctx.account.account_id]).fetchone()
'''


def test_the_check_finds_the_sql_connectors_ran_before(core_tables):
    findings, statements = findings_in(BEFORE, "before.py", core_tables)
    assert statements == 3
    by_function = {(f.function, f.what.split(":")[0]) for f in findings}
    assert by_function == {
        ("_MediaWalk._archived_file_counts", "uses ctx.db"),
        ("_MediaWalk._archived_file_counts", "SQL on the archive's table(s) ['post_media']"),
        ("_archived_uploads", "uses ctx.db"),
        ("_archived_uploads", "SQL on the archive's table(s) ['posts']"),
        ("_owner_channel", "uses ctx.db"),
        ("_owner_channel", "SQL on the archive's table(s) ['accounts']"),
    }


@pytest.mark.parametrize("code, what", [
    # The archive's database reached some other way than ctx.db: the SQL still tells.
    ("def f(db):\n    db.execute('SELECT c.comment_id FROM comments c WHERE c.platform=?', [p])", "['comments']"),
    ("def f(db):\n    db.execute('select 1 from Sync_State')", "['sync_state']"),
    ("def f(db):\n    db.execute('SELECT 1 FROM listed_ids, posts WHERE 1')", "['listed_ids', 'posts']"),
    ("def f(db):\n    db.execute('SELECT 1 FROM x JOIN post_versions v ON 1')", "['post_versions']"),
    ("def f(db):\n    db.executemany('INSERT OR IGNORE INTO people VALUES (?)', rows)", "['people']"),
    ("def f(db):\n    db.execute('DELETE FROM main.snapshots')", "['snapshots']"),
    ("def f(db):\n    db.execute(\"UPDATE comments SET text='' \" + 'WHERE 1')", "['comments']"),
    ("def f(db):\n    sql = 'SELECT 1 FROM ' + 'posts'\n    db.execute(sql)", "['posts']"),
    ("def f(db):\n    db.executescript('CREATE INDEX i ON post_media (sha256);')", "['post_media']"),
    ("def f(db):\n    db.query('SELECT * FROM follows')", "['follows']"),
    ("def f(db):\n    db.execute(f'SELECT 1 FROM {table}')", "a table named by an f-string"),
    ("def f(db, sql):\n    db.execute(sql)", "SQL the check cannot read"),
    ("def f(db):\n    db['posts'].insert({})", "takes the table"),
    ("def f(self):\n    self.db.table('comments').count", "takes the table"),
    ("def f(self):\n    return self.ctx.archive", "uses ctx.archive"),
    ("from archiver.archive.writer import ArchiveWriter", "imports the archive's own modules"),
    ("from archiver.archive import Archive", "imports the archive's own modules"),
    ("import archiver.archive.schema", "imports the archive's own modules"),
    ("from archiver.archive import media, writer", "imports the archive's own modules"),
])
def test_the_check_finds_each_way_to_the_archives_tables(core_tables, code, what):
    findings, _ = findings_in(code, "x.py", core_tables)
    assert any(what in f.what for f in findings), findings


def test_the_check_lets_a_connector_use_its_own_sqlite_and_the_archives_helpers(core_tables):
    code = '''
from archiver.archive.media import copy_bounded
from archiver.archive.lists import list_pages
from archiver.archive import lists

class Store:
    def __init__(self):
        self.db = sqlite3.connect("")
        self.db.executescript("CREATE TABLE blocks (cid BLOB PRIMARY KEY); CREATE INDEX b ON blocks (cid);")

    def rows(self, where, marks):
        self.db.execute(f"SELECT cid FROM blocks WHERE cid IN ({marks}) {where} ORDER BY 1")
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS following (did TEXT PRIMARY KEY)")
        self.db.execute("SELECT value FROM json_each(?)", ["[]"])
'''
    findings, statements = findings_in(code, "x.py", core_tables)
    assert findings == [] and statements == 4
