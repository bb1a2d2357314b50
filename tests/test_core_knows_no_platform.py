"""The core (src/archiver) names no platform: what is particular to one lives in its connector,
as declared data or a hook. Platform names may appear only as examples: in comments, docstrings,
command-line help texts (``help=`` of an option), and in a message's text after "e.g.",
"such as" or "for example" in the same clause. Everything else the code holds is checked:
names (variables, attributes, functions, classes, arguments, imported modules) and string
constants (f-string parts included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import archiver

CORE = Path(archiver.__file__).parent
PLATFORMS = re.compile(r"tiktok|instagram|youtube|mastodon|bluesky|facebook|linkedin|pinterest|twitter|mailchimp|substack|buttondown|shopify|woocommerce|x\.com|(?<![a-z_])threads(?![a-z_])", re.IGNORECASE)
EXAMPLE = re.compile(r"e\.g\.|such as|for example", re.IGNORECASE)
CLAUSE_END = re.compile(r"[;()\n]|\.\s")


def _only_examples(text: str) -> bool:
    """True when every platform name in ``text`` follows an example marker in its clause."""
    for match in PLATFORMS.finditer(text):
        markers = list(EXAMPLE.finditer(text, 0, match.start()))
        if not markers or CLAUSE_END.search(text, markers[-1].end(), match.start()):
            return False
    return True


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of the module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                found.add(id(body[0].value))
    return found


def _help_texts(tree: ast.AST) -> set[int]:
    """ids of every node inside a ``help=...`` keyword argument (click's option help)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "help":
            found.update(id(inner) for inner in ast.walk(node.value))
    return found


def _words(node: ast.AST) -> list[str]:
    """The names and text a node holds itself (not its children)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


def platform_names_in_code(source: str) -> list[tuple[int, str]]:
    """(line, word) for each name or string constant in ``source`` that names a platform,
    outside docstrings and help texts."""
    tree = ast.parse(source)
    allowed = _docstrings(tree) | _help_texts(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in allowed:
            continue
        for word in _words(node):
            is_text = isinstance(node, ast.Constant)
            if PLATFORMS.search(word) and not (is_text and _only_examples(word)):
                found.append((getattr(node, "lineno", 0), word))
    return found


def test_the_core_names_no_platform_outside_comments_docstrings_and_help():
    offences = []
    for path in sorted(CORE.rglob("*.py")):
        for line, word in platform_names_in_code(path.read_text(encoding="utf-8")):
            offences.append(f"{path.relative_to(CORE.parent)}:{line}: {word!r}")
    assert not offences, "the core names a platform (move it into the connector):\n" + "\n".join(offences)


def test_the_check_sees_code_and_ignores_comments_docstrings_and_help():
    source = '''
"""Module docstring: TikTok is an example."""
import click

def f(x):
    """Docstring naming Mastodon."""
    # a comment naming Bluesky
    return x

@click.option("--handle", help="Bluesky: your handle")
def g(): pass

TABLE = {"youtube": 1}
message = f"see {TABLE} on Instagram"
from archiver_connectors.tiktok import TikTokConnector
def instagram_only(): pass
hint = "a handle, e.g. alice.bsky.social, or a variable such as ARCHIVER_SECRET_TIKTOK_MAIN_TOKENS"
not_an_example = "e.g. a handle. Bluesky needs one"
also_not = "e.g. a handle (mastodon)"
'''
    found = {word for _, word in platform_names_in_code(source)}
    assert found == {"youtube", " on Instagram", "archiver_connectors.tiktok", "TikTokConnector", "instagram_only",
                     "e.g. a handle. Bluesky needs one", "e.g. a handle (mastodon)"}
