"""The Catalyst ledger end to end: `dg dev` (web UI and the real daemon) against the
sandbox. A new article or 8-K becomes exactly one sensor run and one ledger row; a
daemon restart, with publications while it was down, launches nothing twice."""

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from omc_pipelines.db import get_engine
from omc_pipelines.db.models import CatalystEvent
from omc_pipelines.sandbox import stack
from omc_pipelines.sandbox.sec import COINBASE, STRATEGY
from omc_trading.tables import orders, positions, signals

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENT = "OMC e2e e2e@example.com"
PURCHASE = (
    "On November 30, 2026, Strategy Inc announced that it had acquired approximately 1,500 bitcoins "
    "for approximately $150.0 million in cash, at an average price of approximately $100,000 per bitcoin."
)
ARTICLE = "coinspot_announcements"
SENSORS = ("coinspot_listing_sensor", "sec_filing_sensor")
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
# A run starts 3-7 s after its trigger with 5 s sensors and a 1 s dequeue; this leaves room for a loaded CI box.
RUN_TIMEOUT = 60.0

RUN_FIELDS = "runId status jobName creationTime tags { key value }"


# --- GraphQL and polling ---------------------------------------------------------------


def runs(url: str, tag: tuple[str, str] | None = None) -> list[dict]:
    where = ""
    if tag:
        where = f"(filter: {{tags: [{{key: {json.dumps(tag[0])}, value: {json.dumps(tag[1])}}}]}})"
    data = stack.graphql(url, f"{{ runsOrError{where} {{ ... on Runs {{ results {{ {RUN_FIELDS} }} }} "
                              "... on PythonError { message } } }")["runsOrError"]
    assert "results" in data, data
    return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in data["results"]]


def completed_ticks(url: str) -> dict[str, list[dict]]:
    # With a status filter: the unfiltered `ticks` goes through a loader keyed by the code location's
    # origin id, which `dg dev` changes on every start, so after a restart it answers [].
    data = stack.graphql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name "
                              "sensorState { ticks(limit: 100, statuses: [SUCCESS, SKIPPED]) "
                              "{ status timestamp runKeys } } } } } } }")
    return {s["name"]: s["sensorState"]["ticks"]
            for repo in data["repositoriesOrError"]["nodes"] for s in repo["sensors"] if s["name"] in SENSORS}


def log_tail(workdir: Path, chars: int = 6000) -> str:
    parts = []
    for name in ("dg.first.log", "dg.log"):
        path = workdir / name
        if path.exists():
            parts.append(f"--- tail of {path} ---\n{path.read_text(errors='replace')[-chars:]}")
    return "\n".join(parts) or f"(no dg log in {workdir})"


