"""Console pages for channels: the table, the new/edit form, and the row actions.

Every write goes through ``core.services.channels`` (the API's functions) inside
``writes.console_write``, which commits it or puts the refusal on the form or in the flash area.
The selects offer what ``channel_queries.channel_choices`` lists: the rules' own predicates.
Row actions answer htmx with the affected rows (the changed row in place, other rows whose
default flag moved out-of-band) and the flash region; without JavaScript they are POST
forms that redirect 303 back to the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from wtforms import SelectChoice

from blueprints.console import bp
from blueprints.console.context import current_actor, current_tenant, requires_write
from blueprints.console.forms import CHANNEL_TYPE_LABELS, ChannelForm
from blueprints.console.responses import (
    current_path,
    is_fragment_request,
    redirect_back,
    render_fragments,
    render_page,
    see_other,
)
from blueprints.console.stale_edits import stale_edit
from blueprints.console.writes import console_check, console_write
from core.conditional import PreconditionFailed, etag_of, require_version
from core.errors import ValidationFailed
from core.extensions import db
from core.models import CHANNEL_STATUSES, CHANNEL_TYPES, Channel, PhoneNumber
from core.pagination import keyset_window
from core.rules import CHANNEL_TYPE_FIELDS
from core.services import channels as service
from core.services.channel_export import ExportFilters, export_response
from core.services.channel_queries import SEARCH_MAX, channel_choices, channel_list_query
from core.services.test_send import send_test_message
from core.tenancy import get_for_tenant

STATUS_LABELS = {
    "available": "Available",
    "pending_verification": "Pending verification",
    "disabled": "Disabled",
}


@dataclass
class ChannelFilters:
    """The table's filters from the query string; values that are not valid choices are ignored."""

    channel_type: str | None = None
    status: str | None = None
    q: str = ""

    @classmethod
    def from_args(cls, args) -> ChannelFilters:
        """Read ``channel_type``, ``status`` and ``q`` (what the filter form submits)."""
        channel_type = args.get("channel_type")
        status = args.get("status")
        return cls(
            channel_type=channel_type if channel_type in CHANNEL_TYPES else None,
            status=status if status in CHANNEL_STATUSES else None,
            q=(args.get("q") or "").strip()[:SEARCH_MAX],
        )

    @property
    def active(self) -> bool:
        """Whether anything narrows the table."""
        return bool(self.channel_type or self.status or self.q)

    def export_url(self) -> str:
        """The CSV download of every channel these filters keep ("Download CSV")."""
        return url_for(
            "console.channels_export",
            channel_type=self.channel_type or None,
            status=self.status or None,
            q=self.q or None,
        )

    def url(self, **extra) -> str:
        """The table's URL with these filters (and e.g. a cursor)."""
        return url_for(
            "console.channels_index",
            channel_type=self.channel_type or None,
            status=self.status or None,
            q=self.q or None,
            **extra,
        )


@bp.app_template_global()
def channel_status_label(status: str) -> str:
    """The words shown in a channel's status badge."""
    return STATUS_LABELS.get(status, status)


@bp.app_template_global()
def channel_type_label(channel_type: str) -> str:
    """Email / SMS."""
    return CHANNEL_TYPE_LABELS.get(channel_type, channel_type)


@bp.app_template_global()
def channel_type_noun(channel_type: str) -> str:
    """The type inside a sentence: "the default email channel", "the default SMS channel"."""
    return "SMS" if channel_type == "sms" else channel_type


@bp.get("/")
def home():
    """The console's start page is the channels table."""
    return redirect(url_for("console.channels_index"))


@bp.get("/channels")
def channels_index():
    """The channels table with filters, search and keyset pagination (rows only for htmx)."""
    tenant = current_tenant()
    filters = ChannelFilters.from_args(request.args)
    query = channel_list_query(
        tenant.id, channel_type=filters.channel_type, status=filters.status, q=filters.q
    )
    window = keyset_window(
        db.session,
        query,
        Channel,
        current_app.config["PAGE_SIZE"],
        after=request.args.get("cursor") or None,
        before=request.args.get("before") or None,
    )
    paged = bool(request.args.get("cursor") or request.args.get("before"))
    return render_page(
        "channels/index.html",
        "channels/_rows.html",
        window=window,
        filters=filters,
        paged=paged,
        next_url=current_path(),
        channel_types=CHANNEL_TYPES,
        statuses=CHANNEL_STATUSES,
    )


