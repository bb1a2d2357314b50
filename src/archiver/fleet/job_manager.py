"""The fleet's Procrastinate job manager: a job's end is recorded only by the worker that
still holds the job.

Procrastinate records a job's end (``finish_job``) or its retry (``retry_job``) by job id
alone. A worker that froze (SIGSTOP, a long pause, a partition) while its job went back to
the queue and on to another worker would, on waking, write its own end over the job the
other worker is running: marked succeeded while it runs (its account lock freed for a
second job), or put back in the queue under it. Here both statements first lock the job's
row and go on only while it is still ``doing`` on the worker that fetched it (the
``worker_id`` the job was fetched with); otherwise nothing is written and the log says so.
The run ledger is fenced the same way (ledger.finish_run); this is the queue's side.

The guard also keeps two control workers' stalled-jobs checks from retrying one job twice
(the second finds it no longer ``doing`` on the silent worker).

Imported by tasks.make_app only: procrastinate is imported at the top here.
"""

from __future__ import annotations

import datetime as dt
import logging

from procrastinate import jobs, manager, utils

log = logging.getLogger("archiver.fleet.queue")

# The row lock first (a materialized CTE runs before the function is called), then
# Procrastinate's own function, so its events and checks stay what they are.
_STILL_HELD = """
    WITH held AS MATERIALIZED (
        SELECT id FROM procrastinate_jobs
        WHERE id = %(job_id)s AND status = 'doing' AND worker_id IS NOT DISTINCT FROM %(worker_id)s::bigint
        FOR UPDATE)
"""
FINISH_IF_HELD = _STILL_HELD + """
    SELECT held.id, procrastinate_finish_job_v1(held.id, %(status)s::procrastinate_job_status,
                                                %(delete_job)s::boolean)::text AS done
    FROM held
"""
RETRY_IF_HELD = _STILL_HELD + """
    SELECT held.id, procrastinate_retry_job_v2(held.id, %(retry_at)s::timestamptz, %(new_priority)s::integer,
                                               %(new_queue_name)s::varchar, %(new_lock)s::varchar)::text AS done
    FROM held
"""


class HeldJobsManager(manager.JobManager):
    """Procrastinate's JobManager, finishing and retrying a job only while it is held by
    the worker that fetched it (see the module's note)."""

    async def finish_job(self, job: jobs.Job, status: jobs.Status, delete_job: bool) -> None:
        rows = await self.connector.execute_query_all_async(
            query=FINISH_IF_HELD, job_id=job.id, worker_id=job.worker_id, status=status.value, delete_job=delete_job)
        if not rows:
            _moved_on(job, f"its end ({status.value})")

    async def retry_job(self, job: jobs.Job, retry_at: dt.datetime | None = None, priority: int | None = None,
                        queue: str | None = None, lock: str | None = None) -> None:
        rows = await self.connector.execute_query_all_async(
            query=RETRY_IF_HELD, job_id=job.id, worker_id=job.worker_id, retry_at=retry_at or utils.utcnow(),
            new_priority=priority, new_queue_name=queue, new_lock=lock)
        if not rows:
            _moved_on(job, "its retry")


def _moved_on(job: jobs.Job, what: str) -> None:
    log.warning("job %s (%s %s) moved on: it is no longer running on the worker that fetched it (its worker went "
                "silent and the job went back to the queue); %s is not recorded", job.id, job.task_name,
                job.task_kwargs, what)
