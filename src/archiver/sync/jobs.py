"""The jobs every front end shares (CLI, demo, daemon): export an account through its
API, import an official export file. The CLI only parses options and prints."""

from __future__ import annotations

import json
import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, cast

from archiver.archive import Archive
from archiver.config import AccountConfig, Config, ConfigError
from archiver.connector import api_off, canonical_platform, connector_names, get_connector, installed_connectors

if TYPE_CHECKING:
    from archiver.secrets import SecretStore

log = logging.getLogger("archiver")


@dataclass
class Workspace:
    """An archive folder, its config and its secret store."""

    archive: Archive
    config: Config
    _secrets: object = None

    @property
    def secrets(self):
        """Opened on first use: status, serve, verify and most imports need no secrets, and
        a headless machine without a keyring must still be able to run them."""
        if self._secrets is None:
            from archiver.secrets import open_secret_store

            self._secrets = open_secret_store(os.environ.get("ARCHIVER_SECRETS") or self.config.secrets_backend)
        return self._secrets

    @classmethod
    def open(cls, archive_dir: Path, config_path: Path | None = None, *, require_config: bool = False,
             secrets=None) -> "Workspace":
        from archiver.config import CONFIG_NAME, load_config

        path = config_path or (Path(os.environ["ARCHIVER_CONFIG"]) if os.environ.get("ARCHIVER_CONFIG") else None)
        path = path or archive_dir / CONFIG_NAME
        if path.exists() or require_config or config_path:
            config = load_config(path, installed_connectors())
        else:
            config = Config(path=None)
        return cls(Archive(archive_dir), config, secrets)

    def accounts(self, platform: str | None, name: str | None) -> list[AccountConfig]:
        if platform is not None:
            get_connector(platform)  # unknown platform: error listing the installed ones
            platform = canonical_platform(platform)
        found = self.config.find_accounts(platform, name)
        if not found:
            where = self.config.path or (self.archive.folder / "config.toml")
            raise ConfigError(
                f"{where}: no {platform or ''} account configured. Add one, e.g.\n\n"
                f"[accounts.main]\nplatform = \"{platform or min(connector_names(), default='NAME')}\"\n\n"
                "(`archiver init` writes a commented example.)")
        return [a for a in found if a.enabled]


class _SecretsOnDemand:
    """The workspace's SecretStore, opened at its first use."""

    def __init__(self, ws: Workspace):
        self._ws = ws

    def __getattr__(self, name):
        return getattr(self._ws.secrets, name)


def run_export(ws: Workspace, account: AccountConfig, *, full: bool = False, cancel=lambda: False,
               progress: Callable[[str], None] | None = None, transport=None,
               sleep: Callable[[float], None] | None = None, wait: float = 0) -> dict:
    """Export one account through its API. ``transport`` and ``sleep`` replace the
    network and the waits between retries (tests: a fake platform, instant sleeps).
    ``wait``: seconds to wait for another run of the account to end; raises
    locks.AccountBusy when it does not (see Runner.run)."""
    from archiver.sync.runner import Runner

    off = api_off(account.platform, account.options)
    if off:
        return {"run_id": None, "status": "skipped", "message": off, "counts": {}, "errors": [],
                "api_off": True}
    connector = get_connector(account.platform)(account, ws.secrets, transport=transport, sleep=sleep,
                                                cancel=cancel)
    try:
        runner = Runner(ws.archive, connector, progress=progress, limits=ws.config.downloads)
        return runner.run(connector.pages, kind="export", mode="full" if full else "incremental",
                          full=full, cancel=cancel, wait=wait)
    finally:
        connector.close()


