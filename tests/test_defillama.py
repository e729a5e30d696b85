"""DeFiLlama, the Glass ledger's source (omc_pipelines/sources/defillama.py) and its
sandbox (omc_pipelines/sandbox/defillama.py).

The recordings the sandbox serves are the main fixtures; hand-made variants cover
what they do not (missing fields, numbers as strings or null, garbage).
"""

from __future__ import annotations

import copy
import json
import time
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from omc_pipelines.sandbox.defillama import RECORDINGS, DefiLlamaSandbox
from omc_pipelines.sandbox.server import Fault, serve
from omc_pipelines.sources.defillama import (
    Chain,
    ChainTvl,
    DefiLlama,
    Protocol,
    parse_chain_tvl,
    parse_chains,
    parse_fees,
    parse_protocols,
    parse_stablecoins,
    select_protocols,
    slugify,
)
from omc_pipelines.sources.http import (
    HttpSource,
    SourcePayloadError,
    SourceRefused,
    SourceThrottled,
)

CONFIGURED = ("aave", "lido", "uniswap", "makerdao", "eigenlayer")
CHAINS = ("Ethereum", "Solana", "Tron", "BSC", "Base", "Arbitrum", "Bitcoin")


def _recording(name: str):
    return json.loads((RECORDINGS / name).read_text())


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


