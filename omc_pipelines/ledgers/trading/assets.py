"""The trading assets: catalyst events become signals, risk decisions and orders, then
positions and P&L, through ``omc_trading`` (the core, which knows nothing of Dagster).

They run in two kinds of run: the catalyst sensors' runs carry them after the catalyst asset
(so a listing becomes an order in one run launch), and the ``trading`` job runs them alone
every minute (reconciliation, exits, positions, the day's P&L). Paper by default; live only
when asked for, confirmed and keyed: every asset says which, and why.
"""


from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from omc_pipelines.ledgers.catalyst import assets as catalyst
from omc_pipelines.ledgers.exchange import assets as exchange
from omc_pipelines.metadata import definition, preview, standard
from omc_pipelines.partitions import DAILY_OPEN
from omc_pipelines.resources import CoinSpotResource, LedgerDatabase, TradingResource
from omc_pipelines.trading_bridge import LedgerQuotes, latest_prices, recent_catalysts
from omc_trading.config import ModeDecision
from omc_trading import tables
from omc_trading.money import aud
from omc_trading.trader import Trader

GROUP = "trading"
# Everything that may talk to CoinSpot's private API holds this pool (limit 1 in dagster.yaml):
# the API key's nonce has one writer.
POOL = "coinspot_private"
# The sensors' jobs: trading rides along after their catalyst asset.
CATALYST_JOBS = ("catalyst_listings", "catalyst_filings")
# Dagster's run tag for whole-run retries; and ours, set beside it to 0 on a run that sent an
# order, saying why the daemon will not retry it.
MAX_RETRIES_TAG, NO_RETRY_TAG = "dagster/max_retries", "omc/no_retry"
# Runs that hold coinspot_private (every trading step): run monitoring fails one that hangs
# after ten minutes, and frees the pool for the next, instead of after the instance's hour.
MONEY_RUN_LIMIT = {"dagster/max_runtime": "600"}
# Events recorded this recently are read by each run; the strategy refuses the too old ones
# (once: a signal is never recorded twice), so this only bounds the reading.
EVENT_LOOKBACK = timedelta(hours=1)


@dataclass
class Session:
    trader: Trader
    mode: ModeDecision
    kill_switch: str

    def metadata(self) -> dict:
        return {"mode": self.mode.mode, "mode_reason": self.mode.reason, "kill_switch": self.kill_switch}


@contextmanager
def session(context: AssetExecutionContext, ledger_db: LedgerDatabase, trading: TradingResource,
            coinspot: CoinSpotResource) -> Iterator[Session]:
    """A trader on the effective mode's broker; says the mode and the kill switch in the log.

    In a catalyst's run (publication to order, where every second counts) held coins that the
    Exchange ledger has no price for are not quoted one by one: they count at cost, and the
    minutely trading job prices them for exits and valuation."""
    engine = ledger_db.engine()
    config = trading.config()
    quick = context.job_name in CATALYST_JOBS
    with coinspot.client() as public:
        broker, mode = trading.broker(engine, LedgerQuotes(engine, public), config)
        try:
            trader = Trader(engine, broker, config, quote_held=not quick)
            kill_switch = trader.kill_switch().describe()
            # Live asked for and not granted is worth a warning: the user expects real orders.
            (context.log.warning if config.mode != mode.mode else context.log.info)(mode.reason)
            context.log.info(kill_switch)
            yield Session(trader, mode, kill_switch)
        finally:
            close = getattr(broker, "close", None)
            if close:
                close()


def no_more_retries(context: AssetExecutionContext, order_id: int) -> None:
    """Before an order leaves, its run gives up Dagster's automatic retries: a run that may have
    sent an order of unknown outcome is never re-executed by the daemon (the order is never
    resent anyway; reconciliation settles it). Dagster reads the tag when the run fails."""
    context.instance.add_run_tags(context.run.run_id, {MAX_RETRIES_TAG: "0", NO_RETRY_TAG: f"order {order_id} was sent"})


def _shown(ledger_db: LedgerDatabase, table, newest, columns=None, where=None) -> dict:
    with ledger_db.engine().connect() as conn:
        return standard(conn, table, newest=newest, where=where, columns=columns)


def _signal_rows(signals) -> list[dict]:
    return [{"coin": s.coin or "-", "action": s.action, "decision": s.decision, "why": s.reason,
             "risk": s.decision_reason, "aud": s.aud_amount, "coins": s.coin_amount} for s in signals]


def _order_rows(results) -> list[dict]:
    return [{"order": r.id, "coin": r.coin, "side": r.side, "state": r.state, "aud_total": r.aud_total,
             "coin_amount": r.coin_amount, "rate": r.rate, "fee_aud": r.fee_aud, "reason": r.reason or ""}
            for r in results]


