"""CoinSpot's private API in the sandbox: the full-access and read-only keys, an account.

It checks what the real one checks, in the order a request meets them: a known
``key`` header, the HMAC-SHA512 of the exact bytes received, a nonce above the last
one of that key, and the key's reach (the read-only key stops at ``/api/v2/ro``).
Instant orders fill at the public sandbox's prices (``CoinSpotMarket``: a buy at the
ask, a sell at the bid) with a fee, within the slippage guard and the balances.

    account = sandbox.coinspot_account
    account.set_balances(AUD="1000", BTC="0.5")
    account.inject(AccountFault("timeout_after_accept"))   # fills, then answers too late
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from omc_pipelines.sandbox.coinspot import CoinSpotMarket, _iso, _parse_iso
from omc_pipelines.sandbox.server import Request, Response, SandboxServer

API = "/api/v2"
READ_ONLY_API = "/api/v2/ro"
FULL_ACCESS_KEY, FULL_ACCESS_SECRET = "sandbox-full-access-key", "sandbox-full-access-secret"
READ_ONLY_KEY, READ_ONLY_SECRET = "sandbox-read-only-key", "sandbox-read-only-secret"
ACCOUNT_FAULT_KINDS = ("reject", "401", "timeout_after_accept")
AUD_PLACES, COIN_PLACES = Decimal("0.01"), Decimal("0.00000001")
GST = Decimal("0.1")  # CoinSpot's fee includes GST; completed orders show the two parts
MAX_COMPLETED_LIMIT = 500


@dataclass
class AccountFault:
    """The next ``times`` requests (0: until cleared) answered badly: ``reject`` an order (HTTP 400 with
    ``message``), ``401`` any private request, or ``timeout_after_accept``: fill the
    order, record it, then hold the answer for ``seconds`` (past the client's timeout)."""

    kind: str
    times: int = 1
    message: str = "Order rejected"
    seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in ACCOUNT_FAULT_KINDS:
            raise ValueError(f"unknown account fault {self.kind!r}; known: {', '.join(ACCOUNT_FAULT_KINDS)}")


@dataclass
class PrivateRequest:
    """A private request as received, before any check: the test of 'the bytes sent are
    the bytes signed' reads ``body`` and ``sign``."""

    path: str
    key: str | None
    sign: str | None
    body: bytes


def _error(status: int, message: str, state: str = "error") -> Response:
    return Response(status, {"status": state, "message": message})


def _number(value: Decimal) -> float | int:
    # CoinSpot answers amounts as JSON numbers; a float's repr of an 8-place decimal
    # reads back as the same decimal (the client parses numbers as Decimal).
    return int(value) if value == value.to_integral_value() else float(value)


def _aud(value: Decimal) -> Decimal:
    return value.quantize(AUD_PLACES, rounding=ROUND_HALF_UP)


def _coins(value: Decimal) -> Decimal:
    return value.quantize(COIN_PLACES, rounding=ROUND_DOWN)


def _price(value: Any) -> Decimal | None:
    """A recorded price (string, number or "NaN") as a positive Decimal, or None."""
    try:
        price = Decimal(str(value))
    except (InvalidOperation, TypeError):
        return None
    return price if price.is_finite() and price > 0 else None


def _amount(value: Any, places: Decimal) -> Decimal | None:
    """An order amount: a positive number with no more places than CoinSpot keeps."""
    if isinstance(value, bool):
        return None
    amount = _price(value)
    if amount is None or amount != amount.quantize(places, rounding=ROUND_DOWN):
        return None
    return amount


def _balance(symbol: str, value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if isinstance(value, bool) or not amount.is_finite() or amount < 0:
        raise ValueError(f"balance {symbol}={value!r} is not an amount of zero or more")
    return amount


def _start_of(value: Any) -> datetime:
    """``startdate`` as CoinSpot takes it: ``YYYY-MM-DD`` (UTC) or UNIX seconds."""
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), timezone.utc)
    return datetime.combine(date.fromisoformat(text), datetime.min.time(), timezone.utc)


