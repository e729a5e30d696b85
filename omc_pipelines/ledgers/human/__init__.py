"""The Human ledger: news feeds, CryptoPanic, Reddit and the daily per-coin sentiment (``assets.py``),
their checks (``checks.py``), jobs, schedules and freshness (``schedules.py``)."""
