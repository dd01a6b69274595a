"""accounts: forced password change and the platform log (DESIGN §7)

``users.password_change_required``: set when someone else chose the user's password (a teammate
on the team page, an operator's ``create-user``); existing users are not affected (false).
``platform_events``: the platform log of support staff's authentication events and tenant
access (they belong to no tenant, so the tenants' audit log cannot hold them). A column added
with a server default and a new table: nothing existing is rewritten (no batch mode on SQLite).

Revision ID: 0007_accounts
Revises: 0006_mfa
Create Date: 2026-12-02 11:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_accounts"
down_revision = "0006_mfa"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "users",
        sa.Column(
            "password_change_required", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.create_table(
        "platform_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=36), nullable=True),
        sa.Column("actor_name", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=True),
        sa.Column(
            "changes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_events")),
    )
    op.create_index(
        "ix_platform_events_created", "platform_events", ["created_at", "id"], unique=False
    )


def downgrade():
    op.drop_index("ix_platform_events_created", table_name="platform_events")
    op.drop_table("platform_events")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_change_required")
