"""archiver.views.audience on a real SQLite archive: top fans, churn, links, exports, and the CLI.

The archive is filled through the real writer (ArchiveWriter.write_snapshot /
write_comment / write_person), as the sync runner and importers fill it.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from archiver.views import audience
from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter
from archiver.records import Comment, Membership, Person, Snapshot

NOW = "2024-06-30T12:00:00Z"
EXPORT = "export:" + "ab" * 32
LATER_EXPORT = "export:" + "cd" * 32


def writer(archive, platform="tiktok", source="api", now=NOW, account=None):
    return ArchiveWriter(archive.db, platform=platform, account_id=account or f"{platform}:main", source=source,
                         now=now)


def person(pid, handle=None, name=None, url=None, avatar=None, bio=None, links=None):
    return Person(native_id=pid, handle=handle or pid, display_name=name, url=url, avatar_url=avatar, bio=bio,
                  links=links)


def snap(archive, platform, taken, members, *, complete=True, source="api", kind="followers"):
    with archive.writing():
        return writer(archive, platform, source=source).write_snapshot(
            Snapshot(kind, taken, [Membership(m if isinstance(m, Person) else person(m)) for m in members],
                     complete=complete))


def comment(archive, platform, cid, author, created_at, *, by_owner=False, post="p1"):
    with archive.writing():
        writer(archive, platform).write_comment(
            Comment(native_id=cid, text=f"comment {cid}", created_at=created_at, post_native_id=post,
                    author=author, by_owner=by_owner))


# -- engagement score and top fans -------------------------------------------------------------


def test_score_halves_every_90_days_and_top_fans_rank_by_it(archive):
    ann, bob = person("1", "ann", "Ann"), person("2", "bob", "Bob")
    comment(archive, "tiktok", "c1", ann, NOW)                      # weight 1
    comment(archive, "tiktok", "c2", ann, "2024-04-01T12:00:00Z")   # 90 days: 0.5
    comment(archive, "tiktok", "c3", bob, NOW)
    comment(archive, "tiktok", "c4", bob, "2023-06-30T12:00:00Z")   # a year: 0.5 ** (366/90)
    comment(archive, "tiktok", "mine", person("me"), NOW, by_owner=True)  # the owner's own: not a fan

    fans = audience.top_fans(archive.db, now=NOW)
    assert [f["person_key"] for f in fans] == ["tiktok:1", "tiktok:2"]
    assert fans[0]["score"] == pytest.approx(1.5)
    assert fans[1]["score"] == pytest.approx(1 + 0.5 ** (366 / 90))
    assert fans[0] | {"score": None} == {
        "person_key": "tiktok:1", "platforms": ["tiktok:1"], "handle": "ann", "display_name": "Ann", "url": None,
        "avatar_url": None, "comment_count": 2, "last_interaction": NOW, "score": None}
    # --days counts only recent comments; limit cuts.
    recent = audience.top_fans(archive.db, days=30, now=NOW)
    assert {f["person_key"]: f["comment_count"] for f in recent} == {"tiktok:1": 1, "tiktok:2": 1}
    assert len(audience.top_fans(archive.db, limit=1, now=NOW)) == 1
    assert audience.top_fans(archive.db, platform="instagram", now=NOW) == []


def test_linked_identities_are_one_fan(archive):
    comment(archive, "tiktok", "t1", person("tt-ann", "ann"), NOW)
    comment(archive, "instagram", "i1", person("178", "ann.photos", "Ann"), NOW)
    comment(archive, "instagram", "i2", person("178", "ann.photos", "Ann"), "2024-04-01T12:00:00Z")
    comment(archive, "instagram", "i3", person("999", "zed"), NOW)
    comment(archive, "instagram", "i4", person("999", "zed"), NOW)
    assert audience.top_fans(archive.db, now=NOW)[0]["person_key"] == "instagram:999"

    audience.link(archive.db, "tiktok:tt-ann", "instagram:178")
    fans = audience.top_fans(archive.db, now=NOW)
    assert fans[0]["person_key"] == "instagram:178"  # the smallest identity of the group
    assert fans[0]["platforms"] == ["instagram:178", "tiktok:tt-ann"]
    assert fans[0]["comment_count"] == 3 and fans[0]["score"] == pytest.approx(2.5)
    assert len(fans) == 2


def test_engagement_score_sql_is_usable_alone(archive):
    comment(archive, "tiktok", "c1", person("1"), "2024-04-01T12:00:00Z")
    sql = (f"SELECT {audience.engagement_score_sql('c.created_at', ':now')} FROM comments c "
           "WHERE by_owner = 0 GROUP BY platform, author_id")
    assert archive.db.execute(sql, {"now": NOW}).fetchone()[0] == pytest.approx(0.5)


# -- churn ----------------------------------------------------------------------------------------


def test_churn_per_day_and_lost_followers_by_name(archive):
    snap(archive, "tiktok", "2024-06-01T00:00:00Z", ["ann", "bob", "cat"])          # baseline: no events
    snap(archive, "tiktok", "2024-06-10T00:00:00Z", ["ann", "bob", "dan", "eve"])   # cat lost, dan+eve new
    snap(archive, "tiktok", "2024-06-20T00:00:00Z", ["ann", "dan", "eve"], complete=False)  # partial: nobody lost
    snap(archive, "instagram", "2024-06-01T00:00:00Z", [person("1", "ig_ann", "Ann")])
    snap(archive, "instagram", "2024-06-25T00:00:00Z", [])                          # ig_ann lost
    snap(archive, "tiktok", "2024-03-01T00:00:00Z", ["bob"], source=EXPORT)         # old export: months earlier

    db = archive.db
    assert audience.churn(db, days=30, now=NOW) == [
        # The March list is now the first: ann and cat, not in it, were new on June 1.
        {"day": "2024-06-01", "platform": "tiktok", "new": 2, "lost": 0},
        {"day": "2024-06-10", "platform": "tiktok", "new": 2, "lost": 1},
        {"day": "2024-06-25", "platform": "instagram", "new": 0, "lost": 1},
    ]
    assert audience.churn(db, platform="instagram", days=30, now=NOW) == [
        {"day": "2024-06-25", "platform": "instagram", "new": 0, "lost": 1}]
    assert audience.churn(db, days=3, now=NOW) == []
    # The same lists applied in time order give the same history.
    time_ordered = Archive(archive.folder.parent / "time-ordered")
    for platform, taken, members, complete, source in [
        ("tiktok", "2024-03-01T00:00:00Z", ["bob"], True, EXPORT),
        ("tiktok", "2024-06-01T00:00:00Z", ["ann", "bob", "cat"], True, "api"),
        ("instagram", "2024-06-01T00:00:00Z", [person("1", "ig_ann", "Ann")], True, "api"),
        ("tiktok", "2024-06-10T00:00:00Z", ["ann", "bob", "dan", "eve"], True, "api"),
        ("tiktok", "2024-06-20T00:00:00Z", ["ann", "dan", "eve"], False, "api"),
        ("instagram", "2024-06-25T00:00:00Z", [], True, "api"),
    ]:
        snap(time_ordered, platform, taken, members, complete=complete, source=source)
    history = "SELECT account_id, person_id, started_at, last_seen_at, ended_at FROM follows ORDER BY 1, 2, 3"
    events = "SELECT account_id, person_id, event, at FROM audience_events ORDER BY 1, 2, 3, 4"
    assert time_ordered.db.execute(history).fetchall() == db.execute(history).fetchall()
    assert time_ordered.db.execute(events).fetchall() == db.execute(events).fetchall()
    time_ordered.close()
    lost = audience.lost_followers(db, days=30, now=NOW)
    assert [(l["at"], l["platform"], l["person_id"], l["handle"], l["display_name"]) for l in lost] == [
        ("2024-06-25T00:00:00Z", "instagram", "1", "ig_ann", "Ann"),
        ("2024-06-10T00:00:00Z", "tiktok", "cat", "cat", None),
    ]
    # The old export made bob a follower since March (he was in the March list).
    assert db.execute("SELECT started_at FROM follows WHERE person_id='bob' AND ended_at IS NULL").fetchone()[0] \
        == "2024-03-01T00:00:00Z"


# -- links ----------------------------------------------------------------------------------------


def _people(archive, platform, *people):
    with archive.writing():
        w = writer(archive, platform)
        for p in people:
            w.write_person(p)


def test_suggestions_have_reasons_and_confidence_and_rejections_stick(archive):
    _people(archive, "tiktok",
            person("t-ann", "@Ann_Makes", "Ann"),
            person("t-bob", "bob", "Bob B", avatar="https://cdn.example/bob.jpg"),
            person("t-cat", "catdraws", "Cat", bio="art! also on insta: instagram.com/cat.draws/ and @elsewhere"))
    _people(archive, "instagram",
            person("i-ann", "ann_makes", "Ann M"),
            person("i-bob", "robert", "Bob B", avatar="https://cdn.example/bob.jpg"),
            person("i-cat", "cat.draws", "Cat", url="https://www.instagram.com/cat.draws"),
            person("i-dan", "dan", "Dan"))
    _people(archive, "tiktok", person("t-dan", "dan_other", "Dan"))

    assert audience.suggest_links(archive.db, now=NOW) == 3
    found = {(l["a"], l["b"]): l for l in audience.list_links(archive.db, "suggested")}
    assert set(found) == {("instagram:i-ann", "tiktok:t-ann"), ("instagram:i-bob", "tiktok:t-bob"),
                          ("instagram:i-cat", "tiktok:t-cat")}
    assert "same handle @ann_makes" in found[("instagram:i-ann", "tiktok:t-ann")]["reason"]
    assert "avatar" in found[("instagram:i-bob", "tiktok:t-bob")]["reason"]
    assert "links to" in found[("instagram:i-cat", "tiktok:t-cat")]["reason"]
    confidences = {pair: l["confidence"] for pair, l in found.items()}
    assert confidences[("instagram:i-cat", "tiktok:t-cat")] > confidences[("instagram:i-bob", "tiktok:t-bob")] \
        > confidences[("instagram:i-ann", "tiktok:t-ann")] > 0

    audience.unlink(archive.db, "tiktok:t-ann", "instagram:i-ann")  # either order names the pair
    audience.link(archive.db, "instagram:i-cat", "tiktok:t-cat")
    assert audience.suggest_links(archive.db, now=NOW) == 1
    statuses = {(l["a"], l["b"]): l["status"] for l in audience.list_links(archive.db)}
    assert statuses == {("instagram:i-ann", "tiktok:t-ann"): "rejected", ("instagram:i-bob", "tiktok:t-bob"): "suggested",
                        ("instagram:i-cat", "tiktok:t-cat"): "confirmed"}


def test_link_arguments_are_checked(archive):
    _people(archive, "tiktok", person("t-ann"))
    with pytest.raises(audience.AudienceError, match=r"A: 'ann' is not an identity; expected platform:person_id"):
        audience.link(archive.db, "ann", "tiktok:t-ann")
    with pytest.raises(audience.AudienceError, match="B: no person instagram:404 in the archive"):
        audience.link(archive.db, "tiktok:t-ann", "instagram:404")
    with pytest.raises(audience.AudienceError, match="same identity"):
        audience.link(archive.db, "tiktok:t-ann", "tiktok:t-ann")


def test_bio_and_links_follow_the_merge_rules(archive):
    with archive.writing():
        writer(archive, "tiktok", source=EXPORT).write_person(person("x", bio="old bio", links=["https://a.example/x"]))
    with archive.writing():
        writer(archive, "tiktok", source="api").write_person(person("x", bio="new bio"))
    with archive.writing():
        writer(archive, "tiktok", source=LATER_EXPORT).write_person(person("x", bio="export bio", links=["https://b"]))
    row = archive.db.execute("SELECT bio, links FROM people WHERE person_id='x'").fetchone()
    assert tuple(row) == ("new bio", '["https://a.example/x"]')


# -- export ---------------------------------------------------------------------------------------


@pytest.fixture
def audience_archive(archive):
    snap(archive, "tiktok", "2024-05-01T00:00:00Z",
         [person("t1", "ann", "=HYPERLINK(\"http://evil\")", url="https://www.tiktok.com/@ann"),
          person("t2", "bob", "Bob, \"the\" builder", url="https://www.tiktok.com/@bob"),
          person("t3", "cat", "-Cat")])
    snap(archive, "tiktok", "2024-06-01T00:00:00Z", [Person("t1"), Person("t2")])  # cat lost
    snap(archive, "instagram", "2024-06-01T00:00:00Z",
         [person("178", "ann.ig", "Ann", url="https://instagram.com/ann.ig")])
    snap(archive, "instagram", "2024-06-01T00:00:00Z", [person("555", "idol")], kind="following")
    comment(archive, "instagram", "c1", person("178", "ann.ig", "Ann"), NOW)
    comment(archive, "tiktok", "c2", person("t9", "@only_comments", "+Zed"), "2024-04-01T12:00:00Z")
    audience.link(archive.db, "tiktok:t1", "instagram:178")
    return archive


def _csv(archive, **kwargs):
    out = io.StringIO(newline="")
    count = audience.export_people(archive.db, out, now=NOW, **kwargs)
    text = out.getvalue()
    return count, text, list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def test_csv_export_merges_people_and_neutralises_formulas(audience_archive):
    count, text, rows = _csv(audience_archive)
    assert count == len(rows) == 5  # ann (two identities), bob, cat, idol, zed
    assert list(rows[0]) == list(audience.EXPORT_COLUMNS)
    by_key = {r["person_key"]: r for r in rows}
    ann = by_key["instagram:178"]
    assert ann["handles"] == "instagram:@ann.ig; tiktok:@ann"
    assert ann["profile_urls"] == "https://instagram.com/ann.ig; https://www.tiktok.com/@ann"
    assert ann["display_name"] == "Ann"  # the first identity's (by key) that has one
    assert ann["follower_since"] == "2024-05-01T00:00:00Z"  # the earliest open follow, any platform
    assert (ann["comment_count"], ann["last_interaction"], float(ann["engagement_score"])) == ("1", NOW, 1.0)
    assert by_key["tiktok:t2"]["display_name"] == 'Bob, "the" builder'
    assert by_key["tiktok:t3"]["display_name"] == "'-Cat"
    assert by_key["tiktok:t3"]["lost_at"] == "2024-06-01T00:00:00Z" and by_key["tiktok:t3"]["follower_since"] == ""
    assert by_key["tiktok:t9"]["display_name"] == "'+Zed"
    assert by_key["tiktok:t9"]["handles"] == "tiktok:@only_comments"
    # No cell a spreadsheet would evaluate.
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    assert not text.startswith("\ufeff")
    assert _csv(audience_archive, bom=True)[1].startswith("\ufeffperson_key,")


@pytest.mark.parametrize("segment, keys", [
    ("followers", {"instagram:178", "tiktok:t2"}),
    ("following", {"instagram:555"}),
    ("commenters", {"instagram:178", "tiktok:t9"}),
    ("lost", {"tiktok:t3"}),
    ("top", {"instagram:178", "tiktok:t9"}),
])
def test_segments(audience_archive, segment, keys):
    assert {r["person_key"] for r in _csv(audience_archive, segment=segment)[2]} == keys


def test_connections_are_audience_and_a_lost_connection_is_lost(archive):
    """Mutual connections (list kind "friends": LinkedIn's connections, Facebook's friends)
    have their own segment and column; one who is gone is lost like a follower; an open
    invitation is neither."""
    li = "https://www.linkedin.com/in/"
    snap(archive, "linkedin", "2024-05-01T00:00:00Z",
         [person("ada", name="Ada", url=li + "ada"), person("bo", name="Bo", url=li + "bo")], kind="friends")
    snap(archive, "linkedin", "2024-06-01T00:00:00Z", [person("ada", name="Ada", url=li + "ada")], kind="friends")
    snap(archive, "linkedin", "2024-06-01T00:00:00Z", [person("cy", name="Cy", url=li + "cy")],
         kind="invitations_received")
    rows = {r["person_key"]: r for r in _csv(archive)[2]}
    assert rows["linkedin:ada"]["connected_since"] == "2024-05-01T00:00:00Z" and not rows["linkedin:ada"]["lost_at"]
    assert rows["linkedin:bo"]["lost_at"] == "2024-06-01T00:00:00Z" and not rows["linkedin:bo"]["connected_since"]
    assert (rows["linkedin:cy"]["connected_since"], rows["linkedin:cy"]["lost_at"]) == ("", "")
    assert [r["person_key"] for r in _csv(archive, segment="connections")[2]] == ["linkedin:ada"]
    assert [r["profile_urls"] for r in _csv(archive, segment="connections")[2]] == [li + "ada"]
    assert [r["person_key"] for r in _csv(archive, segment="lost")[2]] == ["linkedin:bo"]
    assert _csv(archive, segment="followers")[0] == 0
    assert _csv(archive, segment="connections", since="2024-05-02")[0] == 0


def test_platform_and_since_filters(audience_archive):
    assert {r["person_key"] for r in _csv(audience_archive, platform="instagram")[2]} == {
        "instagram:178", "instagram:555"}
    # Followers since June: only the Instagram identity's follow is that new, but Ann's
    # merged row counts her earliest follow (May), so nobody in June.
    assert _csv(audience_archive, segment="followers", since="2024-06-01")[0] == 0
    assert {r["person_key"] for r in _csv(audience_archive, segment="commenters", since="2024-06-01")[2]} == {
        "instagram:178"}
    with pytest.raises(audience.AudienceError, match="segment"):
        _csv(audience_archive, segment="fans")


def test_json_export_is_one_array(audience_archive):
    out = io.StringIO()
    assert audience.export_people(audience_archive.db, out, fmt="json", now=NOW) == 5
    data = json.loads(out.getvalue())
    ann = next(p for p in data if p["person_key"] == "instagram:178")
    assert ann["handles"] == ["instagram:@ann.ig", "tiktok:@ann"]
    assert ann["comment_count"] == 1
    empty = io.StringIO()
    assert audience.export_people(audience_archive.db, empty, fmt="json", segment="lost", platform="instagram") == 0
    assert json.loads(empty.getvalue()) == []


def _parse_vcards(text: str) -> list[dict]:
    """A small vCard 3.0 reader: CRLF lines, folded lines joined, properties by name."""
    assert "\r\n" in text
    unfolded = text.replace("\r\n ", "")
    cards, card = [], None
    for line in unfolded.split("\r\n"):
        if not line:
            continue
        name, _, value = line.partition(":")
        key = name.split(";", 1)[0]
        if key == "BEGIN":
            card = {}
        elif key == "END":
            cards.append(card)
            card = None
        else:
            card.setdefault(key, []).append(value)
    assert card is None
    return cards


def test_vcf_export_parses(audience_archive):
    out = io.StringIO()
    assert audience.export_people(audience_archive.db, out, fmt="vcf", now=NOW) == 5
    text = out.getvalue()
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    cards = _parse_vcards(text)
    assert len(cards) == 5 and all(c["VERSION"] == ["3.0"] for c in cards)
    ann = next(c for c in cards if c["UID"] == ["archiver-instagram:178"])
    assert ann["FN"] == ["Ann"]
    assert ann["NICKNAME"] == ["ann.ig,ann"]
    assert ann["URL"] == ["https://instagram.com/ann.ig", "https://www.tiktok.com/@ann"]
    bob = next(c for c in cards if c["UID"] == ["archiver-tiktok:t2"])
    assert bob["FN"] == ['Bob\\, "the" builder']


def test_vcf_urls_are_only_web_links(archive):
    """Contacts apps show a card's URL as a link: a profile URL someone wrote as `javascript:`
    (any case, after spaces or control characters), `data:` or `vbscript:` is left out."""
    hostile = ["javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "\x01javascript:alert(1)",
               "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)"]
    snap(archive, "tiktok", "2024-05-01T00:00:00Z",
         [person(f"h{n}", f"h{n}", url=url) for n, url in enumerate(hostile)]
         + [person("fine", "fine", url="https://www.tiktok.com/@fine")])
    out = io.StringIO()
    audience.export_people(archive.db, out, fmt="vcf", now=NOW)
    urls = [url for card in _parse_vcards(out.getvalue()) for url in card.get("URL", [])]
    assert urls == ["https://www.tiktok.com/@fine"]


def test_export_streams_from_a_cursor(audience_archive, monkeypatch):
    """Rows are written while the cursor is still being read: nothing calls fetchall, and
    the first row is out before the last identity is read."""
    from archiver.views.audience import _identity_rows

    seen_when_written = []
    reads = {"n": 0}

    def counting_rows(*args, **kwargs):
        for item in _identity_rows(*args, **kwargs):
            reads["n"] += 1
            yield item

    monkeypatch.setattr("archiver.views.audience._identity_rows", counting_rows)

    class Out(io.StringIO):
        def write(self, text):
            if text.lstrip("\"").startswith(("tiktok:", "instagram:")):   # text cells are quoted
                seen_when_written.append(reads["n"])
            return super().write(text)

    out = Out()
    audience.export_people(audience_archive.db, out, now=NOW)
    assert seen_when_written and seen_when_written[0] < reads["n"]


# -- the CLI ---------------------------------------------------------------------------------------


def _cli(*args):
    from archiver.cli.main import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_top_churn_links_export(audience_archive, tmp_path):
    folder = str(audience_archive.folder)
    audience_archive.close()
    result = _cli("audience", "top", "--archive", folder, "--json")
    assert result.exit_code == 0, result.output
    assert [f["person_key"] for f in json.loads(result.output)] == ["instagram:178", "tiktok:t9"]

    result = _cli("audience", "churn", "--archive", folder, "--days", "3650")
    assert result.exit_code == 0, result.output
    assert "2024-06-01  tiktok    0    1" in result.output
    assert "lost followers (1):" in result.output and "@cat" in result.output

    result = _cli("audience", "link", "--archive", folder, "instagram", "tiktok:t2")
    assert result.exit_code != 0
    assert "A: 'instagram' is not an identity; expected platform:person_id, e.g. instagram:17841400000" \
        in result.output
    result = _cli("audience", "unlink", "--archive", folder, "tiktok:t1", "instagram:178")
    assert result.exit_code == 0 and "unlinked" in result.output
    result = _cli("audience", "links", "--archive", folder, "--all")
    assert "rejected" in result.output

    out = tmp_path / "people.csv"
    result = _cli("audience", "export", "--archive", folder, "--segment", "followers", "--bom", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert {r["person_key"] for r in rows} == {"tiktok:t1", "tiktok:t2", "instagram:178"}  # unlinked now

    result = _cli("audience", "export", "--archive", folder, "--format", "json", "--segment", "lost")
    assert json.loads(result.stdout)[0]["person_key"] == "tiktok:t3"
    result = _cli("audience", "export", "--archive", folder, "--since", "yesterday")
    assert result.exit_code != 0 and "--since" in result.output
