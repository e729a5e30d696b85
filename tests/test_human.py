"""The Human ledger's assets against the sandbox, on both databases."""

import logging
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from dagster import materialize

from omc_pipelines.db.models import CoinSentimentDaily, HumanItem
from omc_pipelines.ledgers.human import assets as human, checks
from omc_pipelines.settings import parse_feeds
from omc_pipelines.resources import CryptoPanicResource, LedgerDatabase, NewsFeedsResource, RedditResource
from omc_pipelines.sandbox import Fault
from omc_pipelines.sandbox.cryptopanic import CRYPTOPANIC_TOKEN
from omc_pipelines.sandbox.reddit import REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET

pytestmark = pytest.mark.integration
ITEMS = [human.news_items, human.cryptopanic_posts, human.reddit_posts]


def human_resources(database_url, sandbox, configured=True):
    env = sandbox.human.env(sandbox.url)
    return {
        "ledger_db": LedgerDatabase(url=database_url, auto_migrate=False),
        "news": NewsFeedsResource(feeds=env["OMC_NEWS_FEEDS"], retries=1, backoff=0.01),
        "cryptopanic": CryptoPanicResource(base_url=sandbox.url, token=CRYPTOPANIC_TOKEN if configured else None,
                                           retries=1, backoff=0.01),
        "reddit": RedditResource(base_url=sandbox.url, auth_url=sandbox.url,
                                 client_id=REDDIT_CLIENT_ID if configured else None,
                                 client_secret=REDDIT_CLIENT_SECRET if configured else None,
                                 subreddits=["Bitcoin", "solana"], retries=1, backoff=0.01),
    }


def checks_of(*assets):
    keys = {a.key for a in assets}
    return [c for c in checks.ALL if {k.asset_key for k in c.check_keys} <= keys]


def items(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(HumanItem.__table__)).all()


def test_every_source_lands_scored_and_a_rerun_adds_nothing(database_url, engine, sandbox):
    resources = human_resources(database_url, sandbox)
    result = materialize(ITEMS + checks_of(*ITEMS), resources=resources)
    assert result.success
    stored = items(engine)
    sources = {i.source for i in stored}
    assert {"cryptopanic", "reddit"} <= sources and any(s.startswith("news:") for s in sources)
    assert all(-1 <= i.sentiment <= 1 and i.weight >= 1 for i in stored)
    assert all(i.published_at.tzinfo is not None for i in stored)
    assert any("BTC" in i.currencies for i in stored)
    assert all("<" not in i.text for i in stored if i.source.startswith("news:"))  # HTML stripped
    assert all(e.passed for e in result.get_asset_check_evaluations())

    assert materialize(ITEMS, resources=resources).success
    assert len(items(engine)) == len(stored)


def test_sources_without_credentials_are_shown_not_configured_and_block_nothing(database_url, engine, sandbox):
    resources = human_resources(database_url, sandbox, configured=False)
    result = materialize(ITEMS + checks_of(*ITEMS), resources=resources)
    assert result.success
    for node in ("cryptopanic_posts", "reddit_posts"):
        metadata = result.asset_materializations_for_node(node)[0].metadata
        assert metadata["status"].value == human.NOT_CONFIGURED and metadata["items"].value == 0
    warnings = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    assert not warnings[("cryptopanic_posts", "source_configured")].passed
    assert "OMC_CRYPTOPANIC_TOKEN" in warnings[("cryptopanic_posts", "source_configured")].metadata["status"].value
    assert not warnings[("reddit_posts", "source_configured")].passed
    assert not sandbox.server.requests_to("/api/developer") and not sandbox.server.requests_to("/api/v1/access_token")
    assert {i.source for i in items(engine)} == {i.source for i in items(engine) if i.source.startswith("news:")} != set()


def test_a_refusal_says_so_without_the_secret(database_url, engine, sandbox):
    resources = human_resources(database_url, sandbox)
    resources["cryptopanic"] = CryptoPanicResource(base_url=sandbox.url, token="wrong-token-s3cret", retries=0)
    with pytest.raises(Exception) as refused:
        materialize([human.cryptopanic_posts], resources=resources)
    assert "403" in str(refused.value) or "refused" in str(refused.value).lower()
    assert "wrong-token-s3cret" not in str(refused.value) and "wrong-token-s3cret" not in repr(refused.value)
    assert not items(engine)


def test_one_broken_feed_loses_nothing_of_the_others(database_url, engine, sandbox):
    resources = human_resources(database_url, sandbox)
    sandbox.inject(Fault("/feeds/decrypt", "malformed", times=0))
    result = materialize([human.news_items], resources=resources)
    assert result.success
    failed = result.asset_materializations_for_node("news_items")[0].metadata["failed_feeds"].value
    assert list(failed) == ["decrypt"]
    assert {i.source for i in items(engine)} == {f"news:{n}" for n in parse_feeds(resources["news"].feeds) if n != "decrypt"}


