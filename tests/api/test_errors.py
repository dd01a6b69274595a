"""DESIGN §4's error table: every status in the JSON envelope, whatever raised it.

429 lives in test_rate_limits.py (it needs the limiter switched on).
"""

from __future__ import annotations

import json

import pytest

from core.extensions import db
from core.models import Channel
from core.services import accounts
from core.services import channels as channel_service
from tests import factories
from tests.api.assertions import STACK_TRACE_MARKERS, assert_error, count_rows

UNKNOWN_ID = "123e4567-e89b-42d3-a456-426614174000"


# --- 400 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"name": "x",}',
        b"",
        b"\xff\xfe{}",
        b'{"name": NaN}',
        b'{"metadata": {"n": Infinity}}',
        b'{"metadata": {"n": -Infinity}}',
    ],
    ids=["broken", "trailing comma", "empty", "not utf-8", "NaN", "Infinity", "-Infinity"],
)
def test_a_body_that_is_not_json_is_400(api, setup, raw):
    """Invalid JSON (including NaN/Infinity, which JSON does not have): 400 bad_request."""
    response = api.post("/api/channels", data=raw, content_type="application/json")
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"", 202),
        (b" \t\r\n", 202),  # JSON's whitespace: no body
        (b"{}", 202),
        (b"\x0b", 400),  # whitespace to Python's bytes.strip(), not to JSON (RFC 8259 §2)
        (b"\x0c", 400),
        (b"\x1c\x1d\x1e\x1f", 400),
        (b" \x0b ", 400),
    ],
    ids=["empty", "json whitespace", "{}", "VT", "FF", "separators", "VT in spaces"],
)
def test_an_optional_body_is_json_or_nothing(api, setup, raw, status):
    """Action routes take an optional JSON object: nothing, JSON's own whitespace or an object
    is accepted; any other byte is a body that is not JSON (found by the live fuzzer)."""
    endpoint, _ = factories.make_webhook_endpoint(setup.tenant, "http://127.0.0.1:9/in")
    response = api.post(
        f"/api/webhook_endpoints/{endpoint.id}/test", data=raw, content_type="application/json"
    )
    if status == 400:
        assert_error(response, 400, "bad_request")
    else:
        assert response.status_code == status, response.get_data(as_text=True)


@pytest.mark.parametrize(
    "body",
    [[], [{"name": "x"}], "channel", 42, None, True],
    ids=["[]", "array", "string", "number", "null", "bool"],
)
def test_a_json_body_that_is_not_an_object_is_400(api, setup, body):
    """A JSON array, string, number, null or boolean body: 400 bad_request."""
    response = api.post("/api/channels", data=json.dumps(body), content_type="application/json")
    assert "object" in assert_error(response, 400, "bad_request")["message"]


@pytest.mark.parametrize(
    "fragment",
    ['"name": "a\\ud800b"', '"metadata": {"k": "\\udc00"}', '"metadata": {"\\ud83d": 1}'],
    ids=["in the name", "in a metadata value", "in a metadata key"],
)
def test_an_unpaired_surrogate_is_400(api, setup, fragment):
    """ "\\ud800" parses as JSON but is not text any database stores: 400, never a 500."""
    payload = setup.email_payload()
    payload.pop("name")
    raw = json.dumps(payload)[:-1] + ", " + fragment + "}"
    response = api.post("/api/channels", data=raw, content_type="application/json")
    assert_error(response, 400, "bad_request")
    assert count_rows(Channel) == 0