@bp.get("/channels/export.csv")
def channels_export():
    """Download, as CSV, every channel the table's filters keep (the API's export; a read, so
    support staff may)."""
    filters = ChannelFilters.from_args(request.args)
    return export_response(
        current_tenant(),
        ExportFilters(channel_type=filters.channel_type, status=filters.status, q=filters.q),
        "csv",
    )


# --- the form ---------------------------------------------------------------------------------


def _choices_for(form: ChannelForm, tenant_id: str, channel: Channel | None = None) -> None:
    """Fill the selects with what the rules let a channel of the form's type use.

    An edited channel's current integration/number stays listed (marked) even when it no
    longer qualifies, so that the form shows what the channel uses.
    """
    channel_type = channel.channel_type if channel else form.chosen_type()
    choices = channel_choices(tenant_id, channel_type, current=channel)
    form.integration_id.choices = [SelectChoice("", "Choose an integration…")] + [
        SelectChoice(
            i.id, f"{i.name} ({i.provider})" + ("" if i.status == "active" else " — disabled")
        )
        for i in choices.integrations
    ]
    if channel_type == "email":
        form.email_domain_id.choices = [SelectChoice("", "Choose a domain…")] + [
            SelectChoice(d.id, d.domain if d.status == "verified" else f"{d.domain} ({d.status})")
            for d in choices.email_domains
        ]
    else:
        form.phone_number_id.choices = [
            SelectChoice("", "Choose a number…", {"data-number": ""})
        ] + [
            SelectChoice(
                n.id,
                n.phone_number if n.status == "active" else f"{n.phone_number} (released)",
                {"data-number": n.phone_number},
            )
            for n in choices.phone_numbers
        ]


def _default_send_from_number(tenant_id: str, data: dict) -> None:
    """An empty send-from number defaults to the chosen phone number's (no-JS convenience)."""
    if (
        "phone_number_id" in data
        and not data.get("send_from_phone_number")
        and data["phone_number_id"]
    ):
        number = db.session.scalar(
            select(PhoneNumber.phone_number).where(
                PhoneNumber.id == data["phone_number_id"][:36], PhoneNumber.tenant_id == tenant_id
            )
        )
        if number:
            data["send_from_phone_number"] = number


def _changes_only(data: dict, channel: Channel) -> dict:
    """PATCH semantics for the edit form: send only what differs from the stored channel."""
    current = {
        "name": channel.name,
        "integration_id": channel.integration_id,
        "send_from_email": channel.send_from_email,
        "email_domain_id": channel.email_domain_id,
        "send_from_phone_number": channel.send_from_phone_number,
        "phone_number_id": channel.phone_number_id,
        "metadata": dict(channel.metadata_ or {}),
    }
    return {
        key: value for key, value in data.items() if key not in current or value != current[key]
    }


def _form_data(form: ChannelForm, tenant_id: str, channel: Channel | None) -> dict:
    """The API-shaped dict the form stands for (PATCH-shaped for an edit)."""
    data = form.api_data(channel)
    _default_send_from_number(tenant_id, data)
    if channel is not None:
        data = _changes_only(data, channel)
        if "send_from_phone_number" in data:
            form.send_from_phone_number.data = data["send_from_phone_number"]
    elif data.get("send_from_phone_number"):
        form.send_from_phone_number.data = data["send_from_phone_number"]
    return data


def _save(form: ChannelForm, tenant_id: str, channel: Channel | None):
    """Create or update through the service: (outcome, None), or (None, the refusal) with the
    errors on the form. An edit saves only over the version the form was rendered from."""
    data = _form_data(form, tenant_id, channel)
    if form.coercion_errors():
        # Not saved, but every rule that fails is still listed: the rules alone, no write.
        with console_check(form):
            service.validate_channel(tenant_id, data, channel)
        return None, None
    with console_write(form) as write:
        if channel is None:
            outcome = service.create_channel(tenant_id, data, current_actor())
        else:
            if form.version.data:
                require_version(Channel, tenant_id, channel.id, form.version.data)
            outcome = service.update_channel(tenant_id, channel.id, data, current_actor())
    return (None, write.error) if write.failed else (outcome, None)