@asset(
    group_name=GROUP, kinds={"sql"}, pool=POOL, **definition(tables.signals, group=GROUP, source="catalyst_events"),
    deps=[catalyst.coinspot_announcements, catalyst.sec_filings, exchange.coinspot_price_snapshots],
    description="Settles orders of unknown outcome first (reconciliation), then turns new catalyst events into "
    "signals (a listing buys OMC_TRADE_AUD of each listed coin, a delisting sells the position) and open positions "
    "into exits; every signal passes the risk gate and the kill switch, and is stored with its reason.",
)
def trading_signals(context: AssetExecutionContext, ledger_db: LedgerDatabase, trading: TradingResource,
                    coinspot: CoinSpotResource) -> MaterializeResult:
    now = datetime.now(timezone.utc)
    with session(context, ledger_db, trading, coinspot) as s:
        reconciled = s.trader.reconcile()
        with ledger_db.engine().connect() as conn:
            prices = latest_prices(conn)
            events, left_out = recent_catalysts(conn, now - EVENT_LOOKBACK, s.mode.mode)
        for reason in left_out:
            context.log.warning(reason)
        recorded = s.trader.record_signals(events, prices)
        exits = s.trader.record_exits(prices)
    new = [x for x in recorded.signals + exits.signals if x.decision != "already recorded"]
    for signal in new:
        context.log.info(f"{signal.decision}: {signal.action} {signal.coin or ''}: {signal.reason} | {signal.decision_reason}")
    return MaterializeResult(metadata={
        **s.metadata(),
        "events_read": len(events),
        "events_not_traded": MetadataValue.json(left_out),
        "taken": sum(x.decision == "accepted" for x in new),
        "refused": sum(x.decision == "refused" for x in new),
        "informational": sum(x.decision == "informational" for x in new),
        "reconciled": preview(_order_rows(reconciled)),
        "signals": preview(_signal_rows(new), limit=50),
        **_shown(ledger_db, tables.signals, ("created_at", "id"),
                 ("mode", "strategy", "action", "coin", "aud_amount", "decision", "decision_reason", "created_at")),
    })


@asset(
    group_name=GROUP, kinds={"sql"}, pool=POOL, deps=[trading_signals],
    **definition(tables.orders, group=GROUP, source="coinspot"),
    description="Sends every order intent once: the intent is recorded before anything is sent, an order whose "
    "answer was lost is marked unknown and settled by reconciliation, never sent again.",
)
def trading_orders(context: AssetExecutionContext, ledger_db: LedgerDatabase, trading: TradingResource,
                   coinspot: CoinSpotResource) -> MaterializeResult:
    with session(context, ledger_db, trading, coinspot) as s:
        sent = s.trader.send_pending(before_send=lambda order_id: no_more_retries(context, order_id))
    for order in sent:
        context.log.info(f"order {order.id} {order.side} {order.coin}: {order.state}"
                         + (f" ({order.reason})" if order.reason else ""))
    return MaterializeResult(metadata={
        **s.metadata(),
        "sent": len(sent),
        "filled": sum(o.state == "filled" for o in sent),
        "not_filled": sum(o.state in ("rejected", "missed") for o in sent),
        "unknown": sum(o.state == "unknown" for o in sent),
        "orders": preview(_order_rows(sent), limit=50),
        **_shown(ledger_db, tables.orders, ("requested_at", "id"),
                 ("mode", "coin", "side", "state", "aud_total", "coin_amount", "rate", "fee_aud", "requested_at")),
    })


@asset(
    group_name=GROUP, kinds={"sql"}, deps=[trading_orders, exchange.coinspot_price_snapshots],
    **definition(tables.positions, group=GROUP, source="trading_lots"),
    description="Open positions per book (paper, live) from the FIFO lots, valued at the Exchange ledger's newest bid.",
)
def trading_positions(context: AssetExecutionContext, ledger_db: LedgerDatabase, trading: TradingResource,
                      coinspot: CoinSpotResource) -> MaterializeResult:
    with session(context, ledger_db, trading, coinspot) as s:
        with ledger_db.engine().connect() as conn:
            prices = latest_prices(conn)
        held = s.trader.refresh_positions(prices)
    return MaterializeResult(metadata={
        **s.metadata(),
        "positions": len(held),
        "cost_aud": str(aud(sum((p.cost_aud for p in held), start=Decimal(0)))),
        "unrealized_pnl_aud": str(aud(sum((p.unrealized_pnl_aud or Decimal(0) for p in held), start=Decimal(0)))),
        **_shown(ledger_db, tables.positions, ("updated_at", "id"),
                 ("mode", "coin", "coin_amount", "cost_aud", "average_rate", "last_rate", "market_value_aud",
                  "unrealized_pnl_aud", "realized_pnl_aud", "opened_at")),
    })


@asset(
    group_name=GROUP, kinds={"sql"}, deps=[trading_positions], partitions_def=DAILY_OPEN,
    **definition(tables.pnl_daily, group=GROUP, source="trading_lots"),
    description="Per book and UTC day: realized P&L (fees included), unrealized at the newest prices, fees, AUD "
    "spent and orders filled. Today's partition is refreshed by the minutely trading job.",
)
def trading_pnl_daily(context: AssetExecutionContext, ledger_db: LedgerDatabase, trading: TradingResource,
                      coinspot: CoinSpotResource) -> MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    with session(context, ledger_db, trading, coinspot) as s:
        with ledger_db.engine().connect() as conn:
            prices = latest_prices(conn)
        pnl = s.trader.daily_pnl(day, prices)
    return MaterializeResult(metadata={
        **s.metadata(),
        "day": str(day),
        "realized_pnl_aud": str(aud(pnl.realized_pnl_aud)),
        "unrealized_pnl_aud": str(aud(pnl.unrealized_pnl_aud)),
        "fees_aud": str(aud(pnl.fees_aud)),
        "spent_aud": str(aud(pnl.spent_aud)),
        "orders_filled": pnl.orders_filled,
        **_shown(ledger_db, tables.pnl_daily, ("day", "mode"), where=tables.pnl_daily.c.day == day),
    })


# What a catalyst sensor's run carries after its catalyst asset.
AFTER_A_CATALYST = [trading_signals, trading_orders, trading_positions]
ASSETS = [trading_signals, trading_orders, trading_positions, trading_pnl_daily]
