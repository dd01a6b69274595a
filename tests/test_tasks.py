"""The task engine's wiring: the Celery app made from the Flask app, its commands and settings."""

from __future__ import annotations

import pytest

from app import create_app
from core.settings import SettingsError
from core.tasks import DELIVER, DISPATCH, SWEEP, embedded_wanted
from tests.conftest import base_config


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_worker_and_scheduler_need_a_broker(app, command):
    """Without BROKER_URL they refuse, saying the development server does the work itself."""
    result = app.test_cli_runner().invoke(args=[command])
    assert result.exit_code == 1
    assert "BROKER_URL is not set" in result.output
    assert "development server" in result.output


def test_the_celery_app_is_made_from_the_flask_app(app):
    """The broker, the queue and the periodic jobs come from the app's settings."""
    celery = app.extensions["celery"]
    assert {DELIVER, DISPATCH, SWEEP} <= set(celery.tasks)
    assert celery.conf.task_default_queue == app.config["TASK_QUEUE"]
    schedule = celery.conf.beat_schedule
    assert schedule["dispatch-outbox"]["task"] == DISPATCH
    assert schedule["dispatch-outbox"]["schedule"] == app.config["OUTBOX_POLL_SECONDS"]
    assert schedule["sweep-outbox"]["task"] == SWEEP
    assert celery.conf.task_acks_late is True


def test_a_broker_url_of_an_unknown_kind_stops_the_app(database_url):
    with pytest.raises(SettingsError, match="BROKER_URL"):
        create_app({**base_config(database_url), "BROKER_URL": "http://localhost:6379"})


def test_the_embedded_engine_is_for_the_development_server_only(database_url):
    """Only development without a broker; never under tests, never with a broker."""
    config = base_config(database_url)
    dev = {**config, "ENV": "development", "TESTING": False}
    assert embedded_wanted(create_app(dev))
    assert not embedded_wanted(create_app({**dev, "BROKER_URL": "redis://127.0.0.1:6379/5"}))
    assert not embedded_wanted(create_app(config))
    assert not embedded_wanted(
        create_app(
            {**dev, "ENV": "production", "SECRET_KEY": "x" * 40, "CREDENTIALS_KEY": _fernet()}
        )
    )


def _fernet() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def test_a_dead_broker_is_tried_once_then_left_to_the_dispatcher(database_url, monkeypatch):
    """After a failed publish, requests of this process do not try the broker again for
    BROKER_BACKOFF_SECONDS (a dead broker costs one request one attempt, not every request its
    timeout); the dispatcher's runs keep trying; after the pause, requests try again."""
    from core import tasks

    app = create_app({**base_config(database_url), "BROKER_URL": "redis://127.0.0.1:1/5"})
    tried: list[str] = []

    def refuse(args, retry):
        tried.append(args[0])
        raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(tasks.deliver_webhook, "apply_async", refuse)
    monkeypatch.setattr(tasks, "_broker_down_until", 0.0)
    clock = [1000.0]
    monkeypatch.setattr(tasks.time, "monotonic", lambda: clock[0])
    with app.app_context():
        tasks.hand_over(["a", "b"])  # fails on the first: the rest stay in the outbox
        tasks.hand_over(["c"])  # within the pause: not tried
        assert tried == ["a"]
        tasks.hand_over(["d"], force=True)  # the dispatcher tries regardless
        assert tried == ["a", "d"]
        clock[0] += tasks.BROKER_BACKOFF_SECONDS + 1
        tasks.hand_over(["e"])
        assert tried == ["a", "d", "e"]


