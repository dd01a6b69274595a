"""Hostile input: malformed, huge and deeply nested JSON, wrong types, control characters, NUL
bytes, emoji, SQL and HTML payloads, open redirects.

Every case answers a clear 4xx in the JSON envelope (or, for valid payloads, stores them
verbatim), never a 500, and a rejected request leaves every table exactly as it was.
"""

from __future__ import annotations

import json

import pytest

from tests.api.assertions import assert_error, database_state
from tests.console.conftest import ConsoleClient, make_console_user
from tests.console.helpers import sign_in, soup

SQL_PAYLOADS = [
    "'; DROP TABLE channels; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM tenants;--",
    "%_\\%' ESCAPE '\\",
]
HTML_PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg/onload=alert(1)>",
    "javascript:alert(1)//{{7*7}}",
]
UNICODE_NAMES = ["📣 Alerts 🚀", "Ünïcödé ✓", "中文频道", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "ZWJ 👩‍👩‍👧‍👦"]
CONTROL_NAMES = ["Bell\x07", "Esc\x1b[31m", "Tab\tinside", "Line\nbreak", "C1\x85inside", "DEL\x7f"]


@pytest.fixture
def rows_unchanged(app, api):
    """Asserts, after the test, that no table changed (one warm-up request first: last_used_at)."""
    api.get("/api/channels")
    before = database_state()
    yield
    assert database_state() == before


def _write_targets(setup, channel_id: str, integration_id: str) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/channels"),
        ("PATCH", f"/api/channels/{channel_id}"),
        ("POST", "/api/integrations"),
        ("PATCH", f"/api/integrations/{integration_id}"),
        ("POST", "/api/email_domains"),
        ("POST", "/api/phone_numbers"),
    ]


@pytest.fixture
def targets(app, setup):
    """Every JSON write endpoint (with ids of existing rows for the PATCHes)."""
    from tests.factories import make_channel

    channel = make_channel(setup, "email")
    return _write_targets(setup, channel.id, setup.email_integration.id)


MALFORMED = [
    b"{",
    b'{"name": "x",}',
    b"[1, 2]",
    b'"a string"',
    b"null",
    b"42",
    b'{"name": NaN}',
    b'{"name": Infinity}',
    b'{"name": "x"} trailing',
    b"\xff\xfe\x00{",
    b'{"name": "\xc3\x28"}',
    b"\x00",
]


def test_malformed_json_is_400_on_every_write(api, targets, rows_unchanged):
    """Broken JSON, non-objects, NaN/Infinity, invalid UTF-8: 400 bad_request, nothing stored."""
    for method, path in targets:
        for raw in MALFORMED:
            response = api.client.open(
                path,
                method=method,
                data=raw,
                headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
            )
            assert_error(response, 400, "bad_request")


def test_wrong_content_type_is_415(api, targets, rows_unchanged):
    """A write that is not application/json: 415 on every write endpoint."""
    for method, path in targets:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            response = api.client.open(
                path,
                method=method,
                data=b'{"name": "x"}',
                headers={"Authorization": f"Bearer {api.key}", "Content-Type": content_type},
            )
            assert_error(response, 415, "unsupported_media_type")


def test_body_over_64_kib_is_413(api, targets, rows_unchanged):
    """More than 64 KiB (declared or streamed): 413 payload_too_large in the envelope."""
    huge = json.dumps({"name": "x" * (64 * 1024)}).encode()
    for method, path in targets:
        response = api.client.open(
            path,
            method=method,
            data=huge,
            headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
        )
        assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize("depth", [33, 200, 20_000])
def test_deeply_nested_json_is_400(api, targets, rows_unchanged, depth):
    """Nesting past 32 levels (up to 20 000, which would overflow a recursive parser): 400."""
    body = ('{"metadata": ' + '{"a": ' * depth + "1" + "}" * depth + "}").encode()
    if len(body) > 64 * 1024:
        body = ('{"metadata": ' + "[" * depth + "]" * depth + "}").encode()
    for method, path in targets:
        response = api.client.open(
            path,
            method=method,
            data=body,
            headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
        )
        assert_error(response, 400, "bad_request")


# --- wrong types, field by field --------------------------------------------------------------

