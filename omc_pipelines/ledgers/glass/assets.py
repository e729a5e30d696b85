"""The Glass ledger: on-chain fundamentals from DeFiLlama.

Chain TVL has a daily history, so it is a daily-partitioned asset that backfills
from it. The rest is what DeFiLlama knows only "now": stored as of today's UTC
date, and a re-run replaces today's rows and nothing else.

An answer that would shrink the ledger is the source's error, not a fact:

- Chain TVL is upserted (a day's value updated), never deleted. A day DeFiLlama
  stops serving is far likelier a bad answer than history rewritten, and only a
  re-backfill would bring it back; a revised value still lands, and
  ``collected_at`` shows when a day was last confirmed. Each chain is fetched on
  its own: one that fails (after the retries, or malformed, or with no TVL in the
  window where days are stored) is skipped and listed in ``failed_chains``; the
  run fails only when every chain does.
- The snapshots fail the run on an empty answer (the parsers refuse empty lists,
  and answers of zeros) or an empty selection, before today's rows are touched.

A negative TVL, fee, revenue, supply, market cap or price is not a fact: the item is
rejected with the reason (logged, and listed in ``rejected``) before anything is
written, as the Exchange ledger rejects prices and trades; an answer of which every
item is rejected is the source's error, like an empty one (for chain TVL: that chain's).
"""

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from dagster import AssetExecutionContext, BackfillPolicy, Failure, MaterializeResult, MetadataValue, asset

from omc_pipelines.db import upsert
from omc_pipelines.ledgers import keep_valid
from omc_pipelines.db.models import ChainTvl, ProtocolFees, ProtocolSnapshot, StablecoinSupply
from omc_pipelines.metadata import definition, per_partition_counts, standard
from omc_pipelines.partitions import DAILY
from omc_pipelines.resources import DefiLlamaResource, LedgerDatabase
from omc_pipelines.sources import defillama as llama
from omc_pipelines.sources.defillama import SOURCE
from omc_pipelines.sources.http import SourceError, SourcePayloadError

GROUP = "glass"


def _negative(what: str, values: dict[str, float | None]) -> str | None:
    bad = [f"{name}={value}" for name, value in values.items() if value is not None and value < 0]
    return f"{what}: negative {', '.join(bad)}" if bad else None


def tvl_problem(point: llama.ChainTvl) -> str | None:
    """Why a day's chain TVL must not be stored, or None; and so for the others below."""
    return _negative(f"{point.chain} on {point.day}", {"tvl": point.tvl_usd})


def protocol_problem(protocol: llama.Protocol) -> str | None:
    return _negative(f"protocol {protocol.slug}", {"tvl": protocol.tvl_usd, "mcap": protocol.mcap})


def fees_problem(fees: llama.ProtocolFees) -> str | None:
    return _negative(f"{fees.data_type} of {fees.slug}",
                     {"total_24h": fees.total_24h, "total_7d": fees.total_7d, "total_30d": fees.total_30d})


def stablecoin_problem(coin: llama.Stablecoin) -> str | None:
    return _negative(f"stablecoin {coin.symbol} ({coin.id})", {"circulating": coin.circulating_usd, "price": coin.price})


def _facts(context: AssetExecutionContext, items: list, problem: Callable, url: str) -> tuple[list, list[str]]:
    """The items worth storing, and why the others were rejected (logged; shown as metadata).
    An answer of which every item is rejected says nothing, like an empty one: the source's error."""
    kept, rejected = keep_valid(items, problem, context)
    if rejected and not kept:
        raise SourcePayloadError(SOURCE, url, f"all {len(rejected)} items were rejected, e.g. {rejected[0]}")
    return kept, rejected


def _replace(conn: sa.Connection, model, rows: list[dict], key: tuple[str, ...], where) -> None:
    """Make the rows matching ``where`` exactly ``rows``: what the source dropped goes too."""
    conn.execute(sa.delete(model).where(where))
    upsert(conn, model.__table__, rows, key)