def _fails_naming(field: str):
    return pytest.raises(SourcePayloadError, match=field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\."))


# --- /v2/chains --------------------------------------------------------------------------


def test_chains_from_the_recording():
    chains = {c.name: c for c in parse_chains(_recording("chains.json"))}
    assert set(CHAINS) <= set(chains)
    assert chains["Ethereum"] == Chain("Ethereum", 68412907355.21, "ETH", "ethereum", 1)
    assert chains["Solana"].chain_id is None and chains["Solana"].gecko_id == "solana"
    assert (chains["Base"].token_symbol, chains["Base"].gecko_id, chains["Base"].chain_id) == (None, None, 8453)


def test_chains_tolerate_strings_nulls_and_missing_optional_fields():
    payload = [
        {"name": "Ethereum", "tvl": "5.0e10", "tokenSymbol": "ETH", "gecko_id": "ethereum", "chainId": "1"},
        {"name": "Cosmos", "tvl": None, "chainId": "cosmoshub-4"},
        {"name": "Bare", "tvl": 2.0},
        {"name": "Ethereum", "tvl": 1.0},  # listed twice: the first stands
    ]
    assert parse_chains(payload) == [
        Chain("Ethereum", 5.0e10, "ETH", "ethereum", 1),
        Chain("Cosmos", None, None, None, None),
        Chain("Bare", 2.0, None, None, None),
    ]


# What DeFiLlama always sends (null where it has no value) must be there: an answer that
# leaves it out has another shape, and would store "no value" over the real one.
@pytest.mark.parametrize(
    "parse, payload, field",
    [
        (parse_chains, [{"name": "Ethereum", "tvl": 1.0}, {"name": "Solana"}], "body[1] has no 'tvl'"),
        (lambda payload: parse_chain_tvl(payload, "Tron"), [{"date": 1640995200, "tvl": 1.0}, {"date": 1641081600}],
         "body[1] has no 'tvl'"),
        (parse_protocols, [{"name": "Aave V3", "slug": "aave-v3", "symbol": "AAVE", "chains": [], "tvl": 1.0}],
         "body[0] has no 'category'"),
        (parse_protocols, [{"name": "Aave V3", "symbol": "AAVE", "category": "Lending", "chains": []}],
         "body[0] has no 'tvl'"),
        (parse_stablecoins, {"peggedAssets": [{"id": "1", "symbol": "USDT", "name": "Tether", "pegType": "peggedUSD",
                                               "circulating": {"peggedUSD": 1.0}}]}, "peggedAssets[0] has no 'price'"),
        (parse_stablecoins, {"peggedAssets": [{"id": "1", "symbol": "USDT", "name": "Tether", "price": 1.0,
                                               "circulating": {"peggedUSD": 1.0}}]}, "peggedAssets[0] has no 'pegType'"),
    ],
)
def test_a_field_defillama_always_sends_must_be_there(parse, payload, field):
    with _fails_naming(field):
        parse(payload)


def test_the_fees_overview_may_leave_a_field_out_of_a_row_but_not_out_of_every_row():
    """It omits a protocol's empty category, chains or totals (GMX has no category in the
    recording); one that no protocol has was dropped from the answer."""
    fees = _recording("overview_fees_dailyFees.json")
    for name in ("category", "chains", "total24h", "total7d", "total30d"):
        payload = copy.deepcopy(fees)
        for row in payload["protocols"]:
            row.pop(name, None)
        with _fails_naming(f"no protocol has {name!r}"):
            parse_fees(payload, "fees")


@pytest.mark.parametrize(
    "row, field",
    [
        ({"name": "Ethereum", "tvl": "lots"}, "body[0].tvl"),
        ({"name": "Ethereum", "tvl": True}, "body[0].tvl"),
        ({"name": "Ethereum", "tvl": {"usd": 1}}, "body[0].tvl"),
        ({"name": None, "tvl": 1.0}, "body[0].name"),
        ({"name": "Ethereum", "tvl": 1.0, "chainId": 1.5}, "body[0].chainId"),
        ({"name": "Ethereum", "tvl": 1.0, "tokenSymbol": 7}, "body[0].tokenSymbol"),
    ],
)
def test_chains_garbage_names_the_field(row, field):
    with _fails_naming(field):
        parse_chains([row], url="https://api.llama.fi/v2/chains")


def test_chains_body_must_be_a_list():
    with pytest.raises(SourcePayloadError, match="body is .* expected a list") as err:
        parse_chains({"chains": []}, url="https://api.llama.fi/v2/chains")
    assert err.value.source == "defillama" and err.value.url == "https://api.llama.fi/v2/chains"


# --- /v2/historicalChainTvl/{chain} ------------------------------------------------------


def test_chain_tvl_from_the_recording_is_daily_and_in_order():
    recorded = _recording("historicalChainTvl.json")
    assert set(CHAINS) <= set(recorded)
    points = parse_chain_tvl(recorded["Ethereum"], "Ethereum")
    assert len(points) == 90
    assert [p.day for p in points] == [points[0].day + timedelta(days=i) for i in range(90)]
    assert points[-1] == ChainTvl("Ethereum", date(2026, 1, 15), 68412907355.21)


def test_unix_seconds_become_the_utc_date_whatever_the_local_zone(monkeypatch):
    # 2022-01-01 23:30 UTC is already 2 January in Sydney.
    monkeypatch.setenv("TZ", "Australia/Sydney")
    time.tzset()
    try:
        points = parse_chain_tvl([{"date": 1640995200, "tvl": 1.0}, {"date": 1641079800, "tvl": 2.0}], "Ethereum")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert [p.day for p in points] == [date(2022, 1, 1)]
    assert points[0].tvl_usd == 2.0  # the later point of the day stands


def test_chain_tvl_tolerates_strings_nulls_milliseconds_and_passes_negative_tvl_on():
    payload = [
        {"date": "1641168000", "tvl": "-1250.5"},  # 2022-01-03, negative: the ledger rejects it, with its reason
        {"date": 1640995200, "tvl": 1.5e11},  # 2022-01-01
        {"date": 1641081600000, "tvl": 3},  # 2022-01-02 in milliseconds
        {"date": 1641254400, "tvl": None},  # 2022-01-04 without a value: no row
    ]
    assert parse_chain_tvl(payload, "Tron") == [
        ChainTvl("Tron", date(2022, 1, 1), 1.5e11),
        ChainTvl("Tron", date(2022, 1, 2), 3.0),
        ChainTvl("Tron", date(2022, 1, 3), -1250.5),
    ]


@pytest.mark.parametrize(
    "payload, field",
    [
        ([{"date": 1640995200, "tvl": 1.0}, {"date": 1641081600, "tvl": "n/a"}], "body[1].tvl"),
        ([{"date": "yesterday", "tvl": 1.0}], "body[0].date"),
        ([{"date": None, "tvl": 1.0}], "body[0].date"),
        ([{"date": 1e30, "tvl": 1.0}], "body[0].date"),
        ([[1640995200, 1.0]], "body[0]"),
        ({"tvl": []}, "body"),
    ],
)
def test_chain_tvl_garbage_names_the_field(payload, field):
    with _fails_naming(field):
        parse_chain_tvl(payload, "Ethereum")


@pytest.mark.parametrize("tvl", [None, "NaN", float("nan"), "", 0, "0"])
def test_a_series_without_a_single_tvl_is_an_error(tvl):
    payload = [{"date": 1640995200 + 86400 * i, "tvl": tvl} for i in range(3)]
    with pytest.raises(SourcePayloadError, match="none of the 3 points has a tvl other than zero") as err:
        parse_chain_tvl(payload, "Solana", url="https://api.llama.fi/v2/historicalChainTvl/Solana")
    assert err.value.url == "https://api.llama.fi/v2/historicalChainTvl/Solana"


# An empty list is never DeFiLlama's answer: it would empty the ledger, so it is an error.
@pytest.mark.parametrize(
    "parse, payload, field",
    [
        (parse_chains, [], "body"),
        (lambda payload: parse_chain_tvl(payload, "Ethereum"), [], "body"),
        (parse_protocols, [], "body"),
        (lambda payload: parse_fees(payload, "fees"), {"protocols": []}, "protocols"),
        (lambda payload: parse_fees(payload, "revenue"), {"protocols": [], "total24h": 0}, "protocols"),
        (parse_stablecoins, {"peggedAssets": []}, "peggedAssets"),
    ],
)
def test_an_empty_list_is_an_error_naming_it(parse, payload, field):
    with pytest.raises(SourcePayloadError, match=f"{field} is an empty list"):
        parse(payload)


# --- /protocols ----------------------------------------------------------------------------


def test_protocols_from_the_recording():
    protocols = {p.slug: p for p in parse_protocols(_recording("protocols.json"))}
    assert len(protocols) == 30
    assert {"aave-v3", "aave-v2", "lido", "uniswap-v3", "makerdao", "eigenlayer"} <= set(protocols)
    aave = protocols["aave-v3"]
    assert (aave.name, aave.symbol, aave.category, aave.parent) == ("Aave V3", "AAVE", "Lending", "aave")
    assert aave.chains[:2] == ("Ethereum", "Arbitrum") and aave.tvl_usd > 1e10 and aave.mcap > 0
    assert protocols["lido"].parent is None
    assert protocols["binance-staked-eth"].symbol is None  # "-": no token
    assert protocols["binance-cex"].category == "CEX"
    marinade = protocols["marinade-native"]
    assert (marinade.tvl_usd, marinade.change_1d, marinade.mcap) == (None, None, None)  # mcap key absent


def test_protocols_tolerate_missing_optional_fields_nulls_and_strings():
    payload = [
        {"name": "Uniswap V3", "symbol": None, "category": None, "tvl": "4.5e9", "change_1d": "-0.4", "mcap": None,
         "chains": ["Ethereum", "Base", "Ethereum"]},
        {"name": "Odd", "slug": "odd", "symbol": "", "category": "", "chains": None, "tvl": -12.5},
    ]
    assert parse_protocols(payload) == [
        Protocol("uniswap-v3", "Uniswap V3", None, None, ("Ethereum", "Base"), 4.5e9, -0.4, None),
        Protocol("odd", "Odd", None, None, (), -12.5, None, None),
    ]


AAVE = {"name": "Aave V3", "slug": "aave-v3", "symbol": "AAVE", "category": "Lending", "chains": [], "tvl": 1.0}


@pytest.mark.parametrize(
    "row, field",
    [
        ({**AAVE, "tvl": "a lot"}, "body[0].tvl"),
        ({**AAVE, "mcap": "?"}, "body[0].mcap"),
        ({**AAVE, "change_1d": [1]}, "body[0].change_1d"),
        ({**AAVE, "chains": "Ethereum"}, "body[0].chains"),
        ({**AAVE, "chains": ["Ethereum", 1]}, "body[0].chains[1]"),
        ({**AAVE, "name": None}, "body[0].name"),
        ({**AAVE, "category": 7}, "body[0].category"),
    ],
)
def test_protocols_garbage_names_the_field(row, field):
    with _fails_naming(field):
        parse_protocols([row])


# An answer in which every value is zero (or none has one) says nothing, like an empty one.
@pytest.mark.parametrize(
    "parse, payload, complaint",
    [
        (parse_protocols, [{**AAVE, "tvl": 0}, {**AAVE, "slug": "lido", "tvl": None}], "no protocol has a tvl other than zero"),
        (lambda payload: parse_fees(payload, "fees"),
         {"protocols": [{"name": "Lido", "category": "x", "chains": [], "total24h": 0, "total7d": "0", "total30d": None}]},
         "no protocol has a total other than zero"),
        (parse_stablecoins, {"peggedAssets": [{"id": "1", "symbol": "USDT", "name": "Tether", "pegType": "peggedUSD",
                                               "circulating": {"peggedUSD": 0}, "price": 0}]},
         "no stablecoin has a circulating supply other than zero"),
    ],
)
def test_an_answer_of_zeros_is_an_error(parse, payload, complaint):
    with pytest.raises(SourcePayloadError, match=complaint):
        parse(payload)


def test_slugify_as_defillama():
    assert slugify("Uniswap V3") == "uniswap-v3"
    assert slugify("  Hashflow's  Pool ") == "hashflows-pool"


def _p(slug, tvl, category="Dexes", parent=None) -> Protocol:
    return Protocol(slug, slug.title(), None, category, ("Ethereum",), tvl, None, None, parent)


def test_select_protocols_configured_plus_top_n_by_tvl():
    protocols = [
        _p("binance-cex", 1.6e11, "CEX"),
        _p("aave-v3", 3.3e10, "Lending", "aave"),
        _p("lido", 2.6e10, "Liquid Staking"),
        _p("ethena", 6e9),
        _p("uniswap-v3", 4.5e9, parent="uniswap"),
        _p("small", 1e6),
        _p("aave-v2", 3e8, "Lending", "aave"),
        _p("nothing", None),
        _p("lido", 1.0),  # listed twice: the first stands
    ]
    chosen = select_protocols(protocols, ["aave", "small", "nothing"], 2)
    # aave by parent (both versions), the configured ones, the top two without the CEX, by TVL.
    assert [p.slug for p in chosen] == ["aave-v3", "lido", "aave-v2", "small", "nothing"]
    assert [p.slug for p in select_protocols(protocols, [], 3)] == ["aave-v3", "lido", "ethena"]
    assert [p.slug for p in select_protocols(protocols, ["LIDO "], 0)] == ["lido"]
    assert [p.slug for p in select_protocols(protocols, [], 1, exclude_from_top=())] == ["binance-cex"]
    assert [p.slug for p in select_protocols(protocols, ["binance-cex"], 1)] == ["binance-cex", "aave-v3"]


def test_select_protocols_on_the_recording_with_the_default_settings():
    chosen = select_protocols(parse_protocols(_recording("protocols.json")), CONFIGURED, 20)
    slugs = [p.slug for p in chosen]
    assert len(slugs) == len(set(slugs))
    assert {"aave-v3", "aave-v2", "lido", "uniswap-v3", "uniswap-v2", "makerdao", "eigenlayer"} <= set(slugs)
    assert not {"binance-cex", "okx"} & set(slugs)
    tvls = [p.tvl_usd for p in chosen]
    assert tvls == sorted(tvls, reverse=True)
    # The top 20 (of 27 non-CEX protocols with a TVL) holds every configured one but two
    # small old versions, selected through their parents.
    assert len(slugs) == 22 and {"aave-v2", "uniswap-v2"} <= set(slugs[20:])


# --- /overview/fees --------------------------------------------------------------------------


def test_fees_and_revenue_from_the_recordings():
    fees = {f.slug: f for f in parse_fees(_recording("overview_fees_dailyFees.json"), "fees")}
    revenue = {f.slug: f for f in parse_fees(_recording("overview_fees_dailyRevenue.json"), "revenue")}
    assert len(fees) == 18 and len(revenue) == 17 and "morpho-blue" not in revenue
    aave = fees["aave-v3"]
    assert (aave.name, aave.category, aave.data_type, aave.parent) == ("Aave V3", "Lending", "fees", "aave")
    assert aave.total_24h > 0 and aave.total_7d > aave.total_24h and aave.total_30d > aave.total_7d
    assert fees["pendle"].name == "Pendle"  # no slug in the payload: derived from the name
    assert fees["jito-liquid-staking"].total_30d is None  # key absent
    assert fees["gmx-v2-perps"].category is None and fees["morpho-blue"].chains == ()
    assert revenue["justlend"].total_7d is None  # null
    assert revenue["uniswap-v3"].total_24h == 0.0 and revenue["uniswap-v3"].data_type == "revenue"


LIDO_FEES = {"name": "Lido", "slug": "lido", "category": "Liquid Staking", "chains": ["Ethereum"], "total24h": 1.0,
             "total7d": 7.0, "total30d": 30.0}


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"protocols": [{**LIDO_FEES, "total24h": "NaN?"}]}, "protocols[0].total24h"),
        ({"protocols": [{**LIDO_FEES, "total30d": {}}]}, "protocols[0].total30d"),
        ({"protocols": [{**LIDO_FEES, "name": None}]}, "protocols[0].name"),
        ({"total24h": 1.0}, "protocols"),
        ([], "body"),
    ],
)
def test_fees_garbage_names_the_field(payload, field):
    with _fails_naming(field):
        parse_fees(payload, "fees")


