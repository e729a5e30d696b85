"""Shared by the benchmarks: scratch databases, realistic trades, machine facts.

Not a test module; nothing here is collected by pytest (testpaths = tests).
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa

from omc_pipelines.db import get_engine, upgrade

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

# (coin, AUD price at the start, annual volatility); the first coins trade most.
COINS = [
    ("btc", 150_000.0, 0.6), ("eth", 5_000.0, 0.7), ("sol", 250.0, 0.9), ("xrp", 3.5, 0.9),
    ("doge", 0.35, 1.1), ("ada", 1.1, 0.9), ("trx", 0.35, 0.7), ("link", 30.0, 0.9),
    ("avax", 50.0, 1.0), ("dot", 10.0, 0.9), ("ltc", 130.0, 0.8), ("bch", 600.0, 0.8),
    ("shib", 0.00003, 1.2), ("uni", 12.0, 1.0), ("atom", 9.0, 1.0), ("xlm", 0.5, 0.9),
    ("etc", 35.0, 0.9), ("near", 7.0, 1.1), ("apt", 13.0, 1.1), ("pepe", 0.00002, 1.4),
]
MS_PER_YEAR = 365 * 24 * 3600 * 1000


def server_url() -> sa.URL:
    return sa.make_url(os.environ.get("OMC_BENCH_POSTGRES_URL", DEFAULT_SERVER)).set(drivername="postgresql")


@contextlib.contextmanager
def scratch_database() -> Iterator[sa.URL]:
    """An empty PostgreSQL database ``omc_bench_<random>``, dropped on exit (its connections closed by force)."""
    server = server_url()
    admin = server.render_as_string(hide_password=False)
    name = f"omc_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_postgres() -> Iterator[sa.Engine]:
    """A fresh PostgreSQL database ``omc_bench_<random>`` migrated as a ledger, dropped on exit."""
    with scratch_database() as database:
        url = database.render_as_string(hide_password=False)
        try:
            engine = get_engine(url)
            upgrade(engine)
            yield engine
        finally:
            get_engine(url).dispose()


@contextlib.contextmanager
def scratch_sqlite() -> Iterator[sa.Engine]:
    """A fresh, migrated SQLite file in a temporary folder, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="omc_bench_") as folder:
        engine = get_engine(f"sqlite:///{folder}/ledger.db")
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()


def generate_trades(n: int, coins: int, start: datetime, end: datetime, seed: int = 7) -> list[dict]:
    """``n`` trade rows as the ``coinspot_trades`` asset writes them, in time order.

    Prices follow a random walk per coin; trade sizes are log-normal in AUD; the
    first coins trade most. (coin, market, sold_at) is unique, so every row is a
    distinct trade and "first"/"last" of an hour is never a tie.
    """
    rng = np.random.default_rng(seed)
    names, prices, vols = zip(*COINS[:coins])
    weights = 1 / np.arange(1, coins + 1)
    span = int((end - start).total_seconds() * 1000)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n:  # collisions on (coin, ms) are rare; draw again until unique
        draw = n - len(keys)
        coin = rng.choice(coins, size=draw, p=weights / weights.sum())
        keys = np.unique(np.concatenate([keys, coin.astype(np.int64) * span + rng.integers(0, span, draw)]))
    coin, ms = np.divmod(keys, span)  # sorted by coin, then time
    first = np.r_[True, coin[1:] != coin[:-1]]
    step = np.where(first, 0.0, np.diff(ms, prepend=0) / MS_PER_YEAR)
    walk = np.cumsum(rng.standard_normal(n) * np.sqrt(step) * np.asarray(vols)[coin])
    walk -= walk[np.maximum.accumulate(np.where(first, np.arange(n), 0))]  # each coin starts at 0
    rate = np.asarray(prices)[coin] * np.exp(walk) * (1 + rng.normal(0, 0.001, n))
    rate = np.array([float(f"{r:.6g}") for r in rate])
    amount = np.round(np.exp(rng.normal(np.log(200), 1.5, n)) / rate, 8)
    total = np.round(amount * rate, 8)
    order = np.argsort(ms, kind="stable")
    sold = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(ms[order], unit="ms")).to_pydatetime()
    delay = rng.integers(1_000, 300_000, n)
    collected = [s + timedelta(milliseconds=int(d)) for s, d in zip(sold, delay)]
    side = np.where(rng.random(n) < 0.5, "buy", "sell")[order]
    return [
        {"coin": names[c], "market": "aud", "side": str(sd), "amount": a, "rate": r, "total": t,
         "sold_at": s, "collected_at": col}
        for c, sd, a, r, t, s, col in zip(
            coin[order].tolist(), side, amount[order].tolist(), rate[order].tolist(),
            total[order].tolist(), sold, collected,
        )
    ]


def machine_facts(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        settings = dict(conn.exec_driver_sql(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
            "('server_version', 'shared_buffers', 'work_mem', 'synchronous_commit', "
            "'max_parallel_workers_per_gather')"
        ).all())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), load avg {load}, "
        f"{platform.machine()}, Python {sys.version.split()[0]}\n"
        f"PostgreSQL {settings['server_version']}: shared_buffers={settings['shared_buffers']}, "
        f"work_mem={settings['work_mem']}, synchronous_commit={settings['synchronous_commit']}, "
        f"max_parallel_workers_per_gather={settings['max_parallel_workers_per_gather']}"
    )


def proc_status(field: str) -> int:
    """A /proc/self/status figure in kB (VmRSS: now, VmHWM: peak)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def reset_peak_rss() -> None:
    """Restart VmHWM from the RSS of now (Linux >= 4.0), so that it reads the peak of what follows.

    ru_maxrss is no good for that: it never goes down, and Linux carries a parent's RSS at
    fork into a child's figure."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
