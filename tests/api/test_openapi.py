"""The OpenAPI document is valid, complete, and true: real responses and a fuzzer agree with it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from app import create_app
from core.extensions import db
from core.http import MAX_BODY_BYTES
from core.openapi import build_openapi
from core.pagination import LIST_LIMIT_MAX, encode_cursor
from core.providers import PROVIDERS, SECRET_MASK
from core.rules import METADATA_MAX_KEYS, NAME_MAX
from core.services import webhooks
from tests import factories
from tests.conftest import base_config
from tests.fuzz_aim import aim_case

IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Path parameters the fuzzer sometimes points at the tenant's real resources.
ID_PARAMETERS = (
    "channel_id",
    "integration_id",
    "domain_id",
    "phone_number_id",
    "endpoint_id",
    "delivery_id",
)


@pytest.fixture
def app_config(database_url) -> dict:
    """Nothing answers DNS here, fast: verifying a domain records `error` instead of waiting."""
    return {**base_config(database_url), "DNS_NAMESERVERS": "127.0.0.1:9", "DNS_TIMEOUT": 0.2}


@pytest.fixture
def document(app) -> dict:
    """The document as the app builds it."""
    return build_openapi(app)


# --- the document itself --------------------------------------------------------------------


def test_document_is_valid_openapi_3_1(document):
    """openapi-spec-validator accepts the document as OpenAPI 3.1."""
    OpenAPIV31SpecValidator(document).validate()
    assert document["openapi"].startswith("3.1.")


def test_document_is_served_without_a_key(client, document):
    """GET /api/openapi.json needs no key and returns the same document as JSON."""
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == json.loads(json.dumps(document))
    assert document["paths"]["/api/openapi.json"]["get"]["security"] == []
    assert document["security"] == [{"bearerAuth": []}]


def _documented_operations(document) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


def _routed_operations(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule == "/api" or rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes |= {(path, method) for method in rule.methods - IGNORED_METHODS}
    return routes


def test_every_api_route_is_documented_and_nothing_else(app, document):
    """The documented (path, method) pairs are exactly the routes registered under /api."""
    routed = _routed_operations(app)
    documented = _documented_operations(document)
    assert routed - documented == set(), "routes without a @documented operation"
    assert documented - routed == set(), "documented operations without a route"


def test_a_route_without_a_declaration_stops_the_document(app):
    """An /api route registered without @documented is refused when the document is built."""
    app.add_url_rule("/api/undeclared", endpoint="api.undeclared", view_func=lambda: "")
    with pytest.raises(LookupError, match="/api/undeclared"):
        build_openapi(app)


def test_schemas_follow_the_rules_constants(app, document):
    """Limits come from core.rules and core.providers, not from copies."""
    assert MAX_BODY_BYTES == app.config["MAX_CONTENT_LENGTH"]
    schemas = document["components"]["schemas"]
    assert schemas["EmailChannel"]["properties"]["name"]["maxLength"] == NAME_MAX
    assert schemas["Metadata"]["maxProperties"] == METADATA_MAX_KEYS
    assert {v["$ref"].rsplit("/", 1)[1] for v in schemas["IntegrationCreate"]["oneOf"]} == {
        "Integration" + name.title() + "Create" for name in PROVIDERS
    }
    assert set(schemas["EmailChannel"]["properties"]) >= {"send_from_email", "email_domain_id"}
    assert not set(schemas["EmailChannel"]["properties"]) & {
        "send_from_phone_number",
        "phone_number_id",
    }
    assert schemas["SmsChannel"]["additionalProperties"] is False


def test_every_post_takes_an_idempotency_key(document):
    """Every authenticated POST documents Idempotency-Key and Idempotent-Replayed."""
    for path, item in document["paths"].items():
        if "post" in item:
            refs = [p.get("$ref") for p in item["post"]["parameters"]]
            assert "#/components/parameters/IdempotencyKey" in refs, path
            for status, response in item["post"]["responses"].items():
                if status.startswith("2"):
                    assert "Idempotent-Replayed" in response["headers"], (path, status)


# --- real responses against the document ----------------------------------------------------


def _resolve(document, item: dict) -> dict:
    while "$ref" in item:
        node = document
        for part in item["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        item = node
    return item


def _validate(document, schema: dict, instance) -> None:
    root = {**schema, "components": document["components"]}
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def assert_documented(document, method: str, template: str, response) -> None:
    """The response's status, body and headers are what the document says for this operation."""
    operation = document["paths"][template][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, (
        f"{method} {template} answered an undocumented {response.status_code}"
    )
    documented = _resolve(document, documented)
    content = documented.get("content")
    if content:
        assert response.mimetype in content, response.mimetype
        _validate(document, content[response.mimetype]["schema"], response.get_json())
    else:
        assert response.get_data() == b""
    for name, header in documented.get("headers", {}).items():
        header = _resolve(document, header)
        if header.get("required"):
            assert name in response.headers, f"missing header {name}"
        if name in response.headers:
            value = response.headers[name]
            if header["schema"].get("type") == "integer":
                value = int(value)
            _validate(document, header["schema"], value)


@pytest.fixture
def call(api, document):
    """``call("POST", "/api/channels", "/api/channels", json=...)``: the response, checked."""

    def run(method, template, url=None, client=None, **kwargs):
        response = getattr(client or api, method.lower())(url or template, **kwargs)
        assert_documented(document, method, template, response)
        return response

    return run


def test_channel_responses_match_the_document(call, setup):
    """Create (both types, dry run, 422), list, get, patch, delete: every response conforms."""
    email = call(
        "POST", "/api/channels", json=setup.email_payload(metadata={"team": "care", "n": 1.5})
    )
    assert email.status_code == 201 and email.get_json()["is_default"] is True
    sms = call("POST", "/api/channels", json=setup.sms_payload())
    assert sms.status_code == 201
    second = call("POST", "/api/channels", json=setup.email_payload(is_default=False))
    assert second.status_code == 201
    preview = call(
        "POST", "/api/channels", "/api/channels?dry_run=true", json=setup.email_payload()
    )
    assert preview.status_code == 200 and "id" not in preview.get_json()
    invalid = call("POST", "/api/channels", json={"channel_type": "email", "phone_number_id": "x"})
    assert invalid.status_code == 422 and "send_from_email" in invalid.get_json()["error"]["fields"]

    page = call("GET", "/api/channels", "/api/channels?channel_type=email&limit=1")
    assert page.status_code == 200 and page.get_json()["next_cursor"]
    cursor = page.get_json()["next_cursor"]
    assert call("GET", "/api/channels", f"/api/channels?limit=1&cursor={cursor}").status_code == 200
    assert (
        call(
            "GET", "/api/channels", "/api/channels?is_default=TRUE&q=Email&status=available"
        ).status_code
        == 200
    )
    assert call("GET", "/api/channels", "/api/channels?limit=0").status_code == 400
    too_many = f"/api/channels?limit={LIST_LIMIT_MAX + 1}"
    assert call("GET", "/api/channels", too_many).status_code == 400
    assert call("GET", "/api/channels", f"/api/channels?limit={LIST_LIMIT_MAX}").status_code == 200
    assert call("GET", "/api/channels", "/api/channels?cursor=bogus").status_code == 400

    email_id, sms_id = email.get_json()["id"], sms.get_json()["id"]
    template = "/api/channels/{channel_id}"
    assert call("GET", template, f"/api/channels/{sms_id}").status_code == 200
    assert call("GET", template, "/api/channels/not-an-id").status_code == 404
    disabled = call("PATCH", template, f"/api/channels/{email_id}", json={"status": "disabled"})
    assert (
        disabled.status_code == 200
        and disabled.headers["Default-Handover"] == second.get_json()["id"]
    )
    assert (
        call(
            "PATCH", template, f"/api/channels/{sms_id}", json={"send_from_email": "a@example.com"}
        ).status_code
        == 422
    )
    assert (
        call(
            "PATCH", template, f"/api/channels/{sms_id}", data="{", content_type="application/json"
        ).status_code
        == 400
    )
    assert call("PATCH", template, f"/api/channels/{sms_id}", data="x=1").status_code == 415
    deleted = call("DELETE", template, f"/api/channels/{second.get_json()['id']}")
    assert deleted.status_code == 204 and deleted.headers["Default-Handover"] == "none"


def _valid_credentials(provider) -> dict:
    values = {"integer": 2525, "boolean": True}
    return {
        spec.name: spec.choices[0]
        if spec.kind == "choice"
        else values.get(spec.kind, f"{spec.name}-value")
        for spec in provider.fields
    }


@pytest.mark.parametrize("provider", list(PROVIDERS.values()), ids=list(PROVIDERS))
def test_integration_responses_match_the_document(call, app, provider):
    """Each provider's integration: created, read, listed and updated with secrets masked."""
    payload = {
        "name": f"{provider.label} main",
        "channel_type": provider.channel_types[0],
        "provider": provider.name,
        "credentials": _valid_credentials(provider),
    }
    created = call("POST", "/api/integrations", json=payload)
    assert created.status_code == 201
    credentials = created.get_json()["credentials"]
    assert all(credentials[name] == SECRET_MASK for name in provider.secret_fields)
    template = "/api/integrations/{integration_id}"
    url = created.headers["Location"]
    assert call("GET", template, url).status_code == 200
    assert call("GET", "/api/integrations", "/api/integrations?channel_type=sms").status_code == 200
    updated = call("PATCH", template, url, json={"name": "Renamed", "credentials": credentials})
    assert updated.status_code == 200 and updated.get_json()["credentials"] == credentials
    assert call("PATCH", template, url, json={"provider": "nope"}).status_code == 422
    assert call("DELETE", template, url).status_code == 204


def test_domain_number_and_audit_responses_match_the_document(call, setup):
    """Email domains (with DNS records and a failing verify), numbers (release), audit log."""
    domain = call("POST", "/api/email_domains", json={"domain": "Mail.Example.ORG"})
    assert domain.status_code == 201 and len(domain.get_json()["dns_records"]) == 3
    domain_url = domain.headers["Location"]
    template = "/api/email_domains/{domain_id}"
    assert call("GET", template, domain_url).status_code == 200
    assert call("GET", "/api/email_domains").status_code == 200
    verified = call("POST", template + "/verify", domain_url + "/verify")
    assert verified.status_code == 200 and verified.get_json()["status"] == "failed"
    assert (
        call("POST", "/api/email_domains", json={"domain": "mail.example.org"}).status_code == 422
    )
    call("POST", "/api/channels", json=setup.email_payload())
    assert call("DELETE", template, f"/api/email_domains/{setup.domain.id}").status_code == 409
    assert call("DELETE", template, domain_url).status_code == 204

    number = call(
        "POST",
        "/api/phone_numbers",
        json={
            "phone_number": "(415) 555-0199",
            "country": "us",
            "integration_id": setup.sms_integration.id,
        },
    )
    assert number.status_code == 201 and number.get_json()["channel_id"]
    template = "/api/phone_numbers/{phone_number_id}"
    number_url = number.headers["Location"]
    assert call("GET", template, number_url).status_code == 200
    assert call("GET", "/api/phone_numbers", "/api/phone_numbers?limit=200").status_code == 200
    assert call("DELETE", template, number_url).status_code == 409
    released = call("POST", template + "/release", number_url + "/release")
    assert released.status_code == 200 and released.get_json()["status"] == "released"
    assert released.headers["Default-Handover"] == "none"

    events = call("GET", "/api/audit_events", "/api/audit_events?resource_type=phone_number")
    assert events.status_code == 200 and events.get_json()["data"]


def test_auth_and_transport_errors_match_the_document(call, app, client, tenant, setup):
    """401 (with WWW-Authenticate), 403, 413, idempotent replay and its 409: all conform."""
    assert call("GET", "/api/channels", client=client).status_code == 401
    reader = factories.ApiClient(client, factories.make_api_key(tenant, scope="read"))
    assert (
        call("POST", "/api/email_domains", client=reader, json={"domain": "a.example"}).status_code
        == 403
    )
    too_big = "x" * (64 * 1024 + 1)
    assert call("POST", "/api/email_domains", json={"domain": too_big}).status_code == 413

    headers = {"Idempotency-Key": "order-42"}
    first = call("POST", "/api/channels", json=setup.sms_payload(name="Once"), headers=headers)
    again = call("POST", "/api/channels", json=setup.sms_payload(name="Once"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    other = call("POST", "/api/channels", json=setup.sms_payload(name="Other"), headers=headers)
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_conflict"


def test_odd_numbers_are_client_errors(call, setup):
    """Non-ASCII digits and infinite numbers are 4xx, never a 500."""
    assert call("GET", "/api/channels", "/api/channels?limit=%C2%B2").status_code == 400
    smtp = {"host": "smtp.example.com", "port": "\u00b2"}
    payload = {"name": "SMTP", "channel_type": "email", "provider": "smtp", "credentials": smtp}
    assert call("POST", "/api/integrations", json=payload).status_code == 422
    infinite = '{"name": "Inf", "channel_type": "email", "metadata": {"x": 1e400}}'
    response = call("POST", "/api/channels", data=infinite, content_type="application/json")
    assert response.status_code == 422 and "metadata" in response.get_json()["error"]["fields"]


# --- fuzzing with schemathesis --------------------------------------------------------------

FUZZ_CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20241003,
        # No state carried between runs: every run generates the same cases.
        "cache": {"enabled": False},
        "generation": {
            "deterministic": True,
            "max-examples": 8,
            # The key comes from the fixture, not from generated Authorization headers.
            "with-security-parameters": False,
            # Unknown query parameters are ignored, as HTTP caches and proxies may add some.
            "allow-extra-parameters": False,
            # NUL (U+0000) anywhere in a body or query is a documented 400 (PostgreSQL text
            # cannot hold it) that JSON Schema cannot express on every string.
            "allow-x00": False,
        },
        "checks": {
            # A well-formed request can still break a rule no schema can express (an unknown
            # integration id, a name already taken, a domain that is not the address's): 422.
            # A well-formed If-None-Match may name the current version (304), a well-formed
            # If-Match an older one (412): both documented answers to valid requests.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "304", "401", "403", "404", "409", "412", "422"]
            },
        },
    }
)


