"""The fleet's jobs in the queue: Procrastinate tasks that ``register`` defines on an App
(make_app; a function, not a module-level app or Blueprint, because a Blueprint's
tasks bind to the first App they join and a process may make several: a command, tests):

- ``run_account``  (queue "accounts"): one account's run for one scheduled time;
- ``tick``         (queue "control", every minute): defer every due account
  (dispatch.enqueue_due). Procrastinate defers a periodic job once per minute whatever the
  number of workers (its procrastinate_periodic_defers table), and the queueing lock keeps
  at most one tick waiting;
- ``retry_stalled`` (queue "control", every 15 s): jobs of workers whose heartbeat stopped
  (killed, frozen, cut off) go back to the queue, where another worker takes them;
- ``retention`` (queue "control", daily): prune every account's old generations and sweep
  the store of objects no generation names (fleet/storage.py; `archiver fleet prune|sweep`
  does the same by hand). Deferred once a day however many workers, as the tick is.

The tasks reach the worker's FleetServices through the job context.
"""

from __future__ import annotations

import datetime as dt
import logging

from archiver.fleet.db import DatabaseUnavailable
from archiver.fleet.dispatch import ACCOUNT_QUEUE, RUN_TASK
from archiver.fleet.ledger import AccountBusy, TryLater

log = logging.getLogger("archiver.fleet.tasks")

TICK_TASK = "archiver.fleet.tick"
STALLED_TASK = "archiver.fleet.retry_stalled"
RETENTION_TASK = "archiver.fleet.retention"

CONTROL_QUEUE = "control"
RETRY_SECONDS = 10   # a run job that met a live run of its account, or no database, tries again after this
STALLED_CHECK_CRON = "* * * * * */15"   # Procrastinate's cron (croniter): a sixth field is seconds
RETENTION_CRON = "40 13 * * *"   # daily, UTC: away from the nightly runs (by default 02:00-05:00)


def make_app(database_url: str):
    """A Procrastinate App on the fleet database with the fleet's tasks (not opened)."""
    import procrastinate

    from archiver.fleet.job_manager import HeldJobsManager

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))
    # A job's end is recorded only by the worker that still holds it (a woken zombie's is not).
    app.job_manager = HeldJobsManager(app.connector)
    register(app)
    return app


def _run_retries(**settings):
    """A run job's retry strategy: Procrastinate's RetryStrategy, waiting ``seconds`` of a
    TryLater instead of its constant wait (at least that wait)."""
    import procrastinate
    from procrastinate.retry import RetryDecision

    class RunRetries(procrastinate.RetryStrategy):
        def get_retry_decision(self, *, exception, job):
            decision = super().get_retry_decision(exception=exception, job=job)
            if decision is not None and isinstance(exception, TryLater):
                return RetryDecision(retry_in={"seconds": max(self.wait, round(exception.seconds))})
            return decision

    return RunRetries(**settings)


def register(app) -> None:
    """Define the fleet's tasks on ``app`` (a procrastinate.App)."""

    @app.task(name=RUN_TASK, queue=ACCOUNT_QUEUE, pass_context=True,
              # Another run of the account still alive (its heartbeat fresh), or the database
              # gone for a moment: try again a little later; the shared rate limit full for
              # longer than a run waits: try again when its next slot is near (TryLater). A
              # run's own failure is not retried here: dispatch tries its scheduled time again
              # after a while.
              retry=_run_retries(max_attempts=30, wait=RETRY_SECONDS,
                                 retry_exceptions={AccountBusy, DatabaseUnavailable, TryLater}))
    def run_account(context, account: int, slot: str, full: bool = False) -> str:
        services = context.additional_context["fleet"]
        return services.run_job(account, dt.datetime.fromisoformat(slot), full=full, job_id=context.job.id,
                                should_abort=context.should_abort)

    @app.periodic(cron="* * * * *", periodic_id="tick")
    @app.task(name=TICK_TASK, queue=CONTROL_QUEUE, queueing_lock=TICK_TASK, pass_context=True)
    def tick(context, timestamp: int) -> str:
        # The scheduled minute, not the clock: a late tick decides as its minute would have.
        now = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
        return context.additional_context["fleet"].tick(context.app, now)

    @app.periodic(cron=STALLED_CHECK_CRON, periodic_id="stalled")
    @app.task(name=STALLED_TASK, queue=CONTROL_QUEUE, queueing_lock=STALLED_TASK, pass_context=True)
    async def retry_stalled(context, timestamp: int) -> int:
        return await retry_stalled_jobs(context.app, context.additional_context["fleet"].stalled_after_seconds)

    @app.periodic(cron=RETENTION_CRON, periodic_id="retention")
    @app.task(name=RETENTION_TASK, queue=CONTROL_QUEUE, queueing_lock=RETENTION_TASK, pass_context=True)
    def retention(context, timestamp: int) -> str:
        return run_retention(context.additional_context["fleet"],
                             dt.datetime.fromtimestamp(timestamp, dt.timezone.utc))


def run_retention(services, now: dt.datetime) -> str:
    """The daily retention job: every account's generations beyond the newest
    ``services.keep_generations`` removed (0: none), then objects no generation names and
    older than a day. Only where archives are in object storage (worker.StoredArchives)."""
    from archiver.fleet import db
    from archiver.fleet.storage import ArchiveStore

    # worker.StoredArchives holds the object store; LocalArchives (archives in folders) has none.
    # (Not an isinstance: worker.py imports this module.)
    objects = getattr(services.run_archive, "objects", None)
    if objects is None:
        with db.connect(services.database_url) as connection:
            stored = connection.execute("SELECT 1 FROM fleet_archives LIMIT 1").fetchone() is not None
        if stored:   # the fleet's archives are in a store this worker was not given: nothing pruned today
            log.warning("retention: this worker has no object storage, but the fleet's archives are in one: "
                        "nothing pruned or swept today; give the workers of the control queue --storage "
                        "(or ARCHIVER_FLEET_STORAGE) too")
            return "skipped: no object storage on this worker"
        return "archives in folders: no generations to prune"
    with db.connect(services.database_url) as connection:
        store = ArchiveStore(connection, objects, worker=services.name)
        pruned = store.prune(keep=services.keep_generations) if services.keep_generations else []
        swept = store.sweep(now=now)
    summary = f"{len(pruned)} old generations pruned (keeping {services.keep_generations or 'all'}), " \
              f"{len(swept)} orphaned objects swept"
    log.info("retention: %s", summary)
    return summary


async def retry_stalled_jobs(app, stalled_after: float) -> int:
    """Put the jobs of workers silent for ``stalled_after`` seconds back in the queue (their
    ledger runs are taken over by whoever runs them next: ledger.start_run)."""
    from procrastinate.exceptions import UniqueViolation

    manager = app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after))
    for job in stalled:
        log.warning("job %s (%s %s) was on a worker that stopped its heartbeat; back to the queue",
                    job.id, job.task_name, job.task_kwargs)
        try:
            await manager.retry_job(job)
        except UniqueViolation:
            # Another job of the account was queued while this one ran (`archiver enqueue
            # --account`: the queueing lock holds one *waiting* job). That one waits at the end of the
            # queue, and behind this one's lock, which would never be released: it is cancelled,
            # and this one goes back to its place at the front.
            for waiting in await manager.list_jobs_async(queueing_lock=job.queueing_lock, status="todo"):
                log.warning("job %s (%s %s) cancelled: job %s of the same account goes first", waiting.id,
                            waiting.task_name, waiting.task_kwargs, job.id)
                await manager.cancel_job_by_id_async(waiting.id)
            await manager.retry_job(job)
    return len(stalled)
