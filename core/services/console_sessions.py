"""Server-side console sessions (DESIGN §7): start, resume, end, list; authentication events.

- A session is a ``console_sessions`` row. The browser's cookie holds a random 256-bit token
  (Flask-Login's ``_user_id`` carries it, the "alternative token" pattern); the row holds only
  its SHA-256, so nothing in the database opens a session.
- ``resume_session`` is the one check of every console request: the row must exist, have been
  seen within ``SESSION_IDLE_MINUTES`` and have started within ``SESSION_MAX_HOURS``. It
  records ``last_seen_at`` at most once a minute (``TOUCH_RESOLUTION``), so most requests
  only read. An expired row is deleted when it is found.
- Ending a session deletes its row; sign-out ends one, a password change or "sign out
  everywhere else" end every other one of the user, removing the account ends them all.
- Every authentication event lands in the user's tenant's audit log (actions ``user.*``).
  Support staff belong to no tenant, so theirs go to the platform log
  (``core.services.platform_log``: a table, and a line of the ``channels.auth`` logger).
  Events: ``user.signed_in``, ``user.sign_in_failed`` (``reason``: ``wrong_password``),
  ``user.sign_in_locked`` (the account's sign-in limit was reached; once per limit window),
  ``user.signed_out``, ``user.session_expired`` (``reason``: ``idle`` or ``max_lifetime``; when
  the expired session is presented again, or purged at anyone's sign-in, whichever comes first),
  ``user.session_revoked``, ``user.sessions_revoked``, ``user.password_changed``. A failed
  sign-in with an unknown email names no account: it is only logged (``channels.auth``), and the
  rate limits count it. Never a password, nor a session token.

The check is one read in the request's own transaction. The touch and the deletion of an
expired row (at most once a minute per session) are short transactions on a connection of their
own, committed at once, so that they are neither lost with a request that does not commit nor
held up by one; the request's transaction (holding only that read) is ended before them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, or_, select, update

from core.db_types import utcnow
from core.errors import NotFound
from core.extensions import db
from core.models import ConsoleSession, User
from core.services import audit, platform_log
from core.services.audit import Actor
from core.services.platform_log import auth_log

# last_seen_at is written at most this often per session, so reads stay reads.
TOUCH_RESOLUTION = timedelta(minutes=1)
USER_AGENT_MAX = 512


def hash_token(token: str) -> str:
    """The stored form of a session token (256-bit random: a fast hash is enough)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def idle_timeout() -> timedelta:
    """How long a session may go unused (SESSION_IDLE_MINUTES)."""
    return timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])


def max_lifetime() -> timedelta:
    """How long a session may last at all, however busy (SESSION_MAX_HOURS)."""
    return timedelta(hours=current_app.config["SESSION_MAX_HOURS"])


def is_expired(created_at: datetime, last_seen_at: datetime, now: datetime) -> bool:
    """Whether a session that started and was last seen then is past either limit at ``now``."""
    return now - last_seen_at >= idle_timeout() or now - created_at >= max_lifetime()


def _live(now: datetime):
    """The WHERE clause of sessions within both limits."""
    return (ConsoleSession.last_seen_at > now - idle_timeout()) & (
        ConsoleSession.created_at > now - max_lifetime()
    )


def expiry_reason(created_at: datetime, last_seen_at: datetime, now: datetime) -> str:
    """Which limit an expired session passed: ``max_lifetime`` or ``idle``."""
    return "max_lifetime" if now - created_at >= max_lifetime() else "idle"


def record_auth_event(
    user: User, action: str, changes: dict | None = None, actor=None, connection=None
) -> None:
    """An event about a user's account (authentication, creation): the tenant's audit log, or
    the platform log for support staff. ``connection``: written there instead of the request's
    transaction (see ``_write_apart``)."""
    _record_account_event(
        AccountRef(user.id, user.email, user.tenant_id), action, changes, actor, connection
    )


@dataclass(frozen=True)
class AccountRef:
    """What an account's event needs of it, read while the ORM object is at hand."""

    id: str
    email: str
    tenant_id: str | None


def _record_account_event(
    account: AccountRef, action: str, changes: dict | None, actor, connection
) -> None:
    actor = actor or Actor("user", account.id, account.email)
    if account.tenant_id:
        audit.record(account.tenant_id, actor, action, "user", account.id, changes, connection)
    else:
        platform_log.record(
            actor, action, "user", account.id, changes, connection, subject=account.email
        )


