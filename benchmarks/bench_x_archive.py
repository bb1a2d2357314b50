"""Benchmark: `archiver import x` of an archive whose tweets files are big, with each
process's peak memory printed against the size of those files.

    python benchmarks/bench_x_archive.py                # 5 MB of tweets: about a minute
    python benchmarks/bench_x_archive.py --mb 300       # several hundred MB, split in parts as X does
    python benchmarks/bench_x_archive.py --mb 300 --zip --part-mb 100 --dir /some/disk --keep

The archive is written by the generator (archiver_connectors.x.sim.export, ``big_world``:
posts from a generator function, so the writer holds none of them), unzipped by default
(``--zip``: zipped), tweets split into parts of ``--part-mb`` (X splits at ~100 MB), every
50th post a long post with its note in note-tweet.js, links, mentions and replies; no media.

Then, each in its own process, with its peak resident memory (VmHWM at exit):

1. ``floor``: one plain ijson parse of the tweets files (the wrapper skipped), every event,
   nothing built: what reading the files costs at the least;
2. ``read``: the importer's pages (``export_pages``) with nothing written;
3. ``import``: ``archiver import x ARCHIVE`` into a fresh archive folder.

Target (issue 15, point 2): the import's peak memory bounded whatever the size: under
150 MB (as for the other exports' imports), and not growing with the file (run two sizes
and compare). What the import wrote is checked (posts, long posts whole); a wrong count is
a FAIL, whatever the timings. It always exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMORY_TARGET_MB = 150
BYTES_PER_POST = 1300          # a big_world post in tweets.js, pretty-printed (the generator's estimate)

# Each child writes its peak resident memory (VmHWM, KiB) to $BENCH_PEAK at exit. Not
# ru_maxrss: Linux carries a parent's peak over fork and exec into the child's.
_PEAK = """
import atexit, os
def _peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_PEAK"], "w") as out:
        out.write(kib)
atexit.register(_peak)
"""

FLOOR_CHILD = _PEAK + """
import sys, ijson
for name in sys.argv[1:]:
    with open(name, "rb") as f:
        head = f.read(512)
        f.seek(head.index(b"=") + 1)
        for _ in ijson.parse(f):
            pass
"""

READ_CHILD = _PEAK + """
import sys
from pathlib import Path
from archiver.sync.imports import open_export
from archiver_connectors.x.export import export_pages

class Context:
    errors, notes = [], []
    def report(self, item, error):
        self.errors.append((item, error))
    def note(self, line):
        self.notes.append(line)

context = Context()
with open_export(Path(sys.argv[1])) as source:
    for page in export_pages(source, context):
        for record in page.records:
            for _ in getattr(record, "members", ()):
                pass
if context.errors:
    raise SystemExit(f"errors: {context.errors[:3]}")
"""

IMPORT_CHILD = _PEAK + """
import sys
sys.argv[0] = "archiver"
from archiver.cli.main import main
main()
"""


def run_child(code: str, args: list[str], work: Path, name: str) -> tuple[float, float]:
    """(seconds, peak resident memory in MB) of one child; exits with a FAIL line if it fails."""
    peak_file = work / f"{name}.peak"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    env.update(BENCH_PEAK=str(peak_file), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               ARCHIVER_SECRETS="env", ARCHIVER_STATE_DIR=str(work / "state"))
    start = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        print(process.stdout[-2000:] + process.stderr[-2000:])
        print(f"FAIL: {name} exited {process.returncode}")
        raise SystemExit(0)
    return seconds, int(peak_file.read_text()) / 1024


def main() -> None:
    from archiver_connectors.x.sim.export import big_world, write_archive

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=5, help="size of the tweets files in MB (default 5)")
    parser.add_argument("--part-mb", type=float, default=100, help="X's part size in MB (default 100)")
    parser.add_argument("--zip", action="store_true", help="import the zip (default: the extracted folder)")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the archive and the archive folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="archiver-bench-x-", dir=args.dir))
    try:
        posts = max(int(args.mb * 1e6 / BYTES_PER_POST), 1)
        started = time.perf_counter()
        written = write_archive(work / "twitter", big_world(posts=posts), zipped=args.zip,
                                part_bytes=int(args.part_mb * 1e6), media_files=False, viewer=False)
        folder = work / "twitter"
        if args.zip:   # the floor reads the same files, extracted once
            import zipfile

            with zipfile.ZipFile(written) as archive:
                archive.extractall(folder)
        tweets = sorted(p for p in folder.rglob("tweets*.js") if p.parent.name == "data")
        size_mb = sum(p.stat().st_size for p in tweets) / 1e6
        print(f"archive: {posts} posts, tweets files {size_mb:.0f} MB in {len(tweets)} part(s) "
              f"({', '.join(p.name for p in tweets)}); {'zipped' if args.zip else 'extracted'}; "
              f"written in {time.perf_counter() - started:.0f} s")

        floor_s, floor_mb = run_child(FLOOR_CHILD, [str(p) for p in tweets], work, "floor")
        read_s, read_mb = run_child(READ_CHILD, [str(written)], work, "read")
        import_s, import_mb = run_child(IMPORT_CHILD, ["import", "x", str(written), "--archive",
                                                       str(work / "archive")], work, "import")

        db = sqlite3.connect(work / "archive" / "archive.db")
        stored = db.execute("SELECT count(*) FROM posts").fetchone()[0]
        long_posts = db.execute("SELECT count(*) FROM posts WHERE length(text) > 280").fetchone()[0]
        db.close()
        print(f"{'':32}{'seconds':>9}{'MB/s':>8}{'peak RSS MB':>13}{'peak / file':>13}")
        for label, seconds, peak in (("floor (one ijson parse)", floor_s, floor_mb),
                                     ("read (export_pages, no writes)", read_s, read_mb),
                                     ("archiver import x", import_s, import_mb)):
            print(f"{label:32}{seconds:>9.1f}{size_mb / seconds:>8.1f}{peak:>13.0f}{peak / size_mb:>13.2f}")
        print(f"read / floor: {read_s / floor_s:.1f} x the time of one parse")
        verdict = "ok" if import_mb < MEMORY_TARGET_MB else "FAIL"
        print(f"import peak memory: {import_mb:.0f} MB for {size_mb:.0f} MB of tweets "
              f"(target < {MEMORY_TARGET_MB} MB whatever the size) {verdict}")
        print(f"posts: {stored} stored, {posts} in the archive: {'ok' if stored == posts else 'FAIL'}; "
              f"long posts whole: {long_posts} ({'ok' if long_posts >= posts // 50 else 'FAIL'})")
        if args.keep:
            print(f"kept in {work}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
