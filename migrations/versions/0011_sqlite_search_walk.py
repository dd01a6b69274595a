"""SQLite: an index that lets a common-term name search (q=) walk the tenant's channels newest
first without reading the rows it skips

A search whose term matches more names than the FTS5 table of 0002 should fetch walks the
tenant's channels newest first and tests ``name_key LIKE`` on each (core.services.channel_queries).
Through ``ix_channels_tenant_created`` that walk read every row it passed over (the whole row,
for one column): on a million rows with ten thousand newer non-matching channels in front of the
matches, 5–6 ms. With ``name_key`` in the index entry the walk reads index entries only (a
covering index for the ids of the page) and fetches the page's rows by rowid afterwards.

SQLite only: PostgreSQL serves the same walk from ``ix_channels_tenant_created`` (a
``(tenant_id, created_at, id) INCLUDE (name_key)`` btree there bought little and made the planner
walk it for selective terms the trigram GIN index of 0001 serves: bench/FINDINGS.md §16). Not
declared on the models; migrations/env.py lists it in
``MIGRATION_ONLY_INDEXES``. A bulk load that drops and re-creates the channels table's indexes
from the database's DDL (bench/dataset.py) re-creates it as well.

Revision ID: 0011_sqlite_search_walk
Revises: 0010_bulk
Create Date: 2026-12-03 08:00:00
"""

from alembic import op

revision = "0011_sqlite_search_walk"
down_revision = "0010_bulk"
branch_labels = None
depends_on = None

INDEX = "ix_channels_tenant_created_name"


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(INDEX, "channels", ["tenant_id", "created_at", "id", "name_key"])


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index(INDEX, table_name="channels")
