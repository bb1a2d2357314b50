"""`archiver content …`: your posts for every other platform, a thin click layer over
archiver.views.content. Nothing here posts anything: the archiver stays read-only towards
platforms."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click

from archiver.cli._common import common_options, fail, guard, open_existing_workspace, platform_name
from archiver.inert import echo, terminal_text


@click.group()
def content():
    """Your posts for every other platform: what is missing where, and folders ready to post."""


def _content_errors(func):
    """A ContentError (an unknown post, a platform without limits, a folder in use) is one line."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from archiver.views.content import ContentError

        try:
            return func(*args, **kwargs)
        except ContentError as error:
            fail(str(error))

    return wrapper


def _snippet(title: str | None, text: str | None, width: int = 60) -> str:
    if title and text and text.casefold().startswith(title.casefold()):
        title = None   # the text begins with its title: once is enough
    words = " ".join(" ".join(part for part in (title, text) if part).split())
    return words if len(words) <= width else words[:width - 1] + "…"


@content.command()
@common_options
@click.option("--from", "from_platform", metavar="P", callback=platform_name,
              help="Only posts of this platform (e.g. tiktok). Default: every platform.")
@click.option("--to", "to_platform", metavar="P", callback=platform_name,
              help="Only what is missing on this platform (e.g. youtube). Default: every other platform archived.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, metavar="N",
              help="Show at most N posts (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every post).")
@guard
@_content_errors
def gaps(archive, config_path, from_platform, to_platform, limit, as_json):
    """Your posts that are on one platform and not on another, newest first. A post counts
    as there when a post there has the same media file or the same caption."""
    from archiver.connector import get_connector, installed_connectors
    from archiver.views import content as lib

    for name in (from_platform, to_platform):
        if name:
            get_connector(name)   # a mistyped platform is an error, not an empty list
    db = open_existing_workspace(archive, config_path).archive.db
    found = lib.gaps(db, from_platform=from_platform, to_platform=to_platform)
    if as_json:
        echo(json.dumps([{"post": gap.ref, "platform": gap.platform, "post_id": gap.post_id,
                          "created_at": gap.created_at, "title": gap.title, "text": gap.text, "url": gap.url,
                          "missing_on": gap.missing_on} for gap in found], indent=2, ensure_ascii=False))
        return
    if not found:
        echo("no gaps: every post is on every platform compared" if len(lib.archived_platforms(db)) > 1 or to_platform
             else "only one platform in the archive: nothing to compare (name one with --to)")
        return
    shown = found if not limit else found[:limit]
    width = max(len(gap.ref) for gap in shown)
    for gap in shown:
        line = (f"{(gap.created_at or '')[:10]:<10}  {gap.ref:<{width}}  missing on {', '.join(gap.missing_on)}  "
                f"{_snippet(gap.title, gap.text)}")
        echo(terminal_text(line, one_line=True))
    more = f" (the newest {len(shown)} shown: --limit 0 for all)" if len(shown) < len(found) else ""
    # The example names a platform `bundle` can fit a post to (one that declares its limits).
    connectors = installed_connectors()
    example = next(((gap, name) for gap in shown for name in gap.missing_on
                    if name in connectors and connectors[name].post_limits is not None), None)
    tip = f" Make one ready to post: archiver content bundle {example[0].ref} --for {example[1]}" if example else ""
    echo(f"\n{len(found)} post(s) missing somewhere{more}.{tip}")


@content.command()
@common_options
@click.argument("post_id", metavar="POST_ID")
@click.option("--for", "target", required=True, metavar="PLATFORM", callback=platform_name,
              help="The platform to post it on (e.g. instagram).")
@click.option("--out", "out", metavar="DIR", type=click.Path(file_okay=False),
              help="Folder to write (new or empty). Default: bundle-PLATFORM-POST_ID in the current folder.")
@guard
@_content_errors
def bundle(archive, config_path, post_id, target, out):
    """Write a folder with POST_ID's media files, its caption fitted to PLATFORM's limits
    (length, hashtags, title) and a checklist.md. POST_ID as `content gaps` shows it
    (platform:id), or the id alone. Nothing is posted."""
    from archiver.views.content import write_bundle

    ws = open_existing_workspace(archive, config_path)
    made = write_bundle(ws.archive, post_id, target, Path(out) if out else None)
    echo(str(made.folder))
    for change in made.adapted.changes:
        echo(terminal_text(f"  {change}", one_line=True), err=True)
    for item in made.missing:
        echo(terminal_text(f"  missing: {item}", one_line=True), err=True)
    echo(f"  {len(made.files)} file(s); next: {made.folder / 'checklist.md'}", err=True)
