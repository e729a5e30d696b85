"""What the ledgers' schedules share; each ledger's jobs and schedules are in its ``schedules.py``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

# Whole-run retries (the daemon re-executes a failed run from its failure, after the instance's
# run_retries settings) for the hourly and daily ingestion jobs: a transient outage of a source
# should not leave an hour or a day missing until someone looks. Not for the minutely jobs: the
# next minute's run does the same work (and the trading job handles money: a run that sent an
# order gives up retries anyway, see ledgers/trading/assets.py).
INGESTION_RETRIES = {"dagster/max_retries": "2", "dagster/retry_on_asset_or_op_failure": "true"}

UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
              DagsterRunStatus.STARTED]


def still_running(context: ScheduleEvaluationContext, job_name: str) -> SkipReason | None:
    """A slow source must not pile minutely runs up behind each other: while one is queued or
    running, the next minutes are skipped (and say so), not queued."""
    unfinished = context.instance.get_runs(RunsFilter(job_name=job_name, statuses=UNFINISHED), limit=1)
    if not unfinished:
        return None
    run = unfinished[0]
    return SkipReason(f"skipped: run {run.run_id} of {job_name} is still {run.status.value.lower()}; "
                      "the next tick after it finishes launches again")


def every_minute(name: str, job, description: str, request: Callable[[datetime], RunRequest]) -> ScheduleDefinition:
    """A schedule that runs ``job`` every minute with ``request(tick)``, skipping while a run is unfinished."""

    @schedule(name=name, job=job, cron_schedule="* * * * *", execution_timezone="UTC",
              default_status=DefaultScheduleStatus.RUNNING, description=description)
    def _every_minute(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        return still_running(context, job.name) or request(context.scheduled_execution_time)

    return _every_minute
