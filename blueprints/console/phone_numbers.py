"""Console pages for phone numbers: add (country + national number), the SMS channel it
created, release and delete.

Writes go through ``core.services.phone_numbers`` (which turns "(415) 555-0123" with country
US into +14155550123 through ``core.rules.normalize_phone_number`` and creates the SMS
channel) and commit here.
"""

from __future__ import annotations

import phonenumbers
from flask import current_app, flash, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.widgets import CheckboxInput, ListWidget

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
from blueprints.console.writes import console_write
from core import rules
from core.extensions import db
from core.models import Channel, Integration, PhoneNumber
from core.pagination import keyset_window
from core.rules import CAPABILITIES
from core.services import phone_numbers as service
from core.services.channels import channels_using
from core.tenancy import get_for_tenant

# Names of the countries most tenants send from; every other region phonenumbers knows is
# listed by its ISO code (the stdlib has no country names and a dependency for labels is
# not worth it).
COUNTRY_NAMES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "IE": "Ireland",
    "AU": "Australia",
    "NZ": "New Zealand",
    "DE": "Germany",
    "FR": "France",
    "ES": "Spain",
    "IT": "Italy",
    "NL": "Netherlands",
    "BE": "Belgium",
    "CH": "Switzerland",
    "AT": "Austria",
    "SE": "Sweden",
    "NO": "Norway",
    "DK": "Denmark",
    "FI": "Finland",
    "PL": "Poland",
    "PT": "Portugal",
    "BR": "Brazil",
    "MX": "Mexico",
    "AR": "Argentina",
    "IN": "India",
    "JP": "Japan",
    "SG": "Singapore",
    "HK": "Hong Kong",
    "ZA": "South Africa",
    "IL": "Israel",
    "AE": "United Arab Emirates",
}
CAPABILITY_LABELS = {"sms": "SMS", "voice": "Voice"}


def country_choices() -> list[SelectChoice]:
    """Named countries first (alphabetically), then every other region by its code."""

    def label(code: str) -> str:
        prefix = phonenumbers.country_code_for_region(code)
        return f"{COUNTRY_NAMES.get(code, code)} (+{prefix})"

    named = sorted(COUNTRY_NAMES, key=lambda code: COUNTRY_NAMES[code])
    others = sorted(set(phonenumbers.SUPPORTED_REGIONS) - set(COUNTRY_NAMES))
    return [SelectChoice("", "Number starts with + (international)")] + [
        SelectChoice(code, label(code)) for code in named + others
    ]


