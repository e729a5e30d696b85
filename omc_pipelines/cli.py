"""The ``omc`` command: the offline demo, migrations, the sandbox server.

    omc demo            the sandbox, the Exchange and Catalyst ledgers into the embedded database, a summary
    omc db upgrade      bring OMC_DATABASE_URL's schema to the code's
    omc sandbox         serve every source offline (prints the environment to use it)
    omc history import  OHLCV history from freqtrade or ccxt files into the Exchange ledger
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path


def _dagster_home() -> None:
    """Use the project's dagster.yaml when run from the repository; never litter ~/.dagster."""
    if os.environ.get("DAGSTER_HOME"):
        return
    if Path("dagster.yaml").is_file():
        os.environ["DAGSTER_HOME"] = str(Path.cwd())
    else:
        from omc_pipelines import settings

        home = (settings.load().home / "dagster").resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)


def demo(args: argparse.Namespace) -> int:
    from omc_pipelines.sandbox import Sandbox

    _dagster_home()
    with Sandbox() as sandbox:
        os.environ.update(sandbox.env())
        print(f"sandbox serving every source at {sandbox.url}")
        return _run_ledgers(hours=args.hours, sandbox=sandbox)


def _run_ledgers(hours: int, sandbox) -> int:
    import pandas as pd
    import sqlalchemy as sa
    from dagster import DagsterInstance

    from omc_pipelines import settings
    from omc_pipelines.db import get_engine, safe_url, upgrade
    from omc_pipelines.db.models import Base, Candle, CatalystEvent, CoinSentimentDaily
    from omc_pipelines.definitions import build_defs
    from omc_pipelines.ledgers.exchange import OBSERVED_AT_TAG
    from omc_trading.tables import metadata as trading_tables

    config = settings.load()
    engine = get_engine(config.ledger_database_url)
    print(f"ledger database: {safe_url(engine.url)}")
    upgrade(engine)
    instance = DagsterInstance.get()
    defs = build_defs(config)

    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    # The runs' full event logs are in the UI; here, only what went wrong.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    market = defs.resolve_job_def("exchange_market_data").execute_in_process(
        instance=instance, run_config=quiet, tags={OBSERVED_AT_TAG: now.isoformat()}, raise_on_error=False
    )
    print(f"exchange_market_data: {'succeeded' if market.success else 'FAILED'} (run {market.run_id})")
    if not market.success:
        return 1

    last_hour = now.replace(minute=0) - timedelta(hours=1)
    first_hour = last_hour - timedelta(hours=hours - 1)
    candles = defs.resolve_job_def("exchange_hourly_candles").execute_in_process(
        instance=instance,
        run_config=quiet,
        tags={
            "dagster/asset_partition_range_start": first_hour.strftime("%Y-%m-%d-%H:%M"),
            "dagster/asset_partition_range_end": last_hour.strftime("%Y-%m-%d-%H:%M"),
        },
        raise_on_error=False,
    )
    print(f"exchange_hourly_candles {first_hour:%Y-%m-%d %H:00} .. {last_hour:%H:00} UTC, one run: "
          f"{'succeeded' if candles.success else 'FAILED'} (run {candles.run_id})")
    # What the catalyst sensors' first tick does: record the history window.
    catalysts = [defs.resolve_job_def(name).execute_in_process(instance=instance, run_config=quiet, raise_on_error=False)
                 for name in ("catalyst_listings", "catalyst_filings")]
    today = now.date()
    week = {"dagster/asset_partition_range_start": (today - timedelta(days=7)).isoformat(),
            "dagster/asset_partition_range_end": (today - timedelta(days=1)).isoformat()}
    others = [
        defs.resolve_job_def("glass_chain_tvl").execute_in_process(instance=instance, run_config=quiet, tags=week,
                                                                   raise_on_error=False),
        defs.resolve_job_def("glass_snapshots").execute_in_process(instance=instance, run_config=quiet, raise_on_error=False),
        defs.resolve_job_def("human_items").execute_in_process(instance=instance, run_config=quiet, raise_on_error=False),
        defs.resolve_job_def("human_coin_sentiment").execute_in_process(
            instance=instance, run_config=quiet, tags=week, raise_on_error=False),
    ]
    for result in catalysts + others:
        print(f"{result.job_def.name}: {'succeeded' if result.success else 'FAILED'} (run {result.run_id})")
    traded = _trade_a_listing(sandbox, defs, instance, engine, quiet)

    with engine.connect() as conn:
        counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in [*Base.metadata.sorted_tables, *trading_tables.sorted_tables]}
        kinds = pd.read_sql_query(
            sa.select(CatalystEvent.source, CatalystEvent.event_type, sa.func.count().label("events"))
            .group_by(CatalystEvent.source, CatalystEvent.event_type).order_by(CatalystEvent.source, CatalystEvent.event_type),
            conn,
        )
        recent = pd.read_sql_query(
            sa.select(Candle.coin, Candle.hour_start, Candle.open, Candle.high, Candle.low, Candle.close,
                      Candle.volume, Candle.trade_count)
            .where(Candle.market == "aud", Candle.coin.in_(["btc", "eth"]))
            .order_by(Candle.hour_start.desc(), Candle.coin).limit(6),
            conn,
        )
        c = CoinSentimentDaily
        sentiment = pd.read_sql_query(
            sa.select(c.day, c.coin, c.items, c.weighted_sentiment, c.share_positive, c.share_negative)
            .order_by(c.day.desc(), c.items.desc()).limit(6),
            conn,
        )
    print("\nrows stored:")
    for table, count in sorted(counts.items()):
        print(f"  {table:<30}{count:>8}")
    print("\ncatalyst events:")
    print(kinds.to_string(index=False) if not kinds.empty else "  none")
    print("\nnewest BTC and ETH candles (AUD):")
    print(recent.to_string(index=False) if not recent.empty else "  none")
    print("\nsentiment per coin, newest days:")
    print(sentiment.to_string(index=False) if not sentiment.empty else "  none")
    print(f"\nSee them in the UI: DAGSTER_HOME={os.environ['DAGSTER_HOME']} dg dev")
    return 0 if candles.success and traded and all(r.success for r in catalysts + others) else 1


