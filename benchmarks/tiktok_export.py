"""Benchmark: `archiver import tiktok FILE` of a big user data JSON, next to one parse of it.

    python benchmarks/tiktok_export.py [--posts 2000] [--comments 20000] [--people 200000]
                                       [--big-value 4000000] [--dir DIR]

The file is a TikTok "Download your data" JSON in the older layout (share links name the
videos, so nothing is downloaded): ``--posts`` posts, ``--comments`` comments, a follower
list of ``--people`` and a following list of a tenth of that, and one section the
importer does not read holding a string of ``--big-value`` non-ASCII characters ("é":
every byte of such a value is checked as UTF-8 on each pass, which makes each parse slow).

Then, each in its own process:

1. ``floor``: one ijson parse of the file, every event, nothing checked or built;
2. ``read``: the importer's reading alone: every page of ``export_pages`` and every member
   of its follower lists, nothing written (what the number of passes over the file costs);
3. ``import``: ``archiver import tiktok FILE`` into a fresh archive folder (reading and
   writing the archive).

It prints the times and the ratios read / floor and import / floor (how many parses'
worth each costs: the importer used to read the file once per section and layout). The counts the import wrote are checked: a wrong count is a FAIL,
whatever the timings. It always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_TIME = 1_714_587_751  # 2024-05-01T18:22:31Z

FLOOR_CHILD = """
import sys, ijson
with open(sys.argv[1], "rb") as f:
    for _ in ijson.parse(f):
        pass
"""

READ_CHILD = """
import sys
from pathlib import Path
from archiver.sync.imports import open_export
from archiver_connectors.tiktok.export import export_pages

class Context:
    def report(self, item, error):
        pass

with open_export(Path(sys.argv[1])) as source:
    for page in export_pages(source, Context()):
        for record in page.records:
            for _ in getattr(record, "members", ()):
                pass
"""


def _date(i: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(BASE_TIME - 3600 * i))


def write_export(path: Path, posts: int, comments: int, people: int, big_value: int) -> None:
    """Written piece by piece: never held whole."""
    with path.open("w", encoding="utf-8") as f:
        def people_list(count: int, tag: str) -> None:
            for i in range(count):
                f.write(("," if i else "") + json.dumps({"Date": _date(i % 5000), "UserName": f"{tag}_{i}"}))

        f.write('{"Activity": {"Follower List": {"FansList": [')
        people_list(people, "fan")
        f.write(']}, "Following List": {"Following": [')
        people_list(max(1, people // 10), "followed")
        f.write(']}}, "App Settings": {"Notes": ' + json.dumps("é" * big_value, ensure_ascii=False) + "},")
        f.write('"Comment": {"Comments": {"CommentsList": [')
        for i in range(comments):
            f.write(("," if i else "") + json.dumps({"Date": _date(i), "Comment": f"nice video number {i}"}))
        f.write(']}}, "Profile": {"Profile Information": {"ProfileMap": ')
        f.write(json.dumps({"userName": "bench_owner", "bioDescription": "N/A", "likesReceived": "1,234"}))
        f.write('}}, "Video": {"Videos": {"VideoList": [')
        for i in range(posts):
            f.write(("," if i else "") + json.dumps({
                "Date": _date(i), "Likes": str(i),
                "Link": f"https://www.tiktokv.com/share/video/{7_000_000_000_000_000_000 + i}/"}))
        f.write("]}}}")


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        print(process.stdout + process.stderr)
        raise SystemExit(f"FAIL: {command[:3]} exited {process.returncode}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--comments", type=int, default=20000)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--big-value", type=int, default=4_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        folder = Path(folder)
        export = folder / "user_data_tiktok.json"
        write_export(export, args.posts, args.comments, args.people, args.big_value)
        size_mb = export.stat().st_size / 1e6
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
        env.update(ARCHIVER_SECRETS="env", ARCHIVER_STATE_DIR=str(folder / "state"),
                   PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
        script = Path(sys.executable).parent / "archiver"
        archiver = [str(script)] if script.exists() else [sys.executable, "-m", "archiver.cli.main"]

        floor = timed([sys.executable, "-c", FLOOR_CHILD, str(export)], env)
        read = timed([sys.executable, "-c", READ_CHILD, str(export)], env)
        took = timed([*archiver, "import", "tiktok", str(export), "--archive", str(folder / "archive")], env)

        db = sqlite3.connect(folder / "archive" / "archive.db")
        counts = {
            "posts": db.execute("SELECT count(*) FROM posts").fetchone()[0],
            "comments": db.execute("SELECT count(*) FROM comments").fetchone()[0],
        }
        db.close()
        wanted = {"posts": args.posts, "comments": args.comments}
        print(f"export: {size_mb:.1f} MB ({args.posts} posts, {args.comments} comments, "
              f"{args.people} followers, a {args.big_value:,}-character non-ASCII value)")
        print(f"floor  (one ijson parse):          {floor:7.2f} s")
        print(f"read   (export_pages, no writing): {read:7.2f} s   ratio read / floor:   {read / floor:5.1f}")
        print(f"import (archiver import tiktok):   {took:7.2f} s   ratio import / floor: {took / floor:5.1f}")
        for key, count in counts.items():
            print(f"{key}: {count} stored, {wanted[key]} in the export: {'ok' if count == wanted[key] else 'FAIL'}")


if __name__ == "__main__":
    main()
