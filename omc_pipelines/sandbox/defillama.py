"""DeFiLlama in the sandbox: both of its hosts on the one server, from the recordings.

Serves, in DeFiLlama's shapes (``recordings/defillama/``):

- ``GET /v2/chains``: the recorded chains; each chain's ``tvl`` is the last point of
  its TVL series, so a TVL set through the control route shows here too.
- ``GET /v2/historicalChainTvl/{chain}``: ~90 daily points, matched case-insensitively
  (DeFiLlama lower-cases the name; "OP%20Mainnet" works). The recorded dates are moved
  forward by whole days so that the last point is today's UTC midnight: a "last 7
  days" backfill always finds data, and two sandboxes started on the same UTC day
  serve identical series. An unknown chain answers as DeFiLlama's server does:
  **HTTP 400**, plain text ``There is no chain with that name: {chain}``.
- ``GET /protocols``: ~30 protocols as DeFiLlama lists them (child protocols with
  ``parentProtocol``, CEXes included, ``"symbol": "-"`` for tokenless ones).
- ``GET /overview/fees?dataType=dailyFees|dailyRevenue`` (default dailyFees, as
  DeFiLlama): the recorded overview; another data type answers what DeFiLlama's
  server does with one, **HTTP 500** ``Internal Error``.
- ``GET /stablecoins?includePrices=true`` (the stablecoins host's path): the recorded
  ``peggedAssets``; without ``includePrices=true`` the ``price`` fields are left out.

Control, from Python or over HTTP (JSON bodies):

- ``set_tvl(chain, day, tvl)`` / ``POST /_sandbox/defillama/tvl``
  ``{"chain": "Ethereum", "day": "YYYY-MM-DD", "tvl": 1.2e10}``: set (or add) that UTC
  day's point; ``tvl`` is served as given (a number, a string, even garbage, to test
  the parser), ``null`` removes the point. An unknown chain is refused (400).
- ``fill_series(chain, tvl)`` / ``POST /_sandbox/defillama/series`` ``{"chain": "Solana", "tvl": "NaN"}``:
  every point of the chain keeps its date and serves ``tvl`` (``NaN``, ``null``, ``"NaN"``:
  a series without a single value).
- ``empty(what, chain=None)`` / ``POST /_sandbox/defillama/empty`` ``{"what": "protocols"}``:
  a valid but empty answer in the path's own shape, until reset. ``what`` is one of
  ``EMPTIABLE``: ``chains`` (``[]``), ``series`` (one ``chain``'s history, ``[]``),
  ``protocols`` (``[]``), ``fees`` or ``revenue`` (``"protocols": []``), ``stablecoins``
  (``"peggedAssets": []``).
- ``reset()`` / ``POST /_sandbox/defillama/reset``: back to the recordings.

Faults (429 with Retry-After, 5xx, stalls...) are the server's, by path prefix.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from omc_pipelines.sandbox.server import Request, Response, SandboxServer

RECORDINGS = Path(__file__).with_name("recordings") / "defillama"
DATA_TYPES = ("dailyFees", "dailyRevenue")
EMPTIABLE = ("chains", "series", "protocols", "fees", "revenue", "stablecoins")
TEXT_TYPE = "text/plain; charset=utf-8"
_DAY = 86400


def _load(name: str) -> Any:
    return json.loads((RECORDINGS / name).read_text())


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _day_of(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).date()


class DefiLlamaSandbox:
    """The sandbox's DeFiLlama: chains and their daily TVL, protocols, fees, stablecoins."""

    def __init__(self, now: datetime | None = None):
        self._now = now
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to the recordings, the series ending today (UTC)."""
        today = (self._now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
        chains = _load("chains.json")
        recorded = _load("historicalChainTvl.json")
        newest = max(point["date"] for points in recorded.values() for point in points)
        shift = (today - _day_of(newest)).days * _DAY
        series = {
            name: {_day_of(p["date"] + shift): p["tvl"] for p in points} for name, points in recorded.items()
        }
        with self._lock:
            self.today = today
            self.chains: list[dict[str, Any]] = chains
            # Display name -> {UTC day: tvl as served}
            self.series: dict[str, dict[date, Any]] = series
            self.protocols: list[dict[str, Any]] = _load("protocols.json")
            self.overviews: dict[str, dict[str, Any]] = {t: _load(f"overview_fees_{t}.json") for t in DATA_TYPES}
            self.stablecoins: dict[str, Any] = _load("stablecoins.json")

    def chain_name(self, chain: str) -> str | None:
        """The recorded name of a chain, matched as DeFiLlama does (case-insensitively)."""
        wanted = chain.strip().lower()
        return next((name for name in self.series if name.lower() == wanted), None)

    def set_tvl(self, chain: str, day: date | str, tvl: Any) -> None:
        """Set one UTC day's TVL of a chain (``None`` removes the point)."""
        name = self._known(chain)
        day = day if isinstance(day, date) else date.fromisoformat(str(day))
        with self._lock:
            if tvl is None:
                self.series[name].pop(day, None)
            else:
                self.series[name][day] = tvl

    def fill_series(self, chain: str, tvl: Any) -> None:
        """Every point of a chain's series serves ``tvl``, its dates unchanged."""
        name = self._known(chain)
        with self._lock:
            self.series[name] = dict.fromkeys(self.series[name], tvl)

    def empty(self, what: str, chain: str | None = None) -> None:
        """Answer ``what`` (one of ``EMPTIABLE``) with an empty list in its own shape until reset;
        ``series`` empties the history of ``chain``."""
        if what not in EMPTIABLE:
            raise ValueError(f"what must be one of {', '.join(EMPTIABLE)}, not {what!r}")
        if (what == "series") != (chain is not None):
            raise ValueError("a chain is named for the series, and only for it")
        name = self._known(chain) if chain is not None else None
        with self._lock:
            if what == "chains":
                self.chains = []
            elif what == "series":
                self.series[name] = {}
            elif what == "protocols":
                self.protocols = []
            elif what == "stablecoins":
                self.stablecoins["peggedAssets"] = []
            else:
                self.overviews[f"daily{what.title()}"]["protocols"] = []

    def _known(self, chain: str) -> str:
        name = self.chain_name(chain)
        if name is None:
            raise ValueError(f"There is no chain with that name: {chain}")
        return name

    def chain_series(self, chain: str) -> list[dict[str, Any]]:
        """The chain's TVL points as served, oldest first."""
        name = self.chain_name(chain)
        if name is None:
            raise KeyError(chain)
        with self._lock:
            points = sorted(self.series[name].items())
        return [{"date": _midnight(day), "tvl": tvl} for day, tvl in points]

    def install(self, server: SandboxServer) -> None:
        server.route("GET", r"/v2/chains", self._chains)
        server.route("GET", r"/v2/historicalChainTvl/(?P<chain>[^/]+)", self._historical)
        server.route("GET", r"/protocols", lambda req, m: Response(body=self._copy(self.protocols)))
        server.route("GET", r"/overview/fees", self._fees)
        server.route("GET", r"/stablecoins", self._stablecoins)
        server.route("POST", r"/_sandbox/defillama/tvl", self._control_tvl)
        server.route("POST", r"/_sandbox/defillama/series", self._control_series)
        server.route("POST", r"/_sandbox/defillama/empty", self._control_empty)
        server.route("POST", r"/_sandbox/defillama/reset", self._control_reset)

    def _copy(self, value: Any) -> Any:
        with self._lock:
            return copy.deepcopy(value)

    def _chains(self, req: Request, m) -> Response:
        chains = self._copy(self.chains)
        with self._lock:
            for chain in chains:
                points = self.series.get(chain["name"])
                if points:
                    chain["tvl"] = points[max(points)]
        return Response(body=chains)

    def _historical(self, req: Request, m) -> Response:
        chain = unquote(m["chain"])
        if self.chain_name(chain) is None:
            return Response(400, f"There is no chain with that name: {chain}", content_type=TEXT_TYPE)
        return Response(body=self.chain_series(chain))

    def _fees(self, req: Request, m) -> Response:
        data_type = (req.query.get("dataType") or ["dailyFees"])[0]
        if data_type not in DATA_TYPES:
            return Response(500, "Internal Error", content_type=TEXT_TYPE)
        return Response(body=self._copy(self.overviews[data_type]))

    def _stablecoins(self, req: Request, m) -> Response:
        body = self._copy(self.stablecoins)
        if (req.query.get("includePrices") or [""])[0].lower() != "true":
            for asset in body["peggedAssets"]:
                asset.pop("price", None)
        return Response(body=body)

    def _control_tvl(self, req: Request, m) -> Response:
        body = req.json()
        name = self.chain_name(str(body["chain"]))
        if name is None:
            return Response(400, {"status": "error", "message": f"There is no chain with that name: {body['chain']}"})
        self.set_tvl(name, body["day"], body.get("tvl"))
        return Response(body={"status": "ok", "chain": name, "day": str(body["day"]), "tvl": body.get("tvl")})

    def _control_series(self, req: Request, m) -> Response:
        body = req.json()
        self.fill_series(str(body["chain"]), body["tvl"])
        return Response(body={"status": "ok", "chain": self._known(str(body["chain"])), "tvl": body["tvl"]})

    def _control_empty(self, req: Request, m) -> Response:
        body = req.json()
        chain = body.get("chain")
        self.empty(str(body["what"]), None if chain is None else str(chain))
        return Response(body={"status": "ok", "empty": body["what"]})

    def _control_reset(self, req: Request, m) -> Response:
        self.reset()
        return Response(body={"status": "ok"})
