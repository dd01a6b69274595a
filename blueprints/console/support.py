"""Support staff: the tenant switcher.

Support users belong to no tenant. They search every tenant here and open one, giving a reason
(free text such as a ticket number: required, at most 200 characters, no control characters);
opening it stores the tenant's id and the time in their session (``context.grant_support_access``,
read by the one tenant-context helper) and records ``support.tenant_opened`` with the reason in
THAT tenant's audit log and in the platform log. From then on every console page shows that
tenant's data read-only: ``context.requires_write`` refuses every write with 403 and templates
hide write controls (``can_write`` is false), while base.html's banner names the tenant being
viewed and until when.

The access lasts ``SUPPORT_ACCESS_MINUTES`` (60 by default). The first request after that
(``support_access_gate``) forgets the tenant, records ``support.tenant_access_expired`` in the
platform log and sends the user back to the switcher with a message (htmx: 403 + HX-Redirect);
they open it again, with a reason, to go on.

Support staff can read every tenant, so they must have a second factor before they open any
(DESIGN §7): without one, the switcher sends them to set one up, and a tenant opened earlier
(before the factor was removed or reset) is not shown either (``context._resolve_tenant``).
"""

from __future__ import annotations

from functools import wraps

from flask import abort, current_app, flash, make_response, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from blueprints.console import bp
from blueprints.console.context import (
    end_support_access,
    grant_support_access,
    is_support_viewer,
    support_access_expired,
    viewed_tenant,
)
from blueprints.console.responses import (
    redirect_back,
    render_page,
    safe_local_url,
    see_other,
    send_elsewhere,
)
from blueprints.console.writes import console_write
from core.extensions import db
from core.models import Tenant
from core.services import accounts, mfa
from core.tenancy import lookup_id

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


# Requests that go on when the access has run out: signing out, and the switcher itself.
GATE_EXEMPT = {"console.login", "console.logout", "console.support_tenants"}


class SupportOpenForm(FlaskForm):
    """Why the tenant is opened; the service checks it (accounts.clean_support_reason)."""

    reason = StringField("Reason")


@bp.before_request
def support_access_gate():
    """A support user whose access to the opened tenant ran out: the tenant is forgotten (the
    platform log records it) and they go back to the switcher with a message."""
    if not is_support_viewer() or not support_access_expired():
        return None
    tenant_id, opened_at = end_support_access()
    tenant = db.session.get(Tenant, tenant_id) if lookup_id(tenant_id) else None
    with console_write():
        accounts.record_support_access_expired(current_user, tenant and tenant.id, opened_at)
    name = tenant.name if tenant else "the tenant"
    flash(
        f"Your access to {name} has ended ({_minutes()} minutes). Open it again, with a"
        " reason, to go on.",
        "info",
    )
    if request.endpoint in GATE_EXEMPT:
        return None
    return send_elsewhere("console.support_tenants", "Your access to the tenant has ended.")


def _minutes() -> str:
    """SUPPORT_ACCESS_MINUTES as people write it (60, not 60.0)."""
    minutes = current_app.config["SUPPORT_ACCESS_MINUTES"]
    return f"{minutes:g}"


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


def _open_page(tenant: Tenant, form: SupportOpenForm, status: int = 200):
    """The reason form of opening ``tenant``."""
    page = render_template(
        "support/open.html",
        tenant=tenant,
        form=form,
        minutes=_minutes(),
        next_url=safe_local_url(request.values.get("next")),
    )
    return make_response(page, status)


@bp.get("/support/tenants/<tenant_id>/open")
@requires_support
def support_confirm_open(tenant_id):
    """Ask why the tenant is opened (the reason form)."""
    return _open_page(accounts.get_tenant(tenant_id), SupportOpenForm(formdata=None))


@bp.post("/support/tenants/<tenant_id>/open")
@requires_support
def support_open_tenant(tenant_id):
    """Open a tenant read-only, with a reason: recorded in its audit log and the platform log,
    then on to its pages (303); 422 with the reason's error on the form."""
    form = SupportOpenForm()
    with console_write(form) as write:
        tenant = accounts.open_tenant_as_support(tenant_id, current_user, form.reason.data)
    if write.failed:
        return _open_page(accounts.get_tenant(tenant_id), form, status=write.status)
    grant_support_access(tenant.id)
    # No flash: the banner on every page says whose data this is, read-only, until when.
    return redirect_back(url_for("console.channels_index"))
