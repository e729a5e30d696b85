"""The Catalyst ledger: SEC filings and CoinSpot announcements (``assets.py``), the rules every
event must pass (``checks.py``), the sensors that launch a run per new event and their jobs
(``sensors.py``)."""
