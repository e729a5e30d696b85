"""The trading core: signals, the risk gate, order intents, brokers, positions and P&L.

It never imports ``dagster`` or ``omc_pipelines``; the pipelines call it and hand it
what it needs (a database engine, a quote source, settings). Money is ``Decimal``
(``money.py``) and exact in the database (``columns.Money``).
"""