def start_session(
    user: User, ip: str | None, user_agent: str | None, method: str = "password"
) -> tuple[ConsoleSession, str]:
    """A new session for ``user`` (audited ``user.signed_in`` with how they proved who they are:
    ``password``, ``password+totp``, ``password+recovery_code``, ``password+passkey``,
    ``passkey``); returns it and its token. The session counts as freshly authenticated
    (``authenticated_at``, for REAUTH_MINUTES), and the user's ``last_login_at`` is now.

    Expired sessions of every user are purged here: sign-ins are rare next to requests, and the
    table then holds only sessions that could still be used (plus those gone stale since).
    """
    now = utcnow()
    _purge_expired(now)
    token = secrets.token_urlsafe(32)
    record = ConsoleSession(
        user_id=user.id,
        token_hash=hash_token(token),
        created_at=now,
        last_seen_at=now,
        ip=ip,
        user_agent=(user_agent or "")[:USER_AGENT_MAX],
        authenticated_at=now,
    )
    user.last_login_at = now
    db.session.add(record)
    db.session.flush()
    record_auth_event(
        user,
        "user.signed_in",
        {
            "session_id": {"before": None, "after": record.id},
            "method": {"before": None, "after": method},
        },
    )
    return record, token


def _purge_expired(now: datetime) -> None:
    """Delete every expired session, each audited ``user.session_expired`` (its user's log)."""
    expired = db.session.execute(
        select(User, ConsoleSession.id, ConsoleSession.created_at, ConsoleSession.last_seen_at)
        .join(ConsoleSession, ConsoleSession.user_id == User.id)
        .where(
            or_(
                ConsoleSession.last_seen_at <= now - idle_timeout(),
                ConsoleSession.created_at <= now - max_lifetime(),
            )
        )
    ).all()
    if not expired:
        return
    db.session.execute(
        delete(ConsoleSession).where(ConsoleSession.id.in_([row[1] for row in expired]))
    )
    for user, session_id, created_at, last_seen_at in expired:
        record_auth_event(
            user,
            "user.session_expired",
            _expired_changes(session_id, expiry_reason(created_at, last_seen_at, now)),
            actor=Actor.system("session"),
        )


def _expired_changes(session_id: str, reason: str) -> dict:
    return {"session_id": {"before": session_id, "after": None}, "reason": reason}


def find_user_by_email(email: str | None) -> User | None:
    """The account of a typed email address (normalised as sign-in does), or None."""
    address = (email or "").strip().lower()
    return db.session.scalar(select(User).where(User.email == address)) if address else None


def record_failed_sign_in(email: str | None, reason: str = "wrong_password") -> None:
    """A failed sign-in against an existing account is audited with its reason class, never
    what was typed as the password. Unknown emails name no account (nor tenant): the app log
    only, and the rate limits count them."""
    user = find_user_by_email(email)
    if user is not None:
        record_auth_event(
            user, "user.sign_in_failed", {"reason": reason}, actor=Actor.system("sign-in")
        )
    else:
        auth_log.info("user.sign_in_failed reason=unknown_account")


def record_sign_in_lockout(email: str | None, limit: str) -> None:
    """The account's sign-in limit was reached (``limit``, e.g. "100 per 1 hour"): further
    attempts are refused until the window moves on. Audited ``user.sign_in_locked`` for an
    existing account (the caller records it once per window)."""
    user = find_user_by_email(email)
    if user is not None:
        record_auth_event(
            user,
            "user.sign_in_locked",
            {"reason": "rate_limited", "limit": limit},
            actor=Actor.system("sign-in"),
        )
    else:
        auth_log.info("user.sign_in_locked reason=unknown_account limit=%s", limit)


@dataclass(frozen=True)
class ResumedSession:
    """The outcome of a request's session check: the user and session, or why there is none."""

    user: User | None = None
    session_id: str | None = None
    expired: bool = False


_sessions = ConsoleSession.__table__


