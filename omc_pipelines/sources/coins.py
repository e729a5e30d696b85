"""The coin registry: symbols and the names people write for them.

One registry for every ledger (catalyst announcements, filings, news, posts), so
that "Bitcoin", "bitcoin" and "BTC" are the same coin everywhere.
"""

from __future__ import annotations

# Symbol -> names, lower case. A name that is also an everyday word ("ether" aside)
# is left out on purpose: "polygon" or "chainlink" are safe, "near", "link" or
# "one" as words are not, and the symbol alone still matches them.
COINS: dict[str, tuple[str, ...]] = {
    "BTC": ("bitcoin", "bitcoins", "xbt"),
    "ETH": ("ethereum", "ether"),
    "SOL": ("solana",),
    "XRP": ("ripple",),
    "DOGE": ("dogecoin",),
    "ADA": ("cardano",),
    "DOT": ("polkadot",),
    "LTC": ("litecoin",),
    "BCH": ("bitcoin cash",),
    "LINK": ("chainlink",),
    "XLM": ("stellar lumens",),
    "TRX": ("tron",),
    "AVAX": ("avalanche",),
    "MATIC": ("polygon",),
    "POL": (),
    "SHIB": ("shiba inu",),
    "PEPE": (),
    "USDT": ("tether",),
    "USDC": ("usd coin",),
    "APE": ("apecoin",),
    "UNI": ("uniswap",),
    "ATOM": ("cosmos",),
    "NEAR": ("near protocol",),
    "ARB": ("arbitrum",),
    "OP": ("optimism",),
    "SUI": (),
    "TON": ("toncoin",),
    "HBAR": ("hedera",),
    "XMR": ("monero",),
    "ETC": ("ethereum classic",),
    "FIL": ("filecoin",),
    "AAVE": (),
    "MKR": ("maker",),
    "INJ": ("injective",),
    "RNDR": ("render",),
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
