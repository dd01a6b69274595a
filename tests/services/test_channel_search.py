"""Name search (q=) on every backend: results, tenant isolation, and an index that serves it.

SQLite drives selective searches through the FTS5 trigram table of migration 0002, kept in step
by triggers; PostgreSQL through the pg_trgm GIN index of migration 0001. Both must return exactly
what a plain case-insensitive substring match returns.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core.extensions import db
from core.models import Channel
from core.pagination import keyset_page
from core.services import channel_queries
from core.services import channels as service
from tests import factories


def search(tenant_id: str, q: str, limit: int = 200) -> list[str]:
    """Names the list query finds for ``q``, newest first."""
    query = channel_queries.channel_list_query(tenant_id, q=q)
    rows, _ = keyset_page(db.session, query, Channel, limit, None)
    return [row.name for row in rows]


def on_sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


@pytest.fixture
def named(setup):
    """Channels with names that exercise case, accents, wildcards and quotes."""
    names = [
        "Support Email",
        "Billing alerts",
        "ÉTÉ Promotions",
        "100% off_sale",
        'The "quoted" one',
        "Straße notices",
    ]
    for name in names:
        factories.make_channel(setup, name=name, is_default=False)
    return names


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("support", ["Support Email"]),
        ("SUPPORT EM", ["Support Email"]),
        ("été", ["ÉTÉ Promotions"]),
        ("ing al", ["Billing alerts"]),
        ("0%", ["100% off_sale"]),  # two characters: below the trigram length
        ("% off_", ["100% off_sale"]),  # LIKE wildcards are literal
        ("support_email", []),  # "_" matches only an underscore, not the space
        ('"quoted"', ['The "quoted" one']),  # FTS5 phrase quotes are literal
        ("strasse", ["Straße notices"]),  # casefold: ß = ss
        (
            "e",
            [
                "Straße notices",
                'The "quoted" one',
                "100% off_sale",
                "Billing alerts",
                "Support Email",
            ],
        ),
        ("nowhere", []),
    ],
)
def test_search_matches_a_case_insensitive_substring(app, setup, named, q, expected):
    """q= finds every channel whose name contains the text, ignoring case, wildcards literal."""
    assert search(setup.tenant.id, q) == expected


def test_search_never_returns_another_tenants_channels(app, setup, other_tenant):
    """The same name in another tenant is not found, whichever path the search takes."""
    other = factories.make_ready_tenant(other_tenant, domain="other.example")
    factories.make_channel(other, name="Shared name")
    factories.make_channel(setup, name="Shared name two")
    assert search(setup.tenant.id, "shared name") == ["Shared name two"]
    assert search(other.tenant.id, "shared name") == ["Shared name"]


def test_search_follows_renames_and_deletes(app, setup):
    """A renamed channel is found by its new name only; a deleted one is not found at all."""
    channel = factories.make_channel(setup, name="Old label")
    gone = factories.make_channel(setup, name="Temporary label", is_default=False)
    service.update_channel(setup.tenant.id, channel.id, {"name": "New title"}, factories.ACTOR)
    service.delete_channel(setup.tenant.id, gone.id, factories.ACTOR)
    db.session.commit()
    assert search(setup.tenant.id, "old label") == []
    assert search(setup.tenant.id, "temporary") == []
    assert search(setup.tenant.id, "new title") == ["New title"]
    assert search(setup.tenant.id, "label") == []


def test_common_terms_take_the_ordered_scan_with_the_same_results(app, setup, monkeypatch):
    """Over the match threshold the search walks the tenant's channels instead; same answer."""
    for n in range(6):
        factories.make_channel(setup, name=f"Alerts {n}", is_default=False)
    selective = search(setup.tenant.id, "alerts")
    monkeypatch.setattr(channel_queries, "SEARCH_FTS_MAX_MATCHES", 2)
    assert search(setup.tenant.id, "alerts") == selective
    assert search(setup.tenant.id, "alerts", limit=4) == selective[:4]
    assert len(selective) == 6


def test_an_index_serves_the_search(app, setup):
    """The database plans a selective search through its trigram index, not a tenant scan."""
    factories.make_channel(setup, name="Zephyr relay")
    query = channel_queries.channel_list_query(setup.tenant.id, q="zephyr")
    query = query.order_by(Channel.created_at.desc(), Channel.id.desc()).limit(51)
    sql = str(query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    if on_sqlite():
        plan = " ".join(row[3] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        assert "channels_name_fts VIRTUAL TABLE" in plan
        assert "ix_channels_tenant" not in plan
    else:
        # On a tiny table PostgreSQL rightly prefers other plans (the tenant's rows are few);
        # forbid sequential scans and ask whether the search's own predicate has an index.
        # bench/RESULTS.md shows the full query's plan on a million rows.
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        predicate = sql[sql.index("channels.name_key LIKE") :].split(" ORDER BY")[0]
        explain = text(f"EXPLAIN SELECT id FROM channels WHERE {predicate}")
        plan = "\n".join(row[0] for row in db.session.execute(explain))
        assert "ix_channels_name_key_trgm" in plan, plan
    db.session.rollback()


def test_sqlite_search_triggers_exist(app):
    """The FTS5 table's triggers survive the migrations (a table rebuild would drop them)."""
    if not on_sqlite():
        names = db.session.scalars(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'channels'")
        ).all()
        assert "ix_channels_name_key_trgm" in names
        return
    triggers = db.session.scalars(
        text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'channels'")
    ).all()
    assert sorted(triggers) == [
        "channels_name_fts_delete",
        "channels_name_fts_insert",
        "channels_name_fts_update",
    ]


def test_a_common_term_walks_the_name_index_on_sqlite(app, setup):
    """SQLite: the API's walk (a term too common for the trigram path) reads the page's rowids
    from the entries of ix_channels_tenant_created_name (migration 0011, name_key in the entry:
    no row read for the names it skips), then those rows by rowid. PostgreSQL has no such index
    (its walk is ix_channels_tenant_created; a btree over name_key would compete with the
    trigram index)."""
    indexes = set(
        db.session.scalars(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'channels'")
            if not on_sqlite()
            else text("SELECT name FROM sqlite_master WHERE type = 'index'")
        )
    )
    if not on_sqlite():
        assert "ix_channels_tenant_created_name" not in indexes
        return
    assert "ix_channels_tenant_created_name" in indexes
    factories.make_channel(setup, name="Billing relay")
    statement = channel_queries._api_page_statement(False, False, None, "index_walk", True)
    compiled = statement.compile(dialect=db.engine.dialect)
    values = compiled.construct_params(
        {
            "tenant_id": setup.tenant.id,
            "pattern": "%billing%",
            "page_rows": 51,
            "after_at": "2026-01-01 00:00:00.000000",
            "after_id": "x",
        }
    )
    positional = tuple(values[name] for name in compiled.positiontup)
    rows = db.session.connection().exec_driver_sql(
        f"EXPLAIN QUERY PLAN {compiled.string}", positional
    )
    plan = " / ".join(row[3] for row in rows)
    assert "COVERING INDEX ix_channels_tenant_created_name" in plan, plan
    assert "channels USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    db.session.rollback()
