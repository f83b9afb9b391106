"""receive and track: secrets, deliveries, jobs, events, outputs

Revision ID: 0001
Revises:
Create Date: 2026-11-25 20:07:12.946303
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("reject_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("received_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("signature_t", sa.BigInteger(), nullable=True),
        sa.Column("secret_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("body_size", sa.Integer(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("remote_addr", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint("event_id", name=op.f("uq_delivery_event_id")),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_delivery_status_id"), ["status", "id"], unique=False)

    op.create_table(
        "job",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("terminal", sa.Boolean(), nullable=False),
        sa.Column("first_seen_via", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("terminal_via", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("completed_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("first_seen_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("last_observed_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("next_poll_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("poll_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lease_expires_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("cost_micros", sa.BigInteger(), nullable=True),
        sa.Column("cost_state", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("cost_currency", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("request_fingerprint", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("request_metadata", sa.JSON(), nullable=True),
        sa.Column("last_response", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_job_idempotency_key")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_first_seen_at_id"), ["first_seen_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_job_status_first_seen_at"), ["status", "first_seen_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_job_terminal_next_poll_at"), ["terminal", "next_poll_at"], unique=False
        )

    op.create_table(
        "rejection_count",
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("reason", name=op.f("pk_rejection_count")),
    )
    op.create_table(
        "webhook_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("preview", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("retired_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("last_matched_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("match_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_secret")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_webhook_secret_fingerprint")),
    )
    op.create_table(
        "job_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("from_status", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("to_status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_job_event_job_id_job")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_event")),
    )
    with op.batch_alter_table("job_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_event_job_id_id"), ["job_id", "id"], unique=False)

    op.create_table(
        "output",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("deadline", storage.types.UTCDateTime(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lease_expires_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("archived_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_output_job_id_job")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_output")),
        sa.UniqueConstraint("job_id", "position", name=op.f("uq_output_job_id_position")),
    )
    with op.batch_alter_table("output", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_output_state_deadline"), ["state", "deadline"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("output", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_output_state_deadline"))

    op.drop_table("output")
    with op.batch_alter_table("job_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_event_job_id_id"))

    op.drop_table("job_event")
    op.drop_table("webhook_secret")
    op.drop_table("rejection_count")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_terminal_next_poll_at"))
        batch_op.drop_index(batch_op.f("ix_job_status_first_seen_at"))
        batch_op.drop_index(batch_op.f("ix_job_first_seen_at_id"))

    op.drop_table("job")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_status_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_job_id"))

    op.drop_table("delivery")
