"""The definitions as Dagster loads them: the graph's spec, the schedules, the CLI check."""

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterRunStatus, EnvVar, RunRequest, build_schedule_context, instance_for_test
from dagster._core.test_utils import create_run_for_test

from omc_pipelines import settings
from omc_pipelines.definitions import build_defs, build_resources
from omc_pipelines.ledgers.catalyst import sensors
from omc_pipelines.ledgers.exchange import assets as exchange, schedules
from omc_pipelines.ledgers.trading import assets as trading

SNAPSHOT = Path(__file__).with_name("snapshots") / "asset_specs.json"
ROOT = Path(__file__).resolve().parent.parent
# The definitions at the default settings, whatever this machine's environment says.
defs = build_defs(settings.load({}))


def triggers() -> dict:
    """Asset key -> the schedules and sensors whose job materializes it."""
    found: dict = {}
    repository = defs.get_repository_def()
    targets = [(s, [s.job_name]) for s in repository.schedule_defs]
    targets += [(s, [t.job_name for t in s.targets]) for s in repository.sensor_defs]
    for trigger, job_names in targets:
        for job_name in job_names:
            for key in repository.get_job(job_name).asset_layer.executable_asset_keys:
                found.setdefault(key, []).append(trigger.name)
    return found


def asset_specs() -> dict:
    """Everything about the graph a reviewer should see change: keys, groups, deps,
    partitions, backfill policy, automation (conditions, schedules, sensors), kinds, freshness, pools, checks,
    the table written and its columns, owners, ledger and source tags."""
    graph = defs.resolve_asset_graph()
    triggered_by = triggers()
    specs = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        specs[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "partitions": None if partitions is None else {
                "type": type(partitions).__name__,
                "start": str(partitions.start) if hasattr(partitions, "start") else None,
                "timezone": getattr(partitions, "timezone", None),
                "cron": getattr(partitions, "cron_schedule", None),
            },
            "backfill_policy": str(node.backfill_policy) if node.backfill_policy else None,
            "automation": str(node.automation_condition) if node.automation_condition else None,
            "triggered_by": sorted(triggered_by.get(key, [])),
            "kinds": sorted(node.kinds),
            "freshness": repr(node.freshness_policy) if node.freshness_policy else None,
            "pools": sorted(node.pools or []),
            "checks": sorted(c.name for c in graph.get_check_keys_for_assets({key})),
            "table": node.metadata.get("dagster/table_name"),
            "columns": [c.name for c in node.metadata["dagster/column_schema"].columns]
            if "dagster/column_schema" in node.metadata else None,
            "owners": sorted(node.owners),
            "tags": {k: v for k, v in sorted(node.tags.items()) if not k.startswith("dagster/")},
        }
    return specs


