"""Tenants, users and API keys: who may act, and on which tenant's data."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from core import rules
from core.database import read_alone
from core.db_types import utcnow
from core.errors import Conflict, FieldErrors, NotFound
from core.extensions import db
from core.key_cache import key_cache, revoked_in
from core.models import ApiKey, Tenant, User
from core.providers import SECRET_MASK
from core.rules.passwords import check_new_password
from core.rules.values import CONTROL_CHARACTERS
from core.services import audit, console_sessions, platform_log
from core.services.audit import Actor
from core.services.channels import lock_tenant
from core.tenancy import get_for_tenant, lookup_id

API_KEY_PREFIX = "chk_"
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# last_used_at is written at most this often per key, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:63].strip("-") or "tenant"


def create_tenant(
    name: str, slug: str | None = None, actor: Actor | None = None, tenant_id: str | None = None
) -> Tenant:
    """A tenant with a unique slug (derived from the name when not given).

    ``tenant_id`` fixes the new id (demo data with documented ids); normally generated.
    """
    errors = FieldErrors()
    clean = rules.clean_name(name, errors)
    slug = (slug or (slugify(clean) if clean else "")).strip().lower()
    if not SLUG.match(slug):
        errors.add("slug", "Use 1–63 lower-case letters, digits and hyphens.")
    elif db.session.scalar(select(func.count()).select_from(Tenant).where(Tenant.slug == slug)):
        errors.add("slug", f"A tenant with the slug {slug!r} already exists.")
    errors.raise_if_any("The tenant could not be created.")
    tenant = Tenant(name=clean, name_key=rules.name_key(clean), slug=slug, created_at=utcnow())
    if tenant_id is not None:
        tenant.id = tenant_id
    db.session.add(tenant)
    db.session.flush()
    audit.record(
        tenant.id,
        actor or Actor.system("cli"),
        "tenant.create",
        "tenant",
        tenant.id,
        audit.diff({}, {"name": clean, "slug": slug}),
    )
    return tenant


def get_tenant_by_slug(slug: str) -> Tenant:
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"No tenant with the slug {slug!r}.")
    return tenant


def normalize_email(value: str, errors: FieldErrors, field_name: str = "email") -> str | None:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except (EmailNotValidError, AttributeError) as exc:
        errors.add(field_name, f"Enter a valid email address: {exc}")
        return None


def create_user(
    email: str,
    password: str,
    role: str,
    tenant: Tenant | None = None,
    name: str = "",
    actor: Actor | None = None,
    *,
    must_change_password: bool,
) -> User:
    """A tenant admin (with a tenant) or a support user (without one).

    The password follows the policy (core.rules.passwords). ``must_change_password`` says
    whether someone else chose it (a teammate, an operator): the user must then choose their own
    at their first sign-in. Every caller decides, explicitly.
    """
    errors = FieldErrors()
    address = normalize_email(email, errors)
    if address and db.session.scalar(
        select(func.count()).select_from(User).where(User.email == address)
    ):
        errors.add("email", "A user with this email already exists.")
    display_name = (name or "").strip()[:100]
    check_new_password(password, errors, email=address or email, name=display_name)
    if role not in ("admin", "support"):
        errors.add("role", "Must be admin or support.")
    elif role == "admin" and tenant is None:
        errors.add("tenant", "An admin belongs to a tenant.")
    elif role == "support" and tenant is not None:
        errors.add("tenant", "Support staff belong to no tenant.")
    errors.raise_if_any("The user could not be created.")
    user = User(
        email=address,
        name=display_name or address.split("@")[0],
        password_hash=generate_password_hash(password),
        role=role,
        tenant_id=tenant.id if tenant else None,
        password_change_required=must_change_password,
        created_at=utcnow(),
    )
    db.session.add(user)
    db.session.flush()
    after = {"email": address, "name": user.name, "role": role}
    if must_change_password:
        after["password_change_required"] = True
    changes = audit.diff({}, after)
    console_sessions.record_auth_event(user, "user.create", changes, actor or Actor.system("cli"))
    return user


def authenticate_user(email: str, password: str) -> User | None:
    """The user with these credentials, or None (same time either way)."""
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        # Hash anyway so that unknown emails take as long as wrong passwords.
        check_password_hash(generate_password_hash("x"), password or "")
        return None
    if not check_password_hash(user.password_hash, password or ""):
        return None
    return user  # last_login_at: when a session starts (console_sessions.start_session)


def change_password(user: User, current: str, new: str, keep_session_id: str | None) -> int:
    """Change the user's own password: the current one must match and the new one follow the
    policy (``core.rules.passwords``) and differ from it. A required change (a password someone
    else chose) is then done. Every other session of the user ends (``keep_session_id``, the one
    asking, stays); audited ``user.password_changed``. Returns how many ended."""
    errors = FieldErrors()
    current_ok = check_password_hash(user.password_hash, current or "")
    if not current_ok:
        errors.add("current_password", "This is not your current password.")
    check_new_password(new, errors, "new_password", email=user.email, name=user.name)
    if current_ok and new == current and "new_password" not in errors.as_dict():
        errors.add("new_password", "Choose a password other than your current one.")
    errors.raise_if_any("The password was not changed.")
    user.password_hash = generate_password_hash(new)
    changes = {"password": {"before": SECRET_MASK, "after": SECRET_MASK}}
    if user.password_change_required:
        user.password_change_required = False
        changes["password_change_required"] = {"before": True, "after": False}
    ended = console_sessions.end_other_sessions(user.id, keep_session_id)
    changes["other_sessions"] = {"before": ended, "after": 0}
    console_sessions.record_auth_event(user, "user.password_changed", changes)
    return ended


def reset_password(email: str, password: str, actor: Actor | None = None) -> int:
    """An operator sets a new password for someone who lost theirs (``reset-password``): the
    policy applies, the user must choose their own at the next sign-in, and every session of
    theirs ends (whoever had the old password is out). Audited ``user.password_reset`` in their
    tenant's log, or the platform log for support staff. Returns how many sessions ended."""
    user = console_sessions.find_user_by_email(email)
    if user is None:
        raise NotFound(f"No user with the email {(email or '').strip()!r}.")
    errors = FieldErrors()
    check_new_password(password, errors, email=user.email, name=user.name)
    errors.raise_if_any("The password was not reset.")
    before_required = user.password_change_required
    user.password_hash = generate_password_hash(password)
    user.password_change_required = True
    ended = console_sessions.end_other_sessions(user.id, keep_id=None)
    changes = {
        "password": {"before": SECRET_MASK, "after": SECRET_MASK},
        "sessions": {"before": ended, "after": 0},
    }
    if not before_required:
        changes["password_change_required"] = {"before": False, "after": True}
    console_sessions.record_auth_event(
        user, "user.password_reset", changes, actor or Actor.system("cli")
    )
    return ended