class CoinSpotAccount:
    """One CoinSpot account behind two key pairs, its balances and its completed orders."""

    def __init__(self, market: CoinSpotMarket, fee_rate: Decimal = Decimal("0.01")):
        self.market = market
        self.fee_rate = fee_rate
        self.keys = {FULL_ACCESS_KEY: (FULL_ACCESS_SECRET, "full"), READ_ONLY_KEY: (READ_ONLY_SECRET, "read")}
        self._lock = threading.Lock()
        self._server: SandboxServer | None = None
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.balances: dict[str, Decimal] = {"AUD": Decimal("10000")}
            self.balances_shape = "list"  # CoinSpot's documented shape; "map" is what some clients see
            self.completed: dict[str, list[dict[str, Any]]] = {"buyorders": [], "sellorders": []}
            self.received: list[PrivateRequest] = []
            self.last_nonce: dict[str, int] = {}
            self.faults: list[AccountFault] = []
            self._order_ids = 0

    def set_balances(self, shape: str | None = None, **balances: Decimal | str | int) -> None:
        """Set balances by symbol (``AUD="1000"``); zero drops the symbol, as CoinSpot lists
        only what is held. ``shape`` picks how /my/balances answers: "list" or "map"."""
        if shape not in (None, "list", "map"):
            raise ValueError("shape must be 'list' or 'map'")
        amounts = {symbol.upper(): _balance(symbol, value) for symbol, value in balances.items()}
        with self._lock:
            for symbol, amount in amounts.items():
                self.balances.pop(symbol, None)
                if amount:
                    self.balances[symbol] = amount
            self.balances_shape = shape or self.balances_shape

    def inject(self, fault: AccountFault) -> None:
        with self._lock:
            self.faults.append(fault)

    def install(self, server: SandboxServer) -> None:
        self._server = server
        server.route("POST", API + r"/my/(?P<side>buy|sell)/now", self._guarded(self._instant_order, order=True))
        server.route("POST", READ_ONLY_API + r"/my/balances", self._guarded(self._balances))
        server.route("POST", READ_ONLY_API + r"/my/orders/completed", self._guarded(self._completed_orders))
        server.route("GET", r"/_sandbox/coinspot/account", self._control_state)
        server.route("POST", r"/_sandbox/coinspot/account/balances", self._control_balances)
        server.route("POST", r"/_sandbox/coinspot/account/faults", self._control_fault)
        server.route("DELETE", r"/_sandbox/coinspot/account/faults", self._control_clear_faults)

    # --- the checks every private request meets ----------------------------------------

    def _take_fault(self, kind: str) -> AccountFault | None:
        for fault in self.faults:
            if fault.kind == kind:
                if fault.times > 0:  # 0: until cleared, as the server's faults
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                return fault
        return None

    def _guarded(self, handler, order: bool = False):
        def serve(request: Request, match) -> Response:
            key, signature = request.headers.get("key"), request.headers.get("sign")
            with self._lock:
                self.received.append(PrivateRequest(request.path, key, signature, request.body))
                refusal, body = self._authenticate(request, key, signature)
                if refusal:
                    return refusal
                if order and (fault := self._take_fault("reject")):
                    return _error(400, fault.message)
                response = handler(body, match)
                stall = self._take_fault("timeout_after_accept") if order and response.status == 200 else None
            if stall:
                # The order is filled and recorded; the answer comes too late to be read.
                self._server._stop.wait(stall.seconds)
            return response

        return serve

    def _authenticate(self, request: Request, key: str | None, signature: str | None):
        """A refusal, or None and the decoded body."""
        if self._take_fault("401"):
            return _error(401, "Invalid API key"), None
        if key not in self.keys:
            return _error(401, "Invalid API key"), None
        secret, reach = self.keys[key]
        expected = hmac.new(secret.encode(), request.body, hashlib.sha512).hexdigest()
        if not signature or not hmac.compare_digest(expected, signature):
            return _error(401, "Invalid signature"), None
        try:
            body = json.loads(request.body, parse_float=Decimal)
        except ValueError:
            return _error(400, "Invalid JSON"), None
        nonce = body.get("nonce") if isinstance(body, dict) else None
        if not isinstance(nonce, int) or isinstance(nonce, bool):
            return _error(400, "Nonce required"), None
        if nonce <= self.last_nonce.get(key, 0):
            return _error(400, "Invalid nonce", state="invalid"), None
        self.last_nonce[key] = nonce
        if reach == "read" and not request.path.startswith(READ_ONLY_API + "/"):
            return _error(401, "This API key is read-only"), None
        return None, body

    # --- orders ----------------------------------------------------------------------------

    def _instant_order(self, body: dict[str, Any], match) -> Response:
        side = match["side"]
        coin = str(body.get("cointype", "")).lower()
        if body.get("amounttype") not in ("coin", "aud"):
            return _error(400, "Valid amount type required")
        quote = self.market.quote(coin) if coin else None
        price = _price(quote.get("ask" if side == "buy" else "bid")) if quote else None
        if price is None:
            return _error(400, "Coin not found")
        by_aud = body["amounttype"] == "aud"
        amount = _amount(body.get("amount"), AUD_PLACES if by_aud else COIN_PLACES)
        if amount is None:
            return _error(400, "Invalid amount")
        if refusal := self._slippage_refusal(body, price):
            return refusal
        if side == "buy":
            if by_aud:  # the fee comes out of the AUD spent
                spent, fee = amount, _aud(amount * self.fee_rate)
                bought = _coins((spent - fee) / price)
            else:  # the fee comes on top of the coins' price
                bought, fee = amount, _aud(amount * price * self.fee_rate)
                spent = _aud(amount * price) + fee
            if spent > self.balances.get("AUD", 0):
                return _error(400, "Insufficient funds")
            if bought <= 0:
                return _error(400, "Amount too small")
            self._move(coin, aud=-spent, coins=bought)
            self._record("buyorders", coin, bought, price, fee, audtotal=spent)
            return Response(body={"status": "ok", "message": "ok", "coin": coin.upper(), "market": f"{coin.upper()}/AUD",
                                  "amount": _number(bought), "total": _number(spent)})
        sold = _coins(amount / price) if by_aud else amount
        if sold <= 0:
            return _error(400, "Amount too small")
        if sold > self.balances.get(coin.upper(), 0):
            return _error(400, "Insufficient funds")
        fee = _aud(sold * price * self.fee_rate)
        received = _aud(sold * price) - fee
        self._move(coin, aud=received, coins=-sold)
        self._record("sellorders", coin, sold, price, fee, audtotal=received)
        return Response(body={"status": "ok", "message": "ok", "coin": coin.upper(), "market": f"{coin.upper()}/AUD",
                              "amount": _number(sold), "rate": _number(price), "total": _number(received)})

    def _slippage_refusal(self, body: dict[str, Any], price: Decimal) -> Response | None:
        """CoinSpot's guard: refused when the live rate moved past ``threshold`` % from ``rate``."""
        if "rate" not in body:
            return None
        rate, threshold = _price(body.get("rate")), _price(body.get("threshold", 0)) or Decimal(0)
        direction = body.get("direction", "BOTH")
        if rate is None or not 0 <= threshold <= 1000 or direction not in ("UP", "DOWN", "BOTH"):
            return _error(400, "Invalid rate, threshold or direction")
        up, down = rate * (1 + threshold / 100), rate * (1 - threshold / 100)
        if (direction in ("UP", "BOTH") and price > up) or (direction in ("DOWN", "BOTH") and price < down):
            return _error(400, f"Rate has moved beyond the threshold: now {price}, asked {rate} within {threshold}% {direction}")
        return None

    def _move(self, coin: str, aud: Decimal, coins: Decimal) -> None:
        for symbol, change in (("AUD", aud), (coin.upper(), coins)):
            balance = self.balances.get(symbol, Decimal(0)) + change
            if balance:
                self.balances[symbol] = balance
            else:
                self.balances.pop(symbol, None)

    def _record(self, book: str, coin: str, amount: Decimal, rate: Decimal, fee: Decimal, audtotal: Decimal) -> None:
        """A completed order as /ro/my/orders/completed shows it: ``total`` in the market's
        currency before the fee, ``audtotal`` the AUD that moved (a buy's spent, a sell's received)."""
        self._order_ids += 1
        fee_ex_gst = _aud(fee / (1 + GST))
        self.completed[book].insert(0, {
            "id": f"sandbox-{self._order_ids}", "coin": coin.upper(), "type": "instant",
            "market": f"{coin.upper()}/AUD", "rate": _number(rate), "amount": _number(amount),
            "total": _number(_aud(amount * rate)),
            "solddate": _iso(datetime.now(timezone.utc)),
            "audfeeExGst": _number(fee_ex_gst), "audGst": _number(fee - fee_ex_gst), "audtotal": _number(audtotal),
        })

    # --- the read-only API -----------------------------------------------------------------

    def _balances(self, body: dict[str, Any], match) -> Response:
        entries = {}
        for symbol, balance in self.balances.items():
            rate = Decimal(1) if symbol == "AUD" else (_price((self.market.quote(symbol.lower()) or {}).get("bid")) or Decimal(0))
            entries[symbol] = {"balance": _number(balance), "available": _number(balance),
                               "audbalance": _number(_aud(balance * rate)), "rate": _number(rate)}
        shaped = entries if self.balances_shape == "map" else [{symbol: entry} for symbol, entry in entries.items()]
        return Response(body={"status": "ok", "message": "ok", "balances": shaped})

    def _completed_orders(self, body: dict[str, Any], match) -> Response:
        limit = int(body.get("limit", 200))
        if not 0 < limit <= MAX_COMPLETED_LIMIT:
            return _error(400, f"limit must be 1 to {MAX_COMPLETED_LIMIT}")
        start = _start_of(body["startdate"]) if "startdate" in body else None
        coin = str(body.get("cointype", "")).upper()

        def wanted(row: dict[str, Any]) -> bool:
            return (not coin or row["coin"] == coin) and (start is None or _parse_iso(row["solddate"]) >= start)

        return Response(body={"status": "ok", "message": "ok",
                              **{book: [r for r in rows if wanted(r)][:limit] for book, rows in self.completed.items()}})

    # --- the control API -----------------------------------------------------------------------

    def _control_state(self, request: Request, match) -> Response:
        with self._lock:
            return Response(body={"status": "ok", "balances": {s: str(b) for s, b in self.balances.items()},
                                  "buyorders": list(self.completed["buyorders"]),
                                  "sellorders": list(self.completed["sellorders"])})

    def _control_balances(self, request: Request, match) -> Response:
        body = request.json()
        self.set_balances(body.get("shape"), **body.get("balances", {}))
        return Response(body={"status": "ok"})

    def _control_fault(self, request: Request, match) -> Response:
        self.inject(AccountFault(**request.json()))
        return Response(body={"status": "ok"})

    def _control_clear_faults(self, request: Request, match) -> Response:
        with self._lock:
            self.faults.clear()
        return Response(body={"status": "ok"})