def _render_form(
    form: ChannelForm, channel: Channel | None, status: int = 200, test_send=None, stale=None
):
    """The channel form page (with the test-send card's outcome, or the stale-edit notice)."""
    return (
        render_template(
            "channels/form.html", form=form, channel=channel, test_send=test_send, stale=stale
        ),
        status,
    )


def _suggest_default(form: ChannelForm, tenant_id: str) -> None:
    """ "Default channel" starts ticked when the tenant has no default of the chosen type."""
    form.is_default.data = not service.has_default(tenant_id, form.chosen_type())


@bp.route("/channels/new", methods=["GET", "POST"])
@requires_write
def channels_new():
    """The new-channel form; POST creates through the service (or re-renders with errors)."""
    tenant = current_tenant()
    form = ChannelForm()
    if request.method == "GET":
        form.channel_type.data = request.args.get("channel_type", "email")
    form.channel_type.data = form.chosen_type()
    _choices_for(form, tenant.id)
    if request.method == "GET" or "change_type" in request.form:
        # A new form, or the no-JS type switch: that type's fields, what was typed kept, no
        # errors yet.
        _suggest_default(form, tenant.id)
        return _render_form(form, None)
    shown = request.form.get("type_fields_for")
    if shown in CHANNEL_TYPES and shown != form.chosen_type():
        # The page still showed the other type's fields (the switch's answer had not arrived):
        # never save one type's fields under the other; show the chosen type's fields instead.
        _suggest_default(form, tenant.id)
        form.form_errors.append(
            f"The form was still showing the {channel_type_noun(shown)} fields. Check the"
            f" {channel_type_noun(form.chosen_type())} fields below and submit again."
        )
        return _render_form(form, None, 422)
    if form.validate():
        outcome, _ = _save(form, tenant.id, None)
        if outcome is not None:
            channel = outcome.channel
            message = f"Channel “{channel.name}” created."
            if channel.is_default:
                message += f" It is the default {channel_type_noun(channel.channel_type)} channel."
            flash(message, "success")
            return see_other(url_for("console.channels_index"))
    return _render_form(form, None, 422)


@bp.get("/channels/type-fields")
def channels_type_fields():
    """The chosen type's fields (integration, address, default) for the htmx type switch."""
    tenant = current_tenant()
    channel_type = request.args.get("channel_type", "email")
    if not is_fragment_request():
        return see_other(url_for("console.channels_new", channel_type=channel_type))
    form = ChannelForm(formdata=None)
    form.channel_type.data = channel_type
    form.channel_type.data = form.chosen_type()
    _suggest_default(form, tenant.id)
    _choices_for(form, tenant.id)
    return render_template("channels/_type_fields.html", form=form, channel=None)


def _stored_values(channel: Channel) -> dict:
    """The stored channel as the edit form shows it (its status in the page header)."""
    values = {"name": channel.name, "status": channel.status}
    values.update(
        {name: getattr(channel, name) for name in CHANNEL_TYPE_FIELDS[channel.channel_type]}
    )
    values.update(
        {
            "integration_id": channel.integration_id,
            "is_default": channel.is_default,
            "metadata": dict(channel.metadata_ or {}),
        }
    )
    return values


def _edit_form(channel: Channel) -> ChannelForm:
    """The edit form, filled from the stored channel (the posted values win on POST)."""
    values = _stored_values(channel)
    del values["status"]
    form = ChannelForm(data={"channel_type": channel.channel_type, **values})
    form.channel_type.data = channel.channel_type
    return form


def _stale_channel(form: ChannelForm, channel: Channel):
    """The notice for an edit form rendered from an older version of ``channel``."""

    def display(name, value):
        if name == "status":
            return channel_status_label(value)
        if name.endswith("_id"):
            labels = {str(choice[0]): choice[1] for choice in form[name].choices}
            return labels.get(value, value)
        return None

    labels = {name: field.label.text for name, field in form._fields.items()}
    labels["status"] = "Status"
    return stale_edit(form, "channel", etag_of(channel), _stored_values(channel), labels, display)


