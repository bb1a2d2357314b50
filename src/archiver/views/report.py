"""`archiver report`: one self-contained HTML file with charts of the archive.

The file opens anywhere, offline, years from now: the CSS is inline, the charts are SVG
drawn here in Python, small pictures (avatars, covers) are embedded as data: URIs, and
nothing is loaded from the network. Links to the platforms (a post, a profile) stay
plain links: following one is the reader's choice, never something the page does.

Every chart carries its numbers twice, so a person and a test can check them:
- in the SVG, each bar or point has ``data-series``, ``data-x`` and ``data-value``;
- beside it, a table with the same numbers (rows with the same three attributes).

The views:
- followers over time, one line per account (``account_metrics``; an account without
  metrics falls back to its complete follower snapshots' ``member_count``);
- new and lost followers per week (``audience_events``, kind ``followers``);
- posts per month (``posts.created_at``);
- the most engaged posts: comments by others (``comments``, ``by_owner = 0``) + likes +
  shares, then views;
- the most engaged people: ``archiver.views.audience.top_fans``;
- reach without any platform: the people an imported newsletter or shop list lets the owner
  reach (``archiver.views.reach``), month by month beside the followers per platform —
  counts only, never an address or a name.

The `archiver report` command (archiver.cli.look) imports this module only when it runs,
so heavy imports are fine here.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable

from archiver.views.web import folder_label, web_link

# How much history the charts show at most: older weeks and months are in the archive,
# not on the page (a bar a few pixels wide says nothing).
MAX_WEEKS = 104
MAX_MONTHS = 120
TOP_POSTS = 15
TOP_PEOPLE = 15
# Pictures above this size are left out rather than bloating the file.
MAX_EMBEDDED_IMAGE_BYTES = 100_000

# Chart colours. Each chart has colours no other chart uses, so a screenshot test can tell
# the charts apart by colour alone.
SERIES_COLOURS = ["#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
NEW_COLOUR = "#2ca02c"
LOST_COLOUR = "#d62728"
POSTS_COLOUR = "#ff7f0e"
TOP_POSTS_COLOUR = "#0b7a75"
TOP_PEOPLE_COLOUR = "#5b4bc4"
OWNED_COLOUR = "#111111"

CHART_WIDTH = 720
CHART_HEIGHT = 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 16, 40

EMPTY_FOLLOWERS = ("No follower counts yet — run `archiver export` (the API gives counts) "
                   "or import an export with your followers.")
EMPTY_CHURN = ("No follower snapshots yet — import an export or run `archiver export`; "
               "new and lost followers show once two snapshots can be compared.")
ONE_SNAPSHOT_CHURN = ("One follower snapshot so far: new and lost followers show once a later one (the next "
                      "`archiver export`, or a newer export imported) can be compared with it.")
EMPTY_POSTS = "No posts yet — run `archiver export` or import an export."
EMPTY_TOP_POSTS = "No posts yet — run `archiver export` or import an export."
EMPTY_REACH = ("No newsletter or shop list imported yet — `archiver import` your newsletter's subscriber export "
               "or your shop's customer export (`archiver connectors` lists the providers it reads) to see how "
               "many people you can reach without any platform.")
EMPTY_TOP_PEOPLE = ("Nobody has commented on your posts yet, as far as the archive knows — "
                    "run `archiver export` to fetch comments.")

ENGAGEMENT_RULE = "engagement = comments by others (in the archive) + likes + shares; ties by views"


# -- the data -------------------------------------------------------------------------------


@dataclass
class Series:
    """One named list of (x label, value) pairs; `at` holds times for a time axis."""

    name: str
    colour: str
    points: list[tuple[str, int]] = field(default_factory=list)
    source: str = ""


def _rows(db, sql: str, params: Iterable[Any] = ()) -> list[dict]:
    cursor = db.execute(sql, list(params))
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def follower_series(db) -> list[Series]:
    """Followers over time, one series per account, oldest point first."""
    accounts = [r["account_id"] for r in _rows(
        db,
        "SELECT account_id FROM account_metrics WHERE followers IS NOT NULL "
        "UNION SELECT account_id FROM snapshots WHERE kind = 'followers' AND complete = 1 "
        "ORDER BY account_id")]
    series = []
    for index, account in enumerate(accounts):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        points = [(r["observed_at"], r["followers"]) for r in _rows(
            db,
            "SELECT observed_at, followers FROM account_metrics "
            "WHERE account_id = ? AND followers IS NOT NULL ORDER BY observed_at", [account])]
        source = "account_metrics"
        if not points:
            # No counts from an API (a TikTok account known from exports only): the size of
            # each complete follower list is the next best thing. Partial lists (a run that
            # failed half-way, YouTube's public subscribers) would draw false dips.
            points = [(r["taken_at"], r["member_count"]) for r in _rows(
                db,
                "SELECT taken_at, max(member_count) AS member_count FROM snapshots "
                "WHERE account_id = ? AND kind = 'followers' AND complete = 1 "
                "GROUP BY taken_at ORDER BY taken_at", [account])]
            source = "snapshots"
        series.append(Series(account, colour, points, source))
    return series


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def weekly_churn(db) -> list[dict]:
    """New and lost followers per week (weeks start on Monday, UTC), gaps filled with 0."""
    # date(at, 'weekday 0', '-6 days') is the Monday on or before `at`; grouping in SQL
    # keeps a million events out of Python.
    rows = _rows(
        db,
        "SELECT date(at, 'weekday 0', '-6 days') AS week, "
        "sum(event = 'new') AS new, sum(event = 'lost') AS lost "
        "FROM audience_events WHERE kind = 'followers' GROUP BY week ORDER BY week")
    if not rows:
        return []
    by_week = {r["week"]: r for r in rows}
    last = dt.date.fromisoformat(rows[-1]["week"])
    first = max(dt.date.fromisoformat(rows[0]["week"]), last - dt.timedelta(weeks=MAX_WEEKS - 1))
    weeks = []
    day = first
    while day <= last:
        row = by_week.get(day.isoformat(), {})
        weeks.append({"week": day.isoformat(), "new": row.get("new") or 0, "lost": row.get("lost") or 0})
        day += dt.timedelta(weeks=1)
    return weeks


def _month_after(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12}-{number % 12 + 1:02d}"


def monthly_posts(db) -> list[dict]:
    """Posts per month of their creation (UTC), gaps filled with 0. Deleted posts count:
    they were posted."""
    rows = _rows(
        db,
        "SELECT substr(created_at, 1, 7) AS month, count(*) AS posts FROM posts "
        "WHERE created_at IS NOT NULL AND created_at != '' GROUP BY month ORDER BY month")
    if not rows:
        return []
    by_month = {r["month"]: r["posts"] for r in rows}
    months = [rows[0]["month"]]
    while months[-1] < rows[-1]["month"]:
        months.append(_month_after(months[-1]))
    return [{"month": m, "posts": by_month.get(m, 0)} for m in months[-MAX_MONTHS:]]


def top_posts(db, limit: int = TOP_POSTS) -> list[dict]:
    """The most engaged posts (see ENGAGEMENT_RULE), with their cover's media row if any."""
    return _rows(
        db,
        """
        WITH others AS (
          SELECT platform, post_id, count(*) AS n FROM comments
          WHERE by_owner = 0 AND post_id IS NOT NULL GROUP BY platform, post_id
        )
        SELECT p.platform, p.post_id, p.account_id, p.created_at, p.url, p.deleted_at,
               coalesce(nullif(p.title, ''), substr(p.text, 1, 100), p.post_id) AS title,
               coalesce(o.n, 0) AS comments, coalesce(p.like_count, 0) AS likes,
               coalesce(p.share_count, 0) AS shares, p.view_count AS views,
               coalesce(o.n, 0) + coalesce(p.like_count, 0) + coalesce(p.share_count, 0) AS engagement,
               (SELECT pm.sha256 FROM post_media pm
                 WHERE pm.platform = p.platform AND pm.post_id = p.post_id AND pm.status = 'ok'
                   AND pm.role IN ('cover', 'thumbnail', 'image')
                 ORDER BY pm.role = 'cover' DESC, pm.position LIMIT 1) AS cover_sha256
        FROM posts p LEFT JOIN others o ON o.platform = p.platform AND o.post_id = p.post_id
        ORDER BY engagement DESC, coalesce(p.view_count, 0) DESC, p.created_at DESC
        LIMIT ?
        """,
        [limit],
    )