def _stored_days(engine: sa.Engine, chains: list[str], first: date, end: date) -> dict[str, int]:
    """Days stored per chain in [first, end)."""
    with engine.connect() as conn:
        counts = conn.execute(
            sa.select(ChainTvl.chain, sa.func.count())
            .where(ChainTvl.day >= first, ChainTvl.day < end, ChainTvl.chain.in_(chains))
            .group_by(ChainTvl.chain)
        ).all()
    return dict(counts)


@asset(
    group_name=GROUP,
    kinds={"sql"},
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    **definition(ChainTvl, group=GROUP, source=SOURCE),
    description="Daily TVL per configured chain (OMC_DEFILLAMA_CHAINS) from /v2/historicalChainTvl; "
    "a backfill of any range is one run, one request per chain. Days are updated, never deleted; a chain "
    "that fails is skipped and listed in failed_chains, and the run fails only when every chain does.",
)
def defillama_chain_tvl(context: AssetExecutionContext, ledger_db: LedgerDatabase, defillama: DefiLlamaResource) -> MaterializeResult:
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    engine = ledger_db.engine()
    stored = _stored_days(engine, defillama.chains, first, end)
    now = datetime.now(timezone.utc)
    rows, failed, rejected = [], {}, []
    with defillama.client() as client:
        for chain in defillama.chains:
            try:
                points = [p for p in client.chain_tvl(chain) if first <= p.day < end]
                if not points and stored.get(chain):
                    raise SourcePayloadError(
                        SOURCE, client.chain_tvl_url(chain),
                        f"no tvl from {first} to {end - timedelta(days=1)}, where {stored[chain]} days are stored",
                    )
                points, not_facts = _facts(context, points, tvl_problem, client.chain_tvl_url(chain))
                rejected += not_facts
            except SourceError as exc:
                context.log.warning(f"skipping chain {chain}: {exc}")
                failed[chain] = str(exc)
                continue
            rows += [{"chain": p.chain, "day": p.day, "tvl_usd": p.tvl_usd, "collected_at": now} for p in points]
    if failed and len(failed) == len(defillama.chains):
        raise Failure(
            description=f"every chain failed: {'; '.join(f'{chain}: {reason}' for chain, reason in failed.items())}",
            metadata={"failed_chains": MetadataValue.json(failed)},
        )
    with engine.begin() as conn:
        upsert(conn, ChainTvl.__table__, rows, ("chain", "day"), update=("tvl_usd", "collected_at"))
        in_window = sa.and_(ChainTvl.day >= first, ChainTvl.day < end)
        shown = standard(conn, ChainTvl, newest=("day", "chain"), where=in_window)
        if len(context.partition_keys) > 1:
            found = conn.execute(sa.select(ChainTvl.day, sa.func.count()).where(in_window).group_by(ChainTvl.day)).all()
            per_partition_counts(context, {day.isoformat(): n for day, n in found})
    return MaterializeResult(metadata={
        "collected_at": now.isoformat(),  # what the checks judge: the rows of this run
        "days": (end - first).days, "rows": len(rows), "failed_chains": MetadataValue.json(failed),
        "rejected": MetadataValue.json(rejected),
        **shown,
    })


def _today() -> date:
    return datetime.now(timezone.utc).date()


@asset(
    group_name=GROUP,
    kinds={"sql"},
    **definition(ProtocolSnapshot, group=GROUP, source=SOURCE),
    description="Today's TVL, category and chains of the configured protocols (OMC_DEFILLAMA_PROTOCOLS) "
    "plus the top N by TVL (OMC_DEFILLAMA_TOP_PROTOCOLS). An empty answer or selection fails the run; "
    "a protocol with a negative TVL or market cap is rejected and listed in rejected.",
)
def defillama_protocols(context: AssetExecutionContext, ledger_db: LedgerDatabase,
                        defillama: DefiLlamaResource) -> MaterializeResult:
    today, now = _today(), datetime.now(timezone.utc)
    with defillama.client() as client:
        chosen = client.selected_protocols(defillama.protocols, defillama.top_protocols)
        chosen, rejected = _facts(context, chosen, protocol_problem, client.protocols_url())
    rows = [
        {"slug": p.slug, "as_of": today, "name": p.name, "symbol": p.symbol, "category": p.category,
         "chains": list(p.chains), "tvl_usd": p.tvl_usd, "change_1d": p.change_1d, "mcap": p.mcap, "collected_at": now}
        for p in chosen
    ]
    with ledger_db.engine().begin() as conn:
        _replace(conn, ProtocolSnapshot, rows, ("slug", "as_of"), ProtocolSnapshot.as_of == today)
        shown = standard(conn, ProtocolSnapshot, newest=("as_of", "tvl_usd"),
                         columns=("slug", "as_of", "category", "tvl_usd", "change_1d", "mcap"))
    # A configured slug may name a parent ("aave") whose versions ("aave-v3") were chosen.
    missing = sorted(set(defillama.protocols) - {name for p in chosen for name in (p.slug, p.parent) if name})
    return MaterializeResult(metadata={
        "collected_at": now.isoformat(),  # what the checks judge: the rows of this run
        "as_of": str(today), "protocols": len(rows), "not_found": MetadataValue.json(missing),
        "rejected": MetadataValue.json(rejected),
        **shown,
    })


