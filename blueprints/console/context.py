"""Who is asking, about which tenant, and may they write: decided here, once.

- ``current_tenant()`` is the only place that decides which tenant a console request is
  about. A tenant admin always works on their own tenant. Support staff (no tenant of their
  own) open one in the tenant switcher (blueprints/console/support.py), giving a reason; its id
  and the time it was opened are kept in the session (``grant_support_access``) and the access
  lasts ``SUPPORT_ACCESS_MINUTES``. Until they open one, and once the access has run out, tenant
  pages send them to the switcher.
- ``requires_write`` is the only check of "may this user write": put it on every console
  route that changes data, including htmx fragment and validation routes that would write.
  Read-only users (support staff) get 403. Templates ask ``can_write`` to hide write controls.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import wraps

from flask import abort, current_app, g, request, session, url_for
from flask_login import current_user

from blueprints.console import bp
from blueprints.console.responses import current_path, see_other
from core.db_types import rfc3339, utcnow
from core.extensions import db
from core.models import Tenant
from core.services import mfa
from core.services.audit import Actor
from core.services.audit_queries import parse_rfc3339
from core.tenancy import lookup_id

READ_ONLY_MESSAGE = "Your access is read-only: you cannot change anything here."


# The session keys holding the tenant a support user has opened, and when (RFC 3339). The
# browser session is signed: neither can be forged, and an older copy only ends sooner.
SUPPORT_TENANT_KEY = "support_tenant_id"
SUPPORT_OPENED_AT_KEY = "support_opened_at"


def grant_support_access(tenant_id: str) -> None:
    """The support user's session now opens ``tenant_id``, from now on, for
    ``SUPPORT_ACCESS_MINUTES``."""
    session[SUPPORT_TENANT_KEY] = tenant_id
    session[SUPPORT_OPENED_AT_KEY] = rfc3339(utcnow())
    g.pop("console_tenant", None)


def end_support_access() -> tuple[str | None, str | None]:
    """Forget the opened tenant; returns its id and when it was opened."""
    g.pop("console_tenant", None)
    return session.pop(SUPPORT_TENANT_KEY, None), session.pop(SUPPORT_OPENED_AT_KEY, None)


def support_access_ends_at() -> datetime | None:
    """When the support user's access to the opened tenant ends (None: nothing open, or an
    opening time that cannot be read — that access has ended)."""
    opened_at = session.get(SUPPORT_OPENED_AT_KEY)
    opened = parse_rfc3339(opened_at) if isinstance(opened_at, str) else None
    if opened is None:
        return None
    return opened + timedelta(minutes=current_app.config["SUPPORT_ACCESS_MINUTES"])


def support_access_expired() -> bool:
    """Whether a support user has a tenant open whose access has run out."""
    if session.get(SUPPORT_TENANT_KEY) is None:
        return False
    ends_at = support_access_ends_at()
    return ends_at is None or utcnow() >= ends_at


def _resolve_tenant() -> Tenant | None:
    """The tenant of this request: an admin's own tenant, or the tenant a support user opened
    in the switcher while the access lasts; None when nothing is chosen."""
    if not current_user.is_authenticated:
        return None
    if current_user.role == "admin":
        return current_user.tenant
    if current_user.is_support and not support_access_expired():
        tenant_id = session.get(SUPPORT_TENANT_KEY)
        # Without a second factor no tenant is open (the switcher then asks for one).
        if lookup_id(tenant_id) is not None and mfa.has_factor(current_user.id):
            return db.session.get(Tenant, tenant_id)
    return None


def viewed_tenant() -> Tenant | None:
    """The tenant of this request, or None (no user, or support staff who chose none yet)."""
    if "console_tenant" not in g:
        g.console_tenant = _resolve_tenant()
    return g.console_tenant


def current_tenant() -> Tenant:
    """The tenant this request is about. Support staff without one go to the tenant switcher
    (a GET page) or get 403 (anything else)."""
    tenant = viewed_tenant()
    if tenant is None:
        if is_support_viewer() and request.method == "GET":
            abort(see_other(url_for("console.support_tenants", next=current_path())))
        abort(403, description="Choose a tenant before opening its pages.")
    return tenant


def is_support_viewer() -> bool:
    """Whether the signed-in user is support staff (who only ever read tenants' data)."""
    return bool(current_user.is_authenticated and current_user.is_support)


def can_write() -> bool:
    """Whether the signed-in user may change data: tenant admins yes, support staff never."""
    return bool(current_user.is_authenticated and current_user.role == "admin")


def requires_write(view):
    """Refuse the view with 403 to read-only users, before it does anything else."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not can_write():
            abort(403, description=READ_ONLY_MESSAGE)
        return view(*args, **kwargs)

    wrapper.requires_write = True
    return wrapper


def current_actor() -> Actor:
    """The signed-in user as the audit actor of a service call."""
    return Actor("user", current_user.id, current_user.email)


@bp.app_context_processor
def console_context() -> dict:
    """Template flags: ``can_write`` hides write controls from read-only users;
    ``support_tenant`` is the tenant a support user is viewing (the read-only banner) and
    ``support_access_ends_at`` when that access ends."""
    support_tenant = viewed_tenant() if is_support_viewer() else None
    return {
        "can_write": can_write(),
        "support_tenant": support_tenant,
        "support_access_ends_at": support_access_ends_at() if support_tenant else None,
    }
