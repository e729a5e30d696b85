"""CoinSpot's private API and the live broker.

Every private request is a POST whose JSON body carries an ever-growing ``nonce``;
the body is serialised once and those very bytes are signed (header ``sign``, an
HMAC-SHA512 keyed by the secret) and sent: re-serialising would change the bytes
and CoinSpot answers 401. Nonces come from the database (``trading_nonces``), so
they grow across threads, processes and restarts.

Reads may be retried (each try with a fresh nonce). An order is sent once and never
retried: CoinSpot has no client order id, so an order whose answer is lost has an
unknown outcome (``OrderOutcomeUnknown``), settled later from completed orders.

Keys, secrets, signatures and bodies never appear in errors, logs or reprs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from omc_trading.broker import Fill, OrderOutcomeUnknown, OrderRejected, OrderRequest, Quote, QuoteSource, Side
from omc_trading.money import aud, coins, dec
from omc_trading.tables import nonces

log = logging.getLogger(__name__)

BUY_NOW, SELL_NOW = "/api/v2/my/buy/now", "/api/v2/my/sell/now"
BALANCES, COMPLETED_ORDERS = "/api/v2/ro/my/balances", "/api/v2/ro/my/orders/completed"
COMPLETED_ORDERS_LIMIT = 500  # CoinSpot's maximum
RATE_PLACES = Decimal("0.00000001")
MAX_THRESHOLD_PCT = Decimal("1000")  # CoinSpot's bound on the slippage guard


def sign(body: bytes, secret: str) -> str:
    """CoinSpot's signature: lowercase hex HMAC-SHA512 of the exact body bytes."""
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