def detect_platforms(source) -> list[str]:
    """Which installed connectors recognize this export file's content: one platform's,
    or one platform's carrying another's inside (a connector whose ``nested_export_folder``
    says its export can arrive in another's), the carrier first.

    When none does, the real reason comes first: a file inside that could not be read
    (not UTF-8, a NUL byte, nested too deep, malformed: the connectors looked and could not
    tell), or entries refused for safety (a link standing for a data file), before
    "not an export file archiver knows"."""
    from archiver.sync.imports import ExportFileError

    matches = recognizing(source)
    if not matches:
        _raise_read_problem(source, "archiver could not tell which platform's export it is")
        refused = getattr(source, "warnings", [])
        if refused:
            listed = "".join(f"\n  {w}" for w in refused[:10])
            more = f"\n  … and {len(refused) - 10} more" if len(refused) > 10 else ""
            raise ExportFileError(
                f"{source.path}: no file archiver can import is left in it once the entries refused for "
                f"safety are skipped:{listed}{more}\nArchiver never follows a link inside an export, nor "
                "writes outside it: if the platform's data file is among these (a link, say), replace it by "
                "the file itself, or import the export file as you downloaded it.", path=source.path)
        if getattr(source, "kind", None) == "html":
            raise ExportFileError(
                f"{source.path}: it looks like a web page (HTML), not an export archiver knows; the browser may "
                "have saved a login or error page: download the export again.", path=source.path)
        raise ExportFileError(
            f"{source.path}: not an export file archiver knows (installed connectors: "
            f"{', '.join(sorted(installed_connectors()))}). If you know which platform it is from, "
            f"run `archiver import PLATFORM PATH`.")
    ordered = _carrier_first(matches)
    if ordered is None:
        raise ExportFileError(
            f"{source.path}: looks like an export of several platforms ({', '.join(matches)}); "
            "name the one with `archiver import PLATFORM PATH`.")
    return ordered


def detect_platform(source) -> str:
    """The platform whose export ``source`` is (the carrier, when it holds others' too)."""
    return detect_platforms(source)[0]


def recognizing(source) -> list[str]:
    """The installed connectors that recognize ``source`` as (holding) their export."""
    return [name for name, cls in installed_connectors().items() if cls.detect_export(source)]


def _carrier_first(platforms: list[str]) -> list[str] | None:
    """``platforms`` (recognized in one export) with the one carrying the others first, or
    None when no single one can carry the rest (two platforms' exports side by side)."""
    if len(platforms) <= 1:
        return platforms
    connectors = installed_connectors()
    carriers = [name for name in platforms if not connectors[name].nested_export_folder]
    if len(carriers) != 1:
        return None
    return carriers + [name for name in platforms if name not in carriers]


def _owner_of(name: str, platforms: list[str]) -> str:
    """Which of ``platforms`` (the ones an export holds, the carrier first) an entry of it
    belongs to: a nested platform's when it lies in that platform's folder, else the
    carrier's (its own files, and the media folder they share)."""
    if len(platforms) == 1:
        return platforms[0]
    connectors = installed_connectors()   # an entry-point scan: only for exports of several
    path = "/" + name.lower()
    for platform in platforms[1:]:
        folder = connectors[platform].nested_export_folder.lower()
        if folder and f"/{folder}/" in path:
            return platform
    return platforms[0]


def _raise_read_problem(source, consequence: str) -> None:
    """The first file of ``source`` the connectors could not read (not UTF-8, a NUL byte,
    nested too deep, malformed), as the error, when there is one."""
    from archiver.sync.imports import ExportFileError

    problems = getattr(source, "read_problems", [])
    if problems:
        first = problems[0]
        raise ExportFileError(f"{first} Because of this, {consequence}.", path=first.path, entry=first.entry)


def import_account(ws: Workspace, platform: str, name: str | None) -> AccountConfig:
    """The account an export belongs to: the one configured for that platform, the one
    named, or a "main" account when none is configured (an import needs no API access)."""
    found = ws.config.find_accounts(platform, name)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(a.name for a in found)
        raise ConfigError(f"several {platform} accounts are configured ({names}): pick one with --account NAME.")
    return AccountConfig(name=name or "main", platform=platform)


