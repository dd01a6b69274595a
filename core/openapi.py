"""The OpenAPI 3.1 document of the JSON API (DESIGN §4), served at GET /api/openapi.json.

Only the assembly lives here: operations, parameters, headers and error responses. Every body
is a model declared once in ``core.schemas`` (the same class parses the request or renders the
response), referenced by the operation and listed under ``components.schemas`` by
``core.schemas.component_schemas``. ``tests/api/test_openapi.py`` keeps it true: every route
under /api must be documented, real responses must match the schemas, and schemathesis fuzzes
every operation against it.

An operation is declared on its route, where the route is defined (``documented``), mostly
through its resource's ``ResourceDocs``; ``build_openapi`` assembles the paths from the URL map.
E.g.::

    @bp.post("/integrations/<integration_id>/check")
    @documented(INTEGRATIONS.changing("checkIntegration", "Check an integration's credentials",
                                      "The integration with the outcome in `last_check`.",
                                      body_optional=True))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from core.http import BULK_MAX_BODY_BYTES, MAX_BODY_BYTES, REQUEST_ID_PATTERN
from core.models import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN
from core.pagination import LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX
from core.schemas import component_schemas
from core.schemas.errors import Error
from core.schemas.events import EVENT_MODELS

API_VERSION = "1.0.0"
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
    412: "`If-Match` names no current version: the resource changed since the caller read it "
    "(`precondition_failed`). Fetch it again (its new `ETag`) and retry.",
    413: f"The body is larger than {MAX_BODY_BYTES // 1024} KiB, or "
    f"{BULK_MAX_BODY_BYTES // 1024 // 1024} MiB for the bulk routes (`payload_too_large`).",
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


Model = str | type  # a declared model (``core.schemas``), or its component name


def ref(model: Model) -> dict:
    """A reference to a component schema: a model declared in ``core.schemas``, by name."""
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def body(
    schema_name: Model,
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


def streamed(description: str, content: dict[str, dict], headers: tuple[str, ...] = ()) -> dict:
    """A streamed (non-JSON) response: ``content`` maps each media type to its schema."""
    return {
        "description": description,
        "headers": {name: {"$ref": f"#/components/headers/{name}"} for name in headers},
        "content": {media_type: {"schema": schema} for media_type, schema in content.items()},
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
    """What a resource's operations share (tag, models, path id), so that each route declares
    only what is its own: ``CHANNELS.reading("getChannel", "Get a channel")``."""

    tag: str
    schema: Model  # the declared model of one object, e.g. ``PhoneNumber``
    noun: str  # "phone number": in the path parameter's description
    plural: str  # "numbers": "One page of numbers, newest first."
    id_param: str  # the path parameter, e.g. "phone_number_id"
    list_schema: Model | None = None  # the list envelope; by default ``<schema>List``

    def _id(self) -> list[dict]:
        return [path_id(self.id_param, self.noun)]

    def creating(self, operation_id: str, summary: str, created: str, **extra) -> Operation:
        """POST of a new object: 201 with it and its Location."""
        ok = {201: body(self.schema, created, ("Location",), extra.pop("examples", None))}
        ok.update(extra.pop("ok", {}))
        return Operation(operation_id, summary, self.tag, ok=ok, errors=BODY_ERRORS, **extra)

    def listing(self, operation_id: str, summary: str, *filters: dict, **extra) -> Operation:
        """GET of one page, newest first, with ``filters`` before limit and cursor."""
        envelope = self.list_schema or f"{ref(self.schema)['$ref'].rsplit('/', 1)[1]}List"
        ok = {200: body(envelope, f"One page of {self.plural}, newest first.")}
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
                ok={200: body(Channel)}, errors=ID_READ_ERRORS,
                parameters=[path_id("channel_id", "channel")])
    def get_channel(channel_id): ...
    """
    operation = operation or Operation(**fields)

    def attach(view):
        # A route under ``core.conditional.conditional`` takes its headers: say so.
        view.openapi_operation = (
            replace(operation, conditional=True)
            if getattr(view, "conditional", False)
            else operation
        )
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
    "Bulk": "Channels and phone numbers by the thousand: up to 1,000 items per request, each "
    "judged by the rules of a single create and against the other items; all or nothing "
    "(`atomic`, the default) or item by item.",
    "Webhooks": "Endpoints that receive the tenant's events (signed following Standard "
    "Webhooks, delivered at least once, retried for about three days) and their delivery logs. "
    "The events themselves are described under `webhooks`.",
    "Audit log": "Every change, by whom (user or API key), when, and from which request.",
    "Meta": "This document.",
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
    request_schema: Model | None = None  # the JSON body: a declared model (or its name)
    body_optional: bool = False  # no schema, but an (empty or JSON object) body is accepted
    description: str | None = None
    public: bool = False  # no API key needed
    request_examples: dict | None = None  # named examples of the JSON body
    conditional: bool = False  # ETag, If-None-Match (GET), If-Match (PATCH, DELETE): set by
    # ``documented`` from the view's ``core.conditional.conditional`` decorator

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
        if self.conditional and method == "get":
            parameters.append({"$ref": "#/components/parameters/IfNoneMatch"})
        if self.conditional and method in ("patch", "delete"):
            parameters.append({"$ref": "#/components/parameters/IfMatch"})
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
            if self.conditional and (status, method) in ETAG_RESPONSES:
                headers["ETag"] = {"$ref": "#/components/headers/ETag"}
            headers["X-Request-ID"] = {"$ref": "#/components/headers/X-Request-ID"}
            response["headers"] = headers
            responses[str(status)] = response
        if self.conditional and method == "get":
            responses["304"] = {"$ref": "#/components/responses/NotModified"}
        errors = self.errors
        if self.conditional and method in ("patch", "delete"):
            errors = tuple(sorted({*errors, 412}))
        for status in errors:
            responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
        operation["responses"] = responses
        if self.public:
            operation["security"] = []
        return operation


