"""The Catalyst ledger: its assets and sensors against the sandbox, on both databases."""

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from dagster import build_sensor_context, materialize

from omc_pipelines.db import upsert
from omc_pipelines.db.models import CatalystEvent
from omc_pipelines.ledgers.catalyst import assets as catalyst, checks, sensors
from omc_pipelines.resources import AnnouncementsResource, SecResource
from omc_pipelines.sandbox import Fault
from omc_pipelines.sandbox.sec import COINBASE, STRATEGY
from omc_pipelines.sources.http import SourcePayloadError

pytestmark = pytest.mark.integration
AGENT = "OMC Pipelines tests tests@example.com"
PURCHASE = (
    "On November 30, 2026, Strategy Inc announced that it had acquired approximately 1,500 bitcoins "
    "for approximately $150.0 million in cash, at an average price of approximately $100,000 per bitcoin."
)


@pytest.fixture
def catalyst_resources(database_url, sandbox):
    from omc_pipelines.resources import LedgerDatabase

    return {
        "ledger_db": LedgerDatabase(url=database_url, auto_migrate=False),
        # A wide window: the recordings must stay in it whatever today's date.
        "sec": SecResource(data_url=sandbox.url, archives_url=sandbox.url, user_agent=AGENT, ciks=[STRATEGY, COINBASE],
                           forms=["4", "8-K"], retries=1, backoff=0.01, history_days=3650),
        "announcements": AnnouncementsResource(base_url=sandbox.url, retries=1, backoff=0.01, history_days=3650),
    }


def events(engine, source):
    with engine.connect() as conn:
        return {r.external_id: r for r in conn.execute(sa.select(CatalystEvent).where(CatalystEvent.source == source))}


def tick(sensor, resources, instance, cursor=None):
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor.evaluate_tick(context)


SEC_CHECKS = [c for c in checks.ALL if {k.asset_key for k in c.check_keys} == {catalyst.sec_filings.key}]


def test_sec_filings_are_recorded_with_their_content_in_utc(catalyst_resources, engine, sandbox):
    accession = sandbox.sec.publish_8k(STRATEGY, PURCHASE, items=("7.01", "8.01"))
    result = materialize([catalyst.sec_filings, *SEC_CHECKS], resources=catalyst_resources)
    assert result.success
    stored = events(engine, "sec")
    tracked = [f for cik in (STRATEGY, COINBASE) for f, form in _recorded_forms(sandbox, cik) if form in ("4", "8-K")]
    assert set(stored) == set(tracked) | {accession}
    purchase = stored[accession]
    assert purchase.event_type == "bitcoin_purchase" and purchase.impact_score == 9 and purchase.currencies == ["BTC"]
    assert "1,500 BTC" in purchase.description and "$150,000,000" in purchase.description
    assert purchase.title.startswith("8-K Strategy") and "7.01" in purchase.title
    assert purchase.published_at.tzinfo is not None and purchase.published_at <= purchase.detected_at
    assert all(e.passed for e in result.get_asset_check_evaluations())


def _recorded_forms(sandbox, cik):
    recent = sandbox.sec.submissions(cik)["filings"]["recent"]
    return list(zip(recent["accessionNumber"], recent["form"]))


def test_a_second_materialization_fetches_no_document_again(catalyst_resources, engine, sandbox):
    assert materialize([catalyst.sec_filings], resources=catalyst_resources).success
    sandbox.server.requests.clear()
    result = materialize([catalyst.sec_filings], resources=catalyst_resources)
    assert result.success
    assert not [r for r in sandbox.server.requests if r["path"].startswith("/Archives")]
    assert result.asset_materializations_for_node("sec_filings")[0].metadata["events"].value == 0


def test_the_filing_sensor_records_history_once_then_one_run_per_new_filing(catalyst_resources, sandbox, instance):
    first = tick(sensors.sec_filing_sensor, catalyst_resources, instance)
    # An empty cursor: one run records the window; no old filing is treated as new.
    assert [r.run_key.split("-history-")[0] for r in first.run_requests] == ["sec_filings"]
    assert first.run_requests[0].run_config == {}

    quiet = tick(sensors.sec_filing_sensor, catalyst_resources, instance, cursor=first.cursor)
    assert quiet.run_requests == []
    submissions = [r for r in sandbox.server.requests if r["path"].startswith("/submissions")]
    assert [r["status"] for r in submissions[-2:]] == [304, 304]  # conditional requests: unchanged, cheap

    accession = sandbox.sec.publish_8k(STRATEGY, PURCHASE, items=("8.01",))
    fresh = tick(sensors.sec_filing_sensor, catalyst_resources, instance, cursor=quiet.cursor)
    assert [r.run_key for r in fresh.run_requests] == [f"sec-{accession}"]
    config = fresh.run_requests[0].run_config["ops"]["sec_filings"]["config"]
    assert config["ids"] == [accession]

    # A replayed tick (the daemon crashed before saving the cursor) asks for the same run
    # key, which Dagster launches only once; a tick after the saved cursor asks for nothing.
    replay = tick(sensors.sec_filing_sensor, catalyst_resources, instance, cursor=quiet.cursor)
    assert [r.run_key for r in replay.run_requests] == [f"sec-{accession}"]
    assert tick(sensors.sec_filing_sensor, catalyst_resources, instance, cursor=fresh.cursor).run_requests == []


