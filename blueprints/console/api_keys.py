"""Console pages for API keys: create (the secret shown exactly once), list, revoke.

Writes go through ``core.services.accounts`` inside ``writes.console_write``. The new key's
secret is in the body of the POST's response only: never in the session, a flash message, a URL
or a log.
"""

from __future__ import annotations

from flask import flash, make_response, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectChoice, SelectField, StringField

from blueprints.console import bp
from blueprints.console.context import current_actor, current_tenant, requires_write
from blueprints.console.responses import (
    current_path,
    is_fragment_request,
    redirect_back,
    render_fragments,
    render_page,
)
from blueprints.console.step_up import requires_recent_auth
from blueprints.console.writes import console_write
from core.extensions import db
from core.models import ApiKey
from core.services import accounts
from core.tenancy import get_for_tenant


class ApiKeyForm(FlaskForm):
    """A name and a scope; the service checks both."""

    name = StringField("Name")
    scope = SelectField(
        "Scope",
        choices=[
            SelectChoice("write", "Write (read and change)"),
            SelectChoice("read", "Read (GET only)"),
        ],
        default="write",
        validate_choice=False,
    )


def _keys(tenant_id: str) -> list[ApiKey]:
    """The tenant's keys, newest first."""
    return db.session.scalars(
        select(ApiKey)
        .where(ApiKey.tenant_id == tenant_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    ).all()


def _index(form: ApiKeyForm, new_key=None, status: int = 200):
    """The keys page (with ``new_key``'s secret, once, never cached)."""
    tenant = current_tenant()
    response = make_response(
        render_page(
            "api_keys/index.html",
            form=form,
            keys=_keys(tenant.id),
            new_key=new_key,
            next_url=url_for("console.api_keys_index"),
            status=status,
        )
    )
    if new_key is not None:  # the page holding the secret is never cached or stored
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api-keys")
def api_keys_index():
    """The tenant's keys (prefix, scope, last use, revoked) and the form to create one."""
    return _index(ApiKeyForm(formdata=None))


@bp.post("/api-keys")
@requires_write
@requires_recent_auth("create an API key")
def api_keys_create():
    """Create a key; the answer shows its secret once, with a copy button."""
    tenant = current_tenant()
    form = ApiKeyForm()
    if not form.validate():
        return _index(form, status=422)
    with console_write(form) as write:
        new = accounts.create_api_key(
            tenant.id, form.name.data or "", form.scope.data, current_actor()
        )
    if write.failed:
        return _index(form, status=write.status)
    return _index(ApiKeyForm(formdata=None), new_key=new)


@bp.get("/api-keys/<key_id>/revoke")
@requires_write
def api_keys_confirm_revoke(key_id):
    """Without JavaScript, revoking asks for confirmation here."""
    tenant = current_tenant()
    key = get_for_tenant(ApiKey, tenant.id, key_id)
    return render_template("api_keys/revoke.html", key=key, next_url=request.args.get("next"))


@bp.post("/api-keys/<key_id>/revoke")
@requires_write
@requires_recent_auth("revoke an API key")
def api_keys_revoke(key_id):
    """Revoke a key: from now on it gets 401 from the API."""
    tenant = current_tenant()
    with console_write():
        key = accounts.revoke_api_key(tenant.id, key_id, current_actor())
    flash(
        f"The key “{key.name}” ({key.prefix}) is revoked: the API refuses it from now on.",
        "success",
    )
    if not is_fragment_request():
        return redirect_back(url_for("console.api_keys_index"))
    return render_fragments(render_template("api_keys/_row.html", key=key, next_url=current_path()))
