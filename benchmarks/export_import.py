"""Benchmark: `archiver import` of a big export, next to a raw read of the same file.

    python benchmarks/export_import.py [--size-mb 1024] [--format zip|tar.gz] [--dir DIR] [--keep]

The export is a synthetic Instagram "download your data" file in the current layout,
written as a stream (never held in memory): ``--size-mb`` of media entries (one file of
about 512 KiB per post, random bytes behind a JPEG header, so nothing deduplicates or
compresses), the posts that name them, a follower list of 200,000 people and a following
list of 5,000 (scaled with the size).

Then, each in its own process:

1. ``floor``: a raw read of the export file, 1 MiB at a time (the file was just written,
   so both this and the import read it from the page cache);
2. ``import``: ``archiver import instagram FILE`` into a fresh archive folder, with the
   peak resident memory of that process (its VmHWM at exit).

It prints the throughput of both (MB of export per second), their ratio, and the
import's peak memory against the target (from the issue): under 150 MB whatever the
export's size. What the import wrote is checked (posts, stored files, followers);
a wrong count is a FAIL, whatever the timings. It always exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

MEMORY_TARGET_MB = 150
MEDIA_BYTES = 512 * 1024
BASE_TIME = 1_714_587_751  # 2024-05-01T18:22:31Z
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"


def _month(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y%m")


class _Writer:
    """Entries written as streams into a zip or a tar.gz."""

    def __init__(self, path: Path, kind: str):
        self.kind = kind
        self.moment = BASE_TIME + 86_400 * 30
        if kind == "zip":
            self.archive = zipfile.ZipFile(path, "w", allowZip64=True)
        else:
            # Level 1: media do not compress anyway, and writing must not take all day.
            self.archive = tarfile.open(path, "w:gz", compresslevel=1)

    def add(self, name: str, data: bytes, compress: bool) -> None:
        if self.kind == "zip":
            info = zipfile.ZipInfo(name, date_time=time.gmtime(self.moment)[:6])
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            self.archive.writestr(info, data)
        else:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), self.moment, 0o644
            self.archive.addfile(info, io.BytesIO(data))

    def add_stream(self, name: str, chunks) -> None:
        """A big JSON document from its pieces, without holding it whole (zip); a tar
        needs the size first, so its pieces go through a temporary file."""
        if self.kind == "zip":
            info = zipfile.ZipInfo(name, date_time=time.gmtime(self.moment)[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with self.archive.open(info, "w", force_zip64=True) as out:
                for chunk in chunks:
                    out.write(chunk)
            return
        with tempfile.TemporaryFile() as spool:
            for chunk in chunks:
                spool.write(chunk)
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = spool.tell(), self.moment, 0o644
            spool.seek(0)
            self.archive.addfile(info, spool)

    def close(self) -> None:
        self.archive.close()


def _people(kind: str, count: int, rng: random.Random):
    """followers_1.json / following.json, a thousand entries per piece."""
    yield b"[" if kind == "followers" else b'{"relationships_following": ['
    for start in range(0, count, 1000):
        entries = []
        for n in range(start, min(count, start + 1000)):
            name = f"{kind[:3]}_{n:07d}_{rng.randrange(10**6):06d}"
            when = BASE_TIME - rng.randrange(86_400 * 1000)
            if kind == "followers":
                entries.append({"title": "", "media_list_data": [], "string_list_data": [
                    {"href": f"https://www.instagram.com/{name}", "value": name, "timestamp": when}]})
            else:
                entries.append({"title": name, "string_list_data": [
                    {"href": f"https://www.instagram.com/_u/{name}", "timestamp": when}]})
        piece = json.dumps(entries)[1:-1].encode()
        yield (b"," if start else b"") + piece
    yield b"]" if kind == "followers" else b"]}"


def write_export(path: Path, kind: str, size_mb: int, followers: int | None = None) -> dict:
    """The export file; returns what it holds."""
    rng = random.Random(7)
    posts = max(1, size_mb * 2**20 // MEDIA_BYTES)
    followers = followers if followers is not None else max(1000, 200_000 * size_mb // 1024)
    following = max(100, 5_000 * size_mb // 1024)
    writer = _Writer(path, kind)
    feed = []
    # Media first, then the documents that name them (as Meta's zips are laid out).
    for number in range(posts):
        created = BASE_TIME - number * 3_600
        uri = f"media/posts/{_month(created)}/{number:07d}_{created}_n.jpg"
        writer.add(uri, JPEG_HEAD + rng.randbytes(MEDIA_BYTES - len(JPEG_HEAD)), compress=False)
        feed.append({"media": [{"uri": uri, "creation_timestamp": created, "title": f"Post number {number} #bench"}]})
    content = "your_instagram_activity/content"
    writer.add(f"{content}/posts_1.json", json.dumps(feed).encode(), compress=True)
    connections = "connections/followers_and_following"
    writer.add_stream(f"{connections}/followers_1.json", _people("followers", followers, rng))
    writer.add_stream(f"{connections}/following.json", _people("following", following, rng))
    profile = {"profile_user": [{"string_map_data": {
        "Username": {"href": "", "value": "bench.account", "timestamp": 0},
        "Name": {"href": "", "value": "Bench Account", "timestamp": 0}}}]}
    writer.add("personal_information/personal_information/personal_information.json",
               json.dumps(profile).encode(), compress=True)
    writer.close()
    return {"posts": posts, "followers": followers, "following": following}


def raw_read(path: Path) -> float:
    """Seconds to read the file once, 1 MiB at a time, in a fresh process."""
    code = ("import sys, time\nstart = time.perf_counter()\n"
            "with open(sys.argv[1], 'rb', buffering=0) as f:\n    while f.read(1 << 20): pass\n"
            "print(time.perf_counter() - start)")
    return float(subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True,
                                text=True).stdout)


# Runs the archiver command and, at its exit, writes its peak resident memory (VmHWM, in
# KiB) to the file $ARCHIVER_BENCH_PEAK names. Not ru_maxrss: Linux carries a parent's
# peak over fork and exec into the child's, so a big parent (a test run) would show its own.
_MEASURED = """
import atexit, os, sys

def peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["ARCHIVER_BENCH_PEAK"], "w") as out:
        out.write(kib)

atexit.register(peak)
sys.argv[0] = "archiver"
from archiver.cli.main import main
main()
"""


def run_import(path: Path, archive: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """(seconds, peak resident memory in MB, the process) of `archiver import instagram PATH`."""
    peak_file = archive.with_name(archive.name + ".peak")
    command = [sys.executable, "-c", _MEASURED, "import", "instagram", str(path), "--archive", str(archive)]
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
           "ARCHIVER_BENCH_PEAK": str(peak_file)}
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    peak_mb = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    return seconds, peak_mb, process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="media in the export, in MiB (default 1024)")
    parser.add_argument("--format", choices=("zip", "tar.gz"), default="zip")
    parser.add_argument("--followers", type=int, default=None,
                        help="followers in the export (default: 200,000 per GiB of media)")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the export and the archive")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="archiver-bench-", dir=args.dir))
    try:
        export = work / f"instagram-bench.{args.format}"
        started = time.perf_counter()
        holds = write_export(export, args.format, args.size_mb, args.followers)
        size = export.stat().st_size
        print(f"export: {export.name}, {size / 2**20:.0f} MiB: {holds['posts']} posts with a "
              f"{MEDIA_BYTES // 1024} KiB file each, {holds['followers']} followers, {holds['following']} following "
              f"(written in {time.perf_counter() - started:.1f} s)")
        floor_s = raw_read(export)
        import_s, peak_mb, process = run_import(export, work / "archive")
        failures = []
        if process.returncode != 0:
            failures.append(f"the import failed (exit {process.returncode}): {process.stderr[-2000:]}")
        else:
            db = sqlite3.connect(work / "archive" / "archive.db")
            got = {
                "posts": db.execute("SELECT count(*) FROM posts").fetchone()[0],
                "files": db.execute("SELECT count(*) FROM post_media WHERE status='ok'").fetchone()[0],
                "followers": db.execute("SELECT max(member_count) FROM snapshots WHERE kind='followers'").fetchone()[0],
                "following": db.execute("SELECT max(member_count) FROM snapshots WHERE kind='following'").fetchone()[0],
            }
            db.close()
            want = {"posts": holds["posts"], "files": holds["posts"], "followers": holds["followers"],
                    "following": holds["following"]}
            if got != want:
                failures.append(f"the archive holds {got}, expected {want}")
        mb = size / 1e6
        print(f"{'':24}{'seconds':>10}{'MB/s':>10}")
        print(f"{'raw read (floor)':24}{floor_s:>10.2f}{mb / floor_s:>10.0f}")
        print(f"{'archiver import':24}{import_s:>10.2f}{mb / import_s:>10.1f}")
        print(f"import throughput = {floor_s / import_s:.3f} x the raw read")
        verdict = "ok" if peak_mb < MEMORY_TARGET_MB else "FAIL"
        print(f"import peak memory (RSS): {peak_mb:.0f} MB (target < {MEMORY_TARGET_MB} MB) {verdict}")
        for failure in failures:
            print(f"FAIL: {failure}")
        if args.keep:
            print(f"kept in {work}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
