"""spend rollups: money per generation and per day

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 00:10:34.808369
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_FLOWS = (
    "SUM(CASE WHEN type = 'hold' THEN -amount_micros ELSE 0 END), "
    "SUM(CASE WHEN type = 'release' THEN amount_micros ELSE 0 END), "
    "SUM(CASE WHEN type = 'charge' THEN -amount_micros ELSE 0 END), "
    "SUM(CASE WHEN type = 'refund' THEN amount_micros ELSE 0 END)"
)


def _day_expression() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "COALESCE(TO_CHAR(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'unknown')"
    return "COALESCE(SUBSTR(created_at, 1, 10), 'unknown')"  # stored as UTC text


def upgrade() -> None:
    op.create_table(
        "generation_money",
        sa.Column("generation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("held_micros", sa.BigInteger(), nullable=False),
        sa.Column("released_micros", sa.BigInteger(), nullable=False),
        sa.Column("charged_micros", sa.BigInteger(), nullable=False),
        sa.Column("refunded_micros", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("generation_id", name=op.f("pk_generation_money")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "spend_day",
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("held_micros", sa.BigInteger(), nullable=False),
        sa.Column("released_micros", sa.BigInteger(), nullable=False),
        sa.Column("charged_micros", sa.BigInteger(), nullable=False),
        sa.Column("refunded_micros", sa.BigInteger(), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_spend_day")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "spend_day_generation",
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("generation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("day", "generation_id", name=op.f("pk_spend_day_generation")),
        sqlite_with_rowid=False,
    )
    _backfill()


def _backfill() -> None:
    """The rollups of the movements already synced; from here on the gateway keeps them."""
    day = _day_expression()
    job_movements = "FROM ledger_entry WHERE generation_id IS NOT NULL"
    op.execute(
        "INSERT INTO generation_money (generation_id, held_micros, released_micros, "
        f"charged_micros, refunded_micros) SELECT generation_id, {_FLOWS} {job_movements} "
        "GROUP BY generation_id"
    )
    op.execute(
        "INSERT INTO spend_day_generation (day, generation_id) "
        f"SELECT DISTINCT {day}, generation_id {job_movements}"
    )
    op.execute(
        "INSERT INTO spend_day (day, held_micros, released_micros, charged_micros, "
        f"refunded_micros, jobs) SELECT {day}, {_FLOWS}, COUNT(DISTINCT generation_id) "
        f"{job_movements} GROUP BY {day}"
    )


def downgrade() -> None:
    op.drop_table("spend_day_generation")
    op.drop_table("spend_day")
    op.drop_table("generation_money")
