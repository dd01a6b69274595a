"""Run the benchmark: ``bench/run`` (both databases, 1k/100k/1M rows, writes bench/RESULTS.md)
or ``bench/run --quick`` (SQLite, 1k/100k rows, under a minute).

Both the baseline app (bench/bare_app.py) and the app as shipped (bench/served_app.py) run under
the same gunicorn set-up on the same database; wrk drives them. Every result is a ratio to a
baseline measured in the same run; the last line printed is one JSON object of ratios.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from bench import dataset, loadgen

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
FINDINGS = ROOT / "bench" / "FINDINGS.md"
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# BENCH_PG_DATABASE: another name, so that two benchmark runs on one machine do not share it.
POSTGRES_BENCH_DB = os.environ.get("BENCH_PG_DATABASE", "channels_bench")
# The PostgreSQL servers run as the README's production layout: RATELIMIT_STORAGE_URI and
# BROKER_URL name a Redis, whose counter the API key cache then reads (core/key_cache.py).
# A database number of the benchmark's own (the tests use 0, 5 and 7); BENCH_REDIS_URL names
# another (two benchmark runs at once need one each).
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
RATIO_KEYS = (
    "create_vs_insert",
    "create_default_vs_insert",
    "create_p99_vs_p50",
    "list_vs_bare",
    "get_vs_bare",
    "not_modified_vs_get",
    "list_1m_vs_1k",
    "get_1m_vs_1k",
    "create_1m_vs_1k",
    "search_1m_vs_1k",
    "search_common_1m_vs_1k",
    "worker_peak_rss_mib",
)


@dataclass
class Profile:
    """How long and how hard: ``--quick`` or the full run."""

    name: str
    backends: tuple[str, ...]
    sizes: tuple[int, ...]
    throughput_seconds: float
    growth_seconds: float
    warmup_seconds: float
    rounds: int
    growth_rounds: int
    workers: int
    connections: int


QUICK = Profile("quick", ("sqlite",), (1_000, 100_000), 2, 1, 1, 1, 1, 4, 8)
FULL = Profile("full", ("sqlite", "postgresql"), (1_000, 100_000, 1_000_000), 4, 2, 3, 3, 2, 4, 8)


@dataclass
class BackendRun:
    """Everything measured on one database."""

    backend: str
    throughput: dict[str, list[loadgen.Result]] = field(default_factory=dict)
    growth: dict[int, dict[str, list[loadgen.Result]]] = field(default_factory=dict)
    load_seconds: dict[int, float] = field(default_factory=dict)
    console: dict[str, dict] = field(default_factory=dict)
    explain: dict[str, str] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)  # the app's workers' peak RSS
    ratios: dict[str, float | int | str] = field(default_factory=dict)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database_url: str, secret_key: str, credentials_key: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        CHANNELS_ENV="production",
        SECRET_KEY=secret_key,
        CREDENTIALS_KEY=credentials_key,
        PYTHONPATH=str(ROOT),
    )
    if database_url.startswith("postgresql"):
        # As deployed (README, "Deploying"): the rate limits' storage and the task broker are
        # a Redis (the limits themselves are off for the run, bench/served_app.py).
        env.update(RATELIMIT_STORAGE_URI=BENCH_REDIS_URL, BROKER_URL=BENCH_REDIS_URL)
        check_redis(BENCH_REDIS_URL)
    return env


def check_redis(url: str) -> None:
    """Say so when the Redis does not answer: the app still serves (keys from the database,
    core/key_cache.py), but the figures are then not those of the production layout."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        log(f"WARNING: Redis at {url} does not answer ({exc}); API keys go to the database")


