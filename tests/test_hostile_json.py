"""Hostile JSON in export files: nesting deep enough to exhaust memory, NUL bytes,
invalid UTF-8, links standing for data files, truncated containers. Every importer reads
JSON through one core reader (archiver.sync.imports.JsonReader), so each case fails the file
(or the one entry) with its real reason: the file, the entry and the byte.

The memory test runs the real importers in a subprocess under RLIMIT_AS and a timeout:
before the reader, 100,000 nested "[" in a 200 KB file took the import to ~24 GB."""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from archiver.archive import Archive
from archiver.config import Config
from archiver.sync.imports import ExportFileError, open_export
from archiver.sync.jobs import Workspace, detect_platform, run_import
from archiver.secrets import open_secret_store

DEPTH_LIMIT = 512  # ExportLimits.max_json_depth, as README.md documents it
TOO_DEEP = f"nested more than {DEPTH_LIMIT} levels deep"
FOLLOWERS_1 = "connections/followers_and_following/followers_1.json"
ACTOR = json.dumps({"@context": "https://www.w3.org/ns/activitystreams", "type": "Person",
                    "id": "https://social.example/users/me", "preferredUsername": "me"}).encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def tiktok_json(hostile: str) -> bytes:
    """A TikTok user data file whose follower list holds ``hostile`` after one good entry."""
    return ('{"Profile": {"Profile Info": {"ProfileMap": {"userName": "me"}}}, "Activity": {"Follower List": '
            '{"FansList": [{"UserName": "fan1", "Date": "2023-01-01 10:00:00"}, ' + hostile + "]}}}").encode()


def mastodon_outbox(hostile: str) -> bytes:
    return ('{"@context": "https://www.w3.org/ns/activitystreams", "type": "OrderedCollection", '
            '"orderedItems": [' + hostile + "]}").encode()


