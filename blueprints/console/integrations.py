"""Console pages for integrations: the list, the create/edit form, test connection, enable/
disable and delete.

Writes go through ``core.services.integrations`` / ``core.services.provider_checks`` (the API's
functions) inside ``writes.console_write``. The credential fields come from the provider catalogue
(``core.providers``): choosing a type or provider swaps them in with htmx
(``integrations/_credential_fields.html``); without JavaScript "Show fields" re-renders the form.
Secrets are never rendered back: a secret input is always empty, and leaving it empty on edit
keeps the stored secret ("Replace secret").
"""

from __future__ import annotations

from datetime import UTC

from flask import flash, render_template, request, url_for
from sqlalchemy import select
from wtforms import SelectChoice, SelectField, StringField

from blueprints.console import bp
from blueprints.console.context import current_actor, current_tenant, requires_write
from blueprints.console.forms import CHANNEL_TYPE_LABELS
from blueprints.console.responses import (
    current_path,
    is_fragment_request,
    redirect_back,
    render_fragments,
    render_page,
    see_other,
)
from blueprints.console.stale_edits import VersionedForm, stale_edit
from blueprints.console.step_up import requires_recent_auth
from blueprints.console.writes import console_write
from core.conditional import PreconditionFailed, etag_of, require_version
from core.db_types import rfc3339
from core.errors import ServiceError
from core.extensions import db
from core.models import CHANNEL_TYPES, Integration
from core.providers import PROVIDERS, providers_for
from core.services import integrations as service
from core.services import provider_checks
from core.services.channels import channels_using
from core.tenancy import get_for_tenant

# Errors of these fields render next to the credential inputs, not on the WTForms form.
CREDENTIALS = ("credentials",)


@bp.app_template_filter("rfc3339")
def rfc3339_filter(value) -> str:
    """A timestamp as RFC 3339 UTC (``2024-10-03T12:00:00Z``), for ``datetime`` attributes."""
    return rfc3339(value) or ""


@bp.app_template_filter("utc_time")
def utc_time_filter(value) -> str:
    """A timestamp for people: ``2024-10-03 12:00 UTC``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


@bp.app_template_global()
def provider_label(name: str) -> str:
    """A provider's display name (SendGrid, Amazon SES, ...)."""
    provider = PROVIDERS.get(name)
    return provider.label if provider else name


class IntegrationForm(VersionedForm):
    """Name, type and provider; the credential inputs are read by ``credentials_from``."""

    name = StringField("Name")
    channel_type = SelectField(
        "Channel type",
        choices=[SelectChoice(t, CHANNEL_TYPE_LABELS[t]) for t in CHANNEL_TYPES],
        default="email",
        validate_choice=False,
    )
    provider = SelectField("Provider", choices=[], validate_choice=False)

    def chosen_type(self) -> str:
        """The chosen channel type (email when nothing valid was chosen)."""
        value = self.channel_type.data
        return value if value in CHANNEL_TYPES else "email"

    def chosen_provider(self):
        """The chosen provider when it serves the chosen type, else the type's first one."""
        offered = providers_for(self.chosen_type())
        return next((p for p in offered if p.name == self.provider.data), offered[0])

    def offer_providers(self) -> None:
        """The provider select lists the providers of the chosen type."""
        self.provider.choices = [
            SelectChoice(p.name, p.label) for p in providers_for(self.chosen_type())
        ]
        self.provider.data = self.chosen_provider().name


def credentials_from(form_data, provider, editing: bool) -> dict:
    """The ``credentials`` object the browser sent (inputs named ``credentials-<field>``).

    Checkboxes are absent when unticked, so a boolean is whether it was sent. On edit an empty
    secret means "keep the stored one" and is left out.
    """
    credentials = {}
    for spec in provider.fields:
        key = f"credentials-{spec.name}"
        if spec.kind == "boolean":
            credentials[spec.name] = key in form_data
            continue
        value = form_data.get(key, "")
        if spec.secret and editing and not value:
            continue
        credentials[spec.name] = value
    return credentials


def credential_values(provider, stored: dict | None, form_data=None) -> dict:
    """What the credential inputs show: typed values, else stored non-secrets, else defaults."""
    values = {}
    for spec in provider.fields:
        if spec.secret:
            values[spec.name] = ""  # never rendered back
        elif form_data is not None:
            if spec.kind == "boolean":
                values[spec.name] = f"credentials-{spec.name}" in form_data
            else:
                values[spec.name] = form_data.get(f"credentials-{spec.name}", "")
        elif stored is not None:
            values[spec.name] = stored.get(spec.name, "")
        else:
            values[spec.name] = spec.default if spec.default is not None else ""
    return values


def credential_errors(exc: ServiceError | None) -> dict[str, list[str]]:
    """The service's ``credentials.<field>`` errors, by field name."""
    if exc is None:
        return {}
    errors = {}
    for key, messages in exc.fields.items():
        if key.startswith("credentials."):
            errors[key.split(".", 1)[1]] = messages
        elif key == "credentials":
            errors.setdefault("_all", []).extend(messages)
    return errors