@pytest.mark.parametrize(
    "raw_fragment",
    [
        b'"name": "a\\uD800b"',  # upper-case hex digits
        b'"metadata": {"k": "\\uDfFf"}',
        b'"name": "a\xed\xa0\x80b"',  # the surrogate's own UTF-8 bytes, not an escape
    ],
    ids=["escaped, upper case", "escaped, mixed case", "as bytes"],
)
def test_every_spelling_of_an_unpaired_surrogate_is_400(api, setup, raw_fragment):
    """The body's checks run only when its text may hold a surrogate: every way one can get in
    must still be seen (``json_body``'s pre-filter)."""
    payload = setup.email_payload()
    payload.pop("name")
    raw = json.dumps(payload).encode()[:-1] + b", " + raw_fragment + b"}"
    response = api.post("/api/channels", data=raw, content_type="application/json")
    assert "surrogate" in assert_error(response, 400, "bad_request")["message"]
    assert count_rows(Channel) == 0


def test_an_escaped_backslash_before_u_d800_is_text(api, setup):
    """``\\\\ud800`` is a backslash and the letters ``ud800``: the pre-filter looks twice,
    the body is fine."""
    response = api.post(
        "/api/channels", json=setup.email_payload(name="C:\\ud800"), content_type="application/json"
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["name"] == "C:\\ud800"


@pytest.mark.parametrize(
    "body",
    [
        {"metadata": {"bad\u0000key": 1}},
        {"metadata": {"k": "bad\u0000value"}},
        {"channels": [{"metadata": {"k": "x"}}, {"name": ["deep", ["er", "\u0000"]]}]},
    ],
    ids=["a metadata key", "a metadata value", "deep in a list"],
)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32-le"])
def test_a_nul_escape_anywhere_in_any_encoding_is_400(api, setup, body, encoding):
    """NUL can only come from its escape; the escape is found in the text as parsed, whatever
    the body's encoding (json.loads reads UTF-8, -16 and -32)."""
    raw = json.dumps({**setup.email_payload(), **body}).encode(encoding)
    response = api.post("/api/channels", data=raw, content_type="application/json")
    assert "NUL" in assert_error(response, 400, "bad_request")["message"]
    assert count_rows(Channel) == 0


def test_a_utf16_body_without_nul_is_parsed(api, setup):
    """The encodings json.loads accepts stay accepted."""
    raw = json.dumps(setup.email_payload(name="UTF-16 é")).encode("utf-16")
    response = api.post("/api/channels", data=raw, content_type="application/json")
    assert response.status_code == 201 and response.get_json()["name"] == "UTF-16 é"


def _nest(depth: int, innermost):
    """``innermost`` inside ``depth`` containers, objects and lists in turn, an object outside."""
    value = innermost
    for level in range(depth):
        value = {"k": value} if (depth - level) % 2 else [value]
    return value


@pytest.mark.parametrize("depth", range(28, 36))
@pytest.mark.parametrize("innermost", [[], {}, "x", 1, ["x"]], ids=repr)
def test_the_nesting_limit_is_exact(api, setup, depth, innermost):
    """A value may sit inside MAX_DEPTH containers (the body being the first), not more: the
    line falls exactly there for empty and non-empty innermost values."""
    from blueprints.api import MAX_DEPTH

    body = _nest(depth, innermost)  # ``innermost`` inside ``depth`` containers
    deepest = depth + 1 if isinstance(innermost, list | dict) and innermost else depth
    response = api.post("/api/channels", json=body)
    if deepest > MAX_DEPTH:
        assert "nested deeper" in assert_error(response, 400, "bad_request")["message"]
    else:
        assert response.status_code == 422, response.get_json()  # past the body's checks


def test_a_properly_paired_surrogate_is_text(api, setup):
    """An escaped emoji (a surrogate pair) is ordinary text."""
    raw = json.dumps(setup.email_payload(name="Launch \U0001f680"))
    assert "\\ud83d\\ude80" in raw
    response = api.post("/api/channels", data=raw, content_type="application/json")
    assert response.status_code == 201 and response.get_json()["name"] == "Launch \U0001f680"


def test_a_number_too_large_for_a_float_is_a_field_error(api, setup):
    """1e999 parses as infinity: metadata refuses it (422), it is never stored."""
    raw = json.dumps(setup.email_payload())[:-1] + ', "metadata": {"n": 1e999}}'
    response = api.post("/api/channels", data=raw, content_type="application/json")
    assert set(assert_error(response, 422, "validation_error")["fields"]) == {"metadata"}


@pytest.mark.parametrize(
    "depth", [40, 20_000], ids=["deeper than allowed", "deeper than the parser"]
)
def test_deeply_nested_json_is_400(api, setup, depth):
    """Nesting beyond the limit is refused before any rule runs; never a 500 (RecursionError)."""
    raw = '{"metadata": {"k": ' + "[" * depth + "]" * depth + "}}"
    assert len(raw) < 64 * 1024
    response = api.post("/api/channels", data=raw, content_type="application/json")
    assert_error(response, 400, "bad_request")


def test_patch_with_a_non_object_body_is_400(api, setup):
    """PATCH goes through the same body parsing."""
    channel = factories.make_channel(setup, "email")
    response = api.patch(f"/api/channels/{channel.id}", data="[1]", content_type="application/json")
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=ten",
        "limit=",
        "cursor=not-a-cursor",
        "cursor=W10",  # valid base64 of [] : a cursor this API never made
        "channel_type=fax",
        "status=paused",
        "is_default=maybe",
    ],
)
def test_a_bad_query_parameter_is_400(api, setup, query):
    """GET /api/channels with an invalid filter, limit or cursor: 400 bad_request."""
    assert_error(api.get(f"/api/channels?{query}"), 400, "bad_request")


