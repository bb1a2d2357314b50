"""Opening official export files safely: hostile zips and tars, bombs, bad JSON, folders.

Every hostile file is built on the fly. Each test checks the error text (it must name the
file, and the entry when there is one) and that nothing appeared outside the archive
directory the test extracts into.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.sync.imports import ExportFileError, ExportLimits, extract_member, open_export

EXPORT_JSON = {
    "Video": {"Videos": {"VideoList": [{"Date": "2024-01-02 03:04:05", "Likes": "152", "Link": "x"}]}},
    "Activity": {"Follower List": {"FansList": [{"Date": "2024-01-01 00:00:00", "UserName": "ann"}]}},
}
EXPORT_FILES = {
    "TikTok/user_data_tiktok.json": json.dumps(EXPORT_JSON).encode(),
    "TikTok/media/cover.jpg": b"\xff\xd8\xff" + bytes(range(256)) * 4,
    "readme.txt": b"hello",
}
FIFTY_MB = 50 * 2**20


# -- helpers ---------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under root (links not followed) with its type and size."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            info = full.lstat()
            kind = "link" if stat.S_ISLNK(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else "file"
            found[full.relative_to(root).as_posix()] = (kind, 0 if kind == "dir" else info.st_size)
    return found


class Sandbox:
    """tmp_path split into inputs/ (hostile files), archive/ (the only place to write) and
    outside/ (a target that links in hostile files point at)."""

    def __init__(self, tmp_path: Path):
        self.root = tmp_path
        self.inputs = tmp_path / "inputs"
        self.archive = tmp_path / "archive"
        self.outside = tmp_path / "outside"
        for folder in (self.inputs, self.archive, self.outside):
            folder.mkdir()
        self._before: dict | None = None
        self._abs_existed = Path("/abs.txt").exists()

    def freeze(self) -> None:
        """Remember everything outside archive/ (call once the inputs are built)."""
        self._before = self._outside_archive()

    def _outside_archive(self) -> dict:
        return {name: info for name, info in snapshot(self.root).items() if not name.startswith("archive")}

    def assert_nothing_written_outside_archive(self) -> None:
        assert self._before is not None
        assert self._outside_archive() == self._before
        assert not (self.root / "evil.txt").exists()
        assert not self.archive.parent.joinpath("evil.txt").exists()
        if not self._abs_existed:
            assert not Path("/abs.txt").exists()
        # and nothing inside archive/ is a link someone could follow later
        assert all(kind != "link" for kind, _ in snapshot(self.archive).values())


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]], *, deflate: bool = True) -> Path:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def tar_file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, io.BytesIO | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        for info, data in members:
            archive.addfile(info, data)
    return path


def extract_all(source, dest: Path) -> list[Path]:
    return [extract_member(source, name, dest) for name in source.names()]


# -- not an export at all --------------------------------------------------------------


def test_missing_path_is_named_and_explained(box):
    missing = box.inputs / "TikTok_Data.zip"
    with pytest.raises(ExportFileError) as caught:
        open_export(missing)
    assert str(missing) in str(caught.value)
    assert "no such file" in str(caught.value)
    assert caught.value.path == missing


def test_zero_byte_file_says_download_again(box):
    empty = box.inputs / "empty.zip"
    empty.touch()
    with pytest.raises(ExportFileError) as caught:
        open_export(empty)
    assert str(empty) in str(caught.value)
    assert "empty" in str(caught.value) and "download" in str(caught.value)


def test_random_bytes_are_an_unknown_file_type(box):
    junk = box.inputs / "export.zip"  # the extension lies; the bytes are sniffed
    junk.write_bytes(bytes((i * 97 + 13) % 251 for i in range(4000)))
    with pytest.raises(ExportFileError) as caught:
        open_export(junk)
    assert str(junk) in str(caught.value)
    assert "unknown file type" in str(caught.value)


def test_saved_html_page_is_recognized(box):
    """A bare HTML document opens (Pinterest's export is one); a saved login page is then
    recognized by no connector, and said to be a web page."""
    from archiver.sync.jobs import detect_platform

    page = box.inputs / "download.zip"
    page.write_text("\n  <!DOCTYPE html><html><body>Log in</body></html>")
    with open_export(page) as source:
        assert source.kind == "html" and source.names() == ["download.zip"]
        with pytest.raises(ExportFileError, match="web page") as caught:
            detect_platform(source)
    assert str(page) in str(caught.value)


def test_a_peek_leaves_an_entry_not_read(box):
    path = make_zip(box.inputs / "export.zip", [("a.html", b"<h1>A</h1>"), ("b.json", b"[]")])
    with open_export(path) as source:
        assert source.peek("a.html", 4) == b"<h1>"
        assert source.not_read() == ["a.html", "b.json"]
        source.open("a.html").close()
        assert source.peek("a.html", 4) == b"<h1>" and source.not_read() == ["b.json"]


def test_truncated_zip_is_reported_as_damaged(box):
    whole = make_zip(box.inputs / "whole.zip", [("a.json", json.dumps(list(range(5000))).encode())])
    cut = box.inputs / "cut.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # an interrupted download
    with pytest.raises(ExportFileError, match="truncated zip") as caught:
        open_export(cut)
    assert str(cut) in str(caught.value)


def test_gzip_that_is_not_a_tar(box):
    single = box.inputs / "user_data.json.gz"
    single.write_bytes(gzip.compress(b'{"a": 1}'))
    with pytest.raises(ExportFileError, match="not a readable tar") as caught:
        open_export(single)
    assert str(single) in str(caught.value)


# -- path escapes and links ---------------------------------------------------------------


def test_zip_entries_that_escape_are_refused_and_nothing_lands_outside(box):
    hostile = make_zip(
        box.inputs / "hostile.zip",
        [
            ("../evil.txt", b"owned"),
            ("/abs.txt", b"owned"),
            ("C:/windows.txt", b"owned"),
            ("..\\backslash.txt", b"owned"),
            ("ok/./data.json", b'{"fine": true}'),
            ("good.txt", b"fine"),
        ],
    )
    assert "../evil.txt" in zipfile.ZipFile(hostile).namelist()  # the trap is really in the file
    assert "/abs.txt" in zipfile.ZipFile(hostile).namelist()
    box.freeze()

    with open_export(hostile) as source:
        assert source.names() == ["ok/data.json", "good.txt"]
        joined = "\n".join(source.warnings)
        for raw in ("../evil.txt", "/abs.txt", "C:/windows.txt", "..\\\\backslash.txt"):
            assert raw in joined
        assert all(str(hostile) in warning for warning in source.warnings)

        with pytest.raises(ExportFileError) as caught:
            source.open("../evil.txt")
        assert str(hostile) in str(caught.value) and "'../evil.txt'" in str(caught.value)
        assert "refused" in str(caught.value)

        with pytest.raises(ExportFileError, match="refused"):
            extract_member(source, "../evil.txt", box.archive)
        with pytest.raises(ExportFileError, match="refused"):
            extract_member(source, "/abs.txt", box.archive)

        written = extract_all(source, box.archive)
    assert written == [box.archive / "ok" / "data.json", box.archive / "good.txt"]
    assert (box.archive / "good.txt").read_bytes() == b"fine"
    box.assert_nothing_written_outside_archive()


def test_zip_symlink_entry_is_skipped(box):
    link = zipfile.ZipInfo("passwd")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    hostile = make_zip(box.inputs / "links.zip", [(link, b"/etc/passwd"), ("a.txt", b"a")])
    box.freeze()
    with open_export(hostile) as source:
        assert source.names() == ["a.txt"]
        assert any("passwd" in w and "symbolic link" in w for w in source.warnings)
        with pytest.raises(ExportFileError, match="symbolic link") as caught:
            source.open("passwd")
        assert str(hostile) in str(caught.value)
        extract_all(source, box.archive)
    assert sorted(snapshot(box.archive)) == ["a.txt"]
    box.assert_nothing_written_outside_archive()


def test_tar_links_devices_and_dotdot_are_skipped(box):
    def link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        return info, None

    device = tarfile.TarInfo("dev/zero")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 5
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    hostile = make_tar(
        box.inputs / "hostile.tar.gz",
        [
            link("passwd", "/etc/passwd", tarfile.SYMTYPE),
            link("hard", "/etc/passwd", tarfile.LNKTYPE),
            # the classic: a link to a folder outside, then a file "through" it
            link("d", str(box.outside), tarfile.SYMTYPE),
            tar_file_member("d/evil.txt", b"owned"),
            tar_file_member("../evil.txt", b"owned"),
            tar_file_member("/abs.txt", b"owned"),
            (device, None),
            (fifo, None),
            tar_file_member("./good.txt", b"fine"),
        ],
    )
    box.freeze()
    with open_export(hostile) as source:
        assert source.names() == ["d/evil.txt", "good.txt"]
        joined = "\n".join(source.warnings)
        assert "'passwd'" in joined and "/etc/passwd" in joined
        for raw in ("'hard'", "'d'", "'../evil.txt'", "'/abs.txt'", "'dev/zero'", "'pipe'"):
            assert raw in joined

        for name in ("passwd", "hard", "../evil.txt"):
            with pytest.raises(ExportFileError) as caught:
                source.open(name)
            assert str(hostile) in str(caught.value) and repr(name) in str(caught.value)

        extract_all(source, box.archive)
    # "d" was never created as a link, so d/evil.txt is a plain file inside the archive
    assert snapshot(box.archive) == {"d": ("dir", 0), "d/evil.txt": ("file", 5), "good.txt": ("file", 4)}
    assert list(box.outside.iterdir()) == []
    box.assert_nothing_written_outside_archive()


def test_extract_refuses_a_link_already_planted_in_the_destination(box):
    export = make_zip(box.inputs / "export.zip", [("d/evil.txt", b"owned"), ("d/sub/evil.txt", b"owned")])
    (box.archive / "d").symlink_to(box.outside, target_is_directory=True)
    with open_export(export) as source:
        with pytest.raises(ExportFileError, match="outside") as caught:
            extract_member(source, "d/evil.txt", box.archive)
        with pytest.raises(ExportFileError, match="outside"):
            extract_member(source, "d/sub/evil.txt", box.archive)  # not even the folder "sub"
    assert str(export) in str(caught.value) and "'d/evil.txt'" in str(caught.value)
    assert list(box.outside.iterdir()) == []


def test_extract_replaces_a_planted_file_link_instead_of_writing_through_it(box):
    export = make_zip(box.inputs / "export.zip", [("note.txt", b"new")])
    victim = box.outside / "victim.txt"
    victim.write_bytes(b"untouched")
    (box.archive / "note.txt").symlink_to(victim)
    with open_export(export) as source:
        written = extract_member(source, "note.txt", box.archive)
    assert not written.is_symlink() and written.read_bytes() == b"new"
    assert victim.read_bytes() == b"untouched"


@pytest.mark.filterwarnings("ignore:Duplicate name")  # duplicates are part of the fuzz
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.text(alphabet="ab/.\\:C\x00", min_size=1, max_size=12), min_size=1, max_size=6))
def test_any_entry_name_stays_inside_the_destination(tmp_path_factory, names):
    base = tmp_path_factory.mktemp("fuzz")
    dest = base / "archive"
    export = base / "fuzz.zip"
    with zipfile.ZipFile(export, "w") as archive:
        for index, name in enumerate(names):
            info = zipfile.ZipInfo(name)  # ZipInfo cuts a name at NUL, like real tools
            archive.writestr(info, f"{index}".encode())
    with open_export(export) as source:
        for name in source.names():
            try:
                written = extract_member(source, name, dest)
            except ExportFileError:
                continue  # e.g. "a" as a file and "a/b" below it: refused, not escaped
            assert written.resolve().is_relative_to(dest.resolve())
    for path in base.rglob("*"):
        assert path == export or path.resolve().is_relative_to(dest.resolve())


# -- bombs and limits ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def zeros_zip(tmp_path_factory) -> Path:
    """50 MB of zeros that deflate to about 50 KB."""
    return make_zip(tmp_path_factory.mktemp("bomb") / "bomb.zip", [("zeros.json", bytes(FIFTY_MB))])


def test_zip_bomb_over_the_entry_limit(zeros_zip, box):
    assert zeros_zip.stat().st_size < 200_000
    box.freeze()
    limits = ExportLimits(max_entry_bytes=10 * 2**20)
    with open_export(zeros_zip, limits) as source:
        assert source.names() == ["zeros.json"]
        assert any("max_entry_bytes" in w for w in source.warnings)  # said up front, too
        with pytest.raises(ExportFileError, match="max_entry_bytes") as caught:
            source.open("zeros.json")
        assert str(zeros_zip) in str(caught.value) and "'zeros.json'" in str(caught.value)
        with pytest.raises(ExportFileError):
            extract_member(source, "zeros.json", box.archive)
    assert snapshot(box.archive) == {}
    box.assert_nothing_written_outside_archive()


def test_zip_bomb_over_the_ratio(zeros_zip):
    with open_export(zeros_zip) as source:  # default limits: 50 MB fits, 1000:1 does not
        with pytest.raises(ExportFileError, match="expands .* times.*zip bomb") as caught:
            source.open("zeros.json")  # refused from its header, before any byte is inflated
    assert str(zeros_zip) in str(caught.value) and "max_ratio" in str(caught.value)


def test_zip_bomb_over_the_total(box):
    bomb = make_zip(box.inputs / "two.zip", [("a.bin", bytes(5 * 2**20)), ("b.bin", bytes(5 * 2**20))])
    with pytest.raises(ExportFileError, match="max_total_bytes") as caught:
        open_export(bomb, ExportLimits(max_total_bytes=8 * 2**20, max_ratio=10_000))
    assert str(bomb) in str(caught.value)


def test_tar_gz_bomb_is_refused_before_decompressing(box):
    bomb = box.inputs / "bomb.tar.gz"
    info = tarfile.TarInfo("zeros.json")
    info.size = FIFTY_MB
    with tarfile.open(bomb, "w:gz") as archive:
        archive.addfile(info, io.BytesIO(bytes(FIFTY_MB)))
    box.freeze()
    with pytest.raises(ExportFileError, match="zip bomb") as caught:
        open_export(bomb)
    assert str(bomb) in str(caught.value)
    with pytest.raises(ExportFileError, match="max_total_bytes"):
        open_export(bomb, ExportLimits(max_total_bytes=2**20))
    box.assert_nothing_written_outside_archive()


def test_too_many_entries(box):
    many = make_zip(box.inputs / "many.zip", [(f"f{i}.txt", b"x") for i in range(20)])
    with pytest.raises(ExportFileError, match="max_entries") as caught:
        open_export(many, ExportLimits(max_entries=10))
    assert str(many) in str(caught.value)


def test_actual_bytes_are_counted_not_only_declared_sizes(box):
    grows = box.inputs / "user_data.json"
    grows.write_text('{"a": "' + "x" * 100 + '"}')
    with open_export(grows) as source:
        with grows.open("a") as more:  # the file changes after its size was taken
            more.write(" " * 100_000)
        with pytest.raises(ExportFileError, match="more than its declared size") as caught:
            source.open("user_data.json").read()
    assert str(grows) in str(caught.value) and "'user_data.json'" in str(caught.value)


def test_bytes_read_count_against_the_total(box):
    export = make_zip(box.inputs / "export.zip", [("a.json", b"[" + b"1," * 499 + b"1]")])  # 1000 bytes
    with open_export(export, ExportLimits(max_total_bytes=1500)) as source:
        assert len(source.load_json("a.json")) == 500
        with pytest.raises(ExportFileError, match="max_total_bytes") as caught:
            source.load_json("a.json")
    assert str(export) in str(caught.value)


def test_corrupted_entry_is_reported_not_crashing(box):
    export = make_zip(box.inputs / "export.zip", [("a.txt", b"A" * 1000)], deflate=False)
    data = export.read_bytes()
    export.write_bytes(data.replace(b"A" * 1000, b"B" + b"A" * 999))
    with open_export(export) as source:
        with pytest.raises(ExportFileError, match="damaged") as caught:
            source.open("a.txt").read()
    assert str(export) in str(caught.value) and "'a.txt'" in str(caught.value)


# -- malformed JSON ------------------------------------------------------------------------


def test_truncated_json_in_a_zip_names_file_entry_and_position(box):
    export = make_zip(box.inputs / "export.zip", [("TikTok/user_data.json", b'{\n  "a": 1,\n  "b": [1, 2')])
    with open_export(export) as source:
        with pytest.raises(ExportFileError) as caught:
            source.load_json("TikTok/user_data.json")
        message = str(caught.value)
        assert str(export) in message and "'TikTok/user_data.json'" in message
        assert "line 3, column" in message and "truncated" in message

        with pytest.raises(ExportFileError) as streamed:
            list(source.iter_json("TikTok/user_data.json", "b.item"))
        assert str(export) in str(streamed.value) and "'TikTok/user_data.json'" in str(streamed.value)
        assert "malformed JSON" in str(streamed.value)


def test_malformed_bare_json_file(box):
    bad = box.inputs / "user_data_tiktok.json"
    bad.write_text('{"a": 1,, "b": 2}')
    with open_export(bad) as source:
        with pytest.raises(ExportFileError, match="line 1, column 9") as caught:
            source.load_json("user_data_tiktok.json")
    assert str(bad) in str(caught.value)


def test_missing_entry_says_what_to_do(box):
    export = make_zip(box.inputs / "export.zip", [("a.json", b"{}")])
    with open_export(export) as source:
        with pytest.raises(ExportFileError, match="no such entry") as caught:
            source.load_json("user_data.json")
    assert str(export) in str(caught.value) and "find()" in str(caught.value)


# -- folders ---------------------------------------------------------------------------------


def test_folder_walk_does_not_follow_links_out(box):
    folder = box.inputs / "TikTok_Data"
    (folder / "nested" / "deeper").mkdir(parents=True)
    (folder / "nested" / "deeper" / "user_data.json").write_text('{"ok": 1}')
    (box.outside / "secret.txt").write_text("secret")
    (folder / "secret_link.txt").symlink_to(box.outside / "secret.txt")
    (folder / "outside_dir").symlink_to(box.outside, target_is_directory=True)
    (folder / "inner_link.json").symlink_to(folder / "nested" / "deeper" / "user_data.json")
    os.mkfifo(folder / "pipe")
    box.freeze()

    with open_export(folder) as source:
        assert sorted(source.names()) == ["inner_link.json", "nested/deeper/user_data.json"]
        joined = "\n".join(source.warnings)
        assert "'secret_link.txt'" in joined and "'outside_dir'" in joined and "'pipe'" in joined
        assert source.find("USER_DATA*.JSON") == ["nested/deeper/user_data.json"]
        with pytest.raises(ExportFileError, match="leads out") as caught:
            source.open("secret_link.txt")
        assert str(folder) in str(caught.value)
        with pytest.raises(ExportFileError):
            source.open("pipe")  # would hang if it were opened
        assert source.load_json("inner_link.json") == {"ok": 1}
        extract_all(source, box.archive)
    assert "secret" not in {p.read_text() for p in box.archive.rglob("*") if p.is_file()}
    box.assert_nothing_written_outside_archive()


def test_folder_link_swapped_after_scan_is_refused(box):
    folder = box.inputs / "export"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    (box.outside / "secret.json").write_text('{"secret": 1}')
    with open_export(folder) as source:
        (folder / "a.json").unlink()
        (folder / "a.json").symlink_to(box.outside / "secret.json")
        with pytest.raises(ExportFileError, match="leads out"):
            source.load_json("a.json")


# -- the same export in every shape --------------------------------------------------------------


@pytest.fixture
def every_shape(box) -> dict[str, Path]:
    shapes = {}
    shapes["zip"] = make_zip(box.inputs / "export.zip", list(EXPORT_FILES.items()))
    shapes["tar.gz"] = make_tar(
        box.inputs / "export.tar.gz", [tar_file_member(n, d) for n, d in EXPORT_FILES.items()], "w:gz"
    )
    shapes["tar"] = make_tar(box.inputs / "export.tar", [tar_file_member(n, d) for n, d in EXPORT_FILES.items()], "w")
    folder = box.inputs / "extracted"
    for name, data in EXPORT_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    shapes["folder"] = folder
    return shapes


def test_every_shape_gives_the_same_names_and_json(every_shape):
    expected_videos = EXPORT_JSON["Video"]["Videos"]["VideoList"]
    for kind, path in every_shape.items():
        with open_export(path) as source:
            assert sorted(source.names()) == sorted(EXPORT_FILES), kind
            assert source.warnings == [], kind
            [name] = source.find("USER_DATA*.json")
            assert name == "TikTok/user_data_tiktok.json", kind
            assert source.load_json(name) == EXPORT_JSON, kind
            assert list(source.iter_json(name, "Video.Videos.VideoList.item")) == expected_videos, kind
            assert source.open("TikTok/media/cover.jpg").read() == EXPORT_FILES["TikTok/media/cover.jpg"], kind


def test_bare_json_file_with_bom(box):
    bare = box.inputs / "user_data_tiktok.json"
    bare.write_bytes(b"\xef\xbb\xbf\n  " + json.dumps(EXPORT_JSON).encode())
    with open_export(bare) as source:
        assert source.names() == ["user_data_tiktok.json"]
        assert source.find("user_data*.json") == ["user_data_tiktok.json"]
        assert source.load_json("user_data_tiktok.json") == EXPORT_JSON
        followers = list(source.iter_json("user_data_tiktok.json", "Activity.Follower List.FansList.item"))
        assert followers == EXPORT_JSON["Activity"]["Follower List"]["FansList"]


def test_iter_json_yields_plain_floats_that_can_be_stored_again(box):
    bare = box.inputs / "data.json"
    bare.write_text('{"items": [{"score": 1.5, "n": 2}]}')
    with open_export(bare) as source:
        items = list(source.iter_json("data.json", "items.item"))
    assert items == [{"score": 1.5, "n": 2}]
    json.dumps(items)  # a Decimal would raise here


def test_sha256_is_provenance_and_stable(every_shape, box):
    zip_path = every_shape["zip"]
    with open_export(zip_path) as source:
        assert source.sha256 == hashlib.sha256(zip_path.read_bytes()).hexdigest()

    folder = every_shape["folder"]
    with open_export(folder) as first, open_export(folder) as again:
        assert first.sha256 == again.sha256  # a re-import is recognized
    (folder / "readme.txt").write_bytes(b"jello")  # same size, different content
    with open_export(folder) as changed:
        assert changed.sha256 != first.sha256


def test_items_under_several_prefixes_come_in_one_pass_in_file_order(tmp_path):
    document = {"b": {"list": [{"n": 1, "deep": [[1.5], {"x": None}]}, "text", 2]},
                "a": {"list": [{"n": 3}]}, "other": {"list": [{"n": 99}]}}
    path = tmp_path / "data.json"
    path.write_text(json.dumps(document))
    with open_export(path) as source:
        items = list(source.iter_json_sections("data.json", ["a.list.item", "b.list.item"]))
        # The same items, with the same values, as one iter_json pass per prefix gives.
        assert items == ([("b.list.item", item) for item in source.iter_json("data.json", "b.list.item")]
                         + [("a.list.item", item) for item in source.iter_json("data.json", "a.list.item")])
        assert items[0] == ("b.list.item", {"n": 1, "deep": [[1.5], {"x": None}]})
        assert isinstance(items[0][1]["deep"][0][0], float)  # not ijson's Decimal

    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(document)[:40])
    with open_export(cut) as source, pytest.raises(ExportFileError, match="malformed JSON"):
        list(source.iter_json_sections("cut.json", ["a.list.item", "b.list.item"]))
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": {"list": [' + "[" * 5000 + "]" * 5000 + "]}}")
    with open_export(deep) as source, pytest.raises(ExportFileError, match="deep"):
        list(source.iter_json_sections("deep.json", ["a.list.item"]))


def test_entry_times_as_each_container_keeps_them(tmp_path):
    """modified_at: a zip's stamp (no zone: read as UTC), a tar member's and a file's
    modification time, and the lone file of a bare JSON export; None for no such entry."""
    import datetime as dt

    moment = 1_717_200_000                                    # 2024-06-01T00:00:00Z
    when = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
    zipped = make_zip(tmp_path / "e.zip", [(zipfile.ZipInfo("a/b.json", date_time=(2024, 6, 1, 0, 0, 0)), b"[]")])
    info, data = tar_file_member("a/b.json", b"[]")
    info.mtime = moment
    tarred = make_tar(tmp_path / "e.tar.gz", [(info, data)])
    folder = tmp_path / "folder"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "b.json").write_bytes(b"[]")
    os.utime(folder / "a" / "b.json", (moment, moment))
    for path in (zipped, tarred, folder):
        with open_export(path) as source:
            assert source.modified_at("a/b.json") == when, path
            assert source.modified_at("a/none.json") is None
    with open_export(folder / "a" / "b.json") as bare:
        assert bare.modified_at("b.json") == when
