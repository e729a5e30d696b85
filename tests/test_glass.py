"""The Glass ledger's assets against the sandbox, on both databases."""

import logging
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from dagster import AssetSelection, materialize

from omc_pipelines.db.models import ChainTvl, ProtocolFees, ProtocolSnapshot, StablecoinSupply
from omc_pipelines.ledgers.glass import assets as glass, checks
from omc_pipelines.resources import DefiLlamaResource, LedgerDatabase
from omc_pipelines.sandbox import Fault

pytestmark = pytest.mark.integration
CHAINS = ["Ethereum", "Solana", "Tron"]
TODAY = datetime.now(timezone.utc).date()


def defillama_resource(sandbox, protocols=("aave", "lido"), top=5) -> DefiLlamaResource:
    return DefiLlamaResource(api_url=sandbox.url, stablecoins_url=sandbox.url, chains=CHAINS, protocols=list(protocols),
                             top_protocols=top, retries=2, backoff=0.01, rate_limit=1000.0)


@pytest.fixture
def glass_resources(database_url, sandbox):
    return {"ledger_db": LedgerDatabase(url=database_url, auto_migrate=False), "defillama": defillama_resource(sandbox)}


def checks_of(asset):
    return [c for c in checks.ALL if {k.asset_key for k in c.check_keys} == {asset.key}]


def tvl_rows(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(ChainTvl.chain, ChainTvl.day, ChainTvl.tvl_usd, ChainTvl.collected_at)
                            .order_by(ChainTvl.day, ChainTvl.chain)).all()


def days(first: date, count: int) -> dict:
    last = first + timedelta(days=count - 1)
    return {"dagster/asset_partition_range_start": first.isoformat(), "dagster/asset_partition_range_end": last.isoformat()}


def test_a_week_of_chain_tvl_is_one_run_and_a_second_backfill_changes_nothing(glass_resources, engine, sandbox):
    first = TODAY - timedelta(days=7)
    result = materialize([glass.defillama_chain_tvl, *checks_of(glass.defillama_chain_tvl)],
                         resources=glass_resources, tags=days(first, 7))
    assert result.success
    assert len(result.asset_materializations_for_node("defillama_chain_tvl")) == 7  # seven partitions, one run
    stored = tvl_rows(engine)
    assert len(stored) == 7 * len(CHAINS)
    assert {r.day for r in stored} == {first + timedelta(days=i) for i in range(7)}
    served = {p["date"]: p["tvl"] for p in sandbox.defillama.chain_series("Ethereum")}
    midnight = int(datetime.combine(first, datetime.min.time(), tzinfo=timezone.utc).timestamp())
    assert [r.tvl_usd for r in stored if r.chain == "Ethereum" and r.day == first] == [pytest.approx(served[midnight])]

    assert materialize([glass.defillama_chain_tvl], resources=glass_resources, tags=days(first, 7)).success
    assert [r[:3] for r in tvl_rows(engine)] == [r[:3] for r in stored]


def test_rerunning_one_day_updates_that_day_and_nothing_else(glass_resources, engine, sandbox):
    first = TODAY - timedelta(days=3)
    assert materialize([glass.defillama_chain_tvl], resources=glass_resources, tags=days(first, 3)).success
    before = {(r.chain, r.day): r for r in tvl_rows(engine)}
    middle = first + timedelta(days=1)
    sandbox.defillama.set_tvl("Solana", middle, 123.0)
    assert materialize([glass.defillama_chain_tvl], resources=glass_resources, partition_key=middle.isoformat()).success
    after = {(r.chain, r.day): r for r in tvl_rows(engine)}
    assert after[("Solana", middle)].tvl_usd == 123.0
    for key, row in before.items():
        if key[1] != middle:
            assert after[key] == row  # untouched, collected_at included