def test_the_worker_supervisor_replaces_a_worker_that_died(tmp_path, monkeypatch):
    """A worker process that dies without being asked to (kombu's crash on a lost broker
    connection exits non-zero) is replaced; one that ends cleanly ends the supervision."""
    import os
    import signal as signals

    from core import tasks

    monkeypatch.setattr(tasks, "WORKER_RESTART_DELAY", 0.0)
    runs = tmp_path / "runs"

    def run():
        with runs.open("a") as out:
            out.write(f"{os.getpid()}\n")
        if len(runs.read_text().split()) < 3:
            os._exit(70)  # "Unrecoverable error": Celery's EX_SOFTWARE
        os._exit(0)

    handlers = {s: signals.getsignal(s) for s in (signals.SIGTERM, signals.SIGINT, signals.SIGQUIT)}
    try:
        assert tasks.supervise(run) == 0
    finally:
        for signum, handler in handlers.items():
            signals.signal(signum, handler)
    pids = runs.read_text().split()
    assert len(pids) == 3 and len(set(pids)) == 3 and str(os.getpid()) not in pids


def test_a_worker_stuck_after_an_unrecoverable_error_is_ended_and_replaced(tmp_path, monkeypatch):
    """Celery logs "Unrecoverable error" and starts a warm stop that can block for good on a
    broker that went away: the worker is ended after WORKER_STOP_GRACE and a new one starts."""
    import logging
    import os
    import signal as signals
    import time

    from core import tasks

    monkeypatch.setattr(tasks, "WORKER_RESTART_DELAY", 0.0)
    monkeypatch.setattr(tasks, "WORKER_STOP_GRACE", 0.5)
    runs = tmp_path / "runs"

    def run():
        with runs.open("a") as out:
            out.write(f"{os.getpid()}\n")
        if len(runs.read_text().split()) < 2:
            logging.getLogger("celery.worker.worker").critical(
                "Unrecoverable error: %r", AttributeError("'NoneType' object has no attribute")
            )
            time.sleep(60)  # the stop that never ends
        os._exit(0)

    handlers = {s: signals.getsignal(s) for s in (signals.SIGTERM, signals.SIGINT, signals.SIGQUIT)}
    began = time.monotonic()
    try:
        assert tasks.supervise(run) == 0
    finally:
        for signum, handler in handlers.items():
            signals.signal(signum, handler)
    assert time.monotonic() - began < 30
    assert len(runs.read_text().split()) == 2


def test_a_worker_that_stopped_on_an_unrecoverable_error_is_replaced(tmp_path, monkeypatch):
    """Celery's ``worker_main`` returns nothing, whatever its worker's exit code: a worker that
    stopped cleanly after an unrecoverable error (``exitcode`` 1) must still be replaced, its
    code read from the worker Celery announced (``celeryd_init``), and a worker that ended
    with 0 is not."""
    import os
    import signal as signals
    from types import SimpleNamespace

    from celery.signals import celeryd_init

    from core import tasks

    monkeypatch.setattr(tasks, "WORKER_RESTART_DELAY", 0.0)
    runs = tmp_path / "runs"

    def run():  # as Celery.worker_main: announces its worker, runs it, returns None
        with runs.open("a") as out:
            out.write(f"{os.getpid()}\n")
        worker = SimpleNamespace(exitcode=None)
        celeryd_init.send(sender="celery@test", instance=worker, conf=None)
        worker.exitcode = 1 if len(runs.read_text().split()) < 2 else 0
        return None

    handlers = {s: signals.getsignal(s) for s in (signals.SIGTERM, signals.SIGINT, signals.SIGQUIT)}
    try:
        assert tasks.supervise(run) == 0
    finally:
        for signum, handler in handlers.items():
            signals.signal(signum, handler)
    assert len(runs.read_text().split()) == 2


def test_a_stopped_worker_is_not_replaced(tmp_path):
    """SIGTERM to the supervisor alone (a container's stop) reaches the worker, which ends,
    and no new one starts."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "supervised.py"
    runs = tmp_path / "runs"
    script.write_text(
        "import os, sys, time\n"
        "from core import tasks\n"
        "def run():\n"
        f"    open({str(runs)!r}, 'a').write('run\\n')\n"
        "    time.sleep(60)\n"
        "sys.exit(tasks.supervise(run))\n"
    )
    from tests.reliability.live import ROOT

    process = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 20
    while not (runs.exists() and runs.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) != 0  # the worker was terminated, so was the supervision
    assert runs.read_text().split() == ["run"]
