"""The Catalyst ledger's checks: the rules every event must pass before anything trades on it."""

from __future__ import annotations

import sqlalchemy as sa
from dagster import AssetCheckResult, AssetChecksDefinition, asset_check

from omc_pipelines.checks import written_by_latest_run
from omc_pipelines.db.models import EVENT_RULES, SYMBOL, CatalystEvent
from omc_pipelines.ledgers.catalyst import assets as catalyst
from omc_pipelines.resources import LedgerDatabase
from omc_pipelines.sources.coins import is_known

CATALYST_CHECK_DESCRIPTIONS = {
    "events_have_source_ids": "Every event has the id its source gave it.",
    "no_events_from_the_future": "No event was published after it was detected (a time-zone error shows up here).",
    "currencies_are_symbols": "Every currency is a coin symbol; symbols the registry does not know yet are listed.",
    "impact_in_range": "Every impact score is 1 to 10.",
}


def catalyst_checks(asset, source: str) -> list[AssetChecksDefinition]:
    """What must hold of a catalyst source's events before anything trades on them: the rules
    of ``EVENT_RULES``, which the trading side applies to each event it reads too."""

    def build(name: str, rule) -> AssetChecksDefinition:
        @asset_check(asset=asset, name=name, blocking=True, description=CATALYST_CHECK_DESCRIPTIONS[name])
        def _check(context, ledger_db: LedgerDatabase) -> AssetCheckResult:
            # The events this run wrote: one bad row must not block every later run (and trading).
            collected_at = written_by_latest_run(context, asset)
            with ledger_db.engine().connect() as conn:
                events = conn.execute(sa.select(CatalystEvent).where(
                    CatalystEvent.source == source, CatalystEvent.collected_at == collected_at)).all()
            bad = [(e.external_id, problem) for e in events if (problem := rule(e))]
            metadata = {"checked": len(events), "failing": len(bad),
                        "examples": [f"{event_id}: {problem}" for event_id, problem in bad[:5]]}
            if name == "currencies_are_symbols":
                symbols = {c for e in events for c in e.currencies if SYMBOL.match(c)}
                metadata["not_in_registry"] = sorted(c for c in symbols if not is_known(c))
            return AssetCheckResult(passed=not bad, metadata=metadata)

        return _check

    return [build(name, rule) for name, rule in EVENT_RULES.items()]


ALL = [
    *catalyst_checks(catalyst.coinspot_announcements, catalyst.ANNOUNCEMENTS_SOURCE),
    *catalyst_checks(catalyst.sec_filings, catalyst.SEC_SOURCE),
]