@asset(
    group_name=GROUP,
    kinds={"sql"},
    **definition(ProtocolFees, group=GROUP, source=SOURCE),
    description="Today's fees and revenue per protocol (/overview/fees, dataType dailyFees and dailyRevenue). "
    "An empty answer fails the run; a protocol with a negative total is rejected and listed in rejected.",
)
def defillama_fees(context: AssetExecutionContext, ledger_db: LedgerDatabase,
                   defillama: DefiLlamaResource) -> MaterializeResult:
    today, now = _today(), datetime.now(timezone.utc)
    rows, rejected = [], []
    with defillama.client() as client:
        for data_type in ("fees", "revenue"):
            fees, not_facts = _facts(context, client.fees(data_type), fees_problem, client.fees_url(data_type))
            rejected += not_facts
            rows += [
                {"slug": f.slug, "data_type": f.data_type, "as_of": today, "name": f.name, "category": f.category,
                 "total_24h": f.total_24h, "total_7d": f.total_7d, "total_30d": f.total_30d, "collected_at": now}
                for f in fees
            ]
    with ledger_db.engine().begin() as conn:
        _replace(conn, ProtocolFees, rows, ("slug", "data_type", "as_of"), ProtocolFees.as_of == today)
        shown = standard(conn, ProtocolFees, newest=("as_of", "total_24h"),
                         columns=("slug", "data_type", "as_of", "total_24h", "total_7d", "total_30d"))
    return MaterializeResult(metadata={
        "as_of": str(today), "rows": len(rows), "rejected": MetadataValue.json(rejected),
        **shown,
    })


@asset(
    group_name=GROUP,
    kinds={"sql"},
    **definition(StablecoinSupply, group=GROUP, source=SOURCE),
    description="Today's circulating supply per stablecoin (stablecoins.llama.fi). An empty answer fails the run; "
    "a stablecoin with a negative supply or price is rejected and listed in rejected.",
)
def defillama_stablecoins(context: AssetExecutionContext, ledger_db: LedgerDatabase,
                          defillama: DefiLlamaResource) -> MaterializeResult:
    today, now = _today(), datetime.now(timezone.utc)
    with defillama.client() as client:
        coins, rejected = _facts(context, client.stablecoins(), stablecoin_problem, client.stablecoins_url())
    rows = [
        {"stablecoin_id": s.id, "as_of": today, "symbol": s.symbol, "name": s.name, "peg_type": s.peg_type,
         "circulating": s.circulating_usd, "price": s.price, "collected_at": now}
        for s in coins
    ]
    with ledger_db.engine().begin() as conn:
        _replace(conn, StablecoinSupply, rows, ("stablecoin_id", "as_of"), StablecoinSupply.as_of == today)
        shown = standard(conn, StablecoinSupply, newest=("as_of", "circulating"),
                         columns=("symbol", "name", "as_of", "circulating", "price", "peg_type"))
    return MaterializeResult(metadata={
        "as_of": str(today), "stablecoins": len(rows), "rejected": MetadataValue.json(rejected),
        **shown,
    })


ASSETS = [defillama_chain_tvl, defillama_protocols, defillama_fees, defillama_stablecoins]
