"""Alembic environment: the engine comes from the caller (omc_pipelines.db.engine)."""

from alembic import context

from omc_pipelines.db.engine import VERSION_TABLE
from omc_pipelines.db.models import Base
from omc_trading.tables import metadata as trading_metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=[Base.metadata, trading_metadata],
        version_table=VERSION_TABLE,
        # SQLite alters tables by copying them.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
