"""CoinSpot's public API in the sandbox, served from the recorded responses.

The recorded trades (about 6 h 45 min of them) are a tape that recurs every
``TAPE_PERIOD``: a trade recorded at ``t`` happens again at ``t + k * TAPE_PERIOD``
for every whole ``k``. A sandbox serves, for each recorded trade, its newest
occurrence at or before the start of the UTC hour it was started in (its anchor,
kept for its whole life, ``reset`` included). So the trades look live (within the
last seven hours), a trade has one time in every sandbox that serves it (two
sandboxes started hours apart never serve one trade under two times: the later
one serves the same rows plus the tape's newer ones), and a running sandbox serves
new trades only when told to (``add_trade``, ``POST /_sandbox/coinspot/trades``).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from omc_pipelines.sandbox.times import hour_anchor
from omc_pipelines.sandbox.server import Request, Response, SandboxServer

RECORDINGS = Path(__file__).with_name("recordings") / "coinspot"
# Longer than the recordings' span (6 h 44 min), so that one period holds each recorded trade once.
TAPE_PERIOD = timedelta(hours=7)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def on_tape(recorded: datetime, anchor: datetime) -> datetime:
    """A recorded trade's newest occurrence on the tape at or before ``anchor``."""
    return recorded + ((anchor - recorded) // TAPE_PERIOD) * TAPE_PERIOD


def _error(status: int, message: str) -> Response:
    return Response(status, {"status": "error", "message": message})


class CoinSpotMarket:
    """The sandbox's CoinSpot: prices per coin and market, and completed trades."""

    def __init__(self, now: datetime | None = None):
        self._lock = threading.Lock()
        latest = json.loads((RECORDINGS / "latest.json").read_text())
        # Keys as /latest has them ("btc", "btc_usdt"); values as recorded (strings, numbers, "NaN").
        self.summary: dict[str, dict[str, Any]] = latest["prices"]
        # Listed coins that /latest leaves out, answered by /latest/{coin} only.
        self.listed: dict[str, dict[str, Any]] = {
            p.stem: json.loads(p.read_text())["prices"] for p in sorted((RECORDINGS / "latest").glob("*.json"))
        }
        books = {p.stem: json.loads(p.read_text()) for p in sorted((RECORDINGS / "orders_completed").glob("*.json"))}
        self.anchor = hour_anchor(now)
        # Coins answered with CoinSpot's error in a 200 body, as it does for coins it does not know.
        self.error_in_200: set[str] = set()
        self.trades: dict[str, dict[str, list[dict[str, Any]]]] = {
            coin: {
                side: sorted(({**o, "solddate": _iso(on_tape(_parse_iso(o["solddate"]), self.anchor))}
                              for o in book[side]), key=lambda o: o["solddate"], reverse=True)
                for side in ("buyorders", "sellorders")
            }
            for coin, book in books.items()
        }

    def is_listed(self, coin: str) -> bool:
        return coin in self.listed or any(key.split("_")[0] == coin for key in self.summary)

    def quote(self, coin: str, market: str = "aud") -> dict[str, Any] | None:
        key = coin if market == "aud" else f"{coin}_{market}"
        if key in self.summary:
            return self.summary[key]
        return self.listed.get(coin) if market == "aud" else None

    def set_price(self, coin: str, market: str = "aud", *, bid=None, ask=None, last=None, in_summary: bool | None = None) -> None:
        """Move a price; a coin not yet listed becomes listed (off the /latest summary by default)."""
        coin, market = coin.lower(), market.lower()
        key = coin if market == "aud" else f"{coin}_{market}"
        with self._lock:
            target = self.summary if (key in self.summary or in_summary) else self.listed
            if market != "aud" and target is self.listed:
                target = self.summary  # non-AUD markets exist only in the summary
            entry = dict(target.get(coin if target is self.listed else key, {}))
            for name, value in (("bid", bid), ("ask", ask), ("last", last)):
                if value is not None:
                    entry[name] = value
            target[coin if target is self.listed else key] = entry

    def add_trade(self, coin: str, *, side: str = "buy", amount: float, rate: float,
                  market: str = "aud", sold_at: datetime | None = None) -> dict[str, Any]:
        if side not in ("buy", "sell"):
            raise ValueError("side must be 'buy' or 'sell'")
        order = {
            "amount": amount, "rate": rate, "total": round(amount * rate, 2), "coin": coin.upper(),
            "market": f"{coin.upper()}/{market.upper()}", "solddate": _iso(sold_at or datetime.now(timezone.utc)),
        }
        with self._lock:
            book = self.trades.setdefault(coin.lower(), {"buyorders": [], "sellorders": []})
            book[f"{side}orders"].insert(0, order)
        return order

    def install(self, server: SandboxServer) -> None:
        api = "/pubapi/v2"
        server.route("GET", api + r"/latest", lambda req, m: Response(body={"status": "ok", "message": "ok", "prices": self.summary}))
        server.route("GET", api + r"/latest/(?P<coin>\w+)", self._latest_coin)
        server.route("GET", api + r"/latest/(?P<coin>\w+)/(?P<market>\w+)", self._latest_coin)
        server.route("GET", api + r"/(?P<side>buy|sell)price/(?P<coin>\w+)", self._rate)
        server.route("GET", api + r"/orders/completed/(?P<coin>\w+)", self._completed)
        server.route("POST", r"/_sandbox/coinspot/prices", self._control_price)
        server.route("POST", r"/_sandbox/coinspot/trades", self._control_trade)

    def _refused_in_200(self, coin: str) -> Response | None:
        if coin in self.error_in_200:
            return Response(200, {"status": "error", "message": "Coin not found"})
        return None

    def _latest_coin(self, req: Request, m) -> Response:
        refused = self._refused_in_200(m["coin"].lower())
        if refused:
            return refused
        quote = self.quote(m["coin"].lower(), (m.groupdict().get("market") or "aud").lower())
        if quote is None:
            return _error(400, "Coin not found")
        return Response(body={"status": "ok", "message": "ok", "prices": quote})

    def _rate(self, req: Request, m) -> Response:
        quote = self.quote(m["coin"].lower())
        if quote is None:
            return _error(400, "Coin not found")
        rate = quote["ask"] if m["side"] == "buy" else quote["bid"]
        return Response(body={"status": "ok", "message": "ok", "rate": rate, "market": f"{m['coin'].upper()}/AUD"})

    def _completed(self, req: Request, m) -> Response:
        coin = m["coin"].lower()
        refused = self._refused_in_200(coin)
        if refused:
            return refused
        if not self.is_listed(coin) and coin not in self.trades:
            return _error(400, "Coin not found")
        with self._lock:
            book = self.trades.get(coin, {"buyorders": [], "sellorders": []})
            body = {"status": "ok", "message": "ok", "buyorders": list(book["buyorders"]), "sellorders": list(book["sellorders"])}
        return Response(body=body)

    def _control_price(self, req: Request, m) -> Response:
        body = req.json()
        self.set_price(body.pop("coin"), body.pop("market", "aud"), **body)
        return Response(body={"status": "ok"})

    def _control_trade(self, req: Request, m) -> Response:
        body = req.json()
        if "sold_at" in body:
            body["sold_at"] = _parse_iso(body["sold_at"])
        return Response(body={"status": "ok", "order": self.add_trade(body.pop("coin"), **body)})
