"""The classifier: what an announcement is (listing, delisting, maintenance, a trading
change, other), how much it can move a price, and the coins it names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from omc_pipelines.sources.coins import NOT_COINS, extract_coins
from omc_pipelines.sources.html_text import html_to_text

KINDS = ("listing", "delisting", "maintenance", "trading_change", "other")
# How much an announcement can move a price, 1..10: a new listing is the catalyst the
# ledger exists for; a delisting moves the coin too (down, and less: it is expected);
# a trading change moves liquidity; maintenance rarely moves prices; features do not.
IMPACT = {"listing": 9, "delisting": 7, "trading_change": 5, "maintenance": 3, "other": 1}


@dataclass(frozen=True)
class Classification:
    kind: str
    impact: int
    currencies: list[str] = field(default_factory=list)
    matched: str = ""  # the words that decided the kind, for whoever has to check it


_WORD = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?")


def _words(text: str) -> list[str]:
    return [w.replace("\u2019", "'") for w in _WORD.findall(text.lower())]


def _phrases(*texts: str) -> list[tuple[str, ...]]:
    return [tuple(t.split()) for t in texts]


_DELIST = frozenset({"delist", "delists", "delisted", "delisting", "delistings"})
_RELIST = frozenset({"relist", "relists", "relisted", "relisting", "relistings"})
# "listing" alone is not enough ("listing policy", "listing fees"); these are.
_LISTING = _phrases(
    "new coin listing", "new coin listings", "new token listing", "new token listings", "new listing",
    "new listings", "coin listing", "coin listings", "token listing", "listing of", "now listed",
    "been listed", "we have listed", "we've listed", "newly listed", "listed on coinspot", "new coin", "new coins",
)
_LISTING_COLON = re.compile(r"(?<![a-z])listings?\s*:", re.IGNORECASE)  # "Listing: Foo (FOO)"
# Only with a coin named and no feature word: "Recurring buys are now available" is not a coin.
_WEAK_LISTING = _phrases(
    "now available", "now live", "now supported", "now supports", "now trading", "available to trade",
    "available on coinspot", "launches on coinspot", "added to coinspot", "coming to coinspot", "now on coinspot",
    "lands on coinspot",
)
_WEAK_DELISTING = _phrases(
    "will be removed", "to be removed", "being removed", "removed from coinspot", "removal of",
    "no longer supported", "no longer be supported", "no longer available", "no longer be available",
    "no longer listed", "no longer be listed", "end of support", "ending support", "support ending",
    "discontinued", "discontinuing",
)
_MAINTENANCE = _phrases(
    "maintenance", "scheduled downtime", "planned downtime", "downtime", "outage", "network upgrade",
    "network upgrades", "hard fork", "hardfork", "wallet suspension", "wallet suspended", "wallets suspended",
    "token migration", "token swap", "mainnet upgrade", "mainnet migration", "protocol upgrade", "system upgrade",
)
_TRADING_PHRASES = _phrases("trading pair", "trading pairs", "pair", "pairs", "markets", "new market")
_TRADING_SUBJECTS = frozenset({"trading", "trade", "trades", "deposit", "deposits", "withdrawal", "withdrawals",
                               "transfers", "sends", "orders", "buying", "selling"})
_TRADING_STATES = frozenset({"halt", "halted", "halts", "suspend", "suspended", "suspension", "suspends", "pause",
                             "paused", "pauses", "resume", "resumed", "resumes", "disabled", "enabled", "reenabled",
                             "reopened", "reopen", "closed", "restored", "unavailable", "delayed", "stopped"})
_FEATURES = frozenset({"feature", "features", "staking", "stake", "earn", "rewards", "reward", "recurring", "alert",
                       "alerts", "app", "card", "promotion", "promo", "competition", "giveaway", "bundle", "bundles",
                       "nft", "nfts", "referral", "tax", "report", "reports", "dashboard", "beta", "widget", "otc",
                       "api", "mobile"})
# Capitalised words that are not tickers, for the unknown-ticker rule below.
_NOT_TICKERS = NOT_COINS | frozenset({
    "NEW", "COIN", "COINS", "TOKEN", "LISTING", "LISTINGS", "LISTED", "NOW", "AVAILABLE", "AND", "THE", "ON", "OF",
    "FOR", "TO", "IS", "ARE", "WILL", "BE", "SMS", "APP", "BPAY", "PAYID", "OSKO", "POLI", "ATO", "AML", "CTF",
    "GST", "TFN", "EOFY", "AU", "NZ", "COINSPOT", "OTC", "IMPORTANT", "UPDATE", "NOTICE", "ALERT", "WARNING", "ID",
    "TRADING", "DELISTING", "MAINTENANCE", "SCHEDULED", "WALLET", "NETWORK", "UPGRADE", "REMINDER", "NEWS", "IOS",
    "PDF", "URL", "FY", "AM", "PM", "ASAP", "TBA", "TBC", "DEX", "CEX", "DEFI", "DAO", "AI",
})
_TICKER = re.compile(r"(?<![A-Za-z0-9$])\$?([A-Z][A-Z0-9]{1,9})(?![A-Za-z0-9])")


def _has(words: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(words[i:i + n]) == phrase for i in range(len(words) - n + 1))


def _first(words: list[str], phrases: list[tuple[str, ...]]) -> str:
    return next((" ".join(p) for p in phrases if _has(words, p)), "")


def _tickers(title: str) -> list[str]:
    """Capitalised words that read as tickers in a listing or delisting title ("New Coin
    Listing: XYZ"), for coins the registry does not know yet. Off for all-capitals titles."""
    if not re.search(r"[a-z]", title):
        return []
    return list(dict.fromkeys(t for t in _TICKER.findall(title) if t not in _NOT_TICKERS))


def classify(title: str, body: str | None = None) -> Classification:
    """What an announcement is, on its title's words (not substrings), and the coins it names.

    Precedence: delisting words; listing phrases (relisting counts: the coin comes back
    to market); maintenance; trading changes; then the weak forms, which count only when
    the title names a coin: "will be removed" / "no longer supported" (delisting), "now
    available" / "now live" (listing, unless a feature word says it is a product, as in
    "SOL staking now available"); anything else is "other". "New" alone means nothing.

    Currencies: the coins the title names (``coins.extract_coins``); for a listing or a
    delisting also capitalised unknown tickers ("New Coin Listing: XYZ"); when the title
    names none, the coins the body names. The body never decides the kind.
    """
    words = _words(title)
    known = extract_coins(title)
    currencies = known or _tickers(title)

    def result(kind: str, matched: str, coins: list[str]) -> Classification:
        if not coins and body:
            coins = extract_coins(html_to_text(body, one_line=True))
        return Classification(kind, IMPACT[kind], coins, matched)

    if delisted := next((w for w in words if w in _DELIST), ""):
        return result("delisting", delisted, currencies)
    if relisted := next((w for w in words if w in _RELIST), ""):
        return result("listing", relisted, currencies)
    if listed := _first(words, _LISTING) or ("listing:" if _LISTING_COLON.search(title) else ""):
        return result("listing", listed, currencies)
    if maintenance := _first(words, _MAINTENANCE):
        return result("maintenance", maintenance, known)
    trading = _first(words, _TRADING_PHRASES)
    if not trading and (subject := next((w for w in words if w in _TRADING_SUBJECTS), "")):
        if state := next((w for w in words if w in _TRADING_STATES), ""):
            trading = f"{subject} {state}"
        elif _has(words, ("re", "enabled")):
            trading = f"{subject} re-enabled"
    if trading:
        return result("trading_change", trading, known)
    if currencies and (removed := _first(words, _WEAK_DELISTING)):
        return result("delisting", removed, currencies)
    if currencies and not _FEATURES.intersection(words) and (available := _first(words, _WEAK_LISTING)):
        return result("listing", available, currencies)
    return result("other", "", known)
