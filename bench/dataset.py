"""The benchmark's data: tenants set up through the services, channels bulk-loaded with SQL.

Shape (decided for the growth measurements, see RESULTS.md):
- ``TENANTS`` tenants, each with an email and an SMS integration, a verified domain and a number,
  all made through the same services the API uses, and a write API key.
- Channel rows are bulk-loaded with SQL in one transaction per size, never through the API.
  Row ``k`` belongs to the measured tenant when ``k % 4 == 0`` (so it
  holds a quarter of all rows: 250 of 1k, 250k of 1M) and otherwise to one of the other tenants.
- Rows are generated inside the database (``INSERT ... SELECT`` over a row-number sequence).
- Row ``k`` is ``k`` seconds older than 2026-01-01: growing the table adds older rows, so the
  newest page stays the same and every size measures the same first page.
- Names are ``<word> <type> <k>``; exactly ``NEEDLE_ROWS`` rows of the measured tenant (all in
  the first 80 rows) are named ``Zephyr relay <k>``, so the selective search ``q=zephyr`` finds
  the same 20 rows at every size while the tenant grows around them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import text

from core.db_types import utcnow
from core.extensions import db
from core.models import EmailDomain
from core.services import accounts, integrations, phone_numbers
from core.services.audit import Actor

TENANTS = 10
MEASURED_SHARE = 4  # every 4th row belongs to the measured tenant
NEEDLE = "zephyr"
NEEDLE_ROWS = 20
COMMON = "billing"  # one row in len(WORDS) has it: the "many matches" search
WORDS = (
    "Support", "Billing", "Alerts", "Marketing", "Receipts", "Onboarding", "Security",
    "Reminders", "Newsletter", "Ops", "Sales", "Invoices", "Digest", "Notify", "Welcome",
    "Password reset",
)  # fmt: skip
COLUMNS = (
    "id", "tenant_id", "name", "name_key", "channel_type", "integration_id", "send_from_email",
    "email_domain_id", "send_from_phone_number", "phone_number_id", "enabled", "status",
    "is_default", "metadata", "created_at", "updated_at",
)  # fmt: skip
ACTOR = Actor.system("bench")


@dataclass
class BenchTenant:
    """One tenant's resources, enough for channels of both types."""

    id: str
    email_integration_id: str
    sms_integration_id: str
    domain_id: str
    domain: str
    number_id: str
    number: str


@dataclass
class Seed:
    """What the load generator needs: the tenants, the measured tenant's key, the loaded rows."""

    tenants: list[BenchTenant]
    api_keys: list[str]  # a write key per tenant, in the order of ``tenants``
    loaded: int = 0
    sample_id: str | None = None  # a bulk-loaded channel of the measured tenant, for GET /{id}

    @property
    def measured(self) -> BenchTenant:
        return self.tenants[0]

    @property
    def api_key(self) -> str:
        """The measured tenant's key."""
        return self.api_keys[0]


