"""Sensors that watch the catalyst sources and launch a run for each new event.

A tick asks its source with short timeouts and one retry, so it ends in seconds
even when the source hangs (Dagster gives a tick 60 s). A source that fails makes
the tick skip with the reason and leaves the cursor where it was: the next tick
catches up. The first tick on an empty cursor records the history window in one
run instead of treating every old event as new.
"""

import json
from datetime import datetime, timedelta, timezone

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from omc_pipelines import settings
from omc_pipelines.ledgers import catalyst
from omc_pipelines.resources import AnnouncementsResource, SecResource
from omc_pipelines.sources.http import SourceError
from omc_pipelines.sources.sec import filings_of

SENSOR_TIMEOUT = 5.0
SENSOR_RETRIES = 1
# How far back a tick looks past the newest event it knows, for late-indexed ones.
LOOKBACK = timedelta(days=1)
# Ids remembered; far more than a help centre or two filers publish in the lookback.
SEEN_LIMIT = 2000

catalyst_listings_job = define_asset_job(
    "catalyst_listings", selection=[catalyst.coinspot_announcements],
    description="Record CoinSpot announcements; launched by coinspot_listing_sensor for each new article.",
)
catalyst_filings_job = define_asset_job(
    "catalyst_filings", selection=[catalyst.sec_filings],
    description="Record SEC filings; launched by sec_filing_sensor for each new filing.",
)

_config = settings.load()


def _daemon_interval(seconds: int) -> int:
    """The minimum interval that makes the daemon tick every ``seconds``.

    The daemon looks at sensors on a 5 s loop and skips one whose last tick began
    less than the interval ago; asking for exactly a multiple of 5 loses every
    other look to jitter (measured: "5 s" ticked every 5-10 s, mean 8.2 s)."""
    return max(1, seconds - 1)


def _read_cursor(context: SensorEvaluationContext) -> dict | None:
    return json.loads(context.cursor) if context.cursor else None


def _run_for(asset_name: str, external_id: str, detected_at: datetime, run_key: str, tags: dict) -> RunRequest:
    config = {"ids": [external_id], "detected_at": {external_id: detected_at.isoformat()}}
    return RunRequest(run_key=run_key, run_config={"ops": {asset_name: {"config": config}}}, tags=tags)


def _history_run(asset_name: str, now: datetime, count: int) -> RunRequest:
    # One run records the whole window; its events are history, not news.
    return RunRequest(run_key=f"{asset_name}-history-{now:%Y%m%dT%H%M%S}", tags={"omc/history": str(count)})


def _sensor_result(runs: list[RunRequest], cursor: dict, seen_before: list[str], new_ids: list[str]) -> SensorResult:
    cursor["seen"] = (new_ids + seen_before)[:SEEN_LIMIT]
    return SensorResult(run_requests=runs, cursor=json.dumps(cursor))


@sensor(
    job=catalyst_listings_job,
    minimum_interval_seconds=_daemon_interval(_config.listing_sensor_seconds),
    default_status=DefaultSensorStatus.RUNNING,
    description="Polls CoinSpot's announcements (OMC_LISTING_SENSOR_SECONDS, default 10 s); one run per new article.",
)
def coinspot_listing_sensor(context: SensorEvaluationContext, announcements: AnnouncementsResource):
    cursor = _read_cursor(context)
    now = datetime.now(timezone.utc)
    if cursor is None:
        since = now - timedelta(days=announcements.history_days)
    else:
        since = datetime.fromisoformat(cursor["newest"]) - LOOKBACK if cursor.get("newest") else now - LOOKBACK
    try:
        with announcements.client(timeout=SENSOR_TIMEOUT, retries=SENSOR_RETRIES) as client:
            articles = client.latest(since=since)
    except SourceError as exc:
        return SkipReason(f"CoinSpot's help centre could not be read ({exc}); the next tick catches up")
    seen = [] if cursor is None else cursor["seen"]
    known = set(seen)
    new = [a for a in articles if str(a.id) not in known]
    dated = [a.created_at for a in articles]
    if cursor and cursor.get("newest"):
        dated.append(datetime.fromisoformat(cursor["newest"]))
    next_cursor = {"newest": max(dated).isoformat() if dated else None}
    if cursor is None:
        runs = [_history_run("coinspot_announcements", now, len(new))] if new else []
    else:
        runs = [
            _run_for("coinspot_announcements", str(a.id), now, f"coinspot-article-{a.id}",
                     {"omc/article": str(a.id), "omc/title": a.title[:200]})
            for a in reversed(new)  # oldest first
        ]
    return _sensor_result(runs, next_cursor, seen, [str(a.id) for a in new])


@sensor(
    job=catalyst_filings_job,
    minimum_interval_seconds=_daemon_interval(_config.filing_sensor_seconds),
    default_status=DefaultSensorStatus.RUNNING,
    description="Polls the tracked companies' EDGAR submissions (OMC_FILING_SENSOR_SECONDS, default 60 s) "
    "with conditional requests; one run per new filing.",
)
def sec_filing_sensor(context: SensorEvaluationContext, sec: SecResource):
    cursor = _read_cursor(context)
    now = datetime.now(timezone.utc)
    since = now - timedelta(days=sec.history_days) if cursor is None else now - LOOKBACK
    validators = {} if cursor is None else cursor.get("validators", {})
    filings = []
    try:
        with sec.client(timeout=SENSOR_TIMEOUT, retries=SENSOR_RETRIES) as client:
            for cik in sec.ciks:
                etag, last_modified = validators.get(cik, [None, None])
                submissions = client.submissions(cik, etag=etag, last_modified=last_modified)
                if submissions.not_modified:
                    continue  # cheap: nothing filed since the last tick
                validators[cik] = [submissions.etag, submissions.last_modified]
                filings += [f for f in filings_of(submissions.filings, sec.forms, amendments=True) if f.accepted_at >= since]
    except (SourceError, ValueError) as exc:
        return SkipReason(f"SEC EDGAR could not be read ({exc}); the next tick catches up")
    seen = [] if cursor is None else cursor["seen"]
    known = set(seen)
    new = [f for f in filings if f.accession_number not in known]
    if cursor is None:
        runs = [_history_run("sec_filings", now, len(new))] if new else []
    else:
        runs = [
            _run_for("sec_filings", f.accession_number, now, f"sec-{f.accession_number}",
                     {"omc/accession": f.accession_number, "omc/form": f.form, "omc/company": f.company[:100]})
            for f in sorted(new, key=lambda f: f.accepted_at)
        ]
    return _sensor_result(runs, {"validators": validators}, seen, [f.accession_number for f in new])


ALL_JOBS = [catalyst_listings_job, catalyst_filings_job]
ALL_SENSORS = [coinspot_listing_sensor, sec_filing_sensor]
