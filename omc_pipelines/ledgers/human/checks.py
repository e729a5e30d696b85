"""The Human ledger's checks: sentiment in range, credentials shown, one row per natural key."""

from __future__ import annotations

import sqlalchemy as sa
from dagster import AssetCheckResult, AssetChecksDefinition, asset_check

from omc_pipelines.checks import no_duplicate_keys, source_configured
from omc_pipelines.db.models import CoinSentimentDaily, HumanItem
from omc_pipelines.ledgers.human import assets as human
from omc_pipelines.resources import LedgerDatabase


def sentiment_in_range(asset, source_filter) -> AssetChecksDefinition:
    @asset_check(asset=asset, name="sentiment_in_range", blocking=True,
                 description="Every item's sentiment is within [-1, 1] and its weight at least 1.")
    def _check(ledger_db: LedgerDatabase) -> AssetCheckResult:
        h = HumanItem
        with ledger_db.engine().connect() as conn:
            bad = conn.execute(sa.select(sa.func.count()).where(
                source_filter, sa.or_(h.sentiment < -1, h.sentiment > 1, h.weight < 1))).scalar_one()
        return AssetCheckResult(passed=bad == 0, metadata={"out_of_range": bad})

    return _check


@asset_check(asset=human.coin_sentiment_daily, blocking=True,
             description="Means within [-1, 1], shares within [0, 1], at least one item per row.")
def sentiment_aggregate_in_range(ledger_db: LedgerDatabase) -> AssetCheckResult:
    c = CoinSentimentDaily
    with ledger_db.engine().connect() as conn:
        bad = conn.execute(sa.select(sa.func.count()).where(sa.or_(
            c.mean_sentiment < -1, c.mean_sentiment > 1, c.weighted_sentiment < -1, c.weighted_sentiment > 1,
            c.share_positive < 0, c.share_positive > 1, c.share_negative < 0, c.share_negative > 1, c.items < 1,
        ))).scalar_one()
    return AssetCheckResult(passed=bad == 0, metadata={"out_of_range": bad})


ALL = [
    sentiment_in_range(human.news_items, HumanItem.source.like("news:%")),
    sentiment_in_range(human.cryptopanic_posts, HumanItem.source == "cryptopanic"),
    sentiment_in_range(human.reddit_posts, HumanItem.source == "reddit"),
    source_configured(human.cryptopanic_posts, "cryptopanic", ("token",), "OMC_CRYPTOPANIC_TOKEN"),
    source_configured(human.reddit_posts, "reddit", ("client_id", "client_secret"),
                      "OMC_REDDIT_CLIENT_ID and OMC_REDDIT_CLIENT_SECRET"),
    sentiment_aggregate_in_range,
    no_duplicate_keys(human.news_items, HumanItem.__table__, human.ITEM_KEY),
    no_duplicate_keys(human.coin_sentiment_daily, CoinSentimentDaily.__table__, ("coin", "day")),
]
