"""Drop single-column tenant_id indexes that a tenant-first composite index already covers

Every tenant-owned table got an index on ``tenant_id`` alone in 0001 (``index=True`` on the
column) although most of them also have an index or unique constraint that starts with
``tenant_id`` (``ix_<table>_tenant_created``, ``uq_email_domains_tenant_domain``,
``uq_idempotency_tenant_key``). Such a composite serves every lookup by tenant (and the foreign
key's checks) as well; the extra index only cost a b-tree write on every insert. Found by the
benchmark's create path (bench/FINDINGS.md). ``api_keys`` and ``users`` keep theirs: they have no
such composite.

The revision id stays within alembic_version's 32 characters (PostgreSQL enforces it).

Plain ``DROP INDEX`` / ``CREATE INDEX`` (no batch mode): on SQLite a batch operation could
re-create the channels table and lose the search triggers of 0002.

Revision ID: 0003_tenant_indexes
Revises: 0002_sqlite_name_search
Create Date: 2026-11-26 19:30:00
"""

from alembic import op

revision = "0003_tenant_indexes"
down_revision = "0002_sqlite_name_search"
branch_labels = None
depends_on = None

TABLES = (
    "audit_events",
    "channels",
    "email_domains",
    "idempotency_records",
    "integrations",
    "phone_numbers",
)


def upgrade():
    for table in TABLES:
        op.drop_index(f"ix_{table}_tenant_id", table_name=table)


def downgrade():
    for table in TABLES:
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"], unique=False)