def get_tenant(tenant_id: str) -> Tenant:
    """The tenant with this id, or NotFound (also for a malformed id)."""
    tenant = db.session.get(Tenant, tenant_id) if lookup_id(tenant_id) is not None else None
    if tenant is None:
        raise NotFound("Tenant not found.")
    return tenant


def search_tenants(q: str | None = None, limit: int = 100) -> list[Tenant]:
    """Tenants whose name or slug contains ``q`` (case-insensitive in every script: the name's
    casefold, ``name_key``), by name: the support staff's tenant switcher."""
    query = select(Tenant)
    term = rules.name_key((q or "").strip()[:100])
    if term:
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            Tenant.name_key.like(pattern, escape="\\") | Tenant.slug.like(pattern, escape="\\")
        )
    return list(db.session.scalars(query.order_by(Tenant.name_key, Tenant.slug).limit(limit)))


SUPPORT_REASON_MAX = 200
SUPPORT_REASON_REQUIRED = "Say why you open this tenant, e.g. the ticket number."


def clean_support_reason(value: object, errors: FieldErrors, field_name: str = "reason"):
    """Why a support user opens a tenant: trimmed, 1–200 characters, no control characters."""
    text = unicodedata.normalize("NFC", value.strip()) if isinstance(value, str) else ""
    if not text:
        errors.add(field_name, SUPPORT_REASON_REQUIRED)
    elif len(text) > SUPPORT_REASON_MAX:
        errors.add(field_name, f"Must be at most {SUPPORT_REASON_MAX} characters.")
    elif CONTROL_CHARACTERS.search(text):
        errors.add(field_name, "Must not contain control characters.")
    else:
        return text
    return None


def open_tenant_as_support(tenant_id: str, user: User, reason: object) -> Tenant:
    """A support user opens a tenant, saying why (``clean_support_reason``): recorded with the
    reason in that tenant's audit log and in the platform log (``support.tenant_opened``)."""
    if not user.is_support:
        raise NotFound("Tenant not found.")
    tenant = get_tenant(tenant_id)
    errors = FieldErrors()
    clean = clean_support_reason(reason, errors)
    errors.raise_if_any("The tenant was not opened.")
    actor = Actor("user", user.id, user.email)
    audit.record(tenant.id, actor, "support.tenant_opened", "tenant", tenant.id, {"reason": clean})
    platform_log.record(
        actor,
        "support.tenant_opened",
        "tenant",
        tenant.id,
        {"reason": clean, "tenant": tenant.slug},
        subject=f"{tenant.slug} by {user.email}",
    )
    return tenant


def record_support_access_expired(user: User, tenant_id: str | None, opened_at) -> None:
    """A support user's access to a tenant ran out (SUPPORT_ACCESS_MINUTES): platform log."""
    platform_log.record(
        Actor.system("support-access"),
        "support.tenant_access_expired",
        "tenant",
        tenant_id,
        {"user": user.email, "opened_at": opened_at},
        subject=f"{tenant_id} of {user.email}",
    )


def list_admins(tenant_id: str) -> list[User]:
    """The tenant's admins, oldest first."""
    return list(
        db.session.scalars(
            select(User)
            .where(User.tenant_id == tenant_id, User.role == "admin")
            .order_by(User.created_at, User.id)
        )
    )


