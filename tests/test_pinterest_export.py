"""Pinterest's "Request your data" export (shared/platforms/pinterest.md §6): the builder of
fake exports (pinterest/sim/export.py) and the importer (pinterest/export.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import httpx
import pytest
from archive_rows import one, rows

from archiver.archive import Archive
from archiver.config import AccountConfig, Config
from archiver.records import iso_utc
from archiver.secrets import open_secret_store
from archiver.sync.imports import ExportFileError
from archiver.sync.jobs import Workspace, run_import
from archiver_connectors.pinterest.export import MAX_LINE, PAGE_SIZE
from archiver_connectors.pinterest.sim.export import (
    ExportBlock,
    ExportBoard,
    ExportPin,
    ExportSection,
    boards_section,
    export_html,
    people_section,
    sample_pins,
    write_export,
)

LEMON_TART = ExportPin("813744226420795884", title="Lemon tart", details="Weekend bake",
                       image_signature="0df6f1f0bfe7aaca849c1bbc3607a34b", board_id="549755885175",
                       board_name="Baking", username="roofcam", link="https://example.org/recipe",
                       created_at="2024-05-01T18:22:31Z")
# The example of shared/platforms/pinterest.md §6, verbatim (made-up values, real shape).
NOTES_EXAMPLE = """<div id="contents"><h1 id=q8k2z>Pins</h1>
<a href="https://www.pinterest.com/pin/813744226420795884/">https://www.pinterest.com/pin/813744226420795884/</a>
<br>Title: Lemon tart,
<br>Details: Weekend bake,
<br>Image: 0df6f1f0bfe7aaca849c1bbc3607a34b,
<br>Is Native: No data,
<br>Board Id: 549755885175,
<br>Board Name: Baking,
<br>Is Video: No data,
<br>Ip Address: 203.0.113.7,
<br>Username: roofcam,
<br>Alt Text: No data,
<br>Canonical Link: <a href="https://example.org/recipe">https://example.org/recipe</a>,
<br>Story Pin Media: No data,
<br>Video: No data,
<br>Created at: 2024/05/01 18:22:31
<br>Alive: True
<br>Is a repin: False
<br>Private: False<br><br><h1 id=x7y3a>Boards</h1>
</div>
"""


def test_the_builder_writes_the_notes_example_exactly():
    written = export_html([LEMON_TART], extra_sections=[ExportSection("Boards", [], h1_id="x7y3a")],
                          pins_h1_id="q8k2z")
    assert written == NOTES_EXAMPLE


def test_h1_ids_are_random_and_unique():
    written = export_html([LEMON_TART], extra_sections=[ExportSection("Boards"), ExportSection("Followers")], seed=7)
    ids = re.findall(r"<h1 id=(\w+)>", written)
    assert len(ids) == len(set(ids)) == 3
    assert ids != re.findall(r"<h1 id=(\w+)>", export_html([LEMON_TART], extra_sections=[ExportSection("Boards"),
                                                                                      ExportSection("Followers")], seed=8))


# --------------------------------------------------------------------------- importing

CDN = "http://127.0.0.1:9"   # the account's base URL: the importer fetches pinimg's paths there
ACCOUNT = AccountConfig(name="main", platform="pinterest", base_url=CDN)
IP = "203.0.113.7"           # every built Pin's Ip Address: it must reach no table


def picture(signature: str, size: str) -> bytes:
    """A few bytes that start like a JPEG, different for each picture and size."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + f"{size} {signature}".encode() * 4 + b"\xff\xd9"


class FakeCdn:
    """pinimg as the importer meets it: ``/originals/`` and ``/736x/`` paths of a signature
    answer its picture; an original in ``missing`` answers ``missing_status`` (403, as S3
    behind pinimg does for a key it does not hold [U]: or 404)."""

    PATH = re.compile(r"^/(originals|736x)/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{6,64})\.jpg$")

    def __init__(self, missing: tuple[str | None, ...] = (), missing_status: int = 403):
        self.missing, self.missing_status = set(missing), missing_status
        self.requests: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        found = self.PATH.match(request.url.path)
        if request.method != "GET" or found is None or found.group(5)[:6] != "".join(found.group(2, 3, 4)):
            return httpx.Response(404, text="<Error><Code>NoSuchKey</Code></Error>")
        size, signature = found.group(1), found.group(5)
        if size == "originals" and signature in self.missing:
            return httpx.Response(self.missing_status, text="<Error><Code>AccessDenied</Code></Error>")
        return httpx.Response(200, content=picture(signature, size), headers={"content-type": "image/jpeg"})