def test_a_sensor_run_records_exactly_its_filing_with_the_sensors_detection_time(catalyst_resources, engine, sandbox):
    accession = sandbox.sec.publish_8k(COINBASE, "We hold bitcoin and ether (ETH) as digital assets.", items=("7.01",))
    detected = "2030-01-01T00:00:00+00:00"
    config = {"ops": {"sec_filings": {"config": {"ids": [accession], "detected_at": {accession: detected}}}}}
    assert materialize([catalyst.sec_filings], resources=catalyst_resources, run_config=config).success
    stored = events(engine, "sec")
    assert list(stored) == [accession]
    assert stored[accession].detected_at == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert stored[accession].currencies == ["BTC", "ETH"] and stored[accession].impact_score == 6
    # A later hand-made materialization does not move the first sighting.
    assert materialize([catalyst.sec_filings], resources=catalyst_resources).success
    assert events(engine, "sec")[accession].detected_at == datetime(2030, 1, 1, tzinfo=timezone.utc)


def test_an_sec_outage_skips_the_tick_and_loses_nothing(catalyst_resources, sandbox, instance):
    first = tick(sensors.sec_filing_sensor, catalyst_resources, instance)
    accession = sandbox.sec.publish_8k(STRATEGY, PURCHASE)
    sandbox.inject(Fault("/submissions", "503", times=0))
    down = tick(sensors.sec_filing_sensor, catalyst_resources, instance, cursor=first.cursor)
    assert down.run_requests == [] and "SEC EDGAR could not be read" in down.skip_message
    # The cursor stays where it was (only the start of the outage is noted).
    assert json.loads(down.cursor)["read_through"] == json.loads(first.cursor)["read_through"]
    sandbox.server.clear_faults()
    back = tick(sensors.sec_filing_sensor, catalyst_resources, instance, cursor=first.cursor)
    assert [r.run_key for r in back.run_requests] == [f"sec-{accession}"]


def test_without_a_user_agent_nothing_is_sent_to_the_sec(catalyst_resources, sandbox, instance):
    resources = {**catalyst_resources, "sec": SecResource(data_url=sandbox.url, archives_url=sandbox.url,
                                                          ciks=[STRATEGY], forms=["8-K"])}
    with pytest.raises(Exception, match="set OMC_SEC_USER_AGENT"):  # a red tick, with what to do
        tick(sensors.sec_filing_sensor, resources, instance)
    assert not sandbox.server.requests_to("/submissions")


ANNOUNCEMENT_CHECKS = [c for c in checks.ALL if {k.asset_key for k in c.check_keys} == {catalyst.coinspot_announcements.key}]


def test_announcements_are_classified_with_their_coins(catalyst_resources, engine, sandbox):
    article = sandbox.zendesk.publish("New Coin Listing: Foo Token (FOO) and Bar (BAR)", "<p>Trade FOO and BAR now.</p>")
    result = materialize([catalyst.coinspot_announcements, *ANNOUNCEMENT_CHECKS], resources=catalyst_resources)
    assert result.success
    stored = events(engine, "coinspot_announcements")
    assert set(stored) == {str(a["id"]) for a in sandbox.zendesk.articles()}
    listing = stored[str(article["id"])]
    assert (listing.event_type, listing.impact_score, listing.currencies) == ("listing", 9, ["FOO", "BAR"])
    assert listing.url.endswith(str(article["id"])) or str(article["id"]) in listing.url
    kinds = {e.event_type for e in stored.values()}
    assert {"listing", "delisting", "maintenance"} <= kinds
    assert not any(e.event_type == "listing" and "delist" in e.title.lower() for e in stored.values())
    metadata = result.asset_materializations_for_node("coinspot_announcements")[0].metadata
    assert metadata["path_used"].value == "api"
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_the_listing_sensor_launches_one_run_per_new_article(catalyst_resources, engine, sandbox, instance):
    first = tick(sensors.coinspot_listing_sensor, catalyst_resources, instance)
    assert len(first.run_requests) == 1 and "-history-" in first.run_requests[0].run_key
    assert tick(sensors.coinspot_listing_sensor, catalyst_resources, instance, cursor=first.cursor).run_requests == []

    one = sandbox.zendesk.publish("XYZ (XYZ) is now available on CoinSpot")
    two = sandbox.zendesk.publish("Scheduled maintenance: BTC wallet")
    fresh = tick(sensors.coinspot_listing_sensor, catalyst_resources, instance, cursor=first.cursor)
    assert [r.run_key for r in fresh.run_requests] == [f"coinspot-article-{one['id']}", f"coinspot-article-{two['id']}"]
    request = fresh.run_requests[0]
    assert request.tags["omc/title"] == "XYZ (XYZ) is now available on CoinSpot"

    assert materialize([catalyst.coinspot_announcements], resources=catalyst_resources, run_config=request.run_config).success
    stored = events(engine, "coinspot_announcements")
    assert list(stored) == [str(one["id"])]  # the run records its article, nothing else
    detected = request.run_config["ops"]["coinspot_announcements"]["config"]["detected_at"][str(one["id"])]
    assert stored[str(one["id"])].detected_at == datetime.fromisoformat(detected)
    assert stored[str(one["id"])].currencies == ["XYZ"]

    replay = tick(sensors.coinspot_listing_sensor, catalyst_resources, instance, cursor=first.cursor)
    assert [r.run_key for r in replay.run_requests] == [r.run_key for r in fresh.run_requests]
    assert tick(sensors.coinspot_listing_sensor, catalyst_resources, instance, cursor=fresh.cursor).run_requests == []


