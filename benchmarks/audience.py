"""Benchmark: the audience reports on a big account, next to raw SQLite.

    python benchmarks/audience.py [--scale 1.0] [--dir DIR] [--keep]

The archive: 1,000,000 followers over 30 daily snapshots with 1 % daily churn (10,000
leave and 10,000 arrive every day), and 500,000 comments from 100,000 commenters spread
over a year. ``--scale 0.01`` makes everything 100 times smaller for a quick run.

The 30 days of history are built directly in SQL (people, follows intervals, audience
events and snapshot rows exactly as ``ArchiveWriter.write_snapshot`` leaves them for such
a history): pushing 30 million members through the writer would only time the writer 30
times. Then, each in its own subprocess (so each has its own peak memory):

1. ``churn``: ``archiver.views.audience.churn`` for 30 days, and the raw floor: a plain
   ``sqlite3`` GROUP BY over ``audience_events`` (day, account, event) on the same file.
2. ``top``: ``archiver.views.audience.top_fans`` (limit 50), and a raw GROUP BY count over
   the comments for information.
3. ``export``: ``archiver.views.audience.export_people`` of everyone as CSV to a file.
4. ``ingest``: one real ``ArchiveWriter.write_snapshot`` of day 31 (1M members, 1 %
   churn) into that archive, in one transaction as the sync runner does -> members/s;
   and the raw floor in a fresh archive file with the same schema: ``sqlite3``
   ``executemany`` of the same people rows into ``people`` and follow rows into ``follows``.

Targets (from the issue): ingest >= 0.5 x the floor's rows/s; churn and top fans under
1 s each; the export under 300 MB peak memory. It prints one table and always exits 0.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ACCOUNT = "tiktok:bench"
PLATFORM = "tiktok"
DAYS = 30
DAY0 = 19_700  # days since 1970-01-01 of day 0 (2023-12-09)
INGEST_TARGET = 0.5
QUERY_TARGET_S = 1.0
MEMORY_TARGET_MB = 300
FLOOR_PRAGMAS = ("PRAGMA main.cache_size=-32768", "PRAGMA temp.cache_size=-16384")
BATCH = 50_000


def sizes(scale: float) -> dict:
    followers = int(1_000_000 * scale)
    return {
        "followers": followers,
        "daily": max(1, followers // 100),
        "comments": int(500_000 * scale),
        "commenters": max(1, int(100_000 * scale)),
    }


def day(n: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((DAY0 + n) * 86400))


def person_id(index: int) -> str:
    # An odd multiplier mod 2**32 is a bijection: unique ids in a scrambled order.
    return str(1_000_000_000 + (index * 2654435761) % 2**32)


def peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# -- building the history in SQL ------------------------------------------------------------------


def part_build(folder: Path, scale: float) -> dict:
    """Person i follows from day join(i) to day leave(i): the first ``followers`` people
    follow at day 0 (the undated baseline); ``daily`` new ones arrive each day 1..29 and
    the ``daily`` oldest leave, so day d's list is people [d*daily, followers + d*daily)."""
    from archiver.archive import Archive

    n = sizes(scale)
    archive = Archive(folder)
    db = archive.db
    conn = db.conn
    for pragma in FLOOR_PRAGMAS:
        conn.execute(pragma)
    started = time.perf_counter()
    total_people = n["followers"] + (DAYS - 1) * n["daily"]
    days = ",".join(f"('{day(d)}')" for d in range(DAYS + 2))
    conn.execute("CREATE TEMP TABLE day_of (d INTEGER PRIMARY KEY, at TEXT)")
    conn.execute(f"INSERT INTO temp.day_of (at) VALUES {days}")
    conn.execute("UPDATE temp.day_of SET d = d - 1")  # rowids 1.. -> days 0..
    conn.commit()
    conn.execute("BEGIN")
    conn.execute(
        "CREATE TEMP TABLE seq AS WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < :n - 1) "
        "SELECT i, CAST(1000000000 + (i * 2654435761) % 4294967296 AS TEXT) AS pid, "
        "CASE WHEN i < :followers THEN 0 ELSE (i - :followers) / :daily + 1 END AS joined, "
        "CASE WHEN i / :daily + 1 <= :last THEN i / :daily + 1 END AS left FROM s",
        {"n": total_people, "followers": n["followers"], "daily": n["daily"], "last": DAYS - 1},
    )
    conn.execute(
        "INSERT INTO people (platform, person_id, handle, display_name, url, avatar_url, sources, first_seen_at, "
        "last_seen_at, raw) SELECT :platform, pid, 'fan_' || pid, 'Fan ' || i, 'https://www.tiktok.com/@fan_' || pid, "
        "NULL, '[\"api\"]', j.at, coalesce(l.at, :last_day), '{}' FROM temp.seq "
        "JOIN temp.day_of j ON j.d = joined LEFT JOIN temp.day_of l ON l.d = left - 1 ORDER BY pid",
        {"platform": PLATFORM, "last_day": day(DAYS - 1)},
    )
    conn.execute(
        "INSERT INTO follows (account_id, kind, person_id, started_at, last_seen_at, ended_at) "
        "SELECT :account, 'followers', pid, j.at, coalesce(ls.at, :last_day), l.at FROM temp.seq "
        "JOIN temp.day_of j ON j.d = joined LEFT JOIN temp.day_of l ON l.d = left "
        "LEFT JOIN temp.day_of ls ON ls.d = left - 1 ORDER BY pid",
        {"account": ACCOUNT, "last_day": day(DAYS - 1)},
    )
    for d in range(DAYS):
        members = n["followers"]
        new = n["daily"] if d else 0
        conn.execute(
            "INSERT INTO snapshots (snapshot_id, account_id, kind, taken_at, source, member_count, new_count, "
            "lost_count, complete) VALUES (?,?,?,?,?,?,?,?,1)",
            [d + 1, ACCOUNT, "followers", day(d), "api", members, new, new],
        )
    # Events in time order, as the writer appends them.
    conn.execute(
        "INSERT INTO audience_events (account_id, kind, person_id, event, at, snapshot_id) "
        "SELECT :account, 'followers', pid, event, at, sid FROM ("
        " SELECT pid, 'new' AS event, j.at AS at, joined + 1 AS sid FROM temp.seq JOIN temp.day_of j ON j.d = joined "
        " WHERE joined > 0 UNION ALL "
        " SELECT pid, 'lost', l.at, left + 1 FROM temp.seq JOIN temp.day_of l ON l.d = left WHERE left IS NOT NULL"
        ") ORDER BY at, pid",
        {"account": ACCOUNT},
    )
    # Comments: commenters are every (followers / commenters)-th person; comments spread
    # over the year before the last day, on 1,000 posts.
    conn.execute(
        "INSERT INTO comments (platform, comment_id, account_id, post_id, parent_id, author_id, by_owner, text, "
        "created_at, url, sources, first_seen_at, last_seen_at, raw) "
        "WITH RECURSIVE c(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM c WHERE k < :comments - 1) "
        "SELECT :platform, 'c' || k, :account, 'post' || (k % 1000), NULL, "
        "CAST(1000000000 + (((k * 7919) % :commenters) * :stride * 2654435761) % 4294967296 AS TEXT), 0, "
        "'nice video ' || k, strftime('%Y-%m-%dT%H:%M:%SZ', :end, '-' || ((k * 104729) % 31536000) || ' seconds'), "
        "NULL, '[\"api\"]', :end, :end, '{}' FROM c",
        {"comments": n["comments"], "commenters": n["commenters"], "stride": max(1, n["followers"] // n["commenters"]),
         "platform": PLATFORM, "account": ACCOUNT, "end": day(DAYS - 1)},
    )
    conn.execute("DROP TABLE temp.seq")
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    elapsed = time.perf_counter() - started
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("people", "follows", "audience_events", "comments")}
    archive.close()
    return {"seconds": elapsed, "counts": counts, "peak_mb": peak_mb()}