def test_asset_specs_match_the_snapshot():
    """A change to the graph must be a visible diff: regenerate with OMC_UPDATE_SNAPSHOTS=1."""
    current = asset_specs()
    if os.environ.get("OMC_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_configured_start_dates_and_intervals_reach_the_definitions():
    configured = build_defs(settings.load({"OMC_CANDLES_START": "2026-01-01", "OMC_DAILY_START": "2026-02-01",
                                           "OMC_LISTING_SENSOR_SECONDS": "30"}))
    graph = configured.resolve_asset_graph()
    # Weeks from the Monday of the configured day's week.
    assert str(graph.get(exchange.coinspot_hourly_candles.key).partitions_def.start.date()) == "2025-12-29"
    assert str(graph.get(AssetKey("coin_sentiment_daily")).partitions_def.start.date()) == "2026-02-01"
    # Equal partitions by default, each re-dated by its own setting.
    assert str(graph.get(AssetKey("trading_pnl_daily")).partitions_def.start.date()) == "2026-02-01"
    # The old hourly form of OMC_CANDLES_START names its day.
    assert settings.load({"OMC_CANDLES_START": "2026-01-01-05:00"}).candles_start == "2026-01-01"
    assert configured.resolve_sensor_def("coinspot_listing_sensor").minimum_interval_seconds == 29
    assert str(graph.get(exchange.coinspot_hourly_candles.key).partitions_def.start.date()) != \
        str(defs.resolve_asset_graph().get(exchange.coinspot_hourly_candles.key).partitions_def.start.date())


def test_every_asset_is_in_a_known_group():
    groups = {spec["group"] for spec in asset_specs().values()}
    assert groups <= {"exchange", "glass", "human", "catalyst", "trading", "research"}


def tick_of(schedule, instance, when: datetime):
    # A schedule context opened on an instance holds it until closed: close it, or a later
    # test finds Dagster's current state storage pointing at a dead instance.
    # The repository: a schedule that names a partition has it checked against its job's partitions.
    with build_schedule_context(instance=instance, scheduled_execution_time=when,
                                repository_def=defs.get_repository_def()) as context:
        return schedule.evaluate_tick(context)


def test_the_minutely_schedule_names_its_run_and_observation_by_the_tick():
    tick = datetime(2026, 11, 26, 10, 15, tzinfo=timezone.utc)
    with instance_for_test() as instance:
        request = tick_of(schedules.exchange_every_minute, instance, tick).run_requests[0]
    assert isinstance(request, RunRequest)
    assert request.run_key == tick.isoformat()
    assert request.tags[exchange.OBSERVED_AT_TAG] == tick.isoformat()
    assert schedules.exchange_every_minute.cron_schedule == "* * * * *"


def test_the_minutely_schedule_skips_while_its_last_run_has_not_finished():
    """A hanging CoinSpot must not pile minutely runs up behind each other."""
    tick = datetime(2026, 11, 26, 10, 15, tzinfo=timezone.utc)
    with instance_for_test() as instance:
        running = create_run_for_test(instance, job_name="exchange_market_data", status=DagsterRunStatus.STARTED)
        result = tick_of(schedules.exchange_every_minute, instance, tick)
        assert result.run_requests == [] and running.run_id in result.skip_message
        instance.report_run_failed(running)
        assert len(tick_of(schedules.exchange_every_minute, instance, tick).run_requests) == 1


def test_the_candles_schedule_rebuilds_the_week_of_the_hour_just_ended():
    schedule = defs.resolve_schedule_def(schedules.exchange_hourly_candles_schedule.name)
    ticks = [datetime(2026, 11, 26, 10, 5), datetime(2026, 11, 30, 0, 5), datetime(2026, 11, 30, 1, 5)]
    with instance_for_test() as instance:
        requests = [tick_of(schedule, instance, t.replace(tzinfo=timezone.utc)).run_requests[0] for t in ticks]
    # Thursday 10:05 rebuilds its week (from Monday the 23rd) up to 10:00; Monday 00:05 the last
    # hour of the week before; 01:05 the new week's first hour: one run per hour, by its run key.
    assert [(r.partition_key, r.run_key) for r in requests] == [
        ("2026-11-23", "2026-11-26-09:00"), ("2026-11-23", "2026-11-29-23:00"), ("2026-11-30", "2026-11-30-00:00")]
    assert schedule.cron_schedule == "5 * * * *"


def test_a_database_url_from_the_environment_stays_an_env_var():
    config = settings.load({settings.DATABASE_URL: "postgresql://u:hunter2@db/omc"})
    ledger_db = build_resources(config)["ledger_db"]
    # Dagster shows an EnvVar by its name: the password never reaches the UI or run config.
    assert isinstance(ledger_db.url, EnvVar) and ledger_db.url == settings.DATABASE_URL
    assert ledger_db.auto_migrate is False  # production schemas change by `omc db upgrade`
    default = build_resources(settings.load({}))["ledger_db"]
    assert default.url.startswith("sqlite:///") and default.auto_migrate is True


@pytest.mark.slow
def test_dg_check_defs_passes_from_the_repository_root(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "OMC_HOME": str(tmp_path / "omc")}
    dg = Path(sys.executable).with_name("dg")
    result = subprocess.run([str(dg), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


@pytest.mark.parametrize("home", [ROOT, ROOT / "deploy" / "postgres"])
def test_both_instances_retry_failed_catalyst_runs_and_hold_each_pool_to_one(home, tmp_path, monkeypatch):
    """The sensors' runs rely on Dagster's run retries; the SEC's fair access and CoinSpot's
    nonce rely on pools of one. Both instance files must say so."""
    import yaml

    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config["run_retries"] == {"enabled": True, "max_retries": 0}
    assert config["concurrency"]["pools"]["default_limit"] == 1
    pools = {pool for node in defs.resolve_asset_graph().asset_nodes for pool in (node.pools or [])}
    assert pools == {"sec", "coinspot_private"}
    assert {job.name for job in sensors.ALL_JOBS} == set(trading.CATALYST_JOBS)  # the quick trading runs
    for job in trading.CATALYST_JOBS:
        assert defs.resolve_job_def(job).tags["dagster/max_retries"] == "3"


def test_ingestion_jobs_retry_and_the_minutely_and_money_jobs_do_not():
    retries = {job.name: job.tags.get("dagster/max_retries")
               for job in defs.get_repository_def().get_all_jobs() if not job.name.startswith("__")}
    # The catalyst jobs carry trading too: a run of theirs that sent an order gives its retries up.
    assert retries == {
        "exchange_hourly_candles": "2", "glass_chain_tvl": "2", "glass_snapshots": "2", "human_items": "2",
        "human_coin_sentiment": "2", "catalyst_listings": "3", "catalyst_filings": "3",
        "exchange_market_data": None, "trading": None,
    }
    # The jobs that trade hold coinspot_private: run monitoring fails a hung one after ten minutes.
    limited = {job.name for job in defs.get_repository_def().get_all_jobs() if job.tags.get("dagster/max_runtime") == "600"}
    assert limited == {"trading", "catalyst_listings", "catalyst_filings"}
