"""The admin console: server-rendered pages enhanced with htmx (DESIGN §5).

Building blocks for every console page (reuse them; don't re-implement them):

- ``context.current_tenant()`` — the ONE answer to "which tenant is this request about";
  ``context.requires_write`` — the ONE decorator for "may this user write" (403 otherwise);
  ``context.current_actor()`` — the audit actor for service calls.
- ``responses.render_page(page, fragment, ...)`` — full page, or only the fragment for an
  htmx request (``responses.is_fragment_request``); ``responses.render_fragments(...)`` for
  row updates with out-of-band rows and the flash region; ``responses.redirect_back(...)``
  for no-JS POSTs (303 to a safe ``next``).
- ``writes.console_write(form)`` — the ONE way a console view commits: wrap the service call
  in it; it commits once, or rolls back and puts the service's refusal on the form's fields
  (``forms.apply_service_errors``) or, without a form, in the flash area. ``writes.console_check``
  runs rules that write nothing (inline checks). Forms never re-implement a rule.
- ``templates/macros.html`` — labelled fields with aria-linked errors, selects, checkboxes,
  status badges, buttons, pagers; ``templates/_flash.html`` — the flash region.

Every console endpoint requires a signed-in user, except those in ``PUBLIC_ENDPOINTS``.
Endpoints of one section share a prefix (``console.channels_*``) so that the nav can mark the
current section (see ``nav_link`` in templates/macros.html).
"""

from flask import Blueprint, request
from flask_login import current_user

from core.extensions import login_manager

bp = Blueprint("console", __name__)

# Signing in: the password, then the second factor or a passkey (sign_in_steps).
PUBLIC_ENDPOINTS = {
    "console.login",
    "console.login_verify",
    "console.login_verify_options",
    "console.login_passkey_options",
    "console.login_passkey",
}


@bp.before_request
def require_sign_in():
    """Every console page needs a signed-in user; anonymous requests go to the sign-in page."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if current_user.is_authenticated:
        return sign_in_steps.required_step()  # e.g. set up a factor first
    return login_manager.unauthorized()


@bp.after_request
def never_cached(response):
    """Console pages are never stored by a browser or proxy (DESIGN §7): after sign-out, the
    back button or a shared machine's cache must not show a tenant's data again."""
    response.headers["Cache-Control"] = "no-store"
    return response


from blueprints.console import (  # noqa: E402,F401  (routes register on bp)
    account,
    api_keys,
    audit,
    auth,
    channels,
    context,
    email_domains,
    imports,
    integrations,
    mfa,
    phone_numbers,
    platform_log,
    rechecks,
    sign_in_steps,
    step_up,
    support,
    team,
    webhooks,
)
