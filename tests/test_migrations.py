"""Migrations: empty → head → base on the current backend, and models == migrations.

Runs on a scratch database of its own (a new SQLite file, or a private PostgreSQL database next
to TEST_DATABASE_URL), never on the shared template. The comparison ignores exactly what
migrations/env.py ignores: objects created by the migrations for one backend only (the
PostgreSQL trigram index, SQLite's FTS tables for name search).
"""

from __future__ import annotations

import ast
import importlib.util
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import column, insert, inspect, table, text
from sqlalchemy.engine import make_url

from app import create_app
from core.extensions import db
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL, base_config
from tests.reliability.live import create_scratch_postgres, empty_scratch_postgres, worker_suffix

ENV_PATH = Path(__file__).resolve().parents[1] / "migrations" / "env.py"


def _env_filter():
    """``_include_object`` of migrations/env.py with the constants it reads (env.py itself cannot
    be imported: importing it runs the migrations)."""
    tree = ast.parse(ENV_PATH.read_text())
    kept = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name == "_include_object")
        or (
            isinstance(node, ast.Assign)
            and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)
        )
    ]
    namespace: dict = {}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(ENV_PATH), "exec"), namespace)
    return namespace["_include_object"]


@pytest.fixture
def scratch_url(tmp_path):
    """An empty database of this test's own."""
    if ON_POSTGRES:
        name = f"{make_url(TEST_DATABASE_URL).database}_mig_{worker_suffix()}"
        url = create_scratch_postgres(TEST_DATABASE_URL, name)
        yield url
        empty_scratch_postgres(url)
        return
    yield f"sqlite:///{tmp_path / 'migrations.db'}"


@pytest.fixture
def scratch_app(scratch_url):
    """The app on the scratch database (the general ``app`` fixture's is already migrated)."""
    application = create_app(base_config(scratch_url))
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def _tables() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_to_head_then_downgrade_to_base(scratch_app):
    """From empty to head creates every model table; back to base removes them all."""
    assert _tables() == set()
    upgrade()
    assert {t.name for t in db.metadata.sorted_tables} <= _tables()
    downgrade(revision="base")
    db.engine.dispose()
    assert _tables() == set()
    upgrade()  # and up again: downgrades leave nothing behind that blocks a new upgrade
    assert {t.name for t in db.metadata.sorted_tables} <= _tables()


def test_tenant_name_keys_are_filled_for_existing_tenants(scratch_app):
    """0004 adds tenants.name_key and fills it with the casefolded name of every existing tenant
    (and a tenant created afterwards gets its own through the service)."""
    upgrade(revision="0003_tenant_indexes")
    tenants = table("tenants", column("id"), column("name"), column("slug"), column("created_at"))
    with db.engine.begin() as connection:
        connection.execute(
            insert(tenants),
            [
                {"id": str(uuid.uuid4()), "name": name, "slug": slug, "created_at": datetime.now()}
                for name, slug in (("Émile SARL", "emile"), ("Straße GmbH", "strasse"))
            ],
        )
    upgrade()
    with db.engine.connect() as connection:
        keys = dict(connection.execute(text("SELECT slug, name_key FROM tenants")).all())
    assert keys == {"emile": "émile sarl", "strasse": "strasse gmbh"}


def test_models_and_migrations_agree(scratch_app):
    """alembic's autogenerate finds no difference between the models and the migrated schema."""
    upgrade()
    include_object = _env_filter()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": False,
                "include_object": include_object,
                "render_as_batch": connection.dialect.name == "sqlite",
            },
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_every_migration_chains_to_the_previous_one():
    """One head, one base, each down_revision names an existing revision, and every revision id
    fits alembic_version.version_num (VARCHAR(32): PostgreSQL refuses a longer one, SQLite
    would not notice)."""
    revisions = {}
    for path in sorted((ENV_PATH.parent / "versions").glob("*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        revisions[module.revision] = module.down_revision
    bases = [r for r, down in revisions.items() if down is None]
    assert len(bases) == 1
    assert all(down in revisions for down in revisions.values() if down is not None)
    heads = set(revisions) - set(revisions.values())
    assert len(heads) == 1, heads
    assert [r for r in revisions if len(r) > 32] == []
