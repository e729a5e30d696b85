"""What the trading core may do: one frozen, validated configuration, and the effective mode.

The pipelines map environment variables onto :class:`TradingConfig`; a value that makes no
sense (a negative cap, a fee of 100 %) is refused here, naming the field, before any order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from omc_trading.broker import Mode
from omc_trading.money import dec

MODES = ("paper", "live")


@dataclass(frozen=True)
class TradingConfig:
    mode: Mode = "paper"  # the mode asked for; see effective_mode() for the one traded in
    live_confirmed: bool = False  # OMC_TRADING_LIVE_CONFIRM=yes: a person said "real money"
    trade_aud: Decimal = Decimal("100")  # what one buy spends, fee included
    fee_rate: Decimal = Decimal("0.01")  # of the AUD total, on both sides
    paper_start_aud: Decimal = Decimal("10000")
    max_quote_age: timedelta = timedelta(seconds=120)  # an older quote never fills a paper order
    # An event older than this after its publication is never traded: a first start, a history
    # run or a backfill sees old events, and buying on old news is buying someone else's exit.
    max_event_age: timedelta = timedelta(minutes=10)
    btc_purchase_enabled: bool = False
    # Exits, each alone sufficient: gain, loss (both in % of the cost, fees included), age.
    take_profit_pct: Decimal = Decimal("20")
    stop_loss_pct: Decimal = Decimal("10")
    max_holding: timedelta = timedelta(days=7)
    # An exit refused (the kill switch) or unfilled (no quote) is tried again after this pause.
    exit_retry_pause: timedelta = timedelta(minutes=15)
    # Risk limits (AUD at cost, fees included; a day is a UTC day).
    max_order_aud: Decimal = Decimal("250")
    max_daily_spend_aud: Decimal = Decimal("1000")
    max_coin_exposure_aud: Decimal = Decimal("500")
    max_total_exposure_aud: Decimal = Decimal("2000")
    max_open_positions: int = 10
    daily_loss_limit_aud: Decimal = Decimal("200")  # realized today + unrealized
    cooldown: timedelta = timedelta(hours=1)  # between two buys of one coin
    allow_coins: frozenset[str] = frozenset()  # empty: every coin
    deny_coins: frozenset[str] = frozenset()  # wins over the allow list
    slippage_pct: Decimal = Decimal("2")  # how far a fill may move against the quote we sent at
    # Reconciliation of orders whose outcome is unknown (a timeout, a crash while sending).
    reconcile_grace: timedelta = timedelta(minutes=5)  # a "sent" order younger than this is still in flight
    reconcile_window: timedelta = timedelta(minutes=10)  # a broker fill this far from sent_at may match
    reconcile_tolerance_pct: Decimal = Decimal("1")  # amount difference a match tolerates
    reconcile_max_attempts: int = 5  # not found this many times AND older than max age: lost
    reconcile_max_age: timedelta = timedelta(hours=24)
    kill_switch_forced: bool = False  # OMC_KILL_SWITCH=on

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "Decimal":
                try:
                    value = dec(value)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"TradingConfig.{field.name}: {exc}") from None
                object.__setattr__(self, field.name, value)
                if value < 0:
                    self._refuse(field.name, value, "must not be negative")
            elif field.type == "timedelta" and value < timedelta(0):
                self._refuse(field.name, value, "must not be negative")
            elif field.type == "int" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                self._refuse(field.name, value, "must be a whole number, 0 or more")
            elif field.type == "bool" and not isinstance(value, bool):
                self._refuse(field.name, value, "must be True or False")
            elif field.type == "frozenset[str]":
                object.__setattr__(self, field.name, frozenset(c.strip().lower() for c in value if c.strip()))
        if self.mode not in MODES:
            self._refuse("mode", self.mode, f"must be one of {', '.join(MODES)}")
        if self.trade_aud == 0:
            self._refuse("trade_aud", self.trade_aud, "must be above 0")
        if self.fee_rate >= 1:
            self._refuse("fee_rate", self.fee_rate, "must be below 1 (it is a fraction: 0.01 is 1 %)")
        if self.stop_loss_pct >= 100:
            self._refuse("stop_loss_pct", self.stop_loss_pct, "must be below 100")
        if self.slippage_pct > 1000:
            self._refuse("slippage_pct", self.slippage_pct, "must be 1000 at most (CoinSpot's threshold range)")
        for name in ("max_quote_age", "max_event_age", "max_holding", "reconcile_window"):
            if getattr(self, name) == timedelta(0):
                self._refuse(name, getattr(self, name), "must be above 0")
        if self.reconcile_max_attempts == 0:
            self._refuse("reconcile_max_attempts", 0, "must be 1 at least")

    @staticmethod
    def _refuse(name: str, value, why: str):
        raise ValueError(f"TradingConfig.{name} {why} (got {value})")


@dataclass(frozen=True)
class ModeDecision:
    mode: Mode
    reason: str


def effective_mode(config: TradingConfig, trading_keys: bool, read_only_keys: bool) -> ModeDecision:
    """Live only when asked for, confirmed, and both CoinSpot key pairs are there; else paper, saying why."""
    if config.mode == "paper":
        return ModeDecision("paper", "paper trading (requested)")
    missing = []
    if not config.live_confirmed:
        missing.append("OMC_TRADING_LIVE_CONFIRM is not yes")
    if not trading_keys:
        missing.append("the CoinSpot trading key and secret are not both set")
    if not read_only_keys:
        missing.append("the CoinSpot read-only key and secret are not both set")
    if missing:
        return ModeDecision("paper", f"live requested but {'; '.join(missing)}: trading on paper")
    return ModeDecision("live", "live trading: requested, confirmed, both key pairs present")