def key_fingerprint(key: str) -> str:
    """What the database knows of a key: enough to tell keys apart, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class NonceStore:
    """The next nonce of one key: max(last + 1, now in ms), taken in one statement.

    One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` both creates the row on first
    use and grows it; the database serialises writers of the row (a row lock on
    PostgreSQL, the write lock on SQLite), so two processes never get the same nonce,
    and a clock that steps back cannot make it shrink.
    """

    _inserts = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}

    def __init__(self, engine: sa.Engine, fingerprint: str, clock: Callable[[], float] = time.time):
        if engine.dialect.name not in self._inserts:
            raise ValueError(f"nonces are kept on PostgreSQL or SQLite, not {engine.dialect.name}")
        self._engine, self.fingerprint, self._clock = engine, fingerprint, clock

    def next(self) -> int:
        now = self._clock()
        insert = self._inserts[self._engine.dialect.name](nonces).values(
            key_fingerprint=self.fingerprint, last_nonce=int(now * 1000),
            updated_at=datetime.fromtimestamp(now, timezone.utc),
        )
        grown = sa.case(
            (nonces.c.last_nonce + 1 > insert.excluded.last_nonce, nonces.c.last_nonce + 1),
            else_=insert.excluded.last_nonce,
        )
        statement = insert.on_conflict_do_update(
            index_elements=[nonces.c.key_fingerprint],
            set_={"last_nonce": grown, "updated_at": insert.excluded.updated_at},
        ).returning(nonces.c.last_nonce)
        with self._engine.begin() as conn:
            return conn.execute(statement).scalar_one()


class CoinSpotError(Exception):
    """A private read failed, or its answer is not in CoinSpot's shape. Names the URL only."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"CoinSpot: {reason} ({url})")

    def __reduce__(self):
        return (self.__class__, (self.url, self.reason))


class CoinSpotRefused(CoinSpotError):
    """CoinSpot answered no (401/403, 4xx, a status other than ok): retrying will not help."""


class CoinSpotUnavailable(CoinSpotError):
    """No answer (connection, timeout) or a 5xx, after the retries ran out."""


@dataclass(frozen=True)
class _Attempt:
    """One POST's result: an answer, or what went wrong and whether CoinSpot may have
    received the request (``sent``)."""

    response: httpx.Response | None = None
    failure: str | None = None
    sent: bool = True


class CoinSpotClient:
    """Signed POSTs with one key pair (full access, or read only) against ``base_url``."""

    def __init__(self, base_url: str, key: str, secret: str, engine: sa.Engine, *, timeout: float = 10.0,
                 retries: int = 2, backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._key, self._secret = key, secret
        self._nonces = NonceStore(engine, key_fingerprint(key))
        self.timeout, self.retries, self.backoff, self._sleep = timeout, retries, backoff, sleep
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), transport=transport)

    def __repr__(self) -> str:
        return f"CoinSpotClient({self.base_url!r}, key {self._nonces.fingerprint})"

    def close(self) -> None:
        self._http.close()

    def read(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A read-only request, retried (with a fresh nonce) after no answer or a 5xx."""
        url = self.base_url + path
        for attempt in range(self.retries + 1):
            result = self._post(path, params or {})
            unanswered = result.failure is not None or result.response.status_code >= 500
            if unanswered and attempt < self.retries:
                self._sleep(random.uniform(0, self.backoff * 2**attempt))
                continue
            if result.failure:
                raise CoinSpotUnavailable(url, f"{result.failure} after {attempt + 1} tries")
            status = result.response.status_code
            if status >= 500:
                raise CoinSpotUnavailable(url, f"HTTP {status} after {attempt + 1} tries")
            body = _decoded(result.response)
            if status >= 400 or (body is not None and body.get("status") != "ok"):
                raise CoinSpotRefused(url, f"HTTP {status}: {_message(body)}")
            if body is None:
                raise CoinSpotError(url, f"HTTP {status}: the answer is not a JSON object")
            return body
        raise AssertionError("unreachable")

    def order(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """An order, sent once. Raises ``OrderRejected`` when CoinSpot said no or nothing
        was sent, and ``OrderOutcomeUnknown`` when it may have been filled."""
        url = self.base_url + path
        result = self._post(path, params)
        if result.failure:
            if result.sent:
                raise OrderOutcomeUnknown(f"CoinSpot: {result.failure}; the order may have filled ({url})")
            raise OrderRejected(f"CoinSpot: not sent: {result.failure} ({url})")
        status = result.response.status_code
        # A 5xx may come from a gateway after CoinSpot filled the order.
        if status >= 500:
            raise OrderOutcomeUnknown(f"CoinSpot: HTTP {status}; the order may have filled ({url})")
        body = _decoded(result.response)
        if status >= 400 or (body is not None and body.get("status") != "ok"):
            raise OrderRejected(f"CoinSpot refused the order: HTTP {status}: {_message(body)} ({url})")
        if body is None:
            raise OrderOutcomeUnknown(f"CoinSpot: HTTP {status} with an answer that is not a JSON object; "
                                      f"the order may have filled ({url})")
        return body

    def _post(self, path: str, params: Mapping[str, Any]) -> _Attempt:
        # Serialised once: these bytes are signed and these bytes are sent.
        body = json.dumps({**params, "nonce": self._nonces.next()}, separators=(",", ":")).encode()
        headers = {"key": self._key, "sign": sign(body, self._secret), "Content-Type": "application/json"}
        log.debug("CoinSpot POST %s", path)
        # No error is raised in an except block: httpx's exception carries the request,
        # headers and all, and would ride along as __context__.
        try:
            return _Attempt(response=self._http.post(self.base_url + path, content=body, headers=headers))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            failure, sent = f"could not connect ({exc.__class__.__name__})", False
        except httpx.TimeoutException as exc:
            failure, sent = f"no answer within {self.timeout:g} s ({exc.__class__.__name__})", True
        except httpx.HTTPError as exc:
            failure, sent = f"connection failed after sending ({exc.__class__.__name__})", True
        return _Attempt(failure=failure, sent=sent)


def _decoded(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object of an answer, numbers as Decimal; None when it is not one."""
    try:
        body = response.json(parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _message(body: dict[str, Any] | None) -> str:
    """CoinSpot's own words for a refusal, shortened."""
    if body is None:
        return "no message"
    message = body.get("message")
    return message[:200] if isinstance(message, str) else f"status {body.get('status')!r}"


class _Answer:
    """Reads fields out of one answer; a complaint names the URL and the field."""

    def __init__(self, url: str):
        self.url = url

    def fail(self, what: str) -> CoinSpotError:
        return CoinSpotError(self.url, f"malformed answer: {what}")

    def field(self, obj: Any, name: str, where: str) -> Any:
        if not isinstance(obj, dict) or name not in obj:
            raise self.fail(f"{where} has no {name!r}")
        return obj[name]

    def amount(self, obj: Any, name: str, where: str) -> Decimal:
        value = self.field(obj, name, where)
        try:
            amount = dec(value)
        except (TypeError, ValueError):
            raise self.fail(f"{where}.{name} is {value!r}, not an amount") from None
        if amount < 0:
            raise self.fail(f"{where}.{name} is negative ({amount})")
        return amount

    def time(self, obj: Any, name: str, where: str) -> datetime:
        value = self.field(obj, name, where)
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise self.fail(f"{where}.{name} is {value!r}, not a time") from None
        return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _plain(value: Decimal) -> str:
    """A decimal as CoinSpot reads it: plain digits, never an exponent or a float."""
    return format(value, "f")


class CoinSpotLiveBroker:
    """The ``Broker`` that trades on CoinSpot: orders with the full-access client, balances
    and completed orders with the read-only one.

    Quotes come from ``quotes`` (the same public-price source the paper broker uses)
    rather than CoinSpot's signed quote endpoints: those answer one side for one amount,
    spend nonces and the key's rate limit, and would make live and paper size orders
    from different prices. Protection against the price moving between the quote and
    the fill is the slippage guard every order carries, checked by CoinSpot itself.
    """

    mode = "live"

    def __init__(self, trading: CoinSpotClient, read_only: CoinSpotClient, quotes: QuoteSource,
                 fee_rate: Decimal = Decimal("0.01")):
        self._trading, self._read_only, self._quotes = trading, read_only, quotes
        self.fee_rate = dec(fee_rate)

    def __repr__(self) -> str:
        return f"CoinSpotLiveBroker(trading={self._trading!r}, read_only={self._read_only!r})"

    def close(self) -> None:
        self._trading.close()
        self._read_only.close()

    def quote(self, coin: str) -> Quote | None:
        return self._quotes.quote(coin)

    def place(self, order: OrderRequest) -> Fill:
        path, params = self._order_params(order)
        answer = self._trading.order(path, params)
        try:
            return self._fill(order.side, order.coin, answer, _Answer(self._trading.base_url + path))
        except CoinSpotError as exc:
            reason = f"{exc.reason} ({exc.url})"
        # CoinSpot said ok: the order most likely filled, but the answer cannot say how much.
        raise OrderOutcomeUnknown(f"CoinSpot accepted the order but its answer is unreadable: {reason}")

    def _order_params(self, order: OrderRequest) -> tuple[str, dict[str, str]]:
        """The order as CoinSpot takes it, slippage guard included; refused before sending
        when it cannot be sent as asked."""
        if order.expected_rate is None or dec(order.expected_rate) <= 0:
            raise OrderRejected(f"not sent: {order.side} {order.coin} has no expected rate for CoinSpot's slippage guard")
        threshold = dec(order.max_slippage_pct)
        if not 0 <= threshold <= MAX_THRESHOLD_PCT:
            raise OrderRejected(f"not sent: slippage threshold {threshold}% is outside CoinSpot's 0-1000%")
        if order.side == "buy":
            amount, amount_type, direction, path = aud(order.aud_amount or 0), "aud", "UP", BUY_NOW
        else:
            amount, amount_type, direction, path = coins(order.coin_amount or 0), "coin", "DOWN", SELL_NOW
        if amount <= 0:
            raise OrderRejected(f"not sent: {order.side} {order.coin} of {amount} {amount_type.upper()} is nothing to trade")
        return path, {
            "cointype": order.coin.upper(), "amounttype": amount_type, "amount": _plain(amount),
            "rate": _plain(dec(order.expected_rate)), "threshold": _plain(threshold), "direction": direction,
        }

    def _fill(self, side: Side, coin: str, answer: dict[str, Any], read: _Answer) -> Fill:
        amount = coins(read.amount(answer, "amount", "the order"))
        total = aud(read.amount(answer, "total", "the order"))
        if amount <= 0:
            raise read.fail("the order filled no coins")
        if side == "buy":
            # A buy by AUD: the fee comes out of the total; the answer gives no rate.
            fee = aud(total * self.fee_rate)
            rate = ((total - fee) / amount).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)
        else:
            rate = read.amount(answer, "rate", "the order")
            fee = aud(amount * rate * self.fee_rate)
        return Fill(coin=coin.lower(), side=side, coin_amount=amount, rate=rate, aud_total=total, fee_aud=fee,
                    filled_at=datetime.now(timezone.utc))

    def balances(self) -> dict[str, Decimal]:
        """Available balance per symbol. CoinSpot documents a list of one-key objects;
        some accounts see one object keyed by symbol: both are read."""
        body = self._read_only.read(BALANCES)
        read = _Answer(self._read_only.base_url + BALANCES)
        listed = read.field(body, "balances", "the answer")
        if isinstance(listed, dict):
            listed = [{symbol: entry} for symbol, entry in listed.items()]
        if not isinstance(listed, list) or not all(isinstance(item, dict) for item in listed):
            raise read.fail("balances is neither a list of objects nor an object")
        return {
            symbol.upper(): read.amount(entry, "available", f"balances.{symbol}")
            for item in listed for symbol, entry in item.items()
        }

    def completed_orders(self, since: datetime) -> list[Fill]:
        """AUD-market orders filled at or after ``since`` (CoinSpot filters by day; the
        time within the day is filtered here). ``aud_total`` is CoinSpot's ``audtotal``."""
        if since.tzinfo is None:
            raise ValueError(f"naive datetime {since!r}: give the time zone")
        since = since.astimezone(timezone.utc)
        body = self._read_only.read(COMPLETED_ORDERS,
                                    {"startdate": since.date().isoformat(), "limit": COMPLETED_ORDERS_LIMIT})
        read = _Answer(self._read_only.base_url + COMPLETED_ORDERS)
        fills = []
        for side, book in (("buy", "buyorders"), ("sell", "sellorders")):
            rows = read.field(body, book, "the answer")
            if not isinstance(rows, list):
                raise read.fail(f"{book} is not a list")
            for index, row in enumerate(rows):
                where = f"{book}[{index}]"
                coin = str(read.field(row, "coin", where))
                if read.field(row, "market", where) != f"{coin.upper()}/AUD":
                    continue  # another market's rate is not AUD per coin
                fill = Fill(
                    coin=coin.lower(), side=side, coin_amount=read.amount(row, "amount", where),
                    rate=read.amount(row, "rate", where), aud_total=read.amount(row, "audtotal", where),
                    fee_aud=read.amount(row, "audfeeExGst", where) + read.amount(row, "audGst", where),
                    filled_at=read.time(row, "solddate", where),
                    broker_ref=str(row["id"]) if row.get("id") is not None else None,
                )
                if fill.filled_at >= since:
                    fills.append(fill)
        return fills
