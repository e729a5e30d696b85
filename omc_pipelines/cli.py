"""The ``omc`` command: the offline demo, migrations, the sandbox server.

    omc demo            the sandbox, the four ledgers and a paper trade into the embedded database, a summary
                        (--ui: then the web UI on the same instance, as `omc dev`)
    omc db upgrade      bring OMC_DATABASE_URL's schema to the code's
    omc db current      the database's migration revision, and whether it is the newest
    omc db history      every migration revision, newest first, the database's marked
    omc status          per ledger table: rows, newest time, fresh or stale; the revision; the sources
    omc config          the effective settings, where each came from, secrets masked
    omc trading         the kill switch (halt, resume) and the state of trading (status)
    omc sandbox         serve every source offline (prints the environment to use it)
    omc dev             the sandbox and `dg dev` (web UI and daemon) together; one Ctrl-C stops both
    omc history import  OHLCV history from freqtrade or ccxt files into the Exchange ledger

A mistake (a bad setting, an unreachable database, an unknown revision) is one line on
stderr, ``omc <command>: <cause>``, exit 1; a usage error is argparse's, exit 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import time
from contextlib import contextmanager
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


def demo_sandbox(now: datetime | None = None):
    """The demo's sandbox: the human sources' recorded items end in the last hour of yesterday (UTC).

    The demo aggregates sentiment per UTC day over the week before today. Anchored at the current
    hour (the sandbox's default), the recorded items straddled midnight differently at each hour
    of the day, so the demo's sentiment figures changed with the time it ran; anchored to the day,
    every item sits at the same place in its day, and the figures are the same at any hour."""
    from omc_pipelines.sandbox import Sandbox

    today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(hour=0, minute=0, second=0,
                                                                                microsecond=0)
    return Sandbox(human_anchor=today - timedelta(hours=1))


def demo(args: argparse.Namespace) -> int:
    if args.ui and _port_taken(args.port):  # one line now, not after a minute of work
        raise DevError(f"port {args.port} is in use (--port to choose another)")
    progress = _Progress()
    _dagster_home()
    with progress("starting the sandbox"):
        sandbox = demo_sandbox().start()
    try:
        os.environ.update(sandbox.env())
        print(f"sandbox serving every source at {sandbox.url}")
        code = _run_ledgers(hours=args.hours, sandbox=sandbox, progress=progress)
        print(f"\nthe demo took {progress.elapsed():.0f} s")
        if not args.ui:
            print("\nSee them in the UI: .venv/bin/omc dev   (run from the repository's folder: the sandbox and the "
                  "web UI on this instance and ledger database; Ctrl-C stops both), or next time `omc demo --ui`")
            return code
        from omc_pipelines import settings

        # `dg dev` runs in the project's folder, where the default (relative) OMC_HOME would name
        # another ledger database: pin this one. DAGSTER_HOME is set already (_dagster_home).
        os.environ[settings.HOME] = str(settings.load().home.resolve())
        print("\nthe UI on the demo's instance and ledger database, the demo's sandbox still serving:", flush=True)
        return code or _serve_ui(sandbox, args.port)
    finally:
        sandbox.stop()


class _Progress:
    """The demo's progress: a line as a stage starts and one as it ends, with the seconds since the
    demo began, so a slow stage shows while it runs and not only in the total."""

    def __init__(self) -> None:
        self._began = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._began

    def line(self, text: str) -> None:
        print(f"[{self.elapsed():5.1f} s] {text}", flush=True)

    @contextmanager
    def __call__(self, stage: str):
        self.line(f"{stage} ...")
        started = time.monotonic()
        yield
        self.line(f"{stage}: done in {time.monotonic() - started:.1f} s")

    def run(self, defs, name: str, instance, label: str | None = None, run_config: dict | None = None,
            tags: dict | None = None):
        """One job in this process, its start and its outcome on a line each; its log only when it fails
        (the runs' full event logs are in the UI)."""
        label = label or name
        self.line(f"{label} ...")
        started = time.monotonic()
        result = defs.resolve_job_def(name).execute_in_process(
            instance=instance, run_config={**(run_config or {}), **QUIET}, tags=tags, raise_on_error=False)
        self.line(f"{label}: {'succeeded' if result.success else 'FAILED'} in {time.monotonic() - started:.1f} s "
                  f"(run {result.run_id})")
        return result


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _run_ledgers(hours: int, sandbox, progress: _Progress) -> int:
    with progress("loading the definitions and migrating the ledger database"):
        from dagster import DagsterInstance

        from omc_pipelines import settings
        from omc_pipelines.db import get_engine, safe_url, upgrade
        from omc_pipelines.definitions import build_defs

        config = settings.load()
        engine = get_engine(config.ledger_database_url)
        print(f"ledger database: {safe_url(engine.url)}; Dagster instance: {os.environ['DAGSTER_HOME']}")
        upgrade(engine)
        defs = build_defs(config)
    with DagsterInstance.get() as instance:
        succeeded = _run_jobs(defs, instance, engine, hours, sandbox, progress)
    _print_summary(engine)
    return 0 if succeeded else 1


def _run_jobs(defs, instance, engine, hours: int, sandbox, progress: _Progress) -> bool:
    """Each ledger's jobs as their schedules and sensors would run them, then a listing traded."""
    from omc_pipelines.ledgers.exchange.assets import OBSERVED_AT_TAG

    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    market = progress.run(defs, "exchange_market_data", instance, tags={OBSERVED_AT_TAG: now.isoformat()})
    if not market.success:
        return False

    last_hour = now.replace(minute=0) - timedelta(hours=1)
    first_hour = last_hour - timedelta(hours=hours - 1)
    candles = progress.run(
        defs, "exchange_hourly_candles", instance,
        label=f"exchange_hourly_candles, the weeks of {first_hour:%Y-%m-%d %H:00} .. {last_hour:%H:00} UTC, one run",
        tags={  # the weeks (their Mondays) that hold those hours, built up to the last ended hour
            "dagster/asset_partition_range_start": f"{first_hour.date() - timedelta(days=first_hour.weekday())}",
            "dagster/asset_partition_range_end": f"{now.date() - timedelta(days=now.weekday())}",
        },
    )
    # What the catalyst sensors' first tick does: record the history window.
    catalysts = [progress.run(defs, name, instance) for name in ("catalyst_listings", "catalyst_filings")]
    today = now.date()
    week = {"dagster/asset_partition_range_start": (today - timedelta(days=7)).isoformat(),
            "dagster/asset_partition_range_end": (today - timedelta(days=1)).isoformat()}
    others = [
        progress.run(defs, "glass_chain_tvl", instance, tags=week),
        progress.run(defs, "glass_snapshots", instance),
        progress.run(defs, "human_items", instance),
        progress.run(defs, "human_coin_sentiment", instance, tags=week),
    ]
    traded = _trade_a_listing(sandbox, defs, instance, engine, progress)
    return candles.success and traded and all(r.success for r in catalysts + others)


def _print_summary(engine) -> None:
    import pandas as pd
    import sqlalchemy as sa

    from omc_pipelines.db.models import Base, Candle, CatalystEvent, CoinSentimentDaily
    from omc_trading.tables import metadata as trading_tables

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


def _trade_a_listing(sandbox, defs, instance, engine, progress: _Progress) -> bool:
    """A listing published in the sandbox, seen by the listing sensor, recorded and traded on
    paper in one run: what the daemon does, here in this process."""
    import sqlalchemy as sa
    from dagster import build_sensor_context

    from omc_trading.tables import orders, positions, signals

    sensor = defs.resolve_sensor_def("coinspot_listing_sensor")
    with progress("coinspot_listing_sensor's first tick (the history is recorded already)"), \
            build_sensor_context(instance=instance, resources=defs.resources) as context:
        history = sensor.evaluate_tick(context)
    sandbox.coinspot.set_price("demo", bid="1.98", ask="2.00", last="2.00")
    published = time.monotonic()
    article = sandbox.zendesk.publish("New Coin Listing: Demo Token (DEMO)", "<p>DEMO trades on CoinSpot from today.</p>")
    with progress("a listing published in the sandbox; coinspot_listing_sensor's next tick"), \
            build_sensor_context(instance=instance, resources=defs.resources, cursor=history.cursor) as context:
        [request] = sensor.evaluate_tick(context).run_requests
    run = progress.run(defs, "catalyst_listings", instance, label="catalyst_listings for the new listing",
                       run_config=request.run_config, tags=request.tags)
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
    Bad input (no files, a wrong timeframe, an unmigrated database) is one line on stderr (main)."""
    from omc_pipelines import settings
    from omc_pipelines.db import ready_engine
    from omc_pipelines.ledgers.exchange.history import import_ohlcv

    config = settings.load()
    paths = args.paths or [config.history_folder]
    engine = ready_engine(config.ledger_database_url, auto_migrate=not config.database_url_from_env)
    report = import_ohlcv(engine, paths, args.source, coin=args.coin, market=args.market,
                          timeframe=args.timeframe, log=lambda line: print(line, flush=True))
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


class DevError(Exception):
    """`omc dev` cannot start: a port taken (naming the option that moves it), no `dg` beside this Python."""


def _port_taken(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    if port == 0:
        return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed port's TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _stop_group(process, grace: float) -> None:
    """SIGTERM to the whole process group (`dg dev` and its webserver, daemon and code servers),
    SIGKILL to what is left after ``grace`` seconds."""
    import subprocess

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # The group may outlive its leader for a moment: make sure nothing of it is left.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


DEV_GRACE_SECONDS = 20.0


def dev(args: argparse.Namespace) -> int:
    """The sandbox (unless --real) and `dg dev` on the project's instance; Ctrl-C or SIGTERM stops both."""
    from omc_pipelines.sandbox import Sandbox

    for port, option in ((args.port, "--port"), (None if args.real else args.sandbox_port, "--sandbox-port")):
        if port is not None and _port_taken(port):
            raise DevError(f"port {port} is in use ({option} to choose another)")
    _dg()
    box = None if args.real else Sandbox(port=args.sandbox_port).start()
    try:
        return _serve_ui(box, args.port)
    finally:
        if box is not None:
            box.stop()


def _dg() -> Path:
    dg = Path(sys.executable).with_name("dg")
    if not dg.is_file():
        raise DevError(f"{dg} not found: install the project (pip install -e .) in this environment")
    return dg


def _serve_ui(box, port: int) -> int:
    """`dg dev` on the instance (DAGSTER_HOME) with every source at ``box`` (None: the real ones) until
    Ctrl-C or SIGTERM, or until it ends by itself (its exit code)."""
    import subprocess

    from omc_pipelines.sandbox.stack import ROOT

    dg = _dg()
    # dg dev runs where the project is (pyproject.toml's [tool.dg]); the instance is the project's.
    project = ROOT if (ROOT / "pyproject.toml").is_file() and (ROOT / "workspace.yaml").is_file() else Path.cwd()
    if "DAGSTER_HOME" not in os.environ and (project / "dagster.yaml").is_file() and project != Path.cwd():
        os.environ["DAGSTER_HOME"] = str(project)
    _dagster_home()
    env = {**os.environ, **(box.env() if box else {})}

    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    process = None
    try:
        process = subprocess.Popen([str(dg), "dev", "--port", str(port)], cwd=project, env=env,
                                   start_new_session=True)  # its own group: stopped as a whole, below
        sources = f"the sandbox at {box.url}" if box else "the real sources"
        print(f"omc dev: Dagster UI at http://127.0.0.1:{port} on {sources}, DAGSTER_HOME={env['DAGSTER_HOME']}",
              flush=True)
        print("omc dev: Ctrl-C (or SIGTERM to this process) stops the UI, the daemon and the sandbox", flush=True)
        while not stop.wait(0.5):
            if process.poll() is not None:
                break
        code = process.poll()
        if code is None:
            print("omc dev: stopping...", file=sys.stderr, flush=True)
            _stop_group(process, DEV_GRACE_SECONDS)
            return 0
        print(f"omc dev: dg dev exited with code {code}", file=sys.stderr, flush=True)
        _stop_group(process, 5.0)  # what it started, if anything is left
        return code
    finally:
        if process is not None and process.poll() is None:
            _stop_group(process, DEV_GRACE_SECONDS)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def db_current(args: argparse.Namespace) -> int:
    from omc_pipelines import settings
    from omc_pipelines.db import get_engine, safe_url
    from omc_pipelines.db.engine import current_revision, head_revision

    engine = get_engine(settings.load().ledger_database_url)
    current, head = current_revision(engine), head_revision()
    print(f"{safe_url(engine.url)}: {_revision_state(current, head)}")
    return 0


def _revision_state(current: str | None, head: str) -> str:
    if current == head:
        return f"{current} (the newest)"
    if current is None:
        return f"empty, no migration applied (the newest is {head}: run `omc db upgrade`)"
    return f"{current}, behind the newest {head}: run `omc db upgrade`"


def db_history(args: argparse.Namespace) -> int:
    from alembic.script import ScriptDirectory

    from omc_pipelines import settings
    from omc_pipelines.db import get_engine, safe_url
    from omc_pipelines.db.engine import alembic_config, current_revision

    engine = get_engine(settings.load().ledger_database_url)
    current = current_revision(engine)
    rows = [("*" if script.revision == current else "", script.revision,
             " ".join((script.doc or "").strip().split("\n\n")[0].split()))
            for script in ScriptDirectory.from_config(alembic_config(engine)).walk_revisions()]
    print(_table(("", "revision", "message"), rows))
    print(f"* {safe_url(engine.url)} is at " + (current or "no revision (empty)"))
    return 0


# The ledger tables' obvious time columns, and how old the newest may get (None: no expectation:
# the table moves when the world publishes, or when a person runs it). The windows follow
# the ledgers' freshness policies (ledgers/*/schedules.py): "minutely" is OMC_FRESHNESS_MINUTES.
_MINUTELY, _HOURLY, _QUARTER_HOURLY, _DAILY = "minutely", timedelta(hours=3), timedelta(hours=1), timedelta(hours=51)
_TIME_COLUMNS: dict[str, tuple[str, object]] = {
    "exchange_price_snapshots": ("observed_at", _MINUTELY),
    "exchange_trades": ("collected_at", _MINUTELY),
    "exchange_candles": ("hour_start", timedelta(hours=2)),
    "exchange_imported_candles": ("open_time", None),
    "catalyst_events": ("published_at", None),
    "glass_chain_tvl": ("day", _DAILY),
    "glass_protocols": ("collected_at", _HOURLY),
    "glass_protocol_fees": ("collected_at", _HOURLY),
    "glass_stablecoin_supply": ("collected_at", _HOURLY),
    "human_items": ("collected_at", _QUARTER_HOURLY),
    "human_coin_sentiment_daily": ("day", _DAILY),
    "research_event_returns": ("computed_at", None),
    "research_event_study": ("computed_at", None),
    "research_backtests": ("computed_at", None),
    "research_backtest_trades": ("entry_at", None),
    "trading_signals": ("created_at", None),
    "trading_orders": ("requested_at", None),
    "trading_lots": ("opened_at", None),
    "trading_realized": ("closed_at", None),
    "trading_positions": ("updated_at", None),
    "trading_pnl_daily": ("computed_at", None),
    "trading_paper_wallet": ("updated_at", None),
    "trading_paper_fills": ("filled_at", None),
    "trading_nonces": ("updated_at", None),
    "trading_controls": ("changed_at", None),
}


def status(args: argparse.Namespace) -> int:
    """What the ledgers hold and how old it is; the schema's revision; which sources have keys."""
    from datetime import date

    import sqlalchemy as sa

    from omc_pipelines import settings
    from omc_pipelines.db import get_engine, safe_url
    from omc_pipelines.db.engine import current_revision, head_revision
    from omc_pipelines.db.models import Base
    from omc_trading.tables import metadata as trading_tables

    config = settings.load()
    engine = get_engine(config.ledger_database_url)
    now = datetime.now(timezone.utc)
    minutely = timedelta(minutes=config.freshness_minutes)
    rows = []
    with engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names())
        for table in sorted([*Base.metadata.sorted_tables, *trading_tables.sorted_tables], key=lambda t: t.name):
            column, window = _TIME_COLUMNS.get(table.name, (None, None))
            if table.name not in present:
                rows.append((table.name, "-", "-", "-", "missing: run `omc db upgrade`"))
                continue
            count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            newest = conn.execute(sa.select(sa.func.max(table.c[column]))).scalar_one() if column else None
            if isinstance(newest, date) and not isinstance(newest, datetime):
                newest = datetime(newest.year, newest.month, newest.day, tzinfo=timezone.utc)
            elif isinstance(newest, datetime) and newest.tzinfo is None:
                newest = newest.replace(tzinfo=timezone.utc)
            window = minutely if window == _MINUTELY else window
            if not count:
                state = "empty"
            elif window is None or newest is None:
                state = "-"
            else:
                state = "fresh" if now - newest <= window else "stale"
            rows.append((table.name, str(count), f"{newest:%Y-%m-%d %H:%M}" if newest else "-",
                         column or "-", state + (f" (within {_duration(window)})" if window and count else "")))
    current = current_revision(engine)
    print(f"ledger database: {safe_url(engine.url)} "
          f"({settings.DATABASE_URL if config.database_url_from_env else 'the embedded default'})")
    print(f"migration revision: {_revision_state(current, head_revision())}\n")
    print(_table(("table", "rows", "newest (UTC)", "from", "fresh?"), rows, right=(1,)))
    print(f"\nfresh: the newest time is within its table's window ({settings.FRESHNESS_MINUTES}="
          f"{config.freshness_minutes} min for what runs every minute,\n  hours for the hourly and daily ledgers); "
          "'-': no expectation (catalysts, imports, research and trading move when something happens)\n")
    yes = lambda flag: "yes" if flag else "no"  # noqa: E731
    sources = [
        ("SEC user agent", settings.SEC_USER_AGENT, yes(config.sec_user_agent)),
        ("CryptoPanic token", settings.CRYPTOPANIC_TOKEN, yes(config.cryptopanic_token)),
        ("Reddit keys", f"{settings.REDDIT_CLIENT_ID}, {settings.REDDIT_CLIENT_SECRET}",
         yes(config.reddit_client_id and config.reddit_client_secret)),
        ("news feeds", settings.NEWS_FEEDS, "yes" if "news_feeds" in config.model_fields_set else "the defaults"),
        ("CoinSpot trading keys", f"{settings.COINSPOT_API_KEY}, {settings.COINSPOT_API_SECRET}",
         yes(config.coinspot_api_key and config.coinspot_api_secret)),
        ("CoinSpot read-only keys", f"{settings.COINSPOT_READONLY_KEY}, {settings.COINSPOT_READONLY_SECRET}",
         yes(config.coinspot_readonly_key and config.coinspot_readonly_secret)),
    ]
    print(_table(("source", "variables", "set"), sources))
    return 0


def _duration(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def config_command(args: argparse.Namespace) -> int:
    """Every setting's effective value and its origin; the secrets (settings.SECRETS) as ***."""
    from omc_pipelines import settings

    config = settings.load()
    rows = []
    for field in settings.Settings.model_fields:
        value = getattr(config, field)
        given = field in config.model_fields_set
        if field in settings.SECRETS and value is not None:
            shown = "***"
        elif field == "database_url" and value is None:
            shown = config.ledger_database_url  # the embedded default: a file path, nothing secret
        else:
            shown = _plain(value)
        rows.append((settings.env_name(field), shown, "environment" if given else "default"))
    print(_table(("variable", "value", "from"), rows))
    return 0


def _plain(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "(none)"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> str:
    """Rows as aligned text under their headers (columns in ``right`` aligned right)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {value}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("omc-pipelines")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    def command(group, name: str, summary: str, description: str | None = None, **kwargs) -> argparse.ArgumentParser:
        return group.add_parser(name, help=summary, description=description or summary[0].upper() + summary[1:] + ".",
                                **kwargs)

    parser = argparse.ArgumentParser(
        prog="omc", description="OMC Pipelines: the crypto ledgers, their database and the trading switch.",
        epilog="Settings come from OMC_* environment variables: see `omc config`.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the version of omc-pipelines and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = command(commands, "demo", "run the ledgers against the sandbox into the embedded database",
                "Start the offline sandbox, run the Exchange, Glass, Human and Catalyst ledgers against it into "
                "the embedded database, trade one new listing on paper, and print a summary.")
    p.add_argument("--hours", type=_at_least_one, default=8, help="hours of candles to build, at least 1 (default 8)")
    p.add_argument("--ui", action="store_true",
                   help="then leave the Dagster UI and its daemon running on the demo's instance, ledger database and "
                        "sandbox (what `omc dev` runs); Ctrl-C stops them")
    p.add_argument("--port", type=_port, default=3000, help="the web UI's port with --ui (default 3000)")
    p.set_defaults(func=demo)

    p = command(commands, "db", "the ledger database: migrations", "The ledger database (OMC_DATABASE_URL): "
                "its migrations.")
    db = p.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    p = command(db, "upgrade", "migrate OMC_DATABASE_URL to the newest schema (or to a revision)")
    p.add_argument("revision", nargs="?", default="head",
                   help="the revision to migrate to (default head, the newest; `omc db history` lists them)")
    p.set_defaults(func=db_upgrade)
    p = command(db, "current", "the database's migration revision, and whether it is the newest")
    p.set_defaults(func=db_current)
    p = command(db, "history", "every migration revision, newest first, with its message; the database's marked *")
    p.set_defaults(func=db_history)

    p = command(commands, "status", "per ledger table: rows, newest time, fresh or stale; the revision; the sources",
                "Per ledger table: its rows, its newest time and whether that is fresh; the database's migration "
                "revision; which sources have their keys set (yes or no, never the value).")
    p.set_defaults(func=status)
    p = command(commands, "config", "the effective settings, where each came from, secrets masked",
                "Every OMC_* setting's effective value and where it came from (the environment or the default); "
                "secrets shown as ***.")
    p.set_defaults(func=config_command)

    p = command(commands, "trading", "the kill switch (halt, resume) and the state of trading (status)")
    kill = p.add_subparsers(dest="trading_command", required=True, metavar="COMMAND")
    p = command(kill, "halt", "refuse every order, sells included, until resumed (kept in the database)")
    p.add_argument("--reason", required=True, help="why: shown with every refused signal")
    p.set_defaults(func=trading)
    p = command(kill, "resume", "allow orders again")
    p.set_defaults(func=trading)
    p = command(kill, "status", "the kill switch, the mode and why, open positions, unsettled orders")
    p.set_defaults(func=trading)

    p = command(commands, "history", "price history from files")
    files = p.add_subparsers(dest="history_command", required=True, metavar="COMMAND")
    p = command(files, "import", "import freqtrade or ccxt OHLCV files (JSON, CSV, gzipped too) into the "
                "Exchange ledger's exchange_imported_candles")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="files or folders (every supported file in a folder); none: OMC_HISTORY_DIR")
    p.add_argument("--source", required=True, help="who made the history, e.g. freqtrade:binance (part of the key)")
    p.add_argument("--coin", help="the coin, instead of what the file names say (BTC_AUD-1h.json: btc)")
    p.add_argument("--market", help="the quote currency, instead of the names' (BTC_AUD-1h.json: aud)")
    p.add_argument("--timeframe", help="the timeframe, instead of the names' (1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d)")
    p.set_defaults(func=history_import)

    p = command(commands, "sandbox", "serve every source offline",
                "Serve every source's paths offline, in each source's own shape, and print the `export` lines "
                "that point the pipeline at it (quoted for the shell).")
    p.add_argument("--port", type=_port, default=8765, help="the port to listen on (default 8765; 0: any free one)")
    p.set_defaults(func=sandbox)

    p = command(commands, "dev", "the sandbox and the Dagster UI together; one Ctrl-C stops both",
                "Start the offline sandbox and `dg dev` (the web UI and the daemon) on the project's instance "
                "(DAGSTER_HOME), with every source pointed at the sandbox. Ctrl-C or SIGTERM stops both; when "
                "`dg dev` ends by itself, the sandbox stops too and its exit code is passed on.")
    p.add_argument("--port", type=_port, default=3000, help="the web UI's port (default 3000)")
    p.add_argument("--sandbox-port", type=_port, default=8765, help="the sandbox's port (default 8765; 0: any free one)")
    p.add_argument("--real", action="store_true",
                   help="no sandbox: the pipeline talks to the sources its OMC_* settings name")
    p.set_defaults(func=dev)
    return parser


def _failure(exc: BaseException) -> str | None:
    """The one line that tells a failure's cause and the variable behind it; None: not ours (a bug)."""
    import sqlalchemy as sa
    from alembic.util import CommandError

    from omc_pipelines import settings
    from omc_pipelines.db import DatabaseNotMigrated, safe_url
    from omc_pipelines.ledgers.exchange.history import HistoryImportError

    if isinstance(exc, settings.SettingsError | HistoryImportError | DatabaseNotMigrated | DevError):
        return str(exc)
    if isinstance(exc, CommandError):  # alembic: an unknown revision, mostly
        return f"migration: {exc} (`omc db history` lists the revisions)"
    if isinstance(exc, sa.exc.SQLAlchemyError):
        config = settings.load()  # loaded before the database was reached: it cannot fail now
        url = config.ledger_database_url
        where = (f"{settings.DATABASE_URL}={safe_url(url)}" if config.database_url_from_env
                 else f"the embedded database {safe_url(url)} ({settings.DATABASE_URL} unset)")
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        cause = (cause[0] if cause else type(exc).__name__).removeprefix("connection failed: ")
        password = sa.make_url(url).password
        if password:
            cause = cause.replace(password, "***")
        verb = "cannot connect to" if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) else "error in"
        return f"{verb} {where}: {cause}"
    if isinstance(exc, OSError):  # a port in use, an unreadable file
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> None:
    """Usage errors are argparse's (exit 2); a failure is one line on stderr (exit 1), never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except Exception as exc:
        line = _failure(exc)
        if line is None:
            raise
        name = " ".join(filter(None, ["omc", args.command, *(getattr(args, f"{args.command}_command", None),)]))
        print(f"{name}: {line}", file=sys.stderr)
        code = 1
    sys.exit(code)