def test_fees_accept_numbers_as_strings():
    [row] = parse_fees({"protocols": [{"name": "Lido", "slug": "lido", "category": "Liquid Staking", "chains": None,
                                       "total24h": "2.9e6", "total7d": "", "total30d": None}]}, "revenue")
    assert (row.total_24h, row.total_7d, row.total_30d, row.chains) == (2.9e6, None, None, ())


def test_fees_data_type_is_fees_or_revenue():
    with pytest.raises(ValueError, match="data_type"):
        parse_fees({"protocols": []}, "dailyFees")


# --- stablecoins ----------------------------------------------------------------------------------


def test_stablecoins_from_the_recording():
    coins = {c.symbol: c for c in parse_stablecoins(_recording("stablecoins.json"))}
    assert len(coins) == 11
    usdt = coins["USDT"]
    assert (usdt.name, usdt.peg_type, usdt.circulating_usd, usdt.price, usdt.id) == (
        "Tether", "peggedUSD", 186904331220.41, 1.0003, "1")
    assert coins["USDS"].price == 1.0001  # sent as a string
    assert coins["crvUSD"].price is None and coins["crvUSD"].circulating_usd == 112330008.4
    # EURC counts euros: converted to dollars at its price.
    assert coins["EURC"].circulating_usd == pytest.approx(281004339.12 * 1.1652)


