"""The Glass ledger: DeFiLlama's on-chain fundamentals (``assets.py``), their checks (``checks.py``),
jobs, schedules and freshness (``schedules.py``)."""
