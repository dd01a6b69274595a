"""core.schemas: one pydantic declaration gives the parser, the serializer and the component."""

from __future__ import annotations

import inspect
from typing import Annotated

import pytest
from pydantic import AfterValidator, Field, PlainValidator, ValidationError

import core.openapi
from core import rules, schemas
from core.errors import FieldErrors, ValidationFailed
from core.openapi import ResourceDocs, build_openapi
from core.providers import PROVIDERS
from core.schemas import (
    Schema,
    _field_adapter,
    component_schemas,
    declared,
    json_schema,
    parse_body,
    parse_fields,
)
from core.schemas import channels as channel_shapes
from core.schemas import email_domains as domain_shapes
from core.schemas import integrations as integration_shapes
from core.schemas import phone_numbers as number_shapes


def _even(value: int) -> int:
    if value % 2:
        raise ValueError("Must be an even number.")
    return value


class Sample(Schema):
    name: Annotated[str, Field(min_length=1, max_length=5, description="A short name")]
    count: Annotated[int, AfterValidator(_even)] = 0


def test_parse_body_reports_every_field_at_once_with_the_rules_messages():
    """Unknown fields, missing fields and a validator's own sentence, all in one 422."""
    with pytest.raises(ValidationFailed) as caught:
        parse_body(Sample, {"count": 3, "colour": "red"}, "The sample could not be created.")
    assert caught.value.fields == {
        "name": ["This field is required."],
        "count": ["Must be an even number."],
        "colour": ["Unknown field."],
    }
    assert str(caught.value) == "The sample could not be created."
    assert parse_body(Sample, {"name": "ab", "count": 4}) == Sample(name="ab", count=4)


def test_generated_schema_has_no_titles_and_refs_point_at_components():
    """Component names come from class names; no prose title reaches a client generator."""

    class Outer(Schema):
        inner: Sample

    schema, definitions = json_schema(Outer)
    assert schema["properties"]["inner"] == {"$ref": "#/components/schemas/Sample"}
    assert "title" not in str(schema) + str(definitions)
    assert definitions["Sample"]["properties"]["name"]["description"] == "A short name"


def test_two_models_may_not_claim_one_component_name(monkeypatch):
    """A second class declared under a taken name is a programming error."""
    monkeypatch.setattr(schemas, "_DECLARED", {})
    declared(Sample)
    declared(Sample)  # the same class again is fine

    class Sample2(Schema):
        pass

    Sample2.__name__ = "Sample"
    with pytest.raises(LookupError):
        declared(Sample2)


# --- the resources' declarations ---

# (request model, the response model(s) of what it creates or changes)
REQUEST_RESPONSE = [
    (channel_shapes.EmailChannelCreate, channel_shapes.EmailChannel),
    (channel_shapes.SmsChannelCreate, channel_shapes.SmsChannel),
    (channel_shapes.ChannelUpdate, channel_shapes.EmailChannel),
    (channel_shapes.ChannelUpdate, channel_shapes.SmsChannel),
    (domain_shapes.EmailDomainCreate, domain_shapes.EmailDomain),
    (number_shapes.PhoneNumberCreate, number_shapes.PhoneNumber),
    (integration_shapes.IntegrationUpdate, integration_shapes.RESPONSE_MODELS["smtp"]),
    *(
        (integration_shapes.CREATE_MODELS[name], integration_shapes.RESPONSE_MODELS[name])
        for name in PROVIDERS
    ),
]
HOSTILE_VALUES = [None, "", "   ", 5, 1.5, True, [], {}, ["sms", "fax"], "x" * 600, "\x07bell"]


def _rule_fields():
    """(model, field name, cleaner) of every request field typed with ``rule``."""
    for name, (model, mode) in sorted(schemas._DECLARED.items()):
        if mode != "validation" or not hasattr(model, "model_fields"):
            continue
        for field_name, field in model.model_fields.items():
            for marker in field.metadata:
                if isinstance(marker, PlainValidator) and hasattr(marker.func, "cleaner"):
                    yield pytest.param(
                        model, field_name, marker.func.cleaner, id=f"{name}.{field_name}"
                    )


