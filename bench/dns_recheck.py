"""How fast the scheduled DNS re-check goes: ``python -m bench.dns_recheck [--domains N]``.

Against the local DNS server the tests use (tests/dns_zone.py: dnslib on 127.0.0.1), with N
domains on a fresh migrated SQLite database (``--database-url`` for another), this measures in
one run:

- **baseline**: raw dnspython lookups of the same three records per domain, on a pool of
  DNS_CONCURRENCY threads (nothing else: no database, no judging) — domains per second;
- **sequential**: the same raw lookups one after the other (what a naive loop would do);
- **recheck**: the real job — claim the due domains in batches (``core.services.rechecks``),
  look them up on the resolver pool, judge and write each result in its own transaction under
  the tenant lock, as one worker process does — domains per second.

It prints each rate, the ratio of the job to the baseline, and the time 100,000 domains would
take on two workers at that rate (the claim makes two workers share the rows without overlap;
the figure assumes the database keeps up with two writers). The last line is one JSON object.
Rates depend on the machine's load: compare ratios from one run, say the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.exception
from flask_migrate import upgrade
from sqlalchemy import update

from app import create_app
from core.db_types import utcnow
from core.extensions import db
from core.models import EmailDomain, Tenant
from core.services.email_domains import dns_records, lookup_records, resolver_for
from core.services.rechecks import check_domain_batch, claim_due
from tests.dns_zone import running_zone

TARGET_DOMAINS = 100_000
WORKERS = 2
SECONDS_PER_DAY = 86_400


def _app(database_url: str, port: int, concurrency: int):
    return create_app(
        {
            "ENV": "testing",
            "TESTING": True,
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "DNS_NAMESERVERS": f"127.0.0.1:{port}",
            "DNS_TIMEOUT": 2.0,
            "DNS_CONCURRENCY": concurrency,
            "RECHECK_BATCH_SIZE": 200,
            "LOG_LEVEL": "ERROR",
        }
    )


def _seed(zone, count: int) -> None:
    """``count`` verified domains over 20 tenants; 9 in 10 with every record published, the
    others without their ownership record (they go at_risk: the job writes events too)."""
    now = utcnow()
    tenants = [
        Tenant(name=f"Bench {n}", name_key=f"bench {n}", slug=f"bench-{n}") for n in range(20)
    ]
    db.session.add_all(tenants)
    db.session.flush()
    rows = []
    for n in range(count):
        rows.append(
            EmailDomain(
                tenant_id=tenants[n % len(tenants)].id,
                domain=f"d{n}.bench.example",
                status="verified",
                verification_token=f"token{n:027d}",
                verified_at=now,
                record_statuses={},
                record_details={},
                created_at=now,
                next_check_at=now,
            )
        )
    db.session.add_all(rows)
    db.session.commit()
    for n, row in enumerate(rows):
        for record in dns_records(row):
            if record["purpose"] == "verification" and n % 10 == 9:
                continue
            zone.publish(record["host"], record["type"], record["value"])


def _raw(app, records: list[list[dict]], concurrency: int) -> float:
    """Domains per second of raw lookups (``concurrency`` threads; 1: one after the other)."""
    config = dict(app.config)

    def look(domain_records):
        resolver = resolver_for(config)
        for record in domain_records:
            try:
                resolver.resolve(record["host"], record["type"], raise_on_no_answer=False)
            except dns.exception.DNSException:  # NXDOMAIN for the unpublished ones
                pass

    started = time.perf_counter()
    if concurrency == 1:
        for domain_records in records:
            look(domain_records)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(look, records))
    return len(records) / (time.perf_counter() - started)


def _job() -> float:
    """Domains per second of the real job (claim, look up, judge, write), one process."""
    db.session.execute(update(EmailDomain).values(next_check_at=utcnow(), check_claim=None))
    db.session.commit()
    started = time.perf_counter()
    checked = 0
    for batch in claim_due(EmailDomain):
        checked += len(check_domain_batch(batch.token))
    return checked / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_zone() as zone:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        app = _app(url, zone.port, args.concurrency)
        with app.app_context():
            upgrade()
            _seed(zone, args.domains)
            domains = db.session.scalars(db.select(EmailDomain)).all()
            records = [dns_records(d) for d in domains]
            db.session.rollback()
            # Warm up (imports, the pools, SQLite's cache), then alternate the measures.
            _raw(app, records[:100], args.concurrency)
            lookup_records(resolver_for(app.config), records[0])
            baseline, sequential, job = [], [], []
            for _ in range(args.repeat):
                baseline.append(_raw(app, records, args.concurrency))
                sequential.append(_raw(app, records[: max(100, len(records) // 10)], 1))
                job.append(_job())
            db.session.remove()
            db.engine.dispose()
    result = {
        "domains": args.domains,
        "concurrency": args.concurrency,
        "baseline_domains_per_s": round(statistics.median(baseline), 1),
        "sequential_domains_per_s": round(statistics.median(sequential), 1),
        "recheck_domains_per_s": round(statistics.median(job), 1),
    }
    result["recheck_vs_baseline"] = round(
        result["recheck_domains_per_s"] / result["baseline_domains_per_s"], 3
    )
    result["recheck_vs_sequential"] = round(
        result["recheck_domains_per_s"] / result["sequential_domains_per_s"], 3
    )
    hours = TARGET_DOMAINS / (WORKERS * result["recheck_domains_per_s"]) / 3600
    result["hours_for_100k_on_2_workers"] = round(hours, 2)
    result["load_average"] = os.getloadavg()[0]
    print(
        f"{args.domains} domains, {args.concurrency} resolver threads, median of {args.repeat}:\n"
        f"  raw lookups (baseline) {result['baseline_domains_per_s']} domains/s\n"
        f"  raw lookups, sequential {result['sequential_domains_per_s']} domains/s\n"
        f"  re-check job          {result['recheck_domains_per_s']} domains/s "
        f"({result['recheck_vs_baseline']:.2f}× the baseline, "
        f"{result['recheck_vs_sequential']:.2f}× sequential)\n"
        f"  100,000 domains on {WORKERS} workers: {hours:.2f} h "
        f"({'within' if hours < 24 else 'NOT within'} a day); load average "
        f"{result['load_average']:.2f}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