@bp.get("/channels/<channel_id>/edit")
def channels_edit(channel_id):
    """The edit form of one channel (read-only fields for read-only users)."""
    tenant = current_tenant()
    channel = get_for_tenant(Channel, tenant.id, channel_id)
    form = _edit_form(channel)
    form.stamp(etag_of(channel), _stored_values(channel))
    _choices_for(form, tenant.id, channel)
    return _render_form(form, channel)


@bp.post("/channels/<channel_id>/edit")
@requires_write
def channels_update(channel_id):
    """Save the edit form through the service (or re-render it with every error)."""
    tenant = current_tenant()
    channel = get_for_tenant(Channel, tenant.id, channel_id)
    form = _edit_form(channel)
    _choices_for(form, tenant.id, channel)
    if form.validate():
        outcome, error = _save(form, tenant.id, channel)
        if outcome is not None:
            flash(f"Channel “{outcome.channel.name}” saved." + _handover_text(outcome), "success")
            return see_other(url_for("console.channels_index"))
        channel = get_for_tenant(Channel, tenant.id, channel_id)  # the rollback expired it
        if isinstance(error, PreconditionFailed):
            _choices_for(form, tenant.id, channel)
            return _render_form(form, channel, 409, stale=_stale_channel(form, channel))
    return _render_form(form, channel, 422)


@bp.post("/channels/new/check-address", endpoint="channels_check_address")
@bp.post("/channels/<channel_id>/check-address", endpoint="channels_check_address")
@requires_write
def channels_check_address(channel_id=None):
    """Inline check of the send-from address (the service's rules, nothing written): the field
    with its errors."""
    tenant = current_tenant()
    channel = get_for_tenant(Channel, tenant.id, channel_id) if channel_id else None
    form = _edit_form(channel) if channel else ChannelForm()
    form.channel_type.data = channel.channel_type if channel else "email"
    if (form.send_from_email.data or "").strip():
        # The rules alone: nothing is flushed, audited or rolled back. Only this field is
        # rendered, so only its errors show.
        with console_check(form):
            service.validate_channel(tenant.id, _form_data(form, tenant.id, channel), channel)
    return render_template("channels/_send_from_email.html", form=form, channel=channel)


# --- send a test message -----------------------------------------------------------------------


@dataclass
class SendTestOutcome:
    """What the "Send test message" card shows: the recipient as typed, its errors, the outcome
    (``message`` is the provider's sentence, or why the channel cannot send)."""

    to: str = ""
    errors: list[str] = field(default_factory=list)
    ok: bool = False
    message: str = ""


@bp.post("/channels/<channel_id>/test")
@requires_write
def channels_test_send(channel_id):
    """Send one test message through the channel (the API's service, audited there); htmx gets
    the card with the outcome, a plain POST the edit page with it (422/409 when refused)."""
    tenant = current_tenant()
    get_for_tenant(Channel, tenant.id, channel_id)  # an unknown or foreign id is a 404 page
    to = request.form.get("to", "")
    outcome = SendTestOutcome(to=to)
    with console_write(report=False) as write:
        result = send_test_message(tenant.id, channel_id, to, current_actor())
    if not write.failed:
        outcome.ok, outcome.message = result.ok, result.message
    elif isinstance(write.error, ValidationFailed):
        outcome.errors = list(write.error.fields.get("to", [])) or [write.error.message]
    else:
        # 409: disabled, pending verification, or a provider without test sends.
        outcome.message = write.error.message
    status = write.status
    channel = get_for_tenant(Channel, tenant.id, channel_id)
    if is_fragment_request():
        # htmx swaps only 2xx answers: the refusal is in the fragment, not in the status.
        return render_template("channels/_test_send.html", channel=channel, test_send=outcome)
    form = _edit_form(channel)
    _choices_for(form, tenant.id, channel)
    return _render_form(form, channel, status, test_send=outcome)


# --- row actions ------------------------------------------------------------------------------


