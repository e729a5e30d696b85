"""The Catalyst ledger's sensors, which watch its sources and launch one run per new event, and their jobs.

Never lose an event:

- A tick reads its source from what the cursor knows: the time of its last good read, less
  a day for late indexing; a daemon down for a week catches the week up.
- A new event's run carries what the sensor read (the article, the filing), so the run
  fetches only what that event needs. Its run has Dagster's run retries (tags on the jobs).
- An event stays *pending* from the tick that asks for its run until a run for it succeeds.
  A run that finally failed (its retries spent) is asked for again by a later tick, under a
  new run key, with a growing pause: never forgotten. A run a person canceled is left so.
- The first tick on an empty cursor records the history window in one run; its run key
  holds only the day, so a first tick replayed after a crash asks for that run once.
- An outage skips the tick (grey) and keeps the cursor; a source still failing after
  ``FAILING_AFTER`` fails the ticks (red) with the reason, as does a missing setting at once;
  anything but a source error (a parser bug) is red too, never filed as an outage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    sensor,
)

from omc_pipelines.ledgers.catalyst import assets as catalyst
from omc_pipelines.ledgers.trading import assets as trading
from omc_pipelines.resources import AnnouncementsResource, SecResource
from omc_pipelines.sources.http import SourceError
from omc_pipelines.sources.sec import SecUserAgentError, filings_of

SENSOR_TIMEOUT = 5.0
SENSOR_RETRIES = 1
# Every request of one tick together, retries and pauses included: well inside the 60 s
# Dagster gives a tick.
TICK_BUDGET = 30.0
# How far back a tick looks past its last good read, for events indexed late.
LOOKBACK = timedelta(days=1)
# Ids remembered; far more than a help centre or two filers publish in the lookback.
SEEN_LIMIT = 2000
# A source failing this long turns the sensor's ticks red.
FAILING_AFTER = timedelta(minutes=2)
# A requested run that has not appeared after this long is asked for again.
LAUNCH_GRACE = timedelta(minutes=5)
# The longest pause before asking again for a failed event's run (see _pause_after).
MAX_RETRY_PAUSE = timedelta(hours=1)
EVENT_TAG = "omc/event"
# Dagster's whole-run retries (run_retries in dagster.yaml): a failed catalyst run is
# re-executed from its failed step. Safe for trading: an order is never sent twice, and a run
# that sent one gives its retries up before it leaves (ledgers/trading/assets.py).
RUN_RETRIES = {"dagster/max_retries": "3", "dagster/retry_on_asset_or_op_failure": "true"}

# A catalyst's run carries the trading assets after it: detection to order in one run launch.
# Their blocking checks stand between: an event that fails them never reaches trading.
catalyst_listings_job = define_asset_job(
    "catalyst_listings", selection=[catalyst.coinspot_announcements, *trading.AFTER_A_CATALYST],
    tags={**RUN_RETRIES, **trading.MONEY_RUN_LIMIT},
    description="Record CoinSpot announcements and trade on them; launched by coinspot_listing_sensor for each new article.",
)
catalyst_filings_job = define_asset_job(
    "catalyst_filings", selection=[catalyst.sec_filings, *trading.AFTER_A_CATALYST],
    tags={**RUN_RETRIES, **trading.MONEY_RUN_LIMIT},
    description="Record SEC filings and trade on them; launched by sec_filing_sensor for each new filing.",
)


class SensorFailure(Exception):
    """A tick that must show red: what is wrong and what to do."""


@dataclass
class Cursor:
    """What a catalyst sensor remembers between ticks (JSON in Dagster's cursor)."""

    read_through: str | None = None  # when the last good read began
    seen: list[str] = field(default_factory=list)  # newest first
    pending: dict[str, dict] = field(default_factory=dict)  # id -> {"attempt", "requested_at", "record"}
    failing_since: str | None = None
    validators: dict[str, list] = field(default_factory=dict)  # SEC: cik -> [etag, last-modified]

    @classmethod
    def read(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        stored = json.loads(text)
        return cls(**{k: v for k, v in stored.items() if k in cls.__dataclass_fields__})

    def write(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


@dataclass(frozen=True)
class Found:
    """One event a tick found: its id, the record its run needs, the tags its run shows."""

    id: str
    record: str
    tags: dict[str, str]


@dataclass(frozen=True)
class Watch:
    """What differs between the two catalyst sensors."""

    source: str  # catalyst_events.source
    asset: str
    run_key_prefix: str
    what: str  # "CoinSpot's help centre", for messages


def _daemon_interval(seconds: int) -> int:
    """The minimum interval that makes the daemon tick every ``seconds``.

    The daemon looks at sensors on a 5 s loop and skips one whose last tick began
    less than the interval ago; asking for exactly a multiple of 5 loses every
    other look to jitter (measured: "5 s" ticked every 5-10 s, mean 8.2 s)."""
    return max(1, seconds - 1)


def _run_config(watch: Watch, found: Found, detected_at: str) -> dict:
    config = {"ids": [found.id], "detected_at": {found.id: detected_at}, "records": {found.id: found.record}}
    return {"ops": {watch.asset: {"config": config}}}


def _event_request(watch: Watch, found: Found, detected_at: str, attempt: int) -> RunRequest:
    key = f"{watch.run_key_prefix}-{found.id}" + (f"-attempt-{attempt}" if attempt > 1 else "")
    tags = {**found.tags, EVENT_TAG: f"{watch.source}:{found.id}", "omc/attempt": str(attempt)}
    return RunRequest(run_key=key, run_config=_run_config(watch, found, detected_at), tags=tags)


def _history_request(watch: Watch, now: datetime, count: int) -> RunRequest:
    # The key holds the day only: a first tick evaluated twice (a crash before its cursor was
    # stored) asks for the same run, which Dagster launches once.
    return RunRequest(run_key=f"{watch.asset}-history-{now:%Y%m%d}", tags={"omc/history": str(count)})


def _settle_pending(context: SensorEvaluationContext, watch: Watch, cursor: Cursor, now: datetime,
                    notes: list[str]) -> list[RunRequest]:
    """Forget events whose run succeeded; ask again for those whose runs all failed."""
    again = []
    for event_id, entry in list(cursor.pending.items()):
        runs = context.instance.get_runs(RunsFilter(tags={EVENT_TAG: f"{watch.source}:{event_id}"}))
        statuses = {run.status for run in runs}
        requested_at = datetime.fromisoformat(entry["requested_at"])
        if DagsterRunStatus.SUCCESS in statuses:
            del cursor.pending[event_id]
        elif DagsterRunStatus.CANCELED in statuses and not statuses - {DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE}:
            notes.append(f"{event_id}: its run was canceled by hand; not asked for again")
            del cursor.pending[event_id]
        elif not runs:
            if now - requested_at > LAUNCH_GRACE:
                again.append(event_id)
        elif statuses <= {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED} and not _retry_coming(runs):
            pause = _pause_after(entry["attempt"])
            if now - requested_at >= pause:
                again.append(event_id)
            else:
                notes.append(f"{event_id}: run failed {entry['attempt']} time(s); asking again after {pause}")
    requests = []
    for event_id in again:
        entry = cursor.pending[event_id]
        entry["attempt"] += 1
        entry["requested_at"] = now.isoformat()
        found = Found(event_id, entry["record"], entry.get("tags", {}))
        requests.append(_event_request(watch, found, entry["detected_at"], entry["attempt"]))
        notes.append(f"{event_id}: asking again (attempt {entry['attempt']}): its earlier run did not succeed")
    return requests


def _pause_after(attempts: int) -> timedelta:
    """The first failure is asked again at once (Dagster's own retries have already paused);
    then 2, 4, 8 ... minutes, at most ``MAX_RETRY_PAUSE``: a source down for a day is not hammered."""
    return timedelta(0) if attempts <= 1 else min(timedelta(minutes=2 ** (attempts - 1)), MAX_RETRY_PAUSE)


def _retry_coming(runs) -> bool:
    """A failed run that Dagster will retry and has not yet: wait for the retry."""
    return any(r.tags.get("dagster/will_retry") == "true" and not r.tags.get("dagster/auto_retry_run_id") for r in runs)


def _failed_read(watch: Watch, cursor: Cursor, now: datetime, error: SourceError) -> SensorResult:
    """Grey for a passing outage, red (raised) once it has lasted ``FAILING_AFTER``."""
    since = datetime.fromisoformat(cursor.failing_since) if cursor.failing_since else now
    if now - since >= FAILING_AFTER:
        raise SensorFailure(f"{watch.what} has failed every tick since {since:%Y-%m-%d %H:%M:%S} UTC: {error}. "
                            "Nothing is lost: the first good tick catches up from the cursor.")
    cursor.failing_since = since.isoformat()
    return SensorResult(skip_reason=f"{watch.what} could not be read ({error}); the next tick catches up",
                        cursor=cursor.write())


def _tick(context: SensorEvaluationContext, watch: Watch, cursor: Cursor, now: datetime,
          found: list[Found]) -> SensorResult:
    """The common part of a good read: history on the first tick, new events, pending events."""
    first = cursor.read_through is None
    notes: list[str] = []
    known = set(cursor.seen)
    new = [f for f in found if f.id not in known]
    if first:
        # Recorded even when the source lists nothing yet: the cursor starts now either way.
        requests = [_history_request(watch, now, len(new))]
    else:
        requests = _settle_pending(context, watch, cursor, now, notes)
        for event in new:
            cursor.pending[event.id] = {"attempt": 1, "requested_at": now.isoformat(), "record": event.record,
                                        "detected_at": now.isoformat(), "tags": event.tags}
            requests.append(_event_request(watch, event, now.isoformat(), 1))
    cursor.seen = ([f.id for f in new] + cursor.seen)[:SEEN_LIMIT]
    cursor.read_through = now.isoformat()
    cursor.failing_since = None
    if new and not first:
        notes.insert(0, f"{len(new)} new: " + ", ".join(f.id for f in new))
    if cursor.pending:
        notes.append(f"{len(cursor.pending)} event(s) waiting for a successful run")
    skip = None if requests else ("; ".join(notes) or f"nothing new at {watch.what}: "
                                  f"{len(found)} event(s) listed since the last read, all seen before")
    return SensorResult(run_requests=requests, cursor=cursor.write(), skip_reason=skip)


def _since(cursor: Cursor, now: datetime, history_days: int) -> datetime:
    if cursor.read_through is None:
        return now - timedelta(days=history_days)
    return min(datetime.fromisoformat(cursor.read_through), now) - LOOKBACK


LISTINGS = Watch(catalyst.ANNOUNCEMENTS_SOURCE, "coinspot_announcements", "coinspot-article", "CoinSpot's help centre")
FILINGS = Watch(catalyst.SEC_SOURCE, "sec_filings", "sec", "SEC EDGAR")


def listing_tick(context: SensorEvaluationContext, announcements: AnnouncementsResource):
    cursor = Cursor.read(context.cursor)
    now = datetime.now(timezone.utc)
    try:
        with announcements.client(timeout=SENSOR_TIMEOUT, retries=SENSOR_RETRIES, budget=TICK_BUDGET) as client:
            articles = client.latest(since=_since(cursor, now, announcements.history_days))
    except SourceError as exc:
        return _failed_read(LISTINGS, cursor, now, exc)
    found = [Found(str(a.id), catalyst.article_record(a), {"omc/article": str(a.id), "omc/title": a.title[:200]})
             for a in reversed(articles)]  # oldest first
    return _tick(context, LISTINGS, cursor, now, found)


def filing_tick(context: SensorEvaluationContext, sec: SecResource):
    cursor = Cursor.read(context.cursor)
    now = datetime.now(timezone.utc)
    validators = dict(cursor.validators)
    since = _since(cursor, now, sec.history_days)
    filings = []
    try:
        with sec.client(timeout=SENSOR_TIMEOUT, retries=SENSOR_RETRIES, budget=TICK_BUDGET) as client:
            for cik in sec.ciks:
                etag, last_modified = validators.get(cik, [None, None])
                submissions = client.submissions(cik, etag=etag, last_modified=last_modified)
                if submissions.not_modified:
                    continue  # cheap: nothing filed since the last tick
                validators[cik] = [submissions.etag, submissions.last_modified]
                filings += [f for f in filings_of(submissions.filings, sec.forms, amendments=True) if f.accepted_at >= since]
    except SecUserAgentError as exc:
        raise SensorFailure(str(exc)) from None
    except SourceError as exc:
        return _failed_read(FILINGS, cursor, now, exc)
    found = [Found(f.accession_number, catalyst.filing_record(f),
                   {"omc/accession": f.accession_number, "omc/form": f.form, "omc/company": f.company[:100]})
             for f in sorted(filings, key=lambda f: f.accepted_at)]
    cursor.validators = validators
    return _tick(context, FILINGS, cursor, now, found)


def build_sensors(listing_seconds: int = 10, filing_seconds: int = 60) -> list[SensorDefinition]:
    """The two catalyst sensors at the configured intervals (definitions.py passes them)."""
    listing = sensor(
        name="coinspot_listing_sensor", job=catalyst_listings_job,
        minimum_interval_seconds=_daemon_interval(listing_seconds), default_status=DefaultSensorStatus.RUNNING,
        description=f"Polls CoinSpot's announcements every {listing_seconds} s (OMC_LISTING_SENSOR_SECONDS); "
        "one run per new article, asked again until it succeeds.",
    )(listing_tick)
    filing = sensor(
        name="sec_filing_sensor", job=catalyst_filings_job,
        minimum_interval_seconds=_daemon_interval(filing_seconds), default_status=DefaultSensorStatus.RUNNING,
        description=f"Polls the tracked companies' EDGAR submissions every {filing_seconds} s "
        "(OMC_FILING_SENSOR_SECONDS) with conditional requests; one run per new filing, asked again until it succeeds.",
    )(filing_tick)
    return [listing, filing]


# At the default intervals, for tests and tools; the code location uses build_sensors(config).
coinspot_listing_sensor, sec_filing_sensor = build_sensors()
ALL_JOBS = [catalyst_listings_job, catalyst_filings_job]