def _render_form(form, integration=None, values=None, errors=None, status=200, stale=None):
    """The integration form with the provider's credential inputs (secrets never filled), and
    the stale-edit notice when someone else saved it meanwhile."""
    provider = PROVIDERS[integration.provider] if integration else form.chosen_provider()
    return (
        render_template(
            "integrations/form.html",
            form=form,
            integration=integration,
            provider=provider,
            values=values if values is not None else credential_values(provider, None),
            credential_errors=errors or {},
            stored_secrets=_stored_secrets(integration),
            stale=stale,
        ),
        status,
    )


def _stored_values(integration) -> dict:
    """What the edit form shows of the stored integration: never a secret."""
    provider = PROVIDERS[integration.provider]
    stored = service.credentials_of(integration)
    values = {"name": integration.name, "status": integration.status}
    for spec in provider.fields:
        if not spec.secret:
            values[f"credentials.{spec.name}"] = stored.get(spec.name, "")
    return values


def _stale_integration(form, integration):
    """The notice for an edit form rendered from an older version of ``integration``."""
    labels = {"name": "Name", "status": "Status"}
    for spec in PROVIDERS[integration.provider].fields:
        labels[f"credentials.{spec.name}"] = spec.label

    def display(name, value):
        if name == "status":
            return "Active" if value == "active" else "Disabled"
        return None

    return stale_edit(
        form, "integration", etag_of(integration), _stored_values(integration), labels, display
    )


def _stored_secrets(integration) -> set[str]:
    """Which secret fields have a stored value (to say "a secret is stored"; never which)."""
    if integration is None:
        return set()
    stored = service.credentials_of(integration)
    return {name for name in PROVIDERS[integration.provider].secret_fields if stored.get(name)}


@bp.get("/integrations")
def integrations_index():
    """The tenant's integrations with their status and last connection check."""
    tenant = current_tenant()
    integrations = db.session.scalars(
        select(Integration)
        .where(Integration.tenant_id == tenant.id)
        .order_by(Integration.created_at.desc(), Integration.id.desc())
    ).all()
    return render_page(
        "integrations/index.html", integrations=integrations, next_url=current_path()
    )


@bp.route("/integrations/new", methods=["GET", "POST"])
@requires_write
# "Show fields" (no JavaScript) only re-renders the form: nothing is saved, nothing to confirm.
@requires_recent_auth(
    "save an integration's credentials", unless=lambda: "change_provider" in request.form
)
def integrations_new():
    """The new-integration form; POST creates it through the service."""
    tenant = current_tenant()
    form = IntegrationForm()
    if request.method == "GET":
        form.channel_type.data = request.args.get("channel_type", "email")
        form.provider.data = request.args.get("provider")
    form.offer_providers()
    provider = form.chosen_provider()
    if request.method == "GET" or "change_provider" in request.form:
        typed = request.form if request.method == "POST" else None
        return _render_form(form, values=credential_values(provider, None, typed))
    values = credential_values(provider, None, request.form)
    if form.validate():
        data = {
            "name": form.name.data or "",
            "channel_type": form.chosen_type(),
            "provider": provider.name,
            "credentials": credentials_from(request.form, provider, editing=False),
        }
        with console_write(form, elsewhere=CREDENTIALS) as write:
            integration = service.create_integration(tenant.id, data, current_actor())
        if write.failed:
            errors = credential_errors(write.error)
            return _render_form(form, values=values, errors=errors, status=write.status)
        flash(
            f"Integration “{integration.name}” created. Use “Test connection” to check "
            "its credentials.",
            "success",
        )
        return see_other(url_for("console.integrations_index"))
    return _render_form(form, values=values, status=422)


@bp.get("/integrations/credential-fields")
def integrations_credential_fields():
    """The provider select and the provider's credential inputs, for the htmx switch."""
    current_tenant()
    form = IntegrationForm(formdata=None)
    form.channel_type.data = request.args.get("channel_type", "email")
    form.provider.data = request.args.get("provider")
    form.offer_providers()
    if not is_fragment_request():
        return see_other(
            url_for(
                "console.integrations_new",
                channel_type=form.chosen_type(),
                provider=form.provider.data,
            )
        )
    provider = form.chosen_provider()
    return render_template(
        "integrations/_credential_fields.html",
        form=form,
        integration=None,
        provider=provider,
        values=credential_values(provider, None),
        credential_errors={},
        stored_secrets=set(),
    )


@bp.get("/integrations/<integration_id>/edit")
def integrations_edit(integration_id):
    """The edit form: rename and replace credentials (read-only for read-only users)."""
    tenant = current_tenant()
    integration = get_for_tenant(Integration, tenant.id, integration_id)
    provider = PROVIDERS[integration.provider]
    form = IntegrationForm(data={"name": integration.name})
    form.stamp(etag_of(integration), _stored_values(integration))
    values = credential_values(provider, service.credentials_of(integration))
    return _render_form(form, integration, values)


