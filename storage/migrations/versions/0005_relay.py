"""relay: the outbox, destinations and pushes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 02:14:28.934260
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "destination",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("failing_since", storage.types.UTCDateTime(), nullable=True),
        sa.Column("last_success_at", storage.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destination")),
    )
    op.create_table(
        "event",
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_event")),
        sa.UniqueConstraint("id", name=op.f("uq_event_id")),
        sa.UniqueConstraint("job_id", "sequence", name=op.f("uq_event_job_id_sequence")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_created_at"), ["created_at"], unique=False)

    op.create_table(
        "destination_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("preview", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["destination.id"],
            name=op.f("fk_destination_secret_destination_id_destination"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destination_secret")),
    )
    with op.batch_alter_table("destination_secret", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_destination_secret_destination_id"), ["destination_id"], unique=False
        )

    op.create_table(
        "event_push",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("event_position", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lease_expires_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["destination.id"],
            name=op.f("fk_event_push_destination_id_destination"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_push")),
        sa.UniqueConstraint(
            "destination_id", "event_id", name=op.f("uq_event_push_destination_id_event_id")
        ),
    )
    with op.batch_alter_table("event_push", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_push_destination_id_job_id_sequence"),
            ["destination_id", "job_id", "sequence"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_event_push_event_position"), ["event_position"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_event_push_state_next_attempt_at"),
            ["state", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "push_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("attempted_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["destination.id"],
            name=op.f("fk_push_attempt_destination_id_destination"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_attempt")),
    )
    with op.batch_alter_table("push_attempt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_push_attempt_attempted_at"), ["attempted_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_push_attempt_destination_id_id"), ["destination_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("push_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_attempt_destination_id_id"))
        batch_op.drop_index(batch_op.f("ix_push_attempt_attempted_at"))

    op.drop_table("push_attempt")
    with op.batch_alter_table("event_push", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_push_state_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_event_push_event_position"))
        batch_op.drop_index(batch_op.f("ix_event_push_destination_id_job_id_sequence"))

    op.drop_table("event_push")
    with op.batch_alter_table("destination_secret", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destination_secret_destination_id"))

    op.drop_table("destination_secret")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_created_at"))

    op.drop_table("event")
    op.drop_table("destination")