def remove_admin(tenant_id: str, user_id: str, actor: Actor) -> User:
    """Remove an admin from the tenant (the account and every session of it are deleted).

    The last admin of a tenant cannot be removed: someone must be able to manage it.
    """
    # Serialised per tenant, so that two admins removing each other at once cannot both succeed.
    lock_tenant(tenant_id)
    user = get_for_tenant(User, tenant_id, user_id, User.role == "admin")
    admins = db.session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.tenant_id == tenant_id, User.role == "admin")
    )
    if admins <= 1:
        raise Conflict(f"{user.email} is the last admin of this tenant and cannot be removed.")
    before = {"email": user.email, "name": user.name, "role": user.role}
    # Explicitly, not only through the foreign key's ON DELETE CASCADE: the sessions' end is
    # part of removing someone, whatever the database does.
    console_sessions.end_other_sessions(user.id, keep_id=None)
    db.session.delete(user)
    db.session.flush()
    audit.record(tenant_id, actor, "user.delete", "user", user.id, audit.diff(before, {}))
    return user


@dataclass
class NewApiKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    tenant_id: str, name: str, scope: str = "write", actor: Actor | None = None
) -> NewApiKey:
    """A key ``chk_<prefix>_<secret>``; only its SHA-256 is stored (it is high-entropy)."""
    errors = FieldErrors()
    clean = rules.clean_name(name, errors)
    if scope not in ("read", "write"):
        errors.add("scope", "Must be read or write.")
    errors.raise_if_any("The API key could not be created.")
    prefix = API_KEY_PREFIX + secrets.token_hex(4)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        tenant_id=tenant_id,
        name=clean,
        prefix=prefix,
        secret_hash=_hash_key(secret),
        scope=scope,
        created_at=utcnow(),
    )
    db.session.add(key)
    db.session.flush()
    audit.record(
        tenant_id,
        actor or Actor.system("cli"),
        "api_key.create",
        "api_key",
        key.id,
        audit.diff({}, {"name": clean, "scope": scope, "prefix": prefix}),
    )
    return NewApiKey(key, secret)


@dataclass
class ApiKeyMatch:
    """The key a request presented, as authentication needs it (never the secret's hash).

    Kept by this process's key cache between requests: ``last_used_at`` is updated in place
    when this worker records a use."""

    id: str
    tenant_id: str
    name: str
    scope: str
    last_used_at: datetime | None


_api_keys = ApiKey.__table__
# Every API request runs these: Core statements built once (compiled once, cached), no ORM.
_KEY_BY_PREFIX = select(
    _api_keys.c.id,
    _api_keys.c.tenant_id,
    _api_keys.c.name,
    _api_keys.c.scope,
    _api_keys.c.secret_hash,
    _api_keys.c.revoked_at,
    _api_keys.c.last_used_at,
).where(_api_keys.c.prefix == bindparam("prefix"))
_TOUCH_KEY = (
    update(_api_keys)
    .where(_api_keys.c.id == bindparam("key_id"))
    .values(last_used_at=bindparam("now"))
)


def find_api_key(presented: str, alone: bool = False) -> ApiKeyMatch | None:
    """The active key matching a presented secret, or None (unknown, malformed or revoked).

    ``alone``: a key that is not cached is read by its own statement outside the session
    (``core.database.read_alone``: no ``BEGIN``/``ROLLBACK`` around it on PostgreSQL), for a
    request whose later reads need not share its snapshot (the API's reading requests)."""
    if (
        not presented
        or len(presented) > 200
        or presented.count("_") < 2
        or not presented.isprintable()
    ):
        return None
    digest = _hash_key(presented)
    cache = key_cache()
    if cache is not None and (cached := cache.get(digest)) is not None:
        return cached
    prefix = "_".join(presented.split("_", 2)[:2])  # the secret part may contain "_" too
    if alone:
        row = next(iter(read_alone(_KEY_BY_PREFIX, {"prefix": prefix})), None)
    else:
        row = db.session.connection().execute(_KEY_BY_PREFIX, {"prefix": prefix}).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, digest):
        return None
    match = ApiKeyMatch(row.id, row.tenant_id, row.name, row.scope, row.last_used_at)
    if cache is not None:
        cache.put(digest, match)
    return match


def touch_api_key(key: ApiKeyMatch) -> bool:
    """Record the key's use, at most once a minute; True when a write is pending."""
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        db.session.connection().execute(_TOUCH_KEY, {"key_id": key.id, "now": now})
        key.last_used_at = now  # the cached copy too: this worker writes again in a minute
        return True
    return False


def revoke_api_key(tenant_id: str, key_id: str, actor: Actor) -> ApiKey:
    """Revoke a key: it answers 401 from then on."""
    key = get_for_tenant(ApiKey, tenant_id, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        revoked_in(db.session())  # every worker's key cache drops it (core.key_cache)
        db.session.flush()
        audit.record(
            tenant_id,
            actor,
            "api_key.revoke",
            "api_key",
            key.id,
            {"revoked": {"before": False, "after": True}},
        )
    return key
