"""audit: ledger, balance snapshots, findings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 21:33:29.800286
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "balance_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("taken_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("trigger", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("credits_micros", sa.BigInteger(), nullable=True),
        sa.Column("held_micros", sa.BigInteger(), nullable=True),
        sa.Column("available_micros", sa.BigInteger(), nullable=True),
        sa.Column("billing_mode", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("ledger_head", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("ledger_position", sa.BigInteger(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_snapshot")),
    )
    with op.batch_alter_table("balance_snapshot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_balance_snapshot_taken_at"), ["taken_at"], unique=False
        )

    op.create_table(
        "finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("expected_micros", sa.BigInteger(), nullable=True),
        sa.Column("actual_micros", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("first_seen_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", storage.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finding")),
        sa.UniqueConstraint("code", "subject", name=op.f("uq_finding_code_subject")),
    )
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_finding_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_finding_resolved_at_id"), ["resolved_at", "id"], unique=False
        )

    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uev_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("generation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("hold_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("contract", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("synced_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entry")),
        sa.UniqueConstraint("uev_id", name=op.f("uq_ledger_entry_uev_id")),
    )
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_entry_created_at_generation_id_type_amount_micros"),
            ["created_at", "generation_id", "type", "amount_micros"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_entry_generation_id_type_amount_micros"),
            ["generation_id", "type", "amount_micros"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_ledger_entry_hold_id"), ["hold_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ledger_entry_position_type_amount_micros"),
            ["position", "type", "amount_micros"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entry_position_type_amount_micros"))
        batch_op.drop_index(batch_op.f("ix_ledger_entry_hold_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entry_generation_id_type_amount_micros"))
        batch_op.drop_index(
            batch_op.f("ix_ledger_entry_created_at_generation_id_type_amount_micros")
        )

    op.drop_table("ledger_entry")
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finding_resolved_at_id"))
        batch_op.drop_index(batch_op.f("ix_finding_job_id"))

    op.drop_table("finding")
    with op.batch_alter_table("balance_snapshot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_balance_snapshot_taken_at"))

    op.drop_table("balance_snapshot")
