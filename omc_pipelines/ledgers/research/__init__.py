"""The research ledger: the catalyst event study and the backtest (``assets.py``); run by hand,
so no schedule, check or freshness policy."""
