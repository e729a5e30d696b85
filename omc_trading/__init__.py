"""The trading core: order intents, risk gate, brokers.

It never imports ``dagster`` or ``omc_pipelines``; the pipelines call it. The
trading issue fills it in.
"""
