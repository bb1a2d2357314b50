"""Alerts: decided from real runs, delivered to a REAL SMTP server and a REAL HTTP receiver
on 127.0.0.1, once per change of state.

Runs go through the real runner against the in-process fake TikTok (tiktok_sync_harness.py):
its switchboard makes the platform unreachable (connection refused), and revoke_all() makes
the account "gone" (authorization refused even after a refresh). The SMTP server is
aiosmtpd with STARTTLS required (a self-signed certificate made with the openssl command,
trusted through SSL_CERT_FILE) and a login checked against the password stored in the
secret store; the webhook receiver is http.server in a thread.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from archiver.ops import alerts
from archiver.config import AlertsConfig, NotifyConfig
from archiver.sync.jobs import run_import
from archiver.ops.status import account_status, render_status
from archiver_connectors.tiktok import TikTokConnector
from archiver_connectors.tiktok.sim.fake import FakeTikTokConfig
from tiktok_sync_harness import ACCOUNT_ID, TikTokHarness, ticking_clock

VIDEOS = 12
FOLLOWERS = 30
SMTP_USER = "me@example.org"
SMTP_PASSWORD = "smtp-pass-8f2k"


@pytest.fixture(autouse=True)
def ticking_writer_clock(monkeypatch):
    monkeypatch.setattr("archiver.archive.writer.now_utc", ticking_clock())


# --------------------------------------------------------------------------- receivers


class Webhook:
    """An HTTP server on 127.0.0.1 that keeps every POST body; ``status`` is what it answers."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if receiver.status < 300:
                    receiver.bodies.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                            "json": json.loads(body)})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    receiver = Webhook()
    yield receiver
    receiver.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tls_cert(tmp_path_factory, monkeypatch):
    """A self-signed certificate for 127.0.0.1, trusted by this process's default context."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True, timeout=30)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


class Mailbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[dict] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.envelopes.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                               "tls": session.ssl is not None})
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == (SMTP_USER, SMTP_PASSWORD))


@pytest.fixture
def smtp(tls_cert):
    """aiosmtpd on 127.0.0.1 that refuses mail before STARTTLS and logins before TLS."""
    from aiosmtpd.controller import Controller

    cert, key = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port(), tls_context=context,
                            require_starttls=True, authenticator=mailbox.authenticate, auth_required=True,
                            auth_require_tls=True)
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


# --------------------------------------------------------------------------- the account


def archived_account(tmp_path, *, notify: NotifyConfig, failed_runs: int = 3) -> TikTokHarness:
    """An account with a clean run and an imported export (so followers and comments are
    in the archive), with the given notifiers and the e-mail password in the secret store."""
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=VIDEOS, followers=FOLLOWERS, seed=7))
    h.ws.config.notify = notify
    h.ws.config.alerts = AlertsConfig(failed_runs=failed_runs, unreachable_hours=24, export_max_age_days=30)
    h.secrets.set("notify", "email", "password", SMTP_PASSWORD)
    assert h.run(full=True)["status"] == "ok"
    export = tmp_path / "TikTok_Data.zip"
    export.write_bytes(h.fake.export_zip(layout="new"))
    assert run_import(h.ws, export, transport=h.transport)["status"] == "ok"
    return h


def email_settings(smtp: Mailbox) -> dict:
    return {"host": "127.0.0.1", "port": smtp.port, "starttls": True, "username": SMTP_USER,
            "from": "archiver@example.org", "to": ["me@example.org"]}


def holds(h: TikTokHarness) -> dict:
    return {
        "posts": h.value("SELECT count(*) FROM posts WHERE account_id=?", ACCOUNT_ID),
        "followers": h.value("SELECT count(*) FROM follows WHERE account_id=? AND kind='followers' "
                             "AND ended_at IS NULL", ACCOUNT_ID),
        "comments": h.value("SELECT count(*) FROM comments WHERE account_id=?", ACCOUNT_ID),
    }


def unreachable(request):
    raise httpx.ConnectError("simulated: connection refused", request=request)


def run_and_alert(h: TikTokHarness, now: dt.datetime | None = None) -> tuple[dict, list[dict]]:
    result = h.run()
    return result, alerts.after_run(h.ws, h.account, result, now=now)


def kinds(notices: list[dict]) -> list[tuple[str, str]]:
    return [(n["kind"], n["notice"]) for n in notices]


# --------------------------------------------------------------------------- failing


def test_failing_runs_send_one_mail_and_one_post_then_one_recovered(tmp_path, smtp, webhook):
    h = archived_account(tmp_path, notify=NotifyConfig(webhook_url=webhook.url, email=email_settings(smtp)))
    expected = holds(h)
    assert expected["posts"] == VIDEOS and expected["followers"] > 0 and expected["comments"] > 0
    username = h.value("SELECT username FROM accounts WHERE account_id=?", ACCOUNT_ID)
    h.faults.append(unreachable)

    first, sent = run_and_alert(h)
    assert first["status"] == "failed" and first["failure_kind"] == "transport"
    assert h.last_run()["failure_kind"] == "transport"          # kept in the runs row too
    assert sent == []
    assert run_and_alert(h)[1] == []
    _, sent = run_and_alert(h)                                  # the third failure in a row
    assert kinds(sent) == [("failing", "opened")]
    for _ in range(2):                                          # more failures: nothing new
        assert run_and_alert(h)[1] == []
    assert alerts.periodic(h.ws) == []                          # not 24 h yet: not unreachable

    # Exactly one mail and one POST, with the documented content.
    assert len(smtp.messages) == 1 and len(webhook.bodies) == 1
    body = webhook.bodies[0]
    assert body["path"] == "/hook" and body["content_type"] == "application/json"
    notice = body["json"]
    for key in ("kind", "state", "account", "platform", "message", "opened_at", "archive"):
        assert key in notice
    assert (notice["kind"], notice["state"], notice["notice"]) == ("failing", "open", "opened")
    assert (notice["account"], notice["platform"], notice["username"]) == (ACCOUNT_ID, "tiktok", username)
    assert {k: notice["archive"][k] for k in expected} == expected
    assert notice["archive"]["complete_as_of"] == h.value(
        "SELECT max(ended_at) FROM runs WHERE status='ok' AND kind='export'")
    assert notice["details"]["failed_runs"] == 3 and notice["details"]["failure_kind"] == "transport"
    assert f"TikTok account @{username}: the last 3 runs failed" in notice["message"]
    assert (f"{expected['posts']} videos, {expected['followers']:,} followers, "
            f"{expected['comments']:,} comments") in notice["message"]

    mail = smtp.messages[0]
    assert smtp.envelopes[0]["tls"], "the mail was sent before STARTTLS"
    assert smtp.logins == [(SMTP_USER, SMTP_PASSWORD)]      # the password from the secret store
    assert mail["To"] == "me@example.org" and mail["From"] == "archiver@example.org"
    assert "failing" in mail["Subject"] and ACCOUNT_ID in mail["Subject"]
    text = mail.get_content()
    assert notice["message"] in text
    assert f"followers: {expected['followers']}" in text and f"posts: {expected['posts']}" in text

    [row] = h.rows("SELECT * FROM alerts WHERE kind='failing'")
    assert (row["state"], row["notified_state"]) == ("open", "open") and row["last_notified_at"]

    # The platform answers again: one "recovered", by mail and by POST.
    h.faults.clear()
    result, sent = run_and_alert(h)
    assert result["status"] == "ok" and result["failure_kind"] is None
    assert kinds(sent) == [("failing", "recovered")]
    assert len(smtp.messages) == 2 and len(webhook.bodies) == 2
    recovered = webhook.bodies[1]["json"]
    assert (recovered["state"], recovered["notice"]) == ("resolved", "recovered")
    assert f"@{username} recovered" in recovered["message"]
    assert "recovered" in smtp.messages[1]["Subject"]
    [row] = h.rows("SELECT * FROM alerts WHERE kind='failing'")
    assert (row["state"], row["notified_state"]) == ("resolved", "resolved") and row["resolved_at"]
    assert alerts.after_run(h.ws, h.account, result) == [] and alerts.periodic(h.ws) == []
    assert len(webhook.bodies) == 2 and len(smtp.messages) == 2


def test_unreachable_for_longer_than_the_limit_is_announced_once(tmp_path, webhook):
    h = archived_account(tmp_path, notify=NotifyConfig(webhook_url=webhook.url), failed_runs=5)
    expected = holds(h)
    last_ok = h.value("SELECT max(ended_at) FROM runs WHERE status='ok' AND kind='export'")
    h.faults.append(lambda request: (_ for _ in ()).throw(httpx.ReadTimeout("simulated", request=request)))
    result, sent = run_and_alert(h)
    assert result["failure_kind"] == "timeout" and sent == []
    started = dt.datetime.now(dt.timezone.utc)

    assert alerts.periodic(h.ws, now=started + dt.timedelta(hours=23)) == []
    sent = alerts.periodic(h.ws, now=started + dt.timedelta(hours=25))
    assert kinds(sent) == [("unreachable", "opened")]
    assert alerts.periodic(h.ws, now=started + dt.timedelta(hours=26)) == []
    assert len(webhook.bodies) == 1

    message = webhook.bodies[0]["json"]["message"]
    shown = dt.datetime.fromisoformat(last_ok.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")
    username = h.value("SELECT username FROM accounts")
    assert message.startswith(f"TikTok account @{username} unreachable since ")
    assert (f"your archive is complete as of {shown}: {expected['posts']} videos, "
            f"{expected['followers']:,} followers, {expected['comments']:,} comments.") in message


# --------------------------------------------------------------------------- gone


def test_gone_is_sent_at_once_and_again_once_per_extra_day(tmp_path, smtp, webhook):
    h = archived_account(tmp_path, notify=NotifyConfig(webhook_url=webhook.url, email=email_settings(smtp)))
    h.fake.revoke_all()      # authorization refused, and the refresh refused too

    result, sent = run_and_alert(h)
    assert result["status"] == "failed" and result["failure_kind"] == "auth"
    assert kinds(sent) == [("gone", "opened")]                 # at once, not after 3 runs
    opened = dt.datetime.now(dt.timezone.utc)
    assert "archiver auth tiktok --account main" in sent[0]["message"]
    assert run_and_alert(h)[1] == []                            # the same day: nothing more
    assert alerts.periodic(h.ws, now=opened + dt.timedelta(hours=20)) == []

    day_later = alerts.periodic(h.ws, now=opened + dt.timedelta(days=1, minutes=1))
    assert kinds(day_later) == [("gone", "reminder")]
    assert day_later[0]["message"].startswith("Still the case after 1 day:")
    assert alerts.periodic(h.ws, now=opened + dt.timedelta(days=1, hours=5)) == []
    assert kinds(alerts.periodic(h.ws, now=opened + dt.timedelta(days=2, minutes=1))) == [("gone", "reminder")]
    assert len(webhook.bodies) == len(smtp.messages) == 3
    assert [b["json"]["notice"] for b in webhook.bodies] == ["opened", "reminder", "reminder"]
    assert h.value("SELECT notified_state FROM alerts WHERE kind='gone'") == "open+2d"
    assert h.value("SELECT count(*) FROM alerts WHERE kind='failing'") == 0   # gone says it all

    h.authorize()            # the user ran `archiver auth tiktok` again
    _, sent = run_and_alert(h)
    assert kinds(sent) == [("gone", "recovered")]
    assert len(webhook.bodies) == len(smtp.messages) == 4


def test_profile_not_found_is_gone_at_once(tmp_path, webhook):
    h = archived_account(tmp_path, notify=NotifyConfig(webhook_url=webhook.url))
    h.faults.append(lambda request: httpx.Response(404, text="<html>Not Found</html>",
                                                   headers={"Content-Type": "text/html"}))
    result, sent = run_and_alert(h)
    assert result["failure_kind"] == "gone"
    assert kinds(sent) == [("gone", "opened")]
    assert "answers as if the account were gone" in webhook.bodies[0]["json"]["message"]


# --------------------------------------------------------------------------- export age


def test_export_reminder_with_the_steps_until_a_new_export_is_imported(tmp_path, webhook):
    h = TikTokHarness(tmp_path, FakeTikTokConfig(videos=5, followers=10, seed=3))
    h.ws.config.notify = NotifyConfig(webhook_url=webhook.url)
    assert h.run()["status"] == "ok"

    sent = alerts.periodic(h.ws)                          # no export ever imported
    assert kinds(sent) == [("export_old", "opened")]
    assert "no export has been imported yet" in sent[0]["message"]
    assert TikTokConnector.manual_export_steps in sent[0]["message"]
    assert sent[0]["details"]["steps"] == TikTokConnector.manual_export_steps
    assert alerts.periodic(h.ws) == []
    [row] = account_status(h.archive, h.ws.config)
    assert row["export"]["too_old"] and row["export"]["age_days"] is None
    text = render_status([row])
    assert "export age: no export imported yet" in text and "reminder:" in text
    assert "ALERT:" not in text                              # the reminder line is the alert
    assert row["open_alerts"][0]["kind"] == "export_old"

    export = tmp_path / "TikTok_Data.zip"
    export.write_bytes(h.fake.export_zip(layout="new"))
    result = run_import(h.ws, export, transport=h.transport)
    assert kinds(alerts.after_run(h.ws, h.account, result)) == [("export_old", "recovered")]
    [row] = account_status(h.archive, h.ws.config)
    assert row["export"] == {**row["export"], "age_days": 0, "too_old": False, "steps": None}
    assert row["open_alerts"] == []
    assert "export age: 0 days" in render_status([row])

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31)
    sent = alerts.periodic(h.ws, now=later)
    assert kinds(sent) == [("export_old", "opened")]
    assert "the newest export was imported 31 days ago" in sent[0]["message"]
    [row] = account_status(h.archive, h.ws.config, now=later)
    assert row["export"]["age_days"] == 31 and row["export"]["too_old"]
    assert len(webhook.bodies) == 3


# --------------------------------------------------------------------------- channels


def test_command_gets_the_json_on_stdin_and_the_kind_in_its_environment(tmp_path):
    out = tmp_path / "command-saw.json"
    script = ("import json, os, sys; json.dump({'stdin': json.load(sys.stdin), "
              "'env': {k: v for k, v in os.environ.items() if k.startswith('ARCHIVER_')}}, "
              f"open({str(out)!r}, 'w'))")
    h = archived_account(tmp_path, notify=NotifyConfig(command=[sys.executable, "-c", script]))
    os.environ["ARCHIVER_SECRET_SOMETHING"] = "must-not-reach-the-command"
    try:
        h.fake.revoke_all()
        _, sent = run_and_alert(h)
    finally:
        del os.environ["ARCHIVER_SECRET_SOMETHING"]
    assert kinds(sent) == [("gone", "opened")]
    saw = json.loads(out.read_text())
    assert saw["stdin"]["kind"] == "gone" and saw["stdin"]["account"] == ACCOUNT_ID
    assert saw["env"]["ARCHIVER_ALERT_KIND"] == "gone"
    assert saw["env"]["ARCHIVER_ALERT_ACCOUNT"] == ACCOUNT_ID
    assert saw["env"]["ARCHIVER_ALERT_MESSAGE"] == saw["stdin"]["message"]
    assert "ARCHIVER_SECRET_SOMETHING" not in saw["env"]


def test_a_failing_channel_neither_stops_the_others_nor_loses_the_alert(tmp_path, webhook, caplog):
    dead_smtp = {"host": "127.0.0.1", "port": _free_port(), "starttls": False,
                 "from": "a@example.org", "to": ["b@example.org"]}
    h = archived_account(tmp_path, notify=NotifyConfig(webhook_url=webhook.url, email=dead_smtp,
                                                       command=["false"]))
    webhook.status = 500
    h.fake.revoke_all()
    _, sent = run_and_alert(h)
    assert sent == []                                   # every channel failed: not recorded as sent
    assert h.value("SELECT notified_state FROM alerts WHERE kind='gone'") is None
    assert any("webhook notifier failed" in r.getMessage() for r in caplog.records)
    assert any("email notifier failed" in r.getMessage() for r in caplog.records)

    webhook.status = 204                                # one channel is back: sent, once
    assert kinds(alerts.periodic(h.ws)) == [("gone", "opened")]
    assert alerts.periodic(h.ws) == []
    assert len(webhook.bodies) == 1
    assert h.value("SELECT notified_state FROM alerts WHERE kind='gone'") == "open"


# --------------------------------------------------------------------------- CLI


def test_secret_set_reads_the_value_from_stdin_and_status_shows_alerts(tmp_path):
    from cli_world import archiver_command, cli_env, run_cli

    from archiver.secrets import open_secret_store

    state = tmp_path / "state"
    env = cli_env(state)
    folder = tmp_path / "archive"
    done = subprocess.run([*archiver_command(), "secret", "set", "notify", "email", "password",
                           "--archive", str(folder)], input=SMTP_PASSWORD + "\n", env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert SMTP_PASSWORD not in done.stdout + done.stderr
    assert open_secret_store("env", state_dir=state).get("notify", "email", "password") == SMTP_PASSWORD

    # An archive with an open alert: `status` and `status --json` show it.
    h = archived_account(tmp_path, notify=NotifyConfig())
    h.fake.revoke_all()
    run_and_alert(h)
    shown = run_cli(["status", "--archive", str(h.archive.folder)], env)
    assert shown.returncode == 0, shown.describe()
    assert "ALERT:      gone since" in shown.stdout and "— FAILED" in shown.stdout
    assert "export age: 0 days" in shown.stdout
    as_json = json.loads(run_cli(["status", "--json", "--archive", str(h.archive.folder)], env).stdout)
    [row] = [r for r in as_json if r["account"] == ACCOUNT_ID]
    assert [a["kind"] for a in row["open_alerts"]] == ["gone"]
    assert row["last_run"]["failure_kind"] == "auth"


def test_export_reminders_only_for_platforms_whose_export_holds_what_the_api_lacks():
    from archiver.ops.status import export_age

    # TikTok's followers come only from its export: no export yet is a reminder, with steps.
    tiktok = export_age("tiktok", None, 30)
    assert tiktok["manual"] and tiktok["too_old"] and "followers" in tiktok["holds"] and tiktok["steps"]
    # Mastodon and Bluesky APIs give every list: an export is welcome, never nagged for.
    for platform in ("mastodon", "bluesky"):
        assert export_age(platform, None, 30) == {"manual": False}
    # Threads' follower lists, a Facebook profile's friends and followers: only in their exports.
    threads = export_age("threads", None, 30)
    assert threads["manual"] and "follower" in threads["holds"] and threads["steps"]
    profile = export_age("facebook", None, 30, options={})
    assert profile["manual"] and "friends" in profile["holds"] and profile["steps"]
    # A Facebook Page's API gives what there is to archive: no reminder for a Page account.
    assert export_age("facebook", None, 30, options={"page": "Roof Cam Studio"}) == {"manual": False}
    # LinkedIn: most members have no API (EEA and Switzerland only): their export is all
    # there is, so a reminder with the steps to request it.
    linkedin = export_age("linkedin", None, 30)
    assert linkedin["manual"] and linkedin["too_old"] and "outside the EEA" in linkedin["holds"]
    assert "Get a copy of your data" in linkedin["steps"]
    # A member the API serves (its export succeeded lately) needs no reminder; once the API
    # has not worked for longer than the export's maximum age, the reminder is back.
    now = dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc)
    assert export_age("linkedin", None, 30, now=now, api_ok_at="2026-12-01T03:00:00Z") == {"manual": False}
    assert export_age("linkedin", None, 30, now=now, api_ok_at="2026-10-01T03:00:00Z")["too_old"]
    assert export_age("tiktok", None, 30, now=now, api_ok_at="2026-12-01T03:00:00Z")["manual"]
    # Pinterest's API gives everything its export holds (and more): never nagged for.
    assert export_age("pinterest", None, 30) == {"manual": False}


def test_an_x_account_is_reminded_of_its_archive_with_or_without_an_api_budget():
    """X's API is paid, reaches only the newest 3,200 posts and gives no likes or deleted
    posts; without max_cost_usd it is not used at all. What only the archive holds makes a
    reminder with the steps to request it, whatever the account's budget."""
    from archiver.ops.status import export_age

    for options in ({}, {"max_cost_usd": 5.0}, {"max_cost_usd": 5.0, "followers": True}):
        reminder = export_age("x", None, 30, options=options)
        assert reminder["manual"] and reminder["too_old"] and reminder["age_days"] is None, reminder
        assert "Download an archive of your data" in reminder["steps"], reminder
        for only_there in ("likes", "deleted", "3,200"):
            assert only_there in reminder["holds"], reminder
    # An API run that worked does not make the archive needless (it still lacks the above).
    now = dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc)
    assert export_age("x", None, 30, now=now, api_ok_at="2026-12-06T03:00:00Z",
                      options={"max_cost_usd": 5.0})["too_old"]
