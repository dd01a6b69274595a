"""Console forms. WTForms does HTML coercion, rendering and CSRF — never the channel rules.

A form turns what the browser sent into the API-shaped dict (``ChannelForm.api_data``), the
view hands that to the same service function as the API inside ``writes.console_write``, and
``apply_service_errors`` (called by it) puts the service's field errors on
``form.<field>.errors``. Select fields do not check their choices (``validate_choice=False``):
whether an id is the tenant's is the service's call.
"""

from __future__ import annotations

import json

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.utils import unset_value
from wtforms.validators import InputRequired

from blueprints.console.stale_edits import VersionedForm
from core.errors import ServiceError
from core.models import CHANNEL_TYPES
from core.rules import CHANNEL_TYPE_FIELDS

CHANNEL_TYPE_LABELS = {"email": "Email", "sms": "SMS"}
METADATA_BLANK_ROWS = 3  # empty rows offered so that metadata can be added without JavaScript


class LoginForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=[InputRequired("Enter your email address.")])
    password = PasswordField("Password", validators=[InputRequired("Enter your password.")])


def metadata_text(value: object) -> str:
    """How a metadata value is shown in a text input: strings as-is, others as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


class MetadataField(Field):
    """Metadata as key/value rows, posted as repeated ``metadata-key`` / ``metadata-value``.

    ``data`` is the list of ``(key, value)`` rows as typed (for re-rendering, nothing lost);
    ``to_metadata(current)`` builds the API ``metadata`` object: fully blank rows are
    skipped; values are strings, except that a non-string value already stored (written
    through the API, e.g. ``5`` or ``true``) keeps its type while its text is unchanged.
    """

    def process(self, formdata, data=unset_value, extra_filters=None):
        """Read the rows from the submitted form, or from the stored metadata object."""
        self.process_errors = []
        if data is unset_value:
            data = self.default() if callable(self.default) else self.default
        self.object_data = data
        if formdata is not None:
            keys = formdata.getlist(f"{self.name}-key")
            values = formdata.getlist(f"{self.name}-value")
            values += [""] * (len(keys) - len(values))
            self.data = list(zip(keys, values, strict=False))
        else:
            self.data = [(key, metadata_text(value)) for key, value in (data or {}).items()]

    def rows(self) -> list[tuple[str, str]]:
        """The rows to render: the typed (non-blank) ones, then a few blank ones."""
        typed = [(key, value) for key, value in self.data if key.strip() or value.strip()]
        return typed + [("", "")] * METADATA_BLANK_ROWS

    def to_metadata(self, current: dict | None = None) -> dict:
        """The metadata object; a key typed twice is a form error (JSON keys are unique)."""
        current = current or {}
        result: dict = {}
        for key, value in self.data:
            if not key.strip() and not value.strip():
                continue
            key = key.strip()
            if key in result:
                self.errors.append(f"The key “{key}” appears more than once.")
                continue
            stored = current.get(key)
            keep_type = not isinstance(stored, str) and key in current
            result[key] = stored if keep_type and metadata_text(stored) == value else value
        return result


class ChannelForm(VersionedForm):
    """New/edit channel: coercion and rendering only; the rules are the service's."""

    name = StringField("Name")
    channel_type = SelectField(
        "Channel type",
        choices=[SelectChoice(t, CHANNEL_TYPE_LABELS[t]) for t in CHANNEL_TYPES],
        default="email",
        validate_choice=False,
    )
    integration_id = SelectField("Integration", choices=[], validate_choice=False)
    send_from_email = StringField("Send from address")
    email_domain_id = SelectField("Email domain", choices=[], validate_choice=False)
    send_from_phone_number = StringField("Send from number")
    phone_number_id = SelectField("Phone number", choices=[], validate_choice=False)
    is_default = BooleanField("Default channel")
    metadata = MetadataField("Metadata")

    def chosen_type(self) -> str:
        """The channel type the form is about (email when nothing valid was chosen)."""
        value = self.channel_type.data
        return value if value in CHANNEL_TYPES else "email"

    def api_data(self, channel=None) -> dict:
        """The API-shaped dict: what POST /api/channels (or PATCH, for ``channel``) receives.

        Only the chosen type's fields are sent. On edit the type is not sent (it cannot
        change), and ``is_default`` only when it is being switched on.
        """
        channel_type = channel.channel_type if channel is not None else self.chosen_type()
        data = {"name": self.name.data or "", "integration_id": self.integration_id.data or ""}
        if channel is None:
            data["channel_type"] = channel_type
        for field_name in CHANNEL_TYPE_FIELDS[channel_type]:
            data[field_name] = (self[field_name].data or "").strip()
        if channel is None:
            data["is_default"] = bool(self.is_default.data)
        elif self.is_default.data and not channel.is_default:
            data["is_default"] = True
        data["metadata"] = self.metadata.to_metadata(channel.metadata_ if channel else None)
        return data

    def coercion_errors(self) -> dict[str, list[str]]:
        """Errors the form itself found while building the dict (e.g. a repeated key)."""
        return {name: list(field.errors) for name, field in self._fields.items() if field.errors}


def apply_service_errors(
    form: FlaskForm, exc: ServiceError, elsewhere: tuple[str, ...] = ()
) -> None:
    """Put each field's messages on ``form.<field>.errors``; the rest on ``form.form_errors``.

    Fields named in ``elsewhere`` (and their dotted children, ``credentials.host``) are left
    out: the page renders those errors itself.
    """
    for field_name, messages in exc.fields.items():
        if field_name.split(".", 1)[0] in elsewhere:
            continue
        field = form._fields.get(field_name)
        target = field.errors if field is not None and field_name != "csrf_token" else None
        if target is None:
            form.form_errors.extend(messages)
            continue
        if isinstance(target, tuple):  # WTForms uses an immutable tuple before validation
            field.errors = target = list(target)
        for message in messages:
            if message not in target:
                target.append(message)
    if not any(form._fields[name].errors for name in form._fields) and not form.form_errors:
        form.form_errors.append(exc.message)
