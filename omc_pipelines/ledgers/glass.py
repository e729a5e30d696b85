"""The Glass ledger: on-chain fundamentals from DeFiLlama.

Chain TVL has a daily history, so it is a daily-partitioned asset that backfills
from it. The rest is what DeFiLlama knows only "now": stored as of today's UTC
date, and a re-run replaces today's rows and nothing else.
"""

from datetime import date, datetime, timezone

import sqlalchemy as sa
from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from omc_pipelines.db import upsert
from omc_pipelines.db.models import ChainTvl, ProtocolFees, ProtocolSnapshot, StablecoinSupply
from omc_pipelines.metadata import preview
from omc_pipelines.partitions import DAILY
from omc_pipelines.resources import DefiLlamaResource, LedgerDatabase
from omc_pipelines.sources.defillama import select_protocols

GROUP = "glass"


def _replace(conn: sa.Connection, model, rows: list[dict], key: tuple[str, ...], where) -> int:
    """Make the rows matching ``where`` exactly ``rows``: what the source dropped goes too."""
    deleted = conn.execute(sa.delete(model).where(where)).rowcount
    upsert(conn, model.__table__, rows, key)
    return deleted


@asset(
    group_name=GROUP,
    kinds={"sql"},
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    description="Daily TVL per configured chain (OMC_DEFILLAMA_CHAINS) from /v2/historicalChainTvl; "
    "a backfill of any range is one run, one request per chain.",
)
def defillama_chain_tvl(context: AssetExecutionContext, ledger_db: LedgerDatabase, defillama: DefiLlamaResource) -> MaterializeResult:
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    now = datetime.now(timezone.utc)
    rows = []
    with defillama.client() as client:
        for chain in defillama.chains:
            rows += [
                {"chain": point.chain, "day": point.day, "tvl_usd": point.tvl_usd, "collected_at": now}
                for point in client.chain_tvl(chain) if first <= point.day < end
            ]
    with ledger_db.engine().begin() as conn:
        in_window = sa.and_(ChainTvl.day >= first, ChainTvl.day < end, ChainTvl.chain.in_(defillama.chains))
        deleted = _replace(conn, ChainTvl, rows, ("chain", "day"), in_window)
    return MaterializeResult(metadata={
        "days": (end - first).days, "rows": len(rows), "replaced": deleted,
        "preview": preview(sorted(rows, key=lambda r: (r["day"], r["chain"]), reverse=True)),
    })


def _today() -> date:
    return datetime.now(timezone.utc).date()


@asset(
    group_name=GROUP,
    kinds={"sql"},
    description="Today's TVL, category and chains of the configured protocols (OMC_DEFILLAMA_PROTOCOLS) "
    "plus the top N by TVL (OMC_DEFILLAMA_TOP_PROTOCOLS).",
)
def defillama_protocols(ledger_db: LedgerDatabase, defillama: DefiLlamaResource) -> MaterializeResult:
    today, now = _today(), datetime.now(timezone.utc)
    with defillama.client() as client:
        chosen = select_protocols(client.protocols(), defillama.protocols, defillama.top_protocols)
    rows = [
        {"slug": p.slug, "as_of": today, "name": p.name, "symbol": p.symbol, "category": p.category,
         "chains": list(p.chains), "tvl_usd": p.tvl_usd, "change_1d": p.change_1d, "mcap": p.mcap, "collected_at": now}
        for p in chosen
    ]
    with ledger_db.engine().begin() as conn:
        _replace(conn, ProtocolSnapshot, rows, ("slug", "as_of"), ProtocolSnapshot.as_of == today)
    # A configured slug may name a parent ("aave") whose versions ("aave-v3") were chosen.
    missing = sorted(set(defillama.protocols) - {name for p in chosen for name in (p.slug, p.parent) if name})
    return MaterializeResult(metadata={
        "as_of": str(today), "protocols": len(rows), "not_found": MetadataValue.json(missing),
        "preview": preview([{k: r[k] for k in ("slug", "category", "tvl_usd", "change_1d")} for r in rows]),
    })


@asset(
    group_name=GROUP,
    kinds={"sql"},
    description="Today's fees and revenue per protocol (/overview/fees, dataType dailyFees and dailyRevenue).",
)
def defillama_fees(ledger_db: LedgerDatabase, defillama: DefiLlamaResource) -> MaterializeResult:
    today, now = _today(), datetime.now(timezone.utc)
    rows = []
    with defillama.client() as client:
        for data_type in ("fees", "revenue"):
            rows += [
                {"slug": f.slug, "data_type": f.data_type, "as_of": today, "name": f.name, "category": f.category,
                 "total_24h": f.total_24h, "total_7d": f.total_7d, "total_30d": f.total_30d, "collected_at": now}
                for f in client.fees(data_type)
            ]
    with ledger_db.engine().begin() as conn:
        _replace(conn, ProtocolFees, rows, ("slug", "data_type", "as_of"), ProtocolFees.as_of == today)
    return MaterializeResult(metadata={
        "as_of": str(today), "rows": len(rows),
        "preview": preview(sorted(({k: r[k] for k in ("slug", "data_type", "total_24h")} for r in rows),
                                  key=lambda r: -(r["total_24h"] or 0))),
    })


@asset(
    group_name=GROUP,
    kinds={"sql"},
    description="Today's circulating supply per stablecoin (stablecoins.llama.fi).",
)
def defillama_stablecoins(ledger_db: LedgerDatabase, defillama: DefiLlamaResource) -> MaterializeResult:
    today, now = _today(), datetime.now(timezone.utc)
    with defillama.client() as client:
        coins = client.stablecoins()
    rows = [
        {"stablecoin_id": s.id, "as_of": today, "symbol": s.symbol, "name": s.name, "peg_type": s.peg_type,
         "circulating": s.circulating_usd, "price": s.price, "collected_at": now}
        for s in coins
    ]
    with ledger_db.engine().begin() as conn:
        _replace(conn, StablecoinSupply, rows, ("stablecoin_id", "as_of"), StablecoinSupply.as_of == today)
    return MaterializeResult(metadata={
        "as_of": str(today), "stablecoins": len(rows),
        "preview": preview(sorted(({k: r[k] for k in ("symbol", "circulating", "price")} for r in rows),
                                  key=lambda r: -(r["circulating"] or 0))),
    })


ASSETS = [defillama_chain_tvl, defillama_protocols, defillama_fees, defillama_stablecoins]
