"""Step-up in the console: ``requires_recent_auth`` and the confirmation page.

Put ``@requires_recent_auth("create an API key")`` under ``@requires_write`` on a sensitive
route. Within ``REAUTH_MINUTES`` of the session's last authentication the view runs at once.
Otherwise its posted form is kept server-side (``core.services.step_up``: encrypted, in the
session's own row) and the browser goes to ``/account/confirm`` (htmx: ``HX-Redirect``). There
the user confirms with their password, a code (authenticator app or recovery code) or a
passkey; the action then runs right away with the form as it was posted — nothing is typed
again — and its answer (the new key's secret, a redirect) is the confirmation's answer.

The replay goes through the same view function, with every decorator, under the URL rule the
form was posted to: authorization, CSRF (the kept form carries the session's token) and the
service's rules are checked again at that moment. The action is taken out of the session row
before it runs, so it runs once.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    flash,
    g,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict, ImmutableMultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash
from wtforms import HiddenField, PasswordField, StringField

from blueprints.console import bp
from blueprints.console.auth import current_session_id
from blueprints.console.passkey_challenges import issue, take
from blueprints.console.responses import safe_local_url, see_other
from core.extensions import db
from core.limits import FACTOR_LIMIT_MESSAGE, count_factor_failure, factor_attempts_allowed
from core.services import mfa, passkeys, step_up


def requires_recent_auth(label: str, unless=None):
    """Run the view only within REAUTH_MINUTES of an authentication; otherwise keep the
    request and ask for a confirmation first (``label`` completes "Confirm it's you to …").
    GETs never ask; nor do POSTs for which ``unless()`` is true (a form's no-JS re-render)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if (
                request.method == "GET"
                or (unless is not None and unless())
                or step_up.is_recent(current_session_id())
            ):
                return view(*args, **kwargs)
            return _ask_for_confirmation(label)

        wrapper.requires_recent_auth = True
        return wrapper

    return decorate


def _back_path() -> str:
    """Where "Cancel" goes: the form's ``next``, else the page the request came from."""
    target = safe_local_url(request.form.get("next"))
    if target:
        return target
    for url in (request.headers.get("HX-Current-URL"), request.referrer):
        parts = urlsplit(url or "")
        if parts.netloc == request.host:
            path = safe_local_url(parts.path + (f"?{parts.query}" if parts.query else ""))
            if path:
                return path
    return url_for("console.account_index")


def _ask_for_confirmation(label: str):
    """Keep this request's form for after the confirmation, and go to the confirmation page."""
    step_up.keep_pending(
        current_session_id(),
        request.path,
        list(request.form.items(multi=True)),
        label,
        _back_path(),
    )
    db.session.commit()
    target = url_for("console.account_confirm")
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 200)
        response.headers["HX-Redirect"] = target
        return response
    return see_other(target)


class ConfirmForm(FlaskForm):
    """The password, or a code, or a passkey's answer: whichever the user gives."""

    password = PasswordField("Password")
    code = StringField("Authentication code")
    passkey = HiddenField()


def _confirm_page(form: ConfirmForm, action, status: int = 200):
    factors = mfa.factors_of(current_user.id)
    return (
        render_template(
            "account/confirm.html",
            form=form,
            action=action,
            has_codes=factors.totp is not None or factors.recovery_codes_left > 0,
            has_passkeys=bool(factors.passkeys),
            minutes=current_app.config["REAUTH_MINUTES"],
        ),
        status,
    )


def _check(form: ConfirmForm) -> tuple[str | None, str | None, str]:
    """(the method that passed, None) or (None, the error to show, the field it belongs to)."""
    user = current_user._get_current_object()
    if form.passkey.data:
        challenge = take("confirm", user.id)
        _, error = passkeys.verify_assertion(form.passkey.data, challenge, user, "step-up")
        return (None, error, "code") if error else ("passkey", None, "code")
    if (form.code.data or "").strip():
        result = mfa.check_code(user, form.code.data, "step-up")
        return (result.factor, None, "code") if result.ok else (None, result.error, "code")
    if form.password.data:
        if not factor_attempts_allowed(user.id):
            return None, FACTOR_LIMIT_MESSAGE, "password"
        if check_password_hash(user.password_hash, form.password.data):
            return "password", None, "password"
        count_factor_failure(user.id)
        return None, "This is not your password.", "password"
    return None, "Enter your password or a code, or use a passkey.", "password"


@bp.route("/account/confirm", methods=["GET", "POST"])
def account_confirm():
    """Confirm it's you (password, code or passkey); then the waiting action runs."""
    session_id = current_session_id()
    action = step_up.pending(session_id)
    form = ConfirmForm()
    if request.method == "GET":
        return _confirm_page(form, action)
    if not form.validate():
        return _confirm_page(form, action, 422)
    method, error, field = _check(form)
    user = current_user._get_current_object()
    if method is None:
        step_up.refused(user, "passkey" if form.passkey.data else field)
        db.session.commit()  # the failure's audit events stay
        getattr(form, field).errors = [error]
        form.code.data = form.passkey.data = ""  # a code or an answer is never shown back
        return _confirm_page(form, action, 422)
    step_up.confirmed(user, session_id, method)
    step_up.drop_pending(session_id)
    db.session.commit()
    if action is None:
        flash("Thank you: you won't be asked again for a few minutes.", "success")
        return see_other(url_for("console.account_index"))
    return _replay(action)


@bp.post("/account/confirm/passkey-options")
def account_confirm_options():
    """Passkey options to confirm it's you (your passkeys only)."""
    user = current_user._get_current_object()
    return issue("confirm", passkeys.authentication_options(user), user.id)


def _replay(action: step_up.PendingAction):
    """Run the kept request now: the view of the URL it was posted to, with its form."""
    adapter = current_app.create_url_adapter(request)
    try:
        rule, args = adapter.match(action.path, method="POST", return_rule=True)
    except HTTPException:
        abort(404)
    view = current_app.view_functions[rule.endpoint]
    if not getattr(view, "requires_recent_auth", False):
        abort(404)  # only sensitive actions are ever kept; anything else is not replayed
    form = ImmutableMultiDict(action.form)
    # The request becomes the kept one: its rule, arguments and form (nothing else differs:
    # same session, same user, same CSRF token).
    request.url_rule = rule
    request.view_args = args
    request.form = form
    request.files = ImmutableMultiDict()
    request.values = CombinedMultiDict([request.args, form])
    g.pop("console_tenant", None)
    return current_app.ensure_sync(view)(**args)
