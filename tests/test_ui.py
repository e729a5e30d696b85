"""The whole stack as a user runs it: `dg dev` (web UI and daemon) from the
repository root, the project's dagster.yaml, the sandbox, a real Chromium."""

import os
import shutil
import time

import pytest
import sqlalchemy as sa

from omc_pipelines.db import get_engine, upgrade
from omc_pipelines.db.models import PriceSnapshot
from omc_pipelines import settings
from omc_pipelines.definitions import build_defs
from omc_pipelines.sandbox import stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture
def dagster_dev(tmp_path, sandbox):
    """`dg dev` against the sandbox, with a ledger database of its own."""
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(get_engine(database))
    env = {**sandbox.env(), "OMC_DATABASE_URL": database, "OMC_COINSPOT_WATCHLIST": "btc,pepe"}
    with stack.dagster_dev(tmp_path, env) as url:
        yield url, database


@pytest.fixture
def chromium():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI (.ci/run installs Debian's chromium)", pytrace=False)
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_the_ui_shows_the_exchange_ledger_and_the_daemon_fills_it_on_schedule(dagster_dev, chromium, tmp_path):
    url, database = dagster_dev
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{url}/assets")
    skip = page.get_by_role("button", name="Skip")  # Dagster's newsletter prompt on a new instance
    skip.or_(page.get_by_text("coinspot_trades")).first.wait_for(timeout=30_000)
    if skip.is_visible():
        skip.click()
    # The catalog: every ledger asset, and both groups.
    for name in ("coinspot_price_snapshots", "coinspot_trades", "coinspot_hourly_candles",
                 "coinspot_announcements", "sec_filings", "exchange", "catalyst"):
        page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "catalog.png"))

    repositories = stack.graphql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes "
                                "{ schedules { name scheduleState { status } } } } } }")
    states = {s["name"]: s["scheduleState"]["status"]
              for repo in repositories["repositoriesOrError"]["nodes"] for s in repo["schedules"]}
    # Every schedule of the project is on from the start.
    assert states == {schedule.name: "RUNNING" for schedule in build_defs(settings.load({})).get_repository_def().schedule_defs}

    # The minutely schedule's next tick, run by the daemon through the queued coordinator.
    deadline = time.monotonic() + 150
    runs = []
    while time.monotonic() < deadline:
        runs = stack.graphql(url, '{ runsOrError(filter: {pipelineName: "exchange_market_data"}) '
                            "{ ... on Runs { results { status tags { key value } } } } }")["runsOrError"]["results"]
        if any(r["status"] in ("SUCCESS", "FAILURE") for r in runs):
            break
        time.sleep(2)
    assert [r["status"] for r in runs][-1:] == ["SUCCESS"], runs
    tick = next(t["value"] for t in runs[-1]["tags"] if t["key"] == "omc/observed_at")
    with get_engine(database).connect() as conn:
        observed = conn.execute(sa.select(PriceSnapshot.observed_at).distinct()).scalars().all()
        coins = set(conn.execute(sa.select(PriceSnapshot.coin)).scalars())
    assert [o.isoformat() for o in observed] == [tick]
    assert {"btc", "pepe"} <= coins

    page.goto(f"{url}/assets/coinspot_price_snapshots?view=checks")
    page.get_by_text("prices_positive").first.wait_for(timeout=30_000)
