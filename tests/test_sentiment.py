"""The sentiment scorer (omc_pipelines/sources/sentiment.py): VADER's compound score,
its adjustment by votes, and the engagement weight of an item."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from omc_pipelines.sources import sentiment
from omc_pipelines.sources.human import SENTIMENT_TEXT_CHARS, HumanItem
from omc_pipelines.sources.sentiment import adjust, adjusted_score, engagement_weight, score

POSITIVE = [
    "Bitcoin surges to a record high as ETF inflows soar",
    "Great news: Solana upgrade ships and the network is faster than ever!",
    "Just bought my first whole coin. Feels amazing, thank you all!",
]
NEGATIVE = [
    "Exchange hacked, millions stolen; crypto crashes",
    "Ethereum plunges after a devastating exploit drains the bridge",
    "I lost everything on a scam token. Terrible, awful lesson.",
]
NEUTRAL = ["Ethereum developers schedule a call for Tuesday", "The SEC extended its review period by 45 days"]


@pytest.mark.parametrize("text", POSITIVE)
def test_clearly_positive_text_scores_positive(text):
    assert 0.3 < score(text) <= 1.0


@pytest.mark.parametrize("text", NEGATIVE)
def test_clearly_negative_text_scores_negative(text):
    assert -1.0 <= score(text) < -0.3


@pytest.mark.parametrize("text", NEUTRAL)
def test_plain_statements_score_near_zero(text):
    assert abs(score(text)) < 0.2


def test_market_words_vader_does_not_know_are_rated():
    # VADER's own lexicon rates none of these: without the market lexicon each would score 0.
    assert score("Bitcoin rallies") > 0.2 and score("bullish on ETH") > 0.2
    assert score("Dogecoin plunges") < -0.2 and score("bearish on SOL") < -0.2
    # VADER's own ratings stand: "crash" keeps its value, only missing words are added
    assert sentiment._get_analyzer().lexicon["crash"] == -1.7


def test_empty_text_scores_zero_and_the_analyzer_is_made_once():
    assert score("") == 0.0 and score("   \n") == 0.0
    assert sentiment._get_analyzer() is sentiment._get_analyzer()


def test_scores_stay_in_range_even_for_long_ranting_text():
    rant = " ".join(NEGATIVE * 30) + "!!!"
    praise = " ".join(POSITIVE * 30) + "!!!"
    assert -1.0 <= score(rant) < 0 < score(praise) <= 1.0


TEXT = "Bitcoin rallies as buyers return"


def test_no_votes_change_nothing():
    base = score(TEXT)
    assert adjusted_score(TEXT) == base == adjusted_score(TEXT, {}) == adjusted_score(TEXT, {"comments": 40})
    assert adjusted_score(TEXT, {"upvote_ratio_pct": 100, "score": 500, "num_comments": 50}) == pytest.approx(base)


def test_cryptopanic_votes_move_the_score_their_way():
    base = score(TEXT)
    bulls = adjusted_score(TEXT, {"positive": 40, "liked": 10, "negative": 1})
    bears = adjusted_score(TEXT, {"positive": 1, "negative": 40, "disliked": 10})
    assert bears < base < bulls
    # more votes say more: the same split with ten times the votes moves further
    few = adjusted_score(TEXT, {"positive": 0, "negative": 3})
    many = adjusted_score(TEXT, {"positive": 0, "negative": 30})
    assert many < few < base
    # votes can flip a mildly positive headline, but never more than half-way to the crowd
    assert many < 0
    assert many >= 0.5 * base + 0.5 * -1.0


def test_important_amplifies_and_toxic_dampens():
    base = score(TEXT)
    assert base > 0
    assert adjusted_score(TEXT, {"important": 20}) > base
    assert 0 < adjusted_score(TEXT, {"toxic": 20}) < base
    negative = "Exchange hacked, funds stolen"
    assert adjusted_score(negative, {"important": 20}) < score(negative) < 0


def test_reddit_downvoted_posts_count_less():
    base = score(TEXT)
    loved = adjusted_score(TEXT, {"score": 900, "num_comments": 200, "upvote_ratio_pct": 97})
    disputed = adjusted_score(TEXT, {"score": 900, "num_comments": 200, "upvote_ratio_pct": 30})
    barely_seen = adjusted_score(TEXT, {"score": 1, "num_comments": 0, "upvote_ratio_pct": 30})
    assert 0 < disputed < barely_seen < base and disputed < loved <= base
    # the raw ratio works too
    assert adjusted_score(TEXT, {"score": 900, "num_comments": 200, "upvote_ratio": 0.30}) == pytest.approx(disputed)


EXTREMES = [
    {"positive": 10**9, "liked": 10**9, "important": 10**9},
    {"negative": 10**9, "disliked": 10**9, "important": 10**9, "toxic": 0},
    {"positive": 10**9, "negative": 10**9, "toxic": 10**9},
    {"score": 10**9, "num_comments": 10**9, "upvote_ratio_pct": 0},
    {"score": -500, "upvote_ratio_pct": 250},
    {"positive": -5, "negative": "many", "important": float("nan"), "toxic": True},
]


@pytest.mark.parametrize("engagement", EXTREMES)
@pytest.mark.parametrize("text", [POSITIVE[0], NEGATIVE[0], NEUTRAL[0], "!!!!! AMAZING WONDERFUL BEST EVER !!!!!"])
def test_adjusted_score_stays_in_range(text, engagement):
    assert -1.0 <= adjusted_score(text, engagement) <= 1.0


@pytest.mark.parametrize("base", [-1.0, -0.4, 0.0, 0.4, 1.0, 7.0, -7.0])
def test_adjust_is_pure_and_bounded(base):
    votes = {"positive": 30, "negative": 2, "important": 50}
    first = adjust(base, votes)
    assert first == adjust(base, dict(votes)) and -1.0 <= first <= 1.0
    assert votes == {"positive": 30, "negative": 2, "important": 50}  # the input is not touched


def test_engagement_weight():
    assert engagement_weight({}) == 1.0 == engagement_weight(None)
    assert engagement_weight({"score": -40, "num_comments": 0}) == 1.0  # downvoted below zero still weighs 1
    reddit_small = engagement_weight({"score": 5, "num_comments": 2, "upvote_ratio_pct": 90})
    reddit_big = engagement_weight({"score": 5000, "num_comments": 800, "upvote_ratio_pct": 90})
    assert 1.0 < reddit_small < reddit_big
    assert reddit_big == pytest.approx(1 + math.log1p(5800))  # the ratio is not a count
    panic = engagement_weight({"positive": 14, "negative": 1, "important": 3, "liked": 9, "saved": 2, "comments": 1})
    assert panic == pytest.approx(1 + math.log1p(30))
    # logarithmic: a hundred times the engagement is not a hundred times the weight
    assert reddit_big / reddit_small < 5


def test_sentiment_text_is_the_title_and_the_start_of_the_body():
    item = HumanItem(source="reddit", external_id="t3_x", title="ETH to the moon", text="word " * 1000, url="",
                     author=None, published_at=datetime(2025, 6, 10, tzinfo=timezone.utc), currencies=("ETH",))
    assert item.sentiment_text.startswith("ETH to the moon. word word")
    assert len(item.sentiment_text) == len("ETH to the moon. ") + SENTIMENT_TEXT_CHARS
    bare = HumanItem(source="news:x", external_id="u", title="Bitcoin rallies!", text="", url="", author=None,
                     published_at=datetime(2025, 6, 10, tzinfo=timezone.utc), currencies=())
    assert bare.sentiment_text == "Bitcoin rallies!"