def test_stablecoins_circulating_by_peg_type_else_the_single_value():
    payload = {"peggedAssets": [
        {"id": "1", "symbol": "AAA", "name": "A", "pegType": "peggedUSD", "circulating": {"peggedEUR": 5.0, "peggedUSD": "7"}, "price": 1},
        {"id": 7, "symbol": "BBB", "name": "B", "pegType": None, "circulating": {"peggedUSD": 3.0}, "price": None},
        {"id": "3", "symbol": "CCC", "name": "C", "pegType": "peggedUSD", "circulating": {"peggedEUR": 1.0, "peggedJPY": 2.0},
         "price": None},
        {"id": "4", "symbol": "DDD", "name": "D", "pegType": "peggedEUR", "circulating": {"peggedEUR": 10.0}, "price": None},
        {"id": "5", "symbol": "EEE", "name": "E", "pegType": "peggedUSD", "circulating": None, "price": None},
        {"id": "6", "symbol": "FFF", "name": "F", "pegType": "peggedUSD", "circulating": {}, "price": None},
        {"id": "1", "symbol": "AAA", "name": "A again", "pegType": None, "circulating": None, "price": None},  # listed twice
    ]}
    got = [(c.symbol, c.peg_type, c.circulating_usd, c.price) for c in parse_stablecoins(payload)]
    assert [c.id for c in parse_stablecoins(payload)] == ["1", "7", "3", "4", "5", "6"]  # a numeric id too
    assert got == [
        ("AAA", "peggedUSD", 7.0, 1.0),
        ("BBB", None, 3.0, None),
        ("CCC", "peggedUSD", None, None),
        ("DDD", "peggedEUR", None, None),  # euros without a price: no dollar figure
        ("EEE", "peggedUSD", None, None),
        ("FFF", "peggedUSD", None, None),
    ]


