"""A real server for reliability tests: gunicorn workers, scratch databases, parallel clients.

Used by tests/reliability/conftest.py (fixtures) and by tests that run their own throwaway
PostgreSQL cluster. Everything here talks to the server over real sockets, one connection
per client thread, so that requests really run in parallel in several worker processes.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from core.extensions import db
from tests.conftest import SECRET_KEY, base_config

ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS_KEY = Fernet.generate_key().decode()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_suffix() -> str:
    """Distinct per pytest-xdist worker, so that parallel workers never share a scratch db."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# --- scratch databases --------------------------------------------------------------------------


def create_scratch_postgres(base_url: str, name: str) -> str:
    """An empty PostgreSQL database next to ``base_url``'s (created once, emptied each time).

    Emptied by recreating its schema rather than dropped: DROP DATABASE forces a checkpoint,
    which takes tens of seconds on a busy shared server.
    """
    url = make_url(base_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    scratch_url = url.set(database=name).render_as_string(hide_password=False)
    empty_scratch_postgres(scratch_url)
    return scratch_url


def empty_scratch_postgres(scratch_url: str) -> None:
    """Drop everything in the scratch database (other sessions on it are ended first)."""
    engine = create_engine(scratch_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def call(
    base: tuple[str, int],
    method: str,
    path: str,
    body: object = None,
    headers: dict | None = None,
    raw: bytes | None = None,
    timeout: float = 60,
) -> Reply:
    """One request on its own connection."""
    conn = http.client.HTTPConnection(*base, timeout=timeout)
    try:
        sent = dict(headers or {})
        payload = raw
        if body is not None:
            payload = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def in_parallel(jobs: list[Callable[[], object]], start_together: bool = True) -> list[object]:
    """Run every job in its own thread (released together by a barrier); results or exceptions."""
    barrier = threading.Barrier(len(jobs)) if start_together else None

    def run(job):
        if barrier is not None:
            barrier.wait(timeout=60)
        try:
            return job()
        except Exception as exc:  # a reset connection is a result here, not a test error
            return exc

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


# --- gunicorn -----------------------------------------------------------------------------------


@dataclass
class LiveServer:
    """gunicorn serving ``app:create_app()`` on a database, plus an app for setup and checks."""

    database_url: str
    workers: int = 4
    extra_env: dict = field(default_factory=dict)
    extra_args: list = field(default_factory=list)  # more gunicorn options (``-c ...``)
    port: int = 0
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def __post_init__(self):
        # The same CREDENTIALS_KEY as the server: rows seeded here must decrypt there.
        self.app = create_app(
            {**base_config(self.database_url), "CREDENTIALS_KEY": CREDENTIALS_KEY}
        )

    @property
    def base(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextmanager
    def context(self):
        """An application context on the served database (to seed data and check rows)."""
        with self.app.app_context():
            try:
                yield
            finally:
                db.session.remove()

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            SECRET_KEY=SECRET_KEY,
            CREDENTIALS_KEY=CREDENTIALS_KEY,
            CHANNELS_ENV="testing",
            RATELIMIT_API="1000000 per minute",
            RATELIMIT_API_AUTH_FAILURES="1000000 per minute",
            PYTHONPATH=str(ROOT),
        )
        env.update(self.extra_env)
        return env

    def start(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"gunicorn-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(self.workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "120",
                "--graceful-timeout",
                "5",
                # The app is imported once and forked: 4 workers start in the time of one.
                "--preload",
                *self.extra_args,
                "app:create_app()",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every worker answers (the openapi document needs no key nor database)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_text()[-3000:]}")
            try:
                if call(self.base, "GET", "/api/openapi.json", timeout=5).status == 200:
                    if len(self.worker_pids()) >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start:\n{self.log_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        """The master's children (from /proc; no psutil needed)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.process.pid:
                pids.append(int(entry.name))
        return pids

    def kill_worker(self) -> int:
        pid = self.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def server_errors(self) -> list[str]:
        """Log lines of unexpected errors (500s): none may appear."""
        return [
            line
            for line in self.log_text().splitlines()
            if "Traceback" in line or "unhandled error" in line
        ]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # quick shutdown: tests are done with it
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()
        with self.app.app_context():
            db.engine.dispose()

    def request(self, method: str, path: str, body=None, key: str | None = None, **kwargs) -> Reply:
        headers = dict(kwargs.pop("headers", {}) or {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return call(self.base, method, path, body=body, headers=headers, **kwargs)


def csrf_of(page_text: str) -> str:
    """The CSRF token of a console page: its form's hidden field, else the htmx headers."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page_text, "html.parser")
    hidden = soup.find("input", attrs={"name": "csrf_token"})
    if hidden is not None:
        return hidden["value"]
    return json.loads(soup.body["hx-headers"])["X-CSRFToken"]


def statuses(replies: Iterable[object]) -> list[object]:
    """Status codes, or the exception class name for requests that got no response."""
    return [r.status if isinstance(r, Reply) else type(r).__name__ for r in replies]


# --- a private PostgreSQL cluster ---------------------------------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A throwaway PostgreSQL 15 cluster on its own port and socket directory.

    Run as the ``postgres`` OS user (via ``runuser``) when the tests run as root, since
    PostgreSQL refuses to run as root.
    """

    def __init__(self):
        # Not under pytest's tmp dirs: those are private to root and postgres must reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="channels_pg_"))
        self.data = self.directory / "data"
        self.port = free_port()

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}")
        return result

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c shared_buffers=16MB -c max_connections=50"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False
        )

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