STRING, BOOLEAN, OBJECT, LIST = "string", "boolean", "object", "list"
WRONG_VALUES = {
    STRING: [42, 4.2, True, [], ["x"], {}, {"a": "b"}],
    BOOLEAN: [1, 0, "true", "yes", [], {}],
    OBJECT: ["{}", 1, True, [], ["a"]],
    LIST: ["sms", 1, True, {}, {"sms": True}],
}
CHANNEL_FIELDS = {
    "name": STRING,
    "channel_type": STRING,
    "integration_id": STRING,
    "send_from_email": STRING,
    "email_domain_id": STRING,
    "is_default": BOOLEAN,
    "metadata": OBJECT,
}
SMS_CHANNEL_FIELDS = {"send_from_phone_number": STRING, "phone_number_id": STRING}
INTEGRATION_FIELDS = {
    "name": STRING,
    "channel_type": STRING,
    "provider": STRING,
    "credentials": OBJECT,
    "status": STRING,
}
PHONE_NUMBER_FIELDS = {
    "phone_number": STRING,
    "country": STRING,
    "integration_id": STRING,
    "capabilities": LIST,
    "create_channel": BOOLEAN,
}


def _cases(setup, channel_id, integration_id):
    """(method, path, valid body, {field: kind}) for every JSON write body of the API."""
    email = setup.email_payload(name="Typed")
    sms = setup.sms_payload(name="Typed SMS")
    smtp = {
        "name": "Typed integration",
        "channel_type": "email",
        "provider": "smtp",
        "credentials": {"host": "smtp.example.com", "port": 587, "username": "u", "password": "p"},
    }
    number = {"phone_number": "+14155559876", "integration_id": setup.sms_integration.id}
    patch_fields = {k: v for k, v in CHANNEL_FIELDS.items() if k != "channel_type"} | {
        "status": STRING
    }
    return [
        ("POST", "/api/channels", email, CHANNEL_FIELDS),
        ("POST", "/api/channels", sms, {**CHANNEL_FIELDS, **SMS_CHANNEL_FIELDS}),
        ("PATCH", f"/api/channels/{channel_id}", {}, patch_fields),
        ("POST", "/api/integrations", smtp, INTEGRATION_FIELDS),
        (
            "PATCH",
            f"/api/integrations/{integration_id}",
            {},
            {"name": STRING, "credentials": OBJECT, "status": STRING},
        ),
        ("POST", "/api/email_domains", {"domain": "typed.example"}, {"domain": STRING}),
        ("POST", "/api/phone_numbers", number, PHONE_NUMBER_FIELDS),
    ]


def test_wrong_types_for_every_field_of_every_body_are_422_on_that_field(api, setup):
    """Each field of each POST/PATCH body with each wrong JSON type: 422 naming that field."""
    from tests.factories import make_channel

    channel = make_channel(setup, "email", name="Existing")
    api.get("/api/channels")
    before = database_state()
    tried = 0
    for method, path, body, fields in _cases(setup, channel.id, setup.email_integration.id):
        for field, kind in fields.items():
            if field in SMS_CHANNEL_FIELDS and body.get("channel_type") != "sms":
                continue
            for wrong in WRONG_VALUES[kind]:
                sent = {**body, field: wrong}
                if (
                    field in ("send_from_email", "email_domain_id")
                    and body.get("channel_type") == "sms"
                ):
                    sent.pop(field)  # the email fields of an SMS channel are covered elsewhere
                    continue
                response = api.client.open(
                    path, method=method, json=sent, headers={"Authorization": f"Bearer {api.key}"}
                )
                error = assert_error(response, 422, "validation_error")
                assert field in error["fields"], (method, path, field, wrong, error)
                tried += 1
    assert tried > 200
    assert database_state() == before


