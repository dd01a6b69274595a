"""Integrations (DESIGN §4): one response model and one create model per provider, built from
the provider registry (``core.providers``: each provider's channel types and credential
fields), discriminated on ``provider``; one update model for all.

Component names are code-friendly and stable: ``IntegrationSendgrid``,
``IntegrationSendgridCreate`` (never the provider's prose label, which goes in descriptions)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, RootModel, WithJsonSchema, create_model

from core.crypto import decrypt_credentials
from core.models import CHANNEL_TYPES, INTEGRATION_STATUSES
from core.providers import PROVIDERS, SECRET_MASK, CredentialField, Provider, mask_credentials
from core.rules.values import clean_credentials
from core.schemas import Schema, declared, described, list_of, required_in_document, rule
from core.schemas.values import (
    Id,
    Name,
    NameInput,
    OptionalText,
    OptionalTimestamp,
    Timestamp,
    choice,
    enum,
    nullable,
)

INTEGRATION_READ_ONLY = (
    "id",
    "tenant_id",
    "created_at",
    "updated_at",
    "last_checked_at",
    "last_check",
    "unhealthy",
    "unhealthy_since",
    "failed_checks",
)


def model_name(provider: Provider, suffix: str = "") -> str:
    """``IntegrationMailgun``, ``IntegrationMailgunCreate``: from the provider's code name."""
    return "Integration" + "".join(part.title() for part in provider.name.split("_")) + suffix


# --- credentials: each provider's fields, as the registry declares them ------------------------


def credential_schema(spec: CredentialField, response: bool) -> dict:
    """One credential field; in responses secrets are always the mask."""
    if response and spec.secret:
        return {"type": "string", "const": SECRET_MASK}
    if spec.kind == "integer":
        schema: dict = {"type": "integer"}
        if spec.name == "port":
            schema.update(minimum=1, maximum=65535)
        if not response:
            # Form-encoded clients send digits as text; both are accepted.
            schema = {"anyOf": [schema, {"type": "string", "pattern": r"^\s*[0-9]+\s*$"}]}
    elif spec.kind == "boolean":
        schema = {"type": "boolean"}
    elif spec.kind == "choice":
        schema = enum(spec.choices)
    elif spec.kind == "host":
        schema = {"type": "string", "minLength": 1, "maxLength": spec.max_length}
    else:
        schema = {"type": "string", "maxLength": spec.max_length}
    if spec.default is not None:
        schema["default"] = spec.default
    if not response and not spec.required:
        schema = nullable(schema)  # null or "" removes an optional credential
    schema["description"] = spec.label + (" (secret: write-only)" if spec.secret else "")
    if spec.kind == "host":
        schema["description"] += ": a host name or an IP address"
    return schema


def _needs_credentials(provider: Provider) -> bool:
    return any(s.required and s.default is None for s in provider.fields)


def credentials_schema(provider: Provider, response: bool) -> dict:
    """The provider's credentials object (a closed object of its fields)."""
    properties = {spec.name: credential_schema(spec, response) for spec in provider.fields}
    schema: dict = {"type": "object", "properties": properties, "additionalProperties": False}
    if response:
        return schema
    required = [s.name for s in provider.fields if s.required and s.default is None]
    if required:
        schema["required"] = required
        return schema
    return nullable(schema)


def _credentials_input(provider: Provider) -> Any:
    """The provider's credentials as ``clean_credentials`` reads them (omitted: the defaults, or
    "This field is required." on each required one)."""

    def clean(value: Any, errors, _field: str) -> dict | None:
        return clean_credentials(provider, value, errors)

    return rule(clean, credentials_schema(provider, response=False))


# --- responses ----------------------------------------------------------------------------------


@declared
class IntegrationCheck(Schema):
    """The outcome of the last connection check."""

    ok: bool
    message: OptionalText
    checked_at: Timestamp


def _integration_model(provider: Provider) -> type[Schema]:
    return declared(
        create_model(
            model_name(provider),
            __base__=Schema,
            __doc__=f"An integration with {provider.label}.",
            id=(Id, ...),
            tenant_id=(Id, ...),
            name=(Name, ...),
            channel_type=(Annotated[str, WithJsonSchema(enum(provider.channel_types))], ...),
            provider=(Literal[provider.name], ...),
            credentials=(
                Annotated[dict[str, Any], WithJsonSchema(credentials_schema(provider, True))],
                ...,
            ),
            status=(Annotated[str, WithJsonSchema(enum(INTEGRATION_STATUSES))], ...),
            last_check=(IntegrationCheck | None, ...),
            unhealthy=(
                bool,
                Field(
                    description="INTEGRATION_FAILURE_CHECKS connection checks in a row failed "
                    '(scheduled or "Test connection"); a warning only: it still sends, and the '
                    "next successful check clears it."
                ),
            ),
            unhealthy_since=(OptionalTimestamp, ...),
            failed_checks=(
                int,
                Field(
                    ge=0, description="Connection checks failed in a row since the last success."
                ),
            ),
            created_at=(Timestamp, ...),
            updated_at=(Timestamp, ...),
        )
    )