def worker_peak_rss_kib(master_pid: int) -> int:
    """The largest peak resident set (VmHWM) among the live children of ``master_pid``."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue  # the process ended meanwhile
        if fields.get("PPid", "").strip() == str(master_pid) and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]))
    return peak


@contextmanager
def gunicorn(app_spec: str, env: dict, workers: int, probe: str, memory: dict | None = None):
    """gunicorn with ``workers`` sync workers serving ``app_spec``, ready when ``probe`` answers.
    ``memory`` gets ``peak_rss_kib``: the workers' largest peak RSS, read before they stop."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers),
        "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning",
        "--backlog", "256",
        "--no-control-socket",  # several gunicorns run at once; none needs the control socket
        "--graceful-timeout", "5",
        app_spec,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # workers boot slowly on a busy machine
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn for {app_spec} exited with {process.returncode}")
            try:
                urllib.request.urlopen(base + probe, timeout=2).read()
                break
            except urllib.error.HTTPError:
                break  # any HTTP answer means the app is up (401 for the API without a key)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn for {app_spec} did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        if memory is not None and process.poll() is None:
            memory["peak_rss_kib"] = worker_peak_rss_kib(process.pid)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare_database(backend: str, workdir: Path) -> str:
    """An empty database for this run: a fresh SQLite file or a recreated channels_bench."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {POSTGRES_BENCH_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {POSTGRES_BENCH_DB}"))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{POSTGRES_BENCH_DB}"


def make_app(database_url: str, secret_key: str, credentials_key: str):
    from app import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": secret_key,
            "CREDENTIALS_KEY": credentials_key,
            "RATELIMIT_ENABLED": False,
            "LOG_LEVEL": "WARNING",
        }
    )


def measure_growth(
    base: str, bare: str, seed: dataset.Seed, profile: Profile, headers: dict
) -> dict:
    """Latency (one connection, no queueing) of list, get, create and search at this size, and of
    the bare JSON endpoint in the same minute (to tell table growth from a busier machine)."""
    body = dataset.create_payload(seed)
    post_headers = dict(headers, **{"Content-Type": "application/json"})
    runs = {
        "bare_json": dict(url=f"{bare}/bare/json", headers={}),
        "list": dict(url=f"{base}/api/channels"),
        "get": dict(url=f"{base}/api/channels/{seed.sample_id}"),
        "create": dict(url=f"{base}/api/channels", post_body_template=body, headers=post_headers),
        "search": dict(url=f"{base}/api/channels?q={dataset.NEEDLE}"),
        "search_common": dict(url=f"{base}/api/channels?q={dataset.COMMON}"),
    }
    for spec in runs.values():
        spec.setdefault("headers", headers)
    results: dict[str, list[loadgen.Result]] = {name: [] for name in runs}
    for _ in range(profile.growth_rounds):
        for name, spec in runs.items():
            results[name].append(
                loadgen.run(
                    f"{name}-{seed.loaded}", duration=profile.growth_seconds, connections=1, **spec
                )
            )
    return results


def warm_up(base: str, bare: str, seed: dataset.Seed, profile: Profile, headers: dict) -> None:
    """Every worker of both servers serves every measured request once before anything counts
    (first requests fill SQLAlchemy's statement cache, Jinja's template cache, the pools)."""
    body = dataset.create_payload(seed)
    post_headers = dict(headers, **{"Content-Type": "application/json"})
    for url, extra in (
        (f"{bare}/bare/json", {}),
        (
            f"{bare}/bare/insert",
            dict(
                post_body_template='{"name": "__NAME__"}',
                headers={"Content-Type": "application/json"},
            ),
        ),
        (
            f"{bare}/bare/create",
            dict(
                post_body_template='{"name": "__NAME__"}',
                headers={"Content-Type": "application/json"},
            ),
        ),
        (f"{bare}/bare/read", {}),
        (f"{bare}/bare/read", dict(headers={"If-None-Match": etag_of(f"{bare}/bare/read")})),
        (f"{base}/api/channels", dict(headers=headers)),
        (f"{base}/api/channels/{seed.sample_id}", dict(headers=headers)),
        (
            f"{base}/api/channels/{seed.sample_id}",
            dict(
                headers=dict(
                    headers,
                    **{"If-None-Match": etag_of(f"{base}/api/channels/{seed.sample_id}", headers)},
                )
            ),
        ),
        (f"{base}/api/channels?q={dataset.NEEDLE}", dict(headers=headers)),
        (f"{base}/api/channels?q={dataset.COMMON}", dict(headers=headers)),
        (f"{base}/api/channels", dict(post_body_template=body, headers=post_headers)),
        (
            f"{base}/api/channels",
            dict(post_body_template=dataset.seed_payload(seed), headers=post_headers),
        ),
    ):
        loadgen.run(
            "warmup",
            url,
            duration=profile.warmup_seconds,
            connections=profile.workers * 2,
            threads=2,
            allow_errors=True,
            **extra,
        )


THROUGHPUT_PAIRS = {
    "create": "bare_insert",
    "create_default": "bare_insert",
    "create_one_tenant": "bare_insert",
    "list": "bare_json",
    "get": "bare_json",
    # GET of the same channel with If-None-Match naming its ETag (304, no body) against the
    # full GET, measured right after it in each round.
    "not_modified": "get",
    # The floors (bench/bare_app.py): the same statements with nothing of the app around them.
    # What the targets above would be against a bare Flask endpoint doing only the work.
    "floor_create": "bare_insert",
    "floor_get": "bare_json",
    "floor_not_modified": "floor_get",
}


def etag_of(url: str, headers: dict | None = None) -> str:
    """The ETag of ``url``, as a client that fetched it once holds it."""
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["ETag"]


def measure_throughput(bare: str, base: str, seed: dataset.Seed, profile: Profile, headers: dict):
    """Throughput and latency under load, in rounds that alternate baselines and app endpoints
    (so a change in the machine's background load hits both); returns every round."""
    body = dataset.create_payload(seed)
    post_headers = dict(headers, **{"Content-Type": "application/json"})
    specs = {
        "bare_json": dict(url=f"{bare}/bare/json"),
        "bare_insert": dict(
            url=f"{bare}/bare/insert",
            post_body_template='{"name": "__NAME__"}',
            headers={"Content-Type": "application/json"},
        ),
        # Creates take turns through every tenant (each with its own key), as a multi-tenant
        # API's traffic does; "create_one_tenant" sends them all to the measured tenant, whose
        # channel writes serialise on its row lock by design (core.services.channels).
        "create": dict(
            url=f"{base}/api/channels",
            post_rotation=[
                (
                    {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    dataset.create_payload(seed, index),
                )
                for index, key in enumerate(seed.api_keys)
            ],
        ),
        # The seed page's own body ("is_default": true: each create hands the default over),
        # through every tenant like "create".
        "create_default": dict(
            url=f"{base}/api/channels",
            post_rotation=[
                (
                    {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    dataset.seed_payload(seed, index),
                )
                for index, key in enumerate(seed.api_keys)
            ],
        ),
        "create_one_tenant": dict(
            url=f"{base}/api/channels", post_body_template=body, headers=post_headers
        ),
        "list": dict(url=f"{base}/api/channels", headers=headers),
        "get": dict(url=f"{base}/api/channels/{seed.sample_id}", headers=headers),
        "not_modified": dict(
            url=f"{base}/api/channels/{seed.sample_id}",
            headers=dict(
                headers,
                **{"If-None-Match": etag_of(f"{base}/api/channels/{seed.sample_id}", headers)},
            ),
        ),
        "floor_create": dict(
            url=f"{bare}/bare/create",
            post_body_template='{"name": "__NAME__"}',
            headers={"Content-Type": "application/json"},
        ),
        "floor_get": dict(url=f"{bare}/bare/read"),
        "floor_not_modified": dict(
            url=f"{bare}/bare/read", headers={"If-None-Match": etag_of(f"{bare}/bare/read")}
        ),
    }
    common = dict(connections=profile.connections, threads=2)  # warm already (warm_up)
    rounds: dict[str, list[loadgen.Result]] = {name: [] for name in specs}
    for number in range(profile.rounds):
        for name, spec in specs.items():
            result = loadgen.run(name, duration=profile.throughput_seconds, **common, **spec)
            rounds[name].append(result)
            log(f"  round {number + 1} {name}: {result.rps:.0f} req/s, p50 {result.p50_ms:.1f} ms")
    return rounds


def run_backend(backend: str, profile: Profile, workdir: Path) -> BackendRun:
    """Set up one database, serve both apps, measure, and compute the ratios."""
    from flask_migrate import upgrade

    from bench import console
    from bench.bare_app import create_bare_table
    from core.extensions import db

    result = BackendRun(backend)
    secret_key = secrets.token_urlsafe(48)
    credentials_key = Fernet.generate_key().decode()
    database_url = prepare_database(backend, workdir)
    app = make_app(database_url, secret_key, credentials_key)
    with app.app_context():
        upgrade()
        seed = dataset.seed_tenants()
        create_bare_table(database_url)
        console_target = console.prepare(app, seed)
    env = server_env(database_url, secret_key, credentials_key)
    headers = {"Authorization": f"Bearer {seed.api_key}"}

    workers = profile.workers
    with (
        gunicorn("bench.bare_app:create_bare_app()", env, workers, "/bare/json") as bare,
        gunicorn("bench.served_app:app", env, workers, "/api/channels", result.memory) as base,
    ):
        for size in profile.sizes:
            with app.app_context():
                result.load_seconds[size] = dataset.grow(seed, size)
                if size == profile.sizes[-1]:
                    result.explain = explain_queries(seed)
            log(f"[{backend}] {size} rows loaded in {result.load_seconds[size]:.1f}s")
            if size == profile.sizes[0]:
                warm_up(base, bare, seed, profile, headers)
            result.growth[size] = measure_growth(base, bare, seed, profile, headers)
            for name, res in result.growth[size].items():
                log(
                    f"  {name}@{size}: p50 {median([r.p50_ms for r in res]):.2f} ms, "
                    f"p10 {median([r.p10_ms for r in res]):.2f} ms"
                )
            if size == profile.sizes[0]:
                result.throughput = measure_throughput(bare, base, seed, profile, headers)
                if console_target is not None:
                    result.console = console.measure(base, bare, console_target, profile)
    with app.app_context():
        db.engine.dispose()
    result.ratios = ratios(result, profile)
    return result


def explain_queries(seed: dataset.Seed) -> dict[str, str]:
    """The database's plan for the API's list and search queries on the largest table (the
    columns the API renders, as ``GET /api/channels`` selects them)."""
    from sqlalchemy import text

    from core.extensions import db
    from core.models import Channel
    from core.services.channel_queries import API_COLUMNS, channel_list_query

    dialect = db.engine.dialect
    prefix = "EXPLAIN" if dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
    tenant = seed.measured.id
    queries = {
        "list": channel_list_query(tenant),
        "search": channel_list_query(tenant, q=dataset.NEEDLE),
        "search_common": channel_list_query(tenant, q=dataset.COMMON),
    }
    plans = {}
    for name, query in queries.items():
        query = (
            query.with_only_columns(*API_COLUMNS)
            .order_by(Channel.created_at.desc(), Channel.id.desc())
            .limit(51)
        )
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        rows = db.session.execute(text(f"{prefix} {sql}")).all()
        plans[name] = "\n".join(" | ".join(str(c) for c in row) for row in rows)
    db.session.rollback()
    return plans


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def ratios(run: BackendRun, profile: Profile) -> dict:
    """The headline ratios; throughput ratios >1 are better, latency ratios <1 are better.

    Throughput: the median over rounds of (app req/s / baseline req/s in the same round).
    Growth: p50 at the largest size / p50 at 1k (each the median over rounds); ``*_p10`` uses
    the fastest decile instead (background load only adds latency, so it is the steadiest), and
    ``*_normalized`` divides by the same ratio of the bare JSON endpoint measured alongside.
    """
    t = run.throughput
    small, large = profile.sizes[0], profile.sizes[-1]

    def paired(name: str, figure: str) -> float:
        base = THROUGHPUT_PAIRS[name]
        values = [
            getattr(a, figure) / getattr(b, figure) for a, b in zip(t[name], t[base], strict=True)
        ]
        return round(median(values), 3)

    def spread(name: str) -> float:
        """p99 / p50 of the endpoint's own latency under load (median over rounds)."""
        return round(median([r.p99_ms / r.p50_ms for r in t[name]]), 3)

    def latency(size: int, name: str, figure: str = "p50_ms") -> float:
        return median([getattr(r, figure) for r in run.growth[size][name]])

    def growth(name: str, figure: str = "p50_ms") -> float:
        return round(latency(large, name, figure) / latency(small, name, figure), 3)

    def normalized(name: str) -> float:
        return round(growth(name) / growth("bare_json"), 3)

    values = {
        "create_vs_insert": paired("create", "rps"),
        "create_default_vs_insert": paired("create_default", "rps"),
        "create_p99_vs_p50": spread("create"),
        "list_vs_bare": paired("list", "rps"),
        "get_vs_bare": paired("get", "rps"),
        "not_modified_vs_get": paired("not_modified", "rps"),
        "list_1m_vs_1k": growth("list"),
        "get_1m_vs_1k": growth("get"),
        "create_1m_vs_1k": growth("create"),
        "search_1m_vs_1k": growth("search"),
        "large_rows": large,
        "database": run.backend,
        "floor_create_vs_insert": paired("floor_create", "rps"),
        "floor_get_vs_bare": paired("floor_get", "rps"),
        "floor_not_modified_vs_get": paired("floor_not_modified", "rps"),
        "create_p50_vs_insert": paired("create", "p50_ms"),
        "create_p99_vs_insert": paired("create", "p99_ms"),
        "create_default_p99_vs_p50": spread("create_default"),
        "create_one_tenant_vs_insert": paired("create_one_tenant", "rps"),
        "create_one_tenant_p50_vs_insert": paired("create_one_tenant", "p50_ms"),
        "list_p50_vs_bare": paired("list", "p50_ms"),
        "list_p99_vs_bare": paired("list", "p99_ms"),
        "get_p50_vs_bare": paired("get", "p50_ms"),
        "get_p99_vs_bare": paired("get", "p99_ms"),
        "search_common_1m_vs_1k": growth("search_common"),
        "bare_json_1m_vs_1k": growth("bare_json"),
        # The app's gunicorn workers at the end of the run (every size loaded and read).
        "worker_peak_rss_mib": round(run.memory.get("peak_rss_kib", 0) / 1024, 1),
    }
    for name in ("list", "get", "create", "search", "search_common"):
        values[f"{name}_1m_vs_1k_p10"] = growth(name, "p10_ms")
        values[f"{name}_1m_vs_1k_normalized"] = normalized(name)
    for name, figures in run.console.items():
        if name != "bare_json":
            values[f"console_{name}_p50_vs_bare"] = figures["p50_vs_bare"]
            values[f"console_{name}_bytes"] = figures["bytes"]
    return values


def machine() -> dict:
    """CPU model, cores, memory and the versions that matter, for RESULTS.md."""
    import sqlite3

    import gunicorn as gunicorn_pkg
    import sqlalchemy

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    wrk = subprocess.run([loadgen.ensure_wrk(), "-v"], capture_output=True, text=True)
    postgres = ""
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(POSTGRES_ADMIN_URL)
        with engine.connect() as conn:
            postgres = conn.execute(text("SHOW server_version")).scalar()
        engine.dispose()
    except Exception as exc:  # PostgreSQL is optional for --quick
        postgres = f"unavailable ({exc.__class__.__name__})"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "flask": importlib.metadata.version("flask"),
        "sqlalchemy": sqlalchemy.__version__,
        "gunicorn": gunicorn_pkg.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres,
        "wrk": (wrk.stdout + wrk.stderr).splitlines()[0] if (wrk.stdout + wrk.stderr) else "wrk",
        "commit": commit.stdout.strip() or os.environ.get("BENCH_COMMIT", "unknown"),
    }


def write_results(
    runs: list[BackendRun], profile: Profile, info: dict, started: float, path: Path
) -> None:
    """bench/RESULTS.md: how it was run, the machine, the ratios, the tables, the plans."""
    from bench.report import render

    path.write_text(render(runs, profile, info, time.time() - started, FINDINGS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="SQLite only, 1k and 100k rows, < 1 min"
    )
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        action="append",
        help="limit the run to these databases (repeatable)",
    )
    parser.add_argument("--workers", type=int, help="gunicorn sync workers (default 4)")
    parser.add_argument(
        "--sizes", help="comma-separated table sizes instead of the profile's (e.g. 1000,20000)"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where the full run writes its report"
    )
    parser.add_argument("--no-results", action="store_true", help="write no report")
    args = parser.parse_args(argv)

    # A TERM (e.g. a CI timeout) unwinds like Ctrl-C, so that the gunicorns are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = QUICK if args.quick else FULL
    if args.db:
        profile.backends = tuple(args.db)
    if args.workers:
        profile.workers = args.workers
    if args.sizes:
        profile.sizes = tuple(int(size) for size in args.sizes.split(","))
    loadgen.ensure_wrk()
    started = time.time()
    runs = []
    with tempfile.TemporaryDirectory(prefix="channels-bench-") as workdir:
        for backend in profile.backends:
            log(f"[{backend}] {profile.name} run, {profile.workers} gunicorn sync workers")
            runs.append(run_backend(backend, profile, Path(workdir)))
    if not args.no_results and (not args.quick or args.results != RESULTS):
        write_results(runs, profile, machine(), started, args.results)
        log(f"wrote {args.results}")
    headline = dict(runs[-1].ratios)
    for other in runs[:-1]:
        for key in RATIO_KEYS:
            headline[f"{other.backend}_{key}"] = other.ratios[key]
    # The create path without HTTP (bench/inprocess.py): its own baseline, same run.
    from bench.inprocess import measure

    log("[in-process] create and refused create vs a bare insert")
    headline.update(measure())
    headline["seconds"] = round(time.time() - started, 1)
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
