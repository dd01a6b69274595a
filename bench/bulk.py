"""Bulk creates against single creates, in process: ``python -m bench.bulk``.

On a fresh migrated database (SQLite in a temporary directory; PostgreSQL: the database named by
``BENCH_PG_DATABASE``, default ``channels_bench_bulk``, dropped and re-created), through the test
client with a real key (auth, rules, service, audit, events, commit), each round times

- 1,000 single creates (``POST /api/channels``, one request each), and
- one bulk create of 1,000 channels (``POST /api/channels/bulk``, atomic),

alternating, with fresh names, against the same tenant (which grows as the run goes on, equally
for both). ``bulk_vs_single`` is the median over rounds of (channels per second in bulk) /
(channels per second one by one): the issue asks for at least 20. The last line printed is a
JSON object with the ratio per database and the medians for the record.

``--import-rows N`` (50000; 0 skips it) first times a console CSV import of N SMS channels on
each database (``--import-db``, repeatable; else those of ``--db``), each in a fresh process of
its own: the upload's job is made and confirmed by the service, then the task's work
(``core.services.imports.run_job``) runs there, chunk by chunk, as a worker would. It reports the
seconds, the CPU seconds of the process (``time.process_time``: a loaded machine inflates them
far less than the wall clock), the rows per second, the RSS before the task and the process's
peak RSS (``VmHWM``) and the load average before and after; the issue asks for 50,000 rows within
60 s under 300 MB.

``--db sqlite|postgresql`` (repeatable; both by default), ``--rounds N`` (3), ``--skip-bulk``
(the imports only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BATCH = 1000


def _postgres_url() -> str:
    """A fresh PostgreSQL database for the run (``BENCH_PG_DATABASE``)."""
    from sqlalchemy import create_engine, text

    name = os.environ.get("BENCH_PG_DATABASE", "channels_bench_bulk")
    server = "postgresql+psycopg://postgres@127.0.0.1:5432"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server}/{name}"


def _database_url(database: str, tmp: str) -> str:
    """SQLite: a file in ``tmp``; PostgreSQL: a fresh database (``_postgres_url``)."""
    return f"sqlite:///{Path(tmp) / 'bench.db'}" if database == "sqlite" else _postgres_url()


def measure(database: str, rounds: int) -> dict:
    """Median seconds of 1,000 single creates and of one 1,000-item bulk create, and the ratio."""
    from bench.inprocess import bench_app, migrated_tenant
    from core.extensions import db

    with tempfile.TemporaryDirectory(prefix="channels-bulk-bench-") as tmp:
        url = _database_url(database, tmp)
        app = bench_app(url)
        with app.app_context():
            _tenant, ready, key = migrated_tenant()
            headers = {"Authorization": f"Bearer {key}"}
            client = app.test_client()
            client.get("/api/channels", headers=headers)  # the key's first use
            single, bulk = [], []
            for round_ in range(rounds):
                started = time.perf_counter()
                for i in range(BATCH):
                    response = client.post(
                        "/api/channels",
                        json=ready.sms_payload(name=f"Single {round_}-{i}"),
                        headers=headers,
                    )
                    assert response.status_code == 201, response.get_data(as_text=True)
                single.append(time.perf_counter() - started)

                items = [ready.sms_payload(name=f"Bulk {round_}-{i}") for i in range(BATCH)]
                started = time.perf_counter()
                response = client.post(
                    "/api/channels/bulk", json={"channels": items}, headers=headers
                )
                bulk.append(time.perf_counter() - started)
                assert response.status_code == 201, response.get_data(as_text=True)[:500]
            db.session.remove()
            db.engine.dispose()
    ratios = [s / b for s, b in zip(single, bulk, strict=True)]
    return {
        "bulk_vs_single": round(statistics.median(ratios), 1),
        "single_channels_per_s": round(BATCH / statistics.median(single), 1),
        "bulk_channels_per_s": round(BATCH / statistics.median(bulk), 1),
        "rounds": rounds,
    }


def _vm_kib(field: str) -> int:
    """This process's ``VmHWM`` (peak RSS) or ``VmRSS`` in KiB, from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure_import(rows: int, database: str = "sqlite") -> dict:
    """A CSV import of ``rows`` channels through the import job's task, timed, with peak RSS.

    Run it in a process of its own (``import_in_child``): the peak RSS is then the import's."""
    from bench.inprocess import bench_app, migrated_tenant
    from core.extensions import db
    from core.services import imports
    from tests import factories

    with tempfile.TemporaryDirectory(prefix="channels-import-bench-") as tmp:
        url = _database_url(database, tmp)
        app = bench_app(url)
        with app.app_context():
            tenant, ready, _key = migrated_tenant(api_key=False)
            user = factories.make_user(tenant, email="bench@example.com")
            db.session.commit()
            number = ready.number
            lines = ["name,channel_type,integration_id,send_from_phone_number,phone_number_id"]
            lines += [
                f"Imported {i},sms,{ready.sms_integration.id},{number.phone_number},{number.id}"
                for i in range(rows)
            ]
            data = ("\n".join(lines) + "\n").encode()
            del lines
            from core.services.audit import Actor

            actor = Actor("user", user.id, user.email)
            job = imports.create_job(tenant.id, "channels", "bench.csv", data, actor)
            imports.confirm(job, actor)
            db.session.commit()
            job_id = job.id
            del data, job
            db.session.expunge_all()
            rss_before = _vm_kib("VmRSS")
            load_before = os.getloadavg()[0]
            started, cpu_started = time.perf_counter(), time.process_time()
            status = imports.run_job(job_id)
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            job = db.session.get(imports.ImportJob, job_id)
            assert status == "done" and job.created_rows == rows, (status, job.refused_rows)
            db.session.remove()
            db.engine.dispose()
    return {
        "db": database,
        "rows": rows,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "rows_per_s": round(rows / seconds, 1),
        "rows_per_cpu_s": round(rows / cpu_seconds, 1),
        "peak_rss_mb": round(_vm_kib("VmHWM") / 1024, 1),
        "rss_before_mb": round(rss_before / 1024, 1),
        "load_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def import_in_child(rows: int, database: str) -> dict:
    """``measure_import`` in a fresh process: its ``VmHWM`` is the import's own peak."""
    import subprocess

    command = [sys.executable, "-m", "bench.bulk", "--import-child", database]
    completed = subprocess.run(
        [*command, "--import-rows", str(rows)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--import-rows", type=int, default=50_000)
    parser.add_argument("--import-db", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--import-child", choices=("sqlite", "postgresql"), help=argparse.SUPPRESS)
    parser.add_argument("--skip-bulk", action="store_true", help="only the CSV import")
    options = parser.parse_args(argv)
    if options.import_child:
        print(json.dumps(measure_import(options.import_rows, options.import_child)))
        return 0
    results = {}
    if options.import_rows:
        for database in options.import_db or options.db or ("sqlite", "postgresql"):
            results[f"import_{database}"] = import_in_child(options.import_rows, database)
            print(f"import {database}", json.dumps(results[f"import_{database}"]), flush=True)
    for database in () if options.skip_bulk else options.db or ("sqlite", "postgresql"):
        results[database] = measure(database, options.rounds)
        print(database, json.dumps(results[database]), flush=True)
    results["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
