"""The kill switch: a person halts trading (every order, sells included) and resumes it.

It lives in ``trading_controls`` so that every process sees it, and its row doubles as the
trading book's lock: :func:`lock_book` is a no-op UPDATE of it, which is a row lock on
PostgreSQL and the database write lock on SQLite, one mechanism for both. Every decision to
place an order is taken under that lock, so two runs never decide on the same book at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from omc_trading.clock import utc_now
from omc_trading.config import TradingConfig
from omc_trading.sql import insert_missing
from omc_trading.tables import controls

KILL_SWITCH = "kill_switch"
HALTED, RUNNING = "halted", "running"


@dataclass(frozen=True)
class KillSwitch:
    halted: bool
    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None
    forced: bool = False  # by the configuration (OMC_KILL_SWITCH=on), not by a person

    def describe(self) -> str:
        if self.forced:
            return "kill switch on: forced by OMC_KILL_SWITCH=on"
        if not self.halted:
            return "kill switch off: trading"
        return f"kill switch on: halted by {self.changed_by} at {self.changed_at:%Y-%m-%d %H:%M:%S} UTC: {self.reason}"


def _ensure_row(conn: sa.Connection, now: datetime) -> None:
    insert_missing(conn, controls, {"name": KILL_SWITCH, "value": RUNNING, "changed_at": now}, "name")


def lock_book(conn: sa.Connection, now: datetime) -> None:
    """Take the trading book's write lock for the rest of ``conn``'s transaction."""
    _ensure_row(conn, now)
    conn.execute(sa.update(controls).where(controls.c.name == KILL_SWITCH).values(value=controls.c.value))


def read(conn: sa.Connection, config: TradingConfig) -> KillSwitch:
    if config.kill_switch_forced:
        return KillSwitch(halted=True, forced=True, reason="OMC_KILL_SWITCH=on")
    row = conn.execute(sa.select(controls).where(controls.c.name == KILL_SWITCH)).mappings().first()
    if row is None or row["value"] != HALTED:
        return KillSwitch(halted=False)
    return KillSwitch(halted=True, reason=row["reason"], changed_by=row["changed_by"], changed_at=row["changed_at"])


def _set(engine: sa.Engine, value: str, reason: str | None, by: str, now: datetime | None) -> None:
    if not by or not by.strip():
        raise ValueError("say who is switching: `by` is empty")
    now = now or utc_now()
    with engine.begin() as conn:
        lock_book(conn, now)
        conn.execute(
            sa.update(controls).where(controls.c.name == KILL_SWITCH)
            .values(value=value, reason=reason, changed_by=by.strip(), changed_at=now)
        )


def halt(engine: sa.Engine, reason: str, by: str, now: datetime | None = None) -> None:
    """Stop every order from now on, until :func:`resume`. Waits for a decision in progress."""
    if not reason or not reason.strip():
        raise ValueError("say why trading is halted: `reason` is empty")
    _set(engine, HALTED, reason.strip(), by, now)


def resume(engine: sa.Engine, by: str, now: datetime | None = None) -> None:
    _set(engine, RUNNING, None, by, now)


def status(engine: sa.Engine, config: TradingConfig) -> KillSwitch:
    with engine.connect() as conn:
        return read(conn, config)
