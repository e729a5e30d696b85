"""The ledger database: migrations and models agree, and the write path is idempotent."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from omc_pipelines.db import DatabaseNotMigrated, ensure_ready, get_engine, upsert
from omc_pipelines.db.engine import VERSION_TABLE, current_revision, head_revision
from omc_pipelines.db.models import Base, CatalystEvent, Trade
from omc_trading.tables import metadata as trading_metadata

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 2, 3, 0, tzinfo=timezone.utc)


def schema_diff(engine: sa.Engine, metadata: sa.MetaData | list[sa.MetaData]) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
        return compare_metadata(context, metadata)


def test_migrations_and_models_agree(engine):
    assert current_revision(engine) == head_revision()
    assert schema_diff(engine, [Base.metadata, trading_metadata]) == []


def test_the_comparison_sees_drift(engine):
    """The agreement test is only worth something if a difference would show."""
    drifted = sa.MetaData()
    for table in [*Base.metadata.sorted_tables, *trading_metadata.sorted_tables]:
        table.to_metadata(drifted)
    sa.Table("catalyst_events", drifted).append_column(sa.Column("sentiment", sa.Float))
    diff = schema_diff(engine, drifted)
    assert [d[0] for d in diff] == ["add_column"]
    assert diff[0][3].name == "sentiment"


def test_catalyst_currencies_is_a_real_array_on_postgres_and_json_on_sqlite(engine):
    column = {c["name"]: c for c in sa.inspect(engine).get_columns("catalyst_events")}["currencies"]
    if engine.dialect.name == "postgresql":
        assert isinstance(column["type"], sa.ARRAY)
        assert isinstance(column["type"].item_type, sa.String)
    else:
        assert isinstance(column["type"], sa.JSON)
    row = dict(source="sec", external_id="0001050446-26-000001", event_type="filing", title="8-K",
               description=None, currencies=["BTC", "ETH"], impact_score=7, published_at=T0,
               detected_at=T0, url=None, collected_at=T0)
    with engine.begin() as conn:
        upsert(conn, CatalystEvent.__table__, [row], ["source", "external_id"])
    with engine.connect() as conn:
        assert conn.execute(sa.select(CatalystEvent.currencies)).scalar_one() == ["BTC", "ETH"]
        if engine.dialect.name == "postgresql":
            # A real array answers array operators: the old system's JSON text could not.
            found = conn.execute(sa.select(sa.func.count()).where(sa.literal("BTC") == sa.any_(CatalystEvent.currencies))).scalar_one()
            assert found == 1


def test_impact_score_is_bounded(engine):
    row = dict(source="sec", external_id="x", event_type="filing", title="t", description=None, currencies=[],
               impact_score=11, published_at=T0, detected_at=T0, url=None, collected_at=T0)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        upsert(conn, CatalystEvent.__table__, [row], ["source", "external_id"])


def trade(i: int, **changes) -> dict:
    row = dict(coin="btc", market="aud", side="buy", amount=0.1 + i, rate=100.0 + i, total=(0.1 + i) * (100.0 + i),
               sold_at=T0 + timedelta(minutes=i), collected_at=T0)
    return {**row, **changes}


KEY = ("coin", "market", "sold_at", "side", "amount", "rate")


def test_upsert_writes_each_natural_key_once(engine):
    rows = [trade(i) for i in range(50)]
    with engine.begin() as conn:
        assert upsert(conn, Trade.__table__, rows, KEY) == 50
    with engine.begin() as conn:
        assert upsert(conn, Trade.__table__, rows + [trade(50)], KEY) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Trade)).scalar_one() == 51
        stored = conn.execute(sa.select(Trade.sold_at).where(Trade.amount == 0.1)).scalar_one()
    assert stored == T0 and stored.tzinfo is not None


def test_upsert_update_overwrites_only_the_named_columns(engine):
    with engine.begin() as conn:
        upsert(conn, Trade.__table__, [trade(1)], KEY)
        # The same key twice in one batch: the last one wins, no "row affected twice" error.
        upsert(conn, Trade.__table__, [trade(1, total=1.0), trade(1, total=2.0, collected_at=T0 + timedelta(1))],
               KEY, update=("total",))
    with engine.connect() as conn:
        total, collected = conn.execute(sa.select(Trade.total, Trade.collected_at)).one()
    assert (total, collected) == (2.0, T0)


def test_a_failed_write_leaves_nothing(engine):
    good, bad = trade(1), trade(2, side=None)  # side is NOT NULL
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        upsert(conn, Trade.__table__, [good, bad], KEY)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Trade)).scalar_one() == 0


def test_naive_times_are_refused_on_every_path(engine):
    with pytest.raises(sa.exc.StatementError, match="naive"), engine.begin() as conn:
        conn.execute(sa.insert(Trade), [trade(1, sold_at=datetime(2026, 1, 1))])
    # The upsert path too: on PostgreSQL it streams with COPY, past the column type's check.
    with pytest.raises((ValueError, sa.exc.StatementError), match="naive"), engine.begin() as conn:
        upsert(conn, Trade.__table__, [trade(1), trade(2, sold_at=datetime(2026, 1, 1))], KEY)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Trade)).scalar_one() == 0


def test_an_unmigrated_database_is_refused_with_the_command_to_run(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(DatabaseNotMigrated, match="omc db upgrade"):
        ensure_ready(engine, auto_migrate=False)
    ensure_ready(engine, auto_migrate=True)
    assert current_revision(engine) == head_revision()
    assert set(sa.inspect(engine).get_table_names()) >= {"catalyst_events", "exchange_trades", VERSION_TABLE}
