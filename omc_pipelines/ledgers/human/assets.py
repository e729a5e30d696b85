"""The Human ledger: what people say (news feeds, CryptoPanic, Reddit), scored for
sentiment, and the daily per-coin aggregate the trading side reads.

A source without credentials is "not configured": its asset succeeds with that
status in its metadata, and its `source_configured` check (a warning) shows it in
the UI; it never fails or blocks the rest of the ledger.
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from omc_pipelines.db import upsert
from omc_pipelines.db.models import CoinSentimentDaily, HumanItem
from omc_pipelines.metadata import definition, per_partition_counts, standard
from omc_pipelines.partitions import DAILY
from omc_pipelines.resources import CryptoPanicResource, LedgerDatabase, NewsFeedsResource, RedditResource
from omc_pipelines.sources.human import NotConfigured
from omc_pipelines.sources.sentiment import adjusted_score, engagement_weight

GROUP = "human"
ITEM_KEY = ("source", "external_id")
# Votes and scores move after publication: a re-run refreshes them and the scores.
ITEM_UPDATE = ("title", "text", "url", "author", "currencies", "engagement", "sentiment", "weight", "collected_at")
# An item counts as positive or negative past these scores (VADER's usual cut-offs).
POSITIVE, NEGATIVE = 0.05, -0.05
NOT_CONFIGURED = "not configured"


def item_rows(items, collected_at: datetime) -> list[dict]:
    return [
        {"source": i.source, "external_id": i.external_id, "title": i.title, "text": i.text, "url": i.url,
         "author": i.author, "published_at": i.published_at, "currencies": list(i.currencies),
         "engagement": dict(i.engagement), "sentiment": adjusted_score(i.sentiment_text, i.engagement),
         "weight": engagement_weight(i.engagement), "collected_at": collected_at}
        for i in items
    ]


# Each asset's rows of human_items: news items are "news:<feed>".
SOURCES = {"news_items": HumanItem.source.like("news:%"), "cryptopanic_posts": HumanItem.source == "cryptopanic",
           "reddit_posts": HumanItem.source == "reddit"}


def _shown(conn: sa.Connection, asset_name: str) -> dict:
    return standard(conn, HumanItem, newest=("published_at", "id"), where=SOURCES[asset_name],
                    columns=("source", "published_at", "sentiment", "currencies", "title"))


def _store(context: AssetExecutionContext, ledger_db: LedgerDatabase, items, extra: dict) -> MaterializeResult:
    rows = item_rows(items, datetime.now(timezone.utc))
    with ledger_db.engine().begin() as conn:
        upsert(conn, HumanItem.__table__, rows, ITEM_KEY, update=ITEM_UPDATE)
        shown = _shown(conn, context.asset_key.path[-1])
    return MaterializeResult(metadata={"status": "ok", "items": len(rows), **extra, **shown})


def _not_configured(context: AssetExecutionContext, ledger_db: LedgerDatabase, exc: NotConfigured) -> MaterializeResult:
    context.log.warning(str(exc))
    with ledger_db.engine().connect() as conn:
        shown = _shown(conn, context.asset_key.path[-1])
    return MaterializeResult(metadata={"status": NOT_CONFIGURED, "how_to_configure": str(exc), "items": 0, **shown})


@asset(group_name=GROUP, kinds={"sql"}, **definition(HumanItem, group=GROUP, source="news"),
       description="Entries of the news sites' RSS feeds (OMC_NEWS_FEEDS), keyed by link (else guid), with "
       "sentiment; entries left out (no link or guid, repeated) are counted per feed in dropped_entries.")
def news_items(context: AssetExecutionContext, ledger_db: LedgerDatabase, news: NewsFeedsResource) -> MaterializeResult:
    with news.client() as client:
        fetched = client.fetch_all()
    items, errors = fetched.all_items, fetched.errors
    for feed, error in errors.items():
        context.log.warning(f"feed {feed} failed: {error}")
    for feed, dropped in fetched.dropped.items():
        reasons = ", ".join(f"{count} {reason}" for reason, count in dropped.items())
        context.log.warning(f"feed {feed}: entries left out: {reasons}")
    if errors and not items:
        raise RuntimeError(f"every news feed failed: {'; '.join(f'{f}: {e}' for f, e in errors.items())}")
    return _store(context, ledger_db, items, {"failed_feeds": MetadataValue.json({f: str(e) for f, e in errors.items()}),
                                     "dropped_entries": MetadataValue.json(fetched.dropped)})


@asset(group_name=GROUP, kinds={"sql"}, **definition(HumanItem, group=GROUP, source="cryptopanic"),
       description="CryptoPanic posts with their votes and currencies (needs OMC_CRYPTOPANIC_TOKEN).")
def cryptopanic_posts(context: AssetExecutionContext, ledger_db: LedgerDatabase, cryptopanic: CryptoPanicResource) -> MaterializeResult:
    try:
        with cryptopanic.client() as client:
            items = client.posts()
    except NotConfigured as exc:
        return _not_configured(context, ledger_db, exc)
    return _store(context, ledger_db, items, {})


@asset(group_name=GROUP, kinds={"sql"}, **definition(HumanItem, group=GROUP, source="reddit"),
       description="New posts of the configured subreddits (needs OMC_REDDIT_CLIENT_ID and OMC_REDDIT_CLIENT_SECRET).")
def reddit_posts(context: AssetExecutionContext, ledger_db: LedgerDatabase, reddit: RedditResource) -> MaterializeResult:
    try:
        with reddit.client() as client:
            items = [post for subreddit in reddit.subreddits for post in client.new_posts(subreddit)]
    except NotConfigured as exc:
        return _not_configured(context, ledger_db, exc)
    return _store(context, ledger_db, items, {"subreddits": MetadataValue.json(list(reddit.subreddits))})


def daily_sentiment(items):
    """Per coin and UTC day: count, mean, engagement-weighted mean, share positive and negative.
    ``items`` is a DataFrame of published_at, currencies (a list), sentiment and weight."""
    per_coin = items.explode("currencies").dropna(subset=["currencies"]).rename(columns={"currencies": "coin"})
    per_coin = per_coin.assign(
        day=per_coin["published_at"].dt.date,
        weighted=per_coin["sentiment"] * per_coin["weight"],
        positive=per_coin["sentiment"] > POSITIVE,
        negative=per_coin["sentiment"] < NEGATIVE,
    )
    grouped = per_coin.groupby(["coin", "day"]).agg(
        items=("sentiment", "size"), mean_sentiment=("sentiment", "mean"), weighted=("weighted", "sum"),
        total_weight=("weight", "sum"), share_positive=("positive", "mean"), share_negative=("negative", "mean"),
    ).reset_index()
    grouped["weighted_sentiment"] = grouped["weighted"] / grouped["total_weight"]
    return grouped.drop(columns="weighted")


@asset(
    group_name=GROUP,
    kinds={"pandas", "sql"},
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[news_items, cryptopanic_posts, reddit_posts],
    **definition(CoinSentimentDaily, group=GROUP, source="human_items"),
    description="Per coin per UTC day: items, mean and engagement-weighted sentiment, share positive and "
    "negative. What the trading side reads.",
)
def coin_sentiment_daily(context: AssetExecutionContext, ledger_db: LedgerDatabase) -> MaterializeResult:
    window = context.partition_time_window
    start, end = window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)
    import pandas as pd  # here, not at import: runs of the other ledgers start sooner

    h = HumanItem
    with ledger_db.engine().begin() as conn:
        found = conn.execute(
            sa.select(h.published_at, h.currencies, h.sentiment, h.weight).where(h.published_at >= start, h.published_at < end)
        ).all()
        items = pd.DataFrame(found, columns=["published_at", "currencies", "sentiment", "weight"])
        items["published_at"] = pd.to_datetime(items["published_at"], utc=True)
        aggregate = daily_sentiment(items) if not items.empty else pd.DataFrame()
        rows = aggregate.assign(computed_at=datetime.now(timezone.utc)).to_dict("records") if not aggregate.empty else []
        c = CoinSentimentDaily
        conn.execute(sa.delete(c).where(c.day >= start.date(), c.day < end.date()))
        upsert(conn, c.__table__, rows, ("coin", "day"))
        in_window = sa.and_(c.day >= start.date(), c.day < end.date())
        shown = standard(conn, c, newest=("day", "items"), where=in_window)
        if len(context.partition_keys) > 1:
            found = conn.execute(sa.select(c.day, sa.func.count()).where(in_window).group_by(c.day)).all()
            per_partition_counts(context, {day.isoformat(): n for day, n in found})
    return MaterializeResult(metadata={"items": len(items), "coin_days": len(rows), **shown})


ASSETS = [news_items, cryptopanic_posts, reddit_posts, coin_sentiment_daily]
