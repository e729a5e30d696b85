"""What the UI shows of every asset: table, columns, owners, tags, code references; previews
that read well; row counts that are true per partition."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from dagster import TableSchema, materialize

from omc_pipelines import metadata, settings
from omc_pipelines.db import upsert
from omc_pipelines.db.models import CatalystEvent, Trade
from omc_pipelines.definitions import build_defs
from omc_pipelines.ledgers.exchange import assets as exchange

defs = build_defs(settings.load({}))
GROUPS = {"exchange", "catalyst", "glass", "human", "trading", "research"}


def test_every_asset_says_its_table_columns_owner_ledger_source_and_code():
    graph = defs.resolve_asset_graph()
    seen_groups = set()
    for node in graph.asset_nodes:
        name = node.key.to_user_string()
        seen_groups.add(node.group_name)
        table = node.metadata.get("dagster/table_name")
        assert table, name
        schema = node.metadata.get("dagster/column_schema")
        assert isinstance(schema, TableSchema) and schema.columns, name
        # The unique key shows as a constraint: a single column's on the column, a compound one on the table.
        keyed = any(c.constraints.unique for c in schema.columns if c.name != "id") or schema.constraints
        assert keyed, name
        assert node.owners == [metadata.OWNERS[node.group_name]], name
        assert node.tags.get("ledger") == node.group_name and node.tags.get("source"), name
        assert node.metadata.get("dagster/code_references"), name
    assert seen_groups == GROUPS
    # Two catalyst assets write one table, told apart by their source tag.
    catalyst = {n.key.to_user_string(): n for n in graph.asset_nodes if n.group_name == "catalyst"}
    assert {n.metadata["dagster/table_name"] for n in catalyst.values()} == {CatalystEvent.__tablename__}
    assert catalyst["sec_filings"].tags["source"] == "sec"
    assert graph.get(exchange.coinspot_hourly_candles.key).metadata["dagster/table_name"] == "exchange_candles"


def test_the_column_schema_comes_from_the_model():
    schema = metadata.column_schema(Trade)
    columns = {c.name: c for c in schema.columns}
    assert list(columns) == [c.name for c in Trade.__table__.columns]
    assert columns["id"].constraints.unique and not columns["id"].constraints.nullable
    assert "unique (coin, market, sold_at, side, amount, rate)" in schema.constraints.other
    assert columns["rate"].type and columns["sold_at"].type.startswith("timestamp")


def test_every_schedule_and_sensor_has_a_description():
    repository = defs.get_repository_def()
    for trigger in [*repository.schedule_defs, *repository.sensor_defs]:
        assert trigger.description and len(trigger.description) > 20, trigger.name


@pytest.mark.parametrize("value, shown", [
    (4.61804e+09, "4,618,040,000.00"),
    (-4.61804e+09, "-4,618,040,000.00"),
    (0.00001234, "0.00001234"),
    (1.5e-07, "0.00000015"),
    (123.456789012, "123.456789"),
    (Decimal("1234567.891"), "1,234,567.89"),
    (12345678, "12,345,678"),
    (float("nan"), ""),
    (None, ""),
    (datetime(2026, 3, 1, 10, 30, tzinfo=timezone.utc), "2026-03-01 10:30:00"),
    (date(2026, 3, 1), "2026-03-01"),
    (["BTC", "ETH"], "BTC, ETH"),
])
def test_a_cell_is_written_out_as_people_read_it(value, shown):
    assert metadata.plain(value) == shown


def cells(table) -> str:
    """A preview table's header and cells as one text."""
    return " | ".join([c.name for c in table.schema.columns] + [str(v) for r in table.records for v in r.data.values()])


def test_a_preview_never_shows_scientific_notation():
    import numpy as np
    import pandas as pd

    rows = [{"chain": "Ethereum", "tvl_usd": 4.61804e+09, "price": 1.234e-05, "supply": np.float64(2.5e+12),
             "count": np.int64(10_000_000), "day": pd.Timestamp("2026-03-01", tz="UTC")}]
    for table in (metadata.preview(rows), metadata.preview(pd.DataFrame(rows))):
        shown = cells(table)
        assert "e+" not in shown and "e-" not in shown.replace("Ethereum", "")
        assert "4,618,040,000.00" in shown and "0.00001234" in shown and "2,500,000,000,000.00" in shown
        assert "10,000,000" in shown and "2026-03-01 00:00:00" in shown
        assert all(c.type == "string" for c in table.schema.columns) and len(table.records) == 1


@pytest.mark.integration
def test_a_multi_partition_candle_run_records_each_partitions_own_row_count(resources, engine, instance):
    t0 = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    # The week of Sunday the 1st: two coins at 10:00, one at 11:00; the week of the 2nd: one; the 9th's: none.
    trades = [dict(coin=coin, market="aud", side="buy", amount=1.0, rate=4.61804e+09, total=4.61804e+09,
                   sold_at=t0 + timedelta(minutes=minutes), collected_at=t0)
              for coin, minutes in (("btc", 5), ("eth", 10), ("btc", 70), ("eth", 24 * 60))]
    with engine.begin() as conn:
        upsert(conn, Trade.__table__, trades, exchange.TRADE_KEY)
    result = materialize([exchange.coinspot_hourly_candles], resources=resources, instance=instance,
                         tags={"dagster/asset_partition_range_start": "2026-02-23",
                               "dagster/asset_partition_range_end": "2026-03-09"})
    assert result.success
    counts = {m.partition: m.metadata["dagster/row_count"].value
              for m in result.asset_materializations_for_node("coinspot_hourly_candles")}
    assert counts == {"2026-02-23": 3, "2026-03-02": 1, "2026-03-09": 0}
    event = result.asset_materializations_for_node("coinspot_hourly_candles")[0]
    assert event.metadata["dagster/table_name"].value == "exchange_candles"
    preview = cells(event.metadata["preview"])
    assert "4,618,040,000.00" in preview and "e+09" not in preview

    # One partition: its own count and hours, the same way.
    single = materialize([exchange.coinspot_hourly_candles], resources=resources, partition_key="2026-03-02")
    [event] = single.asset_materializations_for_node("coinspot_hourly_candles")
    assert event.metadata["dagster/row_count"].value == 1 and len(event.metadata["hours"].value.records) == 7 * 24


def test_a_long_run_keeps_the_runs_total(monkeypatch):
    """Past PER_PARTITION_LIMIT partitions, no per-partition metadata: Dagster's check of each
    call scans the run's partitions, quadratic in the run's length."""

    class Context:
        partition_keys = [str(n) for n in range(metadata.PER_PARTITION_LIMIT + 1)]

        def add_asset_metadata(self, *args, **kwargs):
            raise AssertionError("not for a run this long")

    assert metadata.per_partition_counts(Context(), {}) is False
