"""Benchmark: what the checked JSON reader (archiver.sync.imports.JsonReader) costs.

    python benchmarks/json_reader.py [--people 1000000] [--dir DIR]

A TikTok-shaped user data file with a follower list of ``--people`` entries (strings
with escaped quotes and brackets in them, so the string scanning is exercised) is read
item by item, best of 3, two ways:

1. ``floor``: ijson.items over the plain file, nothing checked;
2. ``ours``: ijson.items over ``ExportSource.open_json`` (open_export of the same file):
   every byte goes through JsonReader (nesting depth, NUL bytes, UTF-8) first;
3. for information, ``iter_json``: what the importers call, which also turns ijson's
   Decimals into floats item by item (archiver.sync.imports.plain_numbers).

Then a hostile file, 100,000 nested "[" (200 KB), is read by ``ours`` in a child process:
its time to refuse and the child's peak memory (ru_maxrss; before the reader such a file
took ~24 GB).

Prints items/s of each, the ratio ours/floor (target ≥ 0.6) and the hostile numbers
(target: refused, peak < 150 MB). It checks the item count; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATIO_TARGET = 0.6
HOSTILE_MEMORY_TARGET_MB = 150
PREFIX = "Activity.Follower List.FansList.item"

HOSTILE_CHILD = """
import resource, sys, time
from archiver.sync.imports import ExportFileError, open_export
start = time.perf_counter()
try:
    with open_export(sys.argv[1]) as source:
        for _ in source.iter_json(source.names()[0], "item"):
            pass
    outcome = "READ (not refused)"
except ExportFileError as error:
    outcome = "refused: " + str(error).split(": ", 1)[1][:70]
print(outcome)
print(time.perf_counter() - start)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def write_followers(path: Path, people: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"Profile": {"Profile Info": {"ProfileMap": {"userName": "me"}}}, '
                  '"Activity": {"Follower List": {"FansList": [')
        for number in range(people):
            if number:
                out.write(", ")
            out.write(json.dumps({"Date": "2023-01-01 10:00:00", "UserName": f"fan_{number}",
                                  "Bio": 'says "hi" [and] {more} \\ ok'}))
        out.write("]}}}")


def best_of(runs: int, read) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(runs):
        start = time.perf_counter()
        count = read()
        best = min(best, time.perf_counter() - start)
    return best, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()

    import ijson

    from archiver.sync.imports import open_export

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "user_data_tiktok.json"
        write_followers(path, args.people)
        size_mb = path.stat().st_size / 2**20

        def floor() -> int:
            with open(path, "rb") as stream:
                return sum(1 for _ in ijson.items(stream, PREFIX))

        def ours() -> int:
            with open_export(path) as source, source.open_json(path.name) as reader:
                return sum(1 for _ in ijson.items(reader, PREFIX))

        def iter_json() -> int:
            with open_export(path) as source:
                return sum(1 for _ in source.iter_json(path.name, PREFIX))

        floor_s, floor_n = best_of(3, floor)
        ours_s, ours_n = best_of(3, ours)
        items_s, items_n = best_of(3, iter_json)
        ratio = floor_s / ours_s
        print(f"file: {size_mb:.0f} MB, {args.people} followers")
        print(f"floor (ijson, unchecked):  {floor_n / floor_s:12,.0f} items/s  ({floor_s:.2f} s)")
        print(f"ours  (ijson, JsonReader): {ours_n / ours_s:12,.0f} items/s  ({ours_s:.2f} s)")
        print(f"iter_json (+ plain floats): {items_n / items_s:11,.0f} items/s  ({items_s:.2f} s)")
        print(f"ratio ours/floor: {ratio:.2f} (target >= {RATIO_TARGET}) {'ok' if ratio >= RATIO_TARGET else 'FAIL'}")
        if {ours_n, floor_n, items_n} != {args.people}:
            print(f"FAIL: read {ours_n} / {floor_n} / {items_n} items, expected {args.people}")

        hostile = Path(folder) / "hostile.json"
        hostile.write_bytes(b"[" * 100_000 + b"]" * 100_000)
        child = subprocess.run([sys.executable, "-c", HOSTILE_CHILD, str(hostile)], capture_output=True,
                               text=True, timeout=300)
        lines = child.stdout.split("\n")
        if child.returncode != 0 or len(lines) < 3:
            print(f"hostile: FAIL (the child ended with {child.returncode}: {child.stderr[-300:]})")
            return
        outcome, seconds, peak_mb = lines[0], float(lines[1]), float(lines[2])
        good = outcome.startswith("refused") and peak_mb < HOSTILE_MEMORY_TARGET_MB
        print(f"hostile (100,000 nested, 200 KB): {outcome}; {seconds * 1000:.1f} ms; "
              f"peak {peak_mb:.0f} MB (target < {HOSTILE_MEMORY_TARGET_MB}) {'ok' if good else 'FAIL'}")


if __name__ == "__main__":
    main()
