"""Webhooks through real processes: ``flask worker`` and ``flask scheduler`` subprocesses on a real
Redis, the embedded engine of a real ``flask run``, a real HTTP receiver in a thread; signatures
checked with the standardwebhooks library.

- events reach the receiver from a worker on Redis, 50 concurrent changes give 50 events
  (duplicates only as retries of one id), a worker SIGKILLed mid-delivery leaves the delivery to
  its successor (same webhook-id);
- Redis stopped while changes are made: the changes succeed, nothing is lost, all is delivered
  once Redis is back (a private redis-server, so that stopping it disturbs nobody);
- the embedded default: ``flask run`` without BROKER_URL delivers, including changes it did not
  make itself (the outbox dispatcher).

The shared Redis is used at db 5, each test on a queue of its own (TASK_QUEUE), so concurrent
test workers never take each other's tasks.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import select

from core.database import writing
from core.extensions import db
from core.models import Event, WebhookDelivery
from core.services import channels
from tests import factories
from tests.webhook_receiver import Receiver, verify

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/5"
FAST = {"OUTBOX_POLL_SECONDS": "0.5", "OUTBOX_SWEEP_SECONDS": "3", "WEBHOOK_TIMEOUT": "2"}


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Flask CLI subprocesses of the app (worker, scheduler, run), each in its own process
    group, their output in files shown when a test fails."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.tmp_path = tmp_path
        self.env = env
        self.running: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self, name: str, *args: str, **env) -> subprocess.Popen:
        log = self.tmp_path / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as output:  # the child has its own copy of the descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", *args],
                cwd=ROOT,
                env={**os.environ, **self.env, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append(process)
        return process

    def worker(self) -> subprocess.Popen:
        return self.start("worker", "worker", "--concurrency", "2", "--without-heartbeat")

    def scheduler(self) -> subprocess.Popen:
        return self.start("scheduler", "scheduler")

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the whole process group (the worker and its pool children)."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def output(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in self.logs
        )


@pytest.fixture
def queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app_config(app_config, queue):
    """The test's own app publishes to the broker like a web process would."""
    return {
        **app_config,
        "BROKER_URL": REDIS_URL,
        "TASK_QUEUE": queue,
        "WEBHOOK_TIMEOUT": 2.0,
        "OUTBOX_POLL_SECONDS": 0.5,
        "OUTBOX_SWEEP_SECONDS": 3.0,
    }


@pytest.fixture
def processes(app, database_url, tmp_path, queue):
    env = {
        "CHANNELS_ENV": "testing",
        "SECRET_KEY": app.config["SECRET_KEY"],
        "DATABASE_URL": database_url,
        "BROKER_URL": REDIS_URL,
        "TASK_QUEUE": queue,
        "LOG_LEVEL": "INFO",
        **FAST,
    }
    running = Processes(tmp_path, env)
    yield running
    running.stop_all()


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def deliveries() -> list[WebhookDelivery]:
    """The delivery rows as they are now, detached: reading their attributes later opens no
    transaction (an expired row would reload, and the read transaction it opened would keep the
    test from writing on SQLite once a worker committed: "database is locked")."""
    db.session.rollback()
    rows = list(db.session.scalars(select(WebhookDelivery)))
    for row in rows:
        db.session.expunge(row)
    db.session.rollback()
    return rows


