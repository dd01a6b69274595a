"""Who is asking, about which tenant, and may they write: decided here, once.

- ``current_tenant()`` is the only place that decides which tenant a console request is
  about. A tenant admin always works on their own tenant. Support staff (no tenant of their
  own) choose one in the tenant switcher (blueprints/console/support.py), which stores its id
  in the session; until they do, tenant pages send them to the switcher.
- ``requires_write`` is the only check of "may this user write": put it on every console
  route that changes data, including htmx fragment and validation routes that would write.
  Read-only users (support staff) get 403. Templates ask ``can_write`` to hide write controls.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, g, request, session, url_for
from flask_login import current_user

from blueprints.console import bp
from blueprints.console.responses import current_path, see_other
from core.extensions import db
from core.models import Tenant
from core.services import mfa
from core.services.audit import Actor
from core.tenancy import lookup_id

READ_ONLY_MESSAGE = "Your access is read-only: you cannot change anything here."


# The session key holding the id of the tenant a support user has opened.
SUPPORT_TENANT_KEY = "support_tenant_id"


def _resolve_tenant() -> Tenant | None:
    """The tenant of this request: an admin's own tenant, or the tenant a support user opened
    in the switcher; None when nothing is chosen."""
    if not current_user.is_authenticated:
        return None
    if current_user.role == "admin":
        return current_user.tenant
    if current_user.is_support:
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
    ``support_tenant`` is the tenant a support user is viewing (the read-only banner)."""
    return {
        "can_write": can_write(),
        "support_tenant": viewed_tenant() if is_support_viewer() else None,
    }