@pytest.mark.parametrize(
    "path",
    [
        "/api/integrations?limit=0",
        "/api/email_domains?cursor=x",
        "/api/phone_numbers?limit=500",
        "/api/audit_events?cursor=%%%",
        "/api/integrations?channel_type=fax",
    ],
)
def test_other_lists_check_their_query_parameters(api, setup, path):
    """Every list endpoint answers 400 to a bad limit, cursor or filter."""
    assert_error(api.get(path), 400, "bad_request")


def test_dry_run_must_be_a_boolean(api, setup):
    """?dry_run=maybe: 400, and nothing is created."""
    response = api.post("/api/channels?dry_run=maybe", json=setup.email_payload())
    assert_error(response, 400, "bad_request")
    assert count_rows(Channel) == 0


# --- 401 / 403 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer chk_nope_nope",
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
    ],
    ids=["absent", "empty", "scheme only", "scheme and space", "unknown key", "malformed", "basic"],
)
def test_no_or_unknown_key_is_401(client, tenant, authorization):
    """No key, an unknown key or another scheme: 401 unauthorized with WWW-Authenticate."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/api/channels", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_key_with_a_wrong_secret_is_401(client, tenant):
    """The right prefix with a wrong secret part is not a key."""
    key = factories.make_api_key(tenant)
    forged = key[: key.rindex("_") + 1] + "x" * 43
    assert_error(
        client.get("/api/channels", headers={"Authorization": f"Bearer {forged}"}),
        401,
        "unauthorized",
    )


def test_a_revoked_key_is_401(api, tenant):
    """A key works until it is revoked, then answers 401."""
    assert api.get("/api/channels").status_code == 200
    key = accounts.find_api_key(api.key)
    accounts.revoke_api_key(tenant.id, key.id, factories.ACTOR)
    db.session.commit()
    assert_error(api.get("/api/channels"), 401, "unauthorized")


def test_401_comes_before_the_body_is_read(client, tenant):
    """Without a key a write is 401 even with a broken body (no information leaks)."""
    response = client.post("/api/channels", data="{", content_type="application/json")
    assert_error(response, 401, "unauthorized")


@pytest.fixture
def reader(client, tenant):
    """A client with a read-only key of ``tenant``."""
    return factories.ApiClient(client, factories.make_api_key(tenant, scope="read"))


def test_a_read_key_may_read(reader, setup):
    """GET with a read key: 200."""
    channel = factories.make_channel(setup, "email")
    assert reader.get("/api/channels").status_code == 200
    assert reader.get(f"/api/channels/{channel.id}").status_code == 200


@pytest.mark.parametrize(
    "method, path",
    [
        ("post", "/api/channels"),
        ("patch", "/api/channels/{channel}"),
        ("delete", "/api/channels/{channel}"),
        ("post", "/api/integrations"),
        ("post", "/api/email_domains/{domain}/verify"),
        ("post", "/api/phone_numbers/{number}/release"),
        ("delete", "/api/phone_numbers/{number}"),
    ],
)
def test_a_read_key_on_a_write_is_403(reader, setup, method, path):
    """POST/PATCH/DELETE with a read key: 403 forbidden, and nothing changes."""
    channel = factories.make_channel(setup, "email")
    path = path.format(channel=channel.id, domain=setup.domain.id, number=setup.number.id)
    body = {"json": setup.email_payload()} if method != "delete" else {}
    response = getattr(reader, method)(path, **body)
    assert_error(response, 403, "forbidden")
    assert reader.get(f"/api/channels/{channel.id}").get_json()["name"] == channel.name
    assert reader.get(f"/api/phone_numbers/{setup.number.id}").get_json()["status"] == "active"
    assert count_rows(Channel) == 1


# --- 404 / 405 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel_id",
    [UNKNOWN_ID, "not-a-uuid", "x" * 300, "0"],
    ids=["unknown", "malformed", "long", "zero"],
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_an_unknown_or_malformed_channel_id_is_404(api, setup, method, channel_id):
    """Unknown and malformed ids alike: 404 not_found with the same body."""
    kwargs = {"json": {"name": "x"}} if method == "patch" else {}
    response = getattr(api, method)(f"/api/channels/{channel_id}", **kwargs)
    error = assert_error(response, 404, "not_found")
    assert error == {"code": "not_found", "message": "Channel not found."}


def test_a_nul_character_is_refused_before_the_database(api, setup):
    """NUL (which PostgreSQL text cannot hold) in a path is 404, in a query or a JSON string 400."""
    assert_error(api.get("/api/channels/%00"), 404, "not_found")
    assert_error(api.get("/api/channels?q=%00"), 400, "bad_request")
    body = setup.email_payload(name="Bad\u0000name")
    assert_error(api.post("/api/channels", json=body), 400, "bad_request")
    assert count_rows(Channel) == 0


@pytest.mark.parametrize("path", ["/api/nope", "/api/channels/a/b", "/api", "/api/"])
def test_an_unknown_api_path_is_a_json_404(api, path):
    """An unknown path under /api answers the JSON envelope, never an HTML page."""
    response = api.get(path)
    assert_error(response, 404, "not_found")
    assert b"<html" not in response.data.lower()


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("delete", "/api/channels", {"GET", "POST"}),
        ("put", "/api/channels/{id}", {"GET", "PATCH", "DELETE"}),
        ("patch", "/api/email_domains/{id}", {"GET", "DELETE"}),
        ("get", "/api/phone_numbers/{id}/release", {"POST"}),
    ],
)
def test_a_wrong_method_is_405_with_allow(api, setup, method, path, allowed):
    """405 method_not_allowed in the envelope, with an Allow header naming the methods."""
    response = getattr(api.client, method)(
        path.format(id=UNKNOWN_ID), headers={"Authorization": f"Bearer {api.key}"}
    )
    assert_error(response, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


# --- 409 ------------------------------------------------------------------------------------------


def test_a_state_conflict_is_409(api, setup):
    """Deleting a domain in use: 409 conflict (idempotency_conflict: test_idempotency)."""
    factories.make_channel(setup, "email", name="Receipts")
    assert (
        "Receipts"
        in assert_error(api.delete(f"/api/email_domains/{setup.domain.id}"), 409, "conflict")[
            "message"
        ]
    )


# --- 413 / 415 ------------------------------------------------------------------------------------


def test_a_body_over_64_kib_is_413(api, setup):
    """A body larger than 64 KiB: 413 payload_too_large, nothing created."""
    payload = setup.email_payload(metadata={"note": "x" * (64 * 1024)})
    response = api.post("/api/channels", json=payload)
    assert_error(response, 413, "payload_too_large")
    assert count_rows(Channel) == 0


def test_a_body_just_under_the_limit_is_read(api, setup):
    """Just under 64 KiB is parsed (and here refused by the rules, not by size)."""
    payload = setup.email_payload(metadata={"note": "x" * (60 * 1024)})
    response = api.post("/api/channels", json=payload)
    assert set(assert_error(response, 422, "validation_error")["fields"]) == {"metadata"}


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
    ids=["none", "text", "form", "multipart"],
)
def test_a_write_without_application_json_is_415(api, setup, content_type):
    """POST without Content-Type: application/json: 415 unsupported_media_type."""
    kwargs = {"data": json.dumps(setup.email_payload())}
    if content_type:
        kwargs["content_type"] = content_type
    response = api.post("/api/channels", **kwargs)
    assert_error(response, 415, "unsupported_media_type")
    assert count_rows(Channel) == 0


def test_json_with_a_charset_is_accepted(api, setup):
    """application/json; charset=utf-8 is JSON."""
    response = api.post(
        "/api/channels",
        data=json.dumps(setup.email_payload()),
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 201


def test_patch_without_application_json_is_415(api, setup):
    """PATCH also needs JSON."""
    channel = factories.make_channel(setup, "email")
    response = api.patch(f"/api/channels/{channel.id}", data="name=x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


# --- 422 ------------------------------------------------------------------------------------------


def test_a_rule_failure_is_422_with_fields(api, setup):
    """The documented example: a missing send_from_email on an email channel."""
    payload = setup.email_payload()
    del payload["send_from_email"]
    error = assert_error(api.post("/api/channels", json=payload), 422, "validation_error")
    assert error["message"] == "The channel could not be created."
    assert list(error["fields"]) == ["send_from_email"]


# --- 500 ------------------------------------------------------------------------------------------


def _boom(*args, **kwargs):
    raise RuntimeError("kaboom-internal-detail in /srv/secret/path.py")


@pytest.mark.parametrize(
    "method, target",
    [
        ("post", "create_channel"),
        ("get", "channel_row"),  # the view's one lookup (core.services.channel_queries)
        ("patch", "update_channel"),
        ("delete", "delete_channel"),
    ],
)
def test_an_unexpected_error_is_a_500_envelope_without_a_stack_trace(
    api, setup, monkeypatch, method, target
):
    """A bug in a service: 500 internal_error in the envelope; nothing of the exception leaks."""
    import blueprints.api.channels as view_module

    channel = factories.make_channel(setup, "email")
    owner = view_module if target == "channel_row" else channel_service
    monkeypatch.setattr(owner, target, _boom)
    path = "/api/channels" if method == "post" else f"/api/channels/{channel.id}"
    kwargs = {"json": setup.email_payload()} if method in ("post", "patch") else {}
    if method == "patch":
        kwargs = {"json": {"name": "Renamed"}}
    response = getattr(api, method)(path, **kwargs)
    error = assert_error(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    assert "kaboom" not in text and "RuntimeError" not in text
    assert not any(marker in text for marker in STACK_TRACE_MARKERS)
    assert error["message"] == "Something went wrong on our side. The error was logged."
    assert count_rows(Channel) == 1


def test_a_500_on_a_list_is_an_envelope_too(api, setup, monkeypatch):
    """The same for a read view that fails while reading its page."""
    import blueprints.api.channels as view_module

    monkeypatch.setattr(view_module, "api_channel_page", _boom)
    assert_error(api.get("/api/channels"), 500, "internal_error")


def test_errors_carry_the_api_security_headers(api):
    """Error responses are JSON with nosniff and no caching, like every API response."""
    response = api.get("/api/nope")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