def top_people(db, now: str | None = None, limit: int = TOP_PEOPLE) -> list[dict]:
    from archiver.views.audience import parse_identity, top_fans

    people = top_fans(db, limit=limit, now=now)
    # The picture the archive stored for one of the person's identities
    # (people.avatar_sha256), in the order top_fans lists them.
    for person in people:
        for identity in person["platforms"]:
            platform, person_id = parse_identity(identity)
            row = db.execute("SELECT avatar_sha256 FROM people WHERE platform=? AND person_id=? "
                             "AND avatar_sha256 IS NOT NULL", [platform, person_id]).fetchone()
            if row:
                person["avatar_sha256"] = row[0]
                break
    return people


def accounts(db) -> list[dict]:
    return _rows(db, "SELECT account_id, platform, username, display_name, url, avatar_sha256, "
                     "followers, following, posts FROM accounts ORDER BY account_id")


def _embedded_image(db, media_root: Path, sha256: str | None) -> str | None:
    """A data: URI of a stored picture, or None when it is missing, not an image or too big."""
    if not sha256:
        return None
    rows = _rows(db, "SELECT path, mime, size FROM media WHERE sha256 = ?", [sha256])
    if not rows:
        return None
    media = rows[0]
    mime = media["mime"] or ""
    if not mime.startswith("image/") or (media["size"] or 0) > MAX_EMBEDDED_IMAGE_BYTES:
        return None
    path = (media_root / media["path"]).resolve()
    if media_root.resolve() not in path.parents or not path.is_file():
        return None  # a path that leaves media/ is never read
    data = path.read_bytes()
    if len(data) > MAX_EMBEDDED_IMAGE_BYTES:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# -- drawing --------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