@bp.post("/integrations/<integration_id>/edit")
@requires_write
@requires_recent_auth("save an integration's credentials")
def integrations_update(integration_id):
    """Save the edit form through the service; an empty secret keeps the stored one."""
    tenant = current_tenant()
    integration = get_for_tenant(Integration, tenant.id, integration_id)
    provider = PROVIDERS[integration.provider]
    form = IntegrationForm(data={"name": integration.name})
    values = credential_values(provider, None, request.form)
    if form.validate():
        data = {
            "name": form.name.data or "",
            "credentials": credentials_from(request.form, provider, editing=True),
        }
        with console_write(form, elsewhere=CREDENTIALS) as write:
            if form.version.data:  # saves only over the version the form was rendered from
                require_version(Integration, tenant.id, integration.id, form.version.data)
            integration, outcomes = service.update_integration(
                tenant.id, integration.id, data, current_actor()
            )
        if write.failed:
            integration = get_for_tenant(Integration, tenant.id, integration_id)
            if isinstance(write.error, PreconditionFailed):
                stale = _stale_integration(form, integration)
                return _render_form(form, integration, values, status=409, stale=stale)
            errors = credential_errors(write.error)
            return _render_form(form, integration, values, errors, write.status)
        flash(f"Integration “{integration.name}” saved.", "success")
        return see_other(url_for("console.integrations_index"))
    return _render_form(form, integration, values, status=422)


@bp.post("/integrations/<integration_id>/check")
@requires_write
def integrations_check(integration_id):
    """Test the connection now: htmx gets the outcome in place, no-JS a flash and a redirect."""
    tenant = current_tenant()
    with console_write():
        outcome = provider_checks.check_integration(tenant.id, integration_id, current_actor())
    integration = outcome.integration
    if is_fragment_request():
        return render_template("integrations/_check.html", integration=integration)
    category = "success" if outcome.result.ok else "error"
    flash(f"{integration.name}: {outcome.result.message}", category)
    return redirect_back(url_for("console.integrations_index"))


def _handover_sentences(outcomes) -> str:
    """Which channels changed status and which took over a default, in words."""
    sentences = []
    changed = [o.channel.name for o in outcomes]
    if changed:
        sentences.append("Channels that follow it: " + ", ".join(changed) + ".")
    for outcome in outcomes:
        noun = "SMS" if outcome.channel.channel_type == "sms" else "email"
        if outcome.new_default is not None:
            sentences.append(f"“{outcome.new_default.name}” is now the default {noun} channel.")
        elif outcome.lost_default:
            sentences.append(f"There is no default {noun} channel now: none is available.")
    return (" " + " ".join(sentences)) if sentences else ""


def _row_response(tenant_id: str, integration_id: str):
    """htmx: the integration's row (or nothing, when it is gone) and the flash region."""
    if not is_fragment_request():
        return redirect_back(url_for("console.integrations_index"))
    integration = db.session.scalar(
        select(Integration).where(
            Integration.id == integration_id, Integration.tenant_id == tenant_id
        )
    )
    row = ""
    if integration is not None:
        row = render_template(
            "integrations/_row.html", integration=integration, next_url=current_path()
        )
    return render_fragments(row)


def _set_status(integration_id: str, status: str):
    """Enable or disable an integration; its channels follow, the flash says which."""
    tenant = current_tenant()
    integration = get_for_tenant(Integration, tenant.id, integration_id)
    with console_write() as write:  # a refusal is flashed as an error
        integration, outcomes = service.update_integration(
            tenant.id, integration.id, {"status": status}, current_actor()
        )
    if not write.failed:
        word = "disabled" if status == "disabled" else "enabled"
        flash(f"“{integration.name}” is {word}." + _handover_sentences(outcomes), "success")
    return _row_response(tenant.id, integration_id)


@bp.post("/integrations/<integration_id>/disable")
@requires_write
def integrations_disable(integration_id):
    """Disable an integration: its channels are disabled too; the flash names new defaults."""
    return _set_status(integration_id, "disabled")


@bp.post("/integrations/<integration_id>/enable")
@requires_write
def integrations_enable(integration_id):
    """Enable an integration again; its channels become available again."""
    return _set_status(integration_id, "active")


@bp.get("/integrations/<integration_id>/delete")
@requires_write
def integrations_confirm_delete(integration_id):
    """Without JavaScript, deleting asks for confirmation here (and names channels using it)."""
    tenant = current_tenant()
    integration = get_for_tenant(Integration, tenant.id, integration_id)
    return render_template(
        "integrations/delete.html",
        integration=integration,
        channels=channels_using(tenant.id, integration_id=integration.id),
        next_url=request.args.get("next"),
    )


@bp.route("/integrations/<integration_id>/delete", methods=["POST", "DELETE"])
@requires_write
def integrations_delete(integration_id):
    """Delete an unused integration; refused (naming the channels) while channels use it."""
    tenant = current_tenant()
    integration = get_for_tenant(Integration, tenant.id, integration_id)
    name = integration.name
    with console_write() as write:  # in use: refused, the flash names the channels
        service.delete_integration(tenant.id, integration.id, current_actor())
    if not write.failed:
        flash(f"Integration “{name}” was deleted.", "success")
    return _row_response(tenant.id, integration_id)
