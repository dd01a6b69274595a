"""SQLite: a trigram full-text index over channels.name_key for name search (q=)

PostgreSQL already serves ``name_key LIKE '%...%'`` from the pg_trgm GIN index of 0001. SQLite
has no such index type, so search scanned every channel of the tenant (linear in its size). This
adds an FTS5 table with the ``trigram`` tokenizer (SQLite >= 3.34), external content = the
channels table keyed by its rowid, kept in step by triggers. core.services.channel_queries uses it
for selective searches of 3 characters or more.

Caution for later migrations: a batch migration that *recreates* the channels table drops these
triggers with it; re-run ``create_sqlite_name_search`` below afterwards (tests/api/
test_query_counts.py fails when the triggers are missing). After a ``VACUUM`` (which may renumber
rowids of tables without an INTEGER PRIMARY KEY) run
``INSERT INTO channels_name_fts(channels_name_fts) VALUES ('rebuild')``.

Revision ID: 0002_sqlite_name_search
Revises: 0001
Create Date: 2026-11-26 16:20:00
"""

from alembic import op

revision = "0002_sqlite_name_search"
down_revision = "0001"
branch_labels = None
depends_on = None

FTS_TABLE = "channels_name_fts"
_FORGET_OLD = (
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, name_key) "
    "VALUES ('delete', old.rowid, old.name_key);"
)
STATEMENTS = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "name_key, content='channels', content_rowid='rowid', tokenize='trigram case_sensitive 1')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON channels BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, name_key) VALUES (new.rowid, new.name_key); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON channels BEGIN "
    f"{_FORGET_OLD} END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF name_key ON channels BEGIN "
    f"{_FORGET_OLD} INSERT INTO {FTS_TABLE}(rowid, name_key) VALUES (new.rowid, new.name_key); END",
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
)


def create_sqlite_name_search():
    for statement in STATEMENTS:
        op.execute(statement)


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        create_sqlite_name_search()


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for suffix in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {FTS_TABLE}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
