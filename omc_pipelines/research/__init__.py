"""Evidence before money: the catalyst event study and the backtest, on the ledgers' prices."""