def test_entries_a_feed_leaves_out_are_counted_in_the_metadata_and_logged(database_url, engine, sandbox, instance):
    resources = human_resources(database_url, sandbox)
    feed = sandbox.human.news.feeds["cointelegraph"]
    feed.items.insert(0, "\n<item><title>Bitcoin note without a link</title><description>x</description></item>")
    feed.items.insert(0, '\n<item><title>Guid only</title>'
                         '<guid isPermaLink="false">https://cointelegraph.com/news/guid-only</guid></item>')
    result = materialize([human.news_items], resources=resources, instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("news_items")[0].metadata
    assert metadata["dropped_entries"].value == {"cointelegraph": {"no link or guid": 1}}
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any("cointelegraph" in w and "1 no link or guid" in w for w in warnings)
    stored = {i.external_id: i for i in items(engine) if i.source == "news:cointelegraph"}
    assert stored["https://cointelegraph.com/news/guid-only"].title == "Guid only"
    assert not any(i.title.startswith("Bitcoin note") for i in stored.values())


# --- wrong answers are refused, never stored as items ---------------------------------------------


def failure_message(result) -> str:
    [failure] = result.get_step_failure_events()
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(f"{error.cls_name}: {error.message}")
        error = error.cause
    return "\n".join(messages)


@pytest.mark.parametrize("asset, path, variant, field", [
    (human.cryptopanic_posts, "/api/developer/v2/posts/", "negative", "id"),
    (human.cryptopanic_posts, "/api/developer/v2/posts/", "zero", "id"),
    (human.reddit_posts, "/r/", "zero", "created_utc"),  # 1970: before Reddit existed
])
def test_posts_with_impossible_ids_or_dates_fail_the_run_and_change_nothing(database_url, engine, sandbox, asset, path,
                                                                            variant, field):
    resources = human_resources(database_url, sandbox)
    assert materialize([asset], resources=resources).success
    before = sorted(items(engine))
    sandbox.inject(Fault(path, "wrong_shape", times=0, variant=variant))

    result = materialize([asset], resources=resources, raise_on_error=False)

    assert not result.success
    assert sorted(items(engine)) == before  # no item added, no engagement overwritten
    message = failure_message(result)
    assert "SourcePayloadError" in message and f".{field} is " in message and f"{sandbox.url}{path}" in message


def test_a_feed_cut_short_is_skipped_and_listed_and_its_items_kept(database_url, engine, sandbox):
    resources = human_resources(database_url, sandbox)
    assert materialize([human.news_items], resources=resources).success
    before = sorted(items(engine))
    assert any(i.source == "news:cointelegraph" for i in before)
    sandbox.inject(Fault("/feeds/cointelegraph", "truncated", times=0))

    result = materialize([human.news_items], resources=resources)

    assert result.success  # the other feeds are read
    # No entry of the half feed stored again (with its text cut), collected_at included.
    assert [i for i in sorted(items(engine)) if i.source == "news:cointelegraph"] == [
        i for i in before if i.source == "news:cointelegraph"]
    failed = result.asset_materializations_for_node("news_items")[0].metadata["failed_feeds"].value
    assert list(failed) == ["cointelegraph"]
    assert failed["cointelegraph"].startswith("news:cointelegraph: ") and "cut short" in failed["cointelegraph"]


def test_daily_sentiment_aggregates_per_coin_weighted_by_engagement(database_url, engine):
    day = datetime(2026, 3, 1, tzinfo=timezone.utc)
    now = datetime.now(timezone.utc)

    def item(n, coins, sentiment, weight, hours=1):
        return dict(source="reddit", external_id=f"t3_{n}", title="t", text="", url=None, author=None,
                    published_at=day + timedelta(hours=hours), currencies=coins, engagement={}, sentiment=sentiment,
                    weight=weight, collected_at=now)

    rows = [item(1, ["BTC"], 0.5, 1.0), item(2, ["BTC", "ETH"], -0.5, 3.0), item(3, ["ETH"], 0.0, 1.0),
            item(4, [], 0.9, 1.0), item(5, ["BTC"], 1.0, 1.0, hours=25)]  # no coin; the next day
    with engine.begin() as conn:
        conn.execute(sa.insert(HumanItem), rows)
    resources = {"ledger_db": LedgerDatabase(url=database_url, auto_migrate=False)}
    result = materialize([human.coin_sentiment_daily, *checks_of(human.coin_sentiment_daily)], resources=resources,
                         partition_key="2026-03-01")
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    with engine.connect() as conn:
        stored = {r.coin: r for r in conn.execute(sa.select(CoinSentimentDaily.__table__))}
    assert set(stored) == {"BTC", "ETH"}
    btc = stored["BTC"]
    assert (btc.items, btc.day.isoformat()) == (2, "2026-03-01")
    assert btc.mean_sentiment == pytest.approx(0.0)
    assert btc.weighted_sentiment == pytest.approx((0.5 * 1 + -0.5 * 3) / 4)
    assert (btc.share_positive, btc.share_negative) == (0.5, 0.5)
    assert stored["ETH"].share_negative == 0.5 and stored["ETH"].total_weight == 4.0
    # A re-run of the day replaces that day's rows and nothing else.
    assert materialize([human.coin_sentiment_daily], resources=resources, partition_key="2026-03-01").success
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(CoinSentimentDaily)).scalar_one() == 2
