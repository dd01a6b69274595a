"""Console pages for the team: the tenant's admins; add one, remove one.

A new admin is created with an email, a name and an initial password that the inviting admin
chooses and hands over (no email is sent: the platform has no mail of its own). The password
policy applies to it, and the new admin must choose their own password at first sign-in (the
inviting admin knows this one). Removing an
admin deletes the account and ends every server-side session of it (a copied cookie opens
nothing either). The last admin of a tenant cannot be removed. Every change
goes through ``core.services.accounts`` and is audited (``user.create`` / ``user.delete``).
"""

from __future__ import annotations

from flask import flash, make_response, render_template, request, session, url_for
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField

from blueprints.console import bp
from blueprints.console.context import current_actor, current_tenant, requires_write
from blueprints.console.responses import (
    current_path,
    is_fragment_request,
    redirect_back,
    render_fragments,
    render_page,
    see_other,
)
from blueprints.console.step_up import requires_recent_auth
from blueprints.console.writes import console_write
from core.models import User
from core.services import accounts, mfa
from core.tenancy import get_for_tenant


class AdminForm(FlaskForm):
    """Email, name and initial password of a new admin; the service checks all three."""

    email = EmailField("Email")
    name = StringField("Name")
    password = PasswordField("Initial password")


class MfaPolicyForm(FlaskForm):
    """The tenant's two-factor policy."""

    require_mfa = BooleanField("Require two-factor authentication for every admin")


def _index(form: AdminForm, status: int = 200, policy_form: MfaPolicyForm | None = None):
    """The team page with ``form`` (its errors, when it was refused)."""
    tenant = current_tenant()
    admins = accounts.list_admins(tenant.id)
    if policy_form is None:
        policy_form = MfaPolicyForm(formdata=None, data={"require_mfa": tenant.require_mfa})
    return render_page(
        "team/index.html",
        form=form,
        policy_form=policy_form,
        tenant=tenant,
        admins=admins,
        with_factor=mfa.users_with_factor([admin.id for admin in admins]),
        next_url=url_for("console.team_index"),
        status=status,
    )


@bp.get("/team")
def team_index():
    """The tenant's admins and, for admins, the form to add one."""
    return _index(AdminForm(formdata=None))


@bp.post("/team")
@requires_write
@requires_recent_auth("add an admin")
def team_add():
    """Add an admin to the tenant (303 to the team page; 422 with every error otherwise)."""
    tenant = current_tenant()
    form = AdminForm()
    if not form.validate():
        return _index(form, status=422)
    with console_write(form) as write:
        user = accounts.create_user(
            form.email.data or "",
            form.password.data or "",
            "admin",
            tenant,
            form.name.data or "",
            current_actor(),
            must_change_password=True,
        )
    if write.failed:
        return _index(form, status=write.status)
    flash(
        f"{user.email} is now an admin of {tenant.name}: they sign in with the password you chose,"
        " then choose their own.",
        "success",
    )
    return see_other(url_for("console.team_index"))


@bp.get("/team/<user_id>/remove")
@requires_write
def team_confirm_remove(user_id):
    """Without JavaScript, removing an admin asks for confirmation here."""
    tenant = current_tenant()
    user = get_for_tenant(User, tenant.id, user_id, User.role == "admin")
    return render_template("team/remove.html", user=user, next_url=request.args.get("next"))


@bp.route("/team/<user_id>/remove", methods=["POST", "DELETE"])
@requires_write
@requires_recent_auth("remove an admin")
def team_remove(user_id):
    """Remove an admin (htmx: the row goes); removing yourself signs you out."""
    tenant = current_tenant()
    removing_self = user_id == current_user.id
    with console_write() as write:  # refused (the last admin): flashed as an error
        user = accounts.remove_admin(tenant.id, user_id, current_actor())
    if write.failed:
        if not is_fragment_request():
            return redirect_back(url_for("console.team_index"))
        user = get_for_tenant(User, tenant.id, user_id, User.role == "admin")
        row = render_template(
            "team/_row.html",
            user=user,
            next_url=current_path(),
            with_factor=mfa.users_with_factor([user.id]),
        )
        return render_fragments(row)
    if removing_self:
        logout_user()
        session.clear()
        flash("You removed yourself from the team and are signed out.", "info")
        target = url_for("console.login")
        if is_fragment_request():
            response = make_response("", 200)
            response.headers["HX-Redirect"] = target
            return response
        return see_other(target)
    flash(f"{user.email} is no longer an admin of {tenant.name}.", "success")
    if not is_fragment_request():
        return redirect_back(url_for("console.team_index"))
    return render_fragments("")


@bp.post("/team/mfa-policy")
@requires_write
@requires_recent_auth("change the tenant's two-factor policy")
def team_mfa_policy():
    """Require (or stop requiring) a second factor of every admin; admins without one are sent
    to set one up at their next request. Audited ``tenant.mfa_policy_changed``."""
    tenant = current_tenant()
    form = MfaPolicyForm()
    if not form.validate():
        return _index(AdminForm(formdata=None), 422, form)
    with console_write(form) as write:
        changed = mfa.set_tenant_policy(tenant, form.require_mfa.data, current_user)
    if write.failed:
        return _index(AdminForm(formdata=None), write.status, form)
    if not changed:
        flash("The two-factor policy is unchanged.", "info")
    elif tenant.require_mfa:
        flash(
            "Every admin of this tenant now needs two-factor authentication; those without it "
            "are asked to set it up before they can do anything else.",
            "success",
        )
    else:
        flash("Two-factor authentication is no longer required of this tenant's admins.", "success")
    return see_other(url_for("console.team_index"))