def test_the_document_holds_exactly_the_declared_models(app):
    """Every component schema of /api/openapi.json is a declared model's; core/openapi.py
    writes none by hand."""
    document = build_openapi(app)
    assert document["components"]["schemas"] == component_schemas()
    source = inspect.getsource(core.openapi)
    assert '"properties"' not in source and '"additionalProperties"' not in source


@pytest.mark.parametrize(("model", "field_name", "cleaner"), list(_rule_fields()))
def test_a_request_field_says_exactly_what_its_rule_cleaner_says(model, field_name, cleaner):
    """For hostile values, the model's messages (and keys) are the rules cleaner's own."""
    for value in HOSTILE_VALUES:
        expected = FieldErrors()
        cleaned = cleaner(value, expected, field_name)
        got = FieldErrors()
        values = parse_fields(model, {field_name: value}, got)
        messages = {k: v for k, v in got.as_dict().items() if k.split(".")[0] == field_name}
        assert messages == expected.as_dict(), (field_name, value)
        if not expected:
            assert values[field_name] == cleaned


@pytest.mark.parametrize(
    ("request_model", "response_model"),
    REQUEST_RESPONSE,
    ids=[f"{a.__name__}-{b.__name__}" for a, b in REQUEST_RESPONSE],
)
def test_what_a_response_shows_and_a_request_cannot_set_is_read_only(request_model, response_model):
    """Each response field a request may not send is refused as read-only, not as unknown."""
    for field_name in set(response_model.model_fields) - set(request_model.model_fields):
        errors = FieldErrors()
        parse_fields(request_model, {field_name: "x"}, errors)
        assert errors.as_dict()[field_name] == ["This field is read-only."], field_name
    errors = FieldErrors()
    parse_fields(request_model, {"colour": "red"}, errors)
    assert errors.as_dict()["colour"] == ["Unknown field."]


def test_a_failed_field_does_not_hide_the_values_that_passed():
    """parse_fields keeps the cleaned values of the fields that passed, for the cross-row rules."""
    errors = FieldErrors()
    values = parse_fields(
        channel_shapes.EmailChannelCreate,
        {
            "name": "  Support  ",
            "channel_type": "email",
            "integration_id": 7,
            "send_from_email": "Support@Example.COM",
            "email_domain_id": "d-1",
            "id": "mine",
        },
        errors,
    )
    assert errors.as_dict() == {
        "integration_id": ["Must be a string."],
        "id": ["This field is read-only."],
    }
    assert values["name"] == "Support"
    address = rules.parse_email_address("Support@Example.COM", FieldErrors(), "send_from_email")
    assert values["send_from_email"] == address and address[1] == "example.com"
    assert values["email_domain_id"] == "d-1"
    assert "integration_id" not in values and values["metadata"] is None


def test_field_validators_are_built_once():
    """A field read alone reuses one TypeAdapter: nothing is rebuilt per request."""
    model = channel_shapes.ChannelUpdate
    assert _field_adapter(model, "name") is _field_adapter(model, "name")


def test_credentials_errors_keep_their_nested_keys():
    """A provider's credential errors are keyed ``credentials.<field>``, as the rules key them."""
    errors = FieldErrors()
    parse_fields(
        integration_shapes.CREATE_MODELS["smtp"],
        {"name": "SMTP", "channel_type": "email", "provider": "smtp", "credentials": {"port": 0}},
        errors,
    )
    assert errors.as_dict() == {
        "credentials.port": ["Must be between 1 and 65535."],
        "credentials.host": ["This field is required."],
    }
    document = integration_shapes.CREATE_MODELS["smtp"].model_json_schema()
    assert "credentials" in document["required"]


def test_none_defaults_are_not_documented():
    """An optional field documents no `default: null` (it may be omitted, not sent as null)."""
    schema, _ = json_schema(channel_shapes.ChannelUpdate, "validation")
    assert not any("default" in field for field in schema["properties"].values())
    created, _ = json_schema(number_shapes.PhoneNumberCreate, "validation")
    assert created["properties"]["create_channel"]["default"] is True


