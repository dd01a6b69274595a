"""The channel export in constant memory: ``python -m bench.export`` (issue 16).

For each database (SQLite, PostgreSQL), one tenant owns every channel; the table grows to 10k,
100k and 1M rows (bulk-loaded in the database, ``bench/dataset.py``). At each size, fresh
processes measure, alternately and ``--repeat`` times:

- ``export``: ``GET /api/channels/export`` (CSV and NDJSON) through the app's own WSGI path
  (test client, real API key, the streamed body read piece by piece and dropped, as a socket
  would): rows per second, and the process's peak RSS (``ru_maxrss``) next to its RSS just
  before the request (the app imported and warmed up);
- ``select`` (the baseline): the same columns of the same rows in the same order, with the raw
  driver (``sqlite3``; psycopg with a server-side cursor), fetched 1,000 at a time and dropped:
  rows per second and peak RSS.

A process per measurement, because a process's peak RSS never goes down: each figure is that
export's own peak. The last line printed is one JSON object: per database and format, the
median rows/s of export and select at each size, ``export_vs_select`` (export rows/s ÷ select
rows/s at 1M, same run), ``peak_rss_1m_vs_10k`` (≈1 means constant memory), and the peak RSS
in MiB at each size. Options: ``--db sqlite|postgresql`` (repeatable), ``--sizes``,
``--repeat``, ``--formats``. PostgreSQL: ``BENCH_PG_DATABASE`` names the database it drops and
re-creates (default ``channels_bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

SIZES = (10_000, 100_000, 1_000_000)
FORMATS = ("csv", "ndjson")
SELECT_COLUMNS = (
    "id, tenant_id, name, channel_type, integration_id, send_from_email, email_domain_id, "
    "send_from_phone_number, phone_number_id, status, is_default, metadata, created_at, updated_at"
)
FETCH = 1000


def _rss_kib() -> int:
    """The current resident set size (VmRSS), KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _peak_kib() -> int:
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child would report its parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# --- the measured processes ---------------------------------------------------------------------


def child_export(database_url: str, key: str, export_format: str, secret: str, fernet: str) -> dict:
    """One export through the app: rows, seconds, RSS before and peak."""
    from bench.runner import make_app

    app = make_app(database_url, secret, fernet)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    # Warm up: imports, the key lookup, the first query compiled (a filter matching nothing).
    warm = client.get(
        f"/api/channels/export?format={export_format}&q=no-such-name", headers=headers
    )
    warm.get_data()
    before = _rss_kib()
    started = time.perf_counter()
    response = client.get(
        f"/api/channels/export?format={export_format}", headers=headers, buffered=False
    )
    assert response.status_code == 200, response.status_code
    lines = 0
    size = 0
    for piece in response.response:
        data = piece if isinstance(piece, bytes) else piece.encode()
        lines += data.count(b"\n")
        size += len(data)
    response.close()
    seconds = time.perf_counter() - started
    rows = lines - (1 if export_format == "csv" else 0)
    return {
        "rows": rows,
        "seconds": seconds,
        "bytes": size,
        "rss_before_kib": before,
        "peak_kib": _peak_kib(),
    }


def child_select(database_url: str, tenant_id: str) -> dict:
    """The baseline: the same rows with the raw driver, 1,000 at a time."""
    sql = (
        f"SELECT {SELECT_COLUMNS} FROM channels WHERE tenant_id = {{p}} "
        "ORDER BY created_at DESC, id DESC"
    )
    # The driver imported and connected before the clock starts (the app's export runs on a
    # warmed-up pooled connection too).
    if database_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        params: tuple = ("?",)
    else:
        import psycopg

        conn = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"))
        params = ("%s",)
    before = _rss_kib()
    started = time.perf_counter()
    rows = 0
    if database_url.startswith("sqlite"):
        cursor = conn.execute(sql.format(p=params[0]), (tenant_id,))
    else:
        cursor = conn.cursor(name="bench_export")  # server-side: fetched 1,000 at a time
        cursor.itersize = FETCH
        cursor.execute(sql.format(p=params[0]), (tenant_id,))
    while batch := cursor.fetchmany(FETCH):
        rows += len(batch)
    cursor.close()
    seconds = time.perf_counter() - started
    conn.close()
    return {"rows": rows, "seconds": seconds, "rss_before_kib": before, "peak_kib": _peak_kib()}