def wait_for(what: str, probe, workdir: Path, timeout: float = RUN_TIMEOUT, interval: float = 0.5):
    """Poll ``probe`` until it returns something truthy; fail with what was awaited and the dg log."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}; last probe: {last!r}\n{log_tail(workdir)}", pytrace=False)
        time.sleep(interval)


def finished_run(url: str, run_key: str, workdir: Path) -> dict:
    """The one run with ``run_key``, once it has ended; fails unless it succeeded."""
    def probe():
        found = runs(url, ("dagster/run_key", run_key))
        return found if found and all(r["status"] in TERMINAL for r in found) else None

    found = wait_for(f"a finished run with run key {run_key}", probe, workdir)
    assert [r["status"] for r in found] == ["SUCCESS"], f"{run_key}: {found}\n{log_tail(workdir)}"
    return found[0]


def all_runs_finished(url: str, workdir: Path, job_prefix: str = "catalyst_") -> list[dict]:
    def probe():
        found = [r for r in runs(url) if r["jobName"].startswith(job_prefix)]
        return found if all(r["status"] in TERMINAL for r in found) else None

    return wait_for(f"every {job_prefix}* run to end", probe, workdir)


def events(engine: sa.Engine, source: str | None = None) -> list:
    query = sa.select(CatalystEvent).order_by(CatalystEvent.id)
    if source:
        query = query.where(CatalystEvent.source == source)
    with engine.connect() as conn:
        return list(conn.execute(query))


def the_row(engine: sa.Engine, source: str, external_id: str, workdir: Path):
    found = wait_for(f"the catalyst_events row ({source}, {external_id})",
                     lambda: [e for e in events(engine, source) if e.external_id == external_id],
                     workdir, interval=0.2)
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


# --- the test ----------------------------------------------------------------------------


# One path through the daemon, once: on PostgreSQL, as it runs in production (the UI test drives
# the daemon on a SQLite ledger; everything here is also tested in-process on both databases).
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_new_articles_and_filings_become_one_run_and_one_row_each_across_a_daemon_restart(
    database_url, sandbox, tmp_path
):
    engine = get_engine(database_url)
    env = {
        **sandbox.env(),
        "OMC_DATABASE_URL": database_url,
        "OMC_LISTING_SENSOR_SECONDS": "5",
        "OMC_FILING_SENSOR_SECONDS": "5",
        "OMC_SEC_USER_AGENT": AGENT,
        "OMC_SEC_CIKS": f"{STRATEGY},{COINBASE}",
        "OMC_COINSPOT_WATCHLIST": "btc",
    }

    with stack.dagster_dev(tmp_path, env) as url:
        assert set(completed_ticks(url)) == set(SENSORS)

        # The first tick of each sensor, on an empty cursor, asks for one history run.
        def history_done():
            found = [r for r in runs(url) if "omc/history" in r["tags"]]
            listing = [r for r in found if r["jobName"] == "catalyst_listings"]
            ticked = completed_ticks(url)
            if listing and all(r["status"] in TERMINAL for r in found) and all(ticked.values()):
                return found
            return None

        history = wait_for("the sensors' first ticks and the history run(s) they requested", history_done, tmp_path)
        assert all(r["status"] == "SUCCESS" for r in history), history
        assert [r["jobName"] for r in history].count("catalyst_listings") == 1, history
        assert all("-history-" in r["tags"]["dagster/run_key"] for r in history), history
        recorded = {e.external_id for e in events(engine, ARTICLE)}
        assert {str(a["id"]) for a in sandbox.zendesk.articles()} >= recorded and recorded, recorded

        # A new listing article and a new 8-K, published together: each becomes one run under
        # its run key and one row with what it says; the listing's run also buys FOO on paper.
        sandbox.coinspot.set_price("foo", bid="1.98", ask="2.00", last="2.00")
        article = sandbox.zendesk.publish("New Coin Listing: Foo Token (FOO)", "<p>FOO trades from today.</p>")
        article_id = str(article["id"])
        accession = sandbox.sec.publish_8k(STRATEGY, PURCHASE, items=("7.01", "8.01"))

        run = finished_run(url, f"coinspot-article-{article_id}", tmp_path)
        assert run["jobName"] == "catalyst_listings" and run["tags"]["omc/article"] == article_id
        assert run["tags"]["dagster/sensor_name"] == "coinspot_listing_sensor"
        row = the_row(engine, ARTICLE, article_id, tmp_path)
        assert (row.event_type, row.currencies, row.impact_score) == ("listing", ["FOO"], 9)
        assert row.title == "New Coin Listing: Foo Token (FOO)" and row.published_at <= row.detected_at
        # The same run turned it into a signal, a risk decision, a filled paper order and a position.
        [signal] = trading_rows(engine, signals, signals.c.event_external_id == article_id)
        assert (signal.action, signal.coin, signal.decision, signal.mode) == ("buy", "foo", "accepted", "paper")
        [order] = trading_rows(engine, orders, orders.c.event_external_id == article_id)
        assert (order.state, order.aud_total, order.fee_aud, order.rate) == ("filled", Decimal("100.00"),
                                                                             Decimal("1.00"), Decimal("2.00"))
        [position] = trading_rows(engine, positions, positions.c.coin == "foo")
        assert position.coin_amount == Decimal("49.5") and position.mode == "paper"

        run = finished_run(url, f"sec-{accession}", tmp_path)
        assert run["jobName"] == "catalyst_filings" and run["tags"]["omc/accession"] == accession
        assert run["tags"]["dagster/sensor_name"] == "sec_filing_sensor"
        filing = the_row(engine, "sec", accession, tmp_path)
        assert (filing.event_type, filing.impact_score, filing.currencies) == ("bitcoin_purchase", 9, ["BTC"])
        assert filing.title.startswith("8-K Strategy") and "1,500 BTC" in filing.description

        before = all_runs_finished(url, tmp_path)
        # The daemon stops with the context: nothing of ours may be in flight.
    (tmp_path / "dg.log").rename(tmp_path / "dg.first.log")

    keys_before = run_keys(before)
    assert all(n == 1 for n in keys_before.values()), keys_before
    rows_before = {(e.source, e.external_id): e.collected_at for e in events(engine)}

    # Published while the daemon is down.
    outage = sandbox.zendesk.publish("Delisting Notice: Old Coin (OLDC)", "<p>OLDC leaves CoinSpot next week.</p>")
    outage_id = str(outage["id"])
    outage_accession = sandbox.sec.publish_8k(COINBASE, "We hold bitcoin and ether (ETH) as digital assets.",
                                              items=("7.01",))
    restarted_at = time.time()

    # The same working folder: the same DAGSTER_HOME and storage, so the sensors' cursors persist.
    with stack.dagster_dev(tmp_path, env) as url:
        carried = run_keys(r for r in runs(url) if r["jobName"].startswith("catalyst_"))
        assert keys_before.items() <= carried.items(), f"the restarted instance lost earlier runs: {carried}"

        finished_run(url, f"coinspot-article-{outage_id}", tmp_path)
        row = the_row(engine, ARTICLE, outage_id, tmp_path)
        assert (row.event_type, row.currencies) == ("delisting", ["OLDC"])
        finished_run(url, f"sec-{outage_accession}", tmp_path)
        filing = the_row(engine, "sec", outage_accession, tmp_path)
        assert filing.currencies == ["BTC", "ETH"] and filing.impact_score == 6

        # Two more completed ticks of each sensor after the one that launched its outage run:
        # a replayed or forgotten cursor would have asked for something again by then.
        def ticks_after_the_outage_runs():
            counts = {}
            for name, ticks in completed_ticks(url).items():
                launched = [t["timestamp"] for t in ticks if set(t["runKeys"]) & outage_keys]
                counts[name] = sum(t["timestamp"] > launched[0] for t in ticks) if launched else 0
            return all(n >= 2 for n in counts.values())

        outage_keys = {f"coinspot-article-{outage_id}", f"sec-{outage_accession}"}
        wait_for("two completed ticks of each sensor after the one that launched its outage run",
                 ticks_after_the_outage_runs, tmp_path, timeout=45)
        after = all_runs_finished(url, tmp_path)

    keys_after = run_keys(after)
    doubled = {k: n for k, n in keys_after.items() if n != 1}
    assert not doubled, f"run keys launched more than once: {doubled}"
    new_keys = set(keys_after) - set(keys_before)
    assert new_keys == outage_keys, new_keys
    history_after = [r for r in after if "omc/history" in r["tags"]]
    assert {r["runId"] for r in history_after} == {r["runId"] for r in history}, "a history run was requested again"
    assert not [r for r in after if r["creationTime"] >= restarted_at
                and "-history-" in r["tags"].get("dagster/run_key", "")], "a history run after the restart"

    # Nothing was traded twice across the restart: one order per idempotency key, the one FOO buy.
    with engine.connect() as conn:
        assert [r.coin for r in conn.execute(sa.select(orders.c.coin))] == ["foo"]
    rows_after = {(e.source, e.external_id): e.collected_at for e in events(engine)}
    assert set(rows_after) - set(rows_before) == {(ARTICLE, outage_id), ("sec", outage_accession)}
    rewritten = [k for k, collected in rows_before.items() if rows_after[k] != collected]
    assert not rewritten, f"rows written again after the restart: {rewritten}"