def run_import(ws: Workspace, path: Path, *, platform: str | None = None, account_name: str | None = None,
               cancel=lambda: False, progress: Callable[[str], None] | None = None, transport=None,
               wait: float = 0, account: AccountConfig | None = None, expect_sha256: str | None = None) -> dict:
    """Import one export file. The same export is imported once per account: the same file
    (by sha256), or the same content in another wrapper (by fingerprint: the zip, then the
    folder or JSON file it was unzipped to). When media of it could not be stored
    (``holes`` in ``imports``), importing it again retries only those files. ``wait``: as
    run_export. ``account``: the account it belongs to, when known (a retry).
    ``expect_sha256``: the file must still be that one (a retry from where it was).

    An export carrying another platform's export inside (Connector.nested_export_folder)
    fills each platform's account, each its own run, lock and ``imports`` row: the result
    then holds each one's in ``parts`` (its status the worst of theirs, its counts and
    errors theirs together). Naming a ``platform`` imports that one only, and the message
    says what else the file holds and how to import it."""
    from archiver.sync.imports import open_export

    platform = canonical_platform(platform) if platform else platform
    # A compressed tar is unpacked once into the archive's folder (not /tmp, often in RAM).
    with open_export(path, spill_dir=ws.archive.create().folder) as source:
        if expect_sha256 and source.sha256 != expect_sha256:
            from archiver.sync.imports import ExportFileError

            raise ExportFileError(f"{path}: this is no longer the file imported from there (its content changed); "
                                  "import the original export file again by its path to retry its missing files")
        if platform is None:
            platforms = held = detect_platforms(source)
        else:
            cls = get_connector(platform)
            if not cls.detect_export(source):
                from archiver.sync.imports import ExportFileError

                _raise_read_problem(source, f"archiver could not read it as a {cls.title} export")

                raise ExportFileError(f"{path}: this does not look like a {cls.title} export "
                                      "(no file of its known layouts inside).")
            # What else it holds: each part's files are its own, never another's "not read".
            platforms, held = [platform], _carrier_first(recognizing(source)) or [platform]
            held = held if platform in held else platforms
        results = []
        for part in platforms:
            results.append(_import_part(ws, Path(path), source, part, account_name=account_name,
                                        account=account if len(platforms) == 1 else None, wait=wait,
                                        cancel=cancel, progress=progress, transport=transport))
            if cancel() or results[-1]["status"] == "interrupted":
                break
        _report_unread(ws, source, results, held, name_others=not expect_sha256)   # a retry knows what it retries
    if len(results) == 1:
        return results[0]
    rank = {"skipped": 0, "ok": 1, "interrupted": 2}   # any other status (failed) is the worst
    counts: dict[str, int] = {}
    for result in results:
        for key, value in result["counts"].items():
            counts[key] = counts.get(key, 0) + value
    return {"status": max((r["status"] for r in results), key=lambda status: rank.get(status, 3)),
            "parts": results, "account": ", ".join(r["account"] for r in results),
            "platform": ", ".join(r["platform"] for r in results), "counts": counts,
            "errors": [e for r in results for e in r["errors"]], "run_id": results[0].get("run_id"),
            "message": "; ".join(f"{r['account']}: {r['message']}" for r in results if r.get("message"))}


def _import_part(ws: Workspace, path: Path, source, platform: str, *, account_name, account, wait, cancel,
                 progress, transport) -> dict:
    """One platform's part of an export, into its account, under that account's lock."""
    from archiver.sync.locks import account_lock

    account = account or import_account(ws, platform, account_name)
    # Held from the "already imported?" check to the record of this import, so two
    # imports of one file (the inbox and a hand-typed command) cannot both run it.
    with account_lock(ws.archive.folder, account.account_id, wait=wait, cancel=cancel,
                      doing=f"import of {path.name}"):
        result = _import_locked(ws, path, source, account, platform, cancel=cancel, progress=progress,
                                transport=transport)
    result.update(account=account.account_id, platform=platform)
    return result


def _report_unread(ws: Workspace, source, results: list[dict], held: list[str], *, name_others: bool) -> None:
    """Nothing of an export is dropped without a word: each run that read the export names
    what of its part this version did not read (known once every part has run: the parts
    share the media folder), and a part no run imported (the command named another
    platform) is named with the command that imports it."""
    from archiver.sync.imports import not_read_note

    unread = source.not_read()
    imported = {r["platform"] for r in results}
    for result in results:
        if result["status"] not in ("ok", "failed"):
            continue
        mine = [name for name in unread if _owner_of(name, held) == result["platform"]]
        notes = [not_read_note(mine)] if mine else []
        for other in held:
            theirs = sum(1 for name in unread if _owner_of(name, held) == other)
            if name_others and other not in imported and theirs:
                cls = get_connector(other)
                where = (f"in its {cls.nested_export_folder}/ folder" if cls.nested_export_folder
                         else f"{theirs} file(s)")
                notes.append(f"this file also holds {cls.title} data ({where}), not imported now: "
                             f"`archiver import {other} {shlex.quote(str(source.path))}` imports it into your "
                             f"{cls.title} account")
        if not notes:
            continue
        if mine:
            result["not_read"] = mine
        result["message"] = "; ".join(filter(None, [result.get("message"), *notes]))
        with ws.archive.writing():
            ws.archive.db.execute("UPDATE runs SET message=? WHERE run_id=?", [result["message"], result["run_id"]])


