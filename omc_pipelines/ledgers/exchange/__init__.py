"""The Exchange ledger: CoinSpot prices, trades and hourly candles (``assets.py``), price history
from files (``history.py``), their checks (``checks.py``), jobs, schedules and freshness
(``schedules.py``)."""
