"""The OpenAPI 3.1 document of the JSON API (DESIGN §4), served at GET /api/openapi.json.

The document is built from the same constants the rules use (``core.rules``, ``core.models``,
``core.providers``), so a limit changed there changes here. ``tests/api/test_openapi.py`` keeps
it true: every route under /api must be documented, real responses must match the schemas, and
schemathesis fuzzes every operation against it.

An operation is declared on its route, where the route is defined (``documented``), mostly
through its resource's ``ResourceDocs``; ``build_openapi`` assembles the paths from the URL map
and adds the component schemas below. E.g.::

    @bp.post("/integrations/<integration_id>/check")
    @documented(INTEGRATIONS.changing("checkIntegration", "Check an integration's credentials",
                                      "The integration with the outcome in `last_check`.",
                                      body_optional=True))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.http import MAX_BODY_BYTES, REQUEST_ID_PATTERN
from core.models import (
    CHANNEL_STATUSES,
    CHANNEL_TYPES,
    DNS_RECORD_STATUSES,
    EMAIL_DOMAIN_STATUSES,
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    INTEGRATION_STATUSES,
    PHONE_NUMBER_STATUSES,
)
from core.pagination import LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX
from core.providers import PROVIDERS, SECRET_MASK, CredentialField, Provider
from core.rules import (
    CAPABILITIES,
    CHANNEL_STATUS_CHOICES,
    CHANNEL_TYPE_FIELDS,
    CONTROL_CHARACTERS,
    E164_PATTERN,
    METADATA_KEY_MAX,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX,
    NAME_MAX,
)
from core.schemas import component_schemas as declared_components
from core.services.audit import ACTOR_TYPES, RESOURCE_TYPES

API_VERSION = "1.0.0"
DOMAIN_MAX = 253
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
# The rules' own character class, negated: a string without control characters.
NO_CONTROL_CHARACTERS = "^[^" + CONTROL_CHARACTERS.pattern[1:-1] + "]*$"
# Query booleans: true/false (any case) or 1/0, as ``blueprints.api.query_bool`` reads them.
QUERY_BOOLEAN_PATTERN = r"^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)$"

ERROR_DESCRIPTIONS = {
    400: "Bad request: the body is not JSON or not an object, JSON or a query parameter "
    "contains a NUL character (U+0000), or a query parameter or header is malformed "
    "(`bad_request`).",
    401: "No API key, or an unknown or revoked one (`unauthorized`).",
    403: "A `read` key was used for a write (`forbidden`).",
    404: "The id in the path is unknown, malformed, or another tenant's (`not_found`).",
    409: "The request conflicts with the current state (`conflict`), or an Idempotency-Key was "
    "reused with another request (`idempotency_conflict`).",
    413: f"The body is larger than {MAX_BODY_BYTES // 1024} KiB (`payload_too_large`).",
    415: "A write body was sent without `Content-Type: application/json` "
    "(`unsupported_media_type`).",
    422: "One or more rules failed; `error.fields` lists every failing field at once "
    "(`validation_error`).",
    429: (
        "A rate limit was hit (`rate_limited`): the API key's, or that of failed "
        "authentications from the client's address; retry after `Retry-After` seconds."
    ),
    500: "An unexpected error; it was logged and no detail leaks (`internal_error`).",
    503: "The database is briefly unavailable; retry after `Retry-After` seconds "
    "(`service_unavailable`).",
}

# Error statuses by kind of operation; an operation lists the ones that can happen to it.
SERVER_ERRORS = (429, 500, 503)
READ_ERRORS = (400, 401, *SERVER_ERRORS)
ID_READ_ERRORS = (400, 401, 404, *SERVER_ERRORS)
BODY_ERRORS = (400, 401, 403, 409, 413, 415, 422, *SERVER_ERRORS)
ID_BODY_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, *SERVER_ERRORS)
ID_DELETE_ERRORS = (400, 401, 403, 404, 409, *SERVER_ERRORS)


# --- small builders -------------------------------------------------------------------------


def ref(name: str) -> dict:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    """``schema`` or null (OpenAPI 3.1 / JSON Schema 2020-12 style)."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict, required: tuple[str, ...] | list[str] = (), **extra) -> dict:
    """A closed object: only the listed properties are allowed."""
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def body(
    schema_name: str,
    description: str = "OK",
    headers: tuple[str, ...] = (),
    examples: dict | None = None,
) -> dict:
    """A JSON response with a component schema, the named response headers and examples."""
    content: dict = {"schema": ref(schema_name)}
    if examples:
        content["examples"] = examples
    return {
        "description": description,
        "headers": {name: {"$ref": f"#/components/headers/{name}"} for name in headers},
        "content": {"application/json": content},
    }


