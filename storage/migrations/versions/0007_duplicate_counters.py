"""duplicate deliveries are counted on the first one, not stored

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 05:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Stored duplicate rows are folded into their first delivery's counter, so no count is lost.
FOLD_DUPLICATES = """
UPDATE delivery SET
    duplicates = (SELECT count(*) FROM delivery AS copy WHERE copy.duplicate_of = delivery.id),
    last_duplicate_at = (
        SELECT max(copy.received_at) FROM delivery AS copy WHERE copy.duplicate_of = delivery.id
    )
WHERE id IN (SELECT duplicate_of FROM delivery WHERE duplicate_of IS NOT NULL)
"""


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("duplicates", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("last_duplicate_at", storage.types.UTCDateTime(), nullable=True)
        )
    op.execute(FOLD_DUPLICATES)
    op.execute("DELETE FROM delivery WHERE status = 'duplicate'")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("duplicate_of")


def downgrade() -> None:
    # Keeps every first delivery; how many copies each had is not turned back into rows.
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
        batch_op.drop_column("last_duplicate_at")
        batch_op.drop_column("duplicates")
