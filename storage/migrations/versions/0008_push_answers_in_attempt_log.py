"""a push's last answer is read from its attempt log, not kept on the push

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# `push_attempt` holds every answer with its status, error and first KiB; the copy of the
# last one on `event_push` was written on every attempt and never read.
def upgrade() -> None:
    with op.batch_alter_table("event_push", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("last_status")


def downgrade() -> None:
    with op.batch_alter_table("event_push", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_status", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