def _trade_a_listing(sandbox, defs, instance, engine, run_config) -> bool:
    """A listing published in the sandbox, seen by the listing sensor, recorded and traded on
    paper in one run: what the daemon does, here in this process."""
    import time

    import sqlalchemy as sa
    from dagster import build_sensor_context

    from omc_trading.tables import orders, positions, signals

    sensor = defs.resolve_sensor_def("coinspot_listing_sensor")
    with build_sensor_context(instance=instance, resources=defs.resources) as context:
        history = sensor.evaluate_tick(context)  # the sensor's first tick: the history is recorded already
    sandbox.coinspot.set_price("demo", bid="1.98", ask="2.00", last="2.00")
    published = time.monotonic()
    article = sandbox.zendesk.publish("New Coin Listing: Demo Token (DEMO)", "<p>DEMO trades on CoinSpot from today.</p>")
    with build_sensor_context(instance=instance, resources=defs.resources, cursor=history.cursor) as context:
        [request] = sensor.evaluate_tick(context).run_requests
    run = defs.resolve_job_def("catalyst_listings").execute_in_process(
        instance=instance, run_config={**request.run_config, **run_config}, tags=request.tags, raise_on_error=False)
    took = time.monotonic() - published
    with engine.connect() as conn:
        found = lambda table, *where: conn.execute(sa.select(table).where(*where)).first()  # noqa: E731
        signal = found(signals, signals.c.event_external_id == str(article["id"]))
        order = found(orders, orders.c.event_external_id == str(article["id"]))
        position = found(positions, positions.c.coin == "demo")
    print(f"\na new listing, published in the sandbox ({article['title']}):")
    print(f"  catalyst_listings run {run.run_id}: {'succeeded' if run.success else 'FAILED'}")
    if signal is None:
        print("  no signal was recorded: see the run's log in the UI")
        return False
    print(f"  signal:   {signal.action} {signal.coin}: {signal.reason}")
    print(f"  risk:     {signal.decision}: {signal.decision_reason}")
    if order is None:
        # A second demo in one database meets its own first one: the cooldown, the daily cap...
        print("  order:    none: the risk gate said no, for the reason above")
    else:
        print(f"  order:    {order.state} ({order.mode}): {order.aud_total} AUD for {order.coin_amount} {order.coin} "
              f"at {order.rate}, fee {order.fee_aud} AUD")
    if position is not None:
        print(f"  position: {position.coin_amount} {position.coin} at a cost of {position.cost_aud} AUD")
    print(f"  publication to {'filled order' if order else 'decision'}: {took:.1f} s (one sensor tick and one run, "
          "in this process; through the daemon see benchmarks/listing_latency.py)")
    return run.success and (order is None or order.state == "filled")


def db_upgrade(args: argparse.Namespace) -> int:
    from omc_pipelines import settings
    from omc_pipelines.db import get_engine, safe_url, upgrade
    from omc_pipelines.db.engine import current_revision

    engine = get_engine(settings.load().ledger_database_url)
    before = current_revision(engine)
    upgrade(engine, args.revision)
    print(f"{safe_url(engine.url)}: {before or 'empty'} -> {current_revision(engine)}")
    return 0