@pytest.mark.parametrize(
    "asset, field",
    [
        ({"circulating": {"peggedUSD": "lots"}}, "peggedAssets[0].circulating.peggedUSD"),
        ({"price": "one"}, "peggedAssets[0].price"),
        ({"circulating": [1.0]}, "peggedAssets[0].circulating"),
        ({"symbol": None}, "peggedAssets[0].symbol"),
        ({"id": None}, "peggedAssets[0].id"),
        ({"id": 1.5}, "peggedAssets[0].id"),
        ({"id": "-1"}, "peggedAssets[0].id is '-1'"),  # DeFiLlama's ids are positive integers
        ({"id": 0}, "peggedAssets[0].id is 0"),
        ({"id": "tether"}, "peggedAssets[0].id is 'tether'"),
    ],
)
def test_stablecoins_garbage_names_the_field(asset, field):
    tether = {"id": "1", "symbol": "USDT", "name": "Tether", "pegType": "peggedUSD", "circulating": {"peggedUSD": 1.0},
              "price": 1.0}
    with _fails_naming(field):
        parse_stablecoins({"peggedAssets": [{**tether, **asset}]})


# --- the client against the sandbox -------------------------------------------------------------


@pytest.fixture
def served():
    box = DefiLlamaSandbox()
    with serve(box) as server:
        yield server, box


