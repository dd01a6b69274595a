"""tenants.name_key: the casefolded name, so that the tenant switcher's search ignores case in
every script on every backend

SQLite's lower() only knows ASCII and PostgreSQL's follows the database's locale, so searching
"émile" did not find "Émile SARL". Channels already keep such a key (``channels.name_key``,
``core.rules.name_key``); tenants now do too, written by ``services.accounts.create_tenant``.

The column is added NOT NULL with a temporary '' default and filled from ``name`` in Python
(``str.casefold`` is the rule, not any SQL function). PostgreSQL then drops the default; SQLite
keeps it, because dropping a column default there means re-creating the table, and re-creating
``tenants`` (which every other table references) is what a migration must not do on SQLite.

Revision ID: 0004_tenant_name_key
Revises: 0003_tenant_indexes
Create Date: 2026-11-26 19:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_tenant_name_key"
down_revision = "0003_tenant_indexes"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "tenants",
        sa.Column("name_key", sa.String(length=400), nullable=False, server_default=""),
    )
    connection = op.get_bind()
    tenants = sa.table("tenants", sa.column("id", sa.String), sa.column("name", sa.String))
    name_key = sa.table("tenants", sa.column("id", sa.String), sa.column("name_key", sa.String))
    rows = connection.execute(sa.select(tenants.c.id, tenants.c.name)).all()
    for tenant_id, name in rows:
        connection.execute(
            sa.update(name_key).where(name_key.c.id == tenant_id).values(name_key=name.casefold())
        )
    if connection.dialect.name != "sqlite":
        op.alter_column("tenants", "name_key", server_default=None)


def downgrade():
    op.drop_column("tenants", "name_key")