def _import_locked(ws: Workspace, path: Path, source, account: AccountConfig, platform: str, *, cancel,
                   progress, transport) -> dict:
    from archiver.records import now_utc
    from archiver.sync.runner import Runner, only_holes

    db = ws.archive.db
    seen = db.execute("SELECT imported_at, file_name, holes, sha256 FROM imports WHERE account_id=? "
                      "AND (sha256=? OR fingerprint=?) ORDER BY sha256=? DESC LIMIT 1",
                      [account.account_id, source.sha256, source.fingerprint, source.sha256]).fetchone()
    if seen and not seen[2]:
        as_what = "" if seen[1] == path.name else f" as {seen[1]!r} (the same content)"
        return {"status": "skipped", "message": f"already imported on {seen[0]}{as_what}; nothing to do",
                "counts": {}, "errors": []}
    # An import reads no secret: the store opens only if a connector asks for one, so a
    # headless machine without a keyring (or the daemon's inbox) can still import.
    secrets = cast("SecretStore", _SecretsOnDemand(ws))   # it stands for one: every attribute is the store's
    connector = get_connector(platform)(account, secrets, transport=transport, cancel=cancel)
    try:
        runner = Runner(ws.archive, connector, progress=progress, limits=ws.config.downloads)
        if seen:   # imported before with holes: only the files still missing are tried again
            pages = lambda ctx: only_holes(connector.import_pages(source, ctx), ctx)  # noqa: E731
            mode = f"{path.name} (files missing from the import of {seen[0]})"
        else:
            pages, mode = (lambda ctx: connector.import_pages(source, ctx)), path.name
        # One export, one provenance: a retry through another wrapper of the same content
        # (the zip, then its unzipped folder) writes under the first one's.
        provenance = f"export:{seen[3] if seen else source.sha256}"
        result = runner.run(pages, kind="import", mode=mode, cancel=cancel, source=provenance)
    finally:
        connector.close()
    warnings = [{"item": path.name, "error": w} for w in getattr(source, "warnings", [])]
    if warnings:  # entries the safe opener refused: kept in the run record for `status`
        result["errors"] = warnings + result["errors"]
        with ws.archive.writing():
            db.execute("UPDATE runs SET errors=? WHERE run_id=?",
                       [json.dumps(result["errors"][:500]), result["run_id"]])
    if result["status"] == "ok":
        # Files that could not be stored (a disk error, a file the export lacks …) keep the
        # import open: importing the file again, or `archiver import --retry-failed`, tries
        # them again instead of saying "already imported".
        counts = result["counts"]
        # Files no retry of this file can bring (not in it; its links expired) keep nothing open.
        holes = (counts.get("media_failed", 0) - counts.get("media_not_in_export", 0)
                 - counts.get("media_expired", 0))
        with ws.archive.writing():
            if seen:   # the holes of that earlier import, retried: what is still missing
                db.execute("UPDATE imports SET holes=?, run_id=?, path=? WHERE sha256=? AND account_id=?",
                           [holes, result["run_id"], str(path.absolute()), seen[3], account.account_id])
            else:
                db.execute(
                    "INSERT INTO imports (sha256, account_id, file_name, imported_at, run_id, fingerprint, path, holes) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    [source.sha256, account.account_id, path.name, now_utc(), result["run_id"], source.fingerprint,
                     str(path.absolute()), holes])
        if holes:
            result["message"] = (f"{holes} file(s) could not be stored; `archiver import --retry-failed` "
                                 "(or importing this file again) tries only those again")
    return result