@pytest.fixture
def slept():
    return []


@pytest.fixture
def llama(served, slept):
    """A client with a fast rate limit of its own and a sleep that only records."""
    server, _ = served
    manners = dict(timeout=2.0, retries=2, backoff=0.01, rate_limit=1000.0, sleep=slept.append)
    with DefiLlama(HttpSource("defillama-test", server.url, **manners),
                   HttpSource("defillama-test", server.url, **manners)) as client:
        yield client


@pytest.mark.integration
def test_client_reads_all_five_paths(llama):
    chains = {c.name: c for c in llama.chains()}
    assert set(CHAINS) <= set(chains)
    tvl = llama.chain_tvl("Ethereum")
    assert len(tvl) == 90 and tvl[-1].day == _utc_today()
    assert tvl[-1].tvl_usd == chains["Ethereum"].tvl_usd
    protocols = llama.protocols()
    assert len(protocols) == 30 and {"lido", "eigenlayer", "makerdao"} <= {p.slug for p in protocols}
    assert len(llama.fees("fees")) == 18 and len(llama.fees("revenue")) == 17
    assert {c.symbol for c in llama.stablecoins()} >= {"USDT", "USDC", "DAI", "EURC"}
    assert all(c.price is not None for c in llama.stablecoins() if c.symbol != "crvUSD")  # includePrices was sent


@pytest.mark.integration
def test_every_configured_chain_has_the_last_seven_days(llama):
    week = [_utc_today() - timedelta(days=i) for i in range(7)]
    for chain in CHAINS:
        days = {p.day for p in llama.chain_tvl(chain)}
        assert set(week) <= days, chain


@pytest.mark.integration
def test_chain_names_are_quoted_and_matched_case_insensitively(llama, served):
    server, _ = served
    spaced = llama.chain_tvl("OP Mainnet")
    assert spaced[-1].chain == "OP Mainnet" and len(spaced) == 90
    assert [p.tvl_usd for p in llama.chain_tvl("bsc")] == [p.tvl_usd for p in llama.chain_tvl("BSC")]
    assert "/v2/historicalChainTvl/OP%20Mainnet" in {r["path"] for r in server.requests}


@pytest.mark.integration
def test_unknown_chain_is_refused_as_defillama_does(llama, served):
    server, _ = served
    with pytest.raises(SourceRefused) as err:
        llama.chain_tvl("Atlantis")
    assert err.value.status == 400 and err.value.source == "defillama-test"
    response = httpx.get(f"{server.url}/v2/historicalChainTvl/Atlantis")
    assert (response.status_code, response.text) == (400, "There is no chain with that name: Atlantis")
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.integration
def test_fees_data_types_and_the_sandbox_answers(llama, served):
    server, _ = served
    with pytest.raises(ValueError):
        llama.fees("volume")
    assert server.requests_to("/overview") == []  # refused before asking
    llama.fees("revenue")
    [request] = server.requests_to("/overview/fees")
    assert request["status"] == 200
    assert httpx.get(f"{server.url}/overview/fees").json()["protocols"][0]["name"] == "Tether"  # default dailyFees
    assert httpx.get(f"{server.url}/overview/fees", params={"dataType": "dailyVolume"}).status_code == 500