def seed_tenants() -> Seed:
    """Tenants and their resources through the services; the measured tenant gets a write key.

    Runs inside an app context on a migrated, empty database.
    """
    tenants = []
    for n in range(TENANTS):
        tenant = accounts.create_tenant(f"Bench tenant {n}", f"bench-{n}")
        email = integrations.create_integration(
            tenant.id,
            {"name": "Mail", "channel_type": "email", "provider": "console", "credentials": {}},
            ACTOR,
        )
        sms = integrations.create_integration(
            tenant.id,
            {"name": "Texts", "channel_type": "sms", "provider": "console", "credentials": {}},
            ACTOR,
        )
        domain_name = f"bench{n}.example.com"
        now = utcnow()
        domain = EmailDomain(
            tenant_id=tenant.id,
            domain=domain_name,
            status="verified",  # skips the DNS round trip, as tests/factories.make_domain does
            verification_token=uuid.uuid4().hex,
            verified_at=now,
            record_statuses={},
            created_at=now,
        )
        db.session.add(domain)
        number = phone_numbers.add_phone_number(
            tenant.id,
            {
                "phone_number": f"+1415555{2000 + n:04d}",
                "integration_id": sms.id,
                "create_channel": False,
            },
            ACTOR,
        ).phone_number
        db.session.flush()
        tenants.append(
            BenchTenant(
                tenant.id, email.id, sms.id, domain.id, domain_name, number.id, number.phone_number
            )
        )
    keys = [accounts.create_api_key(tenant.id, "bench", "write").secret for tenant in tenants]
    db.session.commit()
    return Seed(tenants, keys)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _generate_sql(
    seed: Seed, start: int, stop: int, dialect: str, share: int = MEASURED_SHARE
) -> str:
    """One INSERT ... SELECT that makes rows ``start``..``stop - 1`` inside the database; every
    ``share``-th row is the measured tenant's (1: all of them)."""
    tenants = ", ".join(
        "("
        + ", ".join(
            [str(i)]
            + [
                _quote(v)
                for v in (
                    t.id,
                    t.email_integration_id,
                    t.sms_integration_id,
                    t.domain_id,
                    t.domain,
                    t.number_id,
                    t.number,
                )
            ]
        )
        + ")"
        for i, t in enumerate(seed.tenants)
    )
    words = ", ".join(f"({i}, {_quote(w)})" for i, w in enumerate(WORDS))
    if dialect == "postgresql":
        new_id = "gen_random_uuid()::text"
        sequence = f"SELECT k FROM generate_series({start}, {stop - 1}) AS k"
        created = "(TIMESTAMP '2026-01-01 00:00:00' - n.k * INTERVAL '1 second')"
        true, false, metadata = "true", "false", "'{}'::jsonb"
    else:
        new_id = (
            "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || "
            "substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1) || "
            "substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
        )
        sequence = f"SELECT {start} AS k UNION ALL SELECT k + 1 FROM seq WHERE k + 1 < {stop}"
        created = (
            "(strftime('%Y-%m-%d %H:%M:%S', '2026-01-01 00:00:00', '-' || n.k || ' seconds')"
            " || '.000000')"
        )
        true, false, metadata = "1", "0", "'{}'"
    recursive = "" if dialect == "postgresql" else "RECURSIVE "
    return f"""
WITH {recursive}seq(k) AS ({sequence}),
t(idx, id, email_integration_id, sms_integration_id, domain_id, domain, number_id, number)
  AS (VALUES {tenants}),
w(idx, word) AS (VALUES {words}),
s AS (
  SELECT k,
         CASE WHEN (k / 8) % 2 = 0 THEN 'email' ELSE 'sms' END AS ctype,
         CASE WHEN k % {share} = 0 THEN 0 ELSE 1 + k % {TENANTS - 1} END AS tidx
  FROM seq
),
n AS (
  SELECT s.k, s.ctype, s.tidx,
         CASE WHEN s.tidx = 0 AND s.k < {share * NEEDLE_ROWS} THEN 'Zephyr relay ' || s.k
              ELSE w.word || ' ' || s.ctype || ' ' || s.k END AS name
  FROM s JOIN w ON w.idx = (s.k / {share}) % {len(WORDS)}
)
INSERT INTO channels ({", ".join(COLUMNS)})
SELECT {new_id}, t.id, n.name, lower(n.name), n.ctype,
       CASE WHEN n.ctype = 'email' THEN t.email_integration_id ELSE t.sms_integration_id END,
       CASE WHEN n.ctype = 'email' THEN 'sender' || n.k || '@' || t.domain END,
       CASE WHEN n.ctype = 'email' THEN t.domain_id END,
       CASE WHEN n.ctype = 'sms' THEN t.number END,
       CASE WHEN n.ctype = 'sms' THEN t.number_id END,
       {true}, 'available', {false}, {metadata},
       {created}, {created}
FROM n JOIN t ON t.idx = n.tidx
"""