def test_snapshots_are_stored_as_of_today_and_a_rerun_replaces_only_today(glass_resources, engine):
    yesterday = TODAY - timedelta(days=1)
    old = dict(slug="old-protocol", as_of=yesterday, name="Old", symbol=None, category=None, chains=["Ethereum"],
               tvl_usd=1.0, change_1d=None, mcap=None, collected_at=datetime.now(timezone.utc))
    with engine.begin() as conn:
        conn.execute(sa.insert(ProtocolSnapshot), [old])
    snapshot_assets = [glass.defillama_protocols, glass.defillama_fees, glass.defillama_stablecoins]
    snapshot_checks = [c for a in snapshot_assets for c in checks_of(a)]
    for _ in range(2):
        result = materialize(snapshot_assets + snapshot_checks, resources=glass_resources)
        assert result.success
    with engine.connect() as conn:
        protocols = conn.execute(sa.select(ProtocolSnapshot.slug, ProtocolSnapshot.as_of, ProtocolSnapshot.chains)).all()
        fees = conn.execute(sa.select(ProtocolFees.data_type, sa.func.count()).group_by(ProtocolFees.data_type)).all()
        stables = conn.execute(sa.select(StablecoinSupply.symbol, StablecoinSupply.as_of, StablecoinSupply.circulating)).all()
    todays = [p for p in protocols if p.as_of == TODAY]
    assert ("old-protocol", yesterday, ["Ethereum"]) in protocols  # another day's snapshot is left alone
    # The configured slugs (aave via its versions' parent, lido) plus the top five, without exchanges.
    assert any(p.slug.startswith("aave") for p in todays) and any(p.slug.startswith("lido") for p in todays)
    assert len(todays) == len({p.slug for p in todays}) >= 5
    assert dict(fees).keys() == {"fees", "revenue"} and all(n > 0 for n in dict(fees).values())
    assert {s.as_of for s in stables} == {TODAY} and "USDT" in {s.symbol for s in stables}
    assert all(e.passed for e in result.get_asset_check_evaluations())
    metadata = result.asset_materializations_for_node("defillama_protocols")[0].metadata
    assert metadata["not_found"].value == []


def test_throttling_is_ridden_out_and_a_negative_tvl_is_rejected_with_its_reason(glass_resources, engine, sandbox, instance):
    sandbox.inject(Fault("/v2/historicalChainTvl", "429", times=2, retry_after=0))
    first, day = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
    sandbox.defillama.set_tvl("Tron", day, -5.0)
    assets = [glass.defillama_chain_tvl, *checks_of(glass.defillama_chain_tvl)]
    result = materialize(assets, resources=glass_resources, tags=days(first, 2))
    stored = {(r.chain, r.day) for r in tvl_rows(engine)}
    assert len(stored) == 2 * len(CHAINS) - 1 and ("Tron", day) not in stored and ("Tron", first) in stored
    metadata = result.asset_materializations_for_node("defillama_chain_tvl")[0].metadata
    assert metadata["rejected"].value == [f"Tron on {day}: negative tvl=-5.0"]
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert len([r for r in sandbox.server.requests if r["fault"] == "429"]) == 2
    # A window of only that day: nothing of Tron's is a fact, and the chain is listed as failed.
    result = materialize(assets, resources=glass_resources, partition_key=day.isoformat())
    failed = result.asset_materializations_for_node("defillama_chain_tvl")[0].metadata["failed_chains"].value
    assert list(failed) == ["Tron"] and f"Tron on {day}: negative tvl=-5.0" in failed["Tron"]
    # The blocking check judges the rows its run wrote: a stored bad row of another run fails no
    # later run, and a bad row among the run's own fails it.
    with engine.begin() as conn:
        conn.execute(sa.insert(ChainTvl), [dict(chain="Bitcoin", day=first - timedelta(days=30), tvl_usd=-5.0,
                                                collected_at=datetime.now(timezone.utc))])
    result = materialize(assets, resources=glass_resources, partition_key=first.isoformat(), instance=instance)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    with engine.begin() as conn:  # one of the run's own rows gone bad (another writer, a bug)
        conn.execute(sa.update(ChainTvl).where(ChainTvl.chain == "Ethereum", ChainTvl.day == first).values(tvl_usd=-1.0))
    check = next(c for c in checks_of(glass.defillama_chain_tvl) if "tvl_not_negative" in str(c.check_keys))
    judged = materialize([glass.defillama_chain_tvl, check], selection=AssetSelection.checks(check),
                         resources=glass_resources, instance=instance, raise_on_error=False)
    [evaluation] = judged.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["negative"].value == 1


# --- answers that would shrink a ledger: errors, never facts --------------------------------------


def failure_message(result) -> str:
    """The step's error with its causes (Dagster wraps what the asset raised)."""
    [failure] = result.get_step_failure_events()
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(f"{error.cls_name}: {error.message}")
        error = error.cause
    return "\n".join(messages)


def warnings_of(instance, result) -> list[str]:
    return [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]