@pytest.fixture
def ws(tmp_path):
    workspace = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    yield workspace
    workspace.archive.close()


@pytest.fixture
def cdn():
    return FakeCdn()


def import_export(ws, path, cdn, account=ACCOUNT):
    return run_import(ws, path, account=account, transport=httpx.MockTransport(cdn.handle))


def wrapped(tmp_path: Path, pins, wrapper: str, **options) -> Path:
    """The export as a person gets it: the document alone, in a zip, or in the folder it was
    unzipped to."""
    if wrapper == "html":
        return write_export(tmp_path / "pinterest.html", pins, **options)
    if wrapper == "zip":
        return write_export(tmp_path / "pinterest.zip", pins, zipped=True, **options)
    folder = tmp_path / "pinterest-export"
    folder.mkdir()
    write_export(folder / "pinterest.html", pins, **options)
    return folder


def everything(db) -> str:
    """Every value of every table, as text (to look for what must not be there)."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()]
    return "\n".join(repr(rows(db, f'SELECT * FROM "{table}"')) for table in tables)


def test_the_notes_example_imports_into_the_same_rows_as_the_api_would(tmp_path, ws, cdn):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "pinterest.html").write_text(NOTES_EXAMPLE)

    result = import_export(ws, folder, cdn)

    assert result["status"] == "ok", result
    db = ws.archive.db
    assert rows(db, "SELECT post_id, kind, title, text, url, link, created_at, visibility FROM posts") == [
        ("813744226420795884", "image", "Lemon tart", "Weekend bake", "https://www.pinterest.com/pin/813744226420795884/",
         "https://example.org/recipe", "2024-05-01T18:22:31Z", "public")]
    assert rows(db, "SELECT collection_id, kind, title FROM collections") == [("549755885175", "board", "Baking")]
    assert rows(db, "SELECT collection_id, post_id FROM collection_posts") == [("549755885175", "813744226420795884")]
    # The picture, from pinimg's original (the export holds none).
    signature = "0df6f1f0bfe7aaca849c1bbc3607a34b"
    assert rows(db, "SELECT role, position, status, source_url FROM post_media") == [
        ("image", 0, "ok", f"{CDN}/originals/0d/f6/f1/{signature}.jpg")]
    sha = one(db, "SELECT sha256 FROM post_media")
    assert sha == hashlib.sha256(picture(signature, "originals")).hexdigest()
    # The raw keeps what was written (the date as written, the flags), never the IP address.
    raw = json.loads(one(db, "SELECT raw FROM posts"))
    [(source, payload)] = raw.items()
    assert source.startswith("export:")
    assert payload["Created at"] == "2024/05/01 18:22:31" and payload["Is a repin"] == "False"
    assert payload["flags"]["is_repin"] is False and payload["flags"]["is_video"] is None
    assert "Ip Address" not in payload
    assert IP not in everything(db)


@pytest.mark.parametrize("wrapper", ["html", "zip", "folder"])
def test_built_exports_import_every_pin_with_its_board_flags_and_picture(tmp_path, ws, cdn, wrapper):
    pins = sample_pins(5)
    boards = [ExportBoard("549755885175", "Baking", description="Tarts and bread", privacy="PUBLIC",
                          created_at="2020-01-01T00:00:00Z", url="https://www.pinterest.com/roofcam/baking/"),
              ExportBoard("549755885176", "Gardens", privacy="SECRET")]
    path = wrapped(tmp_path, pins, wrapper, extra_sections=[
        boards_section(boards), people_section("Followers", ["ann", "bo"]), people_section("Following", ["cy"])])

    result = import_export(ws, path, cdn)

    assert result["status"] == "ok", result
    assert not result["errors"]
    db = ws.archive.db
    stored = {r[0]: r[1:] for r in rows(db, "SELECT post_id, kind, title, text, link, created_at, visibility, raw "
                                            "FROM posts")}
    assert set(stored) == {pin.pin_id for pin in pins}
    for pin in pins:
        kind, title, text, link, created_at, seen, raw = stored[pin.pin_id]
        assert (kind, title, text, link) == ("video" if pin.is_video else "image", pin.title, pin.details, pin.link)
        assert created_at == iso_utc(pin.created_at)
        assert seen == ("private" if pin.private else "public")
        flags = json.loads(raw)[f"export:{result_source(path)}"]["flags"]
        assert flags["is_repin"] is pin.is_repin and flags["is_video"] == pin.is_video
    # Each Pin is on its board; each board once, with what the Boards section says.
    assert sorted(rows(db, "SELECT post_id, collection_id FROM collection_posts")) == sorted(
        (pin.pin_id, pin.board_id) for pin in pins)
    assert rows(db, "SELECT collection_id, title, description, visibility, created_at, url FROM collections "
                    "ORDER BY collection_id") == [
        ("549755885175", "Baking", "Tarts and bread", "public", "2020-01-01T00:00:00Z",
         "https://www.pinterest.com/roofcam/baking/"),
        ("549755885176", "Gardens", None, "private", None, None)]
    # Every picture downloaded; a video Pin's picture is its cover; the alt text kept.
    media = {r[0]: r[1:] for r in rows(db, "SELECT post_id, role, status, description FROM post_media")}
    assert media == {pin.pin_id: ("cover" if pin.is_video else "image", "ok", pin.alt_text) for pin in pins}
    # Followers and following: whole lists, keyed by user name.
    assert sorted(rows(db, "SELECT kind, person_id FROM follows WHERE ended_at IS NULL")) == [
        ("followers", "ann"), ("followers", "bo"), ("following", "cy")]
    assert rows(db, "SELECT person_id, handle, url FROM people WHERE person_id='cy'") == [
        ("cy", "cy", "https://www.pinterest.com/cy/")]
    assert IP not in everything(db)


def result_source(path: Path) -> str:
    """The sha256 an import names its source by (a folder's: its files', as the core makes it)."""
    from archiver.sync.imports import open_export

    with open_export(path) as source:
        return source.sha256


def test_no_data_everywhere_gives_a_pin_with_its_id_only(tmp_path, ws, cdn):
    empty = ExportPin("900000000000000001", private=None, is_repin=None, alive=None, ip_address=None)
    path = wrapped(tmp_path, [empty], "zip")

    result = import_export(ws, path, cdn)

    assert result["status"] == "ok", result
    db = ws.archive.db
    assert rows(db, "SELECT post_id, kind, title, text, link, created_at, visibility FROM posts") == [
        ("900000000000000001", "image", None, None, None, None, None)]
    assert one(db, "SELECT count(*) FROM collections") == 0
    assert one(db, "SELECT count(*) FROM post_media") == 0 and cdn.requests == []
    raw = json.loads(one(db, "SELECT raw FROM posts"))
    assert set(next(iter(raw.values()))["flags"].values()) == {None}


def test_unknown_sections_are_kept_raw_and_named_once(tmp_path, ws, cdn):
    mystery = ExportSection("Shopping lists", [
        ExportBlock({"Item": "flour", "Ip Address": IP}), ExportBlock({"Item": "lemons"}),
        ExportBlock({"Item": "butter"}, href="https://www.pinterest.com/roofcam/"),
        ExportBlock({"Item": "y" * (MAX_LINE + 1)})])   # over a bound: reported as well
    odd_followers = ExportSection("Followers", [{"Count": "12"}])   # no user names [U]
    path = wrapped(tmp_path, sample_pins(2), "zip", extra_sections=[mystery, odd_followers])

    result = import_export(ws, path, cdn)

    assert result["status"] == "ok", result
    db = ws.archive.db
    assert one(db, "SELECT count(*) FROM posts") == 2
    kept = rows(db, "SELECT stream, item_id, raw FROM unmapped_items ORDER BY item_id")
    assert [(stream, item) for stream, item, _raw in kept] == [
        ("export:unread", "Followers 1"), ("export:unread", "Shopping lists 1"),
        ("export:unread", "Shopping lists 2"), ("export:unread", "Shopping lists 3"),
        ("export:unread", "Shopping lists 4")]
    assert [(e["item"], e["error"]) for e in result["errors"]] == [
        ("block 4 of Shopping lists (line 45 of pinterest.html)", f"a line of it is longer than {MAX_LINE} characters")]
    assert json.loads(kept[1][2]) == {"Item": "flour"}
    assert json.loads(kept[3][2]) == {"Item": "butter", "link": "https://www.pinterest.com/roofcam/"}
    said = " ".join(result["summary"] if "summary" in result else []) + (result.get("message") or "")
    assert said.count("not read") == 1, said
    assert "Shopping lists (3 block(s))" in said and "Followers (1 block(s))" in said
    # A followers section this version cannot read ends nobody's following.
    assert one(db, "SELECT count(*) FROM snapshots") == 0
    assert IP not in everything(db)


def test_a_bad_block_is_reported_with_its_pin_and_the_rest_imports(tmp_path, ws, cdn):
    pins = sample_pins(4)
    document = write_export(tmp_path / "pinterest.html", pins).read_text()
    # The second Pin: a Details line longer than any real one; the third: a board id that is none.
    second, third = pins[1].pin_id, pins[2].pin_id
    document = document.replace("Details of pin 1", "x" * (MAX_LINE + 10), 1)
    start = document.index(f"/pin/{third}/")
    document = document[:start] + document[start:].replace(f"<br>Board Id: {pins[2].board_id},",
                                                            "<br>Board Id: ../../etc,", 1)
    # And a block with no Pin link before it, after the last Pin.
    document = document.replace("</div>", "<br>Title: orphan,\n<br>Details: lost<br><br>\n</div>")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "pinterest.html").write_text(document)

    result = import_export(ws, folder, cdn)

    assert result["status"] == "ok", result
    db = ws.archive.db
    assert sorted(rows(db, "SELECT post_id FROM posts")) == sorted((p.pin_id,) for p in (pins[0], pins[3]))
    errors = {e["item"]: e["error"] for e in result["errors"]}
    assert len(errors) == 3, errors
    [(long_item, long_error)] = [(i, e) for i, e in errors.items() if second in i]
    assert "block 2 of Pins" in long_item and "line 21 of pinterest.html" in long_item
    assert f"longer than {MAX_LINE} characters" in long_error
    assert any(third in item and "is no id" in error for item, error in errors.items())
    assert any("block 5 of Pins" in item and "no Pin link" in error for item, error in errors.items())
    assert sorted(r[0] for r in rows(db, "SELECT item_id FROM unmapped_items WHERE stream='export:pins'")) == sorted(
        [second, third, "Pins 5"])


def test_importing_twice_changes_nothing_and_a_new_pin_fetches_only_its_picture(tmp_path, ws, cdn):
    pins = sample_pins(3)
    first = wrapped(tmp_path, pins, "zip")
    assert import_export(ws, first, cdn)["status"] == "ok"
    fetched = len(cdn.requests)
    before = everything(ws.archive.db)

    again = import_export(ws, first, cdn)

    assert again["status"] == "skipped" and len(cdn.requests) == fetched
    # The same content unzipped: the same export, skipped too.
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(first) as archive:
        archive.extractall(folder)
    assert import_export(ws, folder, cdn)["status"] == "skipped"
    assert everything(ws.archive.db).count("\n") == before.count("\n")

    # A later export with one more Pin: its picture only is fetched; the others are held.
    later = tmp_path / "later"
    later.mkdir()
    newer = sample_pins(4)
    write_export(later / "pinterest.zip", newer, zipped=True)
    assert import_export(ws, later / "pinterest.zip", cdn)["status"] == "ok"
    assert len(cdn.requests) == fetched + 1 and newer[3].image_signature in cdn.requests[-1]
    assert one(ws.archive.db, "SELECT count(*) FROM posts") == 4
    assert one(ws.archive.db, "SELECT count(*) FROM post_media WHERE status='ok'") == 4


@pytest.mark.parametrize("status", [403, 404])
def test_a_missing_original_falls_back_to_the_736_copy(tmp_path, ws, status):
    """pinimg answers 403 for a key it does not hold [U: or 404]. On 403 (the core asks a
    MediaRef's refresh) the 736x copy is stored; on 404 the slot fails, named, and the
    import still succeeds."""
    pins = sample_pins(2)
    cdn = FakeCdn(missing=(pins[0].image_signature,), missing_status=status)
    result = import_export(ws, wrapped(tmp_path, pins, "zip"), cdn)

    assert result["status"] == "ok", result
    slot = rows(ws.archive.db, "SELECT status, sha256 FROM post_media WHERE post_id=?", pins[0].pin_id)
    if status == 403:
        assert slot == [("ok", hashlib.sha256(picture(pins[0].image_signature, "736x")).hexdigest())]
    else:
        assert slot == [("failed", None)]
        assert any(pins[0].pin_id in e["item"] and "404" in e["error"] for e in result["errors"]), result["errors"]
    assert rows(ws.archive.db, "SELECT status FROM post_media WHERE post_id=?", pins[1].pin_id) == [("ok",)]


def test_pinimg_is_the_default_host_and_a_video_link_is_fetched_from_it_only(tmp_path, ws):
    """[U] what Video holds for a video Pin: a link on Pinterest's CDN is downloaded, a link
    elsewhere only kept in raw."""
    seen: list[str] = []

    def pinimg(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path.endswith(".mp4"):
            return httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42" + bytes(64), headers={"content-type": "video/mp4"})
        return httpx.Response(200, content=picture(request.url.path, "any"), headers={"content-type": "image/jpeg"})

    pins = sample_pins(2)
    pins[0].is_video, pins[0].video = True, "https://v1.pinimg.com/videos/mc/720p/0d/f6/f1/0df6f1.mp4"
    pins[1].is_video, pins[1].video = True, "https://video.example/elsewhere.mp4"
    result = run_import(ws, wrapped(tmp_path, pins, "zip"), transport=httpx.MockTransport(pinimg))

    assert result["status"] == "ok", result
    originals = [f"https://i.pinimg.com/originals/{s[:2]}/{s[2:4]}/{s[4:6]}/{s}.jpg"
                 for s in (pin.image_signature or "" for pin in pins)]
    assert sorted(seen) == sorted([*originals, pins[0].video])
    assert sorted(rows(ws.archive.db, "SELECT post_id, role, status FROM post_media")) == sorted([
        (pins[0].pin_id, "cover", "ok"), (pins[0].pin_id, "video", "ok"), (pins[1].pin_id, "cover", "ok")])
    raw = json.loads(one(ws.archive.db, "SELECT raw FROM posts WHERE post_id=?", pins[1].pin_id))
    assert next(iter(raw.values()))["Video"] == pins[1].video


def test_line_breaks_written_either_way_stay_in_the_details(tmp_path, ws, cdn):
    pins = sample_pins(1)
    pins[0].details = "first\nsecond: not a key\n\nfourth"
    path = wrapped(tmp_path, pins, "zip", newlines="br")
    assert import_export(ws, path, cdn)["status"] == "ok"
    assert one(ws.archive.db, "SELECT text FROM posts") == "first\nsecond: not a key\nfourth"


def test_the_document_alone_is_found_whatever_its_name(tmp_path, ws, cdn):
    path = write_export(tmp_path / "pinterest.html", sample_pins(2))
    renamed = path.rename(tmp_path / "download")   # a browser's name for it
    result = import_export(ws, renamed, cdn)
    assert (result["status"], result["platform"]) == ("ok", "pinterest"), result
    assert one(ws.archive.db, "SELECT count(*) FROM posts") == 2
    # A saved login page is still no export: said so, naming the file.
    page = tmp_path / "login.html"
    page.write_text("<!DOCTYPE html><html><body><h1>Log in</h1></body></html>")
    with pytest.raises(ExportFileError, match="web page") as caught:
        run_import(ws, page)
    assert str(page) in str(caught.value)


def test_other_files_are_not_a_pinterest_export(tmp_path, ws, cdn):
    page = tmp_path / "page.zip"
    with zipfile.ZipFile(page, "w") as archive:
        archive.writestr("index.html", "<html><body><h1>Your information</h1></body></html>")
    with pytest.raises(ExportFileError) as caught:
        run_import(ws, page, platform="pinterest")
    assert str(page) in str(caught.value) and "Pinterest export" in str(caught.value)
    # Facebook's HTML download (which its importer refuses) is not taken for Pinterest's either.
    from archiver_connectors.facebook.sim.export import sample_world
    from archiver_connectors.facebook.sim.export import write_export as write_facebook

    facebook = write_facebook(tmp_path / "facebook.zip", sample_world(), layout="html")
    from archiver.sync.imports import open_export
    from archiver_connectors.pinterest.export import find_export

    with open_export(facebook) as source:
        assert find_export(source) == []


def test_bad_bytes_are_named_and_the_rest_is_read(tmp_path, ws, cdn):
    pins = sample_pins(2)
    data = write_export(tmp_path / "pinterest.html", pins).read_bytes().replace(b"Pin 0", b"Pin \xff0", 1)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "pinterest.html").write_bytes(data)

    result = import_export(ws, folder, cdn)

    assert result["status"] == "ok", result
    assert one(ws.archive.db, "SELECT count(*) FROM posts") == 2
    assert one(ws.archive.db, "SELECT title FROM posts WHERE post_id=?", pins[0].pin_id) == "Pin \ufffd0"
    assert any("bad bytes" in e["item"] and "not valid UTF-8" in e["error"] for e in result["errors"])


def test_many_pins_go_in_pages(tmp_path, ws, cdn):
    pins = sample_pins(PAGE_SIZE + 3)
    for pin in pins:
        pin.image_signature = None
    result = import_export(ws, wrapped(tmp_path, pins, "zip"), cdn)
    assert result["status"] == "ok" and one(ws.archive.db, "SELECT count(*) FROM posts") == PAGE_SIZE + 3


# --------------------------------------------------------------------------- hostile HTML

# One document: a good Pin, then something built to exhaust memory or time, then the next
# good Pin, and so on. The import runs in a child process that may add no more than
# HEADROOM to its address space (the limit binds the import, not pytest; a reader holding
# the huge text whole would pass it), under a time limit.
HOSTILE_UNDER_LIMIT = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from archiver.archive import Archive
    from archiver.config import Config
    from archiver.sync.jobs import Workspace, run_import
    from archiver.secrets import open_secret_store
    import archiver_connectors.pinterest.export

    ws = Workspace(Archive(Path(sys.argv[2])), Config(path=None), open_secret_store("memory"))
    ws.archive.db   # the archive made, then the limit: what the import may add
    with open("/proc/self/status") as status:
        idle = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (idle + HEADROOM, idle + HEADROOM))
    result = run_import(ws, Path(sys.argv[1]))
    posts = [r[0] for r in ws.archive.db.execute("SELECT post_id FROM posts")]
    print(json.dumps({"status": result["status"], "posts": posts,
                      "errors": [e["item"] + ": " + e["error"] for e in result["errors"]]}))
    ws.archive.close()
""")