# The responses of a conditional route that carry the resource's new or current ETag.
ETAG_RESPONSES = {(200, "get"), (200, "patch"), (201, "post")}


def _header(description: str, schema: dict, required: bool = False) -> dict:
    return {"description": description, "required": required, "schema": schema}


HEADERS = {
    "Location": _header("The URL of the created resource.", {"type": "string"}, required=True),
    "Default-Handover": _header(
        "Present when the change moved the default: the id of the channel that became the "
        "default of the type, or `none` when no channel could.",
        {"type": "string"},
    ),
    "Content-Disposition": _header(
        '`attachment; filename="channels-<tenant slug>-<UTC date>.<format>"`.',
        {"type": "string"},
        required=True,
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
    "ETag": _header(
        "The version of the resource (a strong entity tag): send it in `If-None-Match` to get "
        "a 304 while it is unchanged, or in `If-Match` so that a change or delete fails with "
        "412 if someone changed it since.",
        {"type": "string", "pattern": r'^"[0-9a-f]{32}"$'},
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
    "IfNoneMatch": {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "One or more entity tags (`ETag`), comma-separated, or `*`: when one names "
        "the current version (weak comparison), the answer is 304 with the `ETag` and no body.",
        "schema": {"type": "string"},
    },
    "IfMatch": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "One or more entity tags (`ETag`), comma-separated, or `*`: the change "
        "is made only if one names the current version (strong comparison; a `W/` tag never "
        "does), else 412 `precondition_failed` and nothing changes. Check and write are atomic.",
        "schema": {"type": "string"},
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
    responses = {
        "NotModified": {
            "description": "`If-None-Match` names the current version: no body.",
            "headers": {
                "ETag": {"$ref": "#/components/headers/ETag"},
                "X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"},
            },
        }
    }
    for status, description in ERROR_DESCRIPTIONS.items():
        headers = {
            name: {"$ref": f"#/components/headers/{name}"} for name in ERROR_HEADERS.get(status, ())
        }
        headers["X-Request-ID"] = {"$ref": "#/components/headers/X-Request-ID"}
        responses[f"Error{status}"] = {
            "description": description,
            "headers": headers,
            "content": {"application/json": {"schema": ref(Error)}},
        }
    return responses


# --- events (OpenAPI 3.1 ``webhooks``) -----------------------------------------------------


def event_webhooks() -> dict:
    """Every event's payload, as OpenAPI 3.1 ``webhooks`` (what the tenant's receiver gets)."""
    webhooks = {}
    for event_type, model in EVENT_MODELS.items():
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
                    "content": {"application/json": {"schema": ref(model)}},
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
            "schemas": component_schemas(),
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "responses": _error_responses(),
        },
    }