def stored_tvl(engine) -> dict:
    return {(r.chain, r.day): (r.tvl_usd, r.collected_at) for r in tvl_rows(engine)}


@pytest.mark.parametrize("blank", ["empty series", "all NaN", "all null", "no point in the window"])
def test_one_chain_answering_no_tvl_keeps_its_days_and_is_listed(glass_resources, engine, sandbox, blank, instance):
    first = TODAY - timedelta(days=3)
    assert materialize([glass.defillama_chain_tvl], resources=glass_resources, tags=days(first, 3)).success
    before = stored_tvl(engine)
    if blank == "empty series":
        sandbox.defillama.empty("series", "Solana")
    elif blank == "no point in the window":
        for i in range(3):
            sandbox.defillama.set_tvl("Solana", first + timedelta(days=i), None)
    else:
        sandbox.defillama.fill_series("Solana", float("nan") if blank == "all NaN" else None)
    sandbox.defillama.set_tvl("Ethereum", first, 42.0)

    result = materialize([glass.defillama_chain_tvl], resources=glass_resources, tags=days(first, 3), instance=instance)

    assert result.success  # the other chains are written
    after = stored_tvl(engine)
    assert after.keys() == before.keys()
    assert after[("Ethereum", first)][0] == 42.0
    assert {k: v for k, v in after.items() if k[0] == "Solana"} == {k: v for k, v in before.items() if k[0] == "Solana"}
    failed = result.asset_materializations_for_node("defillama_chain_tvl")[0].metadata["failed_chains"].value
    assert list(failed) == ["Solana"]
    assert "defillama" in failed["Solana"] and f"{sandbox.url}/v2/historicalChainTvl/Solana" in failed["Solana"]
    assert any("Solana" in w and "historicalChainTvl/Solana" in w for w in warnings_of(instance, result))


def test_a_chain_failing_after_retries_or_malformed_does_not_stop_the_others(glass_resources, engine, sandbox):
    first = TODAY - timedelta(days=2)
    assert materialize([glass.defillama_chain_tvl], resources=glass_resources, tags=days(first, 2)).success
    before = stored_tvl(engine)
    sandbox.inject(Fault("/v2/historicalChainTvl/Tron", "500", times=0))
    sandbox.defillama.set_tvl("Solana", first, "n/a")
    sandbox.defillama.set_tvl("Ethereum", first, 42.0)

    result = materialize([glass.defillama_chain_tvl], resources=glass_resources, tags=days(first, 2))

    assert result.success
    failed = result.asset_materializations_for_node("defillama_chain_tvl")[0].metadata["failed_chains"].value
    assert sorted(failed) == ["Solana", "Tron"]
    assert "HTTP 500" in failed["Tron"] and ".tvl" in failed["Solana"] and "'n/a'" in failed["Solana"]
    after = stored_tvl(engine)
    assert after[("Ethereum", first)][0] == 42.0
    assert all(after[k] == before[k] for k in before if k[0] != "Ethereum")


def test_every_chain_failing_fails_the_run_and_touches_nothing(glass_resources, engine, sandbox):
    first = TODAY - timedelta(days=2)
    assert materialize([glass.defillama_chain_tvl], resources=glass_resources, tags=days(first, 2)).success
    before = stored_tvl(engine)
    sandbox.defillama.empty("series", "Ethereum")
    sandbox.defillama.fill_series("Solana", "NaN")
    sandbox.inject(Fault("/v2/historicalChainTvl/Tron", "503", times=0))

    result = materialize([glass.defillama_chain_tvl], resources=glass_resources, tags=days(first, 2),
                         raise_on_error=False)

    assert not result.success
    assert stored_tvl(engine) == before
    message = failure_message(result)
    assert all(chain in message for chain in CHAINS) and "HTTP 503" in message


SNAPSHOTS = {
    "protocols": (glass.defillama_protocols, ProtocolSnapshot, "/protocols"),
    "fees": (glass.defillama_fees, ProtocolFees, "/overview/fees"),
    "revenue": (glass.defillama_fees, ProtocolFees, "/overview/fees"),
    "stablecoins": (glass.defillama_stablecoins, StablecoinSupply, "/stablecoins"),
}


def todays_rows(engine, model) -> list:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(model.__table__).where(model.as_of == TODAY)).all())


