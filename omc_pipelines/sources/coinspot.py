"""CoinSpot's public API (``/pubapi/v2``): a client and pure parse functions.

Parse functions take the decoded JSON and return typed rows, or raise
``SourcePayloadError`` naming what is wrong; they never touch the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from datetime import datetime
from typing import Any

from omc_pipelines.sources.http import HttpSource
from omc_pipelines.sources.payload import Payload

SOURCE = "coinspot"
PUBLIC = "/pubapi/v2"
DEFAULT_MARKET = "aud"


@dataclass(frozen=True)
class PriceQuote:
    coin: str
    market: str
    bid: float | None
    ask: float | None
    last: float | None


@dataclass(frozen=True)
class TradePrint:
    coin: str
    market: str
    side: str  # "buy" or "sell": which book the completed order came from
    amount: float
    rate: float
    total: float
    sold_at: datetime


class _Payload(Payload):
    """CoinSpot's readers on top of the shared ones."""

    def ok_body(self, payload: Any) -> dict:
        if not isinstance(payload, dict):
            raise self.fail(f"expected a JSON object, got {type(payload).__name__}")
        if payload.get("status") != "ok":
            raise self.fail(f"status is {payload.get('status')!r}, message {payload.get('message')!r}")
        return payload

    def required_number(self, value: Any, where: str) -> float:
        number = self.number(value, where)
        if number is None:
            raise self.fail(f"{where} is missing or NaN")
        return number

    def time(self, value: Any, where: str) -> datetime:
        if not isinstance(value, str):
            raise self.fail(f"{where} is not a time string")  # CoinSpot's own wording, kept
        return super().time(value, where)


def split_market_key(key: str) -> tuple[str, str]:
    """``"btc"`` -> ("btc", "aud"); ``"btc_usdt"`` -> ("btc", "usdt")."""
    coin, _, market = key.lower().partition("_")
    return coin, market or DEFAULT_MARKET


def parse_latest(payload: Any, url: str = PUBLIC + "/latest") -> list[PriceQuote]:
    """``/latest``: every coin and market the summary covers."""
    p = _Payload(SOURCE, url)
    prices = p.field(p.ok_body(payload), "prices", "body")
    if not isinstance(prices, dict):
        raise p.fail("prices is not an object")
    quotes = []
    for key, entry in prices.items():
        coin, market = split_market_key(key)
        quotes.append(_quote(p, coin, market, entry, f"prices.{key}"))
    return quotes


def parse_latest_coin(payload: Any, coin: str, url: str | None = None) -> PriceQuote:
    """``/latest/{coin}``: one coin on the AUD market, for coins ``/latest`` omits."""
    p = _Payload(SOURCE, url or f"{PUBLIC}/latest/{coin}")
    entry = p.field(p.ok_body(payload), "prices", "body")
    return _quote(p, coin.lower(), DEFAULT_MARKET, entry, "prices")


def _quote(p: _Payload, coin: str, market: str, entry: Any, where: str) -> PriceQuote:
    """CoinSpot sends bid, ask and last for every pair ("NaN" or null: no price); one left
    out is a wrong answer, not "no price"."""
    if not isinstance(entry, dict):
        raise p.fail(f"{where} is not an object")
    bid, ask, last = (p.number(p.field(entry, name, where), f"{where}.{name}") for name in ("bid", "ask", "last"))
    return PriceQuote(coin=coin, market=market, bid=bid, ask=ask, last=last)


def parse_completed_orders(payload: Any, coin: str, url: str | None = None) -> list[TradePrint]:
    """``/orders/completed/{coin}``: the recent trades of one coin, both books."""
    p = _Payload(SOURCE, url or f"{PUBLIC}/orders/completed/{coin}")
    body = p.ok_body(payload)
    trades = []
    for book, side in (("buyorders", "buy"), ("sellorders", "sell")):
        rows = p.field(body, book, "body")
        if not isinstance(rows, list):
            raise p.fail(f"{book} is not a list")
        for i, row in enumerate(rows):
            where = f"{book}[{i}]"
            if not isinstance(row, dict):
                raise p.fail(f"{where} is not an object")
            market = str(p.field(row, "market", where))
            base, _, quote = market.partition("/")
            if not quote or base.lower() != coin.lower():
                raise p.fail(f"{where}.market is {market!r}, expected {coin.upper()}/<market>")
            amount = p.required_number(p.field(row, "amount", where), f"{where}.amount")
            rate = p.required_number(p.field(row, "rate", where), f"{where}.rate")
            sent = row.get("total")
            total = amount * rate if sent is None else p.required_number(sent, f"{where}.total")
            if math.isinf(total):
                raise p.fail(f"{where} has no total, and amount times rate is past float's range")
            trades.append(
                TradePrint(
                    coin=coin.lower(),
                    market=quote.lower(),
                    side=side,
                    amount=amount,
                    rate=rate,
                    total=total,
                    sold_at=p.time(p.field(row, "solddate", where), f"{where}.solddate"),
                )
            )
    return trades


def parse_rate(payload: Any, coin: str, url: str) -> Decimal:
    """``/buyprice/{coin}`` or ``/sellprice/{coin}``: the rate an instant order would get, exact
    (decode with ``exact=True``: a price traded on never passes through a float)."""
    p = _Payload(SOURCE, url)
    value = p.field(p.ok_body(payload), "rate", "body")
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise p.fail(f"rate is {value!r}, not a number")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise p.fail(f"rate is {str(value)[:40]!r}, not a number") from None
    if not rate.is_finite() or rate <= 0:
        raise p.fail(f"rate of {coin} is {rate}, not a positive price")
    return rate


class CoinSpotPublic:
    """CoinSpot's public API over the shared HTTP layer."""

    def __init__(self, http: HttpSource):
        self.http = http

    def __enter__(self) -> CoinSpotPublic:
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()

    def latest(self) -> list[PriceQuote]:
        path = f"{PUBLIC}/latest"
        return parse_latest(self.http.get_json(path), self.http.shown_url(path))

    def latest_coin(self, coin: str) -> PriceQuote:
        path = f"{PUBLIC}/latest/{coin.lower()}"
        return parse_latest_coin(self.http.get_json(path), coin, self.http.shown_url(path))

    def rate(self, side: str, coin: str) -> Decimal:
        """What an instant ``side`` ("buy" or "sell") of ``coin`` would pay or get, in AUD."""
        path = f"{PUBLIC}/{side}price/{coin.lower()}"
        return parse_rate(self.http.get_json(path, exact=True), coin, self.http.shown_url(path))

    def completed_orders(self, coin: str) -> list[TradePrint]:
        path = f"{PUBLIC}/orders/completed/{coin.lower()}"
        return parse_completed_orders(self.http.get_json(path), coin, self.http.shown_url(path))
