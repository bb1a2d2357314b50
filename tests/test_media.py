"""MediaStore: content addressing, resume with Range, dedup, verify — via httpx.MockTransport."""

from __future__ import annotations

import hashlib
import io
import re
import stat
from pathlib import Path

import httpx
import pytest

from archiver.archive.media import MediaError, MediaStore, sniff_extension
from archiver.net.client import ApiClient, Cancelled, Pacer, RetryPolicy, scrubber

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 700
MOV = b"\x00\x00\x00\x14ftypqt  " + b"\x02" * 700
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x03" * 300
GIF = b"GIF89a" + b"\x04" * 300


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileServer:
    """Serves one body per path, honouring (or, on request, ignoring) Range headers."""

    def __init__(self, files: dict[str, bytes], *, content_type: str | None = None,
                 honour_range: bool = True, etags: bool = True, honour_if_range: bool = True):
        self.files = files
        self.content_type = content_type
        self.honour_range = honour_range
        self.etags = etags
        self.honour_if_range = honour_if_range
        self.requests: list[httpx.Request] = []
        self.cut_next_body_at: int | None = None  # simulate a connection lost mid-body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        data = self.files.get(request.url.path)
        if data is None:
            return httpx.Response(404)
        headers = {"Content-Type": self.content_type} if self.content_type else {}
        etag = f'"{sha(data)[:16]}"'
        if self.etags:
            headers["ETag"] = etag
        status, body = 200, data
        match = re.match(r"bytes=(\d+)-$", request.headers.get("Range", ""))
        if_range = request.headers.get("If-Range")
        if match and self.honour_range and (if_range is None or if_range == etag or not self.honour_if_range):
            start = int(match.group(1))
            if start >= len(data):
                return httpx.Response(416, headers={"Content-Range": f"bytes */{len(data)}"})
            status, body = 206, data[start:]
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        headers["Content-Length"] = str(len(body))
        if self.cut_next_body_at is not None:
            cut, self.cut_next_body_at = self.cut_next_body_at, None
            return httpx.Response(status, headers=headers, content=_dying_stream(body[:cut]))
        return httpx.Response(status, headers=headers, content=body)


def _dying_stream(first_part: bytes):
    yield first_part
    raise httpx.ReadError("connection reset by peer")


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def client_for(server: FileServer) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(server))


def part_files(store: MediaStore) -> list[Path]:
    return list(store.tmp.glob("*.part"))


def write_part(store: MediaStore, key: str, data: bytes, validator: str | None = None) -> Path:
    """A .part left by an earlier attempt; ``validator`` is the ETag kept beside it."""
    part = store.tmp / (hashlib.sha1(key.encode()).hexdigest() + ".part")
    part.write_bytes(data)
    if validator is not None:
        part.with_name(part.name + ".validator").write_text(validator)
    return part


def etag_of(data: bytes) -> str:
    return f'"{sha(data)[:16]}"'  # what FileServer sends


# ------------------------------------------------------------------ downloads


def test_download_stores_file_under_its_sha256(store):
    server = FileServer({"/a.jpg": JPEG})
    result = store.download(client_for(server), "https://cdn.test/a.jpg?sig=1", key="k1")
    digest = sha(JPEG)
    assert result.sha256 == digest
    assert result.path == Path(digest[:2]) / digest[2:4] / f"{digest}.jpg"
    assert result.size == len(JPEG)
    assert result.mime == "image/jpeg"
    assert (store.root / result.path).read_bytes() == JPEG
    assert store.path_for(digest) == store.root / result.path
    assert part_files(store) == []  # no .part left after success
    assert "Range" not in server.requests[0].headers


def test_store_is_private(store):
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    result = store.download(client_for(FileServer({"/a": PNG})), "https://cdn.test/a", key="k")
    assert stat.S_IMODE((store.root / result.path).stat().st_mode) & 0o077 == 0


def test_identical_content_is_stored_once(store):
    server = FileServer({"/one.jpg": JPEG, "/two.jpg": JPEG})
    client = client_for(server)
    first = store.download(client, "https://cdn.test/one.jpg", key="post1:cover")
    second = store.download(client, "https://cdn.test/two.jpg", key="post2:cover")
    assert first.path == second.path
    stored = [p for p in store.root.rglob("*") if p.is_file()]
    assert stored == [store.root / first.path]
    assert part_files(store) == []


