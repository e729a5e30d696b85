"""Sentiment of short news and social text, and how much the crowd's votes change it.

The model is VADER (Hutto & Gilbert, 2014; the ``vaderSentiment`` package): a lexicon
and rules made for short social-media text, whose *compound* score is already in
[-1, 1]. One analyzer per process, built on first use (reading the lexicon takes about
30 ms). Its lexicon knows general English, not markets ("surges", "bullish", "plunges"
score 0), so :data:`MARKET_LEXICON` adds market and crypto words, on VADER's own scale
(-4..+4, like its entries "gain" 2.4, "crash" -1.7, "scam" -2.7). Only words VADER does
not already rate are added: its own ratings stand.

``score(text)`` is the compound score. ``adjusted_score(text, engagement)`` moves it by
what the votes say, and ``engagement_weight(engagement)`` says how much an item should
count in an average. All three are pure functions of their arguments (the analyzer is
a read-only model).

The adjustment (``K`` = :data:`PRIOR_VOTES` = 10 pseudo-votes, so that a few votes move
little and many votes move much; every step keeps the value in [-1, 1]):

1. CryptoPanic's sentiment votes. ``up = positive + liked``, ``down = negative + disliked``,
   ``n = up + down``. The crowd's polarity ``c = (up - down) / n`` and its confidence
   ``w = n / (n + K)``; the score becomes ``(1 - w/2) * s + (w/2) * c``, a convex mix in
   which the crowd never has more than half the say.
2. CryptoPanic's ``important`` (i) and ``toxic`` (t) votes scale the magnitude:
   ``x * (1 + 0.5 * i/(i+K)) * (1 - 0.5 * t/(t+K))``, then clipped to [-1, 1]. "Important"
   makes the tone count more; "toxic" (the crowd calls the post trolling or FUD) less.
3. Reddit's upvote ratio r (``upvote_ratio_pct``/100, or ``upvote_ratio``) with
   ``n = max(score, 0) + num_comments`` as the evidence: a post the community votes down
   is disputed, so its tone counts less: ``x * (1 - w * (1 - r))`` with ``w = n/(n+K)``.
   r = 1 keeps the score; r = 0 with much evidence brings it near 0.

``engagement_weight = 1 + log1p(reach)``, where ``reach`` is Reddit's ``max(score, 0) +
num_comments``, or CryptoPanic's votes summed (``comments`` included); no engagement
(news feeds) weighs 1. Logarithmic, so that one viral post does not drown a day.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

PRIOR_VOTES = 10.0
CRYPTOPANIC_VOTES = ("positive", "negative", "important", "liked", "disliked", "lol", "toxic", "saved", "comments")

# Words VADER's lexicon lacks, rated on its scale. Single tokens only: VADER reads words.
MARKET_LEXICON: dict[str, float] = {
    # rising
    "bullish": 2.0, "bull": 1.2, "rally": 1.8, "rallies": 1.8, "rallied": 1.8, "rallying": 1.8,
    "surge": 1.8, "surges": 1.8, "surged": 1.8, "surging": 1.8, "soar": 2.0, "soars": 2.0, "soared": 2.0,
    "soaring": 2.0, "skyrocket": 2.3, "skyrockets": 2.3, "skyrocketed": 2.3, "moon": 1.5, "mooning": 2.0,
    "breakout": 1.5, "uptrend": 1.5, "rebound": 1.3, "rebounds": 1.3, "rebounded": 1.3, "recovers": 1.2,
    "recovered": 1.2, "recovery": 1.2, "inflows": 1.0, "adoption": 1.2, "partnership": 1.0, "upgrade": 0.8,
    "hodl": 0.8, "ath": 1.5, "outperform": 1.5, "outperforms": 1.5, "outperformed": 1.5, "climbs": 1.0,
    "jumps": 1.2, "jumped": 1.2, "boom": 1.5, "pump": 0.8,
    # falling
    "bearish": -2.0, "bear": -1.2, "crashes": -1.7, "crashed": -1.7, "plunge": -2.0, "plunges": -2.0,
    "plunged": -2.0, "plunging": -2.0, "plummet": -2.3, "plummets": -2.3, "plummeted": -2.3, "tank": -1.5,
    "tanks": -1.8, "tanked": -1.8, "slump": -1.8, "slumps": -1.8, "slumped": -1.8, "selloff": -1.8,
    "downtrend": -1.5, "hack": -1.7, "hacks": -1.7, "exploits": -1.5, "rugpull": -2.5, "rugged": -2.0,
    "rekt": -2.0, "liquidated": -1.8, "liquidations": -1.5, "outflows": -1.0, "outage": -1.8,
    "delist": -1.8, "delists": -1.8, "delisted": -1.8, "delisting": -1.8, "sues": -1.5, "sued": -1.5,
    "bans": -2.0, "crackdown": -1.8, "insolvency": -2.5, "insolvent": -2.5, "bankruptcy": -2.5,
    "depeg": -2.0, "depegged": -2.0, "depegs": -2.0, "halts": -1.0, "halted": -1.0, "drain": -1.5,
    "bust": -1.5, "tumbles": -1.8, "tumbled": -1.8, "sinks": -1.5, "sank": -1.5,
}

_analyzer: Any = None
_analyzer_lock = threading.Lock()


def _get_analyzer() -> Any:
    global _analyzer
    if _analyzer is None:
        with _analyzer_lock:
            if _analyzer is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                analyzer = SentimentIntensityAnalyzer()
                for word, valence in MARKET_LEXICON.items():
                    analyzer.lexicon.setdefault(word, valence)
                _analyzer = analyzer
    return _analyzer


def _clip(value: float) -> float:
    return max(-1.0, min(1.0, value))


def score(text: str) -> float:
    """VADER's compound score of ``text``, in [-1, 1]; 0.0 for empty text."""
    if not text or not text.strip():
        return 0.0
    return _clip(float(_get_analyzer().polarity_scores(text)["compound"]))


