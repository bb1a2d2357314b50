"""`archiver site`: a static website of your own posts, from the archive (archiver.views.site)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from archiver.cli._common import common_options, fail, guard, open_existing_workspace, platform_name
from archiver.inert import echo

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z?)?")


def _platforms(ctx, param, values):
    return tuple(platform_name(ctx, param, value) for value in values)


@click.command()
@common_options
@click.option("--out", "out", metavar="DIR", type=click.Path(file_okay=False),
              help="The site's folder. Default: site/ in the archive folder. Rebuilding it rewrites only what changed.")
@click.option("--platform", "platforms", metavar="P", multiple=True, callback=_platforms,
              help="Only this platform's posts (repeat for several). Default: every platform.")
@click.option("--since", metavar="DATE", help="Only posts from this day on (YYYY-MM-DD, UTC).")
@click.option("--base-url", metavar="URL",
              help="The address the site will be served at (https://example.org/): adds sitemap.xml, "
                   "canonical links and absolute links in the feed.")
@click.option("--include-private", is_flag=True,
              help="Also posts that are not public (unlisted, followers, friends, private) and posts deleted "
                   "on the platform. Do not publish such a site.")
@guard
def site(archive, config_path, out, platforms, since, base_url, include_private):
    """Write a static website of your own posts: a timeline of every platform, a page per post
    with its media, pages per platform and hashtag, an about page from [owner] in the config,
    an Atom feed and a search. It works opened from disk or served by any web host."""
    from archiver.connector import get_connector
    from archiver.views.site import SiteError, build_site

    if since and not _DATE.fullmatch(since):
        fail(f"--since {since!r}: expected a day as YYYY-MM-DD, e.g. 2024-01-31")
    for platform in platforms:
        get_connector(platform)   # an unknown one is one clear line naming the installed ones
    ws = open_existing_workspace(archive, config_path)
    target = Path(out) if out else ws.archive.folder / "site"
    owner = ws.config.owner
    try:
        result = build_site(ws.archive, target, owner=owner, platforms=platforms, since=since, base_url=base_url,
                            include_private=include_private)
    except SiteError as error:
        fail(str(error))
    echo(f"{result.posts} posts on {result.pages} pages: {result.written} files written, "
         f"{result.unchanged} unchanged, {result.removed} removed.")
    if result.media_missing:
        echo(f"{result.media_missing} media files are missing from the archive's media folder: "
             "`archiver verify` checks it.", err=True)
    if include_private:
        echo("This site includes posts that are not public, and deleted ones: keep it to yourself.", err=True)
    echo(f"Open it: {(result.out / 'index.html').resolve().as_uri()}")
