"""Step-up ("sudo mode", DESIGN §7): sensitive actions need a recent authentication.

- A console session remembers when its user last proved who they are
  (``console_sessions.authenticated_at``): at sign-in, and at every confirmation with the
  password or a factor. Sensitive actions need it within ``REAUTH_MINUTES``.
- When it is older, the action is not lost: its posted form is kept **server-side, in the
  session's own row**, Fernet-encrypted with ``CREDENTIALS_KEY`` (it may hold an
  integration's new credentials or a new admin's initial password), for at most
  ``PENDING_ACTION_TTL``. Only one action waits per session (a newer one replaces it). After the
  confirmation the action is taken out of the row (so it runs at most once) and runs with that
  form; nothing of it is kept after. Signing out deletes the row and the action with it.
- Confirmations are audited: ``user.step_up`` (with the method) and ``user.step_up_failed``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from core.crypto import seal, unseal
from core.db_types import utcnow
from core.extensions import db
from core.models import ConsoleSession, User
from core.services import console_sessions

PENDING_ACTION_TTL = timedelta(minutes=15)


def reauth_window() -> timedelta:
    """How recent an authentication a sensitive action needs (REAUTH_MINUTES)."""
    return timedelta(minutes=current_app.config["REAUTH_MINUTES"])


def last_authenticated(session_id: str | None) -> datetime | None:
    """When the session's user last proved who they are (sign-in or confirmation)."""
    if not session_id:
        return None
    row = db.session.execute(
        select(ConsoleSession.authenticated_at, ConsoleSession.created_at).where(
            ConsoleSession.id == session_id
        )
    ).first()
    if row is None:
        return None
    return row.authenticated_at or row.created_at


def is_recent(session_id: str | None) -> bool:
    """Whether the session authenticated within REAUTH_MINUTES."""
    at = last_authenticated(session_id)
    return at is not None and utcnow() - at < reauth_window()


def confirmed(user: User, session_id: str, method: str) -> None:
    """The user confirmed who they are (``password``, ``totp``, ``recovery_code``,
    ``passkey``): the session counts as freshly authenticated; audited ``user.step_up``."""
    db.session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id)
        .values(authenticated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    console_sessions.record_auth_event(
        user, "user.step_up", {"method": {"before": None, "after": method}}
    )


def refused(user: User, method: str) -> None:
    """A confirmation failed (audited ``user.step_up_failed``)."""
    console_sessions.record_auth_event(
        user, "user.step_up_failed", {"method": {"before": None, "after": method}}
    )


@dataclass(frozen=True)
class PendingAction:
    """A sensitive request waiting for the confirmation: where it went and what it posted."""

    id: str
    path: str
    form: list[tuple[str, str]]
    label: str
    back: str
    created: float

    @property
    def expired(self) -> bool:
        return utcnow().timestamp() - self.created > PENDING_ACTION_TTL.total_seconds()


def keep_pending(
    session_id: str, path: str, form: list[tuple[str, str]], label: str, back: str
) -> PendingAction:
    """Keep a sensitive request (encrypted, in the session's row) until the user confirms."""
    action = PendingAction(
        secrets.token_urlsafe(16), path, list(form), label, back, utcnow().timestamp()
    )
    db.session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id)
        .values(
            pending_action=seal(
                {
                    "id": action.id,
                    "path": path,
                    "form": action.form,
                    "label": label,
                    "back": back,
                    "created": action.created,
                }
            )
        )
        .execution_options(synchronize_session=False)
    )
    return action


def pending(session_id: str | None) -> PendingAction | None:
    """The session's waiting action, if any and not expired."""
    if not session_id:
        return None
    token = db.session.scalar(
        select(ConsoleSession.pending_action).where(ConsoleSession.id == session_id)
    )
    if not token:
        return None
    try:
        data = unseal(token)
        action = PendingAction(
            str(data["id"]),
            str(data["path"]),
            [(str(k), str(v)) for k, v in data["form"]],
            str(data["label"]),
            str(data["back"]),
            float(data["created"]),
        )
    except (RuntimeError, KeyError, TypeError, ValueError):
        return None  # a key rotated away, or an old shape: as if nothing waited
    return None if action.expired else action


def drop_pending(session_id: str | None) -> None:
    """Forget the session's waiting action (it ran, or was cancelled)."""
    if session_id:
        db.session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.id == session_id)
            .values(pending_action=None)
            .execution_options(synchronize_session=False)
        )
