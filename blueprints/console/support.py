"""Support staff: the tenant switcher.

Support users belong to no tenant. They search every tenant here and open one; opening it
stores the tenant's id in their session (``context.SUPPORT_TENANT_KEY``, read by the one
tenant-context helper) and records ``support.tenant_opened`` in THAT tenant's audit log. From
then on every console page shows that tenant's data read-only: ``context.requires_write``
refuses every write with 403 and templates hide write controls (``can_write`` is false), while
base.html's banner names the tenant being viewed.

Support staff can read every tenant, so they must have a second factor before they open any
(DESIGN §7): without one, the switcher sends them to set one up, and a tenant opened earlier
(before the factor was removed or reset) is not shown either (``context._resolve_tenant``).
"""

from __future__ import annotations

from functools import wraps

from flask import abort, flash, g, make_response, request, session, url_for
from flask_login import current_user

from blueprints.console import bp
from blueprints.console.context import SUPPORT_TENANT_KEY, is_support_viewer, viewed_tenant
from blueprints.console.responses import redirect_back, render_page, safe_local_url, see_other
from blueprints.console.writes import console_write
from core.services import accounts, mfa

SEARCH_MAX = 100
SHOWN_MAX = 100  # the switcher lists at most this many; searching narrows the rest


ENROLL_FIRST = (
    "Support staff need two-factor authentication to open a tenant. Set up an authenticator "
    "app or a passkey first."
)


def requires_support(view):
    """Only support staff may use the switcher (tenant admins get 403), and only with a second
    factor: without one they are sent to set one up (no tenant opens before)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not is_support_viewer():
            abort(403, description="Only support staff can switch tenants.")
        if not mfa.has_factor(current_user.id):
            flash(ENROLL_FIRST, "info")
            target = url_for("console.account_index", _anchor="factors")
            if request.headers.get("HX-Request") == "true":
                response = make_response("", 403)
                response.headers["HX-Redirect"] = target
                return response
            return see_other(target)
        return view(*args, **kwargs)

    return wrapper


@bp.get("/support/tenants")
@requires_support
def support_tenants():
    """Every tenant, searchable by name or slug (the results only for htmx live search)."""
    q = (request.args.get("q") or "").strip()[:SEARCH_MAX]
    tenants = accounts.search_tenants(q, limit=SHOWN_MAX + 1)
    return render_page(
        "support/tenants.html",
        "support/_results.html",
        tenants=tenants[:SHOWN_MAX],
        truncated=len(tenants) > SHOWN_MAX,
        q=q,
        current=viewed_tenant(),
        next_url=safe_local_url(request.args.get("next")),
    )


@bp.post("/support/tenants/<tenant_id>/open")
@requires_support
def support_open_tenant(tenant_id):
    """Open a tenant read-only: recorded in its audit log, then on to its pages (303)."""
    with console_write():
        tenant = accounts.open_tenant_as_support(tenant_id, current_user)
    session[SUPPORT_TENANT_KEY] = tenant.id
    g.pop("console_tenant", None)
    # No flash: the banner on every page says whose data this is, read-only.
    return redirect_back(url_for("console.channels_index"))