def _handover_text(outcome) -> str:
    """The flash sentence naming the channel that took over the default (or that none could)."""
    channel = outcome.channel
    label = channel_type_noun(channel.channel_type)
    if outcome.new_default is not None:
        return f" “{outcome.new_default.name}” is now the default {label} channel."
    if outcome.lost_default:
        return f" There is no default {label} channel now: no other {label} channel is available."
    return ""


def _row_action(channel_id: str, act):
    """Run ``act(tenant_id, channel) -> (outcome, message)``; answer with rows or a redirect."""
    tenant = current_tenant()
    channel = get_for_tenant(Channel, tenant.id, channel_id)
    previous_default = service.default_channel(tenant.id, channel.channel_type)
    previous_default_id = previous_default.id if previous_default else None
    touched: list[str] = [channel.id]
    with console_write() as write:  # a refusal is flashed as an error
        outcome, message = act(tenant.id, channel)
    if not write.failed:
        flash(message + _handover_text(outcome), "success")
        if outcome.new_default is not None:
            touched.append(outcome.new_default.id)
    if previous_default_id:
        touched.append(previous_default_id)
    if not is_fragment_request():
        return redirect_back(url_for("console.channels_index"))
    if db.session.scalar(select(Channel.id).where(Channel.tenant_id == tenant.id).limit(1)) is None:
        # The last channel is gone: reload the page so that it shows the empty state; the
        # flash message stays in the session for that page.
        return "", 200, {"HX-Refresh": "true"}

    next_url = current_path()
    parts = []
    for position, row_id in enumerate(dict.fromkeys(touched)):
        row = db.session.scalar(
            select(Channel).where(Channel.id == row_id, Channel.tenant_id == tenant.id)
        )
        if row is None:
            if position == 0:
                parts.append("")  # the target row was deleted: swapping in nothing removes it
            continue
        parts.append(
            render_template("channels/_row.html", channel=row, oob=position > 0, next_url=next_url)
        )
    return render_fragments(*parts)


@bp.post("/channels/<channel_id>/default")
@requires_write
def channels_make_default(channel_id):
    """Make a channel its type's default; the previous default's row updates too."""

    def act(tenant_id, channel):
        outcome = service.update_channel(
            tenant_id, channel.id, {"is_default": True}, current_actor()
        )
        label = channel_type_noun(channel.channel_type)
        return outcome, f"“{channel.name}” is now the default {label} channel."

    return _row_action(channel_id, act)


@bp.post("/channels/<channel_id>/disable")
@requires_write
def channels_disable(channel_id):
    """Disable a channel; when it was the default, the flash names the one that took over."""

    def act(tenant_id, channel):
        outcome = service.update_channel(
            tenant_id, channel.id, {"status": "disabled"}, current_actor()
        )
        return outcome, f"“{channel.name}” is disabled."

    return _row_action(channel_id, act)


@bp.post("/channels/<channel_id>/enable")
@requires_write
def channels_enable(channel_id):
    """Enable a disabled channel again."""

    def act(tenant_id, channel):
        outcome = service.update_channel(
            tenant_id, channel.id, {"status": "available"}, current_actor()
        )
        message = f"“{channel.name}” is enabled."
        if outcome.channel.status == "pending_verification":
            message += " It can send once its email domain is verified."
        return outcome, message

    return _row_action(channel_id, act)


@bp.get("/channels/<channel_id>/delete")
@requires_write
def channels_confirm_delete(channel_id):
    """Without JavaScript, deleting asks for confirmation on this page."""
    tenant = current_tenant()
    channel = get_for_tenant(Channel, tenant.id, channel_id)
    # Deleting a default hands the role over; the page names the successor, or says there is none.
    successor = (
        service.default_successor(tenant.id, channel.channel_type, channel.id)
        if channel.is_default
        else None
    )
    return render_template(
        "channels/delete.html",
        channel=channel,
        successor=successor,
        next_url=request.args.get("next"),
    )


@bp.route("/channels/<channel_id>/delete", methods=["POST", "DELETE"])
@requires_write
def channels_delete(channel_id):
    """Delete a channel (htmx: DELETE removes its row); the flash names the new default."""

    def act(tenant_id, channel):
        name = channel.name
        outcome = service.delete_channel(tenant_id, channel.id, current_actor())
        return outcome, f"“{name}” was deleted."

    return _row_action(channel_id, act)