@pytest.mark.integration
def test_sandbox_prices_only_when_asked(served):
    server, _ = served
    bare = httpx.get(f"{server.url}/stablecoins").json()["peggedAssets"]
    priced = httpx.get(f"{server.url}/stablecoins", params={"includePrices": "true"}).json()["peggedAssets"]
    assert all("price" not in a for a in bare) and all("price" in a for a in priced)


@pytest.mark.integration
def test_throttled_with_retry_after_then_served(served):
    server, _ = served
    server.inject(Fault("/v2/chains", "429", times=1, retry_after=3))
    waits: list[float] = []
    with DefiLlama.create(server.url, server.url, timeout=2.0, backoff=0.01, sleep=waits.append) as llama:
        assert llama.api._limiter is llama.stablecoins_api._limiter  # one budget for both hosts
        assert llama.api.name == llama.stablecoins_api.name == "defillama"
        assert len(llama.chains()) == 12
    assert waits == [3.0]
    assert [(r["status"], r["fault"]) for r in server.requests_to("/v2/chains")] == [(429, "429"), (200, None)]


@pytest.mark.integration
def test_throttled_throughout_gives_up_typed(llama, served, slept):
    server, _ = served
    server.inject(Fault("/stablecoins", "429", times=0, retry_after=1))
    with pytest.raises(SourceThrottled):
        llama.stablecoins()
    assert slept == [1.0, 1.0] and len(server.requests_to("/stablecoins")) == 3


@pytest.mark.integration
def test_malformed_answer_is_a_payload_error(llama, served):
    server, _ = served
    server.inject(Fault("/protocols", "malformed"))
    with pytest.raises(SourcePayloadError, match="not valid JSON"):
        llama.protocols()
    assert len(llama.protocols()) == 30


@pytest.mark.integration
def test_tvl_control_route_changes_what_is_served(llama, served):
    server, box = served
    today, before = _utc_today(), llama.chain_tvl("Ethereum")
    three_ago = (today - timedelta(days=3)).isoformat()

    answer = httpx.post(f"{server.url}/_sandbox/defillama/tvl", json={"chain": "ethereum", "day": three_ago, "tvl": -5.5})
    assert answer.json() == {"status": "ok", "chain": "Ethereum", "day": three_ago, "tvl": -5.5}
    httpx.post(f"{server.url}/_sandbox/defillama/tvl", json={"chain": "Ethereum", "day": today.isoformat(), "tvl": 7.0e10})
    after = {p.day: p.tvl_usd for p in llama.chain_tvl("Ethereum")}
    assert after[today - timedelta(days=3)] == -5.5 and after[today] == 7.0e10
    assert {p.day: p.tvl_usd for p in before if p.day not in (today, today - timedelta(days=3))}.items() <= after.items()
    assert {c.name: c.tvl_usd for c in llama.chains()}["Ethereum"] == 7.0e10  # the chain list follows

    tomorrow = today + timedelta(days=1)
    box.set_tvl("Solana", tomorrow, 1.0)  # the same, from Python
    assert llama.chain_tvl("Solana")[-1] == ChainTvl("Solana", tomorrow, 1.0)
    box.set_tvl("Solana", tomorrow, None)  # null removes the point
    assert llama.chain_tvl("Solana")[-1].day == today

    box.set_tvl("Tron", today, "n/a")  # served as given: the parser names it
    with pytest.raises(SourcePayloadError, match=r"body\[89\]\.tvl"):
        llama.chain_tvl("Tron")

    assert httpx.post(f"{server.url}/_sandbox/defillama/tvl", json={"chain": "Atlantis", "day": three_ago, "tvl": 1}).status_code == 400
    assert httpx.post(f"{server.url}/_sandbox/defillama/tvl", json={"chain": "Ethereum", "day": "03/01/2026", "tvl": 1}).status_code == 400
    with pytest.raises(ValueError):
        box.set_tvl("Atlantis", today, 1.0)

    assert httpx.post(f"{server.url}/_sandbox/defillama/reset").json() == {"status": "ok"}
    assert llama.chain_tvl("Ethereum") == before and len(llama.chain_tvl("Tron")) == 90


