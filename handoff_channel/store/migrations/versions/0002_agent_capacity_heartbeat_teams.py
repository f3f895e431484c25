"""Agents get a capacity (most conversations auto-routing gives them at once), teams (a
comma-separated list) and the time of their inbox's last heartbeat.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handoff_agents") as batch:
        batch.add_column(sa.Column("capacity", sa.Integer, nullable=False, server_default="5"))
        batch.add_column(sa.Column("teams", sa.String(256), nullable=False, server_default=""))
        batch.add_column(sa.Column("last_seen_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handoff_agents") as batch:
        batch.drop_column("last_seen_at")
        batch.drop_column("teams")
        batch.drop_column("capacity")