MIB = 2**20
HEADROOM = 192 * MIB
HOSTILE_PARTS: dict[str, str | tuple[str, str, int]] = {
    "deep nesting": "<div>" * 20_000 + "x" + "</div>" * 20_000,
    "endless attributes": '<a href="https://www.pinterest.com/pin/1/" ' + "x=1 " * (MIB // 8),
    "a closed tag of endless attributes": "<span " + "y=2 " * (MIB // 8) + ">",
    "huge text": ("<br>Details: ", "z" * MIB, 256),   # a prefix, then a piece written many times
    "an unclosed comment": "<!--" + "c" * MIB,
    "an unclosed script": "<script>" + "s" * MIB,
    "endless keys": "<br>" + "<br>".join(f"K{n}: v" for n in range(5_000)),
    "text held for an unfinished &": ("a" * 65_530 + "&ab") * 16,
}


def test_hostile_html_is_contained_in_bounded_memory_and_time(tmp_path):
    pins = sample_pins(len(HOSTILE_PARTS) + 1)
    for pin in pins:
        pin.image_signature = None   # nothing to download: the child has no network
    blocks = [export_html([pin]).split("\n", 1)[1].removesuffix("\n</div>\n") for pin in pins]
    folder = tmp_path / "export"
    folder.mkdir()
    with open(folder / "pinterest.html", "w") as document:   # written a piece at a time: pytest holds no copy
        document.write('<div id="contents"><h1 id=h0st1>Pins</h1>\n' + blocks[0])
        for hostile, block in zip(HOSTILE_PARTS.values(), blocks[1:], strict=True):
            prefix, piece, times = hostile if isinstance(hostile, tuple) else (hostile, "", 0)
            document.write("\n" + prefix)
            for _ in range(times):
                document.write(piece)
            document.write("\n" + block)
        document.write("\n</div>\n")

    try:
        child = subprocess.run(
            [sys.executable, "-c", HOSTILE_UNDER_LIMIT.replace("HEADROOM", str(HEADROOM)), str(folder),
             str(tmp_path / "archive")],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    finally:
        (folder / "pinterest.html").unlink()   # 256 MB: not kept among pytest's last temporary folders

    assert child.returncode == 0, child.stderr[-3000:]
    outcome = json.loads(child.stdout)
    assert outcome["status"] == "ok", outcome
    # Every good Pin, before, between and after the hostile parts, is archived.
    assert sorted(outcome["posts"]) == sorted(pin.pin_id for pin in pins), outcome
    # What went over a bound is reported once, with where it is.
    errors = outcome["errors"]
    assert len(errors) <= len(HOSTILE_PARTS), errors
    assert all(re.search(r"block \d+ of Pins \(line \d+ of pinterest.html\)", e) for e in errors), errors
    assert any(f"longer than {MAX_LINE} characters" in e for e in errors), errors
    assert any("that does not end" in e for e in errors), errors
    assert any("more than 200 lines" in e for e in errors), errors


# --------------------------------------------------------------------------- the API's twin


def api_world(tmp_path: Path):
    """The fake Pinterest (pinapi's), an archive and tokens for it: the API and the export of
    one account, through one in-process transport that records the paths asked."""
    from archiver_connectors.pinterest.api import TOKEN_PATH, PinterestTokens
    from archiver_connectors.pinterest.sim.fake import FakePinterest, FakePinterestConfig

    fake = FakePinterest(FakePinterestConfig(posts=5, boards=2, followers=3, following=2), base_url=CDN)
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return fake.handle(request)

    transport = httpx.MockTransport(handle)
    secrets = open_secret_store("memory")
    secrets.set("pinterest", "main", "client_id", fake.config.client_id)
    secrets.set("pinterest", "main", "client_secret", fake.config.client_secret)
    with httpx.Client(transport=transport) as client:
        PinterestTokens(secrets, "main", CDN + TOKEN_PATH, client).store(fake.issue_tokens())
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None, accounts=[ACCOUNT]), secrets)
    return fake, ws, transport, asked


def archived(db) -> dict[str, list[tuple]]:
    return {"posts": rows(db, "SELECT post_id, title, text, link, visibility, created_at FROM posts ORDER BY post_id"),
            "boards": rows(db, "SELECT collection_id, title FROM collections WHERE kind='board' ORDER BY 1"),
            "pins on boards": rows(db, "SELECT collection_id, post_id FROM collection_posts "
                                       "WHERE collection_id IN (SELECT collection_id FROM collections WHERE kind='board') "
                                       "ORDER BY 1, 2"),
            "follows": rows(db, "SELECT kind, person_id FROM follows WHERE ended_at IS NULL ORDER BY 1, 2")}


@pytest.mark.parametrize("api_first", [True, False])
def test_the_export_and_the_api_fill_the_same_rows(tmp_path, api_first):
    """The export of the account the API archived: the same Pins, boards and people, never a
    second copy; whichever comes second downloads no picture the first one stored."""
    from archiver.sync.jobs import run_export
    from archiver_connectors.pinterest.sim.fake import write_matching_export

    fake, ws, transport, asked = api_world(tmp_path)
    export = write_matching_export(fake, tmp_path / "pinterest.zip")
    try:
        if api_first:
            assert run_export(ws, ACCOUNT, transport=transport)["status"] == "ok"
            before, count = archived(ws.archive.db), len(asked)
            result = run_import(ws, export, account=ACCOUNT, transport=transport)
            assert result["status"] == "ok", result
            assert archived(ws.archive.db) == before
            assert asked[count:] == []   # every picture was the API's already
        else:
            result = run_import(ws, export, account=ACCOUNT, transport=transport)
            assert result["status"] == "ok", result
            imported = archived(ws.archive.db)
            assert len(imported["posts"]) == len(fake.pins) and imported["follows"]
            count = len(asked)
            assert run_export(ws, ACCOUNT, transport=transport)["status"] == "ok"
            after = archived(ws.archive.db)
            assert [p[0] for p in after["posts"]] == [p[0] for p in imported["posts"]]
            assert after["boards"] == imported["boards"] and after["follows"] == imported["follows"]
            # The API fetched no original the import had stored (the same link, the same slot).
            assert not [path for path in asked[count:] if path.startswith("/originals/")
                        and any(pin.signatures[0] in path for pin in fake.pins.values())]
        assert one(ws.archive.db, "SELECT count(*) FROM posts") == len(fake.pins)
    finally:
        ws.archive.close()


def test_a_long_value_within_the_bounds_is_read_whole(tmp_path, ws, cdn):
    pins = sample_pins(2)
    pins[0].details = ("Tarts & pies, " * (MAX_LINE // 14))[:MAX_LINE - 20].strip()
    assert import_export(ws, wrapped(tmp_path, pins, "zip"), cdn)["status"] == "ok"
    assert one(ws.archive.db, "SELECT text FROM posts WHERE post_id=?", pins[0].pin_id) == pins[0].details


def test_a_document_cut_short_keeps_its_last_list_partial_and_says_so(tmp_path, ws, cdn):
    """A download that stopped between two blocks: what it holds is imported, the run names
    the file, and its last list loses no one (the people after the cut are still followers)."""
    fans = [f"fan_{n}" for n in range(10)]
    whole = write_export(tmp_path / "whole" / "pinterest.html", sample_pins(2),
                         extra_sections=[people_section("Followers", fans)])
    assert import_export(ws, whole, cdn)["status"] == "ok"
    text = whole.read_text()
    cut = tmp_path / "cut" / "pinterest.html"
    cut.parent.mkdir()
    cut.write_text(text[:text.index('<a href="https://www.pinterest.com/fan_6/')])

    result = import_export(ws, cut, cdn)

    assert result["status"] == "ok", result
    assert any(str(cut) in e["item"] and "stops before its end" in e["error"] for e in result["errors"]), result
    db = ws.archive.db
    assert sorted(r[0] for r in rows(db, "SELECT person_id FROM follows WHERE kind='followers' AND ended_at IS NULL")) \
        == fans
    assert rows(db, "SELECT complete FROM snapshots ORDER BY snapshot_id") == [(1,), (0,)]
    # The whole document, imported again later, is not cut short.
    assert not [e for e in import_export(ws, write_export(tmp_path / "again.html", sample_pins(3), extra_sections=[
        people_section("Followers", fans)]), cdn)["errors"] if "stops before" in e["error"]]


def test_an_unreadable_date_is_named_and_the_pin_kept(tmp_path, ws, cdn):
    pins = sample_pins(2)
    text = write_export(tmp_path / "pinterest.html", pins).read_text()
    start = text.index(f"/pin/{pins[1].pin_id}/")
    text = text[:start] + text[start:].replace("<br>Created at: 2024/05/02 18:22:31", "<br>Created at: yesterday", 1)
    (tmp_path / "pinterest.html").write_text(text)

    result = import_export(ws, tmp_path / "pinterest.html", cdn)

    assert result["status"] == "ok", result
    [error] = result["errors"]
    assert f"Pin {pins[1].pin_id} (block 2 of Pins, line 21 of pinterest.html)" == error["item"]
    assert "'yesterday' is no date" in error["error"]
    assert rows(ws.archive.db, "SELECT post_id, created_at FROM posts ORDER BY post_id") == [
        (pins[0].pin_id, "2024-05-01T18:22:31Z"), (pins[1].pin_id, None)]
