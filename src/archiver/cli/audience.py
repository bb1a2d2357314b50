"""`archiver audience …`: a thin click layer over archiver.views.audience."""

from __future__ import annotations

import json
import sys

import click

from archiver.cli._common import common_options, fail, guard, open_existing_workspace, platform_name
from archiver.inert import echo, terminal_text

SEGMENTS = ("followers", "following", "connections", "commenters", "top", "lost", "invite", "all")


@click.group()
def audience():
    """Your audience across platforms: top fans, churn, linked identities, exports."""


def _open_archive(archive, config_path):
    return open_existing_workspace(archive, config_path).archive


def _audience_errors(func):
    """An AudienceError (a malformed or unknown identity, a bad segment) is one clear line."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from archiver.views.audience import AudienceError

        try:
            return func(*args, **kwargs)
        except AudienceError as error:
            fail(str(error))

    return wrapper


def _table(rows: list[list], headers: list[str]) -> str:
    # Cells hold names strangers chose: each is one inert line (see inert.terminal_text).
    cells = [headers] + [["" if v is None else terminal_text(v, one_line=True) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@audience.command()
@common_options
@click.option("--platform", metavar="P", callback=platform_name, help="Only this platform (e.g. instagram).")
@click.option("--days", type=click.IntRange(min=1), metavar="N", help="Only comments of the last N days.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, metavar="N")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@guard
@_audience_errors
def top(archive, config_path, platform, days, limit, as_json):
    """The most engaged people: comments and replies on your posts, recency weighted
    (half-life 90 days), linked identities merged."""
    from archiver.views import audience as lib

    db = _open_archive(archive, config_path).db
    fans = lib.top_fans(db, platform=platform, days=days, limit=limit)
    if as_json:
        echo(json.dumps(fans, indent=2, ensure_ascii=False))
        return
    if not fans:
        echo("no comments from other people in the archive" + (f" on {platform}" if platform else ""))
        return
    rows = [[i + 1, f"{f['score']:.2f}", f["comment_count"], (f["last_interaction"] or "")[:10],
             f["display_name"] or f["handle"] or "", ", ".join(f["platforms"])] for i, f in enumerate(fans)]
    echo(_table(rows, ["#", "score", "comments", "last", "name", "identities"]))


@audience.command()
@common_options
@click.option("--platform", metavar="P", callback=platform_name, help="Only this platform.")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, metavar="N")
@guard
@_audience_errors
def churn(archive, config_path, platform, days):
    """New and lost followers per day, then the lost followers by name."""
    from archiver.views import audience as lib

    db = _open_archive(archive, config_path).db
    per_day = lib.churn(db, platform=platform, days=days)
    if not per_day:
        echo(f"no follower changes in the last {days} days")
        return
    echo(_table([[d["day"], d["platform"], d["new"], d["lost"]] for d in per_day],
                      ["day", "platform", "new", "lost"]))
    lost = lib.lost_followers(db, platform=platform, days=days)
    if lost:
        echo(f"\nlost followers ({len(lost)}):")
        echo(_table([[p["at"][:10], p["platform"], p["display_name"] or "",
                            ("@" + p["handle"].lstrip("@")) if p["handle"] else p["person_id"], p["url"] or ""]
                           for p in lost], ["lost", "platform", "name", "handle", "url"]))


@audience.command()
@common_options
@click.option("--all", "show_all", is_flag=True, help="Also confirmed and rejected links.")
@guard
@_audience_errors
def links(archive, config_path, show_all):
    """Suggested links between identities of one person on several platforms (recomputed
    now). Confirm one with `archiver audience link A B`, reject it with `unlink A B`."""
    from archiver.views import audience as lib

    db = _open_archive(archive, config_path).db
    open_count = lib.suggest_links(db)
    shown = lib.list_links(db, None if show_all else "suggested")
    if not shown:
        echo("no suggested links" if not show_all else "no links")
        return
    echo(_table([[f"{link['confidence']:.2f}", link["status"], link["a"], link["b"], link["reason"]] for link in shown],
                      ["confidence", "status", "A", "B", "reason"]))
    echo(f"\n{open_count} open suggestion(s)")


@audience.command(name="link")
@common_options
@click.argument("a")
@click.argument("b")
@guard
@_audience_errors
def link_cmd(archive, config_path, a, b):
    """Confirm that A and B (platform:person_id) are one person."""
    from archiver.views import audience as lib

    lib.link(_open_archive(archive, config_path).db, a, b)
    echo(f"linked {a} and {b}")


@audience.command(name="unlink")
@common_options
@click.argument("a")
@click.argument("b")
@guard
@_audience_errors
def unlink_cmd(archive, config_path, a, b):
    """Say that A and B (platform:person_id) are not one person; never suggested again."""
    from archiver.views import audience as lib

    lib.unlink(_open_archive(archive, config_path).db, a, b)
    echo(f"unlinked {a} and {b}")


@audience.command()
@common_options
@click.option("--months", type=click.IntRange(min=1, max=36), default=12, show_default=True, metavar="N",
              help="How many months back.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@guard
@_audience_errors
def reach(archive, config_path, months, as_json):
    """How many people you can reach without any platform (newsletter subscribers and shop
    customers who agreed to email, from their imported exports), against your followers on
    each platform, month by month. Counts only: no address is shown."""
    from archiver.views.reach import reach as compute

    db = _open_archive(archive, config_path).db
    found = compute(db, months=months)
    if as_json:
        echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    platforms = sorted(found["followers"])
    rows = [[point["month"], point["reachable"], *("—" if point["followers"][p] is None else point["followers"][p]
                                                   for p in platforms)] for point in found["timeline"]]
    if rows:
        echo(_table(rows, ["month", "reachable", *(f"{p} followers" for p in platforms)]))
        echo("")
    followers = ", ".join(f"{n} on {p}" for p, n in sorted(found["followers"].items()) if n is not None)
    echo(f"reachable without any platform now: {found['reachable']} people (subscribed or customers, "
         "consent on record)" + (f"; followers: {followers}" if followers else ""))
    for item in found["per_list"]:
        echo(f"  {item['account_id']} ({item['channel']}): {item['reachable']} reachable of {item['contacts']}")
    if found["no_consent"]:
        echo(f"{found['no_consent']} customer(s) without consent on record (their shop keeps none): not counted; "
             "ask them to subscribe")
    if not found["per_list"]:
        echo("no newsletter or shop list imported yet: `archiver import` your newsletter's subscriber export or "
             "your shop's customer export (`archiver connectors` lists the providers it reads; "
             "docs/owned-channels.md)")


@audience.command(name="export")
@common_options
@click.option("--segment", type=click.Choice(SEGMENTS), default="all", show_default=True)
@click.option("--platform", metavar="P", callback=platform_name, help="Only this platform's identities.")
@click.option("--since", metavar="DATE", help="Only people whose segment date (follower since, connected "
              "since, last interaction, lost at; first seen for all) is on or after DATE (YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(("csv", "json", "vcf")), default="csv", show_default=True)
@click.option("--bom", is_flag=True, help="Start the file with a UTF-8 byte-order mark (for Excel).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write here instead of standard output.")
@guard
@_audience_errors
def export_cmd(archive, config_path, segment, platform, since, fmt, bom, out_path):
    """One row per person (linked identities merged), to take your audience elsewhere.

    `--segment invite`: your followers, connections and commenters on the platforms whom you
    cannot reach directly yet (not linked to a subscriber or customer who agreed to email),
    top fans first: the people to invite to your newsletter."""
    from archiver.views import audience as lib

    if since:
        from archiver.records import iso_utc

        try:
            since = iso_utc(since)
        except ValueError:
            fail(f"--since: {since!r} is not a date; expected YYYY-MM-DD")
    db = _open_archive(archive, config_path).db
    if out_path:
        import os
        import tempfile
        from pathlib import Path

        # A new file of a random name beside the target (mkstemp: created 0600 and never
        # through a link someone planted there), renamed over it once complete: private
        # from its creation, like the archive, as it lists the person's audience.
        target = Path(out_path)
        handle, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                count = lib.export_people(db, out, segment=segment, platform=platform, since=since, fmt=fmt,
                                          bom=bom)
            os.replace(tmp, out_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        echo(f"{count} people written to {out_path}", err=True)
    else:
        stdout = sys.stdout
        count = lib.export_people(db, stdout, segment=segment, platform=platform, since=since, fmt=fmt, bom=bom)
        stdout.flush()
        if not sys.stdout.isatty():
            echo(f"{count} people", err=True)
