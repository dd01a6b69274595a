"""Second factors (DESIGN §7): authenticator apps (TOTP), recovery codes, and who needs MFA.

- **TOTP** (RFC 6238, pyotp: 6 digits, 30 s steps, one step of clock drift either way). The
  seed is Fernet-encrypted at rest (``core.crypto.seal``) and shown only while the enrollment
  is unconfirmed; confirming it with a code makes it active. A code is accepted once: the
  accepted time step is stored (``last_used_step``) by a conditional UPDATE, so a replay within
  the code's window — even two requests racing with the same code — is refused.
- **Recovery codes**: ten single-use codes of 80 random bits (``xxxx-xxxx-xxxx-xxxx``), made
  when the first factor is enrolled and on request; only their SHA-256 is stored (80 bits make
  a slow hash pointless, as for API keys), and they are shown once. One is spent by a
  conditional UPDATE (single use under concurrency too); spending one is audited.
- **Who needs MFA**: support staff (before they can open a tenant), and every admin of a
  tenant whose ``require_mfa`` policy is on. While MFA is required of a user, their last factor
  cannot be removed (``flask reset-mfa`` is the way out for a lost device).
- Enrolling or removing a factor ends every other session of the user (the asking one stays).

Every change and every verification is audited through
``console_sessions.record_auth_event`` (the tenant's audit log; support staff: the platform's
authentication log). Passkeys live in ``core.services.passkeys``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

import pyotp
import segno
from markupsafe import Markup
from sqlalchemy import delete, func, select, update

from core.crypto import seal, unseal
from core.db_types import utcnow
from core.errors import Conflict, FieldErrors, ValidationFailed
from core.extensions import db
from core.limits import FACTOR_LIMIT_MESSAGE, count_factor_failure, factor_attempts_allowed
from core.models import Passkey, RecoveryCode, Tenant, TotpFactor, User
from core.services import audit, console_sessions
from core.services.audit import Actor

ISSUER = "Channels"
TOTP_INTERVAL = 30
TOTP_DRIFT_STEPS = 1  # a code of the previous or next step is accepted too (clock drift)
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l/1/o/0 to misread
RECOVERY_CODE_LENGTH = 16  # 16 symbols of 32: 80 bits
TOTP_CODE = re.compile(r"^\d{6}$")


class FactorRefused(ValidationFailed):
    """A wrong, replayed or rate-limited code (422 with the message on the code field)."""


# --- who has what -----------------------------------------------------------------------------


@dataclass
class Factors:
    """A user's active factors: the confirmed authenticator app, passkeys, unused codes."""

    totp: TotpFactor | None = None
    passkeys: list[Passkey] = field(default_factory=list)
    recovery_codes_left: int = 0

    @property
    def any(self) -> bool:
        """Whether the user has a second factor (recovery codes alone are not one)."""
        return self.totp is not None or bool(self.passkeys)

    @property
    def count(self) -> int:
        return (1 if self.totp is not None else 0) + len(self.passkeys)


def factors_of(user_id: str) -> Factors:
    """The user's active factors."""
    totp = db.session.get(TotpFactor, user_id)
    passkeys = db.session.scalars(
        select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at, Passkey.id)
    ).all()
    left = db.session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return Factors(
        totp if totp is not None and totp.confirmed_at is not None else None, list(passkeys), left
    )


def has_factor(user_id: str) -> bool:
    """Whether the user has an active second factor (one query)."""
    totp = select(TotpFactor.user_id).where(
        TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)
    )
    passkey = select(Passkey.id).where(Passkey.user_id == user_id)
    return bool(db.session.scalar(select(totp.exists() | passkey.exists())))


def users_with_factor(user_ids: list[str]) -> set[str]:
    """Which of these users have an active second factor (two queries, whatever the count)."""
    if not user_ids:
        return set()
    with_totp = db.session.scalars(
        select(TotpFactor.user_id).where(
            TotpFactor.user_id.in_(user_ids), TotpFactor.confirmed_at.is_not(None)
        )
    )
    with_passkey = db.session.scalars(
        select(Passkey.user_id).where(Passkey.user_id.in_(user_ids)).distinct()
    )
    return set(with_totp) | set(with_passkey)


