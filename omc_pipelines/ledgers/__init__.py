"""The ledgers, a package each: its assets, checks, jobs with their schedules or sensors, and
freshness policies live together (``definitions.py`` collects them); what the ledgers share is here."""

from collections.abc import Callable, Iterable

from dagster import AssetExecutionContext


def keep_valid(items: Iterable, problem: Callable, context: AssetExecutionContext) -> tuple[list, list[str]]:
    """The items worth storing, and why the others were rejected (logged; shown as metadata).
    ``problem(item)`` says what is wrong with an item, or None."""
    kept, rejected = [], []
    for item in items:
        reason = problem(item)
        if reason:
            rejected.append(reason)
            context.log.warning(f"rejected, not stored: {reason}")
        else:
            kept.append(item)
    return kept, rejected
