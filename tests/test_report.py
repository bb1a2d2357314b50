"""`archiver report`: the HTML file's numbers against SQL on a real archive, no remote
resource in it, and a headless Chromium screenshot showing every chart drawn."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from archiver.archive import Archive
from png_pixels import decode_png, make_png, pixels_of
from archiver.archive.writer import ArchiveWriter, StoredFile
from archiver.records import Comment, Membership, Person, Post, Profile, Snapshot
from archiver.views.report import (LOST_COLOUR, NEW_COLOUR, POSTS_COLOUR, SERIES_COLOURS, TOP_PEOPLE_COLOUR,
                             TOP_POSTS_COLOUR, write_report)

# Its module fixtures are built once: the module's tests run in one worker (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("report")

NOW = "2024-05-01T12:00:00Z"
CHROMIUM = "/usr/bin/chromium"
TIKTOK = "tiktok:main"
YOUTUBE = "youtube:channel"


# -- the page's numbers --------------------------------------------------------------------


class ChartData(HTMLParser):
    """Collects every element with data-chart, and the data-* of the marks inside charts."""

    def __init__(self):
        super().__init__()
        self.marks: dict[str, list[dict]] = {}  # chart -> [{series, x, value}] from the SVG
        self.table_rows: dict[str, list[dict]] = {}  # chart -> [data-* of each <tr>]
        self.empty: set[str] = set()
        self.boxes: dict[str, tuple[int, ...]] = {}
        self.sources: list[str] = []
        self._svg: str | None = None
        self._table: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("src", "href", "action", "poster", "srcset", "data"):
            if a.get(name):
                self.sources.append(f"{tag} {name}={a[name]}")
        if tag == "svg" and "data-chart" in a:
            self._svg = a["data-chart"]
            self.marks.setdefault(self._svg, [])
            if a.get("data-box"):
                self.boxes[self._svg] = tuple(int(v) for v in a["data-box"].split(","))
        elif tag == "table" and "data-chart" in a:
            self._table = a["data-chart"]
            self.table_rows.setdefault(self._table, [])
        elif tag == "p" and "empty" in (a.get("class") or "").split():
            self.empty.add(a["data-chart"])
        elif self._svg and "data-value" in a:
            self.marks[self._svg].append({"series": a.get("data-series"), "x": a.get("data-x"),
                                          "value": float(a["data-value"])})
        elif self._table and tag == "tr" and any(k.startswith("data-") for k in a):
            self.table_rows[self._table].append({k[5:]: v for k, v in a.items() if k.startswith("data-")})

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = None
        elif tag == "table":
            self._table = None


def parse(html: str) -> ChartData:
    parser = ChartData()
    parser.feed(html)
    return parser


# -- an archive with some weeks of life ------------------------------------------------------


AVATAR = make_png(24, 24, (10, 200, 30))
AVATAR_SHA = hashlib.sha256(AVATAR).hexdigest()
AVATAR_PATH = f"{AVATAR_SHA[:2]}/{AVATAR_SHA[2:4]}/{AVATAR_SHA}.png"


def page(archive: Archive, account: str, source: str, now: str, *records, avatar: StoredFile | None = None):
    db = archive.db
    with archive.writing():
        writer = ArchiveWriter(db, platform=account.split(":")[0], account_id=account, source=source, now=now)
        for record in records:
            if isinstance(record, Profile):
                writer.write_profile(record, avatar)
            elif isinstance(record, Post):
                writer.write_post(record)
            elif isinstance(record, Comment):
                writer.write_comment(record)
            elif isinstance(record, Snapshot):
                writer.write_snapshot(record)


def fan(handle: str, platform: str = "tiktok") -> Person:
    return Person(native_id=handle, handle=handle, display_name=handle.title(),
                  url=f"https://www.{platform}.com/@{handle}", avatar_url=f"https://cdn.{platform}.example/{handle}.jpg")


def followers(taken_at: str, *handles: str, complete: bool = True) -> Snapshot:
    return Snapshot("followers", taken_at, [Membership(fan(h)) for h in handles], complete=complete)


def build_archive(folder: Path) -> Archive:
    archive = Archive(folder)
    (archive.media_root / AVATAR_PATH).parent.mkdir(parents=True)
    (archive.media_root / AVATAR_PATH).write_bytes(AVATAR)
    avatar = StoredFile(AVATAR_SHA, AVATAR_PATH, "image/png", len(AVATAR))

    # TikTok through the API: follower counts over several days (a time series).
    for day, count in (("2024-04-01", 100), ("2024-04-08", 120), ("2024-04-15", 115), ("2024-04-22", 140)):
        page(archive, TIKTOK, "api", f"{day}T03:00:00Z",
             Profile("tt1", "me", "Me on TikTok", followers=count, posts=5), avatar=avatar)
    # Follower lists from exports: a baseline, two weeks of churn, and a partial list
    # (a run that failed half-way) that must not count anyone as lost.
    page(archive, TIKTOK, "export:" + "a" * 64, "2024-04-01T04:00:00Z",
         followers("2024-04-01T04:00:00Z", "ann", "bob", "cy", "dee"))
    page(archive, TIKTOK, "export:" + "b" * 64, "2024-04-09T04:00:00Z",
         followers("2024-04-09T04:00:00Z", "ann", "bob", "eve", "fay"))  # cy, dee lost; eve, fay new
    page(archive, TIKTOK, "export:" + "c" * 64, "2024-04-16T04:00:00Z",
         followers("2024-04-16T04:00:00Z", "ann", "eve", "fay", "gus", "hal"))  # bob lost; gus, hal new
    page(archive, TIKTOK, "api", "2024-04-17T04:00:00Z",
         followers("2024-04-17T04:00:00Z", "ann", complete=False))

    # YouTube known from a Takeout only: no counts, so its line comes from complete lists.
    page(archive, YOUTUBE, "export:" + "d" * 64, "2024-04-02T00:00:00Z", Profile("UC1", "mychannel"))
    for day, members in (("2024-04-02", ["ann", "zed"]), ("2024-04-20", ["ann", "zed", "yul"])):
        page(archive, YOUTUBE, "export:" + day, f"{day}T05:00:00Z",
             Snapshot("followers", f"{day}T05:00:00Z", [Membership(fan(m, "youtube")) for m in members]))

    # Posts in January, March and April (February has none) with counts and comments.
    posts = [
        Post("7001", "2024-01-10T10:00:00Z", title="Harbour at dawn", like_count=50, share_count=2, view_count=900),
        Post("7002", "2024-03-03T10:00:00Z", title="Coffee <b>time</b> & more", like_count=5, view_count=300),
        Post("7003", "2024-03-20T10:00:00Z", title="Rain", like_count=0, view_count=50),
        Post("7004", "2024-04-05T10:00:00Z", title="Bridge", like_count=10, share_count=1, view_count=5000),
    ]
    page(archive, TIKTOK, "api", "2024-04-25T00:00:00Z", *posts)
    comments = []
    for number, (post, author) in enumerate([("7002", "ann"), ("7002", "ann"), ("7002", "eve"),
                                             ("7004", "ann"), ("7001", "bob"), ("7003", "eve")]):
        comments.append(Comment(f"c{number}", f"comment {number}", f"2024-04-{10 + number:02d}T00:00:00Z",
                                post_native_id=post, author=fan(author)))
    comments.append(Comment("own1", "thanks!", "2024-04-20T00:00:00Z", post_native_id="7002",
                            author=Person("tt1", "me"), by_owner=True))
    page(archive, TIKTOK, "api", "2024-04-25T00:00:00Z", *comments)
    page(archive, YOUTUBE, "api", "2024-04-25T00:00:00Z",
         Post("v1", "2024-04-11T00:00:00Z", title="Channel trailer", like_count=3, view_count=70),
         Comment("yc1", "nice", "2024-04-12T00:00:00Z", post_native_id="v1", author=fan("zed", "youtube")),
         Comment("yc2", "same ann here", "2024-04-13T00:00:00Z", post_native_id="v1", author=fan("ann", "youtube")))
    # ann on TikTok and ann on YouTube confirmed as one person: one row among the people.
    from archiver.views.audience import link

    with archive.writing():
        link(archive.db, "tiktok:ann", "youtube:ann", now="2024-04-26T00:00:00Z")
    return archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Archive:
    built = build_archive(tmp_path_factory.mktemp("archive"))
    yield built
    built.close()


@pytest.fixture(scope="module")
def report_file(archive, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("report") / "report.html"
    assert write_report(archive, target, now=NOW) == target
    return target


@pytest.fixture(scope="module")
def page_data(report_file) -> ChartData:
    return parse(report_file.read_text(encoding="utf-8"))


def sql(archive: Archive, query: str, *params) -> list[tuple]:
    return [tuple(r) for r in archive.db.execute(query, list(params)).fetchall()]


# -- the numbers --------------------------------------------------------------------------


def test_followers_over_time_are_the_archives_counts(archive, page_data):
    drawn = sorted((m["series"], m["x"], m["value"]) for m in page_data.marks["followers"])
    metrics = sql(archive, "SELECT account_id, observed_at, followers FROM account_metrics "
                           "WHERE followers IS NOT NULL")
    # YouTube has no counts: its points are the sizes of its complete follower lists.
    lists = sql(archive, "SELECT account_id, taken_at, member_count FROM snapshots "
                         "WHERE account_id = ? AND kind = 'followers' AND complete = 1", YOUTUBE)
    assert drawn == sorted(metrics + lists)
    assert [v for s, _, v in drawn if s == TIKTOK] == [100, 120, 115, 140]
    assert [v for s, _, v in drawn if s == YOUTUBE] == [2, 3]
    table = sorted((r["series"], r["x"], int(r["value"])) for r in page_data.table_rows["followers"])
    assert table == drawn


def test_new_and_lost_per_week_match_the_audience_events(archive, page_data):
    drawn = {(m["x"], m["series"]): m["value"] for m in page_data.marks["churn"]}
    expected: dict[tuple[str, str], int] = {}
    for week, event, count in sql(archive, "SELECT date(at, 'weekday 0', '-6 days'), event, count(*) "
                                           "FROM audience_events WHERE kind = 'followers' GROUP BY 1, 2"):
        expected[(week, event)] = count
    assert {k: v for k, v in drawn.items() if v} == expected
    # The archive's story: the week of Apr 8 gained eve and fay (TikTok) and lost cy and dee;
    # the week of Apr 15 gained gus and hal and lost bob; YouTube's yul came on Apr 20.
    # The partial list of Apr 17 lost nobody.
    assert drawn[("2024-04-08", "new")] == 2 and drawn[("2024-04-08", "lost")] == 2
    assert drawn[("2024-04-15", "new")] == 3 and drawn[("2024-04-15", "lost")] == 1
    table = {r["x"]: (int(r["new"]), int(r["lost"])) for r in page_data.table_rows["churn"]}
    assert table == {week: (drawn.get((week, "new"), 0), drawn.get((week, "lost"), 0))
                     for week, _ in drawn}


def test_posts_per_month_fill_the_empty_months(archive, page_data):
    drawn = [(m["x"], m["value"]) for m in page_data.marks["posts"]]
    counted = dict(sql(archive, "SELECT substr(created_at, 1, 7), count(*) FROM posts GROUP BY 1"))
    assert drawn == [("2024-01", 1), ("2024-02", 0), ("2024-03", 2), ("2024-04", 2)]
    assert {x: v for x, v in drawn if v} == counted
    assert sorted((r["x"], int(r["value"])) for r in page_data.table_rows["posts"]) == drawn


def test_most_engaged_posts_count_comments_by_others_likes_and_shares(archive, page_data):
    drawn = [(m["x"], m["value"]) for m in page_data.marks["top-posts"]]
    expected = sql(archive, """
        SELECT p.platform || ':' || p.post_id,
               (SELECT count(*) FROM comments c WHERE c.platform = p.platform AND c.post_id = p.post_id
                AND c.by_owner = 0) + coalesce(like_count, 0) + coalesce(share_count, 0) AS engagement
        FROM posts p ORDER BY engagement DESC, view_count DESC""")
    assert drawn == expected
    assert drawn[0] == ("tiktok:7001", 53)  # 50 likes, 2 shares, bob's comment
    rows = {r["x"]: r for r in page_data.table_rows["top-posts"]}
    # 7002: three comments by ann and eve; the owner's "thanks!" does not count.
    assert rows["tiktok:7002"]["comments"] == "3" and rows["tiktok:7002"]["likes"] == "5"


def test_most_engaged_people_are_the_audience_top_fans(archive, page_data):
    from archiver.views.audience import top_fans

    fans = top_fans(archive.db, limit=15, now=NOW)
    drawn = [(m["x"], m["value"]) for m in page_data.marks["top-people"]]
    assert drawn == [(f["person_key"], f["score"]) for f in fans]
    assert len(drawn) == 4  # ann (TikTok and YouTube), eve, bob on TikTok; zed on YouTube
    comments = {r["x"]: int(r["comments"]) for r in page_data.table_rows["top-people"]}
    by_author = dict(sql(archive, "SELECT platform || ':' || author_id, count(*) FROM comments "
                                  "WHERE by_owner = 0 GROUP BY 1"))
    for fan_row in fans:
        assert comments[fan_row["person_key"]] == sum(by_author.get(p, 0) for p in fan_row["platforms"])
    # ann: two comments on 7002 and one on 7004 as tiktok:ann, one as youtube:ann.
    assert comments["tiktok:ann"] == 4 and drawn[0][0] == "tiktok:ann"
    identities = {r["x"]: r for r in page_data.table_rows["top-people"]}
    assert "youtube:ann" not in identities


def test_the_report_loads_nothing_from_anywhere(report_file, page_data):
    html = report_file.read_text(encoding="utf-8")
    # Every src is an embedded picture; the only http(s) URLs are plain links to profiles
    # and posts (<a href>), which load nothing when the page opens.
    for source in page_data.sources:
        tag, _, value = source.partition(" ")
        if tag == "a":
            continue
        assert value.split("=", 1)[1].startswith("data:"), source
    assert not re.search(r"<link\b|<iframe\b|<object\b|<embed\b|@import|url\(", html, re.I)
    assert not re.search(r"<script[^>]+src=", html, re.I)
    # The people's avatars are remote CDN links: not in the page as pictures.
    assert "cdn.tiktok.example" not in html
    # Our own avatar is stored: embedded.
    assert 'src="data:image/png;base64,' in html
    # Text from the platform is escaped, not markup.
    assert "Coffee &lt;b&gt;time&lt;/b&gt; &amp; more" in html and "<b>time</b>" not in html


def test_an_empty_archive_says_what_to_do(tmp_path):
    out = io.StringIO()
    assert write_report(Archive(tmp_path / "empty"), out, now=NOW) is None
    data = parse(out.getvalue())
    assert data.empty >= {"followers", "churn", "posts", "top-posts", "top-people"}
    assert not data.marks
    assert "import an export or run `archiver export`" in out.getvalue()


def test_one_follower_snapshot_says_churn_needs_a_second(tmp_path):
    archive = Archive(tmp_path / "one")
    # An export's followers without dates: a baseline, which makes no "new" events.
    page(archive, "x:main", "export:" + "ab" * 32, "2026-03-06T13:05:11Z", followers("2026-03-06T13:05:11Z", "ann", "bo"))
    out = io.StringIO()
    write_report(archive, out, now=NOW)
    assert "churn" in parse(out.getvalue()).empty
    assert "One follower snapshot so far" in out.getvalue() and "No follower snapshots yet" not in out.getvalue()


def test_archiver_report_command_writes_the_file(archive, tmp_path):
    script = Path(sys.executable).with_name("archiver")
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from archiver.cli.main import main; main()"]
    env = {**os.environ, "ARCHIVER_SECRETS": "memory"}
    env.pop("ARCHIVER_CONFIG", None)
    done = subprocess.run([*command, "report", "--archive", str(archive.folder)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    default = archive.folder / "report.html"
    assert done.stdout.strip() == str(default)
    assert parse(default.read_text(encoding="utf-8")).marks["posts"]

    chosen = tmp_path / "sub" / "mine.html"
    done = subprocess.run([*command, "report", "--archive", str(archive.folder), "--out", str(chosen)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(chosen) and chosen.exists()

    missing = subprocess.run([*command, "report", "--archive", str(tmp_path / "nothing-here")],
                             env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "no archive at" in missing.stderr


# -- what a person sees ---------------------------------------------------------------------


def chromium_or_skip() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found:
        return found
    if os.environ.get("ARCHIVER_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"chromium not found at {CHROMIUM} and ARCHIVER_REQUIRE_CHROMIUM=1")
    pytest.skip("chromium is not installed")


WINDOW = (1400, 3200)


def chromium(binary: str, folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={folder / 'profile'}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *args],
        check=True, timeout=120, capture_output=True, text=not any(a.startswith("--screenshot") for a in args),
    )


# Where each chart sits once laid out: written into the DOM as data-box by a script the
# test adds to a copy of the report (the report itself runs no script at all).
MEASURE_CHARTS = """<script>
for (const svg of document.querySelectorAll('svg.chart')) {
  const r = svg.getBoundingClientRect();
  svg.dataset.box = [r.left + scrollX, r.top + scrollY, r.width, r.height].map(Math.round).join(',');
}
</script>"""


def test_chromium_shows_every_chart_drawn(report_file, page_data, tmp_path):
    binary = chromium_or_skip()
    url = report_file.as_uri()
    html = report_file.read_text(encoding="utf-8")
    assert "<script" not in html
    measured = tmp_path / "measured.html"
    measured.write_text(html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
                        .replace("</body>", MEASURE_CHARTS + "</body>"), encoding="utf-8")
    laid_out = parse(chromium(binary, tmp_path, "--dump-dom", measured.as_uri()).stdout)
    assert set(laid_out.boxes) == {"followers", "churn", "posts", "top-posts", "top-people"}
    # Chromium saw the same numbers as the file holds.
    assert laid_out.marks == page_data.marks

    shot = tmp_path / "report.png"
    chromium(binary, tmp_path, f"--screenshot={shot}", url)
    if os.environ.get("ARCHIVER_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["ARCHIVER_KEEP_SCREENSHOT"])
    image = decode_png(shot.read_bytes())
    for chart, box in laid_out.boxes.items():
        assert box[1] + box[3] <= WINDOW[1], f"{chart} is below the screenshot: {box}"

    def drawn(chart: str, colour: str) -> int:
        return pixels_of(image, colour, laid_out.boxes[chart])

    # Two lines with their points; each line's colour is in the followers chart only.
    assert drawn("followers", SERIES_COLOURS[0]) > 300
    assert drawn("followers", SERIES_COLOURS[1]) > 300
    assert drawn("churn", SERIES_COLOURS[0]) == 0
    # Bars: new (green) and lost (red) in the churn chart, and nowhere else.
    assert drawn("churn", NEW_COLOUR) > 200 and drawn("churn", LOST_COLOUR) > 100
    assert drawn("posts", NEW_COLOUR) == 0
    assert drawn("posts", POSTS_COLOUR) > 500
    assert drawn("top-posts", TOP_POSTS_COLOUR) > 1000
    assert drawn("top-people", TOP_PEOPLE_COLOUR) > 1000


def test_chromium_shows_empty_states_without_charts(tmp_path):
    binary = chromium_or_skip()
    target = tmp_path / "empty.html"
    write_report(Archive(tmp_path / "empty"), target, now=NOW)
    laid_out = parse(chromium(binary, tmp_path, "--dump-dom", target.as_uri()).stdout)
    assert not laid_out.boxes
    assert laid_out.empty >= {"followers", "churn", "posts", "top-posts", "top-people"}