def trading(args: argparse.Namespace) -> int:
    """The kill switch and what trading is doing: halt, resume, status."""
    import getpass

    import sqlalchemy as sa

    from omc_pipelines import settings
    from omc_pipelines.db import ready_engine
    from omc_pipelines.definitions import build_resources
    from omc_trading import controls
    from omc_trading.tables import orders, positions

    config = settings.load()
    engine = ready_engine(config.ledger_database_url, auto_migrate=not config.database_url_from_env)
    who = getpass.getuser()
    if args.trading_command == "halt":
        controls.halt(engine, args.reason, by=who)
        print(f"halted by {who}: {args.reason}. Every order is refused until `omc trading resume`.")
        return 0
    if args.trading_command == "resume":
        controls.resume(engine, by=who)
        print(f"resumed by {who}." + (" OMC_KILL_SWITCH=on still refuses every order." if config.kill_switch == "on" else ""))
        return 0
    resource = build_resources(config)["trading"]
    trading_config = resource.config()
    mode = resource.mode(trading_config)
    print(controls.status(engine, trading_config).describe())
    print(f"mode: {mode.mode} ({mode.reason})")
    with engine.connect() as conn:
        held = conn.execute(sa.select(positions).where(positions.c.mode == mode.mode).order_by(positions.c.coin)).all()
        waiting = conn.execute(sa.select(orders.c.state, sa.func.count()).where(
            orders.c.mode == mode.mode, orders.c.state.in_(("intent", "sent", "unknown"))).group_by(orders.c.state)).all()
    print(f"open positions: {len(held)}")
    for p in held:
        print(f"  {p.coin:<8} {p.coin_amount} at cost {p.cost_aud} AUD, unrealized {p.unrealized_pnl_aud} AUD")
    print("orders not settled: " + (", ".join(f"{n} {state}" for state, n in waiting) or "none"))
    return 0


def history_import(args: argparse.Namespace) -> int:
    """OHLCV files into exchange_imported_candles: a line per file; 1 when a file was refused.
    Bad input (no files, a wrong timeframe, an unmigrated database) is one line on stderr."""
    import sqlalchemy as sa

    from omc_pipelines import settings
    from omc_pipelines.db import DatabaseNotMigrated, ready_engine
    from omc_pipelines.ledgers.exchange_history import import_ohlcv

    try:
        config = settings.load()
        paths = args.paths or [config.history_folder]
        engine = ready_engine(config.ledger_database_url, auto_migrate=not config.database_url_from_env)
        report = import_ohlcv(engine, paths, args.source, coin=args.coin, market=args.market,
                              timeframe=args.timeframe, log=lambda line: print(line, flush=True))
    except (ValueError, DatabaseNotMigrated) as exc:  # HistoryImportError and SettingsError are ValueErrors
        print(f"omc history import: {exc}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as exc:
        print(f"omc history import: database error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(report.summary())
    return 1 if report.refused else 0


def sandbox(args: argparse.Namespace) -> int:
    from omc_pipelines.sandbox import Sandbox

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Sandbox(port=args.port) as box:
        print(f"sandbox listening on {box.url}; to point the pipeline at it:")
        for name, value in box.env().items():
            print(f"export {name}={shlex.quote(value)}")  # values hold spaces (the SEC's User-Agent)
        sys.stdout.flush()
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="omc", description="OMC Pipelines")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="run the ledgers against the sandbox into the embedded database")
    p.add_argument("--hours", type=int, default=8, help="hours of candles to build (default 8)")
    p.set_defaults(func=demo)
    p = commands.add_parser("db", help="the ledger database")
    db = p.add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="migrate OMC_DATABASE_URL to the newest schema")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=db_upgrade)
    p = commands.add_parser("trading", help="the kill switch (halt, resume) and the state of trading (status)")
    kill = p.add_subparsers(dest="trading_command", required=True)
    p = kill.add_parser("halt", help="refuse every order, sells included, until resumed (kept in the database)")
    p.add_argument("--reason", required=True, help="why: shown with every refused signal")
    p.set_defaults(func=trading)
    p = kill.add_parser("resume", help="allow orders again")
    p.set_defaults(func=trading)
    p = kill.add_parser("status", help="the kill switch, the mode and why, open positions, unsettled orders")
    p.set_defaults(func=trading)
    p = commands.add_parser("history", help="price history from files")
    files = p.add_subparsers(dest="history_command", required=True)
    p = files.add_parser("import", help="import freqtrade or ccxt OHLCV files (JSON, CSV, gzipped too) into the "
                         "Exchange ledger's exchange_imported_candles")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="files or folders (every supported file in a folder); none: OMC_HISTORY_DIR")
    p.add_argument("--source", required=True, help="who made the history, e.g. freqtrade:binance (part of the key)")
    p.add_argument("--coin", help="the coin, instead of what the file names say (BTC_AUD-1h.json: btc)")
    p.add_argument("--market", help="the quote currency, instead of the names' (BTC_AUD-1h.json: aud)")
    p.add_argument("--timeframe", help="the timeframe, instead of the names' (1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d)")
    p.set_defaults(func=history_import)
    p = commands.add_parser("sandbox", help="serve every source offline")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(func=sandbox)
    args = parser.parse_args(argv)
    sys.exit(args.func(args))