def test_wrong_credential_types_are_422_on_the_credential(api, setup, rows_unchanged):
    """Each credential of a provider with a wrong type: 422 on ``credentials.<name>``."""
    base = {
        "host": "smtp.example.com",
        "port": 587,
        "username": "u",
        "password": "p",
        "use_tls": True,
    }
    for field, wrong in [
        ("host", 1),
        ("port", "many"),
        ("port", 70000),
        ("port", True),
        ("username", []),
        ("password", {}),
        ("use_tls", "yes"),
        ("host", "a\x07b"),
        ("host", ""),
        ("host", "a..b"),
        ("host", "x" * 64 + ".com"),
        ("host", "smtp example.com"),
        ("host", "-smtp.example.com"),
        ("host", "300.1.2.3"),
    ]:
        response = api.post(
            "/api/integrations",
            json={
                "name": "I",
                "channel_type": "email",
                "provider": "smtp",
                "credentials": {**base, field: wrong},
            },
        )
        error = assert_error(response, 422, "validation_error")
        assert f"credentials.{field}" in error["fields"], (field, wrong, error)


@pytest.mark.parametrize(
    "host, stored",
    [
        ("smtp.example.com", "smtp.example.com"),
        ("SMTP.Example.COM.", "smtp.example.com"),
        ("mailhog", "mailhog"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_smtp_host_is_a_host_name_or_an_ip_address(api, setup, host, stored):
    """Host names (one label allowed, IDNA stored as ASCII) and IP literals are accepted."""
    response = api.post(
        "/api/integrations",
        json={
            "name": "Mail relay",
            "channel_type": "email",
            "provider": "smtp",
            "credentials": {"host": host, "use_tls": False},
        },
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["credentials"]["host"] == stored


# --- control characters, NUL bytes, emoji -------------------------------------------------------


@pytest.mark.parametrize("name", CONTROL_NAMES)
def test_control_characters_in_names_are_422_on_name(api, setup, rows_unchanged, name):
    """Control characters (C0, DEL, C1) in a name: 422 on name, on create and on rename."""
    response = api.post("/api/channels", json=setup.email_payload(name=name))
    assert assert_error(response, 422, "validation_error")["fields"].keys() == {"name"}
    response = api.post(
        "/api/integrations", json={"name": name, "channel_type": "sms", "provider": "console"}
    )
    assert "name" in assert_error(response, 422, "validation_error")["fields"]


@pytest.mark.parametrize("name", UNICODE_NAMES)
def test_four_byte_unicode_names_are_stored_verbatim(api, setup, name):
    """Emoji and other astral-plane characters: accepted, stored and returned unchanged."""
    created = api.post("/api/channels", json=setup.email_payload(name=name))
    assert created.status_code == 201, created.get_json()
    fetched = api.get(f"/api/channels/{created.get_json()['id']}").get_json()
    assert fetched["name"] == name
    assert (
        api.get("/api/channels", query_string={"q": name[:3]}).get_json()["data"][0]["name"] == name
    )


NUL_PLACES = [
    ("GET", "/api/channels/%00", 404),
    ("GET", "/api/channels/abc%00def", 404),
    ("GET", "/api/integrations/%00", 404),
    ("GET", "/api/email_domains/%00", 404),
    ("GET", "/api/phone_numbers/%00", 404),
    ("DELETE", "/api/channels/%00", 404),
    ("PATCH", "/api/channels/%00", 404),
    ("GET", "/api/channels?q=%00", 400),
    ("GET", "/api/channels?cursor=%00", 400),
    ("GET", "/api/channels?channel_type=%00", 400),
    ("GET", "/api/audit_events?resource_id=%00", 400),
]


def test_nul_bytes_anywhere_never_reach_the_database(api, setup, rows_unchanged):
    """NUL in ids, queries, JSON keys/strings, the key: a 4xx (PostgreSQL cannot store NUL)."""
    for method, path, expected in NUL_PLACES:
        response = api.client.open(
            path, method=method, headers={"Authorization": f"Bearer {api.key}"}
        )
        assert_error(response, expected, {400: "bad_request", 404: "not_found"}[expected])
    json_places = [
        ("/api/channels", setup.email_payload(metadata={"note": "a\x00b"})),
        ("/api/channels", setup.email_payload(metadata={"k\x00": "v"})),
        ("/api/channels", setup.email_payload(integration_id="\x00")),
        ("/api/channels", setup.email_payload(email_domain_id="abc\x00")),
        ("/api/channels", setup.email_payload(send_from_email="a\x00b@example.com")),
        (
            "/api/channels",
            setup.sms_payload(phone_number_id="\x00", send_from_phone_number="+1\x00"),
        ),
        ("/api/email_domains", {"domain": "ex\x00ample.com"}),
        (
            "/api/phone_numbers",
            {"phone_number": "+1415\x00555", "integration_id": setup.sms_integration.id},
        ),
        ("/api/integrations", {"name": "\x00", "channel_type": "email", "provider": "console"}),
    ]
    for path, body in json_places:
        assert_error(api.post(path, json=body), 400, "bad_request")
    for forged in ("chk_\x00", "chk_ab\x00cd_secret", "chk_abcd_se\x00cret"):
        assert_error(
            api.get("/api/channels", headers={"Authorization": f"Bearer {forged}"}),
            401,
            "unauthorized",
        )


# --- SQL and HTML payloads ----------------------------------------------------------------------


@pytest.mark.parametrize("payload", SQL_PAYLOADS + HTML_PAYLOADS)
def test_sql_and_html_payloads_are_stored_verbatim(api, setup, payload):
    """Injection payloads in every free-text field are plain data: stored and returned as sent."""
    metadata = {"note": payload, payload[:40]: payload}
    created = api.post("/api/channels", json=setup.email_payload(name=payload, metadata=metadata))
    assert created.status_code == 201, created.get_json()
    channel = api.get(f"/api/channels/{created.get_json()['id']}").get_json()
    assert channel["name"] == payload and channel["metadata"] == metadata
    listed = api.get("/api/channels", query_string={"q": payload}).get_json()["data"]
    assert [c["name"] for c in listed] == [payload]
    integration = api.post(
        "/api/integrations", json={"name": payload, "channel_type": "email", "provider": "console"}
    )
    assert integration.status_code == 201 and integration.get_json()["name"] == payload
    assert api.get("/api/channels").status_code == 200  # the tables are all still there


@pytest.fixture
def console_client(app, tenant):
    """A browser-like client signed in as an admin of ``tenant``."""
    app.test_client_class = ConsoleClient
    client = app.test_client()
    user = make_console_user("hostile-admin@example.org", "admin", tenant)
    assert sign_in(client, user.email).status_code == 303
    return client


def test_html_payloads_are_escaped_in_the_console(app, api, setup, console_client):
    """The channels page shows payload names as text: no raw tag from the data reaches the HTML."""
    for payload in HTML_PAYLOADS:
        created = api.post(
            "/api/channels", json=setup.email_payload(name=payload, metadata={"x": payload})
        )
        assert created.status_code == 201
    pages = [
        console_client.get("/channels"),
        console_client.get("/channels", query_string={"q": "<"}),
    ]
    pages.append(console_client.get("/channels", headers={"HX-Request": "true"}))
    for page in pages:
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img src=x onerror" not in html and "<svg/onload" not in html


# --- open redirects -----------------------------------------------------------------------------

REDIRECT_ATTACKS = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "/\r\nLocation: https://evil.example",
    "\t//evil.example",
    "/\t/evil.example",
    "http://localhost@evil.example/",
]


@pytest.mark.parametrize("target", REDIRECT_ATTACKS)
def test_sign_in_next_never_redirects_off_site(app, tenant, target):
    """``next`` pointing elsewhere: the sign-in still works and lands on a local page."""
    app.test_client_class = ConsoleClient
    client = app.test_client()
    user = make_console_user("redirect-admin@example.org", "admin", tenant)
    page = soup(client.get("/login", query_string={"next": target}))
    for link in page.find_all(["a", "form", "link", "script"]):
        for attribute in ("href", "action", "src"):
            assert "evil.example" not in (link.get(attribute) or "").split("?")[0]
    response = sign_in(client, user.email, next_url=target)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "evil.example" not in location


def test_sign_in_next_keeps_a_local_path(app, tenant):
    """A same-site ``next`` is honoured (the guard does not break the normal flow)."""
    app.test_client_class = ConsoleClient
    client = app.test_client()
    user = make_console_user("local-admin@example.org", "admin", tenant)
    response = sign_in(client, user.email, next_url="/channels?status=disabled")
    assert response.headers["Location"] == "/channels?status=disabled"