def no_content(description: str, headers: tuple[str, ...] = ()) -> dict:
    """A response without a body."""
    return {
        "description": description,
        "headers": {name: {"$ref": f"#/components/headers/{name}"} for name in headers},
    }


def query(name: str, schema: dict, description: str) -> dict:
    """An optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def blank_or(schema: dict) -> dict:
    """A filter that may also be sent blank (a plain GET form's empty field): no filter then."""
    return {"anyOf": [schema, {"type": "string", "pattern": r"^\s*$"}]}


def path_id(name: str, what: str) -> dict:
    """The id of a resource in the path."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": f"The {what}'s id (a UUID). An unknown, malformed or other tenant's "
        "id is 404.",
    }


ID = {"type": "string", "format": "uuid"}
TIMESTAMP = {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}
NAME = {"type": "string", "minLength": 1, "maxLength": NAME_MAX}
CHANNEL_TYPE = {"type": "string", "enum": list(CHANNEL_TYPES)}

LIMIT = query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": LIST_LIMIT_MAX, "default": LIST_LIMIT_DEFAULT},
    "Page size.",
)
CURSOR = query(
    "cursor",
    {"type": "string"},
    "The `next_cursor` of the previous page; anything else is a 400.",
)
QUERY_BOOLEAN = {"type": "string", "pattern": QUERY_BOOLEAN_PATTERN}


@dataclass(frozen=True)
class ResourceDocs:
    """What a resource's operations share (tag, component name, path id), so that each route
    declares only what is its own: ``CHANNELS.reading("getChannel", "Get a channel")``."""

    tag: str
    schema: str  # the component of one object, e.g. "PhoneNumber" (lists: "PhoneNumberList")
    noun: str  # "phone number": in the path parameter's description
    plural: str  # "numbers": "One page of numbers, newest first."
    id_param: str  # the path parameter, e.g. "phone_number_id"

    def _id(self) -> list[dict]:
        return [path_id(self.id_param, self.noun)]

    def creating(self, operation_id: str, summary: str, created: str, **extra) -> Operation:
        """POST of a new object: 201 with it and its Location."""
        ok = {201: body(self.schema, created, ("Location",), extra.pop("examples", None))}
        ok.update(extra.pop("ok", {}))
        return Operation(operation_id, summary, self.tag, ok=ok, errors=BODY_ERRORS, **extra)

    def listing(self, operation_id: str, summary: str, *filters: dict, **extra) -> Operation:
        """GET of one page, newest first, with ``filters`` before limit and cursor."""
        ok = {200: body(f"{self.schema}List", f"One page of {self.plural}, newest first.")}
        return Operation(
            operation_id,
            summary,
            self.tag,
            ok=ok,
            errors=READ_ERRORS,
            parameters=[*filters, LIMIT, CURSOR],
            **extra,
        )

    def reading(self, operation_id: str, summary: str) -> Operation:
        """GET of one object by id."""
        return Operation(
            operation_id,
            summary,
            self.tag,
            ok={200: body(self.schema)},
            errors=ID_READ_ERRORS,
            parameters=self._id(),
        )

    def changing(
        self, operation_id: str, summary: str, answer: str, headers=(), **extra
    ) -> Operation:
        """PATCH, or POST of an action on the object: 200 with ``answer``'s schema."""
        schema = extra.pop("answer_schema", self.schema)
        return Operation(
            operation_id,
            summary,
            self.tag,
            ok={200: body(schema, answer, headers)},
            errors=ID_BODY_ERRORS,
            parameters=self._id(),
            **extra,
        )

    def deleting(self, operation_id: str, summary: str, headers=(), **extra) -> Operation:
        """DELETE: 204."""
        return Operation(
            operation_id,
            summary,
            self.tag,
            ok={204: no_content("Deleted.", headers)},
            errors=ID_DELETE_ERRORS,
            parameters=self._id(),
            **extra,
        )


def documented(operation: Operation | None = None, **fields):
    """Declares a view's operation where the route is defined (below ``@bp.<method>(path)``)::

    @bp.get("/channels/<channel_id>")
    @documented(operation_id="getChannel", summary="Get a channel", tag="Channels",
                ok={200: body("Channel")}, errors=ID_READ_ERRORS,
                parameters=[path_id("channel_id", "channel")])
    def get_channel(channel_id): ...
    """
    operation = operation or Operation(**fields)

    def attach(view):
        view.openapi_operation = operation
        return view

    return attach


_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def documented_operations(app) -> list[tuple[str, str, Operation]]:
    """(method, OpenAPI path, operation) of every /api route, in the URL map's order; a route
    without a declaration is a programming error, caught here (and by the suite)."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        view = app.view_functions[rule.endpoint]
        operation = getattr(view, "openapi_operation", None)
        if operation is None:
            raise LookupError(f"{rule.rule} ({rule.endpoint}) has no @documented operation")
        path = _RULE_ARGUMENT.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method.lower(), path, operation))
    return found


TAG_DESCRIPTIONS = {
    "Channels": "Named senders: an email address on a verified domain, or a phone number, "
    "through a provider integration. One channel per type is the tenant's default.",
    "Integrations": "Provider accounts (SMTP, SendGrid, Mailgun, SES, Postmark, Twilio, Vonage, "
    "MessageBird, console) that channels send through; secrets are write-only.",
    "Email domains": "The tenant's sending domains and the DNS records that verify them.",
    "Phone numbers": "The tenant's numbers; adding an SMS-capable one creates its SMS channel.",
    "Webhooks": "Endpoints that receive the tenant's events (signed following Standard "
    "Webhooks, delivered at least once, retried for about three days) and their delivery logs. "
    "The events themselves are described under `webhooks`.",
    "Audit log": "Every change, by whom (user or API key), when, and from which request.",
    "Meta": "This document.",
}

# The two sample calls of the seed page ("Create Channel", shared/SEED.md), verbatim: they
# work against `flask seed-demo` data (tests/api/test_seed_contract.py sends them).
SEED_CREATE_EXAMPLES = {
    "email": {
        "summary": "Create Email Channel (the seed page's sample)",
        "value": {
            "name": "Support Email",
            "channel_type": "email",
            "integration_id": "123e4567-e89b-12d3-a456-426614174002",
            "send_from_email": "support@example.com",
            "email_domain_id": "123e4567-e89b-12d3-a456-426614174003",
            "is_default": True,
        },
    },
    "sms": {
        "summary": "Create SMS Channel (the seed page's sample)",
        "value": {
            "name": "Sales SMS",
            "channel_type": "sms",
            "integration_id": "323e4567-e89b-12d3-a456-426614174011",
            "send_from_phone_number": "+15551234567",
            "phone_number_id": "423e4567-e89b-12d3-a456-426614174012",
            "is_default": False,
        },
    },
}
SEED_CHANNEL_EXAMPLES = {
    "email": {
        "summary": "Email Channel (the seed page's sample response)",
        "value": {
            "id": "123e4567-e89b-12d3-a456-426614174000",
            "tenant_id": "123e4567-e89b-12d3-a456-426614174001",
            "name": "Support Email",
            "channel_type": "email",
            "integration_id": "123e4567-e89b-12d3-a456-426614174002",
            "send_from_email": "support@example.com",
            "email_domain_id": "123e4567-e89b-12d3-a456-426614174003",
            "status": "available",
            "is_default": True,
            "metadata": {},
            "created_at": "2024-10-03T12:00:00Z",
        },
    },
    "sms": {
        "summary": "SMS Channel (the seed page's sample response)",
        "value": {
            "id": "223e4567-e89b-12d3-a456-426614174010",
            "tenant_id": "123e4567-e89b-12d3-a456-426614174001",
            "name": "Sales SMS",
            "channel_type": "sms",
            "integration_id": "323e4567-e89b-12d3-a456-426614174011",
            "send_from_phone_number": "+15551234567",
            "phone_number_id": "423e4567-e89b-12d3-a456-426614174012",
            "status": "available",
            "is_default": False,
            "metadata": {},
            "created_at": "2024-10-03T13:00:00Z",
        },
    },
}


# --- operations -----------------------------------------------------------------------------


@dataclass
class Operation:
    """One documented operation, attached to its view by ``documented``; ``build_openapi`` reads
    the method and path from the URL map and turns it into an OpenAPI operation object."""

    operation_id: str
    summary: str
    tag: str
    ok: dict[int, dict]
    errors: tuple[int, ...]
    parameters: list[dict] = field(default_factory=list)
    request_schema: str | None = None  # a component schema name: the JSON body
    body_optional: bool = False  # no schema, but an (empty or JSON object) body is accepted
    description: str | None = None
    public: bool = False  # no API key needed
    request_examples: dict | None = None  # named examples of the JSON body

    def to_openapi(self, method: str) -> dict:
        """The OpenAPI operation object for ``method``."""
        operation: dict = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "tags": [self.tag],
        }
        if self.description:
            operation["description"] = self.description
        parameters = list(self.parameters)
        if method == "post" and not self.public:
            parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
        parameters.append({"$ref": "#/components/parameters/RequestId"})
        operation["parameters"] = parameters
        if self.request_schema:
            content: dict = {"schema": ref(self.request_schema)}
            if self.request_examples:
                content["examples"] = self.request_examples
            operation["requestBody"] = {"required": True, "content": {"application/json": content}}
        elif self.body_optional:
            operation["requestBody"] = {
                "required": False,
                "description": "Optional; when sent, a JSON object (its fields are ignored).",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        responses = {}
        for status, response in sorted(self.ok.items()):
            response = dict(response)
            headers = dict(response.get("headers") or {})
            if method == "post" and not self.public:
                headers["Idempotent-Replayed"] = {
                    "$ref": "#/components/headers/Idempotent-Replayed"
                }
            headers["X-Request-ID"] = {"$ref": "#/components/headers/X-Request-ID"}
            response["headers"] = headers
            responses[str(status)] = response
        for status in self.errors:
            responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
        operation["responses"] = responses
        if self.public:
            operation["security"] = []
        return operation


# --- component schemas ----------------------------------------------------------------------


def _metadata_schema() -> dict:
    return {
        "type": "object",
        "description": f"Free-form labels: at most {METADATA_MAX_KEYS} keys of "
        f"1–{METADATA_KEY_MAX} printable characters; values are strings "
        f"(≤{METADATA_VALUE_MAX}), numbers, booleans or null.",
        "maxProperties": METADATA_MAX_KEYS,
        "propertyNames": {
            "minLength": 1,
            "maxLength": METADATA_KEY_MAX,
            "pattern": NO_CONTROL_CHARACTERS,
        },
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": METADATA_VALUE_MAX},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
            ]
        },
    }


# The address fields of each channel type, as they appear in requests and responses.
ADDRESS_FIELDS = {
    "send_from_email": {
        "type": "string",
        "format": "email",
        "description": "An address on the email domain.",
    },
    "email_domain_id": {**ID, "description": "One of the tenant's email domains."},
    "send_from_phone_number": {
        "type": "string",
        "pattern": E164_PATTERN,
        "description": "The E.164 number of `phone_number_id`.",
    },
    "phone_number_id": {**ID, "description": "One of the tenant's active, SMS-capable numbers."},
}


def _channel_schema(channel_type: str, persisted: bool) -> dict:
    """A channel as the API renders it: only its own type's address fields."""
    properties: dict = {}
    if persisted:
        properties["id"] = ID
    properties.update(
        tenant_id=ID,
        name=NAME,
        channel_type={"type": "string", "const": channel_type},
        integration_id=ID,
    )
    for name in CHANNEL_TYPE_FIELDS[channel_type]:
        properties[name] = ADDRESS_FIELDS[name]
    properties.update(
        status={"type": "string", "enum": list(CHANNEL_STATUSES)},
        is_default={"type": "boolean"},
        metadata=ref("Metadata"),
    )
    if persisted:
        properties.update(created_at=TIMESTAMP, updated_at=TIMESTAMP)
    return obj(properties, required=[p for p in properties if p != "updated_at"])


def _channel_create_schema(channel_type: str) -> dict:
    """What POST /api/channels takes for one channel type."""
    properties = {
        "name": NAME,
        "channel_type": {"type": "string", "const": channel_type},
        "integration_id": {
            "type": "string",
            "description": f"An active {channel_type} integration.",
        },
    }
    for name in CHANNEL_TYPE_FIELDS[channel_type]:
        properties[name] = ADDRESS_FIELDS[name]
    properties["is_default"] = {"type": "boolean"}
    properties["metadata"] = nullable(ref("Metadata"))
    required = ["name", "channel_type", "integration_id", *CHANNEL_TYPE_FIELDS[channel_type]]
    return obj(properties, required)


def _channel_update_schema() -> dict:
    properties = {
        "name": NAME,
        "channel_type": {
            **CHANNEL_TYPE,
            "description": "Accepted only when equal to the channel's type; it cannot change.",
        },
        "integration_id": {"type": "string"},
    }
    for fields in CHANNEL_TYPE_FIELDS.values():
        for name in fields:
            properties[name] = {
                **ADDRESS_FIELDS[name],
                "description": ADDRESS_FIELDS[name]["description"]
                + " Only for channels of its type.",
            }
    properties.update(
        is_default={"type": "boolean"},
        metadata=nullable(ref("Metadata")),
        status={"type": "string", "enum": list(CHANNEL_STATUS_CHOICES)},
    )
    return obj(properties)


def _credential_schema(spec: CredentialField, response: bool) -> dict:
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
        schema = {"type": "string", "enum": list(spec.choices)}
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


def _credentials_schema(provider: Provider, response: bool) -> dict:
    properties = {spec.name: _credential_schema(spec, response) for spec in provider.fields}
    if response:
        return obj(properties)
    required = [s.name for s in provider.fields if s.required and s.default is None]
    schema = obj(properties, required)
    return schema if required else nullable(schema)


def _provider_schema_name(provider: Provider, suffix: str = "") -> str:
    return "Integration" + "".join(part.title() for part in provider.name.split("_")) + suffix


def _integration_schemas() -> dict:
    """Integration (and its create body) as one variant per provider, discriminated by provider."""
    schemas: dict = {}
    for provider in PROVIDERS.values():
        types = list(provider.channel_types)
        schemas[_provider_schema_name(provider)] = obj(
            {
                "id": ID,
                "tenant_id": ID,
                "name": NAME,
                "channel_type": {"type": "string", "enum": types},
                "provider": {"type": "string", "const": provider.name},
                "credentials": _credentials_schema(provider, response=True),
                "status": {"type": "string", "enum": list(INTEGRATION_STATUSES)},
                "last_check": nullable(ref("IntegrationCheck")),
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
            },
            required=[
                "id",
                "tenant_id",
                "name",
                "channel_type",
                "provider",
                "credentials",
                "status",
                "last_check",
                "created_at",
                "updated_at",
            ],
            description=f"An integration with {provider.label}.",
        )
        create = obj(
            {
                "name": NAME,
                "channel_type": {"type": "string", "enum": types},
                "provider": {"type": "string", "const": provider.name},
                "credentials": _credentials_schema(provider, response=False),
                "status": {
                    "type": "string",
                    "enum": list(INTEGRATION_STATUSES),
                    "default": "active",
                },
            },
            required=["name", "channel_type", "provider"]
            + (
                ["credentials"]
                if any(s.required and s.default is None for s in provider.fields)
                else []
            ),
            description=f"Creates an integration with {provider.label}.",
        )
        schemas[_provider_schema_name(provider, "Create")] = create
    schemas["Integration"] = {
        "oneOf": [ref(_provider_schema_name(p)) for p in PROVIDERS.values()],
        "discriminator": {
            "propertyName": "provider",
            "mapping": {
                p.name: f"#/components/schemas/{_provider_schema_name(p)}"
                for p in PROVIDERS.values()
            },
        },
    }
    schemas["IntegrationCreate"] = {
        "oneOf": [ref(_provider_schema_name(p, "Create")) for p in PROVIDERS.values()],
        "discriminator": {
            "propertyName": "provider",
            "mapping": {
                p.name: f"#/components/schemas/{_provider_schema_name(p, 'Create')}"
                for p in PROVIDERS.values()
            },
        },
    }
    schemas["IntegrationUpdate"] = obj(
        {
            "name": NAME,
            "channel_type": {**CHANNEL_TYPE, "description": "Accepted only when unchanged."},
            "provider": {
                "type": "string",
                "enum": list(PROVIDERS),
                "description": "Accepted only when unchanged.",
            },
            "credentials": {
                "type": ["object", "null"],
                "description": "The provider's credential fields (see IntegrationCreate); omitted "
                f"fields and secrets sent as `{SECRET_MASK}` keep their value.",
                "additionalProperties": {"type": ["string", "integer", "boolean", "null"]},
            },
            "status": {"type": "string", "enum": list(INTEGRATION_STATUSES)},
        }
    )
    schemas["IntegrationCheck"] = obj(
        {
            "ok": {"type": "boolean"},
            "message": {"type": ["string", "null"]},
            "checked_at": TIMESTAMP,
        },
        required=["ok", "message", "checked_at"],
        description="The outcome of the last connection check.",
    )
    return schemas


def _list_schema(item: str) -> dict:
    return obj(
        {
            "data": {"type": "array", "items": ref(item)},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
        },
        required=["data", "next_cursor"],
    )


def component_schemas() -> dict:
    """Every schema of the document, by name."""
    schemas: dict = {
        "Metadata": _metadata_schema(),
        "EmailChannel": _channel_schema("email", persisted=True),
        "SmsChannel": _channel_schema("sms", persisted=True),
        "Channel": {
            "oneOf": [ref("EmailChannel"), ref("SmsChannel")],
            "discriminator": {
                "propertyName": "channel_type",
                "mapping": {
                    "email": "#/components/schemas/EmailChannel",
                    "sms": "#/components/schemas/SmsChannel",
                },
            },
        },
        "EmailChannelPreview": _channel_schema("email", persisted=False),
        "SmsChannelPreview": _channel_schema("sms", persisted=False),
        "ChannelPreview": {
            "description": "A dry run's channel: what would be created, without id or timestamps.",
            "oneOf": [ref("EmailChannelPreview"), ref("SmsChannelPreview")],
        },
        "EmailChannelCreate": _channel_create_schema("email"),
        "SmsChannelCreate": _channel_create_schema("sms"),
        "ChannelCreate": {
            "oneOf": [ref("EmailChannelCreate"), ref("SmsChannelCreate")],
            "discriminator": {
                "propertyName": "channel_type",
                "mapping": {
                    "email": "#/components/schemas/EmailChannelCreate",
                    "sms": "#/components/schemas/SmsChannelCreate",
                },
            },
        },
        "ChannelUpdate": _channel_update_schema(),
        "TestMessageRequest": obj(
            {
                "to": {
                    "type": "string",
                    "description": "An email address (email channels) or an E.164 number "
                    "(SMS channels).",
                }
            },
            required=["to"],
        ),
        "TestMessageResult": obj(
            {"ok": {"type": "boolean"}, "message": {"type": "string"}},
            required=["ok", "message"],
        ),
        **_integration_schemas(),
        "DnsRecord": obj(
            {
                "type": {"type": "string", "enum": ["TXT", "CNAME"]},
                "host": {"type": "string"},
                "value": {"type": "string"},
                "purpose": {"type": "string", "enum": ["verification", "spf", "dkim"]},
                "status": {"type": "string", "enum": list(DNS_RECORD_STATUSES)},
            },
            required=["type", "host", "value", "purpose", "status"],
        ),
        "EmailDomainCreate": obj(
            {
                "domain": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": DOMAIN_MAX,
                    "description": "A domain name, e.g. example.com; stored lower-case in "
                    "IDNA form.",
                }
            },
            required=["domain"],
        ),
        "EmailDomain": obj(
            {
                "id": ID,
                "tenant_id": ID,
                "domain": {"type": "string"},
                "status": {"type": "string", "enum": list(EMAIL_DOMAIN_STATUSES)},
                "dns_records": {"type": "array", "items": ref("DnsRecord")},
                "verified_at": nullable(TIMESTAMP),
                "last_checked_at": nullable(TIMESTAMP),
                "created_at": TIMESTAMP,
            },
            required=[
                "id",
                "tenant_id",
                "domain",
                "status",
                "dns_records",
                "verified_at",
                "last_checked_at",
                "created_at",
            ],
        ),
        "PhoneNumberCreate": obj(
            {
                "phone_number": {
                    "type": "string",
                    "description": "E.164 (`+14155550123`), or a national number with `country`.",
                },
                "country": nullable({"type": "string", "pattern": "^[A-Za-z]{2}$"}),
                "integration_id": {"type": "string", "description": "An active SMS integration."},
                "capabilities": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "enum": list(CAPABILITIES)},
                    "default": ["sms"],
                },
                "create_channel": {"type": "boolean", "default": True},
            },
            required=["phone_number", "integration_id"],
        ),
        "PhoneNumber": obj(
            {
                "id": ID,
                "tenant_id": ID,
                "phone_number": {"type": "string", "pattern": E164_PATTERN},
                "integration_id": ID,
                "capabilities": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(CAPABILITIES)},
                },
                "status": {"type": "string", "enum": list(PHONE_NUMBER_STATUSES)},
                "created_at": TIMESTAMP,
                "released_at": nullable(TIMESTAMP),
                "channel_id": nullable({**ID, "description": "Its SMS channel, if any."}),
            },
            required=[
                "id",
                "tenant_id",
                "phone_number",
                "integration_id",
                "capabilities",
                "status",
                "created_at",
                "released_at",
                "channel_id",
            ],
        ),
        "AuditEvent": obj(
            {
                "id": ID,
                "tenant_id": ID,
                "actor": obj(
                    {
                        "type": {"type": "string", "enum": list(ACTOR_TYPES)},
                        "id": {"type": ["string", "null"]},
                        "name": {"type": "string"},
                    },
                    required=["type", "id", "name"],
                ),
                "action": {"type": "string"},
                "resource_type": {"type": "string", "enum": list(RESOURCE_TYPES)},
                "resource_id": {"type": ["string", "null"]},
                "changes": {
                    "type": "object",
                    "description": "Before/after per field; secrets masked.",
                },
                "request_id": {"type": ["string", "null"]},
                "ip": {"type": ["string", "null"]},
                "created_at": TIMESTAMP,
            },
            required=[
                "id",
                "tenant_id",
                "actor",
                "action",
                "resource_type",
                "resource_id",
                "changes",
                "request_id",
                "ip",
                "created_at",
            ],
        ),
        "Error": obj(
            {
                "error": obj(
                    {
                        "code": {"type": "string", "description": "Stable machine-readable code."},
                        "message": {"type": "string"},
                        "fields": {
                            "type": "object",
                            "description": "Every failing field with its messages.",
                            "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    required=["code", "message"],
                )
            },
            required=["error"],
        ),
    }
    for item in ("Channel", "Integration", "EmailDomain", "PhoneNumber", "AuditEvent"):
        schemas[f"{item}List"] = _list_schema(item)
    return schemas


def _header(description: str, schema: dict, required: bool = False) -> dict:
    return {"description": description, "required": required, "schema": schema}


HEADERS = {
    "Location": _header("The URL of the created resource.", {"type": "string"}, required=True),
    "Default-Handover": _header(
        "Present when the change moved the default: the id of the channel that became the "
        "default of the type, or `none` when no channel could.",
        {"type": "string"},
    ),
    "Idempotent-Replayed": _header(
        "`true` when this is the stored response of an earlier request with the same "
        "Idempotency-Key.",
        {"type": "string", "enum": ["true"]},
    ),
    "Retry-After": _header(
        "Seconds to wait before retrying.", {"type": "integer", "minimum": 0}, required=True
    ),
    "X-Request-ID": _header(
        "The request's id (the caller's `X-Request-ID` when well-formed); it is in the logs and "
        "the audit log.",
        {"type": "string", "pattern": REQUEST_ID_PATTERN},
        required=True,
    ),
    "WWW-Authenticate": _header(
        "The authentication scheme: `Bearer`.", {"type": "string"}, required=True
    ),
}

# Extra headers of some error responses.
ERROR_HEADERS = {401: ("WWW-Authenticate",), 429: ("Retry-After",), 503: ("Retry-After",)}

PARAMETERS = {
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Makes a POST safe to retry: the same key with the same request within 24 "
        "hours returns the first response again (with `Idempotent-Replayed: true`) and creates "
        "nothing; with another request, 409 `idempotency_conflict`.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": IDEMPOTENCY_KEY_MAX,
            "pattern": IDEMPOTENCY_KEY_PATTERN,
        },
    },
    "RequestId": {
        "name": "X-Request-ID",
        "in": "header",
        "required": False,
        "description": "Your id for this request, returned in `X-Request-ID`, logged and written "
        "to the audit log; when malformed, a fresh id is used instead.",
        "schema": {"type": "string"},
    },
}


