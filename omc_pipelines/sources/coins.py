"""The coin registry: symbols and the names people write for them.

One registry for every ledger (catalyst announcements, filings, news, posts), so
that "Bitcoin", "bitcoin" and "BTC" are the same coin everywhere.
"""

from __future__ import annotations

import re

# Symbol -> names, lower case. A name that is also an everyday word ("ether" aside)
# is left out on purpose: "market maker", "ripple effects", "an avalanche of",
# "render" or "optimism" in a filing are not coins; the capitalised symbol still is.
COINS: dict[str, tuple[str, ...]] = {
    "BTC": ("bitcoin", "bitcoins", "xbt"),
    "ETH": ("ethereum", "ether"),
    "SOL": ("solana",),
    "XRP": (),
    "DOGE": ("dogecoin",),
    "ADA": ("cardano",),
    "DOT": ("polkadot",),
    "LTC": ("litecoin",),
    "BCH": ("bitcoin cash",),
    "LINK": ("chainlink",),
    "XLM": ("stellar lumens",),
    "TRX": ("tron",),
    "AVAX": (),
    "MATIC": (),
    "POL": (),
    "SHIB": ("shiba inu",),
    "PEPE": (),
    "USDT": ("tether",),
    "USDC": ("usd coin",),
    "APE": ("apecoin",),
    "UNI": ("uniswap",),
    "ATOM": (),
    "NEAR": ("near protocol",),
    "ARB": ("arbitrum",),
    "OP": (),
    "SUI": (),
    "TON": ("toncoin",),
    "HBAR": ("hedera",),
    "XMR": ("monero",),
    "ETC": ("ethereum classic",),
    "FIL": ("filecoin",),
    "AAVE": (),
    "MKR": (),
    "INJ": ("injective",),
    "RNDR": (),
    "WIF": ("dogwifhat",),
    "BONK": (),
    "TRUMP": (),
}

SYMBOLS = frozenset(COINS)
# Name -> symbol, longest names first so "bitcoin cash" wins over "bitcoin".
NAMES: dict[str, str] = dict(
    sorted(((name, symbol) for symbol, names in COINS.items() for name in names), key=lambda kv: -len(kv[0]))
)


def is_known(symbol: str) -> bool:
    return symbol.upper() in SYMBOLS


# Upper-case words in parentheses that are not coins.
NOT_COINS = frozenset({"AUD", "USD", "NZD", "EUR", "GBP", "UTC", "AEST", "AEDT", "FAQ", "KYC", "API", "SEC", "ETF",
                       "NEW", "ERC", "BEP", "SPL", "TRC", "ERC20", "BEP20", "TRC20", "SPL", "NFT", "CEO", "USA"})
_PARENTHESISED = re.compile(r"\(\s*\$?([A-Z][A-Z0-9]{1,9})\s*\)")
_NAME = re.compile(r"\b(" + "|".join(re.escape(n) for n in NAMES) + r")\b", re.IGNORECASE)
# Bare symbols only in capitals: "LINK" is Chainlink, "link" is a word.
_SYMBOL = re.compile(r"(?<![A-Za-z0-9$])\$?(" + "|".join(sorted(SYMBOLS, key=len, reverse=True)) + r")(?![A-Za-z0-9])")


def extract_coins(text: str) -> list[str]:
    """The coins a text names, as symbols, in order of first mention.

    A symbol in parentheses counts even when the registry has never heard of it
    ("New listing: Foo (FOO)" is how a new coin first appears); names and bare
    symbols count only when the registry knows them, matched on word boundaries.
    """
    found: dict[int, str] = {}
    for match in _PARENTHESISED.finditer(text):
        if match.group(1) not in NOT_COINS:
            found.setdefault(match.start(1), match.group(1))
    for match in _NAME.finditer(text):
        found.setdefault(match.start(), NAMES[match.group(1).lower()])
    for match in _SYMBOL.finditer(text):
        found.setdefault(match.start(1), match.group(1))
    return list(dict.fromkeys(symbol for _, symbol in sorted(found.items())))
