"""gunicorn hooks for Prometheus multi-process mode: ``gunicorn -c python:core.gunicorn_hooks``.

Harmless without ``PROMETHEUS_MULTIPROC_DIR``. With it (see ``core.metrics``):

- ``on_starting`` (the master, before any worker): empties the directory, as prometheus-client
  requires — files left by an earlier run would be added to this run's counters.
- ``child_exit`` (the master, when a worker exits or is killed): marks the worker's files dead
  so that live gauges stop counting it; its counters and histograms stay in the sums, as
  counters must.
"""

from __future__ import annotations

import glob
import os

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server) -> None:
    """Empty the multi-process directory (only prometheus-client's ``*.db`` files)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)


def child_exit(server, worker) -> None:
    """A worker is gone: its live gauges no longer count."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
