"""Media download throughput over loopback: the media store with every bound and the link
policy on, against a raw floor measured in the same run.

    python benchmarks/media_download.py                # 256 MB file, best of 3
    python benchmarks/media_download.py --size-mb 64 --rounds 2

ours  = MediaStore.download through the media client archiver uses (ApiClient with the
        account's LinkPolicy: the checking transport and network backend), the size cap,
        total time and rate checks on every chunk, fsync, the sha256 and the rename.
floor = plain httpx streaming the same file into a file, fsync, then hashing it once.
Target: ours >= 0.7 x the floor's MB/s. Always exits 0; prints FAIL when missed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TARGET_RATIO = 0.7


def serve(size: int) -> tuple[ThreadingHTTPServer, int]:
    block = os.urandom(1 << 20)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Type", "video/mp4")
            self.end_headers()
            left = size
            while left:
                piece = block[:min(left, len(block))]
                self.wfile.write(piece)
                left -= len(piece)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def floor(url: str, folder: Path) -> float:
    import httpx

    target = folder / "floor.bin"
    start = time.perf_counter()
    with httpx.Client(timeout=60) as client, client.stream("GET", url) as response, open(target, "wb") as out:
        for chunk in response.iter_bytes():
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    digest = hashlib.sha256()
    with open(target, "rb") as f:
        while chunk := f.read(1 << 16):
            digest.update(chunk)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def ours(url: str, folder: Path, round_number: int) -> float:
    from archiver.config import DownloadLimits
    from archiver.net.links import LinkPolicy
    from archiver.archive.media import MediaStore
    from archiver.net.client import ApiClient

    store = MediaStore(folder / f"media-{round_number}", limits=DownloadLimits())
    client = ApiClient(timeout=60, links=LinkPolicy.for_account("http://127.0.0.1:1"))
    start = time.perf_counter()
    stored = store.download(client, url, key=f"bench-{round_number}")
    elapsed = time.perf_counter() - start
    client.close()
    (store.root / stored.path).unlink()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (default: a temporary folder)")
    options = parser.parse_args()
    size = options.size_mb * 1_000_000
    server, port = serve(size)
    url = f"http://127.0.0.1:{port}/video.mp4"
    with tempfile.TemporaryDirectory(dir=options.dir) as tmp:
        folder = Path(tmp)
        floors, ourses = [], []
        for number in range(options.rounds):   # interleaved: both see the same machine load
            floors.append(floor(url, folder))
            ourses.append(ours(url, folder, number))
    server.shutdown()
    server.server_close()
    floor_rate, our_rate = size / 1e6 / min(floors), size / 1e6 / min(ourses)
    ratio = our_rate / floor_rate
    print(f"media download, {options.size_mb} MB over loopback, best of {options.rounds}")
    print(f"  floor (httpx stream + write + fsync + sha256): {floor_rate:8.1f} MB/s")
    print(f"  ours  (MediaStore.download, bounds + link policy): {our_rate:8.1f} MB/s")
    verdict = "ok" if ratio >= TARGET_RATIO else "FAIL"
    print(f"  ratio ours/floor: {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}")
    sys.exit(0)


if __name__ == "__main__":
    main()
