"""The fleet's tables in PostgreSQL, as a list of DDL parts that `archiver fleet init` applies
(after the job queue's own schema, Procrastinate's ``procrastinate_*`` tables).

Each part is idempotent (``IF NOT EXISTS``): `fleet init` may run again after an upgrade and
applies only what is missing. A module that needs tables adds its part to ``PARTS`` here, in
this file, so one look shows the whole schema. Changing a table that exists in the field
needs a new part with an ``ALTER`` that checks first — never edit a shipped part in place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SchemaPart:
    name: str      # who owns it and what it is, e.g. "accounts"
    sql: str       # one or more statements, each idempotent


PARTS: list[SchemaPart] = [
    SchemaPart("accounts", """
        -- The fleet's accounts: what a config's [accounts.*] tables are for one user. The
        -- archive of one is one SQLite file, as for a single user (its account id inside is
        -- "platform:name"); tenant separates the agency's clients.
        CREATE TABLE IF NOT EXISTS fleet_accounts (
            id              bigserial PRIMARY KEY,
            tenant          text NOT NULL,
            platform        text NOT NULL,
            name            text NOT NULL,
            schedule        text,            -- cron, 5 fields (or 6, seconds first); NULL: nightly default
            timezone        text,            -- IANA zone of the schedule; NULL: the worker's local zone
            enabled         boolean NOT NULL DEFAULT true,
            full_every_days integer NOT NULL DEFAULT 7 CHECK (full_every_days >= 1),
            options         jsonb NOT NULL DEFAULT '{}'::jsonb,   -- connector options; never secrets
            -- The fencing counter: raised by every run start (ledger.start_run). A worker acts
            -- for the account only while the counter is still the one its run got: a worker
            -- cut off and replaced (a zombie) can no longer move the archive's pointer.
            fence           bigint NOT NULL DEFAULT 0,
            created_at      timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant, platform, name)
        );
    """),
    SchemaPart("run ledger", """
        -- One row a run attempt. Exactly one 'ok' per account and scheduled time (the unique
        -- index), at most one 'running' per account: a duplicate delivery of a job finds its
        -- slot done and does nothing.
        CREATE TABLE IF NOT EXISTS fleet_runs (
            id              bigserial PRIMARY KEY,
            account_id      bigint NOT NULL REFERENCES fleet_accounts (id) ON DELETE CASCADE,
            scheduled_for   timestamptz NOT NULL,   -- the schedule's fire time this run serves
            job_id          bigint,                 -- the queue's job (procrastinate_jobs.id)
            fence           bigint NOT NULL,        -- fleet_accounts.fence when it started
            worker          text NOT NULL,          -- host and pid, for people (never trusted for liveness)
            full_listing    boolean NOT NULL DEFAULT false,
            status          text NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'interrupted')),
            started_at      timestamptz NOT NULL DEFAULT now(),
            -- Refreshed by the running job every few seconds (ledger.HEARTBEAT_SECONDS): a
            -- 'running' row whose heartbeat stopped belongs to a dead or cut-off worker.
            heartbeat_at    timestamptz NOT NULL DEFAULT now(),
            ended_at        timestamptz,
            message         text,
            counts          jsonb
        );
        CREATE UNIQUE INDEX IF NOT EXISTS fleet_runs_one_ok_per_slot
            ON fleet_runs (account_id, scheduled_for) WHERE status = 'ok';
        CREATE UNIQUE INDEX IF NOT EXISTS fleet_runs_one_running
            ON fleet_runs (account_id) WHERE status = 'running';
        CREATE INDEX IF NOT EXISTS fleet_runs_by_account ON fleet_runs (account_id, scheduled_for DESC);
    """),
    SchemaPart("archives by generation", """
        -- fleet/storage.py: each account's archive is a series of generations in the object
        -- store; fleet_archives points at the current one (moved only by a run whose fence is
        -- still the account's), fleet_archive_generations lists them all for retention. No
        -- cascade from fleet_accounts: an account whose archive is stored is not deleted by accident.
        CREATE TABLE IF NOT EXISTS fleet_archives (
            account_id  bigint PRIMARY KEY REFERENCES fleet_accounts (id),
            generation  bigint NOT NULL,                 -- the current one (1, 2, ...)
            object_key  text NOT NULL,
            sha256      text NOT NULL,
            size        bigint NOT NULL,
            fence       bigint NOT NULL,                 -- the fence of the run that uploaded it
            worker      text,
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS fleet_archive_generations (
            account_id  bigint NOT NULL REFERENCES fleet_accounts (id),
            generation  bigint NOT NULL,
            object_key  text NOT NULL,
            sha256      text NOT NULL,
            size        bigint NOT NULL,
            fence       bigint NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            pruned_at   timestamptz,                      -- its object was removed (retention)
            PRIMARY KEY (account_id, generation)
        );
    """),
    SchemaPart("shared rate limits and quotas", """
        -- fleet/limiter.py: one row per limit key (platform/app/endpoint[/user token
        -- fingerprint]); tat is the GCRA's theoretical arrival time, times in epoch seconds of
        -- the database's clock. The counters are for `fleet status`.
        CREATE TABLE IF NOT EXISTS fleet_limits (
            key            text PRIMARY KEY,
            platform       text NOT NULL,
            tat            float8 NOT NULL,
            now            float8 NOT NULL,            -- the clock at the last reservation
            blocked_until  float8,                     -- a 429 stops every worker until then
            requests       bigint NOT NULL DEFAULT 0,
            waits          bigint NOT NULL DEFAULT 0,  -- requests that had to wait for their slot
            waited         float8 NOT NULL DEFAULT 0,  -- seconds waited in all
            throttled      bigint NOT NULL DEFAULT 0   -- 429s seen
        );
        -- A daily quota per project (a cloud project whose apps share one quota), the day as the platform counts it.
        CREATE TABLE IF NOT EXISTS fleet_quota (
            project  text NOT NULL,
            day      date NOT NULL,
            spent    bigint NOT NULL,
            budget   bigint NOT NULL,
            PRIMARY KEY (project, day)
        );
    """),
    SchemaPart("secrets", """
        -- fleet/secrets.py: tokens and app secrets of the fleet's accounts, each value sealed
        -- with AES-256-GCM under the master key (never in the database), bound to its row.
        CREATE TABLE IF NOT EXISTS fleet_secrets (
            tenant      text NOT NULL,
            platform    text NOT NULL,
            account     text NOT NULL,
            key         text NOT NULL,
            key_id      text NOT NULL,     -- which master key sealed it (a hash: says nothing of the key)
            nonce       bytea NOT NULL,
            sealed      bytea NOT NULL,    -- ciphertext and tag
            updated_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant, platform, account, key)
        );
    """),
    SchemaPart("rates", """
        -- fleet/limiter.py: the operator's request rate for a platform's API (app '*': every
        -- app of it), instead of the rate its connector declares (Connector.api_rate).
        CREATE TABLE IF NOT EXISTS fleet_rates (
            platform    text NOT NULL,
            app         text NOT NULL DEFAULT '*',
            per_minute  float8 NOT NULL CHECK (per_minute > 0),
            burst       integer NOT NULL DEFAULT 1 CHECK (burst >= 1),
            PRIMARY KEY (platform, app)
        );
    """),
]

# Taken for the whole of `fleet init`: two inits at once apply the schema once.
INIT_LOCK_KEY = 0x61726368   # "arch"


def queue_schema_present(connection) -> bool:
    return connection.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()[0]


def apply(connection) -> list[str]:
    """Apply the queue's schema (when missing) and every part, in one transaction.
    Returns what was done, for the command's output."""
    from procrastinate.schema import SchemaManager

    done = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", [INIT_LOCK_KEY])
        if not queue_schema_present(connection):
            connection.execute(SchemaManager.get_schema())
            done.append("the job queue's schema (Procrastinate)")
        for part in PARTS:
            connection.execute(part.sql)
            done.append(part.name)
    return done
