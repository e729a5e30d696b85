"""The whole stack as a user runs it: `dg dev` (web UI and daemon) from the
repository root, the project's dagster.yaml, the sandbox, a real Chromium."""

import os
import shutil
import time

import pytest
import sqlalchemy as sa
from dagster import AssetKey

from omc_pipelines.db import get_engine, upgrade
from omc_pipelines.db.models import PriceSnapshot
from omc_pipelines import settings
from omc_pipelines.definitions import build_defs, build_resources
from omc_pipelines.sandbox import stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


# An asset of each group, materialized in the test's own process into the UI's instance, and a
# column of its preview: what the UI shows of each (table, row count, preview inline).
ONE_OF_EACH_GROUP = {
    "exchange": ("coinspot_trades", "sold_at"),
    "catalyst": ("coinspot_announcements", "event_type"),
    "glass": ("defillama_protocols", "category"),
    "human": ("news_items", "sentiment"),
    "trading": ("trading_positions", "coin_amount"),
    "research": ("research_event_study", "abnormal_return"),
}
DEFS = build_defs(settings.load({}))
# The study's smallest bootstrap: the test reads its page, not its statistics.
QUICK_STUDY = {"ops": {"research_event_study": {"config": {"resamples": 100}}}}


@pytest.fixture
def dagster_dev(tmp_path, sandbox, monkeypatch):
    """`dg dev` against the sandbox, with a ledger database of its own; yields a function that
    materializes assets in this process into dg dev's instance."""
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(get_engine(database))
    env = {**sandbox.env(), "OMC_DATABASE_URL": database, "OMC_COINSPOT_WATCHLIST": "btc,pepe"}
    with stack.dagster_dev(tmp_path, env) as url:
        def materialize_here(names):
            from dagster import DagsterInstance, materialize

            for name, value in env.items():  # the resources read their secrets as EnvVars
                monkeypatch.setenv(name, value)
            defs = build_defs(settings.load(env))
            assets = [a for a in defs.assets if a.key.to_user_string() in names]
            with DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
                return materialize(assets, resources=build_resources(settings.load(env)), instance=instance,
                                   run_config=QUICK_STUDY)

        yield url, database, materialize_here


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
    url, database, materialize_here = dagster_dev
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
    assert states == {schedule.name: "RUNNING" for schedule in DEFS.get_repository_def().schedule_defs}

    # While the daemon waits for the minute: an asset of each group, then what its page shows.
    started = time.monotonic()
    assert materialize_here({name for name, _ in ONE_OF_EACH_GROUP.values()}).success
    materialized = time.monotonic()
    for name, column in ONE_OF_EACH_GROUP.values():
        shows_table_row_count_and_preview(page, url, name, column, tmp_path)
    print(f"an asset of each group: materialized in {materialized - started:.1f} s, "
          f"read in the browser in {time.monotonic() - materialized:.1f} s")

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


def shows_table_row_count_and_preview(page, url: str, name: str, column: str, tmp_path) -> None:
    """The asset's page: its table (definition metadata), the row count of its latest
    materialization, and its preview inline (a table, not a link), numbers written out."""
    table = DEFS.resolve_asset_graph().get(AssetKey(name)).metadata["dagster/table_name"]
    rows = stack.graphql(url, '{ assetOrError(assetKey: {path: ["%s"]}) { ... on Asset { assetMaterializations(limit: 1) '
                         '{ metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }' % name)
    [latest] = rows["assetOrError"]["assetMaterializations"]
    row_count = next(e["intValue"] for e in latest["metadataEntries"] if e["label"] == "dagster/row_count")
    page.goto(f"{url}/assets/{name}")
    try:
        page.get_by_text(table, exact=True).first.wait_for(timeout=30_000)  # Definition: Storage
        status = page.get_by_text("Row count", exact=True).first
        status.wait_for(timeout=30_000)
        # The row count beside its label in the Status section.
        shown = status.locator("xpath=..").inner_text()
        assert f"{row_count:,}" in shown, shown
        # The preview: a table inline in the latest materialization's metadata.
        preview = page.locator("tr", has=page.get_by_text("preview", exact=True)).first
        preview.locator("th", has_text=column).first.wait_for(timeout=30_000)
        cells = preview.inner_text()
        assert "[Show Markdown]" not in cells and "e+0" not in cells and "e-0" not in cells, cells
    except Exception:
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        raise