@pytest.mark.parametrize("answer", list(SNAPSHOTS))
def test_an_empty_snapshot_fails_the_run_and_keeps_todays_rows(glass_resources, engine, sandbox, answer):
    asset, model, path = SNAPSHOTS[answer]
    assert materialize([asset], resources=glass_resources).success
    before = todays_rows(engine, model)
    assert before
    sandbox.defillama.empty(answer)

    result = materialize([asset], resources=glass_resources, raise_on_error=False)

    assert not result.success
    assert todays_rows(engine, model) == before  # collected_at included: not even rewritten
    message = failure_message(result)
    assert "defillama" in message and f"{sandbox.url}{path}" in message and "empty" in message


def test_protocols_of_which_none_is_selected_fail_the_run_and_keep_todays_rows(glass_resources, engine, sandbox):
    assert materialize([glass.defillama_protocols], resources=glass_resources).success
    before = todays_rows(engine, ProtocolSnapshot)
    resources = {**glass_resources, "defillama": defillama_resource(sandbox, protocols=["not-a-protocol"], top=0)}

    result = materialize([glass.defillama_protocols], resources=resources, raise_on_error=False)

    assert not result.success
    assert todays_rows(engine, ProtocolSnapshot) == before
    message = failure_message(result)
    assert f"{sandbox.url}/protocols" in message and "not-a-protocol" in message


# --- numbers that are not facts: rejected with the reason, never stored ---------------------------


def test_a_negative_tvl_fee_or_supply_is_rejected_with_its_reason_and_the_rest_stored(glass_resources, engine, sandbox):
    aave = next(p for p in sandbox.defillama.protocols if p["slug"] == "aave-v3")
    aave["tvl"] = -aave["tvl"]
    lido_fees = next(p for p in sandbox.defillama.overviews["dailyFees"]["protocols"] if p.get("slug") == "lido")
    lido_fees["total7d"] = -1.0
    usdt = next(c for c in sandbox.defillama.stablecoins["peggedAssets"] if c["symbol"] == "USDT")
    usdt["circulating"]["peggedUSD"] = -usdt["circulating"]["peggedUSD"]
    assets = [glass.defillama_protocols, glass.defillama_fees, glass.defillama_stablecoins]

    result = materialize(assets, resources=glass_resources)

    assert result.success
    rejected = {node: result.asset_materializations_for_node(node)[0].metadata["rejected"].value
                for node in ("defillama_protocols", "defillama_fees", "defillama_stablecoins")}
    assert rejected["defillama_protocols"] == [f"protocol aave-v3: negative tvl={aave['tvl']}"]
    assert rejected["defillama_fees"] == ["fees of lido: negative total_7d=-1.0"]
    assert rejected["defillama_stablecoins"] == [f"stablecoin USDT (1): negative circulating={float(usdt['circulating']['peggedUSD'])}"]
    slugs = {(r.slug, r.data_type) for r in todays_rows(engine, ProtocolFees)}
    assert ("lido", "fees") not in slugs and ("lido", "revenue") in slugs
    assert "aave-v3" not in {r.slug for r in todays_rows(engine, ProtocolSnapshot)}
    assert "aave-v2" in {r.slug for r in todays_rows(engine, ProtocolSnapshot)}
    assert "USDT" not in {r.symbol for r in todays_rows(engine, StablecoinSupply)}


@pytest.mark.parametrize("answer, variant", [
    *((answer, variant) for answer in ("protocols", "fees", "stablecoins") for variant in ("negative", "zero")),
    # The first field of every object dropped: the fees' category (in /protocols it is "address",
    # which is not read; in /stablecoins the whole "peggedAssets").
    ("fees", "missing"),
    ("stablecoins", "missing"),
])
def test_a_wrong_answer_fails_its_snapshot_and_keeps_todays_rows(glass_resources, engine, sandbox, answer, variant):
    """Every item negative (each rejected), every value zero, a field dropped from every item:
    a source error, like an empty answer, never today's rows replaced by it."""
    asset, model, path = SNAPSHOTS[answer]
    assert materialize([asset], resources=glass_resources).success
    before = todays_rows(engine, model)
    sandbox.inject(Fault(path, "wrong_shape", times=0, variant=variant))

    result = materialize([asset], resources=glass_resources, raise_on_error=False)

    assert not result.success
    assert todays_rows(engine, model) == before
    message = failure_message(result)
    assert "SourcePayloadError" in message and "defillama: " in message and f"{sandbox.url}{path}" in message
