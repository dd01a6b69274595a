"""The task engine: Celery, created from the Flask app (the Flask documentation's pattern).

``init_tasks(app)`` makes the Celery app from the Flask app's settings; every task runs inside
an application context (``FlaskTask``). Work reaches it two ways:

- **With ``BROKER_URL``** (production): ``flask --app app worker`` processes (any number, on any
  machines) take tasks from the broker, and exactly one ``flask --app app scheduler`` (Celery
  beat) sends the periodic jobs: the outbox dispatcher every ``OUTBOX_POLL_SECONDS`` and the
  sweeper, and the re-check tick every ``RECHECK_TICK_SECONDS`` (DESIGN §9: due domains and
  integrations claimed in batches, one task per batch, ``core.services.rechecks``). A change's
  new deliveries are also published right after its commit (``hand_over``).
- **Without it** (the embedded default, development only): the development server runs an
  ``EmbeddedEngine`` in its own process — one scheduler thread running the same dispatcher,
  sweeper and re-check tick, and a few worker threads running the same tasks (``Task.apply``:
  Celery's own local execution, in an application context). Nothing is queued anywhere but in
  the outbox table (and the re-checks' schedule columns), so a restart loses nothing either.
  It starts with the first request the process serves (so the
  reloader's watching parent never runs one) and only when ``CHANNELS_ENV=development``; tests
  and CLI commands do not start it.

The outbox is the only queue of our own: a lost message (broker restart, killed worker) is
found again in the database by the sweeper.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from celery import Celery, Task, shared_task
from celery.signals import celeryd_init, worker_process_init
from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.database import writing
from core.events import ENDPOINTS_KEY, PENDING_KEY
from core.extensions import db
from core.metrics import TASK_FAILURES, register_outbox_probe

log = logging.getLogger("channels.tasks")

DELIVER = "channels.deliver_webhook"
DISPATCH = "channels.dispatch_outbox"
SWEEP = "channels.sweep_outbox"
IMPORT = "channels.run_import"
RECHECK_TICK = "channels.schedule_rechecks"
CHECK_DOMAINS = "channels.check_domains"
CHECK_INTEGRATIONS = "channels.check_integrations"
EMBEDDED_WORKERS = 4
SWEEP_EVERY_MAX = 60.0  # seconds between sweeps at most


def init_tasks(app: Flask) -> Celery:
    """Create the app's Celery app (``app.extensions["celery"]``) and the commit hook."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            try:
                with app.app_context(), writing():
                    return self.run(*args, **kwargs)
            except Exception:
                # channels_task_failures{task}: on a worker and in the embedded engine alike.
                TASK_FAILURES.labels(self.name).inc()
                raise

    broker = app.config["BROKER_URL"]
    poll = app.config["OUTBOX_POLL_SECONDS"]
    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=broker or "memory://",
        task_default_queue=app.config["TASK_QUEUE"],
        task_ignore_result=True,
        result_backend=None,
        # A task message is removed only once the task ran; a worker lost mid-task gives it back.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={"socket_connect_timeout": 3},
        beat_scheduler="celery.beat:Scheduler",  # in memory: the jobs are short intervals
        beat_schedule={
            "dispatch-outbox": {"task": DISPATCH, "schedule": poll},
            "sweep-outbox": {"task": SWEEP, "schedule": sweep_interval(app)},
            "schedule-rechecks": {
                "task": RECHECK_TICK,
                "schedule": app.config["RECHECK_TICK_SECONDS"],
            },
        },
        task_always_eager=False,
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    _APPS[:] = [app]
    from core.delivery import outbox_state

    register_outbox_probe(outbox_state)  # channels_outbox_depth / _oldest_age_seconds
    return celery_app


def sweep_interval(app: Flask) -> float:
    """How often the sweeper runs: often enough for OUTBOX_SWEEP_SECONDS, at most a minute."""
    return min(
        SWEEP_EVERY_MAX,
        max(app.config["OUTBOX_POLL_SECONDS"], app.config["OUTBOX_SWEEP_SECONDS"] / 3),
    )


_APPS: list[Flask] = []  # the app of this process's Celery app (a worker has one)


@worker_process_init.connect
def _fresh_connections(**_kwargs) -> None:
    """A forked worker child must not share its parent's database connections."""
    for flask_app in _APPS[-1:]:
        with flask_app.app_context():
            db.engine.dispose(close=False)


# --- the tasks --------------------------------------------------------------------------------


