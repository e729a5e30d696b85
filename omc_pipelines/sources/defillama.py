"""DeFiLlama (the Glass ledger): a client and pure parse functions.

Two hosts, no key: ``https://api.llama.fi`` (chains, chain TVL history, protocols,
fees/revenue overviews) and ``https://stablecoins.llama.fi`` (stablecoins). Both
share one rate budget: DeFiLlama throttles with 429 under an undocumented fair-use
limit, so every client of it in the process waits on the same limiter.

Parse functions take the decoded JSON and return typed rows, or raise
``SourcePayloadError`` naming the field that is wrong; they never touch the database.
DeFiLlama's numbers arrive as numbers, numeric strings or ``null``: ``null`` and NaN
become ``None``; anything that is not a number is an error. A field DeFiLlama always
sends (``*_FIELDS`` below) must be there, ``null`` or not: an item without it has another
shape, and would store "no value" over the real one. A negative number is passed on:
the Glass ledger rejects such an item, with the reason.

An empty list is an error too, never "nothing today": DeFiLlama always lists chains,
protocols, fees and stablecoins, and a chain it knows always has a history (an unknown
one is a 400). So is an answer none of whose items has a value other than zero (all
zero, NaN or null): a TVL series, the protocols' TVL, the fees' totals, the stablecoins'
supply. Stored rows must never be replaced by such an answer.

What the real API does that the parsers absorb:

- ``/protocols`` lists *child* protocols: Aave is ``aave-v2``/``aave-v3`` with
  ``"parentProtocol": "parent#aave"``, Uniswap its versions under ``parent#uniswap``.
  ``Protocol.parent`` keeps the parent slug, and ``select_protocols`` matches a
  configured slug against slugs and parents both, so ``aave`` selects every Aave.
- ``/protocols`` also lists centralised exchanges (category ``CEX``, Binance first,
  the largest "TVL" of all); ``select_protocols`` leaves them out of the top N.
- ``/protocols`` gives ``"symbol": "-"`` for a protocol without a token.
- The fees overview omits keys whose value is empty (``slug``, ``category``,
  ``chains``, any total): a missing slug is derived from the name, as DeFiLlama slugs.
  A key that no protocol of the answer has (``FEES_FIELDS``) was dropped, not emptied.
- Stablecoin symbols are not unique across DeFiLlama's list: ``Stablecoin.id``
  (DeFiLlama's own) is the key.
- A chain TVL series can carry two points in one UTC day (the day's midnight and a
  fresher intraday point): one row per day is kept, the latest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import quote

from omc_pipelines.sources.http import HttpSource, SourcePayloadError
from omc_pipelines.sources.payload import Payload

SOURCE = "defillama"
DATA_TYPES = {"fees": "dailyFees", "revenue": "dailyRevenue"}
FEES_PATH = "/overview/fees"
PROTOCOLS_PATH = "/protocols"
STABLECOINS_PATH, STABLECOINS_PARAMS = "/stablecoins", {"includePrices": "true"}
# Categories that are not on-chain DeFi and would crowd out the top N by "TVL".
EXCLUDED_FROM_TOP = ("CEX",)
# A timestamp past this is in milliseconds, not seconds (1e11 s is the year 5138).
_MILLISECONDS_FROM = 1e11
# What DeFiLlama sends for every item (null where it has no value); the fees overview leaves
# a protocol's empty ones out, but never one of these from every protocol.
CHAIN_FIELDS = ("name", "tvl")
POINT_FIELDS = ("date", "tvl")
PROTOCOL_FIELDS = ("name", "symbol", "category", "chains", "tvl")
FEES_FIELDS = ("category", "chains", "total24h", "total7d", "total30d")
STABLECOIN_FIELDS = ("id", "symbol", "name", "pegType", "circulating", "price")


@dataclass(frozen=True)
class Chain:
    name: str
    tvl_usd: float | None
    token_symbol: str | None
    gecko_id: str | None
    chain_id: int | None  # EVM chain id; None for chains without one


@dataclass(frozen=True)
class ChainTvl:
    chain: str
    day: date  # the UTC date of the point's unix-seconds timestamp
    tvl_usd: float


@dataclass(frozen=True)
class Protocol:
    slug: str
    name: str
    symbol: str | None
    category: str | None
    chains: tuple[str, ...]
    tvl_usd: float | None
    change_1d: float | None  # percent
    mcap: float | None
    parent: str | None = None  # the parent protocol's slug ("aave" for aave-v3)


@dataclass(frozen=True)
class ProtocolFees:
    slug: str
    name: str
    category: str | None
    chains: tuple[str, ...]
    data_type: str  # "fees" or "revenue"
    total_24h: float | None
    total_7d: float | None
    total_30d: float | None
    parent: str | None = None


@dataclass(frozen=True)
class Stablecoin:
    symbol: str
    name: str
    peg_type: str | None  # "peggedUSD", "peggedEUR", ...
    circulating_usd: float | None
    price: float | None  # USD
    id: str  # DeFiLlama's id ("1" is Tether): the natural key, as symbols are not unique


class _Payload(Payload):
    """DeFiLlama's readers on top of the shared ones (``number`` among them)."""

    def sent(self, obj: dict, names: Iterable[str], where: str) -> None:
        for name in names:
            self.field(obj, name, where)

    def sent_by_some(self, rows: list[dict], names: Iterable[str], where: str) -> None:
        for name in names:
            if not any(name in row for row in rows):
                raise self.fail(f"no protocol has {name!r} in {where}: dropped from the answer")

    def not_all_zero(self, values: Iterable[float | None], what: str) -> None:
        """An answer none of whose items has a value other than zero says nothing, like an empty one."""
        if not any(values):
            raise self.fail(f"{what} other than zero (all zero, NaN or null)")

    def list(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise self.fail(f"{where} is {_kind(value)}, expected a list")
        return value

    def object(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(f"{where} is {_kind(value)}, expected an object")
        return value

    def text(self, obj: dict, name: str, where: str) -> str:
        value = obj.get(name)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{name} is {_kind(value)}, expected a non-empty string")
        return value.strip()

    def optional_text(self, obj: dict, name: str, where: str) -> str | None:
        value = obj.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{where}.{name} is {_kind(value)}, expected a string")
        value = value.strip()
        return value or None

    def field_number(self, obj: dict, name: str, where: str) -> float | None:
        return self.number(obj.get(name), f"{where}.{name}")

    def chains(self, obj: dict, where: str) -> tuple[str, ...]:
        value = obj.get("chains")
        if value is None:
            return ()
        names = []
        for i, chain in enumerate(self.list(value, f"{where}.chains")):
            if not isinstance(chain, str):
                raise self.fail(f"{where}.chains[{i}] is {_kind(chain)}, expected a string")
            if chain and chain not in names:
                names.append(chain)
        return tuple(names)

    def parent(self, obj: dict, where: str) -> str | None:
        value = self.optional_text(obj, "parentProtocol", where)
        if value is None:
            return None
        return value.removeprefix("parent#") or None

    def day(self, value: Any, where: str) -> tuple[date, float]:
        """A unix timestamp (seconds; numeric strings and milliseconds tolerated)
        -> (UTC date, seconds)."""
        seconds = self.number(value, where)
        if seconds is None:
            raise self.fail(f"{where} is missing")
        if abs(seconds) >= _MILLISECONDS_FROM:
            seconds /= 1000.0
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc).date(), seconds
        except (OverflowError, OSError, ValueError):
            raise self.fail(f"{where} is {value!r}, not a unix time") from None


def _kind(value: Any) -> str:
    if value is None:
        return "missing or null"
    if isinstance(value, str):
        return f"{value[:40]!r}"
    return f"a {type(value).__name__}"


def slugify(name: str) -> str:
    """A protocol's slug from its name, DeFiLlama's way: "Uniswap V3" -> "uniswap-v3"."""
    return "-".join(name.strip().lower().split()).replace("'", "")


def _rows(p: _Payload, payload: Any, where: str) -> Iterable[tuple[str, dict]]:
    rows = p.list(payload, where)
    if not rows:
        raise p.fail(f"{where} is an empty list")
    for i, row in enumerate(rows):
        at = f"{where}[{i}]"
        yield at, p.object(row, at)


def parse_chains(payload: Any, url: str = "/v2/chains") -> list[Chain]:
    """``/v2/chains``: every chain with its current TVL. One row per chain name."""
    p = _Payload(SOURCE, url)
    chains: dict[str, Chain] = {}
    for at, row in _rows(p, payload, "body"):
        p.sent(row, CHAIN_FIELDS, at)
        name = p.text(row, "name", at)
        chains.setdefault(
            name,
            Chain(
                name=name,
                tvl_usd=p.field_number(row, "tvl", at),
                token_symbol=p.optional_text(row, "tokenSymbol", at),
                gecko_id=p.optional_text(row, "gecko_id", at),
                chain_id=_chain_id(p, row.get("chainId"), f"{at}.chainId"),
            ),
        )
    return list(chains.values())


def _chain_id(p: _Payload, value: Any, where: str) -> int | None:
    """EVM chain ids come as numbers or numeric strings; a non-EVM chain has none
    (null, or an identifier like "cosmoshub-4", which is not an EVM id)."""
    if value is None or isinstance(value, str) and not value.strip().isdigit():
        return None
    number = p.number(value, where)
    if number is None or not number.is_integer():
        raise p.fail(f"{where} is {value!r}, not an integer")
    return int(number)


def parse_chain_tvl(payload: Any, chain: str, url: str | None = None) -> list[ChainTvl]:
    """``/v2/historicalChainTvl/{chain}``: daily TVL, oldest first, one row per UTC day
    (where a day has two points, the later one). Points without a TVL (null) are skipped;
    a series without a single TVL other than zero is an error."""
    p = _Payload(SOURCE, url or f"/v2/historicalChainTvl/{chain}")
    latest: dict[date, tuple[float, float]] = {}
    points = 0
    for at, row in _rows(p, payload, "body"):
        points += 1
        p.sent(row, POINT_FIELDS, at)
        day, seconds = p.day(row.get("date"), f"{at}.date")
        tvl = p.field_number(row, "tvl", at)
        if tvl is None:
            continue
        if day not in latest or seconds >= latest[day][0]:
            latest[day] = (seconds, tvl)
    p.not_all_zero((tvl for _, tvl in latest.values()), f"none of the {points} points has a tvl")
    return [ChainTvl(chain=chain, day=day, tvl_usd=latest[day][1]) for day in sorted(latest)]


def parse_protocols(payload: Any, url: str = "/protocols") -> list[Protocol]:
    """``/protocols``: every listed protocol (child protocols, CEXes included). One row per slug."""
    p = _Payload(SOURCE, url)
    protocols: dict[str, Protocol] = {}
    for at, row in _rows(p, payload, "body"):
        p.sent(row, PROTOCOL_FIELDS, at)
        name = p.text(row, "name", at)
        slug = p.optional_text(row, "slug", at) or slugify(name)
        symbol = p.optional_text(row, "symbol", at)
        protocols.setdefault(
            slug,
            Protocol(
                slug=slug,
                name=name,
                symbol=None if symbol == "-" else symbol,
                category=p.optional_text(row, "category", at),
                chains=p.chains(row, at),
                tvl_usd=p.field_number(row, "tvl", at),
                change_1d=p.field_number(row, "change_1d", at),
                mcap=p.field_number(row, "mcap", at),
                parent=p.parent(row, at),
            ),
        )
    p.not_all_zero((protocol.tvl_usd for protocol in protocols.values()), "no protocol has a tvl")
    return list(protocols.values())


def select_protocols(
    protocols: Iterable[Protocol],
    slugs: Collection[str],
    top_n: int,
    *,
    exclude_from_top: Collection[str] = EXCLUDED_FROM_TOP,
) -> list[Protocol]:
    """The configured ``slugs`` plus the ``top_n`` largest by TVL, once each, by TVL
    descending (protocols without a TVL last, by slug).

    A configured slug matches a protocol's slug or its parent's: ``aave`` selects
    ``aave-v2`` and ``aave-v3``. The top N leaves out protocols without a TVL and the
    categories in ``exclude_from_top`` (centralised exchanges by default); a
    configured slug is selected whatever its category.
    """
    wanted = {s.strip().lower() for s in slugs if s.strip()}
    excluded = {c.lower() for c in exclude_from_top}
    unique: dict[str, Protocol] = {}
    for protocol in protocols:
        unique.setdefault(protocol.slug, protocol)
    selected = {p.slug: p for p in unique.values() if p.slug.lower() in wanted or (p.parent or "").lower() in wanted}
    ranked = sorted(
        (p for p in unique.values() if p.tvl_usd is not None and (p.category or "").lower() not in excluded),
        key=lambda p: (-p.tvl_usd, p.slug),
    )
    for protocol in ranked[: max(top_n, 0)]:
        selected.setdefault(protocol.slug, protocol)
    return sorted(
        selected.values(),
        key=lambda p: (p.tvl_usd is None, -(p.tvl_usd or 0.0), p.slug),
    )


def parse_fees(payload: Any, data_type: str, url: str | None = None) -> list[ProtocolFees]:
    """``/overview/fees?dataType=dailyFees|dailyRevenue``: each protocol's fees (or
    revenue) over 24 h, 7 and 30 days. One row per slug. ``data_type``: "fees"|"revenue"."""
    if data_type not in DATA_TYPES:
        raise ValueError(f"data_type must be one of {', '.join(DATA_TYPES)}, not {data_type!r}")
    p = _Payload(SOURCE, url or f"{FEES_PATH}?dataType={DATA_TYPES[data_type]}")
    body = p.object(payload, "body")
    rows: dict[str, ProtocolFees] = {}
    listed = list(_rows(p, body.get("protocols"), "protocols"))
    p.sent_by_some([row for _, row in listed], FEES_FIELDS, "protocols")
    for at, row in listed:
        name = p.optional_text(row, "displayName", at) or p.text(row, "name", at)
        slug = p.optional_text(row, "slug", at) or slugify(p.optional_text(row, "name", at) or name)
        rows.setdefault(
            slug,
            ProtocolFees(
                slug=slug,
                name=name,
                category=p.optional_text(row, "category", at),
                chains=p.chains(row, at),
                data_type=data_type,
                total_24h=p.field_number(row, "total24h", at),
                total_7d=p.field_number(row, "total7d", at),
                total_30d=p.field_number(row, "total30d", at),
                parent=p.parent(row, at),
            ),
        )
    p.not_all_zero((r.total_24h or r.total_7d or r.total_30d for r in rows.values()), "no protocol has a total")
    return list(rows.values())


def parse_stablecoins(payload: Any, url: str = "/stablecoins?includePrices=true") -> list[Stablecoin]:
    """``stablecoins.llama.fi/stablecoins?includePrices=true``: each stablecoin's
    circulating supply in USD and its price.

    ``circulating`` is keyed by peg type (``{"peggedUSD": 1.2e11}``): the value for the
    coin's ``pegType`` is taken, else the only value. It counts units of the peg, so
    for a coin not pegged to the dollar (``peggedEUR``) it is converted at the coin's
    USD price, and is ``None`` without one. One row per DeFiLlama id.
    """
    p = _Payload(SOURCE, url)
    body = p.object(payload, "body")
    coins: dict[str, Stablecoin] = {}
    for at, row in _rows(p, body.get("peggedAssets"), "peggedAssets"):
        p.sent(row, STABLECOIN_FIELDS, at)
        peg_type = p.optional_text(row, "pegType", at)
        price = p.field_number(row, "price", at)
        amount, unit = _circulating(p, row.get("circulating"), peg_type, f"{at}.circulating")
        if amount is None or unit == "peggedUSD":
            circulating_usd = amount
        else:
            circulating_usd = amount * price if price is not None else None
            if circulating_usd is not None and math.isinf(circulating_usd):
                raise p.fail(f"{at}.circulating at {at}.price is past float's range")
        coin = Stablecoin(
            symbol=p.text(row, "symbol", at),
            name=p.text(row, "name", at),
            peg_type=peg_type,
            circulating_usd=circulating_usd,
            price=price,
            id=_identifier(p, row.get("id"), f"{at}.id"),
        )
        coins.setdefault(coin.id, coin)
    p.not_all_zero((coin.circulating_usd for coin in coins.values()), "no stablecoin has a circulating supply")
    return list(coins.values())


def _identifier(p: _Payload, value: Any, where: str) -> str:
    """DeFiLlama's stablecoin id: a positive integer, sent as a number or its digits."""
    digits = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not digits.isdigit() or int(digits) == 0:
        raise p.fail(f"{where} is {_kind(value) if value is None else repr(value)}, expected a positive integer id")
    return digits


def _circulating(p: _Payload, value: Any, peg_type: str | None, where: str) -> tuple[float | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return p.number(value, where), peg_type  # a bare number: already in the coin's peg
    amounts = p.object(value, where)
    if peg_type is not None and peg_type in amounts:
        return p.number(amounts[peg_type], f"{where}.{peg_type}"), peg_type
    if len(amounts) == 1:
        (unit, amount), = amounts.items()
        return p.number(amount, f"{where}.{unit}"), unit
    return None, None


def _chain_tvl_path(chain: str) -> str:
    return f"/v2/historicalChainTvl/{quote(chain, safe='')}"


class DefiLlama:
    """DeFiLlama's free API over the shared HTTP layer: ``api`` is api.llama.fi,
    ``stablecoins`` is stablecoins.llama.fi."""

    def __init__(self, api: HttpSource, stablecoins: HttpSource):
        self.api, self.stablecoins_api = api, stablecoins

    @classmethod
    def create(
        cls,
        api_url: str,
        stablecoins_url: str,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.5,
        rate_limit: float = 2.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> DefiLlama:
        """Both hosts under the one source name, so they share one rate budget."""
        manners = dict(timeout=timeout, retries=retries, backoff=backoff, rate_limit=rate_limit, sleep=sleep)
        return cls(HttpSource(SOURCE, api_url, **manners), HttpSource(SOURCE, stablecoins_url, **manners))

    def close(self) -> None:
        self.api.close()
        self.stablecoins_api.close()

    def __enter__(self) -> DefiLlama:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def chains(self) -> list[Chain]:
        path = "/v2/chains"
        return parse_chains(self.api.get_json(path), self.api.shown_url(path))

    def chain_tvl(self, chain: str) -> list[ChainTvl]:
        """Daily TVL of one chain, by its name in ``/v2/chains`` ("Ethereum", "OP Mainnet").
        An unknown chain raises ``SourceRefused`` (DeFiLlama answers 400)."""
        path = _chain_tvl_path(chain)
        return parse_chain_tvl(self.api.get_json(path), chain, self.api.shown_url(path))

    def chain_tvl_url(self, chain: str) -> str:
        """Where ``chain_tvl`` asks, as errors show it."""
        return self.api.shown_url(_chain_tvl_path(chain))

    def protocols(self) -> list[Protocol]:
        return parse_protocols(self.api.get_json(PROTOCOLS_PATH), self.protocols_url())

    def protocols_url(self) -> str:
        """Where ``protocols`` asks, as errors show it."""
        return self.api.shown_url(PROTOCOLS_PATH)

    def selected_protocols(self, slugs: Collection[str], top_n: int) -> list[Protocol]:
        """``select_protocols`` of ``/protocols``. A selection left empty is an error: it
        would leave the ledger without a protocol for the day."""
        listed = self.protocols()
        chosen = select_protocols(listed, slugs, top_n)
        if not chosen:
            raise SourcePayloadError(
                SOURCE, self.protocols_url(),
                f"none of the {len(listed)} protocols is configured ({', '.join(slugs) or 'no slug'}) "
                f"or has a TVL to rank among the top {top_n}",
            )
        return chosen

    def fees(self, data_type: str) -> list[ProtocolFees]:
        """``data_type``: "fees" (dailyFees) or "revenue" (dailyRevenue)."""
        params = _fees_params(data_type)
        return parse_fees(self.api.get_json(FEES_PATH, params), data_type, self.fees_url(data_type))

    def fees_url(self, data_type: str) -> str:
        """Where ``fees`` asks, as errors show it."""
        return self.api.shown_url(FEES_PATH, _fees_params(data_type))

    def stablecoins(self) -> list[Stablecoin]:
        return parse_stablecoins(self.stablecoins_api.get_json(STABLECOINS_PATH, STABLECOINS_PARAMS),
                                 self.stablecoins_url())

    def stablecoins_url(self) -> str:
        """Where ``stablecoins`` asks, as errors show it."""
        return self.stablecoins_api.shown_url(STABLECOINS_PATH, STABLECOINS_PARAMS)


def _fees_params(data_type: str) -> dict[str, str]:
    if data_type not in DATA_TYPES:
        raise ValueError(f"data_type must be one of {', '.join(DATA_TYPES)}, not {data_type!r}")
    return {"excludeTotalDataChart": "true", "excludeTotalDataChartBreakdown": "true", "dataType": DATA_TYPES[data_type]}
