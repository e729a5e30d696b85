"""The whole stack as a user runs it: `omc dev` (`dg dev`: the web UI, the daemon and the code
location) on the project's dagster.yaml and the sandbox, driven in a real Chromium, stopped by one
Ctrl-C."""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import AssetKey
from playwright.sync_api import expect

from omc_pipelines.db import get_engine, upgrade
from omc_pipelines import cli, settings
from omc_pipelines.definitions import build_defs, build_resources
from omc_pipelines.sandbox import stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


# An asset of each group and a column of its preview: what the UI shows of each (table, row count,
# preview inline). Materialized in the test's own process into the UI's instance; FROM_THE_UI by
# its page's Materialize button, as a person would.
ONE_OF_EACH_GROUP = {
    "exchange": ("coinspot_trades", "sold_at"),
    "catalyst": ("coinspot_announcements", "event_type"),
    "glass": ("defillama_protocols", "category"),
    "human": ("news_items", "sentiment"),
    "trading": ("trading_positions", "coin_amount"),
    "research": ("research_event_study", "abnormal_return"),
}
FROM_THE_UI = "defillama_protocols"
DEFS = build_defs(settings.load({}))
# The study's smallest bootstrap: the test reads its page, not its statistics.
QUICK_STUDY = {"ops": {"research_event_study": {"config": {"resamples": 100}}}}


class OmcDev:
    """`omc dev` as a person starts it: `dg dev` (the web UI, the daemon and the code location) on
    a copy of the project's instance, a ledger database of its own, the test's sandbox."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.env = env
        self.home = stack.instance_home(workdir, stack.EMBEDDED_INSTANCE)
        self.port = stack.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "omc-dev.log"
        # --real: no sandbox of its own; the sources are the environment's, here the test's sandbox.
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("omc")), "dev", "--real", "--port", str(self.port)],
                cwd=workdir, env={**os.environ, **env, "DAGSTER_HOME": str(self.home)},
                stdout=out, stderr=subprocess.STDOUT)

    def materialize_here(self, names, monkeypatch):
        """Materialize ``names`` in this process into the UI's instance."""
        from dagster import DagsterInstance, materialize

        for name, value in self.env.items():  # the resources read their secrets as EnvVars
            monkeypatch.setenv(name, value)
        config = settings.load(self.env)
        assets = [a for a in build_defs(config).assets if a.key.to_user_string() in names]
        with DagsterInstance.from_config(str(self.home)) as instance:
            return materialize(assets, resources=build_resources(config), instance=instance, run_config=QUICK_STUDY)

    def interrupt(self) -> float:
        """One SIGINT, as Ctrl-C sends: `omc dev` exits 0 and leaves nothing of `dg dev`'s process
        group (the webserver, the daemon, the code server, their runs) and no port taken. Returns
        the seconds it took."""
        [dg] = _children(self.process.pid)
        assert _group(dg), "dg dev runs in a process group of its own"
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=30) == 0, self.log.read_text()[-4000:]
        stopped_in = time.monotonic() - started
        while _group(dg) and time.monotonic() - started < 10:
            time.sleep(0.2)
        assert _group(dg) == [], "nothing of dg dev's group is left"
        assert not cli._port_taken(self.port)
        text = self.log.read_text()
        assert f"Dagster UI at {self.url} on the real sources" in text and "Ctrl-C" in text, text[-4000:]
        return stopped_in

    def kill(self) -> None:
        if self.process.poll() is None:
            children = _children(self.process.pid)
            self.process.kill()
            self.process.wait()
            for dg in children:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(dg, signal.SIGKILL)


@pytest.fixture
def omc_dev(tmp_path, sandbox):
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(get_engine(database))
    dev = OmcDev(tmp_path, {**sandbox.env(), "OMC_DATABASE_URL": database, "OMC_COINSPOT_WATCHLIST": "btc,pepe"})
    try:
        stack.wait_until_served(dev.url, dev.process, dev.log, timeout=120)
        yield dev
    finally:
        dev.kill()


