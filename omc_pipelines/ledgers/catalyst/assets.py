"""The Catalyst ledger: SEC filings and CoinSpot announcements as `catalyst_events`.

Both assets can be materialized by hand (they then record what their source shows
within the history window); in normal use the sensors beside it (``sensors.py``) launch a
run for each new filing or article, passing when they first saw it.
"""

import dataclasses
import json
import typing
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from dagster import AssetExecutionContext, Config, MaterializeResult, asset

from omc_pipelines.db import upsert
from omc_pipelines.db.models import CatalystEvent
from omc_pipelines.metadata import definition, standard
from omc_pipelines.resources import AnnouncementsResource, LedgerDatabase, SecResource
from omc_pipelines.sources.announcements import Article, classify
from omc_pipelines.sources.sec import Filing, filings_of

GROUP = "catalyst"
EVENT_KEY = ("source", "external_id")
SEC_SOURCE = "sec"
ANNOUNCEMENTS_SOURCE = "coinspot_announcements"
# What a re-run may correct; published_at and detected_at are facts of the first sighting.
EVENT_UPDATE = ("event_type", "title", "description", "currencies", "impact_score", "url", "collected_at")

# Impact of a filing, 1-10: Strategy buying bitcoin moves the market most.
IMPACT_BITCOIN_PURCHASE = 9
IMPACT_CRYPTO_8K = 6
IMPACT_OTHER_8K = 4
IMPACT_FORM_4 = 3
IMPACT_OTHER_FILING = 2


class CatalystRunConfig(Config):
    """What a sensor tells the run: the ids it found, when it first saw each, and what it
    read of each (``records``), so that the run fetches only what those events need."""

    ids: list[str] = []
    detected_at: dict[str, str] = {}
    records: dict[str, str] = {}
    # By hand: read again the filings already recorded (e.g. one recorded from a bad document).
    reread: bool = False


# What a sensor read travels to its run as JSON: an Article or a Filing, field by field.
# The longest body a record carries: the classifier reads titles and the start of a body.
RECORD_BODY_CHARS = 20_000


def _record(item) -> str:
    def plain(value):
        return value.isoformat() if isinstance(value, (date, datetime)) else value

    return json.dumps({f.name: plain(getattr(item, f.name)) for f in dataclasses.fields(item)})


def _from_record(cls, text: str):
    hints = typing.get_type_hints(cls)
    values = json.loads(text)
    for name, hint in hints.items():
        value = values.get(name)
        if value is None:
            continue
        kinds = typing.get_args(hint) or (hint,)
        if datetime in kinds:
            values[name] = datetime.fromisoformat(value)
        elif date in kinds:
            values[name] = date.fromisoformat(value)
        elif typing.get_origin(hint) is tuple:
            values[name] = tuple(value)
    return cls(**values)


def article_record(article: Article) -> str:
    body = article.body_html[:RECORD_BODY_CHARS] if article.body_html else article.body_html
    return _record(dataclasses.replace(article, body_html=body))


def filing_record(filing: Filing) -> str:
    return _record(filing)


def _detected(config: CatalystRunConfig, external_id: str, now: datetime) -> datetime:
    seen = config.detected_at.get(external_id)
    return datetime.fromisoformat(seen).astimezone(timezone.utc) if seen else now


def announcement_event(article: Article, detected_at: datetime, collected_at: datetime) -> dict:
    found = classify(article.title, article.body_html)
    return {
        "source": ANNOUNCEMENTS_SOURCE,
        "external_id": str(article.id),
        "event_type": found.kind,
        "title": article.title,
        "description": None,
        "currencies": found.currencies,
        "impact_score": found.impact,
        # An article page without a date (HTML or browser path): published when we first saw it.
        "published_at": detected_at if article.dated_from == "detected" else article.created_at,
        "detected_at": detected_at,
        "url": article.url,
        "collected_at": collected_at,
    }


def filing_event(filing: Filing, details: dict, detected_at: datetime, collected_at: datetime) -> dict:
    return {
        "source": SEC_SOURCE,
        "external_id": filing.accession_number,
        "event_type": details.get("event_type", "filing"),
        "title": f"{filing.form} {filing.company}" + (f" (items {', '.join(filing.items)})" if filing.items else ""),
        "description": details["description"],
        "currencies": details["currencies"],
        "impact_score": details["impact"],
        "published_at": filing.accepted_at,
        "detected_at": detected_at,
        "url": filing.document_url,
        "collected_at": collected_at,
    }


def _only(items: list, ids: list[str], id_of, where: str) -> list:
    """``items`` restricted to ``ids`` when some are given; each must be there."""
    if not ids:
        return items
    kept = [item for item in items if id_of(item) in set(ids)]
    missing = set(ids) - {id_of(item) for item in kept}
    if missing:
        raise RuntimeError(f"{sorted(missing)} not found in {where}")
    return kept


