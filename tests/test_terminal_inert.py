"""Archived text is inert on the terminal (issue 11, terminal output): names, captions and
items that strangers wrote reach the terminal through `archiver audience top/churn`,
`archiver status --errors`, log lines and the progress bar. Escape sequences in them (a
hidden OSC 8 link, a screen clear, an OSC 52 clipboard write, a one-character C1 CSI),
other controls and bidi overrides are shown as their escapes (inert.terminal_text), never
passed on; ordinary Unicode is shown as it is; --json output keeps its data exactly. The
CLI runs through click's CliRunner on a real archive seeded with hostile names."""

from __future__ import annotations

import io
import json
import logging
import re

from click.testing import CliRunner

from archiver.archive import Archive
from archiver.inert import terminal_text
from archiver.sync.runner import Runner
from test_audience import NOW, comment, person, snap
from test_safe_fetch import Platform

HOSTILE = {
    "hidden link": "\x1b]8;;http://evil.example/\x07click me\x1b]8;;\x07",
    "screen clear": "\x1b[2J\x1b[H",
    "clipboard write": "\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07",
    "C1 CSI": "\x9b31m",
    "bidi override": "\u202eevil.exe",
    "carriage return": "Bob\rAlice",
    "backspace and bell": "x\b\x07",
}
# What a terminal would act on: ESC, BEL, BS, CR, C1 controls, bidi overrides.
ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def cli(*args: str):
    from archiver.cli.main import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def hostile_archive(tmp_path) -> Archive:
    archive = Archive(tmp_path / "archive")
    for n, name in enumerate(HOSTILE.values()):   # commenters with hostile names: `audience top`
        comment(archive, "tiktok", f"c{n}", person(f"h{n}", f"handle{n}", f"{name} 🎉 Zoë"), NOW)
    # Followers with hostile names who then left: `audience churn` lists them.
    snap(archive, "tiktok", "2024-05-01T00:00:00Z",
         [person(f"h{n}", f"handle{n}", f"{name} 🎉 Zoë") for n, name in enumerate(HOSTILE.values())])
    snap(archive, "tiktok", "2024-06-01T00:00:00Z", [])
    return archive


def test_terminal_text_shows_every_control_as_its_escape_and_keeps_ordinary_unicode():
    for name, value in HOSTILE.items():
        shown = terminal_text(value)
        assert ACTIVE.search(shown) is None, name
    assert terminal_text("\x1b[2J") == "\\u001b[2J"
    assert terminal_text("Zoë 🎉 שלום עולם 東京") == "Zoë 🎉 שלום עולם 東京"
    assert terminal_text("two\nlines\tand a tab") == "two\nlines\tand a tab"
    assert terminal_text("two\nlines", one_line=True) == "two\\u000alines"
    document = json.dumps({"name": "".join(HOSTILE.values()) + "\\"}, ensure_ascii=False)
    assert json.loads(terminal_text(document)) == json.loads(document), "JSON output keeps its data"


def test_audience_top_and_churn_print_hostile_names_inert(tmp_path):
    archive = hostile_archive(tmp_path)
    folder = str(archive.folder)
    archive.close()

    top = cli("audience", "top", "--archive", folder)
    assert top.exit_code == 0, top.output
    assert ACTIVE.search(top.output) is None, repr(top.output)
    assert "\\u001b]8;;http://evil.example/\\u0007click me" in top.output
    assert "\\u202eevil.exe 🎉 Zoë" in top.output
    assert "Bob\\u000dAlice" in top.output

    as_json = cli("audience", "top", "--archive", folder, "--json")
    assert ACTIVE.search(as_json.output) is None, repr(as_json.output)
    names = {fan["display_name"] for fan in json.loads(as_json.output)}
    assert {f"{name} 🎉 Zoë" for name in HOSTILE.values()} <= names, "--json keeps the names exactly"

    churn = cli("audience", "churn", "--archive", folder, "--days", "3650")
    assert churn.exit_code == 0, churn.output
    assert "lost followers (7):" in churn.output
    assert ACTIVE.search(churn.output) is None, repr(churn.output)
    assert "\\u001b]52;c;Y3VybCBldmlsIHwgc2g=\\u0007" in churn.output


def test_status_errors_show_items_named_by_strangers_inert(tmp_path):
    archive = Archive(tmp_path / "archive")

    def pages(ctx):
        for name in HOSTILE.values():
            ctx.report(f"comment by {name}", f"cannot be mapped ({name})")
        return iter([])

    Runner(archive, Platform(), progress=lambda line: None).run(pages, kind="export", mode="incremental")
    folder = str(archive.folder)
    archive.close()
    status = cli("status", "--archive", folder, "--errors")
    assert status.exit_code == 0, status.output
    assert "comment by \\u001b[2J" in status.output
    assert ACTIVE.search(status.output) is None, repr(status.output)


def test_log_lines_carry_archived_text_inert():
    from archiver.net.client import install_log_scrubbing

    stream = io.StringIO()
    logger = logging.getLogger("archiver.test_terminal_inert")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    install_log_scrubbing(logger)
    try:
        for name in HOSTILE.values():
            logger.warning("skipped %s: bad", name)
    finally:
        logger.removeHandler(handler)
    assert ACTIVE.search(stream.getvalue()) is None, repr(stream.getvalue())
    assert "skipped \\u202eevil.exe: bad" in stream.getvalue()


def test_the_progress_bar_interprets_no_markup_and_no_escapes_in_a_page_line():
    from rich.console import Console

    from archiver.cli._common import progress as _progress

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    with _progress("tiktok main", console=console) as progress:
        progress("[link=http://evil.example/]comments[/link] " + HOSTILE["hidden link"])
        console.print()   # draws the live line now
    text = out.getvalue()
    assert "http://evil.example/" in text and "[link=http://evil.example/]" in text, repr(text)
    assert "\x1b]8;" not in text, "no hyperlink reached the terminal"