def _processes(field: int, value: int) -> list[int]:
    """The live processes whose /proc stat ``field`` (after the name: 1 = parent, 2 = group) is ``value``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[field]) == value and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _group(pgid: int) -> list[int]:
    return _processes(2, pgid)


def _children(pid: int) -> list[int]:
    return _processes(1, pid)


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


@pytest.fixture
def screenshots():
    """The test's screenshots, one per stage, kept on success too (a person looks at them after
    CI): OMC_TEST_ARTIFACTS/ui, else test-artifacts/ui in the repository (ignored by git)."""
    folder = Path(os.environ.get("OMC_TEST_ARTIFACTS") or stack.ROOT / "test-artifacts") / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # a previous run's pictures would pass for this one's
        old.unlink()
    return folder


class Stages:
    """A screenshot at the end of each stage, numbered in order; one of the page as it was when a
    stage failed."""

    def __init__(self, page, folder: Path):
        self.page, self.folder, self.taken = page, folder, 0

    @contextmanager
    def __call__(self, name: str):
        self.taken += 1
        try:
            yield
        except BaseException:
            self.page.screenshot(path=str(self.folder / f"{self.taken:02d}-{name}-FAILED.png"), full_page=True)
            raise
        self.page.screenshot(path=str(self.folder / f"{self.taken:02d}-{name}.png"), full_page=True)


def test_omc_dev_shows_the_groups_lineage_and_automation_launches_a_run_and_stops_on_ctrl_c(
        omc_dev, chromium, screenshots, monkeypatch):
    url = omc_dev.url
    # Tall enough for the catalog's virtualized table to render every asset's row.
    page = chromium.new_page(viewport={"width": 1400, "height": 1800})
    stage = Stages(page, screenshots)
    graph = DEFS.resolve_asset_graph()
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys()} == set(ONE_OF_EACH_GROUP), \
        "a group without an asset in ONE_OF_EACH_GROUP: add one"

    with stage("catalog"):  # every group, in the catalog's group column
        # Dagster's newsletter prompt on a new instance comes when it comes (once after the catalog
        # had rendered, it covered the Materialize button): dismissed whenever it shows, before any action.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
        page.goto(f"{url}/assets")
        page.get_by_text("coinspot_trades").first.wait_for(timeout=30_000)
        for name in (*ONE_OF_EACH_GROUP, "coinspot_price_snapshots", "coinspot_hourly_candles", "sec_filings"):
            page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)

    page.set_viewport_size({"width": 1400, "height": 900})  # the rest reads better at a screen's size
    with stage("materialize-from-the-ui"):  # the asset page's own button; the daemon dequeues the run
        visit(page, f"/assets/{FROM_THE_UI}")
        page.get_by_role("button").filter(has_text=re.compile(r"^Materialize$")).click(timeout=30_000)
        page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}$")).wait_for(timeout=30_000)
        ui_run = page.locator("a[href*='/runs/']", has_text="View").first.get_attribute("href").rsplit("/", 1)[1]

    with stage("trading-lineage"):  # the trading group's graph: the catalyst assets upstream
        trading = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "trading"}
        catalysts = {p for k in trading for p in graph.get(k).parent_keys if graph.get(p).group_name == "catalyst"}
        assert catalysts == {AssetKey("coinspot_announcements"), AssetKey("sec_filings")}
        visit(page, "/locations/omc_pipelines/asset-groups/trading")
        for key in trading | catalysts:  # the catalyst assets drawn as the group's upstream nodes
            page.get_by_text(key.to_user_string(), exact=True).first.wait_for(timeout=30_000)

    repository = DEFS.get_repository_def()
    automations = [*repository.schedule_defs, *repository.sensor_defs]
    with stage("automation"):  # every schedule and sensor listed, its toggle on
        visit(page, "/automation")
        for automation in automations:
            name = page.get_by_text(automation.name, exact=True).first
            name.wait_for(timeout=30_000)
            toggle = name.locator("xpath=ancestor::*[count(.//input[@type='checkbox'])=2][1]").locator(
                "input[type=checkbox]").last  # the row's own: selection, then the running toggle
            expect(toggle).to_be_checked(timeout=30_000)
    repositories = stack.graphql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { "
                                "schedules { name scheduleState { status } } sensors { name sensorState { status } } "
                                "} } } }")["repositoriesOrError"]["nodes"]
    states = {s["name"]: s["scheduleState"]["status"] for repo in repositories for s in repo["schedules"]}
    states |= {s["name"]: s["sensorState"]["status"] for repo in repositories for s in repo["sensors"]}
    # Every schedule and sensor of the project is on from the start.
    assert states == {automation.name: "RUNNING" for automation in automations}

    # While the daemon runs the UI's launch: an asset of each other group,
    # materialized in this process, then what its page shows.
    started = time.monotonic()
    assert omc_dev.materialize_here({name for name, _ in ONE_OF_EACH_GROUP.values()} - {FROM_THE_UI}, monkeypatch).success
    materialized = time.monotonic()
    for group, (name, column) in ONE_OF_EACH_GROUP.items():
        if name != FROM_THE_UI:
            with stage(f"asset-{group}"):
                shows_table_row_count_and_preview(page, url, name, column)
    print(f"an asset of each group: materialized in {materialized - started:.1f} s, "
          f"read in the browser in {time.monotonic() - materialized:.1f} s")

    with stage("run-launched-from-the-ui"):  # its page says Success; its asset's page shows what it wrote
        visit(page, f"/runs/{ui_run}")
        page.get_by_text("Success", exact=True).first.wait_for(timeout=150_000)
        run = stack.graphql(url, '{ runOrError(runId: "%s") { ... on Run { status assetSelection { path } '
                                 "tags { key value } } } }" % ui_run)["runOrError"]
        assert run["status"] == "SUCCESS" and run["assetSelection"] == [{"path": [FROM_THE_UI]}], run
        assert {"key": "dagster/from_ui", "value": "true"} in run["tags"]
    with stage("asset-glass"):
        shows_table_row_count_and_preview(page, url, FROM_THE_UI, ONE_OF_EACH_GROUP["glass"][1])

    with stage("asset-checks"):  # the checks of an asset, on its Checks tab
        visit(page, "/assets/coinspot_price_snapshots?view=checks")
        page.get_by_text("prices_positive").first.wait_for(timeout=30_000)

    # One Ctrl-C stops the UI, the daemon and the code server, promptly.
    stopped_in = omc_dev.interrupt()
    assert stopped_in < 25, stopped_in


def visit(page, path: str) -> None:
    """Go to ``path`` inside the UI as its own links do (the router, no reload): the page keeps
    the app it has loaded, where a reload would parse and run the whole app again (~3 s of CPU a
    page for Chromium here)."""
    page.evaluate("path => { history.pushState(null, '', path); dispatchEvent(new PopStateEvent('popstate')) }", path)
    page.wait_for_url(f"**{path}")


def shows_table_row_count_and_preview(page, url: str, name: str, column: str) -> None:
    """The asset's page: its table (definition metadata), the row count of its latest
    materialization, and its preview inline (a table, not a link), numbers written out."""
    table = DEFS.resolve_asset_graph().get(AssetKey(name)).metadata["dagster/table_name"]
    rows = stack.graphql(url, '{ assetOrError(assetKey: {path: ["%s"]}) { ... on Asset { assetMaterializations(limit: 1) '
                         '{ metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }' % name)
    [latest] = rows["assetOrError"]["assetMaterializations"]
    row_count = next(e["intValue"] for e in latest["metadataEntries"] if e["label"] == "dagster/row_count")
    visit(page, f"/assets/{name}")
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