def _known_ids(conn: sa.Connection, source: str, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    query = sa.select(CatalystEvent.external_id).where(CatalystEvent.source == source, CatalystEvent.external_id.in_(ids))
    return set(conn.execute(query).scalars())


@asset(
    group_name=GROUP,
    kinds={"sql"},
    **definition(CatalystEvent, group=GROUP, source=ANNOUNCEMENTS_SOURCE),
    description="CoinSpot's announcements (Zendesk help centre: API, then HTML list, then a real browser), "
    "classified as listing, delisting, maintenance, trading change or other, with the coins they name.",
)
def coinspot_announcements(
    context: AssetExecutionContext, config: CatalystRunConfig, ledger_db: LedgerDatabase, announcements: AnnouncementsResource
) -> MaterializeResult:
    now = datetime.now(timezone.utc)
    if config.records:
        # What the sensor read a moment ago: nothing to fetch again.
        articles = [_from_record(Article, config.records[i]) for i in config.ids]
        path = "sensor"
    else:
        with announcements.client() as client:
            articles = _only(client.latest(since=now - timedelta(days=announcements.history_days)),
                             config.ids, lambda a: str(a.id), "CoinSpot's help centre")
            path = client.path_used
    rows = [announcement_event(a, _detected(config, str(a.id), now), now) for a in articles]
    with ledger_db.engine().begin() as conn:
        upsert(conn, CatalystEvent.__table__, rows, EVENT_KEY, update=EVENT_UPDATE)
        shown = events_shown(conn, ANNOUNCEMENTS_SOURCE, ("external_id", "event_type", "currencies", "title"))
    return MaterializeResult(
        metadata={
            "events": len(rows),
            "collected_at": now.isoformat(),  # what the checks judge: the rows of this run
            "path_used": path,
            "listings": sum(r["event_type"] == "listing" for r in rows),
            **shown,
        }
    )


def events_shown(conn: sa.Connection, source: str, columns: tuple[str, ...]) -> dict:
    """The table both catalyst assets write, this source's rows of it, its newest events."""
    return standard(conn, CatalystEvent, newest=("published_at", "external_id"),
                    where=CatalystEvent.source == source, columns=(*columns, "published_at", "detected_at"))


def filing_details(client, filing: Filing) -> dict:
    """What a filing says that matters to a trader: coins, a bitcoin purchase, insider trades."""
    form = filing.form.upper()
    if form.startswith("8-K"):
        content = client.eight_k(filing)
        purchase = content.bitcoin_purchase
        if purchase is not None:
            return {
                # What the trading strategy acts on (when OMC_TRADE_BTC_PURCHASES is on).
                "event_type": "bitcoin_purchase",
                "currencies": content.currencies or ["BTC"],
                "impact": IMPACT_BITCOIN_PURCHASE,
                "description": f"8-K: bought {purchase.btc_amount:,.0f} BTC"
                + (f" for ${purchase.aggregate_usd:,.0f}" if purchase.aggregate_usd else "")
                + (f" at ${purchase.average_price_usd:,.0f} average" if purchase.average_price_usd else ""),
            }
        return {
            "currencies": content.currencies,
            # "digital assets" alone is crypto content that names no coin.
            "impact": IMPACT_CRYPTO_8K if content.mentions_crypto else IMPACT_OTHER_8K,
            "description": f"8-K items {', '.join(filing.items) or 'none'}"
            + (f"; mentions {', '.join(content.currencies)}" if content.currencies else ""),
        }
    if not form.startswith("4"):
        return {"currencies": [], "impact": IMPACT_OTHER_FILING, "description": filing.primary_doc_description or filing.form}
    form4 = client.form4(filing)
    trades = "; ".join(
        f"{t.code} {t.shares:,.0f} {'bought' if t.acquired_disposed == 'A' else 'sold'}"
        + (f" at ${t.price:,.2f}" if t.price is not None else "")
        for t in form4.transactions
    )
    owners = ", ".join(o.name for o in form4.owners)
    return {"currencies": [], "impact": IMPACT_FORM_4, "description": f"Form 4 by {owners}: {trades or 'no transactions'}"}


@asset(
    group_name=GROUP,
    kinds={"sql"},
    # One step at a time reads EDGAR, whatever the number of runs: the fair-access limit
    # (10 requests a second) is per user, not per process.
    pool="sec",
    **definition(CatalystEvent, group=GROUP, source=SEC_SOURCE),
    description="SEC filings (Form 4, 8-K by default) of the tracked companies (Strategy, Coinbase): "
    "8-Ks read for crypto content and bitcoin purchases, Form 4s for insider trades.",
)
def sec_filings(context: AssetExecutionContext, config: CatalystRunConfig, ledger_db: LedgerDatabase, sec: SecResource) -> MaterializeResult:
    now = datetime.now(timezone.utc)
    since = now - timedelta(days=sec.history_days)
    engine = ledger_db.engine()
    rows = []
    with sec.client() as client:
        if config.records:
            # The filings the sensor found: only their documents are fetched.
            filings = [_from_record(Filing, config.records[i]) for i in config.ids]
        else:
            listed = [f for cik in sec.ciks for f in filings_of(client.submissions(cik).filings, sec.forms, amendments=True)]
            filings = _only(listed, config.ids, lambda f: f.accession_number, "the tracked companies' submissions") \
                if config.ids else [f for f in listed if f.accepted_at >= since]
        with engine.connect() as conn:
            reread = bool(config.ids) or config.reread
            known = set() if reread else _known_ids(conn, SEC_SOURCE, [f.accession_number for f in filings])
        for filing in filings:
            if filing.accession_number in known:
                continue  # recorded already: spare the SEC the document fetch
            context.log.info(f"reading {filing.form} {filing.accession_number} of {filing.company}")
            rows.append(filing_event(filing, filing_details(client, filing), _detected(config, filing.accession_number, now), now))
    with engine.begin() as conn:
        upsert(conn, CatalystEvent.__table__, rows, EVENT_KEY, update=EVENT_UPDATE)
        shown = events_shown(conn, SEC_SOURCE, ("external_id", "title", "impact_score", "currencies"))
    return MaterializeResult(
        metadata={
            "events": len(rows),
            "collected_at": now.isoformat(),  # what the checks judge: the rows of this run
            "already_recorded": len(known),
            **shown,
        }
    )


ASSETS = [coinspot_announcements, sec_filings]