def test_resource_docs_take_a_model_or_a_component_name():
    """Routes name their models (or, as before, component names); lists default to <X>List."""
    by_name = ResourceDocs("Channels", "Channel", "channel", "channels", "channel_id")
    by_model = ResourceDocs("Channels", channel_shapes.Channel, "channel", "channels", "channel_id")
    for docs in (by_name, by_model):
        ok = docs.listing("listChannels", "List channels").ok[200]
        assert ok["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ChannelList"
        }


@pytest.mark.parametrize("channel_type", ["email", "sms"])
def test_the_documented_seed_examples_follow_the_declarations(channel_type):
    """The examples of POST /api/channels are a valid body and a valid channel of the models."""
    request = channel_shapes.SEED_CREATE_EXAMPLES[channel_type]["value"]
    errors = FieldErrors()
    parse_fields(channel_shapes.CREATE_MODELS[channel_type], request, errors)
    assert not errors
    response = channel_shapes.SEED_CHANNEL_EXAMPLES[channel_type]["value"]
    rendered = schemas.render(channel_shapes.Channel.model_validate(response))
    assert list(rendered.items()) == list(response.items())


def _rendered_like_the_model(model, values: dict) -> dict:
    """render_values without the suite's own check, compared with the model's validated dump."""
    checking = schemas.CHECK_RENDERED
    schemas.CHECK_RENDERED = False
    try:
        fast = schemas.render_values(model, values)
    finally:
        schemas.CHECK_RENDERED = checking
    slow = schemas.render(model.model_validate(values))
    assert fast == slow
    assert list(fast) == list(slow)  # the declaration's order, as the document shows it
    return fast


def test_render_values_is_the_models_own_dump_without_validating():
    from datetime import UTC, datetime, timedelta, timezone

    from core.schemas import webhooks as webhook_shapes
    from core.schemas.errors import Error, ErrorDetail

    created = datetime(2026, 12, 2, 11, 0, 0, 123456, tzinfo=UTC)
    elsewhere = created.astimezone(timezone(timedelta(hours=-5)))
    channel = {
        "updated_at": elsewhere,  # given out of order, rendered in the declaration's
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "123e4567-e89b-12d3-a456-426614174001",
        "name": "Support",
        "channel_type": "sms",
        "integration_id": "123e4567-e89b-12d3-a456-426614174002",
        "send_from_phone_number": "+15551234567",
        "phone_number_id": "123e4567-e89b-12d3-a456-426614174003",
        "status": "available",
        "is_default": True,
        "metadata": {"team": "ops", "n": 1},
        "created_at": created,
    }
    out = _rendered_like_the_model(channel_shapes.SmsChannel, channel)
    assert out["created_at"] == out["updated_at"] == "2026-12-02T11:00:00Z"
    assert list(out)[0] == "id"
    preview = {k: v for k, v in channel.items() if k not in ("id", "created_at", "updated_at")}
    assert "id" not in _rendered_like_the_model(channel_shapes.SmsChannelPreview, preview)
    endpoint = {
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "tenant_id": "123e4567-e89b-12d3-a456-426614174001",
        "url": "https://example.com/hook",
        "description": "",
        "events": ["*"],
        "status": "disabled",
        "disabled_reason": "failing",
        "failing_since": created,
        "previous_secret_expires_at": None,
        "created_at": created,
        "updated_at": created,
    }
    out = _rendered_like_the_model(webhook_shapes.WebhookEndpoint, endpoint)
    assert out["failing_since"] == "2026-12-02T11:00:00Z"
    assert out["previous_secret_expires_at"] is None
    _rendered_like_the_model(
        webhook_shapes.WebhookEndpointWithSecret, {**endpoint, "secret": "whsec_abc="}
    )
    _rendered_like_the_model(
        Error, {"error": {"code": "validation_error", "message": "No.", "fields": {"a": ["b"]}}}
    )
    assert "fields" not in _rendered_like_the_model(ErrorDetail, {"code": "x", "message": "y"})


def test_the_suite_checks_every_rendered_object_by_its_model():
    assert schemas.CHECK_RENDERED  # set by tests/conftest.py
    with pytest.raises(ValidationError):  # not a boolean, not a string: the model refuses them
        schemas.render_values(channel_shapes.TestMessageResult, {"ok": "maybe", "message": 2})