@shared_task(name=DELIVER, ignore_result=True)
def deliver_webhook(delivery_id: str) -> str:
    """One attempt of one delivery (``core.delivery.deliver``)."""
    from core.delivery import deliver

    return deliver(delivery_id)


@shared_task(name=DISPATCH, ignore_result=True)
def dispatch_outbox() -> int:
    """The dispatcher: hand due deliveries to the workers."""
    from core.delivery import due_deliveries

    ids = due_deliveries()
    hand_over(ids, force=True)
    return len(ids)


@shared_task(name=SWEEP, ignore_result=True)
def sweep_outbox() -> int:
    """The sweeper: hand over again what was handed over long ago and never finished: webhook
    deliveries, and console imports not started or not renewed within their lease."""
    from core.delivery import stale_deliveries
    from core.services.imports import stale_jobs

    ids = stale_deliveries()
    if ids:
        log.warning("outbox sweeper: %d deliveries handed over again", len(ids))
    hand_over(ids, force=True)
    jobs = stale_jobs()
    if jobs:
        log.warning("outbox sweeper: %d imports handed over again", len(jobs))
    for job_id in jobs:
        start_import(job_id)
    return len(ids) + len(jobs)


@shared_task(name=IMPORT, ignore_result=True)
def run_import(job_id: str) -> str:
    """A console CSV import, chunk by chunk (``core.services.imports.run_job``)."""
    from core.services.imports import run_job

    return run_job(job_id)


def start_import(job_id: str) -> bool:
    """Hand a queued import (committed) to the engine: the embedded one in this process, else
    the broker. False when neither runs here (tests, a CLI): the job stays queued."""
    app = current_app._get_current_object()
    engine = app.extensions.get("embedded_engine")
    if engine is not None:
        engine.run_task(run_import, job_id)
        return True
    if not app.config["BROKER_URL"]:
        return False
    try:
        run_import.apply_async(args=[job_id], retry=False)
    except Exception as exc:  # noqa: BLE001 - the job stays queued; the page says so
        log.warning("broker unavailable, import %s stays queued: %s", job_id, exc)
        return False
    return True


@shared_task(name=RECHECK_TICK, ignore_result=True)
def schedule_rechecks() -> int:
    """The re-check tick: claim the due domains and integrations in batches, hand each batch to
    the workers; returns how many batches."""
    from core.models import EmailDomain, Integration
    from core.services.rechecks import MAX_BATCHES_PER_TICK, claim_due

    handed = 0
    for model, task in ((EmailDomain, check_domains), (Integration, check_integrations)):
        for batch in claim_due(model, max_batches=MAX_BATCHES_PER_TICK):
            run_check(task, batch.token)
            handed += 1
    return handed


@shared_task(name=CHECK_DOMAINS, ignore_result=True)
def check_domains(token: str) -> int:
    """Check one claimed batch of domains (``core.services.rechecks``)."""
    from core.services.rechecks import check_domain_batch

    return len(check_domain_batch(token))


@shared_task(name=CHECK_INTEGRATIONS, ignore_result=True)
def check_integrations(token: str) -> int:
    """Check one claimed batch of integrations with their providers."""
    from core.services.rechecks import check_integration_batch

    return len(check_integration_batch(token))


def run_check(task, token: str) -> None:
    """A batch to the engine: the embedded one's threads, else the broker; with neither (a
    test, a one-off call) it runs here and now. A failed publish leaves the batch leased: its
    rows are due again when the lease runs out."""
    app = current_app._get_current_object()
    engine = app.extensions.get("embedded_engine")
    if engine is not None:
        engine.run_task(task, token)
    elif app.config["BROKER_URL"]:
        try:
            task.apply_async(args=[token], retry=False)
        except Exception as exc:  # noqa: BLE001 - the lease brings the rows back
            log.warning("broker unavailable, re-check batch %s left to its lease: %s", token, exc)
    else:
        task.apply(args=[token], throw=True)


# After a failed publish, this process leaves deliveries to the dispatcher for this long
# instead of trying the broker again at every request: a dead broker costs one request one
# connection attempt, not every request its timeout. (Per process on purpose: nothing another
# process needs; the outbox rows are the shared truth.)
BROKER_BACKOFF_SECONDS = 30.0
_broker_down_until = 0.0