def _secondary_structures(conn, dialect: str) -> list[tuple[str, str, str]]:
    """(kind, name, DDL) of the channels table's indexes (and SQLite triggers) that a bulk load
    may drop and re-create: everything except primary key and unique constraints."""
    if dialect == "postgresql":
        rows = conn.execute(
            text(
                "SELECT 'INDEX', indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = 'channels' "
                "AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE conrelid = 'channels'::regclass)"
            )
        )
    else:
        rows = conn.execute(
            text(
                "SELECT upper(type), name, sql FROM sqlite_master "
                "WHERE tbl_name = 'channels' AND type IN ('index', 'trigger') AND sql IS NOT NULL"
            )
        )
    return [tuple(row) for row in rows]


def grow(seed: Seed, total: int, share: int = MEASURED_SHARE) -> float:
    """Bulk-load channel rows until ``total`` rows were loaded; returns the seconds it took.
    Every ``share``-th row is the measured tenant's (``bench/export.py`` gives it all: 1).

    Large loads drop the secondary indexes (and SQLite's search triggers) first and re-create
    them from the database's own DDL afterwards, the usual way to bulk-load: the schema ends up
    exactly as the migrations made it.
    """
    started = time.monotonic()
    engine = db.engine
    dialect = engine.dialect.name
    rebuild = total - seed.loaded >= 20_000
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        structures = _secondary_structures(conn, dialect) if rebuild else []
        for kind, name, _ in structures:
            conn.execute(text(f"DROP {kind} {name}"))
        conn.execute(text(_generate_sql(seed, seed.loaded, total, dialect, share)))
        for _, _, ddl in structures:
            conn.execute(text(ddl))
        if (
            rebuild
            and dialect == "sqlite"
            and conn.execute(
                text("SELECT 1 FROM sqlite_master WHERE name = 'channels_name_fts'")
            ).first()
        ):
            conn.execute(
                text("INSERT INTO channels_name_fts(channels_name_fts) VALUES ('rebuild')")
            )
        if seed.sample_id is None:
            seed.sample_id = conn.execute(
                text(
                    "SELECT id FROM channels WHERE tenant_id = :t AND name NOT LIKE 'Zephyr%' "
                    "ORDER BY created_at LIMIT 1"
                ),
                {"t": seed.measured.id},
            ).scalar_one()
        if dialect == "postgresql":
            # What autovacuum would do after a load this size; the planner needs the statistics.
            conn.execute(text("ANALYZE channels"))
    if dialect == "sqlite":
        # Move the load out of the write-ahead log now: otherwise the measured requests pay for
        # it (every commit's auto-checkpoint copies part of it; every read searches it).
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    seed.loaded = total
    return time.monotonic() - started


def seed_payload(seed: Seed, tenant_index: int = 0) -> str:
    """The seed page's email sample (SEED.md) with this tenant's ids: ``"is_default": true``,
    so every create hands the default over; ``__NAME__`` where the unique name goes."""
    tenant = seed.tenants[tenant_index]
    body = {
        "name": "__NAME__",
        "channel_type": "email",
        "integration_id": tenant.email_integration_id,
        "send_from_email": f"support@{tenant.domain}",
        "email_domain_id": tenant.domain_id,
        "is_default": True,
    }
    return json.dumps(body)


def create_payload(seed: Seed, tenant_index: int = 0) -> str:
    """The JSON body of POST /api/channels with ``__NAME__`` where the unique name goes."""
    tenant = seed.tenants[tenant_index]
    body = {
        "name": "__NAME__",
        "channel_type": "email",
        "integration_id": tenant.email_integration_id,
        "send_from_email": f"load@{tenant.domain}",
        "email_domain_id": tenant.domain_id,
        "metadata": {"source": "bench"},
    }
    return json.dumps(body)