def _count(engagement: Mapping[str, Any], key: str) -> float:
    value = engagement.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 0.0
    return max(0.0, float(value))


def _upvote_ratio(engagement: Mapping[str, Any]) -> float | None:
    if isinstance(engagement.get("upvote_ratio_pct"), (int, float)) and not isinstance(engagement["upvote_ratio_pct"], bool):
        return max(0.0, min(1.0, engagement["upvote_ratio_pct"] / 100.0))
    if isinstance(engagement.get("upvote_ratio"), (int, float)) and not isinstance(engagement["upvote_ratio"], bool):
        return max(0.0, min(1.0, float(engagement["upvote_ratio"])))
    return None


def adjust(base: float, engagement: Mapping[str, Any] | None) -> float:
    """``base`` (a score in [-1, 1]) moved by the votes in ``engagement``; see the module's formula."""
    x = _clip(base)
    engagement = engagement or {}
    up = _count(engagement, "positive") + _count(engagement, "liked")
    down = _count(engagement, "negative") + _count(engagement, "disliked")
    if up + down > 0:
        crowd = (up - down) / (up + down)
        half_weight = 0.5 * (up + down) / (up + down + PRIOR_VOTES)
        x = (1.0 - half_weight) * x + half_weight * crowd
    important, toxic = _count(engagement, "important"), _count(engagement, "toxic")
    x *= (1.0 + 0.5 * important / (important + PRIOR_VOTES)) * (1.0 - 0.5 * toxic / (toxic + PRIOR_VOTES))
    ratio = _upvote_ratio(engagement)
    if ratio is not None:
        evidence = _count(engagement, "score") + _count(engagement, "num_comments")
        w = evidence / (evidence + PRIOR_VOTES)
        x *= 1.0 - w * (1.0 - ratio)
    return _clip(x)


def adjusted_score(text: str, engagement: Mapping[str, Any] | None = None) -> float:
    """``score(text)`` adjusted for the votes in ``engagement``, in [-1, 1]."""
    return adjust(score(text), engagement)


def reach(engagement: Mapping[str, Any] | None) -> float:
    """How many people engaged: Reddit's ``max(score, 0) + num_comments``, CryptoPanic's votes summed."""
    engagement = engagement or {}
    total = sum(_count(engagement, key) for key in CRYPTOPANIC_VOTES)
    total += _count(engagement, "score") + _count(engagement, "num_comments")
    return total


def engagement_weight(engagement: Mapping[str, Any] | None) -> float:
    """``1 + log1p(reach)``: at least 1, growing slowly with engagement."""
    return 1.0 + math.log1p(reach(engagement))
