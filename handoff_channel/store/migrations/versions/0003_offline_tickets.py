"""Offline tickets: a visitor's contact and issue, left when no person could take over (nobody
available, outside business hours, or a wait nobody answered).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "handoff_tickets",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("conversation_id", sa.String(128), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("issue", sa.Text, nullable=False),
        sa.Column("why", sa.String(32), nullable=False),
        sa.Column("handoff", sa.Text, nullable=True),
        sa.Column("visitor_label", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("closed_at", sa.Float, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("closed_by_name", sa.String(128), nullable=True),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("handoff_tickets")