def write_zip(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symbolic link, as Info-ZIP stores one
            archive.writestr(info, target)
    return path


def hostile_exports(folder: Path, hostile: str) -> dict[str, tuple[Path, str]]:
    """One export per JSON importer, each with ``hostile`` in its main JSON entry:
    label -> (file, entry)."""
    folder.mkdir(parents=True, exist_ok=True)
    bare = folder / "user_data_tiktok.json"
    bare.write_bytes(tiktok_json(hostile))
    return {
        "tiktok": (write_zip(folder / "tiktok.zip", {"user_data_tiktok.json": tiktok_json(hostile)}),
                   "user_data_tiktok.json"),
        "tiktok-bare-json": (bare, "user_data_tiktok.json"),
        "instagram": (write_zip(folder / "instagram.zip", {FOLLOWERS_1: f"[{hostile}]".encode()}), FOLLOWERS_1),
        "mastodon-outbox": (write_zip(folder / "mastodon.zip", {"outbox.json": mastodon_outbox(hostile),
                                                                "actor.json": ACTOR}), "outbox.json"),
        "mastodon-actor": (write_zip(folder / "mastodon-actor.zip", {
            "outbox.json": mastodon_outbox(""), "actor.json": ACTOR[:-1] + b', "x": ' + hostile.encode() + b"}"}),
            "actor.json"),
    }


# The importers, run in a child process whose address space is capped: the limit binds the
# import, not pytest. Prints one JSON line per export: its label and everything the import
# said (the run's message and item errors, or the ExportFileError).
IMPORT_UNDER_LIMIT = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    from pathlib import Path
    from archiver.archive import Archive
    from archiver.config import Config
    from archiver.sync.imports import ExportFileError
    from archiver.sync.jobs import Workspace, detect_platform, run_import
    from archiver.secrets import open_secret_store

    for label, path in json.loads(sys.argv[1]).items():
        ws = Workspace(Archive(Path(sys.argv[2]) / label), Config(path=None), open_secret_store("memory"))
        try:
            result = run_import(ws, Path(path))
            said = [result.get("message") or ""] + [e["error"] for e in result.get("errors", [])]
            print(json.dumps({"label": label, "status": result["status"], "said": said}), flush=True)
        except ExportFileError as error:
            print(json.dumps({"label": label, "status": "refused", "said": [str(error)]}), flush=True)
        finally:
            ws.archive.close()
""")


def test_100000_nested_arrays_fail_each_importer_in_bounded_memory(tmp_path):
    exports = hostile_exports(tmp_path / "exports", nested(100_000))  # ~200 KB of brackets
    limit = 1024 * 2**20  # a 1 GiB address space: before, the first file alone wanted ~24 GB
    child = subprocess.run(
        [sys.executable, "-c", IMPORT_UNDER_LIMIT.replace("ADDRESS_SPACE", str(limit)),
         json.dumps({label: str(path) for label, (path, _entry) in exports.items()}), str(tmp_path / "archives")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    assert child.returncode == 0, child.stderr[-3000:]
    outcomes = {line["label"]: line for line in map(json.loads, child.stdout.splitlines())}
    assert set(outcomes) == set(exports)
    for label, (path, entry) in exports.items():
        said = " ".join(outcomes[label]["said"])
        assert TOO_DEEP in said, (label, said)
        assert str(path) in said and repr(entry) in said, (label, said)
        assert "at byte " in said, (label, said)


def test_the_tiktok_import_fails_and_keeps_what_came_before(tmp_path):
    """The depth error fails the file, it is not 'one bad item' of a list read on past it."""
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        path = write_zip(tmp_path / "tiktok.zip", {"user_data_tiktok.json": tiktok_json(nested(3_000))})
        result = run_import(ws, path)
    finally:
        ws.archive.close()
    assert result["status"] == "failed"
    assert TOO_DEEP in result["message"] and "'user_data_tiktok.json'" in result["message"]


def test_nesting_at_the_limit_is_read_and_one_level_more_is_not(tmp_path):
    at_limit = tmp_path / "at-limit.json"
    at_limit.write_bytes(nested(DEPTH_LIMIT).encode())
    with open_export(at_limit) as source:
        assert source.load_json(at_limit.name) is not None
        assert len(list(source.parse_json(at_limit.name))) == 2 * DEPTH_LIMIT
    over = tmp_path / "over.json"
    over.write_bytes(b'{"a": "[[[[ brackets in a string do not count", "b": ' + nested(DEPTH_LIMIT).encode() + b"}")
    with open_export(over) as source:
        with pytest.raises(ExportFileError, match=f"{TOO_DEEP} \\(at byte {over.read_bytes().index(b'[[[[[') + DEPTH_LIMIT - 1}\\)"):
            list(source.iter_json(over.name, "b"))
        with pytest.raises(ExportFileError, match=TOO_DEEP):
            source.load_json(over.name)
    cut = tmp_path / "cut.json"  # ends inside a two-byte character: named, for load_json too
    cut.write_bytes('{"name": "caf'.encode() + "é".encode()[:1])
    with open_export(cut) as source:
        with pytest.raises(ExportFileError, match="ends in the middle of a UTF-8 character"):
            source.load_json(cut.name)
        with pytest.raises(ExportFileError, match="ends in the middle of a UTF-8 character"):
            list(source.parse_json(cut.name))


def test_reading_a_file_nested_far_past_the_limit_holds_little_memory(tmp_path):
    """In process, so measured with tracemalloc: 5,000 levels held ~70 MB before (ijson
    keeps a path per open level: memory grew with the depth squared); now reading stops
    at the limit, having held what 512 levels take."""
    import tracemalloc

    path = tmp_path / "deep.json"
    path.write_bytes(b'{"k": ' + nested(5_000).encode() + b"}")
    with open_export(path) as source:
        tracemalloc.start()
        try:
            with pytest.raises(ExportFileError, match=TOO_DEEP):
                list(source.iter_json(path.name, "k"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 16 * 2**20, peak


# -- the reader's scan, against a byte-at-a-time reference --------------------------------


def deepest(data: bytes) -> int | None:
    """The deepest nesting, read a byte at a time as a JSON lexer does; None when a
    backslash stands outside a string (a parser stops there: never JSON, even cut short)."""
    depth = most = 0
    in_string = escaped = False
    for byte in data:
        if escaped:
            escaped = False
        elif in_string:
            escaped, in_string = byte == 0x5C, byte != 0x22
        elif byte == 0x22:
            in_string = True
        elif byte == 0x5C:
            return None
        elif byte in b"[{":
            depth += 1
            most = max(most, depth)
        elif byte in b"]}":
            depth -= 1
    return most


class _Chunks(io.RawIOBase):
    """Hands the bytes out in the chunk sizes given: strings and escapes cut anywhere."""

    def __init__(self, data: bytes, sizes: list[int]):
        super().__init__()
        self._data, self._sizes, self._at = data, sizes or [1], 0

    def read(self, size: int = -1) -> bytes:
        step = self._sizes[self._at % len(self._sizes)] if self._at < len(self._data) else 0
        chunk = self._data[self._at:self._at + step]
        self._at += len(chunk)
        return chunk


class _Source:
    path = Path("export.zip")

    def __init__(self):
        self.read_problems: list[ExportFileError] = []


@settings(max_examples=300, deadline=None)
@given(data=st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b" "]), max_size=60).map(b"".join),
       sizes=st.lists(st.integers(1, 9), min_size=1, max_size=8), limit=st.integers(0, 8))
def test_the_reader_counts_nesting_outside_strings_whatever_the_chunks(data, sizes, limit):
    from archiver.sync.imports import JsonReader

    most = deepest(data)
    assume(most is not None)
    reader = JsonReader(_Chunks(data, sizes), _Source(), "e.json", max_depth=limit)
    try:
        while reader.read(64):
            pass
        refused = False
    except ExportFileError:
        refused = True
    assert refused == (most > limit)


def test_a_json_text_inside_a_csv_cell_is_checked_too():
    from archiver.sync.imports import ExportLimits, json_nesting_problem

    assert ExportLimits().max_json_depth == DEPTH_LIMIT
    assert json_nesting_problem('{"text": "[[[[[[[[[[["}') is None
    assert TOO_DEEP.removesuffix(" deep") in json_nesting_problem(nested(DEPTH_LIMIT + 1))


def test_a_youtube_comment_cell_of_nested_brackets_stays_plain_text():
    from archiver_connectors.youtube.takeout import comment_text

    cell = '{"takeoutSegments": ' + nested(50_000) + "}"
    assert comment_text(cell) == cell  # before: RecursionError out of json.loads, the import stopped


def test_a_bluesky_record_nested_too_deep_is_one_bad_item():
    import libipld

    from archiver_connectors.bluesky.sim.repo import build_repo_car
    from archiver_connectors.bluesky.repo import read_repo

    deep: object = "bottom"
    for _ in range(DEPTH_LIMIT + 10):  # decodable by libipld, too deep for the recursive mapping
        deep = [deep]
    good = {"$type": "app.bsky.feed.post", "text": "fine", "createdAt": "2024-01-01T00:00:00Z"}
    recursion_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # the fake's builder recurses too: it must make the file
    try:
        car = build_repo_car("did:plc:abc", {"app.bsky.feed.post/3kaaaaaaaaaa2": good,
                                             "app.bsky.feed.post/3kaaaaaaaaaa3": {**good, "deep": deep}},
                             rev="3kaaaaaaaaaa4")
    finally:
        sys.setrecursionlimit(recursion_limit)
    assert libipld.decode_dag_cbor(libipld.encode_dag_cbor(deep))  # the CBOR itself is valid
    repo = read_repo(io.BytesIO(car), name="repo.car")
    try:
        assert [record.rkey for record in repo.records] == ["3kaaaaaaaaaa2"]
        assert any(TOO_DEEP in why for _item, why in repo.problems), repo.problems
    finally:
        repo.close()


# -- the inbox: such a file goes to failed/, with the reason -------------------------------


def test_the_inbox_moves_a_too_deep_export_to_failed_with_the_reason(tmp_path):
    from archiver.config import InboxConfig
    from archiver.ops.inbox import InboxState, scan_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_zip(inbox / "TikTok_Data.zip", {"user_data_tiktok.json": tiktok_json(nested(3_000))})
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None, inbox=InboxConfig(inbox, 60, 0)),
                   open_secret_store("memory"))
    try:
        outcomes = scan_inbox(ws, InboxState(), now=1_000.0)
        again = scan_inbox(ws, InboxState(), now=2_000.0)
    finally:
        ws.archive.close()
    assert [o["status"] for o in outcomes] == ["failed"], outcomes
    assert (inbox / "failed" / "TikTok_Data.zip").exists() and not (inbox / "TikTok_Data.zip").exists()
    note = (inbox / "failed" / "TikTok_Data.zip.error.txt").read_text()
    assert TOO_DEEP in note and "'user_data_tiktok.json'" in note
    assert again == []  # not tried again


# -- 11.8: bad files get their real reason --------------------------------------------------


def test_invalid_utf8_is_named_with_the_byte_even_when_no_platform_recognizes_the_file(tmp_path):
    path = tmp_path / "export.json"  # a bare file: recognized by its content only
    data = tiktok_json('"x"').replace(b'"fan1"', b'"fan\xff1"')
    path.write_bytes(data)
    with open_export(path) as source, pytest.raises(ExportFileError) as caught:
        detect_platform(source)
    message, where = str(caught.value), data.index(b"\xff")
    assert "not an export file archiver knows" not in message
    assert f"not valid UTF-8 text at byte {where}" in message and "'export.json'" in message


def test_invalid_utf8_is_named_when_the_platform_is_given_too(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "export.json"
    data = tiktok_json('"x"').replace(b'"fan1"', b'"fan\xff1"')
    path.write_bytes(data)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        with pytest.raises(ExportFileError) as caught:
            run_import(ws, path, platform="tiktok")
    finally:
        ws.archive.close()
    message, where = str(caught.value), data.index(b"\xff")
    assert "does not look like" not in message
    assert f"not valid UTF-8 text at byte {where}" in message and "TikTok export" in message


def test_a_nul_byte_is_named_with_the_byte_even_when_no_platform_recognizes_the_file(tmp_path):
    path = tmp_path / "export.json"
    data = tiktok_json('"x"').replace(b'"Profile"', b'"Pro\x00file"')
    path.write_bytes(data)
    with open_export(path) as source, pytest.raises(ExportFileError) as caught:
        detect_platform(source)
    message, where = str(caught.value), data.index(b"\x00")
    assert "not an export file archiver knows" not in message
    assert f"NUL byte at byte {where}" in message


@pytest.mark.parametrize("importer", ["tiktok", "instagram", "mastodon-outbox", "mastodon-actor"])
@pytest.mark.parametrize("damage", ["utf-8", "nul"])
def test_every_json_importer_gives_the_same_reason(tmp_path, importer, damage):
    bad = '"fan\udcff"' if damage == "utf-8" else '"fan\x00"'
    raw = bad.encode("utf-8", "surrogateescape")
    exports = hostile_exports(tmp_path / "exports", "0")
    path, entry = exports[importer]
    # Rebuild the one export with the damaged value in its entry.
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files[entry] = files[entry].replace(b"0]", raw + b"]", 1) if importer != "mastodon-actor" else \
        files[entry].replace(b'"me"', raw, 1)
    write_zip(path, files)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        result = run_import(ws, path)
    finally:
        ws.archive.close()
    said = " ".join([result.get("message") or ""] + [e["error"] for e in result["errors"]])
    expected = "not valid UTF-8 text at byte " if damage == "utf-8" else "NUL byte at byte "
    assert expected in said and repr(entry) in said, said


def test_a_data_file_that_is_a_link_inside_a_zip_is_named_as_such(tmp_path):
    path = write_zip(tmp_path / "tiktok.zip", {"readme.txt": b"hello"},
                     links={"user_data_tiktok.json": "/etc/passwd"})
    with pytest.raises(ExportFileError) as caught:
        run_import(Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory")), path)
    message = str(caught.value)
    assert "not an export file archiver knows" not in message
    assert "'user_data_tiktok.json': it is a symbolic link" in message and "never follows a link" in message


def test_a_data_file_that_is_a_link_out_of_an_export_folder_is_named_as_such(tmp_path):
    folder = tmp_path / "TikTok_Data"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(tiktok_json('"x"'))
    os.symlink(elsewhere, folder / "user_data_tiktok.json")
    with pytest.raises(ExportFileError) as caught:
        run_import(Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory")), folder)
    message = str(caught.value)
    assert "not an export file archiver knows" not in message
    assert "'user_data_tiktok.json': it is a link that leads out of the export folder" in message


def test_a_truncated_zip_is_named_as_truncated(tmp_path):
    rng = random.Random(7)
    fans = ", ".join(json.dumps({"UserName": f"fan{rng.getrandbits(40)}", "Date": "2023-01-01 10:00:00"})
                     for _ in range(2000))
    whole = write_zip(tmp_path / "whole.zip", {"user_data_tiktok.json": tiktok_json(fans)})
    cut = tmp_path / "TikTok_Data.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])  # an interrupted download
    with pytest.raises(ExportFileError) as caught:
        open_export(cut)
    assert f"{cut}: it is a truncated zip" in str(caught.value)
    assert f"missing after {cut.stat().st_size} bytes" in str(caught.value)


@pytest.mark.parametrize("damage", ["utf-8", "nul"])
def test_a_youtube_takeout_csv_names_its_bad_bytes_and_imports_the_rest(tmp_path, damage):
    """CSV is read on past a bad byte (one bad byte is not a bad file), but it is named in
    the same words as in JSON, with the entry and the byte; before, it passed in silence."""
    from archiver_connectors.youtube.sim.takeout import build_takeout

    [part] = build_takeout(tmp_path / "takeout", videos=1, comments=2, subscriptions=3)
    with zipfile.ZipFile(part) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    [name] = [n for n in files if n.endswith("subscriptions.csv")]
    bad = b"\xff" if damage == "utf-8" else b"\x00"
    cut = files[name].index(b"\n") + 5  # inside the first subscription's row
    files[name] = files[name][:cut] + bad + files[name][cut:]
    write_zip(part, files)
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None), open_secret_store("memory"))
    try:
        result = run_import(ws, part)
        following = ws.archive.db.execute("SELECT count(*) FROM follows").fetchone()[0]
    finally:
        ws.archive.close()
    assert result["status"] == "ok", result
    assert following == 3  # every subscription still imported
    said = " ".join(e["error"] for e in result["errors"])
    expected = f"not valid UTF-8 text at byte {cut}" if damage == "utf-8" else f"NUL byte at byte {cut}"
    assert expected in said and repr(name) in said and str(part) in said, said


def test_a_utf16_json_file_is_named_as_utf16(tmp_path):
    path = tmp_path / "export.json"  # an editor re-saved it as UTF-16
    path.write_bytes(tiktok_json('"x"').decode().encode("utf-16-le"))
    with open_export(path) as source, pytest.raises(ExportFileError) as caught:
        detect_platform(source)
    assert "it is UTF-16" in str(caught.value) and "not an export file archiver knows" not in str(caught.value)


def test_a_link_dropped_into_the_inbox_goes_to_failed_named_as_a_link(tmp_path):
    """Before, a link was left alone in silence: never imported, never said why."""
    from archiver.config import InboxConfig
    from archiver.ops.inbox import InboxState, scan_inbox

    inbox, elsewhere = tmp_path / "inbox", tmp_path / "Downloads"
    inbox.mkdir()
    elsewhere.mkdir()
    real = write_zip(elsewhere / "TikTok_Data.zip", {"user_data_tiktok.json": tiktok_json('"x"')})
    os.symlink(real, inbox / "TikTok_Data.zip")
    ws = Workspace(Archive(tmp_path / "archive"), Config(path=None, inbox=InboxConfig(inbox, 60, 0)),
                   open_secret_store("memory"))
    try:
        [outcome] = scan_inbox(ws, InboxState(), now=1_000.0)
        assert scan_inbox(ws, InboxState(), now=2_000.0) == []
        imported = ws.archive.db.execute("SELECT count(*) FROM imports").fetchone()[0]
    finally:
        ws.archive.close()
    assert outcome["status"] == "failed" and "is a symbolic link" in outcome["message"]
    moved = inbox / "failed" / "TikTok_Data.zip"
    assert moved.is_symlink() and real.exists() and imported == 0  # the file it named is untouched
    assert "is a symbolic link" in (inbox / "failed" / "TikTok_Data.zip.error.txt").read_text()


# --------------------------------------------------------------------------- lone surrogate escapes
# JavaScript writes a string cut between the two halves of an emoji as a lone surrogate
# escape; ijson refuses it as malformed JSON, losing the whole list. JsonReader rewrites
# such an escape to "\uFFFD" (same length) and leaves everything else as it was.

def _read_in_chunks(data: bytes, sizes: list[int], read_size: int = 64) -> bytes:
    from archiver.sync.imports import JsonReader

    reader = JsonReader(_Chunks(data, sizes), _Source(), "e.json", max_depth=8)
    out = b""
    while chunk := reader.read(read_size):
        out += chunk
    return out


@pytest.mark.parametrize("written, mended", [
    (rb'["\ud800"]', rb'["\uFFFD"]'),                          # lone high
    (rb'["\udfff lone"]', rb'["\uFFFD lone"]'),                # lone low
    (rb'["\ud800x"]', rb'["\uFFFDx"]'),                        # high, then no escape
    (rb'["\uDBFF\u0041"]', rb'["\uFFFD\u0041"]'),              # high, then an escape that is no low half
    (rb'["\udc00\ud800"]', rb'["\uFFFD\uFFFD"]'),              # a reversed pair: both halves lone
    (rb'["\ud800\ud800\udc00"]', rb'["\uFFFD\ud800\udc00"]'),  # a lone high, then a pair
    (rb'["\ud83d\ude00\udfff"]', rb'["\ud83d\ude00\uFFFD"]'),  # a pair, then a lone low
    (rb'["\\\ud800"]', rb'["\\\uFFFD"]'),                      # an escaped backslash, then an escape
    (rb'["\\ud800\udc00"]', rb'["\\ud800\uFFFD"]'),            # "\\ud800" is text: the low half is lone
    (rb'["a\ud800b", {"\uDFFF": 1}]', rb'["a\uFFFDb", {"\uFFFD": 1}]'),
])
def test_a_lone_surrogate_escape_is_read_as_the_replacement_character(written, mended):
    assert _read_in_chunks(written, [64]) == mended
    assert json.loads(mended) is not None


@pytest.mark.parametrize("written, mended", [
    # valid pairs, in any case, stay as they are; the lone half after them does not
    (rb'["\ud83d\ude00 \uD83D\uDE00 \uD83d\uDe00 \udfff"]', rb'["\ud83d\ude00 \uD83D\uDE00 \uD83d\uDe00 \uFFFD"]'),
    # escaped backslashes, then text that only looks like an escape
    (rb'["\\udfff \\\\ud800 \\\\\\\\udc00 \udfff"]', rb'["\\udfff \\\\ud800 \\\\\\\\udc00 \uFFFD"]'),
    (rb'["\u00e9 \\ \" ud800 d800 \ud800"]', rb'["\u00e9 \\ \" ud800 d800 \uFFFD"]'),
])
def test_valid_pairs_and_text_that_only_looks_like_an_escape_are_left_alone(written, mended):
    assert _read_in_chunks(written, [64]) == mended


@pytest.mark.parametrize("written, mended", [
    (rb'["ab\ud800cd"]', rb'["ab\uFFFDcd"]'),
    (rb'["ab\udfffcd"]', rb'["ab\uFFFDcd"]'),
    (rb'["ab\ud83d\ude00\udfffcd"]', rb'["ab\ud83d\ude00\uFFFDcd"]'),
    (rb'["ab\udc00\ud800cd"]', rb'["ab\uFFFD\uFFFDcd"]'),
    (rb'["ab\\\\\ud800\udc00\\ud800\udc00"]', rb'["ab\\\\\ud800\udc00\\ud800\uFFFD"]'),
])
def test_an_escape_cut_by_a_chunk_boundary_at_every_position_is_mended_the_same(written, mended):
    for first in range(1, len(written)):
        for read_size in (1, 5, 64):
            assert _read_in_chunks(written, [first, len(written)], read_size) == mended, (first, read_size)


def _oracle_mended(body: bytes) -> bytes:
    """A JSON string's body as a parser reads it, left to right, lone halves replaced."""
    escapes = re.findall(rb"\\u[0-9a-fA-F]{4}|\\.|[^\\]", body, re.S)
    out, index = [], 0
    while index < len(escapes):
        piece, following = escapes[index], escapes[index + 1] if index + 1 < len(escapes) else b""
        code = int(piece[2:], 16) if len(piece) == 6 else None
        if code is not None and 0xD800 <= code <= 0xDBFF and len(following) == 6 and 0xDC00 <= int(following[2:], 16) <= 0xDFFF:
            out += [piece, following]
            index += 2
            continue
        out.append(b"\\uFFFD" if code is not None and 0xD800 <= code <= 0xDFFF else piece)
        index += 1
    return b"".join(out)


@settings(max_examples=400, deadline=None)
@given(body=st.lists(st.sampled_from([rb"\ud800", rb"\uDBFF", rb"\udc00", rb"\uDfFf", rb"\\", rb"\n", rb'\"', b"u",
                                      b"d800", rb"\u00e9", b"x"]), max_size=12).map(b"".join),
       sizes=st.lists(st.integers(1, 20), min_size=1, max_size=4), read_size=st.sampled_from([1, 3, 7, 64]))
def test_lone_surrogates_are_mended_as_a_parser_reads_escapes_whatever_the_chunks(body, sizes, read_size):
    mended = _read_in_chunks(b'["' + body + b'"]', sizes, read_size)
    assert mended == b'["' + _oracle_mended(body) + b'"]'
    json.loads(mended)