def mfa_required(user: User) -> bool:
    """Whether this user must have a second factor: support staff always; an admin when their
    tenant's policy says so."""
    if user.is_support:
        return True
    tenant = user.tenant
    return bool(tenant is not None and tenant.require_mfa)


def _actor(user: User) -> Actor:
    return Actor("user", user.id, user.email)


def _factor_changed(user: User, action: str, changes: dict, keep_session_id: str | None) -> int:
    """After enrolling or removing a factor: every other session ends; audited."""
    ended = console_sessions.end_other_sessions(user.id, keep_session_id)
    changes = {**changes, "other_sessions": {"before": ended, "after": 0}}
    console_sessions.record_auth_event(user, action, changes)
    return ended


def refuse_removing_last_factor(user: User, removing: str) -> None:
    """While MFA is required of the user, the last factor stays (Conflict)."""
    factors = factors_of(user.id)
    if factors.count <= 1 and mfa_required(user):
        who = "Support staff" if user.is_support else "Your tenant requires that every admin"
        raise Conflict(
            f"{who} must keep a second factor: add another one before removing this {removing}."
        )


# --- authenticator app (TOTP) -----------------------------------------------------------------


def pending_totp_secret(user_id: str) -> str | None:
    """The seed of the user's unconfirmed authenticator app (None when none is pending)."""
    row = db.session.get(TotpFactor, user_id)
    if row is None or row.confirmed_at is not None:
        return None
    return unseal(row.secret_encrypted)


def begin_totp(user: User) -> str:
    """A new seed for the user's authenticator app, unconfirmed (replacing an unconfirmed one);
    Conflict while an app is already active."""
    row = db.session.get(TotpFactor, user.id)
    if row is not None and row.confirmed_at is not None:
        raise Conflict("An authenticator app is already set up. Remove it to set up another.")
    secret = pyotp.random_base32()  # 32 symbols: 160 bits, as RFC 4226 recommends
    if row is None:
        row = TotpFactor(user_id=user.id, created_at=utcnow())
        db.session.add(row)
    row.secret_encrypted = seal(secret)
    row.last_used_step = None
    row.created_at = utcnow()
    db.session.flush()
    return secret


def provisioning_uri(user: User, secret: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> Markup:
    """The URI as an inline SVG QR code (rendered on the server: no script, no image request)."""
    code = segno.make(uri, error="m")
    svg = code.svg_inline(scale=4, border=2, dark="#000", light="#fff", title="QR code")
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code to scan" ', 1))


def format_secret(secret: str) -> str:
    """The seed in groups of four, to type by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _current_step() -> int:
    return int(utcnow().timestamp()) // TOTP_INTERVAL


def _matching_step(secret: str, code: str, after: int | None) -> int | None:
    """The time step (within the drift) whose code is ``code`` and later than ``after``."""
    totp = pyotp.TOTP(secret, interval=TOTP_INTERVAL)
    now = _current_step()
    for step in range(now - TOTP_DRIFT_STEPS, now + TOTP_DRIFT_STEPS + 1):
        if after is not None and step <= after:
            continue  # that code (or an older one) was used already
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _spend_step(user_id: str, step: int) -> bool:
    """Record ``step`` as used, unless it (or a later one) already is: True when this request
    won (a conditional UPDATE, so two requests with the same code cannot both pass)."""
    result = db.session.execute(
        update(TotpFactor)
        .where(
            TotpFactor.user_id == user_id,
            (TotpFactor.last_used_step.is_(None)) | (TotpFactor.last_used_step < step),
        )
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def confirm_totp(user: User, code: str, keep_session_id: str | None) -> list[str] | None:
    """Activate the pending authenticator app with a current code. Returns the new recovery
    codes when this is the user's first factor (shown once), else None."""
    row = db.session.get(TotpFactor, user.id)
    if row is None or row.confirmed_at is not None:
        raise Conflict("There is no authenticator app waiting to be confirmed: start again.")
    _check_attempts_allowed(user)
    code = _clean_code(code)
    step = _matching_step(unseal(row.secret_encrypted), code, row.last_used_step) if code else None
    if step is None or not _spend_step(user.id, step):
        count_factor_failure(user.id)
        raise FactorRefused(
            "The app was not set up.",
            {"code": ["That code is not right. Check the app's clock and enter the newest code."]},
        )
    first = not has_factor(user.id)
    row.confirmed_at = utcnow()
    db.session.flush()
    _factor_changed(
        user, "user.factor_enrolled", {"factor": {"before": None, "after": "totp"}}, keep_session_id
    )
    return _replace_recovery_codes(user) if first else None


def remove_totp(user: User, keep_session_id: str | None) -> None:
    """Remove the user's authenticator app (refused for the last factor while MFA is required)."""
    row = db.session.get(TotpFactor, user.id)
    if row is None or row.confirmed_at is None:
        raise Conflict("There is no authenticator app to remove.")
    refuse_removing_last_factor(user, "authenticator app")
    db.session.delete(row)
    db.session.flush()
    _drop_recovery_codes_without_factor(user.id)
    _factor_changed(
        user, "user.factor_removed", {"factor": {"before": "totp", "after": None}}, keep_session_id
    )


# --- recovery codes ---------------------------------------------------------------------------


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4))


