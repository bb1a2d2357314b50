"""Importing the owned channels' exports: newsletter subscribers (Mailchimp, Substack,
Buttondown) and shop customers (Shopify, WooCommerce) become owned contacts with their
consent and dates; each [U] detail of docs/owned-channels.md is read both ways; a bad row is
reported by file and line and skipped; no address reaches a log, an error or a run note."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from archiver.sync.imports import ExportFileError, open_export
from archiver.sync.jobs import detect_platform, import_file
from archiver_connectors.buttondown.sim import write_export as buttondown_export
from archiver_connectors.mailchimp.sim import write_export as mailchimp_export
from archiver_connectors.owned.sim import FakeContact, fake_contacts
from archiver_connectors.shopify.sim import write_export as shopify_export
from archiver_connectors.substack.sim import write_export as substack_export
from archiver_connectors.woocommerce.sim import write_export as woocommerce_export

PEOPLE = [
    FakeContact("Ada@Example.com", "Ada", "Ng", "subscribed", "2024-01-05 10:00:00", consent=True, orders=2),
    FakeContact("bo@example.com", "Bo", "Okafor", "unsubscribed", "2024-02-01 09:00:00", "2025-03-01 08:00:00",
                consent=False, orders=0),
    FakeContact("chloe@example.com", "Chloé", "Pérez", "cleaned", "2024-03-01 09:00:00", "2025-04-01 08:00:00"),
    FakeContact("dev@example.com", "Dev", "Quist", "pending", "2024-04-01 09:00:00", consent=True, orders=1),
]


def contacts(archive_dir, account=None):
    db = sqlite3.connect(archive_dir / "archive.db")
    db.row_factory = sqlite3.Row
    where, params = ("WHERE account_id=?", [account]) if account else ("", [])
    rows = {r["contact_id"]: dict(r) for r in db.execute(f"SELECT * FROM owned_contacts {where}", params)}
    db.close()
    return rows


def run_row(archive_dir, run_id):
    db = sqlite3.connect(archive_dir / "archive.db")
    row = db.execute("SELECT status, errors, message, summary, counts FROM runs WHERE run_id=?", [run_id]).fetchone()
    db.close()
    return row


@pytest.mark.parametrize("layout", ["zip", "subscribed"])
def test_mailchimp_statuses_dates_and_consent(tmp_path, layout):
    export = mailchimp_export(tmp_path / f"audience.{'zip' if layout == 'zip' else 'csv'}", PEOPLE, layout=layout)
    result = import_file(tmp_path / "a", export)
    assert result["status"] == "ok" and result["platform"] == "mailchimp", result
    found = contacts(tmp_path / "a")
    ada = found["ada@example.com"]   # one key per address, whatever its case
    assert (ada["email"], ada["status"], ada["consent"], ada["channel"]) == ("Ada@Example.com", "subscribed", 1,
                                                                              "newsletter")
    assert (ada["display_name"], ada["joined_at"], ada["consent_at"]) == ("Ada Ng", "2024-01-05T10:00:00Z",
                                                                           "2024-01-05T10:00:00Z")
    assert found["dev@example.com"]["status"] == "subscribed"   # Mailchimp exports pending with the subscribed
    if layout == "zip":
        bo, chloe = found["bo@example.com"], found["chloe@example.com"]
        assert (bo["status"], bo["consent"], bo["left_at"]) == ("unsubscribed", 0, "2025-03-01T08:00:00Z")
        assert (chloe["status"], chloe["consent"], chloe["left_at"]) == ("cleaned", 0, "2025-04-01T08:00:00Z")
    else:
        assert set(found) == {"ada@example.com", "dev@example.com"}
    raw = json.loads(ada["raw"])
    (payload,) = raw.values()
    # Addresses, phone numbers, IP addresses and locations are never copied.
    assert payload.get("member rating") == "3" and "leid" in payload
    assert not any(k in payload for k in ("email address", "address", "phone number", "optin ip", "confirm ip"))


@pytest.mark.parametrize("plan", ["no", "yes"])
@pytest.mark.parametrize("layout", ["csv", "zip"])
def test_substack_subscribers_and_email_disabled(tmp_path, layout, plan):
    people = [*PEOPLE[:1], FakeContact("quiet@example.com", "Q", "R", "subscribed", "2024-05-01 00:00:00",
                                       consent=False)]
    export = substack_export(tmp_path / f"subs.{layout}", people, layout=layout, plan=plan)
    result = import_file(tmp_path / "a", export)
    assert result["status"] == "ok" and result["platform"] == "substack", result
    found = contacts(tmp_path / "a")
    assert found["ada@example.com"]["joined_at"] == "2024-01-05T10:00:00Z"
    assert (found["ada@example.com"]["consent"], found["quiet@example.com"]["consent"]) == (1, 0)
    assert {c["status"] for c in found.values()} == {"subscribed"}


@pytest.mark.parametrize("names", ["old", "new", "dashboard"])
def test_buttondown_types_in_every_spelling(tmp_path, names):
    export = buttondown_export(tmp_path / "subscribers.csv", PEOPLE, names=names)
    result = import_file(tmp_path / "a", export)
    assert result["status"] == "ok" and result["platform"] == "buttondown", result
    found = contacts(tmp_path / "a")
    assert {k: (v["status"], v["consent"]) for k, v in found.items()} == {
        "ada@example.com": ("subscribed", 1), "bo@example.com": ("unsubscribed", 0),
        "chloe@example.com": ("cleaned", 0), "dev@example.com": ("pending", None)}
    assert found["bo@example.com"]["left_at"] == "2025-03-01T08:00:00Z"
    assert found["ada@example.com"]["joined_at"] == "2024-01-05T10:00:00Z"


@pytest.mark.parametrize("layout, bom", [("new", "no"), ("old", "yes")])
def test_shopify_customers_and_marketing_consent(tmp_path, layout, bom):
    export = shopify_export(tmp_path / "customers_export.csv", PEOPLE, layout=layout, bom=bom)
    result = import_file(tmp_path / "a", export)
    assert result["status"] == "ok" and result["platform"] == "shopify", result
    found = contacts(tmp_path / "a")
    ada, bo = found["ada@example.com"], found["bo@example.com"]
    assert (ada["channel"], ada["status"], ada["consent"], ada["orders"]) == ("shop", "customer", 1, 2)
    assert bo["consent"] == 0 and ada["joined_at"] is None   # the file holds no dates
    assert ada["provider_id"] == ("7001000" if layout == "new" else None)   # the apostrophe dropped


@pytest.mark.parametrize("country", ["Country / Region", "Country"])
def test_woocommerce_customers_have_no_consent_on_record(tmp_path, country):
    export = woocommerce_export(tmp_path / "wc-customers-report-export.csv", PEOPLE, country=country)
    result = import_file(tmp_path / "a", export)
    assert result["status"] == "ok" and result["platform"] == "woocommerce", result
    found = contacts(tmp_path / "a")
    assert {c["consent"] for c in found.values()} == {None}
    assert found["ada@example.com"]["joined_at"] is None   # a guest: no "Sign Up"
    assert found["bo@example.com"]["joined_at"] == "2024-02-01T09:00:00Z"
    assert found["bo@example.com"]["display_name"] == "Bo Okafor"


def test_a_bad_row_is_reported_by_file_and_line_and_skipped_without_its_address(tmp_path, caplog):
    good = shopify_export(tmp_path / "good.csv", PEOPLE[:2]).read_text(encoding="utf-8").splitlines()
    header, rows = good[0], good[1:]
    broken = [
        header, rows[0],
        rows[1].replace("bo@example.com", "bo-at-example.com"),          # line 3: no address
        rows[1].replace(",no,", ",perhaps,", 1).replace("bo@", "bo2@"),  # line 4: consent neither yes nor no
        '"secret@example.com","only, two fields"',                      # line 5: wrong width
        "", rows[1].replace("bo@", "bo3@"),                              # a blank line, then a good row
    ]
    path = tmp_path / "customers.csv"
    path.write_text("\n".join(broken) + "\n", encoding="utf-8")
    with caplog.at_level(logging.DEBUG):
        result = import_file(tmp_path / "a", path)
    assert result["status"] == "ok", result
    assert set(contacts(tmp_path / "a")) == {"ada@example.com", "bo3@example.com"}
    errors = {e["item"]: e["error"] for e in result["errors"]}
    assert set(errors) == {"customers.csv, line 3", "customers.csv, line 4", "customers.csv, line 5"}, errors
    assert "not one" in errors["customers.csv, line 3"] and "neither yes nor no" in errors["customers.csv, line 4"]
    assert "2 fields where the header has 20" in errors["customers.csv, line 5"]
    stored = " ".join(str(v) for v in run_row(tmp_path / "a", result["run_id"]))
    for said in (caplog.text, json.dumps(result), stored):
        assert "@example.com" not in said and "bo-at-example" not in said


def test_a_huge_count_or_an_address_that_is_not_utf8_is_one_bad_row(tmp_path):
    """A spreadsheet's "1e999" orders, or a Latin-1 file's "josé@…" (read as "jos\ufffd@…": an
    address nobody can write to), is reported and skipped; the next row is still imported."""
    people = [FakeContact("ada@example.com", "Ada", "Ng", "subscribed", "2024-01-05 10:00:00", consent=True,
                          orders=3),
              FakeContact("jose@example.com", "José", "Ng", "subscribed", "2024-01-05 10:00:00", consent=True,
                          orders=1),
              FakeContact("bo@example.com", "Bo", "Ng", "subscribed", "2024-01-05 10:00:00", consent=True, orders=2)]
    lines = shopify_export(tmp_path / "s.csv", people).read_bytes().splitlines()
    lines[1] = lines[1].replace(b",3,", b",1e999,", 1)
    lines[2] = lines[2].replace(b"jose@", b"jos\xe9@")
    path = tmp_path / "customers.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = import_file(tmp_path / "a", path)
    assert result["status"] == "ok", result
    assert set(contacts(tmp_path / "a")) == {"bo@example.com"}
    errors = {e["item"]: e["error"] for e in result["errors"]}
    assert "is not a number" in errors["customers.csv, line 2"], errors
    assert "not valid UTF-8" in errors["customers.csv, line 3"], errors
    assert "contacts new: 1" in (result["message"] or "") or result["counts"].get("contacts_new") == 1, result


def test_a_bad_date_names_its_column_and_bad_bytes_are_one_report(tmp_path):
    lines = buttondown_export(tmp_path / "b.csv", PEOPLE[:2]).read_bytes().split(b"\r\n")
    lines[1] = lines[1].replace(b"2024-01-05T10:00:00Z", b"last tuesday")
    lines[2] = lines[2].replace(b"Okafor", b"Ok\xe4for").replace(b"bo@", b"b\xf6@")
    path = tmp_path / "subscribers.csv"
    path.write_bytes(b"\r\n".join(lines))
    result = import_file(tmp_path / "a", path)
    errors = {e["item"]: e["error"] for e in result["errors"]}
    assert "creation_date is not a date" in errors["subscribers.csv, line 2"], errors
    assert "last tuesday" not in errors["subscribers.csv, line 2"]   # a slipped column may hold an address
    assert "not valid UTF-8" in errors["subscribers.csv"], errors
    # The row with the bad byte: an address nobody can write to is not stored.
    assert "not valid UTF-8" in errors["subscribers.csv, line 3"], errors
    assert contacts(tmp_path / "a") == {}


def test_utf16_with_bom_reads_like_utf8(tmp_path):
    text = woocommerce_export(tmp_path / "w.csv", PEOPLE).read_text(encoding="utf-8")
    path = tmp_path / "customers-utf16.csv"
    path.write_bytes(text.encode("utf-16"))
    assert import_file(tmp_path / "a", path)["status"] == "ok"
    assert contacts(tmp_path / "a")["chloe@example.com"]["display_name"] == "Chloé Pérez"


def test_a_newer_export_changes_status_and_keeps_the_old_one_an_older_one_only_fills(tmp_path):
    import os

    def export(name, people, stamp):
        path = buttondown_export(tmp_path / name, people)
        os.utime(path, (stamp, stamp))
        return path

    older = export("older.csv", [FakeContact("ada@example.com", "Ada", "Ng", "cleaned", "2023-01-01 00:00:00")],
                   1_700_000_000)                                        # 2023-11-14
    first = export("first.csv", [PEOPLE[0], PEOPLE[3]], 1_730_000_000)   # 2024-10-27
    later = [FakeContact("Ada@Example.com", "Ada", "Ng", "unsubscribed", "2024-01-05 10:00:00"),
             FakeContact("dev@example.com", "Dev", "Quist", "subscribed", "2024-04-01 09:00:00")]
    second = export("second.csv", later, 1_760_000_000)                  # 2025-10-09
    import_file(tmp_path / "a", first)
    import_file(tmp_path / "a", second)
    found = contacts(tmp_path / "a")
    assert (found["ada@example.com"]["status"], found["ada@example.com"]["consent"]) == ("unsubscribed", 0)
    assert found["ada@example.com"]["left_at"] == "2025-10-09T08:53:20Z"   # no date given: by the export's time
    assert (found["dev@example.com"]["status"], found["dev@example.com"]["consent"]) == ("subscribed", 1)
    import_file(tmp_path / "a", older)    # older than what the archive holds: changes no status
    ada = contacts(tmp_path / "a")["ada@example.com"]
    assert (ada["status"], ada["joined_at"], ada["as_of"]) == ("unsubscribed", "2024-01-05T10:00:00Z",
                                                               "2025-10-09T08:53:20Z")
    third = export("third.csv", [FakeContact("ada@example.com", "Ada", "Ng", "subscribed", "2025-11-01 00:00:00")],
                   1_770_000_000)
    import_file(tmp_path / "a", third)    # back again: reachable, each earlier status kept as a version
    ada = contacts(tmp_path / "a")["ada@example.com"]
    assert (ada["status"], ada["consent"], ada["left_at"]) == ("subscribed", 1, None)
    db = sqlite3.connect(tmp_path / "a" / "archive.db")
    assert db.execute("SELECT status, left_at FROM owned_contact_versions WHERE contact_id='ada@example.com' "
                      "ORDER BY replaced_at").fetchall() == [("subscribed", None),
                                                          ("unsubscribed", "2025-10-09T08:53:20Z")]
    db.close()


def test_each_provider_recognizes_its_own_file_only(tmp_path):
    people = fake_contacts(6)
    files = {
        "mailchimp": mailchimp_export(tmp_path / "m.zip", people),
        "substack": substack_export(tmp_path / "s.csv", people),
        "buttondown": buttondown_export(tmp_path / "b.csv", people),
        "shopify": shopify_export(tmp_path / "sh.csv", people),
        "woocommerce": woocommerce_export(tmp_path / "w.csv", people),
    }
    for platform, path in files.items():
        with open_export(path) as source:
            assert detect_platform(source) == platform
    prose = tmp_path / "notes.csv"
    prose.write_text("email,name\nx@example.com,X\n", encoding="utf-8")   # a CSV, but nobody's export
    with open_export(prose) as source, pytest.raises(ExportFileError, match="not an export file archiver knows"):
        detect_platform(source)


def test_the_simulator_writes_an_export_the_cli_imports(tmp_path, monkeypatch, capsys):
    from archiver.cli.main import main

    out = tmp_path / "audience.zip"
    with pytest.raises(SystemExit) as ended:
        main(["simulate", "mailchimp", "--out", str(out), "--contacts", "5"], standalone_mode=True)
    assert ended.value.code in (0, None) and f"wrote {out}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as ended:
        main(["import", str(out), "--archive", str(tmp_path / "a")], standalone_mode=True)
    said = capsys.readouterr()
    assert ended.value.code in (0, None) and "contacts new: 5" in said.out, said
    assert "@example.com" not in said.out + said.err
    (tmp_path / "a" / "config.toml").write_text('[accounts.main]\nplatform = "mailchimp"\n', encoding="utf-8")
    with pytest.raises(SystemExit) as ended:
        main(["export", "--platform", "mailchimp", "--archive", str(tmp_path / "a")], standalone_mode=True)
    said = capsys.readouterr()
    assert "archived from its CSV export" in said.out + said.err, said


def test_a_file_a_spreadsheet_saved_with_semicolons_reads_the_same(tmp_path):
    import csv as csv_module

    rows = list(csv_module.reader(shopify_export(tmp_path / "s.csv", PEOPLE).read_text(encoding="utf-8").splitlines()))
    path = tmp_path / "customers_export.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        csv_module.writer(out, delimiter=";").writerows(rows)
    assert import_file(tmp_path / "a", path)["platform"] == "shopify"
    assert contacts(tmp_path / "a")["ada@example.com"]["orders"] == 2


HOSTILE_CHILD = r"""
import json, resource, sys
import archiver.sync.jobs
from archiver.connector import installed_connectors
for cls in installed_connectors().values():
    cls.detect_export