def _error_responses() -> dict:
    responses = {}
    for status, description in ERROR_DESCRIPTIONS.items():
        headers = {
            name: {"$ref": f"#/components/headers/{name}"} for name in ERROR_HEADERS.get(status, ())
        }
        headers["X-Request-ID"] = {"$ref": "#/components/headers/X-Request-ID"}
        responses[f"Error{status}"] = {
            "description": description,
            "headers": headers,
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return responses


# --- events (OpenAPI 3.1 ``webhooks``) -----------------------------------------------------

EVENT_DATA = {
    "channel": "Channel",
    "integration": "Integration",
    "email_domain": "EmailDomain",
    "phone_number": "PhoneNumber",
    "webhook_endpoint": "WebhookEndpoint",
}
_FIELD_CHANGES = obj(
    {
        "fields": {
            "type": "object",
            "description": 'Each changed field: `{"before", "after"}` (secrets masked).',
            "additionalProperties": obj({"before": {}, "after": {}}, required=["before", "after"]),
        }
    },
    required=["fields"],
)


def _event_data_and_change(event_type: str) -> tuple[dict, dict | None]:
    """The ``data`` and ``change`` schemas of one event type (see ``core.events``)."""
    from core.events import DEFAULT_CAUSES, STATUS_CAUSES, resource_type_of

    if event_type == "channel.default_changed":
        data = obj(
            {
                "channel_type": CHANNEL_TYPE,
                "previous_default": nullable(ref("Channel")),
                "new_default": nullable(ref("Channel")),
            },
            required=["channel_type", "previous_default", "new_default"],
        )
        return data, obj(
            {"cause": {"type": "string", "enum": list(DEFAULT_CAUSES)}}, required=["cause"]
        )
    data = ref(EVENT_DATA[resource_type_of(event_type)])
    action = event_type.split(".", 1)[1]
    if action == "updated":
        return data, _FIELD_CHANGES
    if action in ("status_changed", "disabled"):
        causes = list(STATUS_CAUSES) if action == "status_changed" else ["failing"]
        return data, obj(
            {
                "from": {"type": "string"},
                "to": {"type": "string"},
                "cause": {"type": "string", "enum": causes},
            },
            required=["from", "to", "cause"],
        )
    if action == "verification_failed":
        records = {"type": "object", "additionalProperties": {"enum": list(DNS_RECORD_STATUSES)}}
        return data, obj({"records": records}, required=["records"])
    return data, None


def event_webhooks() -> dict:
    """Every event's payload, as OpenAPI 3.1 ``webhooks`` (what the tenant's receiver gets)."""
    from core.events import EVENT_TYPES

    webhooks = {}
    for event_type in EVENT_TYPES:
        data, change = _event_data_and_change(event_type)
        properties = {
            "type": {"const": event_type},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "When the change was committed (UTC, microseconds).",
            },
            "sequence": {
                "type": "integer",
                "minimum": 1,
                "description": "The resource's own event counter: order one resource's events "
                "by it.",
            },
            "data": data,
        }
        required = ["type", "timestamp", "sequence", "data"]
        if change is not None:
            properties["change"] = change
            required.append("change")
        webhooks[event_type] = {
            "post": {
                "operationId": "event_" + event_type.replace(".", "_"),
                "summary": event_type,
                "tags": ["Webhooks"],
                "description": "Sent to the endpoints subscribed to it, signed following "
                "Standard Webhooks: `webhook-id` (the event id, the same on every retry), "
                "`webhook-timestamp`, `webhook-signature`.",
                "security": [],
                "parameters": [
                    {"name": name, "in": "header", "required": True, "schema": schema}
                    for name, schema in (
                        ("webhook-id", {"type": "string"}),
                        ("webhook-timestamp", {"type": "string", "pattern": r"^\d+$"}),
                        ("webhook-signature", {"type": "string"}),
                    )
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": obj(properties, required)}},
                },
                "responses": {
                    "200": {"description": "Any 2xx within WEBHOOK_TIMEOUT delivers the event."},
                    "default": {"description": "Anything else is retried."},
                },
            }
        }
    return webhooks