def _hash_recovery_code(code: str) -> str:
    normalized = re.sub(r"[\s-]", "", code or "").lower()
    return hashlib.sha256(normalized.encode("utf-8", "surrogateescape")).hexdigest()


def _replace_recovery_codes(user: User) -> list[str]:
    """Ten new codes replace every earlier one; returns them (the only time they exist)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    now = utcnow()
    db.session.add_all(
        RecoveryCode(user_id=user.id, code_hash=_hash_recovery_code(code), created_at=now)
        for code in codes
    )
    db.session.flush()
    return codes


def regenerate_recovery_codes(user: User) -> list[str]:
    """New recovery codes for a user with a factor (audited); the old ones stop working."""
    if not has_factor(user.id):
        raise Conflict("Set up an authenticator app or a passkey first: recovery codes back it up.")
    codes = _replace_recovery_codes(user)
    console_sessions.record_auth_event(
        user, "user.recovery_codes_regenerated", {"recovery_codes": {"before": None, "after": 10}}
    )
    return codes


def _drop_recovery_codes_without_factor(user_id: str) -> None:
    """Recovery codes back up a factor: with no factor left, they go too."""
    if not has_factor(user_id):
        db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def _spend_recovery_code(user_id: str, code: str) -> bool:
    """Mark the code used if it is one of the user's unused ones: True when this request won."""
    result = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _hash_recovery_code(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


# --- verification -----------------------------------------------------------------------------


def _clean_code(code: object) -> str:
    """What was typed, without spaces (apps show ``123 456``); bounded."""
    return re.sub(r"\s", "", code)[:64] if isinstance(code, str) else ""


def _check_attempts_allowed(user: User) -> None:
    if not factor_attempts_allowed(user.id):
        console_sessions.record_auth_event(user, "user.mfa_rate_limited")
        raise FactorRefused("Too many wrong codes.", {"code": [FACTOR_LIMIT_MESSAGE]})


def factor_refused(user: User, factor: str, purpose: str, message: str) -> FactorRefused:
    """Count and audit a refused factor; the error to raise (the caller commits the audit row
    and shows the message)."""
    count_factor_failure(user.id)
    console_sessions.record_auth_event(
        user,
        "user.mfa_failed",
        {
            "factor": {"before": None, "after": factor},
            "purpose": {"before": None, "after": purpose},
        },
    )
    return FactorRefused("The code was refused.", {"code": [message]})


def factor_verified(user: User, factor: str, purpose: str) -> None:
    """Audit a factor that passed."""
    console_sessions.record_auth_event(
        user,
        "user.mfa_verified",
        {
            "factor": {"before": None, "after": factor},
            "purpose": {"before": None, "after": purpose},
        },
    )


def verify_code(user: User, code: object, purpose: str) -> str:
    """Check a code typed in place of the second factor: the authenticator app's six digits or
    a recovery code. Returns which factor passed; raises FactorRefused (audited and counted
    against RATELIMIT_MFA; the caller must commit so that the failure's audit row stays)."""
    _check_attempts_allowed(user)
    cleaned = _clean_code(code)
    if not cleaned:
        raise FactorRefused("Enter a code.", {"code": ["Enter the code from your app."]})
    if TOTP_CODE.match(cleaned):
        row = db.session.get(TotpFactor, user.id)
        if row is not None and row.confirmed_at is not None:
            step = _matching_step(unseal(row.secret_encrypted), cleaned, row.last_used_step)
            if step is not None and _spend_step(user.id, step):
                factor_verified(user, "totp", purpose)
                return "totp"
        raise factor_refused(
            user,
            "totp",
            purpose,
            "That code is not right, or was used already. Wait for the next code.",
        )
    if _spend_recovery_code(user.id, cleaned):
        left = db.session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
        console_sessions.record_auth_event(
            user,
            "user.recovery_code_used",
            {
                "recovery_codes": {"before": left + 1, "after": left},
                "purpose": {"before": None, "after": purpose},
            },
        )
        factor_verified(user, "recovery_code", purpose)
        return "recovery_code"
    raise factor_refused(
        user, "recovery_code", purpose, "That recovery code is not right, or was used already."
    )


@dataclass(frozen=True)
class FactorResult:
    """The outcome of a factor check: the factor that passed, or the message to show."""

    factor: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.factor is not None


def check_code(user: User, code: object, purpose: str) -> FactorResult:
    """``verify_code`` as a result instead of an exception: the caller commits either way, so
    that a failure's audit row is kept."""
    try:
        return FactorResult(factor=verify_code(user, code, purpose))
    except FactorRefused as exc:
        return FactorResult(error=exc.fields["code"][0])


# --- policy and operator reset ------------------------------------------------------------------


def set_tenant_policy(tenant: Tenant, require: bool, user: User) -> bool:
    """Turn the tenant's "every admin needs MFA" policy on or off (audited in its log); True
    when it changed. Turning it on needs the acting admin to have a factor themselves."""
    require = bool(require)
    if require == tenant.require_mfa:
        return False
    if require and not has_factor(user.id):
        errors = FieldErrors()
        errors.add(
            "require_mfa",
            "Set up an authenticator app or a passkey for your own account first.",
        )
        errors.raise_if_any("The policy was not changed.")
    tenant.require_mfa = require
    db.session.flush()
    audit.record(
        tenant.id,
        _actor(user),
        "tenant.mfa_policy_changed",
        "tenant",
        tenant.id,
        {"require_mfa": {"before": not require, "after": require}},
    )
    return True


def reset_mfa(user: User, actor: Actor) -> dict:
    """An operator's reset for a locked-out user: every factor and recovery code goes and every
    session ends (audited ``user.mfa_reset``). Returns what was removed."""
    factors = factors_of(user.id)
    pending = db.session.get(TotpFactor, user.id)
    removed = {
        "authenticator_app": factors.totp is not None,
        "passkeys": len(factors.passkeys),
        "recovery_codes": factors.recovery_codes_left,
    }
    if pending is not None:
        db.session.delete(pending)
    db.session.execute(delete(Passkey).where(Passkey.user_id == user.id))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    ended = console_sessions.end_other_sessions(user.id, keep_id=None)
    changes = {name: {"before": value, "after": 0} for name, value in removed.items()}
    changes["authenticator_app"] = {"before": removed["authenticator_app"], "after": False}
    changes["sessions"] = {"before": ended, "after": 0}
    console_sessions.record_auth_event(user, "user.mfa_reset", changes, actor=actor)
    return {**removed, "sessions": ended}
