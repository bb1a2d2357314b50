"""Every importer, fed mutated exports (hypothesis), under a memory and a time limit.

The seeds are valid exports built by the platform fakes; tests/import_fuzz.py mutates
them (wrong types, nulls, missing keys, huge and odd strings, extra nesting, byte flips,
truncations, zip / tar structure) and imports each case in a separate worker process
through ``archiver.sync.jobs.run_import``. The property, for every case:

- the import succeeds, or fails with the tool's own error (ExportFileError, or a failed
  run whose message names the file) — never an unhandled exception or a traceback;
  every bad item it reports says which item and what is wrong;
- nothing is written outside the archive folder (not beside the export, not in the
  temporary folder, not in the working folder);
- when only items were changed (values inside one post, follower, comment, CSV row,
  repository record), the import succeeds and every other item is stored;
- the worker stays under its address-space limit (RLIMIT_AS) and answers each case within
  CASE_SECONDS.

In the suite this is a short, deterministic run (derandomize). ``make fuzz`` runs it long
with a random seed, which it prints: ``make fuzz FUZZ_SEED=<seed>`` runs that one again.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from import_fuzz import CASE_SECONDS, Case, Worker, cases, one_value_case, seed, unchanged_case

# Its module fixtures (a worker process, each importer's baseline) are built once: the
# module's tests run in one worker (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("import-fuzz")

LONG = os.environ.get("ARCHIVER_FUZZ") == "long"
FUZZ = settings(
    max_examples=int(os.environ.get("ARCHIVER_FUZZ_EXAMPLES", "1000")) if LONG else 8,
    derandomize=not LONG,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                           HealthCheck.function_scoped_fixture],
)
IMPORTERS = ["tiktok", "tiktok-old", "instagram", "instagram-old", "facebook", "threads-in-instagram", "mastodon", "youtube",
             "youtube-fr", "youtube-portability", "bluesky", "linkedin", "pinterest", "x"]


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    running = Worker(tmp_path_factory.mktemp("fuzz-worker"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def baselines(worker):
    """What each seed stores when imported unchanged (and proof that it imports)."""
    found = {}
    for name in IMPORTERS:
        result = worker.run(unchanged_case(name))
        assert result["status"] == "ok" and not result["logged_tracebacks"], result
        assert result["rows"]["posts"] > 0 and result["rows"]["people"] > 0, result
        found[name] = result["rows"]
    return found


def test_the_workers_limits_bind_and_a_new_worker_takes_over(worker, baselines):
    # What makes the property mean something: a case over the memory limit comes back as
    # "memory", one that hangs as "hang", and the next case is answered by a new worker
    # (about 3 s: the one worker start the suite's run adds).
    assert worker.run(Case("canary-memory", "x", "json", []))["status"] == "memory"
    worker.case_seconds = 1
    try:
        assert worker.run(Case("canary-hang", "x", "json", []))["status"] == "hang"
    finally:
        worker.case_seconds = CASE_SECONDS
    assert worker.run(unchanged_case("tiktok-old"))["rows"] == baselines["tiktok-old"]


def assert_import_holds(result: dict, case: Case, baseline: dict) -> None:
    """The fuzz property (see the module docstring)."""
    where = f"\ncase: {result.get('description')}\nresult: {_brief(result)}"
    assert result["status"] in ("ok", "failed", "refused", "skipped"), where
    assert not result["logged_tracebacks"], "an unhandled exception inside the run" + where
    assert result["outside"] == [], "written outside the archive" + where
    assert not result.get("private_found"), f"private data kept or said: {result.get('private_found')}" + where
    assert all(error.get("item") and error.get("error") for error in result.get("errors") or []), \
        "a reported bad item that does not say which, or what" + where
    if result["status"] in ("failed", "refused"):
        message = result["message"] or ""
        assert case.file_name.split(".")[0] in message, "the error does not name the file" + where
    # A value of a million repeated characters compresses more than 1000:1; above 1 MiB
    # that is the zip-bomb limit (ExportLimits.max_ratio), which refuses the entry.
    bomb_limit = "a zip bomb" in (result["message"] or "")
    if case.items_changed and not bomb_limit:
        assert result["status"] == "ok", f"{case.items_changed} bad item(s) failed the whole import" + where
        for table in ("posts", "people"):
            assert result["rows"][table] >= baseline[table] - case.items_changed, \
                f"more {table} than the bad items were lost" + where


def _brief(result: dict) -> dict:
    shown = {k: v for k, v in result.items() if k not in ("description", "errors")}
    shown["errors"] = (result.get("errors") or [])[:3]
    return shown


@pytest.mark.parametrize("importer", IMPORTERS)
def test_a_mutated_export_imports_or_fails_cleanly(importer, worker, baselines):
    @FUZZ
    @given(case=cases(importer))
    def property_holds(case: Case) -> None:
        assert_import_holds(worker.run(case), case, baselines[importer])

    property_holds()


# --------------------------------------------------------------------------- what the fuzz found
# Each failed before its fix (input | before | after in the report of issue 11.9).

TIKTOK_POST = ("Post", "Posts", "VideoList", 0)


def test_an_integer_beyond_64_bits_in_an_item_is_read(worker, baselines):
    # Valid JSON; ijson's C parser with use_float failed the whole file at it as
    # "malformed JSON ... the file may be truncated".
    case = one_value_case("tiktok", "user_data_tiktok.json", TIKTOK_POST + ("Sound",), 10**25)
    result = worker.run(case)
    assert_import_holds(result, case, baselines["tiktok"])
    assert result["rows"]["posts"] == baselines["tiktok"]["posts"]


def test_an_integer_beyond_64_bits_in_a_mastodon_outbox_is_read(worker, baselines):
    case = one_value_case("mastodon", "outbox.json", ("orderedItems", 0, "extra"), -(10**30))
    result = worker.run(case)
    assert_import_holds(result, case, baselines["mastodon"])
    assert result["rows"]["posts"] == baselines["mastodon"]["posts"]


def test_a_count_sqlite_cannot_hold_skips_that_item_only(worker, baselines):
    # "Likes": "1208925819614629174706176" made the writer raise OverflowError, which
    # failed the page, so the whole import ("the database refused the write").
    case = one_value_case("tiktok", "user_data_tiktok.json", TIKTOK_POST + ("Likes",), str(2**80))
    result = worker.run(case)
    assert_import_holds(result, case, baselines["tiktok"])
    assert [e for e in result["errors"] if "OverflowError" in e["error"]], result["errors"]


def test_mastodons_first_pass_over_the_outbox_reads_a_long_integer(tmp_path):
    # Pass 1 (the duplicated-orderedItems rule) read the outbox with use_float too: it took
    # the file for damaged and the rule was silently skipped.
    from archiver.sync.imports import open_export
    from archiver_connectors.mastodon.export import _outbox_copies

    (tmp_path / "outbox.json").write_bytes(b'{"orderedItems": [{"id": "a", "n": 100000000000000000000000}]}')
    with open_export(tmp_path / "outbox.json") as source:
        assert _outbox_copies(source, "outbox.json") == [(1, {"a"})]


def test_a_date_out_of_range_skips_that_follower_only(worker, baselines):
    # The date of one follower, 10**25 seconds: fromtimestamp raised OverflowError, which
    # no importer expects from iso_utc; the followers page, so the import, failed.
    case = one_value_case("tiktok", "user_data_tiktok.json", ("Your Activity", "Follower", "FansList", 0, "Date"),
                          10**25)
    assert_import_holds(worker.run(case), case, baselines["tiktok"])


@pytest.mark.parametrize("date", [[], {"a": None}, [None]])
def test_a_date_that_is_a_list_or_an_object_is_unreadable_not_a_crash(worker, baselines, date):
    # iso_utc called .strip() on it: AttributeError out of a TikTok comment's date, an
    # unhandled exception that failed the whole import with a traceback.
    case = one_value_case("tiktok-old", "user_data.json", ("Comment", "Comments", "CommentsList", 0, "Date"), date)
    assert_import_holds(worker.run(case), case, baselines["tiktok-old"])


def test_a_car_with_three_bytes_cut_out_names_its_damage(worker, baselines):
    # The cut leaves a block whose CID bytes are no CID: naming that damaged block in the
    # run's problems (cid_to_str) raised ValueError, an unhandled exception with a traceback.
    case = unchanged_case("bluesky")
    case.container_bytes, case.steps = [("cut", 933, 3)], ["the packed file's bytes: ('cut', 933, 3)"]
    assert_import_holds(worker.run(case), case, baselines["bluesky"])


@pytest.mark.parametrize("column", [0, 8])   # the row's Video ID, its title
def test_a_takeout_video_row_refused_leaves_its_file_reported_not_the_import_failed(worker, baselines, column):
    # The part holds videos.csv, so no other part can name the orphaned file: the run
    # failed, saying "their titles are in a videos.csv this export part does not hold".
    case = one_value_case("youtube", "Takeout/YouTube and YouTube Music/video metadata/videos.csv", (1, column), "")
    result = worker.run(case)
    assert_import_holds(result, case, baselines["youtube"])
    assert [e for e in result["errors"] if e["item"].startswith("video file ")], result["errors"]


def test_a_lone_surrogate_escaped_in_json_becomes_a_replacement_character(worker, baselines):
    # "\ud800" is a valid JSON escape but no character UTF-8 can hold: Mastodon's avatar
    # link (actor.json), looked up as an entry name in SQLite before any record was
    # written, failed the import with a UnicodeEncodeError traceback.
    case = one_value_case("mastodon", "actor.json", ("icon", "url"), "\ud800")
    result = worker.run(case)
    assert_import_holds(result, case, baselines["mastodon"])
    assert result["rows"]["posts"] == baselines["mastodon"]["posts"]


@pytest.mark.parametrize("row", [["not a channel id", "http://www.youtube.com/channel/x", "Bad"], ["only two", "cells"]])
def test_one_bad_row_of_a_subscription_list_in_another_language_skips_that_row_only(worker, baselines, row):
    # A header in a language the importer has no words for is read by its values (a UC…
    # id, a URL, a title); every one of the first 20 rows had to fit, so one bad row
    # made it skip the whole list ("the CSV header was not recognized").
    case = one_value_case("youtube-fr", "Takeout/YouTube et YouTube Music/abonnements/abonnements.csv", (1,), row)
    result = worker.run(case)
    assert_import_holds(result, case, baselines["youtube-fr"])
    assert not [e for e in result["errors"] if "not recognized" in e["error"]], result["errors"]


@pytest.mark.parametrize("value", ["\udfff lone", "\ude00\ud83d reversed"])
def test_a_lone_surrogate_in_a_streamed_list_loses_nothing(worker, baselines, value):
    # JavaScript writes a string cut between an emoji's halves as a lone surrogate escape
    # ("\udfff"); ijson refused it as malformed JSON and the whole outbox was lost. The
    # JSON reader now reads it as U+FFFD: every post is stored, none reported bad.
    case = one_value_case("mastodon", "outbox.json", ("orderedItems", 0, "object", "content"), value)
    assert b"\\ud" in dict((name, data) for name, data, _ in case.entries)["outbox.json"]  # written as an escape
    result = worker.run(case)
    assert_import_holds(result, case, baselines["mastodon"])
    assert result["status"] == "ok" and not result["errors"], _brief(result)
    assert result["rows"] == baselines["mastodon"], _brief(result)


def test_a_csv_field_past_the_csv_modules_limit_in_a_subscription_list_is_one_bad_row(worker, baselines):
    # Reading the rows of a list in an unknown language by their values let csv.Error
    # ("field larger than field limit (131072)") out: a traceback, the import failed.
    case = one_value_case("youtube-fr", "Takeout/YouTube et YouTube Music/abonnements/abonnements.csv", (1, 0),
                          "a" * 200_000)
    assert_import_holds(worker.run(case), case, baselines["youtube-fr"])