def build_openapi(app) -> dict:
    """The complete OpenAPI 3.1 document of the JSON API, assembled from the routes' own
    declarations (``documented``) and the component schemas."""
    paths: dict = {}
    tags: dict[str, None] = {}
    for method, path, operation in documented_operations(app):
        if operation.tag not in TAG_DESCRIPTIONS:
            raise LookupError(f"{method.upper()} {path}: tag {operation.tag!r} has no description")
        paths.setdefault(path, {})[method] = operation.to_openapi(method)
        tags[operation.tag] = None
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Channels API",
            "version": API_VERSION,
            "description": "Email and SMS channels of a tenant, their provider integrations, email "
            "domains and phone numbers. Authenticate with `Authorization: Bearer <API key>`; "
            "`read` keys may only GET. Errors always use the `Error` envelope.",
            "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"},
        },
        "servers": [
            {
                "url": "/",
                "description": "The server this document was fetched from (paths start with /api).",
            }
        ],
        "tags": [
            {"name": name, "description": description}
            for name, description in TAG_DESCRIPTIONS.items()
            if name in tags
        ],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "webhooks": event_webhooks(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A tenant API key, created in the console or with "
                    "`flask create-api-key`.",
                }
            },
            "schemas": {**component_schemas(), **declared_components()},
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "responses": _error_responses(),
        },
    }
