"""A ledger that stops moving turns red: the freshness policies, judged by the same evaluator
the daemon's freshness loop runs, fail once a schedule has stopped for longer than allowed."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from dagster import materialize
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.definitions.freshness_evaluator import FRESHNESS_EVALUATORS_BY_POLICY_TYPE
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time

from omc_pipelines import settings
from omc_pipelines.definitions import build_defs
from omc_pipelines.ledgers.exchange import assets as exchange

pytestmark = pytest.mark.integration


def freshness(instance, node, at: datetime) -> FreshnessState:
    evaluator = FRESHNESS_EVALUATORS_BY_POLICY_TYPE[type(node.freshness_policy)]()
    with freeze_time(at):
        return asyncio.run(evaluator.evaluate_freshness(LoadingContextForTest(instance), node))


def test_prices_turn_red_when_the_minutely_schedule_stops(resources, instance):
    graph = build_defs(settings.load({"OMC_FRESHNESS_MINUTES": "10"})).resolve_asset_graph()
    node = graph.get(exchange.coinspot_price_snapshots.key)
    assert freshness(instance, node, datetime.now(timezone.utc)) == FreshnessState.UNKNOWN  # never written
    assert materialize([exchange.coinspot_price_snapshots], resources=resources, instance=instance).success
    written = datetime.now(timezone.utc)
    assert freshness(instance, node, written + timedelta(minutes=1)) == FreshnessState.PASS
    assert freshness(instance, node, written + timedelta(minutes=6)) == FreshnessState.WARN
    assert freshness(instance, node, written + timedelta(minutes=11)) == FreshnessState.FAIL


def test_every_ledger_asset_but_the_catalysts_the_imported_history_and_research_has_a_policy():
    graph = build_defs(settings.load({})).resolve_asset_graph()
    without = sorted(node.key.to_user_string() for node in graph.asset_nodes if node.freshness_policy is None)
    # The imported history and the research run by hand, on no schedule: their age says nothing.
    assert without == ["coinspot_announcements", "exchange_imported_candles", "research_backtest",
                       "research_event_study", "sec_filings"]
