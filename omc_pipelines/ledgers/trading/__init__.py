"""The Trading ledger: signals, orders, positions and P&L (``assets.py``); its minutely job,
schedule and freshness (``schedules.py``). The runs after a catalyst are the catalyst ledger's jobs."""
