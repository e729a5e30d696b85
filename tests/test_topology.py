"""The production topology on this machine: the code location as a gRPC code server,
`dagster-webserver` and `dagster-daemon` as separate processes pointed at it by a
workspace.yaml, Dagster's storage in PostgreSQL (deploy/postgres/dagster.yaml as it stands)
and the ledgers in PostgreSQL, against the sandbox.

One start of each process, then, in order:
(a) a scheduled partition completes: the hourly candles' tick that the daemon missed while it
    was down is caught up and its partition built;
(b) the sensors' first ticks ask for their history once, and a new listing becomes one run, its
    catalyst_events row and its paper order; a new 8-K one run and its row;
(c) the code server is killed (SIGKILL, its whole process group) right after a publication and
    restarted: nothing lost, nothing doubled;
(d) the daemon is restarted with publications while it was down: each picked up once, the
    history run not asked for again.
"""

import json
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance

from omc_pipelines import settings
from omc_pipelines.db import get_engine
from omc_pipelines.db.models import CatalystEvent
from omc_pipelines.definitions import build_defs
from omc_pipelines.sandbox import stack
from omc_pipelines.sandbox.sec import COINBASE, STRATEGY
from omc_trading.tables import orders, positions, signals

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]

AGENT = "OMC e2e e2e@example.com"
PURCHASE = (
    "On November 30, 2026, Strategy Inc announced that it had acquired approximately 1,500 bitcoins "
    "for approximately $150.0 million in cash, at an average price of approximately $100,000 per bitcoin."
)
ARTICLE = "coinspot_announcements"
SENSORS = ("coinspot_listing_sensor", "sec_filing_sensor")
CANDLES_SCHEDULE = "exchange_hourly_candles_schedule"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
# A run starts 3-7 s after its trigger with 5 s sensors and a 1 s dequeue; this leaves room for a loaded CI box.
# Per run awaited: the queued run coordinator launches runs one at a time, and the catalyst runs
# share the trading pool (one at a time too).
RUN_TIMEOUT = 60.0
SENSOR_SECONDS = 5
# The daemon reloads its workspace every 60 s (dagster._daemon.controller.RELOAD_WORKSPACE_INTERVAL),
# checked every 5 s: a location found down then is not asked again until the next reload.
DAEMON_WORKSPACE_REFRESH = 65.0

RUN_FIELDS = "runId status jobName creationTime tags { key value }"


# --- GraphQL, the instance and polling ---------------------------------------------------------


def runs(prod: stack.Production, tag: tuple[str, str] | None = None) -> list[dict]:
    where = ""
    if tag:
        where = f"(filter: {{tags: [{{key: {json.dumps(tag[0])}, value: {json.dumps(tag[1])}}}]}})"
    data = stack.graphql(prod.url, f"{{ runsOrError{where} {{ ... on Runs {{ results {{ {RUN_FIELDS} }} }} "
                                   "... on PythonError { message } } }")["runsOrError"]
    assert "results" in data, data
    return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in data["results"]]


def completed_ticks(prod: stack.Production) -> dict[str, list[dict]]:
    # Completed ones only: ticks that failed while the code server was down are not the cursor's history.
    data = stack.graphql(prod.url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name "
                                   "sensorState { ticks(limit: 100, statuses: [SUCCESS, SKIPPED]) "
                                   "{ status timestamp runKeys } } } } } } }")
    return {s["name"]: s["sensorState"]["ticks"]
            for repo in data["repositoriesOrError"]["nodes"] for s in repo["sensors"] if s["name"] in SENSORS}


def failed_ticks_since(instance: DagsterInstance, sensor: str, since: float) -> list:
    """The sensor's failed ticks after ``since``, from the instance itself: the webserver shows no
    sensors while the code server is down."""
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    [state] = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
               if s.instigator_name == sensor]
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
    return [t for t in ticks if t.status == TickStatus.FAILURE and t.timestamp > since]