class FuzzTenant:
    """A tenant with data of every kind, its key, and the ids the fuzzer may aim at."""

    def __init__(self, setup):
        self.key = factories.make_api_key(setup.tenant)
        channels = [factories.make_channel(setup, "email"), factories.make_channel(setup, "sms")]
        channels.append(factories.make_channel(setup, "email", metadata={"team": "care"}))
        pending = factories.make_domain(setup.tenant, "pending.example.com", verified=False)
        endpoint, _ = factories.make_webhook_endpoint(setup.tenant, "http://127.0.0.1:9/fuzz")
        delivery = webhooks.send_test(setup.tenant.id, endpoint.id, factories.ACTOR)
        db.session.commit()
        self.ids = {
            "channel_id": [c.id for c in channels],
            "integration_id": [setup.email_integration.id, setup.sms_integration.id],
            "domain_id": [setup.domain.id, pending.id],
            "phone_number_id": [setup.number.id],
            "endpoint_id": [endpoint.id],
            "delivery_id": [delivery.id],
        }
        self.created_at = channels[-1].created_at

    def aim(self, case) -> None:
        """Point some generated ids at real resources; usable cursors and time ranges."""
        aim_case(case, self.ids, self.created_at)


@pytest.fixture
def fuzz_tenant(app, setup) -> FuzzTenant:
    """The data the fuzzer runs against."""
    return FuzzTenant(setup)


# Loaded from the builder (pytest 9 breaks schemathesis' fixture-based loader); the served
# document is the same one (test_document_is_served_without_a_key).
fuzz = schemathesis.openapi.from_dict(
    build_openapi(create_app(base_config("sqlite://"))), config=FUZZ_CONFIG
)


@fuzz.parametrize()
@settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_conforms_to_its_document_under_fuzzing(case, app, fuzz_tenant):
    """Every default check holds: no 5xx, documented statuses, content types, headers, schemas."""
    # This test's app (a fresh database); checks that re-send requests go to it as well.
    case.operation.schema.app = case.operation.app = app
    fuzz_tenant.aim(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_tenant.key}"})


def test_a_well_formed_cursor_that_points_nowhere_is_accepted(api, setup):
    """A cursor is a position, not a row: one between rows (as the fuzzer makes them) pages on."""
    factories.make_channel(setup, "email")
    cursor = encode_cursor(datetime.now(UTC) + timedelta(days=1), "ffffffff")
    response = api.get(f"/api/channels?cursor={cursor}")
    assert response.status_code == 200 and len(response.get_json()["data"]) == 1
