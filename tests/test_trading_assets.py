"""The trading assets in Dagster, against the sandbox, on both databases: a listing becomes a
paper order in the run that records it; the kill switch, old events, invalid events and failed
checks place none; live needs every switch and never shows a secret."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, EnvVar, build_sensor_context, materialize

from omc_pipelines.db import upsert
from omc_pipelines.db.models import CatalystEvent
from omc_pipelines.ledgers.catalyst import assets as catalyst, checks, sensors
from omc_pipelines.ledgers.trading import assets as trading
from omc_pipelines.resources import AnnouncementsResource, CoinSpotResource, LedgerDatabase, TradingResource
from omc_pipelines.sandbox.coinspot_private import (
    FULL_ACCESS_KEY, FULL_ACCESS_SECRET, READ_ONLY_KEY, READ_ONLY_SECRET, AccountFault,
)
from omc_trading import controls
from omc_trading.tables import orders, paper_fills, positions, signals

pytestmark = pytest.mark.integration
LISTING_CHECKS = [c for c in checks.ALL if {k.asset_key for k in c.check_keys} == {catalyst.coinspot_announcements.key}]
SECRETS = (FULL_ACCESS_KEY, FULL_ACCESS_SECRET, READ_ONLY_KEY, READ_ONLY_SECRET)


def resources_for(database_url, sandbox, **rules) -> dict:
    return {
        "ledger_db": LedgerDatabase(url=database_url, auto_migrate=False),
        "coinspot": CoinSpotResource(base_url=sandbox.url, watchlist=["btc"], retries=1, backoff=0.01),
        "announcements": AnnouncementsResource(base_url=sandbox.url, retries=1, backoff=0.01, history_days=30),
        "trading": TradingResource(rules={f"OMC_{k.upper()}": v for k, v in rules.items()}, coinspot_url=sandbox.url),
    }


@pytest.fixture
def paper(database_url, sandbox):
    return resources_for(database_url, sandbox)


def listing_run(resources, sandbox, instance, title="New Coin Listing: Foo Token (FOO)", coin="foo", ask="2.00"):
    """What the listing sensor does for a new article: its run request, as the daemon would launch it."""
    with build_sensor_context(instance=instance, resources=resources) as context:
        first = sensors.coinspot_listing_sensor.evaluate_tick(context)
    sandbox.coinspot.set_price(coin, bid=str(Decimal(ask) * Decimal("0.99")), ask=ask, last=ask)
    article = sandbox.zendesk.publish(title, "<p>Trading opens today.</p>")
    with build_sensor_context(instance=instance, resources=resources, cursor=first.cursor) as context:
        [request] = sensors.coinspot_listing_sensor.evaluate_tick(context).run_requests
    return article, request


def run_catalyst_and_trading(resources, request, instance, **kwargs):
    return materialize([catalyst.coinspot_announcements, *LISTING_CHECKS, *trading.AFTER_A_CATALYST],
                       resources=resources, run_config=request.run_config, tags=request.tags, instance=instance,
                       **kwargs)


def table(engine, t):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings()]


def meta(result, asset):
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[0].metadata.items()}


def test_a_new_listing_becomes_one_filled_paper_order_in_the_run_that_records_it(paper, sandbox, engine, instance):
    article, request = listing_run(paper, sandbox, instance)
    result = run_catalyst_and_trading(paper, request, instance)
    assert result.success

    [signal] = [s for s in table(engine, signals) if s["action"] != "none"]
    assert (signal["coin"], signal["action"], signal["decision"], signal["mode"]) == ("foo", "buy", "accepted", "paper")
    assert signal["event_external_id"] == str(article["id"]) and "listed on CoinSpot" in signal["reason"]
    assert signal["decision_reason"].startswith("within limits")
    [order] = table(engine, orders)
    assert (order["state"], order["side"], order["mode"], order["aud_total"], order["fee_aud"]) == (
        "filled", "buy", "paper", Decimal("100.00"), Decimal("1.00"))
    assert order["rate"] == Decimal("2.00") and order["coin_amount"] == Decimal("49.50000000")  # (100 - 1) / 2
    assert order["idempotency_key"] == signal["signal_key"] and order["filled_at"] >= order["requested_at"]
    [position] = table(engine, positions)
    assert (position["coin"], position["coin_amount"], position["cost_aud"]) == ("foo", Decimal("49.5"), Decimal("100.00"))

    signals_meta = meta(result, "trading_signals")
    assert (signals_meta["mode"], signals_meta["taken"], signals_meta["refused"]) == ("paper", 1, 0)
    assert signals_meta["kill_switch"] == "kill switch off: trading" and "paper trading" in signals_meta["mode_reason"]
    assert meta(result, "trading_orders")["filled"] == 1 and meta(result, "trading_positions")["positions"] == 1

    # The run sent an order: it gave up Dagster's automatic retries (its job asks for 3).
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["dagster/max_retries"] == "0" and tags[trading.NO_RETRY_TAG] == f"order {order['id']} was sent"

    # The same run again (a retry, a replayed tick): nothing new, nothing sent twice.
    assert run_catalyst_and_trading(paper, request, instance).success
    assert len(table(engine, orders)) == 1 and len(table(engine, paper_fills)) == 1


def test_a_run_that_failed_after_sending_an_order_is_never_retried_and_one_that_failed_before_is(
        paper, sandbox, engine, monkeypatch):
    from omc_trading.paper import PaperBroker

    def broken(*args):
        raise RuntimeError("connection reset")

    with DagsterInstance.ephemeral(settings={"run_retries": {"enabled": True, "max_retries": 0}}) as instance:
        _, request = listing_run(paper, sandbox, instance)
        request = request._replace(tags={**request.tags, **sensors.RUN_RETRIES})  # as its job's runs carry them
        # Before any order: the broker's balance cannot be read, the run fails, and Dagster will retry it.
        with monkeypatch.context() as patch:
            patch.setattr(PaperBroker, "balances", broken)
            failed = run_catalyst_and_trading(paper, request, instance, raise_on_error=False)
        assert not failed.success and table(engine, orders) == []
        assert instance.get_run_by_id(failed.run_id).tags["dagster/will_retry"] == "true"

        # The broker fails while the order is out: outcome unknown, the run fails, no retry.
        monkeypatch.setattr(PaperBroker, "place", broken)
        failed = run_catalyst_and_trading(paper, request, instance, raise_on_error=False)
        assert not failed.success
        [order] = table(engine, orders)
        assert order["state"] == "unknown" and "never resent" in order["reason"]
        tags = instance.get_run_by_id(failed.run_id).tags
        assert (tags["dagster/will_retry"], tags["dagster/max_retries"]) == ("false", "0")


def test_the_kill_switch_refuses_the_next_signal_with_its_reason(paper, sandbox, engine, instance):
    controls.halt(engine, "exchange incident", by="tests")
    _, request = listing_run(paper, sandbox, instance)
    result = run_catalyst_and_trading(paper, request, instance)
    assert result.success and table(engine, orders) == []
    [signal] = table(engine, signals)
    assert signal["decision"] == "refused" and "kill switch on: halted by tests" in signal["decision_reason"]
    assert meta(result, "trading_signals")["kill_switch"].startswith("kill switch on: halted by tests")
    # The run's signals: a table shown inline on the asset's page, the risk gate's reason in it.
    [shown] = meta(result, "trading_signals")["signals"].records
    assert "exchange incident" in shown.data["risk"]


def test_a_history_run_places_no_order(paper, sandbox, engine, instance):
    """The first tick records thirty days of announcements: old news is never traded."""
    with build_sensor_context(instance=instance, resources=paper) as context:
        [history] = sensors.coinspot_listing_sensor.evaluate_tick(context).run_requests
    result = materialize([catalyst.coinspot_announcements, *trading.AFTER_A_CATALYST], resources=paper,
                         run_config=history.run_config, tags=history.tags, instance=instance)
    assert result.success and table(engine, orders) == []
    refused = [s for s in table(engine, signals) if s["decision"] == "refused"]
    assert refused and all("event too old to trade" in s["decision_reason"] for s in refused)


def test_an_event_that_fails_the_catalyst_rules_is_never_traded(paper, engine, instance):
    now = datetime.now(timezone.utc)
    bad = dict(source="coinspot_announcements", external_id="999", event_type="listing", title="New Coin Listing: x",
               description=None, currencies=["f-o-o"], impact_score=9, published_at=now, detected_at=now, url=None,
               collected_at=now)
    with engine.begin() as conn:
        upsert(conn, CatalystEvent.__table__, [bad], catalyst.EVENT_KEY)
    result = materialize(trading.AFTER_A_CATALYST, resources=paper, instance=instance)
    assert result.success and table(engine, signals) == [] and table(engine, orders) == []
    assert meta(result, "trading_signals")["events_not_traded"] == [
        "coinspot_announcements 999: not traded, currencies ['f-o-o'] are not coin symbols"]


def test_a_failed_blocking_check_keeps_the_run_from_trading(paper, sandbox, engine, instance):
    _, request = listing_run(paper, sandbox, instance)
    config = json.loads(json.dumps(request.run_config))
    detected = config["ops"]["coinspot_announcements"]["config"]["detected_at"]
    for key in detected:  # a clock an hour slow: the event reads as published after it was seen
        detected[key] = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    result = materialize([catalyst.coinspot_announcements, *LISTING_CHECKS, *trading.AFTER_A_CATALYST],
                         resources=paper, run_config=config, instance=instance, raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.is_step_success and e.step_key.startswith("trading_")]
    assert table(engine, orders) == [] and table(engine, signals) == []
    # One bad row does not block the next run: the checks judge the rows their run wrote.
    _, later = listing_run(paper, sandbox, instance, title="New Coin Listing: Bar (BAR)", coin="bar")
    assert run_catalyst_and_trading(paper, later, instance).success
    assert [o["coin"] for o in table(engine, orders)] == ["bar"]


def test_live_without_its_confirmation_trades_on_paper_and_says_why(database_url, sandbox, engine, instance,
                                                                    monkeypatch):
    for name, value in zip(("API_KEY", "API_SECRET", "READONLY_KEY", "READONLY_SECRET"), SECRETS):
        monkeypatch.setenv(f"OMC_COINSPOT_{name}", value)
    resources = resources_for(database_url, sandbox, trading_mode="live")
    resources["trading"] = TradingResource(rules={"OMC_TRADING_MODE": "live"}, coinspot_url=sandbox.url,
                                           api_key=EnvVar("OMC_COINSPOT_API_KEY"),
                                           api_secret=EnvVar("OMC_COINSPOT_API_SECRET"),
                                           readonly_key=EnvVar("OMC_COINSPOT_READONLY_KEY"),
                                           readonly_secret=EnvVar("OMC_COINSPOT_READONLY_SECRET"))
    _, request = listing_run(resources, sandbox, instance)
    result = run_catalyst_and_trading(resources, request, instance)
    assert result.success
    signals_meta = meta(result, "trading_signals")
    assert signals_meta["mode"] == "paper"
    assert signals_meta["mode_reason"] == "live requested but OMC_TRADING_LIVE_CONFIRM is not yes: trading on paper"
    assert [o["mode"] for o in table(engine, orders)] == ["paper"]
    assert sandbox.coinspot_account.completed == {"buyorders": [], "sellorders": []}


def live_resources(database_url, sandbox, monkeypatch, timeout: float = 10.0) -> dict:
    for name, value in zip(("API_KEY", "API_SECRET", "READONLY_KEY", "READONLY_SECRET"), SECRETS):
        monkeypatch.setenv(f"OMC_COINSPOT_{name}", value)
    resources = resources_for(database_url, sandbox)
    resources["trading"] = TradingResource(rules={"OMC_TRADING_MODE": "live", "OMC_TRADING_LIVE_CONFIRM": "yes"},
                                           coinspot_url=sandbox.url, api_key=EnvVar("OMC_COINSPOT_API_KEY"),
                                           api_secret=EnvVar("OMC_COINSPOT_API_SECRET"),
                                           readonly_key=EnvVar("OMC_COINSPOT_READONLY_KEY"),
                                           readonly_secret=EnvVar("OMC_COINSPOT_READONLY_SECRET"), timeout=timeout)
    return resources


def test_live_orders_reach_coinspot_and_no_secret_shows_anywhere(database_url, sandbox, engine, instance,
                                                                 monkeypatch, caplog):
    resources = live_resources(database_url, sandbox, monkeypatch)
    _, request = listing_run(resources, sandbox, instance)
    caplog.set_level("DEBUG")
    result = run_catalyst_and_trading(resources, request, instance)
    assert result.success
    [order] = table(engine, orders)
    assert (order["mode"], order["state"], order["coin"]) == ("live", "filled", "foo")
    assert len(sandbox.coinspot_account.completed["buyorders"]) == 1
    assert meta(result, "trading_signals")["mode_reason"].startswith("live trading")

    run = instance.get_run_by_id(result.run_id)
    seen = [json.dumps(run.run_config), json.dumps(run.tags), caplog.text]
    seen += [str(entry) for entry in instance.all_logs(result.run_id)]
    for secret in SECRETS:
        assert not [text for text in seen if secret in text], f"a CoinSpot secret leaked: {secret}"


def test_a_live_order_whose_answer_is_lost_is_settled_from_coinspot_and_never_sent_again(
        database_url, sandbox, engine, instance, monkeypatch):
    resources = live_resources(database_url, sandbox, monkeypatch, timeout=1.0)
    _, request = listing_run(resources, sandbox, instance)
    sandbox.coinspot_account.inject(AccountFault("timeout_after_accept", seconds=3))
    assert run_catalyst_and_trading(resources, request, instance).success
    [order] = table(engine, orders)
    assert order["state"] == "unknown" and "never resent" in order["reason"]
    assert table(engine, positions) == []  # nothing booked until it is known

    # The next trading run (the minutely job) reconciles it from CoinSpot's completed orders.
    today = datetime.now(timezone.utc).date().isoformat()
    settled = materialize(trading.ASSETS, resources=resources, partition_key=today, instance=instance)
    assert settled.success
    [order] = table(engine, orders)
    assert order["state"] == "filled" and "found among the broker's completed orders" in order["reason"]
    [position] = table(engine, positions)
    assert position["coin"] == "foo" and position["mode"] == "live"
    buys = [r for r in sandbox.coinspot_account.received if r.path.endswith("/my/buy/now")]
    assert len(buys) == 1 and len(sandbox.coinspot_account.completed["buyorders"]) == 1


def test_the_trading_job_records_todays_pnl(paper, sandbox, engine, instance):
    _, request = listing_run(paper, sandbox, instance)
    assert run_catalyst_and_trading(paper, request, instance).success
    today = datetime.now(timezone.utc).date().isoformat()
    result = materialize(trading.ASSETS, resources=paper, partition_key=today, instance=instance)
    assert result.success
    pnl = meta(result, "trading_pnl_daily")
    assert (pnl["day"], pnl["spent_aud"], pnl["fees_aud"], pnl["orders_filled"]) == (today, "100.00", "1.00", 1)


def test_a_quote_is_asked_of_coinspot_once_for_sizing_and_filling(engine, sandbox):
    """Sizing an order and filling it on paper ask one after the other: one price, one pair of requests."""
    from omc_pipelines.trading_bridge import LedgerQuotes

    sandbox.coinspot.set_price("foo", bid="1.98", ask="2.00", last="2.00")
    with CoinSpotResource(base_url=sandbox.url).client() as public:
        quotes = LedgerQuotes(engine, public)
        first, second = quotes.quote("foo"), quotes.quote("FOO")
    assert first == second and (first.bid, first.ask) == (Decimal("1.98"), Decimal("2.00"))
    assert [r["path"] for r in sandbox.server.requests] == ["/pubapi/v2/buyprice/foo", "/pubapi/v2/sellprice/foo"]