RESPONSE_MODELS = {name: _integration_model(p) for name, p in PROVIDERS.items()}


def _by_provider(models: dict[str, type[Schema]], name: str, doc: str) -> type[RootModel]:
    """One of ``models``, discriminated on ``provider``."""
    variants = Union[tuple(models.values())]  # noqa: UP007 - built from the registry
    return create_model(
        name, __base__=RootModel[Annotated[variants, Field(discriminator="provider")]], __doc__=doc
    )


Integration = declared(_by_provider(RESPONSE_MODELS, "Integration", "An integration, by provider."))
IntegrationList = list_of(Integration, "IntegrationList", "integrations")


def as_integration(integration) -> Schema:
    """The integration's response model: secrets are write-only, every secret shows the mask."""
    model = RESPONSE_MODELS[integration.provider]
    checked = integration.last_checked_at
    credentials = decrypt_credentials(integration.credentials_encrypted)
    return model.model_validate(
        {
            "id": integration.id,
            "tenant_id": integration.tenant_id,
            "name": integration.name,
            "channel_type": integration.channel_type,
            "provider": integration.provider,
            "credentials": mask_credentials(integration.provider, credentials),
            "status": integration.status,
            "last_check": None
            if checked is None
            else {
                "ok": bool(integration.last_check_ok),
                "message": integration.last_check_message,
                "checked_at": checked,
            },
            "unhealthy": integration.unhealthy_since is not None,
            "unhealthy_since": integration.unhealthy_since,
            "failed_checks": integration.failed_checks or 0,
            "created_at": integration.created_at,
            "updated_at": integration.updated_at or integration.created_at,
        }
    )


# --- requests -----------------------------------------------------------------------------------


class _RequiringCredentials(Schema):
    # Omitted credentials are still read (``validate_default``: each required one is reported
    # by name), yet a caller must send them: the document says so.
    model_config = required_in_document("credentials")


def _create_model(provider: Provider) -> type[Schema]:
    """What POST /api/integrations takes for ``provider``. ``channel_type`` and ``provider``
    are judged by the rules (which provider serves which type), the rest by the fields."""
    model = create_model(
        model_name(provider, "Create"),
        __base__=_RequiringCredentials if _needs_credentials(provider) else Schema,
        __doc__=f"Creates an integration with {provider.label}.",
        name=(NameInput, ...),
        channel_type=(described(enum(provider.channel_types)), ...),
        provider=(Literal[provider.name], ...),
        credentials=(_credentials_input(provider), Field(None, validate_default=True)),
        status=(choice(INTEGRATION_STATUSES, required=False), Field("active")),
    )
    model.read_only = INTEGRATION_READ_ONLY
    return declared(model, mode="validation")


CREATE_MODELS = {name: _create_model(p) for name, p in PROVIDERS.items()}
IntegrationCreate = declared(
    _by_provider(CREATE_MODELS, "IntegrationCreate", "A new integration, by provider."),
    mode="validation",
)


class IntegrationCreateCommon(Schema):
    """The fields every provider's integration has, read when the provider is missing or
    wrong (its credentials cannot be judged then)."""

    read_only = INTEGRATION_READ_ONLY

    name: NameInput
    status: choice(INTEGRATION_STATUSES, required=False) = "active"


@declared(mode="validation")
class IntegrationUpdate(Schema):
    """A partial update: only the fields sent change."""

    read_only = INTEGRATION_READ_ONLY

    name: NameInput = None
    channel_type: Annotated[
        described(enum(CHANNEL_TYPES)), Field(description="Accepted only when unchanged.")
    ] = None
    provider: Annotated[
        described(enum(tuple(PROVIDERS))), Field(description="Accepted only when unchanged.")
    ] = None
    # Judged by the rules against the stored credentials (omitted fields and masked secrets
    # keep their value).
    credentials: Annotated[
        described(
            {
                "type": ["object", "null"],
                "additionalProperties": {"type": ["string", "integer", "boolean", "null"]},
            }
        ),
        Field(
            description="The provider's credential fields (see IntegrationCreate); omitted "
            f"fields and secrets sent as `{SECRET_MASK}` keep their value."
        ),
    ] = None
    status: choice(INTEGRATION_STATUSES, required=False) = None
