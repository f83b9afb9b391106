"""reconcile: job requests and sync state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:32:43.165373
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("aurous_request_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_request")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_job_request_idempotency_key")),
    )
    with op.batch_alter_table("job_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_request_fingerprint_created_at"),
            ["fingerprint", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_job_request_state_updated_at"), ["state", "updated_at"], unique=False
        )

    op.create_table(
        "sync_state",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sync_state")),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
    with op.batch_alter_table("job_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_request_state_updated_at"))
        batch_op.drop_index(batch_op.f("ix_job_request_fingerprint_created_at"))

    op.drop_table("job_request")