def wait_until(check, timeout: float, what: str, processes: Processes | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(
        f"{what} within {timeout:g} s" + (f"\n{processes.output()}" if processes else "")
    )


needs_redis = pytest.mark.skipif(
    not redis_answers(REDIS_URL), reason=f"Redis does not answer at {REDIS_URL}"
)


@needs_redis
def test_a_worker_on_redis_delivers_fifty_concurrent_changes_and_survives_a_sigkill(
    app, api, setup, server, processes, receiver
):
    """Signed events from a real worker; 50 concurrent API changes → 50 distinct events, each
    delivered (repeats only with one id); a worker killed mid-delivery → its successor
    delivers the same webhook-id."""
    _, secret = factories.make_webhook_endpoint(setup.tenant, receiver.url, ["channel.created"])
    processes.scheduler()
    worker = processes.worker()

    # 50 concurrent changes through the served app (a thread per request).
    key = api.key
    errors = []
    bodies = [setup.email_payload(name=f"Channel {n:02d}") for n in range(50)]

    def create(n: int) -> None:
        response = httpx.post(
            f"{server}/api/channels",
            json=bodies[n],
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        if response.status_code != 201:
            errors.append(response.text)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    received = receiver.wait_for(50, timeout=90)
    payloads = [verify(secret, request) for request in received]
    by_id: dict[str, set[str]] = {}
    for request, payload in zip(received, payloads, strict=True):
        by_id.setdefault(request["headers"]["webhook-id"], set()).add(payload["data"]["id"])
    assert len(by_id) == 50  # 50 events; a repeat would carry an id already seen
    assert all(len(channels) == 1 for channels in by_id.values())
    names = sorted(p["data"]["name"] for p in payloads)
    assert sorted(set(names)) == [f"Channel {n:02d}" for n in range(50)]
    db.session.rollback()
    assert (
        len(db.session.scalars(select(Event.id).where(Event.type == "channel.created")).all()) == 50
    )
    wait_until(
        lambda: all(d.status == "delivered" for d in deliveries()),
        30,
        "every delivery recorded as delivered",
        processes,
    )

    # SIGKILL the worker while the receiver holds its request.
    receiver.delay = 5.0
    before = len(receiver.received)
    started = receiver.started
    # The worker and the scheduler write all the time: the test's own write takes SQLite's
    # write lock at BEGIN, as a request's would (a read first would leave a transaction that
    # could no longer write once they committed: "database is locked").
    db.session.rollback()
    with writing():
        factories.make_channel(setup, "email", name="Killed mid-delivery")
    channel_event = db.session.scalars(
        select(Event).where(Event.type == "channel.created").order_by(Event.created_at.desc())
    ).first()
    receiver.wait_started(started + 1, timeout=30)
    processes.kill(worker)
    receiver.delay = 0.0
    processes.worker()
    last = receiver.wait_for(before + 2, timeout=60)[-1]
    assert last["headers"]["webhook-id"] == channel_event.id
    assert verify(secret, last)["data"]["name"] == "Killed mid-delivery"
    row = wait_until(
        lambda: next(
            (d for d in deliveries() if d.event_id == channel_event.id and d.status == "delivered"),
            None,
        ),
        30,
        "the killed delivery recorded as delivered",
        processes,
    )
    assert row.attempts == 1  # the killed attempt was never recorded; the successor's was


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own on a free port (stoppable); yields (url, start, stop)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    state: dict[str, subprocess.Popen | None] = {"process": None}

    def start() -> None:
        state["process"] = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: redis_answers(url), 10, "the private Redis answering")

    def stop() -> None:
        process = state["process"]
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(10)

    start()
    yield url, start, stop
    stop()


def test_redis_down_while_changes_are_made_loses_nothing(
    app, api, setup, processes, receiver, private_redis
):
    """Broker stopped: the API's changes still succeed (quickly), their events wait in the
    outbox; once Redis is back, the scheduler's dispatcher hands them over and all arrive."""
    url, start, stop = private_redis
    app.config["BROKER_URL"] = url
    processes.env["BROKER_URL"] = url
    app.extensions["celery"].conf.broker_url = url
    _, secret = factories.make_webhook_endpoint(setup.tenant, receiver.url, ["channel.created"])
    processes.scheduler()
    processes.worker()
    api.post("/api/channels", json=setup.email_payload(name="Before"))
    receiver.wait_for(1, timeout=60)

    stop()
    began = time.monotonic()
    for n in range(5):
        response = api.post("/api/channels", json=setup.email_payload(name=f"During {n}"))
        assert response.status_code == 201
    assert time.monotonic() - began < 30  # a dead broker does not hold requests up
    time.sleep(2)
    assert len(receiver.received) == 1
    start()
    received = receiver.wait_for(6, timeout=120)
    names = {verify(secret, r)["data"]["name"] for r in received}
    assert names == {"Before", *(f"During {n}" for n in range(5))}


def test_the_embedded_default_delivers_without_a_broker(
    app, setup, database_url, tmp_path, receiver
):
    """`flask run` in development without BROKER_URL: its own changes are delivered at once,
    and a change made by another process (a CLI command) is found by its dispatcher."""
    _, secret = factories.make_webhook_endpoint(setup.tenant, receiver.url, ["channel.created"])
    key = factories.make_api_key(setup.tenant)
    port = free_port()
    env = {
        "CHANNELS_ENV": "development",
        "SECRET_KEY": app.config["SECRET_KEY"],
        "DATABASE_URL": database_url,
        "BROKER_URL": "",
        **FAST,
    }
    server = Processes(tmp_path, env)
    server.start("run", "run", "--no-reload", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(base), 30, "flask run answering", server)
        response = httpx.post(
            f"{base}/api/channels",
            json=setup.email_payload(name="Over HTTP"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        first = receiver.wait_for(1, timeout=30)[0]
        assert verify(secret, first)["data"]["name"] == "Over HTTP"
        payload = setup.email_payload(name="From another process")
        db.session.rollback()  # end the test's read: the write below takes the lock at BEGIN
        with writing():  # another process writing beside the server's engine (as a CLI would)
            channels.create_channel(setup.tenant.id, payload, factories.ACTOR)
            db.session.commit()
        second = receiver.wait_for(2, timeout=30)[1]
        assert verify(secret, second)["data"]["name"] == "From another process"
    finally:
        server.stop_all()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
