"""Any record nested past the JSON depth limit (ExportLimits.max_json_depth), whatever the
connector built it from, is kept without its payload and reported by its id; the rest of
its page is written. Items of a listing were covered in listing.map_items
(test_api_json_depth.py); comments, the people who wrote them and the members of a follower
list are built outside it, and before, one of them nested 600 levels deep failed its whole
page (RecursionError while storing the payload again as JSON), every run.

Through the stateful fake Mastodon instance, in process (httpx.MockTransport: no network);
the hostile instance adds a deeply nested field to one reply, its author, the owner's
profile or one follower. (A Bluesky reply is an item of a listing of comments: map_items.)"""

from __future__ import annotations

import json

import httpx
import pytest

from archiver.sync.imports import ExportLimits
from archiver_connectors.mastodon.sim.fake import FakeMastodonConfig
from test_mastodon_api import Harness, key, own_ids, ticking_writer_clock  # noqa: F401 - the fixture is used

LIMIT = ExportLimits.max_json_depth
TOO_DEEP = f"JSON nested more than {LIMIT} levels deep"


DEEP = "@@nested@@"


def adding(h, path_part: str, change, depth: int) -> None:
    """The instance answers as the fake does, with ``change`` applied to the parsed answer;
    where ``change`` put DEEP, the bytes sent nest ``depth`` arrays (written out by hand, as
    a hostile server would: json.dumps itself recurses a frame a level)."""
    def fault(request: httpx.Request):
        if path_part not in request.url.path:
            return None
        answer = h.fake.handle(request)
        if answer.status_code != 200:
            return answer
        body = answer.json()
        change(body)
        text = json.dumps(body).replace(json.dumps(DEEP), "[" * depth + '"deep"' + "]" * depth)
        return httpx.Response(200, headers=dict(answer.headers), content=text.encode())
    h.faults.append(fault)


def other_replies(h: Harness) -> list[dict]:
    return [s for s in h.fake.statuses.values() if s["account_id"] != "1091" and s["in_reply_to_id"]]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["comment", "author"])
@pytest.mark.parametrize("depth", [600, 900])   # past the limit (512), below json.loads' own (~1,000)
def test_a_reply_nested_too_deep_is_kept_without_its_payload_and_the_rest_written(tmp_path, depth, where):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=6, followers=3, following=2, seed=7))
    hostile = other_replies(h)[0]

    def deepen(body):
        for status in body.get("descendants", []):
            if status["id"] == hostile["id"]:
                target = status if where == "comment" else status["account"]
                target["card"] = {"history": DEEP}
    adding(h, "/context", deepen, depth)

    result = h.run()
    assert result["status"] == "ok", result
    comments = {c["comment_id"]: c for c in h.rows("SELECT comment_id, author_id, text, raw FROM comments")}
    assert {key(s["id"]) for s in other_replies(h)} <= set(comments), "every reply is archived, this one too"
    if where == "comment":
        row = comments[key(hostile["id"])]
        assert json.loads(row["raw"]) == {"api": {"not kept": TOO_DEEP}}
        assert row["text"], "its text is kept"
        named = key(hostile["id"])
    else:
        [person] = h.rows("SELECT person_id, raw FROM people WHERE person_id=?", comments[key(hostile["id"])]["author_id"])
        assert json.loads(person["raw"]) == {"api": {"not kept": TOO_DEEP}}
        named = person["person_id"]
    reports = [e for e in result["errors"] if named in e["item"]]
    assert reports and TOO_DEEP in reports[0]["error"], result["errors"]
    # Only this reply (whose payload holds its author's) and its author are reported.
    assert all(TOO_DEEP in e["error"] for e in result["errors"]), result["errors"]
    others = {c: row for c, row in comments.items() if c != key(hostile["id"])}
    assert all("not kept" not in row["raw"] for row in others.values())

    # The next run (a full one: the thread is read again) meets it again and says so again.
    again = h.run(full=True)
    assert again["status"] == "ok", again
    assert any(named in e["item"] and TOO_DEEP in e["error"] for e in again["errors"]), again["errors"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [600, 900])
def test_a_follower_nested_too_deep_does_not_cost_the_list(tmp_path, depth):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=2, followers=30, following=2, seed=5))

    def deepen(body):
        if body:
            body[1]["emojis"] = [{"shortcode": "x", "tags": DEEP}]
    adding(h, "/followers", deepen, depth)

    result = h.run()
    assert result["status"] == "ok", result
    [snap] = h.rows("SELECT member_count, complete FROM snapshots WHERE kind='followers'")
    assert snap == {"member_count": 30, "complete": 1}



@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [600, 900])
def test_the_owners_profile_nested_too_deep_is_kept_without_its_payload(tmp_path, depth):
    h = Harness(tmp_path, FakeMastodonConfig(statuses=3, followers=2, following=2, seed=5))

    def deepen(body):
        body["emojis"] = [{"shortcode": "x", "tags": DEEP}]
    adding(h, "/verify_credentials", deepen, depth)

    result = h.run()
    assert result["status"] == "ok", result
    [account] = h.rows("SELECT username, raw FROM accounts")
    assert account["username"] == "alice", "the profile is kept"
    assert json.loads(account["raw"]) == {"api": {"not kept": TOO_DEEP}}
    assert [e["item"] for e in result["errors"]] == ["profile 1091"], result["errors"]
    assert {r["post_id"] for r in h.rows("SELECT post_id FROM posts")} == own_ids(h.fake), "the rest is written"