with open("/proc/self/status") as status:
    idle = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (idle + 256 * 2**20, idle + 256 * 2**20))
from archiver.sync.imports import ExportFileError
from archiver.sync.jobs import import_file
results = {}
for path in sys.argv[2:]:
    try:
        result = import_file(sys.argv[1], path)
        results[path] = [result["status"], len(result["errors"]), result.get("platform")]
    except ExportFileError as error:
        results[path] = ["refused", str(error)[:200], None]
print(json.dumps(results))
"""


def test_hostile_csv_files_import_or_fail_cleanly_in_bounded_memory(tmp_path):
    """Under a memory limit (the child's idle size + 256 MB): a quote never closed over 8 MB,
    one field of 8 MB, a header of 100,000 columns, NUL bytes. Each imports (its bad rows
    reported) or is refused with a message; nothing crashes or grows without bound."""
    import subprocess
    import sys

    header = "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Total Spent,Total Orders\n"
    good = "1,A,B,a@example.com,yes,1.00,1\n"
    files = {
        "unclosed.csv": header + good + '2,"never closed,' + "x" * (8 * 2**20) + "\n",
        "big-field.csv": header + good + "3,A,B,b@example.com,yes,1.00," + "9" * (8 * 2**20) + "\n",
        "wide.csv": "Email," + ",".join(f"c{i}" for i in range(100_000)) + "\n" + good,
        "nul.csv": header + good + "4,A\x00,B,c@example.com,yes,1.00,1\n",
    }
    paths = []
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    done = subprocess.run([sys.executable, "-c", HOSTILE_CHILD, str(tmp_path / "a"), *paths], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    results = json.loads(done.stdout)
    by_name = {path.rsplit("/", 1)[-1]: value for path, value in results.items()}
    assert by_name["unclosed.csv"][0] == "ok" and by_name["unclosed.csv"][1] >= 1
    assert by_name["big-field.csv"][0] == "ok" and by_name["big-field.csv"][1] >= 1
    assert by_name["nul.csv"][0] == "ok" and by_name["nul.csv"][1] >= 1
    assert by_name["wide.csv"][0] == "refused"   # nobody's export
    assert set(contacts(tmp_path / "a")) == {"a@example.com", "c@example.com"}