# -- the timed parts ----------------------------------------------------------------------------------


def _best(func, tries: int = 3):
    best, result = float("inf"), None
    for _ in range(tries):
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return best, result


def part_churn(folder: Path, scale: float) -> dict:
    from archiver.views import audience
    from archiver.archive import Archive

    n = sizes(scale)
    archive = Archive(folder)
    db = archive.db
    now = day(DAYS - 1)
    seconds, rows = _best(lambda: audience.churn(db, days=DAYS, now=now))
    lost_s, lost = _best(lambda: audience.lost_followers(db, days=1, now=now), tries=1)
    raw = sqlite3.connect(folder / "archive.db")
    floor_s, floor_rows = _best(lambda: raw.execute(
        "SELECT substr(at, 1, 10), account_id, event, count(*) FROM audience_events "
        "WHERE kind = 'followers' AND at >= ? GROUP BY 1, 2, 3", [day(-1)]).fetchall())
    raw.close()
    archive.close()
    checks = {
        "days": (len(rows), DAYS - 1),
        "new per day": (sorted({r["new"] for r in rows}), [n["daily"]]),
        "lost per day": (sorted({r["lost"] for r in rows}), [n["daily"]]),
        "lost in the last day (two daily lists), by name": (len(lost), 2 * n["daily"]),
    }
    return {"seconds": seconds, "floor_seconds": floor_s, "floor_rows": len(floor_rows), "checks": checks,
            "lost_seconds": lost_s, "peak_mb": peak_mb()}