def wait_for(what: str, probe, prod: stack.Production, timeout: float = RUN_TIMEOUT, interval: float = 0.5):
    """Poll ``probe`` until it returns something truthy; fail with what was awaited and the processes' logs."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        prod.check_alive()
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}; last probe: {last!r}\n{prod.logs()}", pytrace=False)
        time.sleep(interval)


def finished_run(prod: stack.Production, run_key: str, timeout: float = RUN_TIMEOUT) -> dict:
    """The one run with ``run_key``, once it has ended; fails unless it succeeded."""
    def probe():
        found = runs(prod, ("dagster/run_key", run_key))
        return found if found and all(r["status"] in TERMINAL for r in found) else None

    found = wait_for(f"a finished run with run key {run_key}", probe, prod, timeout)
    assert [r["status"] for r in found] == ["SUCCESS"], f"{run_key}: {found}\n{prod.logs()}"
    return found[0]


def all_runs_finished(prod: stack.Production, job_prefix: str = "catalyst_") -> list[dict]:
    def probe():
        found = [r for r in runs(prod) if r["jobName"].startswith(job_prefix)]
        return found if all(r["status"] in TERMINAL for r in found) else None

    return wait_for(f"every {job_prefix}* run to end", probe, prod)


def events(engine: sa.Engine, source: str | None = None) -> list:
    query = sa.select(CatalystEvent).order_by(CatalystEvent.id)
    if source:
        query = query.where(CatalystEvent.source == source)
    with engine.connect() as conn:
        return list(conn.execute(query))


def the_row(engine: sa.Engine, source: str, external_id: str, prod: stack.Production):
    found = wait_for(f"the catalyst_events row ({source}, {external_id})",
                     lambda: [e for e in events(engine, source) if e.external_id == external_id], prod, interval=0.2)
    assert len(found) == 1, found
    return found[0]


def trading_rows(engine: sa.Engine, table: sa.Table, where) -> list:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(where)))


def run_keys(found) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in found:
        key = run["tags"].get("dagster/run_key")
        if key:
            counts[key] = counts.get(key, 0) + 1
    return counts


def rows(engine: sa.Engine) -> dict[tuple[str, str], datetime]:
    return {(e.source, e.external_id): e.collected_at for e in events(engine)}


def the_daemon_was_down_for_an_hour(prod: stack.Production) -> float:
    """The schedules' state as the instance holds it before any process of the stack starts:

    - the hourly candles' schedule as a daemon that ran until an hour ago leaves it: first seen
      and last checkpointed then, no tick since. The daemon's scheduler catches up from it (the
      :05 tick it missed, with the week of the hour before as its partition), as after a real outage;
    - every other schedule stopped, as a person stops one in the UI: the minutely ones would add
      two run processes a minute on a 2-core machine, and the UI test runs one already.

    Returns when the daemon "went down"."""
    from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
    from dagster._core.remote_origin import RemoteInstigatorOrigin, RemoteRepositoryOrigin
    from dagster._core.scheduler.instigation import (
        InstigatorState, InstigatorStatus, InstigatorType, ScheduleInstigatorData,
    )
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    # The origins the daemon itself derives from the workspace file: the state is found by them.
    [location] = WorkspaceFileTarget([str(prod.workspace)]).create_origins()
    repository = RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME)
    went_down = time.time() - 3600
    with DagsterInstance.from_config(str(prod.home)) as instance:  # also creates Dagster's tables
        for schedule in build_defs(settings.load({})).get_repository_def().schedule_defs:
            if schedule.name == CANDLES_SCHEDULE:
                status, data = InstigatorStatus.DECLARED_IN_CODE, ScheduleInstigatorData(
                    schedule.cron_schedule, start_timestamp=went_down, last_iteration_timestamp=went_down)
            else:
                status, data = InstigatorStatus.STOPPED, ScheduleInstigatorData(schedule.cron_schedule)
            origin = RemoteInstigatorOrigin(repository, schedule.name)
            instance.add_instigator_state(InstigatorState(origin, InstigatorType.SCHEDULE, status, data))
    return went_down


# --- the test ----------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_production_topology_runs_schedules_and_sensors_and_survives_restarts(
    database_url, dagster_postgres_url, sandbox, tmp_path, monkeypatch
):
    engine = get_engine(database_url)
    env = {
        **sandbox.env(),
        "DAGSTER_POSTGRES_URL": dagster_postgres_url,
        "OMC_DATABASE_URL": database_url,
        "OMC_LISTING_SENSOR_SECONDS": str(SENSOR_SECONDS),
        "OMC_FILING_SENSOR_SECONDS": str(SENSOR_SECONDS),
        "OMC_SEC_USER_AGENT": AGENT,
        "OMC_SEC_CIKS": f"{STRATEGY},{COINBASE}",
        "OMC_COINSPOT_WATCHLIST": "btc",
    }
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_postgres_url)  # for this process's view of the instance
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def phase(name: str, what: str) -> None:
        nonlocal clock
        timings[name] = time.monotonic() - clock
        clock = time.monotonic()
        print(f"{name} ({what}): {timings[name]:.1f} s")

    went_down: list[float] = []
    with stack.production(tmp_path, env, before_start=lambda p: went_down.append(the_daemon_was_down_for_an_hour(p))
                          ) as prod, DagsterInstance.from_config(str(prod.home)) as instance:
        # Runs, event logs and schedules in PostgreSQL, as deploy/postgres/dagster.yaml says.
        storages = {type(s).__name__ for s in (instance.run_storage, instance.event_log_storage,
                                               instance.schedule_storage)}
        assert storages == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}, storages
        assert set(completed_ticks(prod)) == set(SENSORS)
        phase("start", "code server, webserver, daemon; the location loaded")

        # The first tick of each sensor, on an empty cursor, asks for one history run.
        def history_done():
            found = [r for r in runs(prod) if "omc/history" in r["tags"]]
            listing = [r for r in found if r["jobName"] == "catalyst_listings"]
            ticked = completed_ticks(prod)
            if listing and all(r["status"] in TERMINAL for r in found) and all(ticked.values()):
                return found
            return None

        # Two runs, launched one after the other: a timeout for each.
        history = wait_for("the sensors' first ticks and the history run(s) they requested", history_done, prod,
                           timeout=2 * RUN_TIMEOUT)
        assert all(r["status"] == "SUCCESS" for r in history), history
        assert [r["jobName"] for r in history].count("catalyst_listings") == 1, history
        assert all("-history-" in r["tags"]["dagster/run_key"] for r in history), history
        recorded = {e.external_id for e in events(engine, ARTICLE)}
        assert {str(a["id"]) for a in sandbox.zendesk.articles()} >= recorded and recorded, recorded

        # (a) The schedule's missed tick, caught up by the daemon: its partition, built. Its run is
        # launched after the history runs (the coordinator launches one at a time).
        def candles_done():
            found = [r for r in runs(prod) if r["tags"].get("dagster/schedule_name") == CANDLES_SCHEDULE]
            return found if found and all(r["status"] in TERMINAL for r in found) else None

        scheduled = wait_for("the candles' partition of the tick missed while the daemon was down", candles_done, prod)
        assert all(r["status"] == "SUCCESS" for r in scheduled), scheduled
        # Dagster catches up the latest tick missed (for this schedule that one only: "no partition
        # set"); a later run would be a tick of the test's own time, if it ran across a :05.
        # (The tick's time is a hidden tag: the instance has it, GraphQL leaves it out.)
        ticks = {r["tags"]["dagster/run_key"]: (r["tags"]["dagster/partition"], datetime.fromisoformat(
                 instance.get_run_by_id(r["runId"]).tags[".dagster/scheduled_execution_time"])) for r in scheduled}
        assert len(ticks) == len(scheduled), scheduled
        missed = [(key, partition, tick) for key, (partition, tick) in ticks.items()
                  if tick.timestamp() < prod.daemon.started_at]
        assert len(missed) == 1, ticks
        [(key, partition, tick)] = missed
        assert went_down[0] < tick.timestamp() and tick.minute == 5, (tick, went_down)
        # The week (its Monday) of the hour before the tick, rebuilt up to that hour; the run named by the hour.
        ended = tick - timedelta(hours=1)
        week = ended.date() - timedelta(days=ended.weekday())
        assert (partition, key) == (f"{week}", f"{ended:%Y-%m-%d-%H:00}"), (tick, partition, key)
        assert {p for p, _ in ticks.values()} <= instance.get_materialized_partitions(AssetKey("coinspot_hourly_candles"))
        phase("history+(a)", "the history runs, the partition of the missed tick")

        # (b) A new listing article and a new 8-K, published together: each becomes one run under
        # its run key and one row with what it says; the listing's run also buys FOO on paper.
        sandbox.coinspot.set_price("foo", bid="1.98", ask="2.00", last="2.00")
        article = sandbox.zendesk.publish("New Coin Listing: Foo Token (FOO)", "<p>FOO trades from today.</p>")
        article_id = str(article["id"])
        accession = sandbox.sec.publish_8k(STRATEGY, PURCHASE, items=("7.01", "8.01"))

        run = finished_run(prod, f"coinspot-article-{article_id}")
        assert run["jobName"] == "catalyst_listings" and run["tags"]["omc/article"] == article_id
        assert run["tags"]["dagster/sensor_name"] == "coinspot_listing_sensor"
        row = the_row(engine, ARTICLE, article_id, prod)
        assert (row.event_type, row.currencies, row.impact_score) == ("listing", ["FOO"], 9)
        # detected_at is when the tick that read it began: a publication landing mid-tick is read by
        # that tick, so it may come a moment after detected_at (seconds at most; a time-zone slip is hours).
        assert row.title == "New Coin Listing: Foo Token (FOO)"
        assert row.published_at - timedelta(seconds=10) <= row.detected_at, (row.published_at, row.detected_at)
        # The same run turned it into a signal, a risk decision, a filled paper order and a position.
        [signal] = trading_rows(engine, signals, signals.c.event_external_id == article_id)
        assert (signal.action, signal.coin, signal.decision, signal.mode) == ("buy", "foo", "accepted", "paper")
        [order] = trading_rows(engine, orders, orders.c.event_external_id == article_id)
        assert (order.state, order.aud_total, order.fee_aud, order.rate) == ("filled", Decimal("100.00"),
                                                                             Decimal("1.00"), Decimal("2.00"))
        [position] = trading_rows(engine, positions, positions.c.coin == "foo")
        assert position.coin_amount == Decimal("49.5") and position.mode == "paper"

        run = finished_run(prod, f"sec-{accession}")
        assert run["jobName"] == "catalyst_filings" and run["tags"]["omc/accession"] == accession
        assert run["tags"]["dagster/sensor_name"] == "sec_filing_sensor"
        filing = the_row(engine, "sec", accession, prod)
        assert (filing.event_type, filing.impact_score, filing.currencies) == ("bitcoin_purchase", 9, ["BTC"])
        assert filing.title.startswith("8-K Strategy") and "1,500 BTC" in filing.description
        before_kill = run_keys(all_runs_finished(prod))
        rows_before_kill = rows(engine)
        phase("(b)", "a listing -> its row and paper order, an 8-K -> its row")

        # (c) Published, then the code server killed outright before a sensor could read them:
        # its sensors make no progress (the cursor stays) until it is back on the same port.
        sandbox.coinspot.set_price("bar", bid="0.99", ask="1.00", last="1.00")
        crash_article = sandbox.zendesk.publish("New Coin Listing: Bar Token (BAR)", "<p>BAR trades from today.</p>")
        killed_at = time.time()
        prod.code_server.kill()
        crash_id = str(crash_article["id"])
        # The crash came between the publication and its run, as intended (a tick that read it first
        # would already have asked for the run, and the test would prove less): the listing sensor's
        # next tick fails, or, if the daemon's workspace refresh (every 60 s) found the location down
        # first, the daemon skips its sensors until the next refresh. Either way no run by then.
        wait_for("a failed tick of the listing sensor, or two of its intervals, with the code server down",
                 lambda: failed_ticks_since(instance, "coinspot_listing_sensor", killed_at)
                 or time.time() > killed_at + 2 * SENSOR_SECONDS + 2, prod)
        assert not runs(prod, ("dagster/run_key", f"coinspot-article-{crash_id}"))
        prod.restart_code_server()
        phase("(c) crash", "code server killed, its sensors stopped, restarted and reloaded")

        # Up to a workspace refresh later if the daemon had marked the location down.
        run = finished_run(prod, f"coinspot-article-{crash_id}", timeout=RUN_TIMEOUT + DAEMON_WORKSPACE_REFRESH)
        assert run["creationTime"] > killed_at
        row = the_row(engine, ARTICLE, crash_id, prod)
        assert (row.event_type, row.currencies) == ("listing", ["BAR"])
        [order] = trading_rows(engine, orders, orders.c.event_external_id == crash_id)
        assert (order.coin, order.state, order.aud_total) == ("bar", "filled", Decimal("100.00"))
        after_kill = run_keys(all_runs_finished(prod))
        assert all(n == 1 for n in after_kill.values()), after_kill
        assert set(after_kill) - set(before_kill) == {f"coinspot-article-{crash_id}"}, after_kill
        assert set(rows(engine)) - set(rows_before_kill) == {(ARTICLE, crash_id)}
        phase("(c) runs", "the listing published before the crash: one run, row, order")

        # (d) The daemon stopped as a deploy stops it (SIGTERM), publications while it is down,
        # started again: the cursors in the instance carry over.
        before = all_runs_finished(prod)
        keys_before = run_keys(before)
        rows_before = rows(engine)
        prod.daemon.stop()
        outage = sandbox.zendesk.publish("Delisting Notice: Old Coin (OLDC)", "<p>OLDC leaves CoinSpot next week.</p>")
        outage_id = str(outage["id"])
        outage_accession = sandbox.sec.publish_8k(COINBASE, "We hold bitcoin and ether (ETH) as digital assets.",
                                                  items=("7.01",))
        restarted_at = time.time()
        prod.daemon.start()

        finished_run(prod, f"coinspot-article-{outage_id}")
        row = the_row(engine, ARTICLE, outage_id, prod)
        assert (row.event_type, row.currencies) == ("delisting", ["OLDC"])
        finished_run(prod, f"sec-{outage_accession}")
        filing = the_row(engine, "sec", outage_accession, prod)
        assert filing.currencies == ["BTC", "ETH"] and filing.impact_score == 6

        # Two more completed ticks of each sensor after the one that launched its outage run:
        # a replayed or forgotten cursor would have asked for something again by then.
        def ticks_after_the_outage_runs():
            counts = {}
            for name, ticks in completed_ticks(prod).items():
                launched = [t["timestamp"] for t in ticks if set(t["runKeys"]) & outage_keys]
                counts[name] = sum(t["timestamp"] > launched[0] for t in ticks) if launched else 0
            return all(n >= 2 for n in counts.values())

        outage_keys = {f"coinspot-article-{outage_id}", f"sec-{outage_accession}"}
        wait_for("two completed ticks of each sensor after the one that launched its outage run",
                 ticks_after_the_outage_runs, prod, timeout=45)
        after = all_runs_finished(prod)
        phase("(d)", "daemon restarted, its outage's publications picked up once")

    keys_after = run_keys(after)
    assert keys_before.items() <= keys_after.items(), f"runs lost across the daemon's restart: {keys_after}"
    doubled = {k: n for k, n in keys_after.items() if n != 1}
    assert not doubled, f"run keys launched more than once: {doubled}"
    assert set(keys_after) - set(keys_before) == outage_keys, keys_after
    history_after = [r for r in after if "omc/history" in r["tags"]]
    assert {r["runId"] for r in history_after} == {r["runId"] for r in history}, "a history run was requested again"
    assert not [r for r in after if r["creationTime"] >= restarted_at
                and "-history-" in r["tags"].get("dagster/run_key", "")], "a history run after the restart"

    # Nothing was traded twice across the crash and the restart: one order per traded event.
    with engine.connect() as conn:
        assert sorted(r.coin for r in conn.execute(sa.select(orders.c.coin))) == ["bar", "foo"]
    rows_after = rows(engine)
    assert set(rows_after) - set(rows_before) == {(ARTICLE, outage_id), ("sec", outage_accession)}
    rewritten = [k for k, collected in rows_before.items() if rows_after[k] != collected]
    assert not rewritten, f"rows written again after the restart: {rewritten}"
    print("phases: " + ", ".join(f"{name} {t:.1f} s" for name, t in timings.items())
          + f"; all {sum(timings.values()):.1f} s")