def _epoch(moment: str) -> float:
    text = moment.replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def _nice_max(value: float) -> int:
    """A round axis maximum at or above `value` (1, 2, 5 × a power of ten)."""
    if value <= 0:
        return 1
    power = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _svg_open(chart: str, title: str, height: int = CHART_HEIGHT) -> list[str]:
    return [f'<svg class="chart" id="chart-{chart}" data-chart="{chart}" role="img" '
            f'aria-label="{_e(title)}" width="{CHART_WIDTH}" height="{height}" '
            f'viewBox="0 0 {CHART_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
            f"<title>{_e(title)}</title>"]


def _y_axis(parts: list[str], top: int, height: int = CHART_HEIGHT) -> None:
    """Grid lines and labels at 0, half and the top of the value axis."""
    plot_bottom = height - MARGIN_BOTTOM
    plot_height = plot_bottom - MARGIN_TOP
    for fraction in (0, 0.5, 1):
        y = plot_bottom - fraction * plot_height
        parts.append(f'<line class="grid" x1="{MARGIN_LEFT}" x2="{CHART_WIDTH - MARGIN_RIGHT}" '
                     f'y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_number(round(top * fraction))}</text>")


def line_chart(chart: str, title: str, series: list[Series]) -> str:
    """Lines over a time axis: each point a circle with its numbers."""
    moments = [_epoch(x) for s in series for x, _ in s.points]
    first, last = min(moments), max(moments)
    span = (last - first) or 1.0
    top = _nice_max(max(v for s in series for _, v in s.points))
    plot_width = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_bottom = CHART_HEIGHT - MARGIN_BOTTOM
    plot_height = plot_bottom - MARGIN_TOP

    def x_of(moment: str) -> float:
        if last == first:
            return MARGIN_LEFT + plot_width / 2
        return MARGIN_LEFT + (_epoch(moment) - first) / span * plot_width

    def y_of(value: int) -> float:
        return plot_bottom - value / top * plot_height

    parts = _svg_open(chart, title)
    _y_axis(parts, top)
    for label, anchor, at in ((min(x for s in series for x, _ in s.points), "start", MARGIN_LEFT),
                              (max(x for s in series for x, _ in s.points), "end", CHART_WIDTH - MARGIN_RIGHT)):
        parts.append(f'<text class="tick" x="{at}" y="{CHART_HEIGHT - MARGIN_BOTTOM + 18}" '
                     f'text-anchor="{anchor}">{_e(label[:10])}</text>')
    for s in series:
        coordinates = " ".join(f"{x_of(x):.1f},{y_of(v):.1f}" for x, v in s.points)
        parts.append(f'<polyline class="line" data-series="{_e(s.name)}" points="{coordinates}" '
                     f'fill="none" stroke="{s.colour}" stroke-width="3"/>')
        for x, v in s.points:
            parts.append(f'<circle class="point" data-series="{_e(s.name)}" data-x="{_e(x)}" '
                         f'data-value="{v}" cx="{x_of(x):.1f}" cy="{y_of(v):.1f}" r="5" fill="{s.colour}">'
                         f"<title>{_e(s.name)} {_e(x)}: {_number(v)}</title></circle>")
    parts.append("</svg>")
    return "\n".join(parts)


def column_chart(chart: str, title: str, labels: list[str], bars: list[Series]) -> str:
    """Vertical bars, one group per label, one bar per series in each group."""
    top = _nice_max(max((v for s in bars for _, v in s.points), default=0))
    plot_width = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_bottom = CHART_HEIGHT - MARGIN_BOTTOM
    plot_height = plot_bottom - MARGIN_TOP
    slot = plot_width / max(len(labels), 1)
    bar_width = max(slot * 0.8 / len(bars), 1.0)
    parts = _svg_open(chart, title)
    _y_axis(parts, top)
    for index, label in enumerate(labels):
        for number, s in enumerate(bars):
            value = s.points[index][1]
            height = value / top * plot_height
            x = MARGIN_LEFT + index * slot + slot * 0.1 + number * bar_width
            parts.append(f'<rect class="bar" data-series="{_e(s.name)}" data-x="{_e(label)}" '
                         f'data-value="{value}" x="{x:.1f}" y="{plot_bottom - height:.1f}" '
                         f'width="{bar_width:.1f}" height="{height:.1f}" fill="{s.colour}">'
                         f"<title>{_e(label)} {_e(s.name)}: {_number(value)}</title></rect>")
    # Label the first and last column, and a few between when there is room.
    step = max(1, len(labels) // 6)
    shown = sorted(set(range(0, len(labels), step)) | {len(labels) - 1})
    for index in shown:
        x = MARGIN_LEFT + (index + 0.5) * slot
        parts.append(f'<text class="tick" x="{x:.1f}" y="{plot_bottom + 18}" text-anchor="middle">'
                     f"{_e(labels[index])}</text>")
    parts.append("</svg>")
    return "\n".join(parts)


def bar_list_chart(chart: str, title: str, items: list[tuple[str, str, int]], colour: str) -> str:
    """Horizontal bars, one per (key, label, value), biggest first as given."""
    row_height = 22
    height = MARGIN_TOP + row_height * len(items) + 8
    label_width = 240
    top = _nice_max(max(v for _, _, v in items))
    plot_width = CHART_WIDTH - label_width - MARGIN_RIGHT - 60
    parts = _svg_open(chart, title, height)
    for index, (key, label, value) in enumerate(items):
        y = MARGIN_TOP + index * row_height
        width = value / top * plot_width
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(f'<text class="label" x="{label_width - 8}" y="{y + 15}" text-anchor="end">{_e(short)}</text>')
        parts.append(f'<rect class="bar" data-series="{_e(chart)}" data-x="{_e(key)}" data-value="{value}" '
                     f'x="{label_width}" y="{y + 3}" width="{width:.1f}" height="{row_height - 6}" '
                     f'fill="{colour}"><title>{_e(label)}: {_number(value)}</title></rect>')
        parts.append(f'<text class="tick" x="{label_width + width + 6:.1f}" y="{y + 15}">{_number(value)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _legend(series: list[Series]) -> str:
    return '<p class="legend">' + " ".join(
        f'<span><i style="background:{s.colour}"></i>{_e(s.name)}</span>' for s in series) + "</p>"


def _link(url: str | None, text: str) -> str:
    """A plain link to the platform (only http(s), see archiver.views.web); the text alone otherwise."""
    if web_link(url):
        return f'<a href="{_e(url)}" rel="noreferrer noopener">{_e(text)}</a>'
    return _e(text)


def _table(chart: str, head: list[str], rows: list[str]) -> str:
    return (f'<div class="numbers"><table data-chart="{chart}"><thead><tr>'
            + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def _section(anchor: str, heading: str, note: str, body: str) -> str:
    return (f'<section id="{anchor}"><h2>{_e(heading)}</h2>'
            + (f'<p class="note">{_e(note)}</p>' if note else "") + body + "</section>")


def _empty(chart: str, message: str) -> str:
    return f'<p class="empty" data-chart="{chart}">{_e(message)}</p>'


# -- the sections ---------------------------------------------------------------------------


def _followers_section(db) -> str:
    series = follower_series(db)
    if not series:
        return _section("followers", "Followers over time", "", _empty("followers", EMPTY_FOLLOWERS))
    rows = [f'<tr data-series="{_e(s.name)}" data-x="{_e(x)}" data-value="{v}">'
            f"<td>{_e(s.name)}</td><td>{_e(x)}</td><td class=n>{_number(v)}</td></tr>"
            for s in series for x, v in s.points]
    sources = {s.name: s.source for s in series}
    note = "Counts each account reported" + (
        "; from the size of complete follower lists for " + ", ".join(n for n, src in sources.items() if src == "snapshots")
        if "snapshots" in sources.values() else "") + "."
    chart = line_chart("followers", "Followers over time", series)
    return _section("followers", "Followers over time", note,
                    '<div class="pair">' + '<div>' + chart + _legend(series) + "</div>"
                    + _table("followers", ["account", "when", "followers"], rows) + "</div>")


def _churn_section(db) -> str:
    weeks = weekly_churn(db)
    if not weeks:
        snapshots = db.execute("SELECT count(*) FROM snapshots WHERE kind='followers'").fetchone()[0]
        said = (EMPTY_CHURN if not snapshots else ONE_SNAPSHOT_CHURN if snapshots == 1
                else f"No follower came or left between the {snapshots} follower snapshots so far.")
        return _section("churn", "New and lost followers per week", "", _empty("churn", said))
    labels = [w["week"] for w in weeks]
    bars = [Series("new", NEW_COLOUR, [(w["week"], w["new"]) for w in weeks]),
            Series("lost", LOST_COLOUR, [(w["week"], w["lost"]) for w in weeks])]
    rows = [f'<tr data-x="{w["week"]}" data-new="{w["new"]}" data-lost="{w["lost"]}">'
            f'<td>{w["week"]}</td><td class=n>{_number(w["new"])}</td><td class=n>{_number(w["lost"])}</td></tr>'
            for w in reversed(weeks)]
    chart = column_chart("churn", "New and lost followers per week", labels, bars)
    return _section("churn", "New and lost followers per week",
                    "Weeks start on Monday (UTC). Found by comparing follower snapshots; "
                    "a partial list never counts anyone as lost.",
                    '<div class="pair"><div>' + chart + _legend(bars) + "</div>"
                    + _table("churn", ["week of", "new", "lost"], rows) + "</div>")


def _posts_section(db) -> str:
    months = monthly_posts(db)
    if not months:
        return _section("posts", "Posts per month", "", _empty("posts", EMPTY_POSTS))
    labels = [m["month"] for m in months]
    bars = [Series("posts", POSTS_COLOUR, [(m["month"], m["posts"]) for m in months])]
    rows = [f'<tr data-x="{m["month"]}" data-value="{m["posts"]}"><td>{m["month"]}</td>'
            f'<td class=n>{_number(m["posts"])}</td></tr>' for m in reversed(months)]
    chart = column_chart("posts", "Posts per month", labels, bars)
    return _section("posts", "Posts per month", "By the month they were posted (UTC), deleted ones included.",
                    '<div class="pair"><div>' + chart + "</div>"
                    + _table("posts", ["month", "posts"], rows) + "</div>")


def _top_posts_section(db, media_root: Path) -> str:
    posts = top_posts(db)
    if not posts:
        return _section("top-posts", "Most engaged posts", "", _empty("top-posts", EMPTY_TOP_POSTS))
    items = [(f'{p["platform"]}:{p["post_id"]}', p["title"] or p["post_id"], p["engagement"]) for p in posts]
    rows = []
    for p in posts:
        cover = _embedded_image(db, media_root, p["cover_sha256"])
        picture = f'<img class="cover" src="{cover}" alt="">' if cover else ""
        rows.append(
            f'<tr data-x="{_e(p["platform"])}:{_e(p["post_id"])}" data-value="{p["engagement"]}" '
            f'data-comments="{p["comments"]}" data-likes="{p["likes"]}" data-shares="{p["shares"]}" '
            f'data-views="{"" if p["views"] is None else p["views"]}">'
            f"<td>{picture}</td><td>{_link(p['url'], p['title'] or p['post_id'])}"
            f'<br><small>{_e(p["platform"])} · {_e((p["created_at"] or "")[:10])}'
            f'{" · deleted" if p["deleted_at"] else ""}</small></td>'
            f'<td class=n>{_number(p["comments"])}</td><td class=n>{_number(p["likes"])}</td>'
            f'<td class=n>{_number(p["shares"])}</td><td class=n>{_number(p["views"])}</td>'
            f'<td class=n>{_number(p["engagement"])}</td></tr>')
    chart = bar_list_chart("top-posts", "Most engaged posts", items, TOP_POSTS_COLOUR)
    return _section("top-posts", "Most engaged posts", ENGAGEMENT_RULE + ".",
                    chart + _table("top-posts", ["", "post", "comments", "likes", "shares", "views", "engagement"],
                                   rows))


def _top_people_section(db, media_root: Path, now: str | None) -> str:
    people = top_people(db, now=now)
    if not people:
        return _section("top-people", "Most engaged people", "", _empty("top-people", EMPTY_TOP_PEOPLE))
    items = [(p["person_key"], p.get("display_name") or p.get("handle") or p["person_key"], p["score"])
             for p in people]
    rows = []
    for p in people:
        # top_fans names a remote avatar_url; only a picture the archive stored is shown
        # (a remote one would make the report load something from the platform).
        avatar = _embedded_image(db, media_root, p.get("avatar_sha256"))
        picture = f'<img class="avatar" src="{avatar}" alt="">' if avatar else ""
        name = p.get("display_name") or p.get("handle") or p["person_key"]
        rows.append(
            f'<tr data-x="{_e(p["person_key"])}" data-value="{p["score"]}" '
            f'data-comments="{p["comment_count"]}">'
            f"<td>{picture}</td><td>{_link(p.get('url'), name)}"
            f'<br><small>{_e("@" + p["handle"] if p.get("handle") else "")}</small></td>'
            f'<td>{_e(", ".join(p.get("platforms") or []))}</td>'
            f'<td class=n>{_number(p["comment_count"])}</td>'
            f'<td>{_e((p.get("last_interaction") or "")[:10])}</td>'
            f'<td class=n>{_number(p["score"])}</td></tr>')
    chart = bar_list_chart("top-people", "Most engaged people", items, TOP_PEOPLE_COLOUR)
    return _section("top-people", "Most engaged people",
                    "Comments and replies on your posts, recent ones weighing more "
                    "(`archiver audience top`); linked identities count as one person.",
                    chart + _table("top-people", ["", "person", "identities", "comments", "last", "score"], rows))


def _reach_section(db, now: str | None) -> str:
    from archiver.views.reach import has_contacts, reach

    heading = "Reach without any platform"
    if not has_contacts(db):
        return _section("reach", heading, "", _empty("reach", EMPTY_REACH))
    found = reach(db, now=now, months=24)
    series = [Series("reachable directly", OWNED_COLOUR, [(p["at"], p["reachable"]) for p in found["timeline"]],
                     "owned_contacts")]
    for index, platform in enumerate(sorted(found["followers"])):
        points = [(p["at"], p["followers"][platform]) for p in found["timeline"] if p["followers"][platform] is not None]
        if points:
            series.append(Series(f"{platform} followers", SERIES_COLOURS[index % len(SERIES_COLOURS)], points,
                                 "followers"))
    rows = [f'<tr data-series="{_e(s.name)}" data-x="{_e(x)}" data-value="{v}">'
            f"<td>{_e(s.name)}</td><td>{_e(x[:7])}</td><td class=n>{_number(v)}</td></tr>"
            for s in series for x, v in s.points]
    followers = ", ".join(f"{_number(n)} on {p}" for p, n in sorted(found["followers"].items()) if n is not None)
    note = (f"{_number(found['reachable'])} people you can reach without any platform now (newsletter subscribers "
            "and shop customers who agreed to email, one per address)" + (f", against {followers} followers"
                                                                          if followers else "") + ".")
    if found["no_consent"]:
        note += f" {_number(found['no_consent'])} customers have no consent on record and are not counted."
    chart = line_chart("reach", heading, series) if any(s.points for s in series) else _empty("reach", EMPTY_REACH)
    return _section("reach", heading, note, '<div class="pair"><div>' + chart + _legend(series) + "</div>"
                    + _table("reach", ["series", "month", "people"], rows) + "</div>")


def _accounts_header(db, media_root: Path) -> str:
    cards = []
    for account in accounts(db):
        avatar = _embedded_image(db, media_root, account["avatar_sha256"])
        picture = f'<img class="avatar" src="{avatar}" alt="">' if avatar else ""
        name = account["display_name"] or account["username"] or account["account_id"]
        cards.append(
            f'<div class="account" data-account="{_e(account["account_id"])}">{picture}<div>'
            f"<strong>{_link(account['url'], name)}</strong><br><small>{_e(account['account_id'])}</small><br>"
            f'{_number(account["followers"])} followers · {_number(account["posts"])} posts</div></div>')
    if not cards:
        return _empty("accounts", "No accounts archived yet — run `archiver init`, then `archiver export` or "
                                  "`archiver import`.")
    return '<div class="accounts">' + "".join(cards) + "</div>"


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; background: #fff; margin: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 32px 0 4px; }
.meta, .note, small { color: #666; } .note { margin: 0 0 8px; }
.empty { padding: 16px; background: #f6f6f6; border-radius: 6px; color: #444; }
.pair { display: flex; gap: 16px; align-items: flex-start; }
.numbers { max-height: 300px; overflow: auto; border: 1px solid #eee; }
table { border-collapse: collapse; } th, td { padding: 3px 8px; text-align: left; border-bottom: 1px solid #eee; }
th { position: sticky; top: 0; background: #fafafa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg.chart { display: block; background: #fff; }
svg .grid { stroke: #e4e4e4; stroke-width: 1; } svg text { font-size: 11px; fill: #555; }
.legend span { margin-right: 14px; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.accounts { display: flex; flex-wrap: wrap; gap: 16px; margin: 12px 0; }
.account { display: flex; gap: 8px; align-items: center; }
img.avatar { width: 40px; height: 40px; border-radius: 50%; object-fit: cover; }
img.cover { width: 48px; height: 48px; object-fit: cover; }
"""


def render_report(archive, *, now: str | None = None) -> str:
    """The report of `archive` (an archiver.archive.Archive) as one HTML string."""
    from archiver.records import iso_utc, now_utc

    db = archive.db
    generated = (iso_utc(now) if now else None) or now_utc()   # iso_utc of a non-empty text is never None
    media_root = archive.media_root
    sections = [
        _followers_section(db),
        _churn_section(db),
        _posts_section(db),
        _top_posts_section(db, media_root),
        _top_people_section(db, media_root, now),
        _reach_section(db, now),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # Nothing on this page may load from anywhere: a stray remote URL is refused.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>archiver report — {_e(generated[:10])}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>Your audience and posts</h1><p class=\"meta\">Archive {_e(folder_label(archive.folder))} · "
        f"generated {_e(generated)} (times in UTC)</p>\n"
        + _accounts_header(db, media_root) + "\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def write_report(archive, out_path_or_stream: str | os.PathLike | IO[str], *, now: str | None = None):
    """Write the report to a file path (atomically: a reader never sees half a file) or to
    an open text stream. Returns the path written, or None for a stream."""
    text = render_report(archive, now=now)
    if hasattr(out_path_or_stream, "write"):
        out_path_or_stream.write(text)
        return None
    target = Path(out_path_or_stream).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here, not at the top: `archiver --help` imports this module

    handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".html.part", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