def part_top(folder: Path, scale: float) -> dict:
    from archiver.views import audience
    from archiver.archive import Archive

    n = sizes(scale)
    archive = Archive(folder)
    db = archive.db
    now = day(DAYS - 1)
    seconds, fans = _best(lambda: audience.top_fans(db, limit=50, now=now))
    days_s, _ = _best(lambda: audience.top_fans(db, days=30, limit=50, now=now))
    raw = sqlite3.connect(folder / "archive.db")
    floor_s, floor_rows = _best(lambda: raw.execute(
        "SELECT platform, author_id, count(*) FROM comments WHERE by_owner = 0 GROUP BY platform, author_id").fetchall())
    raw.close()
    archive.close()
    checks = {
        "fans": (len(fans), min(50, n["commenters"])),
        "commenters": (len(floor_rows), n["commenters"]),
        "comments of the top fan": (fans[0]["comment_count"] if fans else 0,
                                    -(-n["comments"] // n["commenters"])),
    }
    return {"seconds": seconds, "days_seconds": days_s, "floor_seconds": floor_s, "checks": checks,
            "peak_mb": peak_mb()}


def part_export(folder: Path, scale: float) -> dict:
    from archiver.views import audience
    from archiver.archive import Archive

    archive = Archive(folder)
    db = archive.db
    out_path = folder / "people.csv"
    started = time.perf_counter()
    with open(out_path, "w", encoding="utf-8", newline="") as out:
        count = audience.export_people(db, out, segment="all", fmt="csv", now=day(DAYS - 1))
    seconds = time.perf_counter() - started
    people = db.execute("SELECT count(*) FROM people").fetchone()[0]
    archive.close()
    size = out_path.stat().st_size
    out_path.unlink()
    return {"seconds": seconds, "rows": count, "bytes": size, "checks": {"rows": (count, people)},
            "peak_mb": peak_mb()}


def _members(scale: float):
    """Day 31's list: yesterday's minus the ``daily`` oldest, plus ``daily`` new people."""
    from archiver.records import Membership, Person

    n = sizes(scale)
    first = DAYS * n["daily"]
    for index in range(first, first + n["followers"]):
        pid = person_id(index)
        yield Membership(Person(native_id=pid, handle=f"fan_{pid}", display_name=f"Fan {index}",
                                url=f"https://www.tiktok.com/@fan_{pid}"))


def part_ingest(folder: Path, scale: float) -> dict:
    from archiver.archive import Archive
    from archiver.archive.writer import ArchiveWriter
    from archiver.records import Snapshot

    n = sizes(scale)
    archive = Archive(folder)
    db = archive.db
    taken = day(DAYS)
    writer = ArchiveWriter(db, platform=PLATFORM, account_id=ACCOUNT, source="api", now=taken)
    started = time.perf_counter()
    with archive.writing():
        outcome = writer.write_snapshot(Snapshot("followers", taken, _members(scale)))
    seconds = time.perf_counter() - started
    archive.close()
    checks = {"members": (outcome["members"], n["followers"]), "new": (outcome["new"], n["daily"]),
              "lost": (outcome["lost"], n["daily"])}
    return {"seconds": seconds, "members": outcome["members"], "timings": writer.snapshot_timings,
            "checks": checks, "peak_mb": peak_mb()}


def part_floor(folder: Path, scale: float) -> dict:
    """The raw floor: the same member rows, plain executemany into people and follows of a
    fresh archive file with the same schema (indexes and full-text triggers)."""
    from archiver.archive import Archive

    archive = Archive(folder)
    _ = archive.db  # creates the file and applies the migrations
    archive.close()
    conn = sqlite3.connect(folder / "archive.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for pragma in FLOOR_PRAGMAS:
        conn.execute(pragma)
    people_sql = ("INSERT INTO people (platform, person_id, handle, display_name, url, avatar_url, sources, "
                  "first_seen_at, last_seen_at, raw) VALUES (?,?,?,?,?,?,?,?,?,?)")
    follows_sql = ("INSERT INTO follows (account_id, kind, person_id, started_at, last_seen_at, ended_at) "
                   "VALUES (?,?,?,?,?,?)")
    taken = day(DAYS)
    started = time.perf_counter()
    conn.execute("BEGIN")
    people_rows: list[tuple] = []
    follow_rows: list[tuple] = []
    rows = 0
    for membership in _members(scale):
        p = membership.person
        people_rows.append((PLATFORM, p.native_id, p.handle, p.display_name, p.url, None, '["api"]', taken, taken, "{}"))
        follow_rows.append((ACCOUNT, "followers", p.native_id, taken, taken, None))
        if len(people_rows) >= BATCH:
            conn.executemany(people_sql, people_rows)
            conn.executemany(follows_sql, follow_rows)
            rows += len(people_rows)
            people_rows.clear()
            follow_rows.clear()
    conn.executemany(people_sql, people_rows)
    conn.executemany(follows_sql, follow_rows)
    rows += len(people_rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds, "rows": rows, "peak_mb": peak_mb()}


PARTS = {"build": part_build, "churn": part_churn, "top": part_top, "export": part_export,
         "ingest": part_ingest, "floor": part_floor}


# -- driver ---------------------------------------------------------------------------------------------


def run_part(part: str, folder: Path, scale: float) -> dict:
    print(f"  running {part} ...", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, __file__, "--part", part, "--dir", str(folder), "--scale", str(scale)],
                          check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M followers, 500k comments (default)")
    parser.add_argument("--dir", help="where to put the databases (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.part:
        print(json.dumps(PARTS[args.part](Path(args.dir), args.scale)))
        return 0

    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="archiver-audience-bench-"))
    archive_dir, floor_dir = base / "archive", base / "floor"
    for folder in (archive_dir, floor_dir):
        shutil.rmtree(folder, ignore_errors=True)
    try:
        build = run_part("build", archive_dir, args.scale)
        churn = run_part("churn", archive_dir, args.scale)
        top = run_part("top", archive_dir, args.scale)
        export = run_part("export", archive_dir, args.scale)
        ingest = run_part("ingest", archive_dir, args.scale)
        floor = run_part("floor", floor_dir, args.scale)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    n = sizes(args.scale)
    ours_rate = ingest["members"] / ingest["seconds"]
    floor_rate = floor["rows"] / floor["seconds"]
    rows = [
        ("ingest one snapshot (rows/s)", f"{ours_rate:,.0f}", f"{floor_rate:,.0f}", f"{ours_rate / floor_rate:.2f}",
         f">= {INGEST_TARGET} x floor", verdict(ours_rate / floor_rate >= INGEST_TARGET), f"{ingest['peak_mb']:.0f}"),
        ("churn, 30 days (s)", f"{churn['seconds']:.3f}", f"{churn['floor_seconds']:.3f}",
         f"{churn['seconds'] / churn['floor_seconds']:.2f}", f"< {QUERY_TARGET_S} s",
         verdict(churn["seconds"] < QUERY_TARGET_S), f"{churn['peak_mb']:.0f}"),
        ("top fans (s)", f"{top['seconds']:.3f}", f"{top['floor_seconds']:.3f}",
         f"{top['seconds'] / top['floor_seconds']:.2f}", f"< {QUERY_TARGET_S} s",
         verdict(top["seconds"] < QUERY_TARGET_S), f"{top['peak_mb']:.0f}"),
        ("CSV export, everyone (s)", f"{export['seconds']:.1f}", "", "", f"< {MEMORY_TARGET_MB} MB",
         verdict(export["peak_mb"] < MEMORY_TARGET_MB), f"{export['peak_mb']:.0f}"),
    ]
    header = ("measure", "ours", "floor", "ratio", "target", "", "peak MB")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    print(f"\n{n['followers']:,} followers x {DAYS} daily snapshots, {n['daily']:,} in and out a day; "
          f"{n['comments']:,} comments from {n['commenters']:,} commenters; "
          f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}")
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("\ndetails:")
    print(f"  build (SQL, not timed against anything): {build['seconds']:.1f} s; {build['counts']}")
    print(f"  ingest: {ingest['seconds']:.2f} s; writer phases "
          + ", ".join(f"{k} {v:.2f} s" for k, v in ingest["timings"].items())
          + f"; floor {floor['seconds']:.2f} s for {floor['rows']:,} people + follows rows")
    print(f"  churn floor: raw GROUP BY (day, account, event) over audience_events, {churn['floor_rows']} groups; "
          f"lost followers of one day by name {churn['lost_seconds']:.3f} s")
    print(f"  top fans with --days 30: {top['days_seconds']:.3f} s; floor: raw GROUP BY count per author")
    print(f"  export: {export['rows']:,} rows, {export['bytes'] / 1e6:.0f} MB of CSV, "
          f"{export['rows'] / export['seconds']:,.0f} rows/s")
    wrong = [(part, name, got, expected)
             for part, result in (("churn", churn), ("top", top), ("export", export), ("ingest", ingest))
             for name, (got, expected) in result["checks"].items() if got != expected]
    for part, name, got, expected in wrong:
        print(f"  FAIL: {part}: {name} is {got}, expected {expected}: its timings do not count")
    failed = [r[0] for r in rows if r[5] == "FAIL"] + [f"{p} {name}" for p, name, _, _ in wrong]
    print("\nFAIL: " + "; ".join(failed) if failed else "\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
