"""recheck: the verification lifecycle of email domains and the health of integrations (DESIGN §9)

New nullable or defaulted columns only, added with batch mode for SQLite. Existing domains and
integrations are due at once (``next_check_at`` = now): the scheduler's first tick checks them;
a pending domain's window counts from its creation.

Revision ID: 0009_recheck
Revises: 0008_webhooks
Create Date: 2026-12-02 16:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_recheck"
down_revision = "0008_webhooks"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _schedule_columns() -> list[sa.Column]:
    return [
        sa.Column("failed_checks", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_check_at", sa.DateTime(), nullable=True),
        sa.Column("check_claim", sa.String(length=36), nullable=True),
        sa.Column("check_lease_until", sa.DateTime(), nullable=True),
    ]


def upgrade():
    with op.batch_alter_table("email_domains") as batch:
        batch.add_column(sa.Column("record_details", JSON, nullable=True))
        batch.add_column(sa.Column("window_started_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("at_risk_since", sa.DateTime(), nullable=True))
        for column in _schedule_columns():
            batch.add_column(column)
        batch.create_index("ix_email_domains_next_check_at", ["next_check_at"], unique=False)
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("unhealthy_since", sa.DateTime(), nullable=True))
        for column in _schedule_columns():
            batch.add_column(column)
        batch.create_index("ix_integrations_next_check_at", ["next_check_at"], unique=False)
    now = {"now": datetime.now(UTC).replace(tzinfo=None)}  # naive UTC, as every column stores
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE email_domains SET next_check_at = :now, window_started_at = created_at"
            " WHERE status = 'pending'"
        ),
        now,
    )
    bind.execute(
        sa.text("UPDATE email_domains SET next_check_at = :now WHERE status = 'verified'"), now
    )
    bind.execute(
        sa.text("UPDATE integrations SET next_check_at = :now WHERE status = 'active'"), now
    )


def downgrade():
    with op.batch_alter_table("integrations") as batch:
        batch.drop_index("ix_integrations_next_check_at")
        for name in ("check_lease_until", "check_claim", "next_check_at", "failed_checks"):
            batch.drop_column(name)
        batch.drop_column("unhealthy_since")
    with op.batch_alter_table("email_domains") as batch:
        batch.drop_index("ix_email_domains_next_check_at")
        for name in ("check_lease_until", "check_claim", "next_check_at", "failed_checks"):
            batch.drop_column(name)
        for name in ("at_risk_since", "window_started_at", "record_details"):
            batch.drop_column(name)