def test_the_listing_sensor_skips_an_outage_and_catches_up(catalyst_resources, sandbox, instance):
    first = tick(sensors.coinspot_listing_sensor, catalyst_resources, instance)
    article = sandbox.zendesk.publish("New Coin Listing: Qux (QUX)")
    sandbox.inject(Fault("/api/v2/help_center", "503", times=0))
    sandbox.inject(Fault("/hc/", "503", times=0))
    down = tick(sensors.coinspot_listing_sensor, catalyst_resources, instance, cursor=first.cursor)
    assert down.run_requests == [] and "could not be read" in down.skip_message
    sandbox.server.clear_faults()
    back = tick(sensors.coinspot_listing_sensor, catalyst_resources, instance, cursor=first.cursor)
    assert [r.run_key for r in back.run_requests] == [f"coinspot-article-{article['id']}"]


def test_when_the_api_is_refused_the_html_list_still_finds_new_articles(catalyst_resources, sandbox, instance):
    first = tick(sensors.coinspot_listing_sensor, catalyst_resources, instance)
    sandbox.zendesk.set_mode(api="refused")
    article = sandbox.zendesk.publish("New Coin Listing: Zap (ZAP)")
    fresh = tick(sensors.coinspot_listing_sensor, catalyst_resources, instance, cursor=first.cursor)
    assert [r.run_key for r in fresh.run_requests] == [f"coinspot-article-{article['id']}"]


def test_a_page_that_is_not_the_filing_fails_the_run_and_a_reread_corrects_a_bad_row(catalyst_resources, engine, sandbox):
    """A maintenance page served with 200 once stored Strategy's purchase as a dull filing,
    and a clean re-run skipped it as already recorded."""
    accession = sandbox.sec.publish_8k(STRATEGY, PURCHASE, items=("7.01", "8.01"))
    document = f"/Archives/edgar/data/{int(STRATEGY)}/{accession.replace('-', '')}"
    sandbox.inject(Fault(document, "malformed", times=0))
    only_it = {"ops": {"sec_filings": {"config": {"ids": [accession]}}}}
    with pytest.raises(SourcePayloadError, match=f"the document of {accession} is not an 8-K of Strategy"):
        materialize([catalyst.sec_filings], resources=catalyst_resources, run_config=only_it)
    assert accession not in events(engine, "sec")
    sandbox.server.clear_faults()

    # A row recorded from a bad page before this check existed: a plain run leaves it, a reread mends it.
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        upsert(conn, CatalystEvent.__table__, [dict(
            source="sec", external_id=accession, event_type="filing", title="8-K Strategy Inc", description="8-K items",
            currencies=[], impact_score=4, published_at=now, detected_at=now, url=None, collected_at=now)],
            catalyst.EVENT_KEY)
    assert materialize([catalyst.sec_filings], resources=catalyst_resources).success
    assert events(engine, "sec")[accession].impact_score == 4
    reread = {"ops": {"sec_filings": {"config": {"reread": True}}}}
    assert materialize([catalyst.sec_filings], resources=catalyst_resources, run_config=reread).success
    mended = events(engine, "sec")[accession]
    assert (mended.event_type, mended.impact_score, mended.currencies) == ("bitcoin_purchase", 9, ["BTC"])
    assert mended.detected_at == now  # the first sighting stays