def _run_child(args: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.export", "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stdout + result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the run -------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_database(backend: str, sizes: tuple[int, ...], repeat: int, formats: tuple[str, ...]):
    """Seed, grow, and measure one database; returns its figures."""
    from flask_migrate import upgrade

    from bench import dataset
    from bench.runner import make_app, prepare_database
    from core.extensions import db

    secret = secrets.token_urlsafe(48)
    fernet = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory(prefix="channels-export-bench-") as tmp:
        database_url = prepare_database(backend, Path(tmp))
        app = make_app(database_url, secret, fernet)
        with app.app_context():
            upgrade()
            seed = dataset.seed_tenants()
            key = seed.api_key
            tenant_id = seed.measured.id
        figures: dict = {"sizes": {}}
        for size in sizes:
            with app.app_context():
                loaded = dataset.grow(seed, size, share=1)
                db.session.remove()
            log(f"{backend}: {size} channels loaded in {loaded:.1f}s")
            runs: dict[str, list[dict]] = {"select": [], **{f: [] for f in formats}}
            for round_ in range(repeat):
                runs["select"].append(_run_child(["select", database_url, tenant_id]))
                log(f"{backend} {size} select #{round_ + 1}: {runs['select'][-1]}")
                for export_format in formats:
                    runs[export_format].append(
                        _run_child(["export", database_url, key, export_format, secret, fernet])
                    )
                    log(
                        f"{backend} {size} {export_format} #{round_ + 1}: {runs[export_format][-1]}"
                    )
            at_size = {}
            for name, samples in runs.items():
                assert all(s["rows"] == size for s in samples), (name, size, samples)
                at_size[name] = {
                    "rows_per_s": round(
                        statistics.median(s["rows"] / s["seconds"] for s in samples)
                    ),
                    "peak_rss_mib": round(
                        statistics.median(s["peak_kib"] for s in samples) / 1024, 1
                    ),
                    "rss_before_mib": round(
                        statistics.median(s["rss_before_kib"] for s in samples) / 1024, 1
                    ),
                }
                if "bytes" in samples[0]:
                    at_size[name]["mib"] = round(samples[0]["bytes"] / 2**20, 1)
                log(f"{backend} {size} {name}: {at_size[name]}")
            figures["sizes"][size] = at_size
    return figures


def ratios(backend: str, figures: dict, formats: tuple[str, ...]) -> dict:
    sizes = sorted(figures["sizes"])
    small, large = figures["sizes"][sizes[0]], figures["sizes"][sizes[-1]]
    out = {}
    for export_format in formats:
        prefix = f"{backend}_{export_format}"
        out[f"{prefix}_export_vs_select"] = round(
            large[export_format]["rows_per_s"] / large["select"]["rows_per_s"], 3
        )
        out[f"{prefix}_peak_rss_{sizes[-1]}_vs_{sizes[0]}"] = round(
            large[export_format]["peak_rss_mib"] / small[export_format]["peak_rss_mib"], 3
        )
        for size in sizes:
            out[f"{prefix}_rows_per_s_{size}"] = figures["sizes"][size][export_format]["rows_per_s"]
            out[f"{prefix}_peak_rss_mib_{size}"] = figures["sizes"][size][export_format][
                "peak_rss_mib"
            ]
    for size in sizes:
        out[f"{backend}_select_rows_per_s_{size}"] = figures["sizes"][size]["select"]["rows_per_s"]
        out[f"{backend}_select_peak_rss_mib_{size}"] = figures["sizes"][size]["select"][
            "peak_rss_mib"
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, *rest = argv[1:]
        result = child_export(*rest) if kind == "export" else child_select(*rest)
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS))
    options = parser.parse_args(argv)
    backends = tuple(options.db or ("sqlite", "postgresql"))
    sizes = tuple(int(s) for s in options.sizes.split(","))
    formats = tuple(options.formats.split(","))
    result: dict = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    for backend in backends:
        figures = run_database(backend, sizes, options.repeat, formats)
        result.update(ratios(backend, figures, formats))
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