def resume_session(token: str | None) -> ResumedSession:
    """The live session of this token and its user (touched at most once a minute), or an
    empty result: unknown or ended token, or expired (the row is then deleted)."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return ResumedSession()
    row = db.session.execute(
        select(User, ConsoleSession.id, ConsoleSession.created_at, ConsoleSession.last_seen_at)
        .join(ConsoleSession, ConsoleSession.user_id == User.id)
        .where(ConsoleSession.token_hash == hash_token(token))
    ).first()
    if row is None:
        return ResumedSession()
    user, session_id, created_at, last_seen_at = row
    now = utcnow()
    if is_expired(created_at, last_seen_at, now):
        reason = expiry_reason(created_at, last_seen_at, now)
        account = AccountRef(user.id, user.email, user.tenant_id)  # before the rollback
        _write_apart(
            delete(_sessions).where(_sessions.c.id == session_id),
            # Audited only by whoever deleted the row (a purge may have been first).
            lambda connection: _record_account_event(
                account,
                "user.session_expired",
                _expired_changes(session_id, reason),
                Actor.system("session"),
                connection,
            ),
        )
        return ResumedSession(expired=True)
    if now - last_seen_at >= TOUCH_RESOLUTION:
        _write_apart(
            update(_sessions)
            .where(_sessions.c.id == session_id, _sessions.c.last_seen_at < now)
            .values(last_seen_at=now)
        )
    return ResumedSession(user, session_id)


def _write_apart(statement, then=None) -> None:
    """Run one write on a connection of its own and commit it now (see the module docstring);
    ``then(connection)``, when given, writes more in the same transaction if the statement
    changed a row.

    The request's transaction holds nothing yet but the session's read, and is ended first: on
    SQLite a write request holds the write lock from its first statement, which the write here
    would wait for in vain.
    """
    db.session.rollback()
    with db.engine.begin() as connection:
        result = connection.execute(statement)
        if then is not None and result.rowcount:
            then(connection)


def list_sessions(user_id: str) -> list[ConsoleSession]:
    """The user's live sessions, most recently seen first."""
    return list(
        db.session.scalars(
            select(ConsoleSession)
            .where(ConsoleSession.user_id == user_id, _live(utcnow()))
            .order_by(ConsoleSession.last_seen_at.desc(), ConsoleSession.created_at.desc())
        )
    )


def count_other_sessions(user_id: str, keep_id: str | None) -> int:
    """How many live sessions the user has besides ``keep_id``."""
    query = select(func.count()).select_from(ConsoleSession)
    query = query.where(ConsoleSession.user_id == user_id, _live(utcnow()))
    if keep_id:
        query = query.where(ConsoleSession.id != keep_id)
    return db.session.scalar(query)


def end_session(user: User, session_id: str | None) -> None:
    """Sign-out: the session's row goes (audited ``user.signed_out``)."""
    if session_id:
        db.session.execute(
            delete(ConsoleSession).where(
                ConsoleSession.id == session_id, ConsoleSession.user_id == user.id
            )
        )
    record_auth_event(
        user, "user.signed_out", {"session_id": {"before": session_id, "after": None}}
    )


def revoke_session(user: User, session_id: str, current_id: str | None) -> ConsoleSession:
    """End one of the user's other sessions (audited ``user.session_revoked``); NotFound for
    an unknown id, another user's session, or the current one (that is signing out)."""
    record = None
    if session_id and len(session_id) <= 36 and session_id != current_id:
        record = db.session.scalar(
            select(ConsoleSession).where(
                ConsoleSession.id == session_id, ConsoleSession.user_id == user.id
            )
        )
    if record is None:
        raise NotFound("Session not found: it may have ended already.")
    db.session.delete(record)
    db.session.flush()
    record_auth_event(
        user, "user.session_revoked", {"session_id": {"before": record.id, "after": None}}
    )
    return record


def end_other_sessions(user_id: str, keep_id: str | None) -> int:
    """Delete every session of the user but ``keep_id`` (all of them when None); how many live
    ones ended. The caller audits (password change, sign out everywhere else, removal)."""
    ended = count_other_sessions(user_id, keep_id)
    statement = delete(ConsoleSession).where(ConsoleSession.user_id == user_id)
    if keep_id:
        statement = statement.where(ConsoleSession.id != keep_id)
    db.session.execute(statement)
    return ended


def revoke_other_sessions(user: User, keep_id: str | None) -> int:
    """ "Sign out everywhere else": every other session ends (audited ``user.sessions_revoked``
    with how many there were)."""
    ended = end_other_sessions(user.id, keep_id)
    record_auth_event(
        user, "user.sessions_revoked", {"other_sessions": {"before": ended, "after": 0}}
    )
    return ended


# --- how a session is shown -----------------------------------------------------------------

_BROWSERS = (  # order matters: Edge and Opera also say "Chrome", Chrome also says "Safari"
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"(?:OPR|Opera)/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/")),
)
_SYSTEMS = (
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Android", re.compile(r"Android")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Macintosh|Mac OS X")),
    ("Linux", re.compile(r"Linux|X11")),
)


def describe_user_agent(user_agent: str | None) -> str:
    """A person's name for a browser: "Firefox 133 on Windows"; "Unknown browser" otherwise.

    Only the common browsers are named: the label helps someone recognise their own devices,
    it is not an inventory (the full User-Agent is kept on the row).
    """
    text = user_agent or ""
    browser = next(
        (
            f"{name} {match.group(1)}"
            for name, pattern in _BROWSERS
            if (match := pattern.search(text))
        ),
        None,
    )
    system = next((name for name, pattern in _SYSTEMS if pattern.search(text)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"A browser on {system}" if system else "Unknown browser")