def hand_over(delivery_ids: list[str], force: bool = False) -> None:
    """Give deliveries to the engine: the embedded one in this process, else the broker.

    A failure to publish is logged, never raised: the rows stay in the outbox and the
    dispatcher hands them over again. After a failure, this process does not try the broker
    again for ``BROKER_BACKOFF_SECONDS``, but for the dispatcher's and the sweeper's runs
    (``force``), which keep trying.
    """
    global _broker_down_until
    if not delivery_ids:
        return
    app = current_app._get_current_object()
    engine = app.extensions.get("embedded_engine")
    if engine is not None:
        engine.submit(delivery_ids)
        return
    if not app.config["BROKER_URL"]:
        return  # no engine in this process: the dispatcher of the one that runs takes them
    if not force and time.monotonic() < _broker_down_until:
        return  # the broker failed a moment ago: the dispatcher hands these over
    for delivery_id in delivery_ids:
        try:
            deliver_webhook.apply_async(args=[delivery_id], retry=False)
        except Exception as exc:  # noqa: BLE001 - any broker failure; the outbox keeps the row
            _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
            log.warning(
                "broker unavailable, delivery %s left to the dispatcher (no publish from this "
                "process for %g s): %s",
                delivery_id,
                BROKER_BACKOFF_SECONDS,
                exc,
            )
            return


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """The deliveries the transaction wrote go to the engine once they are committed."""
    session.info.pop(ENDPOINTS_KEY, None)
    ids = session.info.pop(PENDING_KEY, None)
    if ids:
        try:
            hand_over(ids)
        except RuntimeError:  # no application context (a session used outside the app)
            pass


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    """A rolled-back transaction's deliveries never existed."""
    session.info.pop(ENDPOINTS_KEY, None)
    session.info.pop(PENDING_KEY, None)


# --- the embedded engine (development without a broker) ---------------------------------------


class EmbeddedEngine:
    """A scheduler thread and worker threads inside the development server's process."""

    def __init__(self, app: Flask, workers: int = EMBEDDED_WORKERS):
        self.app = app
        self.poll = app.config["OUTBOX_POLL_SECONDS"]
        self.sweep_every = sweep_interval(app)
        self.recheck_every = app.config["RECHECK_TICK_SECONDS"]
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedded-worker")
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="embedded-scheduler", daemon=True)

    def start(self) -> EmbeddedEngine:
        self.app.extensions["embedded_engine"] = self
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop scheduling and wait for the attempts under way."""
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=True)
        self.app.extensions.pop("embedded_engine", None)

    def submit(self, delivery_ids: list[str]) -> None:
        """Run the delivery task for each id on a worker thread."""
        for delivery_id in delivery_ids:
            if self.stopping.is_set():
                return
            self.pool.submit(self._deliver, delivery_id)

    def run_task(self, task, *args) -> None:
        """Run a task on a worker thread (a re-check batch, a console import)."""
        if not self.stopping.is_set():
            self.pool.submit(self._run_task, task, args)

    def _run_task(self, task, args) -> None:
        try:
            task.apply(args=list(args), throw=True)
        except Exception:  # noqa: BLE001 - logged; the rows are due again after their lease
            log.exception("embedded worker: %s failed", task.name)

    def _deliver(self, delivery_id: str) -> None:
        try:
            deliver_webhook.apply(args=[delivery_id], throw=True)
        except Exception:  # noqa: BLE001 - logged; the sweeper and dispatcher try again
            log.exception("embedded worker: delivery %s failed", delivery_id)

    def _run(self) -> None:
        """Dispatch every OUTBOX_POLL_SECONDS, sweep every sweep interval, tick the re-checks
        every RECHECK_TICK_SECONDS (each on the clock, whatever the others take)."""
        next_run = {dispatch_outbox: 0.0, sweep_outbox: 0.0, schedule_rechecks: 0.0}
        every = {
            dispatch_outbox: self.poll,
            sweep_outbox: self.sweep_every,
            schedule_rechecks: self.recheck_every,
        }
        while not self.stopping.is_set():
            for task, due_at in next_run.items():
                if time.monotonic() < due_at:
                    continue
                next_run[task] = time.monotonic() + every[task]
                try:
                    task.apply(throw=True)
                except Exception:  # noqa: BLE001 - a database hiccup must not end the loop
                    log.exception("embedded scheduler: %s failed", task.name)
            wait = max(0.0, min(next_run.values()) - time.monotonic())
            self.wake.wait(wait)
            self.wake.clear()


_embedded_lock = threading.Lock()


def embedded_wanted(app: Flask) -> bool:
    """The embedded engine runs in the development server when no broker is configured."""
    return app.config["ENV"] == "development" and not app.config["BROKER_URL"] and not app.testing


def start_embedded_once(app: Flask) -> None:
    """Start this process's embedded engine (first request served; idempotent)."""
    if "embedded_engine" in app.extensions:
        return
    with _embedded_lock:
        if "embedded_engine" not in app.extensions:
            EmbeddedEngine(app).start()
            log.info("embedded task engine started (no BROKER_URL): this process delivers webhooks")