def imports_with_holes(ws: Workspace) -> list[dict]:
    """Earlier imports with files still missing: sha256, account, file name, path, holes."""
    rows = ws.archive.db.execute(
        "SELECT sha256, account_id, file_name, path, holes, imported_at FROM imports WHERE holes > 0 "
        "ORDER BY imported_at").fetchall()
    return [dict(zip(("sha256", "account_id", "file_name", "path", "holes", "imported_at"), row, strict=True))
            for row in rows]


# --------------------------------------------------------------------------- the library's entry points
# `archiver.export_account` and `archiver.import_file`: one call each, given an archive folder,
# for a program that uses archiver as a library. They open the folder's workspace (its
# config.toml, its secret store), run the job above and close the archive again.


def export_account(archive_dir: str | Path, account: str, *, platform: str | None = None,
                   config_path: str | Path | None = None, full: bool = False,
                   progress: Callable[[str], None] | None = None, cancel: Callable[[], bool] | None = None,
                   wait: float = 0, secrets: SecretStore | None = None, transport=None) -> dict:
    """Export the account named ``account`` (its ``[accounts.NAME]`` table in the config)
    through its platform's API into the archive at ``archive_dir``, as `archiver export`
    does; returns the run's summary: ``status`` ("ok", "failed", "interrupted"; "skipped"
    with ``api_off`` when the account's API runs are off, ``message`` saying why),
    ``counts``, ``errors`` (one dict per item that could not be archived), ``run_id``.

    The config is ``archive_dir/config.toml`` unless ``config_path`` (or $ARCHIVER_CONFIG)
    names another; ``platform`` picks among accounts of one name on several platforms.
    ``secrets``: a SecretStore to read the credentials from (default: the config's
    backend, as `archiver auth` stored them). ``full``: re-list everything (the only kind
    of run that marks vanished posts deleted). ``progress`` receives one line per page;
    ``cancel`` returning True stops the run at the next page (status "interrupted").
    ``wait``: seconds to wait for another run of the account to end (else AccountBusy).
    ``transport``: an httpx transport instead of the network (tests)."""
    ws = Workspace.open(Path(archive_dir).expanduser(), Path(config_path) if config_path else None,
                        require_config=True, secrets=secrets)
    try:
        # A ConfigError names the known ones.
        found = ws.config.find_accounts(canonical_platform(platform) if platform else None, account)
        if len(found) > 1:
            names = ", ".join(a.account_id for a in found)
            raise ConfigError(f"several accounts are named {account!r} ({names}): pick one with platform=…")
        chosen = found[0]
        if not chosen.enabled:
            raise ConfigError(f"account {chosen.account_id} is disabled (enabled = false in its config table)")
        return run_export(ws, chosen, full=full, cancel=cancel or (lambda: False), progress=progress,
                          transport=transport, wait=wait)
    finally:
        ws.archive.close()


def import_file(archive_dir: str | Path, path: str | Path, *, platform: str | None = None,
                account: str | None = None, config_path: str | Path | None = None,
                progress: Callable[[str], None] | None = None, cancel: Callable[[], bool] | None = None,
                wait: float = 0) -> dict:
    """Import an official "download your data" export (zip, tar.gz, json or folder) into the
    archive at ``archive_dir`` (created when missing), as `archiver import` does; returns
    the run's summary as export_account does, plus ``account`` and ``platform``. Importing
    the same export again returns status "skipped" (unless files of it could not be stored
    the first time: then only those are tried again).

    The platform is recognised from the file's content unless ``platform`` names it. An
    export carrying another platform's (an Instagram download with Threads' files) fills
    both accounts: the summary then lists each one's in ``parts``.
    ``account``: the name of the account it belongs to (needed only when the config has
    several of that platform; with none configured it is "main"). An import reads no
    secret and needs no config. ``progress``, ``cancel``, ``wait``: as export_account.
    Raises ExportFileError when the file cannot be read as an export."""
    ws = Workspace.open(Path(archive_dir).expanduser(), Path(config_path) if config_path else None)
    try:
        return run_import(ws, Path(path).expanduser(), platform=platform, account_name=account,
                          cancel=cancel or (lambda: False), progress=progress, wait=wait)
    finally:
        ws.archive.close()