@pytest.mark.integration
def test_sandbox_serves_empty_answers_and_blank_series_until_reset(llama, served):
    server, box = served
    control = f"{server.url}/_sandbox/defillama"
    assert httpx.post(f"{control}/series", json={"chain": "solana", "tvl": "NaN"}).json() == {
        "status": "ok", "chain": "Solana", "tvl": "NaN"}
    served_points = httpx.get(f"{server.url}/v2/historicalChainTvl/Solana").json()
    assert len(served_points) == 90 and {p["tvl"] for p in served_points} == {"NaN"}
    with pytest.raises(SourcePayloadError, match="none of the 90 points has a tvl"):
        llama.chain_tvl("Solana")
    box.fill_series("Tron", float("nan"))  # from Python: served as JSON's NaN literal
    assert b"NaN" in httpx.get(f"{server.url}/v2/historicalChainTvl/Tron").content
    with pytest.raises(SourcePayloadError, match="none of the 90 points has a tvl"):
        llama.chain_tvl("Tron")

    assert httpx.post(f"{control}/empty", json={"what": "series", "chain": "ethereum"}).status_code == 200
    assert httpx.get(f"{server.url}/v2/historicalChainTvl/Ethereum").json() == []
    for what in ("chains", "protocols", "fees", "revenue", "stablecoins"):
        assert httpx.post(f"{control}/empty", json={"what": what}).json() == {"status": "ok", "empty": what}
    assert httpx.get(f"{server.url}/v2/chains").json() == []
    assert httpx.get(f"{server.url}/protocols").json() == []
    for data_type in ("dailyFees", "dailyRevenue"):
        overview = httpx.get(f"{server.url}/overview/fees", params={"dataType": data_type}).json()
        assert overview["protocols"] == [] and "total24h" in overview  # the shape stays, the list is empty
    assert httpx.get(f"{server.url}/stablecoins", params={"includePrices": "true"}).json()["peggedAssets"] == []
    with pytest.raises(SourcePayloadError, match="body is an empty list"):
        llama.protocols()

    assert httpx.post(f"{control}/empty", json={"what": "volume"}).status_code == 400
    assert httpx.post(f"{control}/empty", json={"what": "series"}).status_code == 400  # which chain?
    assert httpx.post(f"{control}/empty", json={"what": "protocols", "chain": "Solana"}).status_code == 400
    assert httpx.post(f"{control}/series", json={"chain": "Atlantis", "tvl": 1}).status_code == 400
    with pytest.raises(ValueError):
        box.empty("series", "Atlantis")

    box.reset()
    assert len(llama.chain_tvl("Solana")) == len(llama.chain_tvl("Ethereum")) == 90
    assert len(llama.protocols()) == 30 and len(llama.fees("revenue")) == 17 and len(llama.stablecoins()) == 11


@pytest.mark.integration
def test_selected_protocols_refuse_an_empty_selection_naming_the_url(llama, served):
    server, box = served
    assert {p.slug for p in llama.selected_protocols(["lido"], 0)} == {"lido"}
    with pytest.raises(SourcePayloadError, match=r"none of the 30 protocols is configured \(atlantis\)") as err:
        llama.selected_protocols(["atlantis"], 0)
    assert err.value.url == f"{server.url}/protocols"


def test_sandbox_series_end_on_the_utc_day_of_its_clock():
    # 05:00 on 2 January in Sydney (+10) is still 1 January in UTC.
    box = DefiLlamaSandbox(now=datetime(2030, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=10))))
    for chain in CHAINS:
        points = box.chain_series(chain)
        assert len(points) == 90
        assert points[-1]["date"] == int(datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp())
        assert all(p["date"] % 86400 == 0 for p in points)
    recorded = _recording("historicalChainTvl.json")["Bitcoin"]
    assert [p["tvl"] for p in box.chain_series("bitcoin")] == [p["tvl"] for p in recorded]
    box.set_tvl("Bitcoin", "2030-01-01", 0)
    box.reset()
    assert box.chain_series("Bitcoin")[-1]["tvl"] == recorded[-1]["tvl"]


def test_recorded_chain_list_matches_its_series():
    series = _recording("historicalChainTvl.json")
    for chain in _recording("chains.json"):
        assert series[chain["name"]][-1]["tvl"] == chain["tvl"], chain["name"]


def test_parsers_do_not_mutate_their_input():
    payload = _recording("protocols.json")
    kept = copy.deepcopy(payload)
    parse_protocols(payload)
    assert payload == kept
