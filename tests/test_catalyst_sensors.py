"""The catalyst sensors never lose an event: failed runs are asked for again, long outages
are caught up, a future date freezes nothing, history is recorded once, failures show red."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from dagster import DagsterRunStatus, build_sensor_context, materialize
from dagster._core.test_utils import create_run_for_test

from omc_pipelines.ledgers.catalyst import assets as catalyst, sensors
from omc_pipelines.resources import AnnouncementsResource, LedgerDatabase, SecResource
from omc_pipelines.sandbox import Fault
from omc_pipelines.sandbox.sec import COINBASE, STRATEGY

pytestmark = pytest.mark.integration
AGENT = "OMC Pipelines tests tests@example.com"


@pytest.fixture
def watched(database_url, sandbox):
    return {
        "ledger_db": LedgerDatabase(url=database_url, auto_migrate=False),
        "sec": SecResource(data_url=sandbox.url, archives_url=sandbox.url, user_agent=AGENT, ciks=[STRATEGY, COINBASE],
                           forms=["4", "8-K"], retries=1, backoff=0.01, history_days=3650),
        "announcements": AnnouncementsResource(base_url=sandbox.url, retries=1, backoff=0.01, history_days=3650),
    }


def tick(sensor, resources, instance, cursor=None):
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor.evaluate_tick(context)


def edit(cursor: str, **changes) -> str:
    return json.dumps({**json.loads(cursor), **changes})


def ago(**delta) -> str:
    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat()


def finish(instance, request, status):
    """A run of ``request`` as the daemon would have left it (tags included)."""
    create_run_for_test(instance, job_name="catalyst_listings", status=status, tags={**request.tags,
                                                                                     "dagster/run_key": request.run_key})


def test_a_failed_run_is_asked_for_again_until_one_succeeds(watched, sandbox, instance):
    first = tick(sensors.coinspot_listing_sensor, watched, instance)
    article = sandbox.zendesk.publish("New Coin Listing: Foo (FOO)")
    found = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=first.cursor)
    [request] = found.run_requests
    assert request.run_key == f"coinspot-article-{article['id']}"

    # Its run fails and Dagster's retries are spent (no will_retry tag): the event is not forgotten.
    finish(instance, request, DagsterRunStatus.FAILURE)
    again = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=found.cursor)
    assert [r.run_key for r in again.run_requests] == [f"coinspot-article-{article['id']}-attempt-2"]
    retry = again.run_requests[0]
    assert retry.run_config == request.run_config  # same article, same first detection time

    # While that run is under way, nothing more is asked.
    create_run_for_test(instance, job_name="catalyst_listings", status=DagsterRunStatus.STARTED, tags=retry.tags)
    waiting = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=again.cursor)
    assert waiting.run_requests == [] and "1 event(s) waiting for a successful run" in waiting.skip_message
    finish(instance, retry, DagsterRunStatus.SUCCESS)
    settled = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=waiting.cursor)
    assert settled.run_requests == [] and json.loads(settled.cursor)["pending"] == {}


def test_a_run_dagster_will_retry_is_left_to_dagster(watched, sandbox, instance):
    first = tick(sensors.coinspot_listing_sensor, watched, instance)
    sandbox.zendesk.publish("New Coin Listing: Bar (BAR)")
    found = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=first.cursor)
    [request] = found.run_requests
    create_run_for_test(instance, job_name="catalyst_listings", status=DagsterRunStatus.FAILURE,
                        tags={**request.tags, "dagster/will_retry": "true"})
    assert tick(sensors.coinspot_listing_sensor, watched, instance, cursor=found.cursor).run_requests == []


def test_a_failed_event_is_asked_again_with_a_growing_pause(watched, sandbox, instance):
    first = tick(sensors.coinspot_listing_sensor, watched, instance)
    article = sandbox.zendesk.publish("New Coin Listing: Baz (BAZ)")
    found = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=first.cursor)
    finish(instance, found.run_requests[0], DagsterRunStatus.FAILURE)
    second = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=found.cursor)
    finish(instance, second.run_requests[0], DagsterRunStatus.FAILURE)
    # Attempt 2 failed a moment ago: the third waits two minutes.
    paused = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=second.cursor)
    assert paused.run_requests == [] and "asking again after 0:02:00" in paused.skip_message
    pending = json.loads(paused.cursor)["pending"]
    pending[str(article["id"])]["requested_at"] = ago(minutes=3)
    third = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=edit(paused.cursor, pending=pending))
    assert [r.run_key for r in third.run_requests] == [f"coinspot-article-{article['id']}-attempt-3"]


def test_a_requested_run_that_never_appeared_is_asked_again(watched, sandbox, instance):
    first = tick(sensors.coinspot_listing_sensor, watched, instance)
    article = sandbox.zendesk.publish("New Coin Listing: Lost (LOST)")
    found = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=first.cursor)
    assert tick(sensors.coinspot_listing_sensor, watched, instance, cursor=found.cursor).run_requests == []
    pending = json.loads(found.cursor)["pending"]
    pending[str(article["id"])]["requested_at"] = ago(minutes=6)
    late = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=edit(found.cursor, pending=pending))
    assert [r.run_key for r in late.run_requests] == [f"coinspot-article-{article['id']}-attempt-2"]


def test_the_sec_window_starts_from_the_cursor_after_a_long_outage(watched, sandbox, instance):
    """The daemon was down for four days: a filing accepted three days ago is still new."""
    first = tick(sensors.sec_filing_sensor, watched, instance)
    accepted = datetime.now(timezone.utc) - timedelta(days=3)
    accession = sandbox.sec.publish_8k(STRATEGY, "Strategy bought bitcoin.", accepted_at=accepted)
    down_for_days = edit(first.cursor, read_through=ago(days=4))
    back = tick(sensors.sec_filing_sensor, watched, instance, cursor=down_for_days)
    assert [r.run_key for r in back.run_requests] == [f"sec-{accession}"]


def test_an_article_dated_in_the_future_freezes_nothing(watched, sandbox, instance):
    first = tick(sensors.coinspot_listing_sensor, watched, instance)
    future = sandbox.zendesk.publish("Maintenance next month", created_at=datetime.now(timezone.utc) + timedelta(days=30))
    seen_future = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=first.cursor)
    assert [r.run_key for r in seen_future.run_requests] == [f"coinspot-article-{future['id']}"]
    listing = sandbox.zendesk.publish("New Coin Listing: Now (NOW)")
    later = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=seen_future.cursor)
    assert [r.run_key for r in later.run_requests] == [f"coinspot-article-{listing['id']}"]


def test_a_first_tick_that_sees_nothing_still_records_the_history_window(watched, sandbox, instance):
    resources = {**watched, "announcements": AnnouncementsResource(base_url=sandbox.url, retries=1, backoff=0.01,
                                                                   history_days=0)}
    first = tick(sensors.coinspot_listing_sensor, resources, instance)
    assert [r.run_key for r in first.run_requests] == [f"coinspot_announcements-history-{datetime.now(timezone.utc):%Y%m%d}"]
    assert json.loads(first.cursor)["read_through"]


def test_a_replayed_first_tick_asks_for_the_same_history_run(watched, sandbox, instance):
    one = tick(sensors.coinspot_listing_sensor, watched, instance)
    two = tick(sensors.coinspot_listing_sensor, watched, instance)  # the cursor of the first was never stored
    assert [r.run_key for r in one.run_requests] == [r.run_key for r in two.run_requests]
    one = tick(sensors.sec_filing_sensor, watched, instance)
    two = tick(sensors.sec_filing_sensor, watched, instance)
    assert [r.run_key for r in one.run_requests] == [r.run_key for r in two.run_requests]


def test_a_source_that_keeps_failing_turns_the_ticks_red(watched, sandbox, instance):
    first = tick(sensors.sec_filing_sensor, watched, instance)
    sandbox.inject(Fault("/submissions", "503", times=0))
    grey = tick(sensors.sec_filing_sensor, watched, instance, cursor=first.cursor)
    assert grey.run_requests == [] and "SEC EDGAR could not be read" in grey.skip_message
    assert json.loads(grey.cursor)["read_through"] == json.loads(first.cursor)["read_through"]
    failing_for_minutes = edit(grey.cursor, failing_since=ago(minutes=3))
    with pytest.raises(Exception, match=r"SEC EDGAR has failed every tick since .*HTTP 503"):
        tick(sensors.sec_filing_sensor, watched, instance, cursor=failing_for_minutes)
    sandbox.server.clear_faults()
    back = tick(sensors.sec_filing_sensor, watched, instance, cursor=failing_for_minutes)
    assert json.loads(back.cursor)["failing_since"] is None


def test_a_missing_contact_for_the_sec_is_red_at_once_and_sends_nothing(watched, sandbox, instance):
    resources = {**watched, "sec": SecResource(data_url=sandbox.url, archives_url=sandbox.url, ciks=[STRATEGY],
                                               forms=["8-K"])}
    with pytest.raises(Exception, match="OMC_SEC_USER_AGENT"):
        tick(sensors.sec_filing_sensor, resources, instance)
    assert not sandbox.server.requests_to("/submissions")


def test_a_parser_bug_is_red_not_an_outage(watched, sandbox, instance, monkeypatch):
    first = tick(sensors.sec_filing_sensor, watched, instance)
    sandbox.sec.publish_8k(STRATEGY, "Strategy bought bitcoin.")

    def broken(*args, **kwargs):
        raise TypeError("a bug in our parser")

    monkeypatch.setattr(sensors, "filings_of", broken)
    with pytest.raises(Exception, match="a bug in our parser"):
        tick(sensors.sec_filing_sensor, watched, instance, cursor=first.cursor)


def test_a_sensor_run_fetches_only_its_own_filing(watched, sandbox, instance, engine):
    first = tick(sensors.sec_filing_sensor, watched, instance)
    accession = sandbox.sec.publish_8k(STRATEGY, "Strategy Inc acquired 1,000 bitcoins for $100.0 million.")
    [request] = tick(sensors.sec_filing_sensor, watched, instance, cursor=first.cursor).run_requests
    sandbox.server.requests.clear()
    assert materialize([catalyst.sec_filings], resources=watched, run_config=request.run_config).success
    served = [r["path"] for r in sandbox.server.requests]
    assert len(served) == 1 and served[0].startswith("/Archives/") and accession.replace("-", "") in served[0]


def test_a_sensor_run_records_its_article_without_asking_the_help_centre(watched, sandbox, instance):
    first = tick(sensors.coinspot_listing_sensor, watched, instance)
    sandbox.zendesk.publish("New Coin Listing: Quick (QCK)")
    [request] = tick(sensors.coinspot_listing_sensor, watched, instance, cursor=first.cursor).run_requests
    sandbox.server.requests.clear()
    result = materialize([catalyst.coinspot_announcements], resources=watched, run_config=request.run_config)
    assert result.success and sandbox.server.requests == []
    assert result.asset_materializations_for_node("coinspot_announcements")[0].metadata["events"].value == 1