class PhoneNumberForm(FlaskForm):
    """Country, the number as people type it, integration, capabilities, auto channel."""

    country = SelectField("Country", default="US", validate_choice=False)
    phone_number = StringField("Phone number")
    integration_id = SelectField("SMS integration", choices=[], validate_choice=False)
    capabilities = SelectMultipleField(
        "Capabilities",
        choices=[SelectChoice(c, CAPABILITY_LABELS[c]) for c in CAPABILITIES],
        default=["sms"],
        validate_choice=False,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    create_channel = BooleanField("Create its SMS channel", default=True)

    def api_data(self) -> dict:
        """What POST /api/phone_numbers receives."""
        data = {
            "phone_number": self.phone_number.data or "",
            "integration_id": self.integration_id.data or "",
            "capabilities": list(self.capabilities.data or []),
            "create_channel": bool(self.create_channel.data),
        }
        if self.country.data:
            data["country"] = self.country.data
        return data


def _fill_choices(form: PhoneNumberForm, tenant_id: str) -> None:
    """The country select, and the integrations an SMS channel may use (the rules' own
    predicate, ``rules.integration_refusal``): those a number with its channel can be on."""
    form.country.choices = country_choices()
    integrations = db.session.scalars(
        select(Integration)
        .where(Integration.tenant_id == tenant_id)
        .order_by(Integration.name, Integration.id)
    )
    form.integration_id.choices = [SelectChoice("", "Choose an integration…")] + [
        SelectChoice(i.id, f"{i.name} ({i.provider})")
        for i in integrations
        if rules.integration_refusal(i, "sms") is None
    ]


def _channels_by_number(tenant_id: str, numbers: list[PhoneNumber]) -> dict[str, list[Channel]]:
    """The SMS channels of each number, in one query."""
    if not numbers:
        return {}
    channels = db.session.scalars(
        select(Channel)
        .where(Channel.tenant_id == tenant_id, Channel.phone_number_id.in_([n.id for n in numbers]))
        .order_by(Channel.created_at, Channel.id)
    )
    result: dict[str, list[Channel]] = {}
    for channel in channels:
        result.setdefault(channel.phone_number_id, []).append(channel)
    return result


@bp.get("/phone-numbers")
def phone_numbers_index():
    """The tenant's numbers with their SMS channels, newest first, in keyset pages: numbers are
    the one resource a tenant may hold by the thousand (bulk provisioning)."""
    tenant = current_tenant()
    window = keyset_window(
        db.session,
        select(PhoneNumber).where(PhoneNumber.tenant_id == tenant.id),
        PhoneNumber,
        current_app.config["PAGE_SIZE"],
        after=request.args.get("cursor") or None,
        before=request.args.get("before") or None,
    )
    return render_page(
        "phone_numbers/index.html",
        window=window,
        numbers=window.rows,
        channels=_channels_by_number(tenant.id, window.rows),
        next_url=current_path(),
    )


@bp.route("/phone-numbers/new", methods=["GET", "POST"])
@requires_write
def phone_numbers_new():
    """Add a number: POST creates it (and its SMS channel) through the service."""
    tenant = current_tenant()
    form = PhoneNumberForm()
    _fill_choices(form, tenant.id)
    if request.method == "GET":
        return render_template("phone_numbers/form.html", form=form)
    if form.validate():
        with console_write(form) as write:
            outcome = service.add_phone_number(tenant.id, form.api_data(), current_actor())
        if write.failed:
            return render_template("phone_numbers/form.html", form=form), write.status
        number = outcome.phone_number
        message = f"Phone number {number.phone_number} added."
        if outcome.channel is not None:
            message += f" Its SMS channel “{outcome.channel.name}” was created."
        flash(message, "success")
        return see_other(url_for("console.phone_numbers_show", phone_number_id=number.id))
    return render_template("phone_numbers/form.html", form=form), 422


@bp.get("/phone-numbers/<phone_number_id>")
def phone_numbers_show(phone_number_id):
    """One number: its integration, capabilities, status and the SMS channels using it."""
    tenant = current_tenant()
    number = get_for_tenant(PhoneNumber, tenant.id, phone_number_id)
    return render_template(
        "phone_numbers/show.html",
        number=number,
        channels=channels_using(tenant.id, phone_number_id=number.id),
    )


def _row_or_redirect(tenant_id: str, phone_number_id: str, removed: bool):
    """htmx: the number's row (nothing when removed) and the flash; no-JS: 303 back."""
    if not is_fragment_request():
        return redirect_back(url_for("console.phone_numbers_index"))
    if removed:
        return render_fragments("")
    number = get_for_tenant(PhoneNumber, tenant_id, phone_number_id)
    return render_fragments(
        render_template(
            "phone_numbers/_row.html",
            number=number,
            channels=_channels_by_number(tenant_id, [number]),
            next_url=current_path(),
        )
    )


@bp.get("/phone-numbers/<phone_number_id>/release")
@requires_write
def phone_numbers_confirm_release(phone_number_id):
    """Without JavaScript, releasing asks for confirmation here."""
    tenant = current_tenant()
    number = get_for_tenant(PhoneNumber, tenant.id, phone_number_id)
    return render_template(
        "phone_numbers/confirm.html",
        number=number,
        action="release",
        channels=channels_using(tenant.id, phone_number_id=number.id),
        next_url=request.args.get("next"),
    )


@bp.post("/phone-numbers/<phone_number_id>/release")
@requires_write
def phone_numbers_release(phone_number_id):
    """Release a number: it stays listed as released and its channels are disabled."""
    tenant = current_tenant()
    with console_write():
        number, outcomes = service.release_phone_number(tenant.id, phone_number_id, current_actor())
    message = f"{number.phone_number} was released."
    disabled = [o.channel.name for o in outcomes]
    if disabled:
        message += " Disabled channels: " + ", ".join(disabled) + "."
    for outcome in outcomes:
        if outcome.new_default is not None:
            message += f" “{outcome.new_default.name}” is now the default SMS channel."
        elif outcome.lost_default:
            message += " There is no default SMS channel now: none is available."
    flash(message, "success")
    return _row_or_redirect(tenant.id, number.id, removed=False)


@bp.get("/phone-numbers/<phone_number_id>/delete")
@requires_write
def phone_numbers_confirm_delete(phone_number_id):
    """Without JavaScript, deleting asks for confirmation here (and names channels using it)."""
    tenant = current_tenant()
    number = get_for_tenant(PhoneNumber, tenant.id, phone_number_id)
    return render_template(
        "phone_numbers/confirm.html",
        number=number,
        action="delete",
        channels=channels_using(tenant.id, phone_number_id=number.id),
        next_url=request.args.get("next"),
    )


@bp.route("/phone-numbers/<phone_number_id>/delete", methods=["POST", "DELETE"])
@requires_write
def phone_numbers_delete(phone_number_id):
    """Delete a number no channel uses; refused (naming the channels) otherwise."""
    tenant = current_tenant()
    number = get_for_tenant(PhoneNumber, tenant.id, phone_number_id)
    label = number.phone_number
    with console_write() as write:  # in use: refused, the flash names the channels
        service.delete_phone_number(tenant.id, number.id, current_actor())
    removed = not write.failed
    if removed:
        flash(f"{label} was deleted.", "success")
    return _row_or_redirect(tenant.id, phone_number_id, removed)
