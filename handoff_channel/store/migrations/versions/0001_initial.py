"""The first schema of the handoff store.

Migrations are history: this file spells its tables out instead of reading the current model, so
it keeps creating exactly what version 0001 was.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "handoff_conversations",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("assignee", sa.String(64), nullable=True, index=True),
        sa.Column("assignee_name", sa.String(128), nullable=True),
        sa.Column("priority", sa.Integer, nullable=True),
        sa.Column("handoff", sa.Text, nullable=True),
        sa.Column("queued_at", sa.Float, nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("visitor_delivered_seq", sa.Integer, nullable=False),
        sa.Column("last_role", sa.String(16), nullable=True),
        sa.Column("last_text", sa.String(300), nullable=True),
        sa.Column("last_at", sa.Float, nullable=True),
    )
    op.create_table(
        "handoff_messages",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("author", sa.String(64), nullable=True),
        sa.Column("author_name", sa.String(128), nullable=True),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("meta", sa.Text, nullable=True),
        sa.Column("client_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_handoff_messages_seq"),
        sa.UniqueConstraint("conversation_id", "client_id", name="uq_handoff_messages_client_id"),
    )
    op.create_table(
        "handoff_timeline",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "handoff_feed",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "handoff_rasa_outbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "handoff_outbox_leases",
        sa.Column("conversation_id", sa.String(128), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "handoff_agents",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("availability", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "handoff_canned_responses",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("shortcut", sa.String(64), nullable=False, unique=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "handoff_agent_sessions",
        sa.Column("token_hash", sa.String(128), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "handoff_agent_sessions", "handoff_canned_responses", "handoff_agents", "handoff_outbox_leases",
        "handoff_rasa_outbox", "handoff_feed", "handoff_timeline", "handoff_messages", "handoff_conversations",
    ):
        op.drop_table(table)
