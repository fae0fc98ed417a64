"""Initial schema: users, cases, escalations, packets, reviews and the audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

escalations.current_packet_id and packets.escalation_id refer to each other: SQLite accepts
a foreign key to a table created later (it has no ALTER TABLE ADD CONSTRAINT), PostgreSQL gets
the constraint added once both tables exist.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON_ = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("accounts", JSON_, nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
        sa.UniqueConstraint("api_key_hash", name="uq_users_api_key_hash"),
    )

    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("update_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("body", JSON_, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("source", "ticket_id", "update_id", name="uq_cases_source_ticket_id_update_id"),
        sa.UniqueConstraint("source", "ticket_id", "version", name="uq_cases_source_ticket_id_version"),
    )
    op.create_index("ix_cases_account_id", "cases", ["account_id"])

    current_packet_fk = (
        [sa.ForeignKeyConstraint(["current_packet_id"], ["packets.id"],
                                 name="fk_escalations_current_packet_id_packets")]
        if sqlite else []
    )
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("product_area", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("current_packet_id", sa.Integer(), nullable=True),
        sa.Column("severity", sa.String(50), nullable=False),
        sa.Column("severity_override", sa.String(50), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("triggers", JSON_, nullable=False),
        sa.Column("checks_passed", sa.Boolean(), nullable=False),
        sa.Column("sla_due_at", TS, nullable=True),
        sa.Column("draft_update", sa.Text(), nullable=False),
        sa.Column("final_update", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("triggered_at", TS, nullable=True),
        sa.Column("approved_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_escalations"),
        sa.UniqueConstraint("source", "ticket_id", name="uq_escalations_source_ticket_id"),
        sa.CheckConstraint("state IN ('draft', 'in_review', 'approved', 'sent', 'rejected')",
                           name="ck_escalations_state"),
        *current_packet_fk,
    )
    op.create_index("ix_escalations_account_id", "escalations", ["account_id"])
    op.create_index("ix_escalations_state", "escalations", ["state"])

    op.create_table(
        "packets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("pack_name", sa.String(200), nullable=False),
        sa.Column("pack_version", sa.String(100), nullable=False),
        sa.Column("pack_hash", sa.String(100), nullable=False),
        sa.Column("severity", sa.String(50), nullable=False),
        sa.Column("checks_passed", sa.Boolean(), nullable=False),
        sa.Column("body", JSON_, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_packets"),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], name="fk_packets_escalation_id_escalations"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_packets_case_id_cases"),
        sa.UniqueConstraint("case_id", "pack_hash", name="uq_packets_case_id_pack_hash"),
    )
    op.create_index("ix_packets_escalation_id", "packets", ["escalation_id"])
    if not sqlite:
        op.create_foreign_key("fk_escalations_current_packet_id_packets", "escalations", "packets",
                              ["current_packet_id"], ["id"])

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("packet_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", JSON_, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], name="fk_reviews_escalation_id_escalations"),
        sa.ForeignKeyConstraint(["packet_id"], ["packets.id"], name="fk_reviews_packet_id_packets"),
        sa.CheckConstraint("action IN ('start', 'edit', 'approve', 'reject', 'override', 'send')",
                           name="ck_reviews_action"),
    )
    op.create_index("ix_reviews_escalation_id", "reviews", ["escalation_id"])

    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_prev_hash"),
    )


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("reviews")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_escalations_current_packet_id_packets", "escalations", type_="foreignkey")
    op.drop_table("packets")
    op.drop_table("escalations")
    op.drop_table("cases")
    op.drop_table("users")
