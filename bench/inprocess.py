"""In-process cost of the create path, without HTTP: ``python -m bench.inprocess``.

Measures, on a fresh migrated SQLite database, the median cost of one create through the API's
own path (test client, real key, rules, service, audit, commit), of one create with the seed's
``"is_default": true`` (each hands the default over), and of one create refused by the rules (a
422 with three failing fields), each as a ratio to a bare one-row ORM insert and commit
timed in the same run on the same machine (``bench/bare_app.py``'s row). The last line printed is
a JSON object: ``create_vs_insert_inprocess``, ``create_default_vs_insert_inprocess``,
``failure_vs_insert_inprocess`` (higher is faster, as bench/run's ratios), and the medians in
microseconds for the record.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROUNDS = 5
PER_ROUND = 200


def bench_app(url: str):
    """The app as the in-process benchmarks run it (``bench.inprocess``, ``bench.bulk``) on the
    database at ``url``: testing configuration, no rate limits, quiet logs."""
    from app import create_app

    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench-inprocess-secret-key-0123456789abcdef",
            "SQLALCHEMY_DATABASE_URI": url,
            "RATELIMIT_ENABLED": False,
            "LOG_LEVEL": "WARNING",
        }
    )


def migrated_tenant(api_key: bool = True):
    """In the app's context: the database migrated to the head, a tenant ready to create
    channels of both types (``factories.make_ready_tenant``) and, with ``api_key``, an API key
    of it, committed. Returns ``(tenant, ready, key or None)``."""
    from flask_migrate import upgrade

    from core.extensions import db
    from tests import factories

    upgrade()
    tenant = factories.make_tenant()
    ready = factories.make_ready_tenant(tenant)
    key = factories.make_api_key(tenant) if api_key else None
    db.session.commit()
    return tenant, ready, key


def _median_us(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e6, 1)


def measure() -> dict:
    """The ratios and medians of one in-process run (see the module docstring)."""
    from sqlalchemy.orm import Session

    from bench.bare_app import BareRow, Base, make_engine

    with tempfile.TemporaryDirectory(prefix="channels-inprocess-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        app = bench_app(url)
        with app.app_context():
            _tenant, ready, key = migrated_tenant()
            payload = ready.email_payload(is_default=False)
            headers = {"Authorization": f"Bearer {key}"}
        bare_engine = make_engine(url)
        Base.metadata.create_all(bare_engine)  # the benchmark's own table, as bench/bare_app.py
        client = app.test_client()
        create, create_default, failure, insert = [], [], [], []
        counter = 0
        for _ in range(ROUNDS):
            for _ in range(PER_ROUND):
                counter += 1
                started = time.perf_counter()
                with Session(bare_engine) as session:
                    session.add(
                        BareRow(
                            id=str(uuid.uuid4()),
                            name=f"row {counter}",
                            created_at=datetime.now(UTC),
                        )
                    )
                    session.commit()
                insert.append(time.perf_counter() - started)

                body = {
                    **payload,
                    "name": f"Bench {counter}",
                    "send_from_email": f"b{counter}@example.com",
                }
                started = time.perf_counter()
                response = client.post("/api/channels", json=body, headers=headers)
                create.append(time.perf_counter() - started)
                assert response.status_code == 201, response.get_data(as_text=True)

                started = time.perf_counter()
                response = client.post(
                    "/api/channels",
                    json={**body, "name": f"Default {counter}", "is_default": True},
                    headers=headers,
                )
                create_default.append(time.perf_counter() - started)
                assert response.status_code == 201, response.get_data(as_text=True)

                bad = {**body, "name": "", "integration_id": "nope", "send_from_email": "x"}
                started = time.perf_counter()
                response = client.post("/api/channels", json=bad, headers=headers)
                failure.append(time.perf_counter() - started)
                assert response.status_code == 422, response.get_data(as_text=True)
        bare_engine.dispose()
    return {
        "create_vs_insert_inprocess": round(
            statistics.median(insert) / statistics.median(create), 3
        ),
        "create_default_vs_insert_inprocess": round(
            statistics.median(insert) / statistics.median(create_default), 3
        ),
        "failure_vs_insert_inprocess": round(
            statistics.median(insert) / statistics.median(failure), 3
        ),
        "create_us": _median_us(create),
        "create_default_us": _median_us(create_default),
        "failure_us": _median_us(failure),
        "insert_us": _median_us(insert),
    }


def main() -> int:
    print(json.dumps(measure()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
