"""The Glass ledger's checks: TVL never negative, one row per natural key."""

from __future__ import annotations

import sqlalchemy as sa
from dagster import AssetCheckResult, AssetChecksDefinition, asset_check

from omc_pipelines.checks import no_duplicate_keys, written_by_latest_run
from omc_pipelines.db.models import ChainTvl, ProtocolFees, ProtocolSnapshot, StablecoinSupply
from omc_pipelines.ledgers.glass import assets as glass
from omc_pipelines.resources import LedgerDatabase


def tvl_not_negative(asset, model) -> AssetChecksDefinition:
    @asset_check(asset=asset, name="tvl_not_negative", blocking=True,
                 description="No TVL below zero among the rows the latest run wrote.")
    def _check(context, ledger_db: LedgerDatabase) -> AssetCheckResult:
        collected_at = written_by_latest_run(context, asset)
        mine = model.collected_at == collected_at
        with ledger_db.engine().connect() as conn:
            written = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
            bad = conn.execute(sa.select(sa.func.count()).where(mine, model.tvl_usd < 0)).scalar_one()
        return AssetCheckResult(passed=bad == 0, metadata={"written": written, "negative": bad})

    return _check


ALL = [
    tvl_not_negative(glass.defillama_chain_tvl, ChainTvl),
    tvl_not_negative(glass.defillama_protocols, ProtocolSnapshot),
    no_duplicate_keys(glass.defillama_chain_tvl, ChainTvl.__table__, ("chain", "day")),
    no_duplicate_keys(glass.defillama_protocols, ProtocolSnapshot.__table__, ("slug", "as_of")),
    no_duplicate_keys(glass.defillama_fees, ProtocolFees.__table__, ("slug", "data_type", "as_of")),
    no_duplicate_keys(glass.defillama_stablecoins, StablecoinSupply.__table__, ("stablecoin_id", "as_of")),
]
