"""Deliver an alert through the channels the config names: a command, a webhook, e-mail.

Every channel gets the same JSON object, the *notice* (documented in README "Alerts"):

    {"kind": "unreachable", "state": "open", "notice": "opened", "account": "tiktok:main",
     "platform": "tiktok", "name": "main", "username": "name", "message": "…",
     "opened_at": "…", "updated_at": "…", "resolved_at": null, "alert_id": 3,
     "details": {…}, "archive": {"posts": 142, "followers": 10234, …, "complete_as_of": "…"}}

A channel that fails is logged and skipped: it never stops the other channels, nor the
daemon that called us. ``send_notice`` says which channels delivered, so the caller can
record the alert as sent only when at least one did, and try again later otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import subprocess
from email.message import EmailMessage
from typing import Any

from archiver.config import NotifyConfig

log = logging.getLogger("archiver.ops.notify")

COMMAND_TIMEOUT = 60        # seconds a notify command may take before it is killed
WEBHOOK_TIMEOUT = 30        # seconds for the whole POST
SMTP_TIMEOUT = 30           # seconds per SMTP socket operation
SMTP_IMPLICIT_TLS_PORT = 465  # "SMTPS": TLS from the first byte, no STARTTLS
PASSWORD_KEY = ("notify", "email", "password")  # where `archiver secret set` puts it


def configured_channels(notify: NotifyConfig) -> list[str]:
    return [name for name, on in (("command", notify.command), ("webhook", notify.webhook_url),
                                  ("email", notify.email)) if on]


def send_notice(notify: NotifyConfig, notice: dict[str, Any], secrets=None) -> dict[str, str | None]:
    """Send ``notice`` through every configured channel.

    Returns channel -> None when it delivered, else the error text (already logged).
    ``secrets`` (a SecretStore, or a function that opens one) is needed only for an
    e-mail login.
    """
    from archiver.net.client import scrubber

    senders = {"command": _run_command, "webhook": _post_webhook, "email": _send_email}
    outcome: dict[str, str | None] = {}
    for channel in configured_channels(notify):
        try:
            senders[channel](notify, notice, secrets)
            outcome[channel] = None
        except Exception as error:  # any failure of one channel is that channel's only
            text = scrubber.text(f"{type(error).__name__}: {error}")
            log.warning("alert %s for %s: the %s notifier failed: %s",
                        notice.get("kind"), notice.get("account"), channel, text)
            outcome[channel] = text
    return outcome


# -- command ------------------------------------------------------------------------------


def _run_command(notify: NotifyConfig, notice: dict, secrets) -> None:
    """The notice as JSON on stdin; the main fields also as environment variables, so that
    a one-line shell command (notify-send "$ARCHIVER_ALERT_MESSAGE") needs no JSON parser."""
    env = dict(os.environ)
    env.update({
        "ARCHIVER_ALERT_KIND": str(notice.get("kind") or ""),
        "ARCHIVER_ALERT_STATE": str(notice.get("state") or ""),
        "ARCHIVER_ALERT_NOTICE": str(notice.get("notice") or ""),
        "ARCHIVER_ALERT_ACCOUNT": str(notice.get("account") or ""),
        "ARCHIVER_ALERT_PLATFORM": str(notice.get("platform") or ""),
        "ARCHIVER_ALERT_MESSAGE": str(notice.get("message") or ""),
    })
    # Never hand secrets from our environment to a user's script by accident.
    for name in [n for n in env if n.startswith("ARCHIVER_SECRET_")]:
        del env[name]
    assert notify.command, "configured_channels lists the command only when one is set"
    completed = subprocess.run(notify.command, input=json.dumps(notice, indent=2).encode(), env=env,
                               capture_output=True, timeout=COMMAND_TIMEOUT, check=False)
    if completed.returncode != 0:
        said = completed.stderr.decode(errors="replace").strip()[-500:]
        raise RuntimeError(f"{notify.command[0]} exited with status {completed.returncode}"
                           + (f": {said}" if said else ""))


# -- webhook ------------------------------------------------------------------------------


def _post_webhook(notify: NotifyConfig, notice: dict, secrets) -> None:
    import httpx

    assert notify.webhook_url, "configured_channels lists the webhook only when one is set"
    response = httpx.post(notify.webhook_url, json=notice, timeout=WEBHOOK_TIMEOUT,
                          headers={"User-Agent": "archiver/0.1 (alerts)"})
    if response.status_code >= 300:
        raise RuntimeError(f"the webhook answered HTTP {response.status_code}")


# -- e-mail -------------------------------------------------------------------------------


def email_message(notify: NotifyConfig, notice: dict) -> EmailMessage:
    """A plain-text mail: the message, then the details a person may want."""
    settings = notify.email or {}
    message = EmailMessage()
    message["From"] = settings["from"]
    message["To"] = ", ".join(settings["to"])
    what = {"opened": "", "reminder": " (still)", "recovered": " — recovered"}.get(notice.get("notice") or "", "")
    message["Subject"] = f"[archiver] {notice.get('account')}: {notice.get('kind')}{what}"
    lines = [notice.get("message") or "", ""]
    archive = notice.get("archive") or {}
    if archive:
        lines.append("What the archive holds for this account:")
        lines += [f"  {key.replace('_', ' ')}: {value}" for key, value in archive.items()]
        lines.append("")
    steps = (notice.get("details") or {}).get("steps")
    if steps:
        lines += ["What to do:", f"  {steps}", ""]
    lines.append(f"alert #{notice.get('alert_id')} {notice.get('kind')} ({notice.get('state')}), "
                 f"opened {notice.get('opened_at')}")
    details = {k: v for k, v in (notice.get("details") or {}).items() if k != "steps"}
    if details:
        lines.append("details: " + json.dumps(details, sort_keys=True))
    message.set_content("\n".join(lines) + "\n")
    return message


def _send_email(notify: NotifyConfig, notice: dict, secrets) -> None:
    from archiver.net.client import scrubber

    settings = notify.email or {}
    host, port = settings["host"], int(settings.get("port", 587))
    # Certificates are checked against the system's CAs (SSL_CERT_FILE is honoured).
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if port == SMTP_IMPLICIT_TLS_PORT:
        client = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
    with client:
        client.ehlo()
        if port != SMTP_IMPLICIT_TLS_PORT and settings.get("starttls", True):
            client.starttls(context=context)
            client.ehlo()
        if settings.get("username"):
            # Opened only now: a headless machine without a keyring may still send
            # through a relay that needs no login.
            store = secrets() if callable(secrets) else secrets
            if store is None:
                raise RuntimeError("an e-mail login needs the secret store")
            password = store.get(*PASSWORD_KEY)
            if not password:
                raise RuntimeError("no e-mail password stored: run `archiver secret set notify email password`")
            scrubber.add(password)
            client.login(settings["username"], password)
        client.send_message(email_message(notify, notice))