def register_embedded(app: Flask) -> None:
    """In development without a broker, the serving process starts the embedded engine."""
    if not embedded_wanted(app):
        return

    @app.before_request
    def _start_engine():
        start_embedded_once(app)


# --- the worker's supervisor -------------------------------------------------------------------

WORKER_RESTART_DELAY = 1.0
# A worker that hit an unrecoverable error has this long to stop cleanly; then it is ended, and
# replaced. Its unacknowledged messages go back to the broker (task_acks_late); the outbox keeps
# every delivery anyway.
WORKER_STOP_GRACE = 15.0


class _EndOnUnrecoverable(logging.Handler):
    """In the worker's process: Celery logs "Unrecoverable error" and starts a warm stop, which
    can block for good on a broker that just went away (the consumer's close and the restore
    of unacknowledged messages retry a connection that is not there). A timer ends the process
    after WORKER_STOP_GRACE, so that ``supervise`` always gets to start a new worker."""

    def __init__(self, grace: float):
        super().__init__(logging.CRITICAL)
        self.grace = grace
        self.timer: threading.Timer | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.timer is None and "Unrecoverable error" in record.getMessage():
            self.timer = threading.Timer(self.grace, os._exit, (1,))
            self.timer.daemon = True
            self.timer.start()


def _watched(run: Callable[[], object], grace: float) -> Callable[[], None]:
    """The child process's body: ``run`` with the stop watchdog, ending the process with the
    worker's own exit code.

    ``Celery.worker_main`` returns nothing: it drops the exit code of the worker it ran (a
    worker that stopped after an unrecoverable error has ``exitcode`` 1), so the process would
    end with 0 and ``supervise`` would take it for a stop it was asked for and not replace it.
    The code is read from the worker itself, which Celery's ``celeryd_init`` signal hands over
    (a ``run`` that returns an int gives its code directly)."""

    def child() -> None:
        logging.getLogger("celery.worker.worker").addHandler(_EndOnUnrecoverable(grace))
        workers: list = []

        def remember(sender=None, instance=None, **_kwargs) -> None:
            workers.append(instance)

        celeryd_init.connect(remember, weak=False)
        result = run()
        code = result if isinstance(result, int) else None
        if code is None and workers:
            code = getattr(workers[-1], "exitcode", None)
        sys.exit(code or 0)

    return child


def supervise(run: Callable[[], object]) -> int:
    """Run the Celery worker (``run``) in a child process and start a new one whenever it dies
    without being asked to stop; returns the last exit code.

    Why: kombu's Redis transport can kill a worker with "Unrecoverable error: AttributeError
    ('NoneType' object has no attribute 'hostname')" when a late ack meets a lost broker
    connection (celery#4652, kombu#582), so a Redis restart could leave a machine without a
    worker. The outbox keeps every delivery meanwhile; the new worker takes them.

    The child shares the process group, so a terminal's Ctrl-C, ``kill -TERM -PGID`` or
    systemd's control-group kill reach it directly; a SIGTERM sent to this process alone (a
    container's stop) is passed on. Either way this process then only waits for the child.
    """
    state: dict = {"stopping": False, "child": None}

    def stop(signum, _frame) -> None:
        state["stopping"] = True
        child = state["child"]
        if signum == signal.SIGTERM and child is not None and child.is_alive():
            try:
                os.kill(child.pid, signal.SIGTERM)  # a second SIGTERM is harmless to Celery
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, stop)
    while True:
        child = multiprocessing.get_context("fork").Process(
            target=_watched(run, WORKER_STOP_GRACE), name="celery-worker"
        )
        state["child"] = child
        child.start()
        child.join()
        code = child.exitcode if child.exitcode is not None else 1
        if state["stopping"] or code == 0:
            return code
        log.error("the worker exited (%s); starting a new one", code)
        time.sleep(WORKER_RESTART_DELAY)
