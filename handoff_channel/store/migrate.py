"""Brings a store's schema to the current version with Alembic. The gateway calls it at start-up
(several instances may start at once: on PostgreSQL an advisory lock lets one migrate while the
others wait); ``python -m handoff_channel migrate`` runs it by hand."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "handoff_alembic_version"
_LOCK_KEY = 7242_0001  # arbitrary, constant: "the handoff schema is being migrated"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        cfg.attributes["connection"] = conn
        tables = set(sa.inspect(conn).get_table_names())
        unversioned = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision() is None
        if "handoff_conversations" in tables and unversioned:
            # A store created before migrations existed holds exactly revision 0001: adopt it.
            command.stamp(cfg, "0001")
        command.upgrade(cfg, revision)
