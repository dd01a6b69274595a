"""API keys found without a database round trip, and revoked everywhere at once.

Every API request authenticates its key. Each worker process keeps the keys it has verified
(by the SHA-256 of the whole key, which is all the database stores; never the key) for at most
``TTL_SECONDS``. What makes the cache safe is a **revocation generation**: a counter shared by
every worker, bumped when a key is revoked, and read before every lookup; a worker that sees
it move drops its whole cache, so the next request with the revoked key goes to the database
and is refused, in every worker, at once. Where the counter lives (``API_KEY_CACHE``):

- ``local`` (the default on SQLite): an 8-byte counter in a file shared by memory mapping (next
  to an SQLite database as ``<database>-keys``, else in ``/dev/shm``), read without any round
  trip. Every process of one machine sees a bump at once. Right for SQLite (its writers are on
  one machine anyway) and for a deployment whose every process that serves or revokes keys is
  on one machine.
- ``redis://…`` (``API_KEY_CACHE=redis://host:6379/0``): the counter is a Redis key (under
  ``RATELIMIT_KEY_NAMESPACE``) that the worker does not read per request: a connection of its
  own has ``CLIENT TRACKING`` on for it, Redis pushes a message to that connection when it
  moves, and each request only polls that socket without blocking (no round trip, no
  command; ``RedisGeneration`` says why a bump is then seen by the next request of every
  worker). Every machine sharing the Redis sees a bump at once. For several machines. Needs
  Redis 6 or later (RESP3).
- ``off``: every request looks its key up in the database.

Unset on PostgreSQL, the deployment's own Redis is used when it has one: the Redis of
``RATELIMIT_STORAGE_URI``, else of ``BROKER_URL`` (the production layout sets both, on every
machine, with the same values: the README's "Deploying"), i.e. every app machine and every
process that can revoke a key reads the same counter. That holds only if those values name one
Redis server (a ``localhost`` Redis on each of several machines would not be: set
``API_KEY_CACHE`` explicitly there). With neither a ``redis://`` URL, it is
``off``: ``local`` is never guessed on PostgreSQL, since nothing in the settings proves that all
the app's processes share a machine (a database URL on ``localhost`` may be a per-machine
PgBouncer in front of one shared server).

The bump happens twice: before the revoking transaction commits (if the counter cannot be
bumped, the revocation fails and is rolled back: nothing is revoked that some worker could
keep accepting) and after it (a worker that re-read the key between the first bump and the
commit cached it as still active: the second bump drops that). If a process dies between its
commit and the second bump, a worker may accept the revoked key until its entry expires
(``TTL_SECONDS``): the bound on what can go wrong. If the counter cannot be read (Redis down
or unreachable, or the tracking connection ended: nothing would tell the worker of a bump any
more), the worker drops its cache and looks keys up in the database, the safe direction; it
then leaves the counter alone for ``UNREADABLE_BACKOFF_SECONDS`` (keys keep going to the
database meanwhile), so a Redis that does not answer costs one request its timeout, not every
request. A tracking connection that went silent without ending (a partition) is found by the
``PING`` sent on it every ``CONFIRM_SECONDS``: until then (at most ``CONFIRM_SECONDS`` plus the
1 s socket timeout) such a worker keeps its cache, where one reading the counter per request
would have noticed at its next request.

Only keys that authenticated are cached (unknown keys are what the per-IP auth-failure limit
is for); a worker keeps at most ``MAX_ENTRIES``.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import struct
import tempfile
import threading
import time
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger("channels.api_keys")

TTL_SECONDS = 60.0
MAX_ENTRIES = 10_000
# After the counter could not be read, keys go to the database for this long without asking it
# again (per process: the database is the truth meanwhile, so nothing is shared to agree on).
UNREADABLE_BACKOFF_SECONDS = 5.0
# A Redis tracking connection is PINGed once this long after the last time (RedisGeneration).
CONFIRM_SECONDS = 1.0
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
REVOKED_FLAG = "channels.api_key_revoked"  # Session.info: this transaction revoked a key
COUNTER = struct.Struct("<Q")


class LocalGeneration:
    """A counter in a memory-mapped file: every process of the machine reads the same bytes."""

    def __init__(self, path: str):
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(fd).st_size < COUNTER.size:
                os.ftruncate(fd, COUNTER.size)  # zeros; two processes doing it agree
            self._map = mmap.mmap(fd, COUNTER.size)
        finally:
            os.close(fd)

    def read(self) -> int:
        # A torn read could only give a value that differs from the one cached against, which
        # drops the cache: the safe direction.
        return COUNTER.unpack_from(self._map, 0)[0]

    def bump(self) -> None:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)  # a lock of this call's own
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            COUNTER.pack_into(self._map, 0, (self.read() + 1) % 2**64)
            self._map.flush()
        finally:
            os.close(fd)  # releases the lock


class RedisGeneration:
    """A counter in Redis that the process need not read: Redis says when it changes.

    A connection of the process's own has ``CLIENT TRACKING on BCAST PREFIX <counter key>``
    (RESP3): whenever any client modifies the counter, Redis writes an ``invalidate`` push to
    it. ``read`` returns a number of this process's own, moved by every push: it first looks
    whether anything arrived on that socket (a non-blocking poll: no round trip, no command),
    and counts what did. So the revocation check costs no round trip, and the cache is dropped
    at the first request after a bump, as with a ``GET`` per request. (The number is not the
    Redis counter's value: ``KeyCache`` only compares it with the last one it saw.)

    Broadcasting mode (``BCAST``) and not the default one: Redis pushes on every modification
    without the key having to be read again after each push (no ``GET`` ever) and keeps no
    per-key table whose evictions would push too.

    The bump (``INCR``, on an ordinary connection) is followed by a ``PING``: Redis writes the
    pushes an ``INCR`` causes in the same event-loop pass as its reply (server.c
    ``beforeSleep``: ``trackingBroadcastInvalidationMessages`` queues them just before
    ``handleClientsWithPendingWrites`` writes every client's output), before it reads another
    command, so once the ``PING`` has answered, every tracking worker's push has been written to
    its socket, before the revoking request has even committed, let alone answered. On one
    machine the push is then in the worker's socket; across machines it is on the wire, one
    hop from the worker, while the next request still needs the revoker's response to reach a
    client and that client's request to reach the worker (only a lost packet on the Redis to
    worker path, resent after TCP's retransmission timeout, could make it later). The bumping
    process also moves its own number at once.

    Losing the promise is being unable to read the counter: the socket closed or reset
    (``CLIENT KILL``, a Redis restart, its idle ``timeout``) makes ``read`` raise, so the cache
    is dropped, keys go to the database for ``UNREADABLE_BACKOFF_SECONDS``, and the read after
    that opens a new tracking connection (whose number is a new one too). A connection that
    died without a word (a partition: no FIN, no RST) would never say so: every
    ``CONFIRM_SECONDS`` a read sends a ``PING`` on it, whose timeout (``socket_timeout``)
    then reports the loss. A worker cut off from Redis that way may keep its cache for at most
    ``CONFIRM_SECONDS`` + 1 s, where a ``GET`` per request noticed at its next request.

    Not redis-py's own client-side cache (``protocol=3, cache_config=``): it refuses servers
    older than 7.4 (this project's Redis is 7.0), never caches a missing key (a counter never
    bumped would cost a ``GET`` per request), and a cached read still takes the whole
    ``execute_command`` path. Needs RESP3 (Redis 6 or later): with an older Redis the counter
    is unreadable, i.e. every key goes to the database.
    """

    def __init__(self, url: str, namespace: str):
        import redis
        from redis._parsers import _RESP3Parser

        self.key = f"{namespace}channels:api-key-generation"
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        # The pure-Python RESP3 parser whatever is installed: its push handling is the one
        # tests/test_key_cache.py runs.
        pool = redis.ConnectionPool.from_url(
            url, protocol=3, socket_connect_timeout=1, socket_timeout=1, parser_class=_RESP3Parser
        )
        self._new_connection = lambda: pool.connection_class(**pool.connection_kwargs)
        self._tracking = None  # the connection with CLIENT TRACKING on, once connected
        self._moves = 0  # this process's number: one more per push, connection and own bump
        self._confirm_at = 0.0
        self._lock = threading.Lock()

    def read(self) -> int:
        with self._lock:
            try:
                return self._read()
            except BaseException:
                self._disconnect()  # the next read (after the backoff) starts a new one
                raise

    def _read(self) -> int:
        connection = self._tracking
        if connection is None:
            connection = self._connect()
        # Pushes that came: each is counted by _pushed (raises if the connection ended).
        while connection.can_read(0):
            connection.read_response(push_request=True)
        if time.monotonic() >= self._confirm_at:
            connection.send_command("PING")  # a push before its answer is counted too
            connection.read_response()
            self._confirm_at = time.monotonic() + CONFIRM_SECONDS
        return self._moves

    def _pushed(self, message) -> None:
        self._moves += 1  # called under self._lock, inside read_response

    def _connect(self):
        connection = self._tracking = self._new_connection()
        self._moves += 1
        connection.connect()
        connection._parser.set_invalidation_push_handler(self._pushed)  # as redis-py's cache
        connection.send_command("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", self.key)
        connection.read_response()
        self._confirm_at = time.monotonic() + CONFIRM_SECONDS
        return connection

    def _disconnect(self) -> None:
        connection, self._tracking = self._tracking, None
        if connection is not None:
            connection.disconnect()

    def bump(self) -> None:
        self.client.incr(self.key)
        self.client.ping()  # the fence: every push the INCR caused has been written (above)
        with self._lock:
            self._moves += 1  # this process need not wait for its own push

    def value(self) -> int:
        """The counter itself (one ``GET``): for tests and tools, never on a request."""
        return int(self.client.get(self.key) or 0)


class KeyCache:
    """One process's verified keys, valid while the revocation generation stays the same."""

    def __init__(self, generation: LocalGeneration | RedisGeneration):
        self.generation = generation
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._seen: int | None = None
        self._unreadable_until = 0.0
        self._lock = threading.Lock()

    def _current(self) -> bool:
        """Read the generation; drop everything if it moved. False: it cannot be read (or could
        not a moment ago: ``UNREADABLE_BACKOFF_SECONDS``)."""
        if self._unreadable_until and time.monotonic() < self._unreadable_until:
            return False
        try:
            generation = self.generation.read()
        except Exception:
            log.warning(
                "API key revocation counter unreadable; keys go to the database for %g s",
                UNREADABLE_BACKOFF_SECONDS,
            )
            with self._lock:
                self._entries.clear()
                self._seen = None
                self._unreadable_until = time.monotonic() + UNREADABLE_BACKOFF_SECONDS
            return False
        with self._lock:
            if generation != self._seen:
                self._entries.clear()
                self._seen = generation
        return True

    def get(self, digest: str):
        """The cached key for this digest, or None (not cached, expired, or revoked meanwhile)."""
        if not self._current():
            return None
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            stored_at, key = entry
            if time.monotonic() - stored_at > TTL_SECONDS:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return key

    def put(self, digest: str, key) -> None:
        """Keep a key just read from the database. Stored against the generation ``get`` saw
        before the read: a revocation committed meanwhile has moved it, so the next ``get``
        drops this entry."""
        with self._lock:
            if self._seen is None:
                return
            self._entries[digest] = (time.monotonic(), key)
            self._entries.move_to_end(digest)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def bump(self) -> None:
        self.generation.bump()


_caches: dict[tuple[int, str], KeyCache] = {}
_caches_lock = threading.Lock()


def _location(config) -> str:
    """Where the counter lives for this app: ``off``, a file path, or a redis URL."""
    return _location_of(
        config["API_KEY_CACHE"],
        config["SQLALCHEMY_DATABASE_URI"],
        config.get("RATELIMIT_STORAGE_URI"),
        config.get("BROKER_URL"),
    )


def default_mode(url: str, ratelimit_storage: str | None, broker: str | None) -> str:
    """``API_KEY_CACHE`` when unset: ``local`` on SQLite; on PostgreSQL the deployment's Redis
    (rate-limit storage, else broker) when it has one, else ``off`` (module docstring)."""
    if url.startswith("sqlite"):
        return "local"
    for shared in (ratelimit_storage, broker):
        if shared and shared.startswith(REDIS_SCHEMES):
            return shared
    return "off"


@lru_cache(maxsize=64)
def _location_of(
    mode: str | None, url: str, ratelimit_storage: str | None = None, broker: str | None = None
) -> str:
    """``_location`` for these settings, worked out once (it runs on every API request)."""
    sqlite_file = url.startswith("sqlite") and url.split("///", 1)[-1] not in ("", ":memory:")
    if mode is None:
        mode = default_mode(url, ratelimit_storage, broker)
    if mode == "off":
        return "off"
    if mode == "local":
        if sqlite_file:
            return os.path.abspath(url.split("///", 1)[1]) + "-keys"
        if url.startswith("sqlite"):  # an in-memory database: one process anyway
            directory = tempfile.gettempdir()
        else:
            directory = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
        name = hashlib.sha256(url.encode()).hexdigest()[:16]
        return os.path.join(directory, f"channels-keys-{name}")
    return mode  # a redis:// URL (checked by core.settings)


def key_cache() -> KeyCache | None:
    """This process's cache for the current app's configuration (None when off)."""
    config = current_app.config
    location = _location(config)
    if location == "off":
        return None
    # A forked worker builds its own; so does an app with another namespace, whose Redis
    # counter is another key (two apps of one process sharing a Redis must not share a cache).
    namespace = config["RATELIMIT_KEY_NAMESPACE"] if location.startswith(REDIS_SCHEMES) else ""
    cache_key = (os.getpid(), location, namespace)
    cache = _caches.get(cache_key)
    if cache is None:
        with _caches_lock:
            cache = _caches.get(cache_key)
            if cache is None:
                if location.startswith(REDIS_SCHEMES):
                    generation = RedisGeneration(location, config["RATELIMIT_KEY_NAMESPACE"])
                else:
                    generation = LocalGeneration(location)
                cache = _caches[cache_key] = KeyCache(generation)
    return cache


def revoked_in(session: Session) -> None:
    """Note that this transaction revokes a key: the generation moves before and after commit."""
    session.info[REVOKED_FLAG] = True


class CounterUnavailable(Exception):
    """The revocation counter could not be bumped: the revocation is rolled back (503)."""


@event.listens_for(Session, "before_commit")
def _bump_before_commit(session: Session) -> None:
    if session.info.get(REVOKED_FLAG):
        cache = key_cache()
        if cache is not None:
            try:
                cache.bump()
            except Exception as exc:  # raising here keeps the revocation from committing
                raise CounterUnavailable(
                    f"API key revocation counter not bumped: {exc.__class__.__name__}"
                ) from exc


@event.listens_for(Session, "after_commit")
def _bump_after_commit(session: Session) -> None:
    if session.info.pop(REVOKED_FLAG, None):
        cache = key_cache()
        if cache is not None:
            try:
                cache.bump()
            except Exception:
                log.exception("API key revocation counter not bumped after commit")


@event.listens_for(Session, "after_soft_rollback")
def _forget_revocation(session: Session, previous_transaction) -> None:
    session.info.pop(REVOKED_FLAG, None)
