"""Dagster resources: how assets reach the ledger database and the sources.

Their fields are the configuration (see ``settings.py``); secrets arrive as
``EnvVar`` so that the UI shows the variable's name, never its value.
"""

from __future__ import annotations

import sqlalchemy as sa
from dagster import ConfigurableResource

from omc_pipelines.db import ready_engine
from omc_pipelines.sources.coinspot import CoinSpotPublic
from omc_pipelines.sources.http import HttpSource


class LedgerDatabase(ConfigurableResource):
    """The ledgers' database (``OMC_DATABASE_URL``)."""

    url: str
    # Migrate on first use: on for the embedded SQLite default, off for a
    # production database, whose schema changes when `omc db upgrade` says so.
    auto_migrate: bool = True

    def engine(self) -> sa.Engine:
        return ready_engine(self.url, self.auto_migrate)


class CoinSpotResource(ConfigurableResource):
    """CoinSpot's public API (``OMC_COINSPOT_URL``) and the coins we watch."""

    base_url: str = "https://www.coinspot.com.au"
    watchlist: list[str] = []
    rate_limit: float = 10.0
    timeout: float = 10.0
    retries: int = 4
    backoff: float = 0.5

    def client(self) -> CoinSpotPublic:
        return CoinSpotPublic(
            HttpSource(
                "coinspot", self.base_url, timeout=self.timeout, retries=self.retries,
                backoff=self.backoff, rate_limit=self.rate_limit,
            )
        )
