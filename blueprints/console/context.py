"""Who is asking, about which tenant, and may they write: decided here, once.

- ``current_tenant()`` is the only place that decides which tenant a console request is
  about. A tenant admin always works on their own tenant. Support staff (no tenant of their
  own) need a tenant chosen for them first; the tenant switcher extends ``_resolve_tenant``.
- ``requires_write`` is the only check of "may this user write": put it on every console
  route that changes data, including htmx fragment and validation routes that would write.
  Read-only users (support staff) get 403. Templates ask ``can_write`` to hide write controls.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, g
from flask_login import current_user

from blueprints.console import bp
from core.models import Tenant
from core.services.audit import Actor

READ_ONLY_MESSAGE = "Your access is read-only: you cannot change anything here."


def _resolve_tenant() -> Tenant | None:
    """The tenant of this request: an admin's own tenant; None when nothing is chosen."""
    if current_user.is_authenticated and current_user.role == "admin":
        return current_user.tenant
    return None


def current_tenant() -> Tenant:
    """The tenant this request is about (403 when the user has none chosen)."""
    if "console_tenant" not in g:
        g.console_tenant = _resolve_tenant()
    if g.console_tenant is None:
        abort(403, description="Choose a tenant before opening its pages.")
    return g.console_tenant


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
    """Template flags: ``can_write`` hides write controls from read-only users."""
    return {"can_write": can_write()}