def test_resume_from_partial_part_sends_range_with_its_validator(store):
    write_part(store, "video:1", MP4[:300], validator=etag_of(MP4))
    server = FileServer({"/v.mp4": MP4})
    result = store.download(client_for(server), "https://cdn.test/v.mp4", key="video:1")
    assert server.requests[0].headers["Range"] == "bytes=300-"
    assert server.requests[0].headers["If-Range"] == etag_of(MP4)
    assert result.sha256 == sha(MP4)
    assert (store.root / result.path).read_bytes() == MP4
    assert part_files(store) == [] and list(store.tmp.iterdir()) == []  # validator gone too


def test_part_without_a_validator_is_started_over(store):
    """Nothing proves these bytes are of the file the server has now: no Range at all."""
    write_part(store, "video:1", MP4[:300])
    server = FileServer({"/v.mp4": MP4})
    result = store.download(client_for(server), "https://cdn.test/v.mp4", key="video:1")
    assert "Range" not in server.requests[0].headers
    assert (store.root / result.path).read_bytes() == MP4


def test_part_of_a_file_since_changed_is_started_over_not_spliced(store):
    """The .part holds the head of version 1; the server now has version 2. The resume
    carries version 1's ETag in If-Range, so the server sends version 2 whole."""
    version_1, version_2 = MP4, MP4[:20] + b"\x07" * 700
    write_part(store, "video:1", version_1[:300], validator=etag_of(version_1))
    server = FileServer({"/v.mp4": version_2})
    result = store.download(client_for(server), "https://cdn.test/v.mp4", key="video:1")
    assert server.requests[0].headers["If-Range"] == etag_of(version_1)
    assert (store.root / result.path).read_bytes() == version_2
    assert result.sha256 == sha(version_2)


def test_connection_lost_mid_body_resumes_in_the_same_call(store):
    server = FileServer({"/v.mp4": MP4})
    server.cut_next_body_at = 100
    result = store.download(client_for(server), "https://cdn.test/v.mp4", key="video:2")
    assert len(server.requests) == 2
    assert server.requests[1].headers["Range"] == "bytes=100-"
    assert (store.root / result.path).read_bytes() == MP4


def test_file_replaced_on_the_server_between_two_attempts_is_never_spliced(store):
    """Attempt 1 gets 300 bytes of version 1 and the connection drops; before attempt 2
    the file is replaced. Without If-Range, a server honouring Range would send bytes
    300… of version 2 and the store would keep a file that never existed."""
    version_1, version_2 = MP4, MP4[:20] + b"\x07" * 700
    server = FileServer({"/v.mp4": version_1})
    server.cut_next_body_at = 300
    seen = []

    def replace_after_first(request):
        response = server(request)
        seen.append(request)
        server.files["/v.mp4"] = version_2
        return response

    result = store.download(httpx.Client(transport=httpx.MockTransport(replace_after_first)),
                            "https://cdn.test/v.mp4", key="video:9")
    assert seen[1].headers["Range"] == "bytes=300-" and seen[1].headers["If-Range"] == etag_of(version_1)
    assert (store.root / result.path).read_bytes() == version_2


def test_a_splice_by_a_server_ignoring_if_range_is_caught_by_the_platforms_hash(store):
    """A server that honours Range but not If-Range sends the tail of version 2 after the
    head of version 1. The platform named version 2's sha256: the spliced bytes are not
    stored, and the file is fetched once more, whole."""
    version_1, version_2 = MP4, MP4[:20] + b"\x07" * 700
    write_part(store, "blob", version_1[:300], validator=etag_of(version_1))
    server = FileServer({"/b": version_2}, honour_if_range=False)
    result = store.download(client_for(server), "https://cdn.test/b", key="blob",
                            expected_sha256=sha(version_2))
    assert [r.headers.get("Range") for r in server.requests] == ["bytes=300-", None]
    assert (store.root / result.path).read_bytes() == version_2
    assert [p.name for p in store.root.rglob("*") if p.is_file()] == [result.path.name]


def test_bytes_that_never_match_the_platforms_hash_are_not_stored(store):
    server = FileServer({"/b": PNG})
    with pytest.raises(MediaError, match="does not match the platform's hash"):
        store.download(client_for(server), "https://cdn.test/b", key="blob", expected_sha256="0" * 64)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_server_ignoring_range_restarts_cleanly(store):
    write_part(store, "img", b"garbage that is not the start of the file", validator=etag_of(PNG))
    server = FileServer({"/p.png": PNG}, honour_range=False)
    result = store.download(client_for(server), "https://cdn.test/p.png", key="img")
    assert "Range" in server.requests[0].headers
    assert len(server.requests) == 1
    assert (store.root / result.path).read_bytes() == PNG
    assert result.sha256 == sha(PNG)


