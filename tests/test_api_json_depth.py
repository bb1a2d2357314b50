"""An item of a platform's API answer nested past the JSON depth limit (the exports' own,
ExportLimits.max_json_depth) is one bad item: reported by its id, kept as an id without its
payload, and the rest of its page written. Before, storing it as JSON again recursed past
Python's limit and the whole page failed (RecursionError), every run. Through the stateful
fake TikTok, in process (httpx.MockTransport: no network), under a timeout."""

from __future__ import annotations

import json

import pytest

from archiver.sync.imports import ExportLimits
from archiver_connectors.tiktok.sim.fake import FakeTikTokConfig
from tiktok_sync_harness import TikTokHarness, ticking_clock


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


def nested(depth: int):
    value: object = "deep"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [600, 900])   # past the limit (512), below json.loads' own (~1,000)
def test_one_api_item_nested_too_deep_is_skipped_and_the_rest_of_its_page_written(tmp_path, depth):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=25, followers=3, following=2, seed=11))
    hostile = h.fake.videos[3]
    hostile["embed_link"] = {"text": nested(depth)}

    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert h.post_ids() == h.fake_ids() - {str(hostile["id"])}, "every other video is archived"
    [error] = [e for e in result["errors"] if str(hostile["id"]) in e["item"]]
    assert error["item"] == f"videos item {hostile['id']}"
    assert f"JSON nested more than {ExportLimits.max_json_depth} levels deep" in error["error"]
    [row] = h.rows("SELECT item_id, error, raw FROM unmapped_items")
    assert row["item_id"] == str(hostile["id"]) and "nested more than" in row["error"]
    assert json.loads(row["raw"]) == {"not kept": f"JSON nested more than {ExportLimits.max_json_depth} levels deep"}

    # Listed though not archived: a full listing marks nothing deleted; the next run reports it again.
    again = h.run(full=True)
    assert again["status"] == "ok", again
    assert h.value("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == 0
    assert any(str(hostile["id"]) in e["item"] for e in again["errors"])


def test_an_item_at_the_limit_is_archived_whole(tmp_path):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=5, followers=1, following=1, seed=3))
    item = h.fake.videos[1]
    # The video object is a level, its field another: the whole item nests exactly to the limit.
    item["embed_link"] = {"text": nested(ExportLimits.max_json_depth - 2)}
    result = h.run(full=True)
    assert result["status"] == "ok" and result["errors"] == [], result
    assert str(item["id"]) in h.post_ids()


@pytest.mark.timeout(60)
def test_an_api_item_with_an_object_where_text_belongs_is_one_bad_item(tmp_path):
    """A caption that is an object, not text: SQLite refuses to bind it before the statement
    runs. That is the item's fault, not the page's: it is reported, the rest is written
    (before, the page failed as "the database refused the write", every run)."""
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=25, followers=3, following=2, seed=11))
    hostile = h.fake.videos[3]
    hostile["video_description"] = {"text": "an object, not text"}
    result = h.run(full=True)
    assert result["status"] == "ok", result
    assert h.post_ids() == h.fake_ids() - {str(hostile["id"])}
    assert any("binding parameter" in e["error"] for e in result["errors"]), result["errors"]


@pytest.mark.timeout(60)
def test_an_api_answer_nested_past_what_python_can_parse_fails_the_run_saying_so(tmp_path):
    """Past ~1,000 levels not even the answer can be parsed (json.loads raises
    RecursionError), so no item of it can be told apart: the run fails naming the request
    and the depth, not with a RecursionError traceback, and is not retried."""
    import httpx

    from tiktok_sync_harness import LIST_PATH

    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=5, followers=1, following=1, seed=3))
    body = b'{"data": {"videos": [' + b"[" * 5000 + b"]" * 5000 + b'], "has_more": false}, "error": {"code": "ok"}}'
    h.faults.append(lambda request: httpx.Response(200, headers={"Content-Type": "application/json"}, content=body)
                    if request.url.path == LIST_PATH else None)
    result = h.run(full=True)
    assert result["status"] == "failed", result
    assert result["message"] == (f"POST {LIST_PATH}: HTTP 200 with an answer that cannot be read: "
                                 f"JSON nested more than {ExportLimits.max_json_depth} levels deep"), result["message"]
    assert len(h.sent(LIST_PATH)) == 1, "not retried: the same answer would come again"
