"""Alembic environment for the handoff store. Run through ``handoff_channel.store.migrate``, which
hands over an open connection; there is no alembic.ini."""

from __future__ import annotations

from alembic import context

from handoff_channel.store.sql import schema

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=schema,
    version_table="handoff_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