def test_416_restarts_from_zero(store):
    write_part(store, "img", b"x" * (len(PNG) + 50), validator=etag_of(PNG))  # longer than the file: junk
    server = FileServer({"/p.png": PNG})
    result = store.download(client_for(server), "https://cdn.test/p.png", key="img")
    assert [r.headers.get("Range") for r in server.requests] == [f"bytes={len(PNG) + 50}-", None]
    assert result.sha256 == sha(PNG)
    assert part_files(store) == []


def test_416_with_complete_part_finishes_without_refetching(store):
    write_part(store, "img", PNG, validator=etag_of(PNG))
    server = FileServer({"/p.png": PNG})
    result = store.download(client_for(server), "https://cdn.test/p.png", key="img")
    assert len(server.requests) == 1
    assert result.sha256 == sha(PNG)


def test_http_error_raises_media_error_without_the_query(store):
    scrubber.add("media-secret-777")
    server = FileServer({})
    with pytest.raises(MediaError) as caught:
        store.download(client_for(server), "https://cdn.test/gone.jpg?token=media-secret-777",
                       key="k")
    assert "404" in str(caught.value)
    assert "https://cdn.test/gone.jpg" in str(caught.value)
    assert "media-secret-777" not in str(caught.value)
    assert "token=" not in str(caught.value)


def test_works_through_api_client_stream(store):
    server = FileServer({"/a.gif": GIF})
    api = ApiClient("https://api.test", transport=httpx.MockTransport(server),
                    sleep=lambda s: None, retry=RetryPolicy(attempts=2), pacer=Pacer())
    result = store.download(api, "https://cdn.test/a.gif", key="gif")
    assert result.path.suffix == ".gif"
    assert "Authorization" not in server.requests[0].headers


def test_cancel_stops_download_and_keeps_part(store):
    server = FileServer({"/v.mp4": MP4 * 10})
    with pytest.raises(Cancelled):
        store.download(client_for(server), "https://cdn.test/v.mp4", key="v", cancel=lambda: True)
    assert len(part_files(store)) == 1
    assert [p for p in store.root.rglob("*") if p.is_file() and p.parent != store.tmp] == []


# ------------------------------------------------------------------ types


@pytest.mark.parametrize(
    "data, content_type, ext, mime",
    [
        (JPEG, None, "jpg", "image/jpeg"),
        (PNG, "application/octet-stream", "png", "image/png"),  # magic bytes win
        (MP4, None, "mp4", "video/mp4"),
        (MOV, None, "mov", "video/quicktime"),
        (WEBP, None, "webp", "image/webp"),
        (GIF, None, "gif", "image/gif"),
        (b'{"a": 1}', None, "json", "application/json"),
        (b"\x00\x01unknown", "image/jpeg; charset=binary", "jpg", "image/jpeg"),  # header
        (b"\x00\x01unknown", None, "bin", None),
    ],
)
def test_extension_from_magic_bytes_or_content_type(store, data, content_type, ext, mime):
    server = FileServer({"/f": data}, content_type=content_type)
    result = store.download(client_for(server), "https://cdn.test/f", key=f"k-{ext}")
    assert result.path.suffix == f".{ext}"
    assert result.mime == mime


def test_mime_hint_is_the_last_resort(store):
    result = store.add_file(io.BytesIO(b"\x00\x01unknown"), mime_hint="video/mp4")
    assert result.path.suffix == ".mp4"
    assert sniff_extension(b"\x00\x01unknown") is None


# ------------------------------------------------------------------ local files, upkeep


def test_add_file_from_path_and_stream(store, tmp_path):
    src = tmp_path / "export_pic"
    src.write_bytes(JPEG)
    from_path = store.add_file(src)
    from_stream = store.add_file(io.BytesIO(JPEG))
    assert from_path == from_stream
    assert from_path.sha256 == sha(JPEG)
    assert part_files(store) == []


def test_verify_finds_corrupted_file(store):
    good = store.add_file(io.BytesIO(PNG))
    bad = store.add_file(io.BytesIO(JPEG))
    assert list(store.verify()) == []
    with open(store.root / bad.path, "r+b") as f:
        f.seek(10)
        f.write(b"\x00\x00bitrot")
    problems = list(store.verify())
    assert [rel for rel, _ in problems] == [bad.path.as_posix()]
    assert "does not match" in problems[0][1]
    assert good.path.as_posix() not in [rel for rel, _ in problems]


def test_verify_reports_stray_files(store):
    (store.root / "notes.txt").write_text("hello")
    assert list(store.verify()) == [("notes.txt", "name is not a sha256")]


def test_path_for_rejects_escape(store):
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")
    with pytest.raises(FileNotFoundError):
        store.path_for("0" * 64)
