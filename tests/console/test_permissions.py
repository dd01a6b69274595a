"""The permission matrix: every route × method of ``app.url_map`` × role, with its outcome.

``POLICIES`` gives every endpoint its policy; a route added without an entry FAILS
``test_every_route_has_a_policy``. Adding one is one line, e.g.::

    "console.widgets_index": CONSOLE_READ,

Roles: anonymous; ``admin`` (a tenant admin of THIS tenant); ``other_admin`` (an admin of
another tenant, acting on this tenant's objects); ``support`` (support staff viewing this
tenant); ``api_read`` / ``api_write`` (keys of this tenant); ``api_other`` (a write key of
another tenant). Every route's URL names THIS tenant's objects (its channel, integration,
domain, number, key, a teammate, the tenant itself).

Outcomes: ``OK`` (the view ran: 2xx, 3xx, or a 4xx about the empty request such as 409 or
422 — never 401/403/404/405, never a CSRF failure, never a 5xx), ``LOGIN`` (redirected to the
sign-in page), or the status code the role must get (401, 403, 404). A foreign role acting on
an object (a route with path parameters) must get 404, exactly like an unknown id.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import session, url_for
from flask_wtf.csrf import generate_csrf

from app import create_app
from core.extensions import db
from core.models import Passkey
from core.services import accounts, console_sessions, imports, webhooks
from tests import factories
from tests.conftest import base_config
from tests.console.conftest import ConsoleClient, make_console_user
from tests.console.helpers import open_tenant_in_session

OK = "ok"
LOGIN = "login"
FOREIGN = "404 on objects, else ok"  # for other_admin / api_other on tenant-scoped routes
ROLES = ("anonymous", "api_read", "api_other", "other_admin", "support", "admin", "api_write")
CONSOLE_ROLES = ("admin", "other_admin", "support")


@dataclass(frozen=True)
class Policy:
    """Who gets what on a route."""

    name: str
    outcomes: dict

    def expected(self, role: str, has_object: bool):
        outcome = self.outcomes[role]
        if outcome == FOREIGN:
            return 404 if has_object else OK
        return outcome


_NOT_SIGNED_IN = {"anonymous": LOGIN, "api_read": LOGIN, "api_write": LOGIN, "api_other": LOGIN}
_NO_KEY = {"anonymous": 401, "admin": 401, "other_admin": 401, "support": 401}

PUBLIC = Policy("public", dict.fromkeys(ROLES, OK))
# Signing out ends any session and always lands on the sign-in page.
SIGN_OUT = Policy("sign out", dict.fromkeys(ROLES, LOGIN))
# /metrics with METRICS_TOKEN unset (the matrix's config): off, a 404 for everyone
# (its bearer token is tested in tests/test_ops.py).
OFF = Policy("off", dict.fromkeys(ROLES, 404))
# A tenant page: admins and support read it; another tenant's admin sees their own tenant.
CONSOLE_READ = Policy(
    "console read", {**_NOT_SIGNED_IN, "admin": OK, "support": OK, "other_admin": FOREIGN}
)
# A route that writes (or exists only to write: confirmations, live checks): support 403.
CONSOLE_WRITE = Policy(
    "console write", {**_NOT_SIGNED_IN, "admin": OK, "support": 403, "other_admin": FOREIGN}
)
# One's own account (password, sessions): every signed-in user, support staff included.
OWN_ACCOUNT = Policy(
    "own account", {**_NOT_SIGNED_IN, "admin": OK, "support": OK, "other_admin": OK}
)
# One of one's own sessions: the route's session is the admin's, so anyone else gets 404.
OWN_SESSION = Policy(
    "own session", {**_NOT_SIGNED_IN, "admin": OK, "support": 404, "other_admin": 404}
)
# One of one's own passkeys: the route's passkey is the admin's, so anyone else gets 404.
OWN_PASSKEY = Policy(
    "own passkey", {**_NOT_SIGNED_IN, "admin": OK, "support": 404, "other_admin": 404}
)
# The second step of signing in: without a pending sign-in, back to the sign-in page; a
# signed-in user goes on to the console.
SIGN_IN_STEP = Policy(
    "sign-in step", {**_NOT_SIGNED_IN, "admin": OK, "support": OK, "other_admin": OK}
)
# Passkey options for a pending sign-in's second step: nobody here has one pending.
SIGN_IN_STEP_OPTIONS = Policy("sign-in step options", dict.fromkeys(ROLES, 401))
SUPPORT_ONLY = Policy(
    "support only", {**_NOT_SIGNED_IN, "admin": 403, "other_admin": 403, "support": OK}
)
API_READ = Policy("api read", {**_NO_KEY, "api_read": OK, "api_write": OK, "api_other": FOREIGN})
API_WRITE = Policy("api write", {**_NO_KEY, "api_read": 403, "api_write": OK, "api_other": FOREIGN})
CONSOLE_WRITE_POLICIES = (CONSOLE_WRITE,)

POLICIES: dict[str, Policy] = {
    # sign-in
    "console.login": PUBLIC,
    "console.login_verify": SIGN_IN_STEP,
    "console.login_verify_options": SIGN_IN_STEP_OPTIONS,
    "console.login_passkey_options": PUBLIC,
    "console.login_passkey": PUBLIC,
    "console.logout": SIGN_OUT,
    "console.home": CONSOLE_READ,
    # own account
    "console.account_index": OWN_ACCOUNT,
    "console.account_change_password": OWN_ACCOUNT,
    "console.account_password_required": OWN_ACCOUNT,
    "console.account_revoke_other_sessions": OWN_ACCOUNT,
    "console.account_revoke_session": OWN_SESSION,
    "console.account_confirm": OWN_ACCOUNT,
    "console.account_confirm_options": OWN_ACCOUNT,
    "console.account_totp_begin": OWN_ACCOUNT,
    "console.account_totp_setup": OWN_ACCOUNT,
    "console.account_totp_confirm": OWN_ACCOUNT,
    "console.account_totp_remove": OWN_ACCOUNT,
    "console.account_recovery_codes": OWN_ACCOUNT,
    "console.account_passkey_options": OWN_ACCOUNT,
    "console.account_passkey_register": OWN_ACCOUNT,
    "console.account_passkey_remove": OWN_PASSKEY,
    # channels
    "console.channels_index": CONSOLE_READ,
    "console.channels_export": CONSOLE_READ,
    "console.channels_type_fields": CONSOLE_READ,
    "console.channels_edit": CONSOLE_READ,
    "console.channels_new": CONSOLE_WRITE,
    "console.channels_update": CONSOLE_WRITE,
    "console.channels_check_address": CONSOLE_WRITE,
    "console.channels_test_send": CONSOLE_WRITE,
    "console.channels_make_default": CONSOLE_WRITE,
    "console.channels_disable": CONSOLE_WRITE,
    "console.channels_enable": CONSOLE_WRITE,
    "console.channels_confirm_delete": CONSOLE_WRITE,
    "console.channels_delete": CONSOLE_WRITE,
    # integrations
    "console.integrations_index": CONSOLE_READ,
    "console.integrations_credential_fields": CONSOLE_READ,
    "console.integrations_edit": CONSOLE_READ,
    "console.integrations_new": CONSOLE_WRITE,
    "console.integrations_update": CONSOLE_WRITE,
    "console.integrations_check": CONSOLE_WRITE,
    "console.integrations_disable": CONSOLE_WRITE,
    "console.integrations_enable": CONSOLE_WRITE,
    "console.integrations_confirm_delete": CONSOLE_WRITE,
    "console.integrations_delete": CONSOLE_WRITE,
    # email domains
    "console.email_domains_index": CONSOLE_READ,
    "console.email_domains_show": CONSOLE_READ,
    "console.email_domains_create": CONSOLE_WRITE,
    "console.email_domains_verify": CONSOLE_WRITE,
    "console.email_domains_confirm_delete": CONSOLE_WRITE,
    "console.email_domains_delete": CONSOLE_WRITE,
    # phone numbers
    "console.imports_new": CONSOLE_WRITE,
    "console.imports_upload": CONSOLE_WRITE,
    "console.imports_template": CONSOLE_READ,
    "console.imports_show": CONSOLE_READ,
    "console.imports_confirm": CONSOLE_WRITE,
    "console.imports_cancel": CONSOLE_WRITE,
    "console.imports_report": CONSOLE_READ,
    "console.phone_numbers_index": CONSOLE_READ,
    "console.phone_numbers_show": CONSOLE_READ,
    "console.phone_numbers_new": CONSOLE_WRITE,
    "console.phone_numbers_confirm_release": CONSOLE_WRITE,
    "console.phone_numbers_release": CONSOLE_WRITE,
    "console.phone_numbers_confirm_delete": CONSOLE_WRITE,
    "console.phone_numbers_delete": CONSOLE_WRITE,
    # API keys
    "console.api_keys_index": CONSOLE_READ,
    "console.api_keys_create": CONSOLE_WRITE,
    "console.api_keys_confirm_revoke": CONSOLE_WRITE,
    "console.api_keys_revoke": CONSOLE_WRITE,
    # webhooks
    "console.webhooks_index": CONSOLE_READ,
    "console.webhooks_show": CONSOLE_READ,
    "console.webhooks_create": CONSOLE_WRITE,
    "console.webhooks_update": CONSOLE_WRITE,
    "console.webhooks_test": CONSOLE_WRITE,
    "console.webhooks_rotate": CONSOLE_WRITE,
    "console.webhooks_retry": CONSOLE_WRITE,
    "console.webhooks_confirm_delete": CONSOLE_WRITE,
    "console.webhooks_delete": CONSOLE_WRITE,
    # team, audit log, support
    "console.team_index": CONSOLE_READ,
    "console.team_add": CONSOLE_WRITE,
    "console.team_confirm_remove": CONSOLE_WRITE,
    "console.team_remove": CONSOLE_WRITE,
    "console.team_mfa_policy": CONSOLE_WRITE,
    "console.audit_index": CONSOLE_READ,
    "console.support_tenants": SUPPORT_ONLY,
    "console.support_confirm_open": SUPPORT_ONLY,
    "console.support_open_tenant": SUPPORT_ONLY,
    "console.platform_log_index": SUPPORT_ONLY,
    # operations: load balancers need no credentials
    "ops.healthz": PUBLIC,
    "ops.readyz": PUBLIC,
    "ops.metrics": OFF,
    # JSON API
    "api.openapi": PUBLIC,
    "api.list_channels": API_READ,
    "api.export_channels": API_READ,
    "api.get_channel": API_READ,
    "api.create_channel": API_WRITE,
    "api.update_channel": API_WRITE,
    "api.delete_channel": API_WRITE,
    "api.test_channel": API_WRITE,
    "api.list_integrations": API_READ,
    "api.get_integration": API_READ,
    "api.create_integration": API_WRITE,
    "api.update_integration": API_WRITE,
    "api.delete_integration": API_WRITE,
    "api.check_integration": API_WRITE,
    "api.list_email_domains": API_READ,
    "api.get_email_domain": API_READ,
    "api.create_email_domain": API_WRITE,
    "api.verify_email_domain": API_WRITE,
    "api.delete_email_domain": API_WRITE,
    "api.list_phone_numbers": API_READ,
    "api.get_phone_number": API_READ,
    "api.create_phone_number": API_WRITE,
    "api.create_channels": API_WRITE,
    "api.create_phone_numbers": API_WRITE,
    "api.release_phone_number": API_WRITE,
    "api.delete_phone_number": API_WRITE,
    "api.list_audit_events": API_READ,
    "api.list_webhook_endpoints": API_READ,
    "api.get_webhook_endpoint": API_READ,
    "api.list_webhook_deliveries": API_READ,
    "api.create_webhook_endpoint": API_WRITE,
    "api.update_webhook_endpoint": API_WRITE,
    "api.delete_webhook_endpoint": API_WRITE,
    "api.rotate_webhook_endpoint_secret": API_WRITE,
    "api.test_webhook_endpoint": API_WRITE,
    "api.retry_webhook_delivery": API_WRITE,
}
# Console routes that change something yet are not tenant writes (so not requires_write).
NOT_TENANT_WRITES = {
    "console.login",
    "console.logout",
    "console.support_open_tenant",
    "console.account_change_password",
    "console.account_revoke_other_sessions",
    "console.account_revoke_session",
    "console.login_verify",
    "console.login_verify_options",
    "console.login_passkey_options",
    "console.login_passkey",
    "console.account_confirm",
    "console.account_confirm_options",
    "console.account_totp_begin",
    "console.account_totp_confirm",
    "console.account_totp_remove",
    "console.account_recovery_codes",
    "console.account_passkey_options",
    "console.account_passkey_register",
    "console.account_passkey_remove",
}
IGNORED_METHODS = {"HEAD", "OPTIONS"}
NOT_OBJECTS = {"kind"}


def _routes(app) -> list[tuple[str, str, tuple[str, ...]]]:
    """(endpoint, method, path argument names) of every rule, static files excluded."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - IGNORED_METHODS):
            routes.append((rule.endpoint, method, tuple(sorted(rule.arguments))))
    return sorted(set(routes))


# The url_map of a bare app (no database needed), for parametrizing.
_MATRIX_APP = create_app(base_config("sqlite://"))
ROUTES = _routes(_MATRIX_APP)
# Reads change nothing, so they share one world (one test); each write gets a fresh one.
ROUTE_CASES = [pytest.param([r for r in ROUTES if r[1] == "GET"], id="every GET route")] + [
    pytest.param([r], id=f"{r[1]} {r[0]}") for r in ROUTES if r[1] != "GET"
]


def test_every_route_has_a_policy():
    """Every endpoint in the url_map has a decision; no decision names a route that is gone."""
    endpoints = {endpoint for endpoint, _, _ in ROUTES}
    missing = sorted(endpoints - set(POLICIES))
    assert not missing, f"routes without a permission decision in POLICIES: {missing}"
    stale = sorted(set(POLICIES) - endpoints)
    assert not stale, f"POLICIES names routes that no longer exist: {stale}"


def test_console_writes_use_the_one_write_decorator():
    """Every console route with a write policy carries ``requires_write``; every console route
    that accepts a non-GET method is a write, or one of the few listed exceptions."""
    views = _MATRIX_APP.view_functions
    for endpoint, method, _ in ROUTES:
        if not endpoint.startswith("console."):
            continue
        policy = POLICIES[endpoint]
        if policy in CONSOLE_WRITE_POLICIES:
            assert getattr(views[endpoint], "requires_write", False), endpoint
        if method != "GET" and endpoint not in NOT_TENANT_WRITES:
            assert policy in CONSOLE_WRITE_POLICIES, f"{method} {endpoint} must be a write"


@pytest.fixture
def app_config(database_url):
    """DNS lookups (domain verification) fail fast instead of reaching the network."""
    config = base_config(database_url)
    config.update(DNS_NAMESERVERS="127.0.0.1:9", DNS_TIMEOUT=0.1)
    return config


@dataclass
class World:
    """This tenant's objects, the users and keys of every role, and a client per role."""

    params: dict
    clients: dict
    keys: dict
    csrf_token: str


@pytest.fixture
def world(app, tenant, other_tenant) -> World:
    """A ready tenant with one object of every kind, and the six roles' credentials."""
    ready = factories.make_ready_tenant(tenant)
    channel = factories.make_channel(ready)
    admin = make_console_user("admin@example.org", "admin", tenant)
    teammate = make_console_user("teammate@example.org", "admin", tenant)
    other_admin = make_console_user("other@example.org", "admin", other_tenant)
    support = make_console_user("support@example.org", "support")
    factories.enroll_totp(support)  # support staff open tenants only with a second factor
    revocable = accounts.create_api_key(tenant.id, "Revocable", "write").api_key
    # Server-side sessions: the admin's second one is the object of the session routes.
    other_session, _ = console_sessions.start_session(admin, "192.0.2.1", "another browser")
    # The admin's passkey: the object of the passkey routes (stored as registration would).
    passkey = Passkey(
        user_id=admin.id, name="Laptop", credential_id="Y3JlZGVudGlhbA", public_key="cGs"
    )
    db.session.add(passkey)
    endpoint, _ = factories.make_webhook_endpoint(tenant, "http://127.0.0.1:9/hook")
    delivery = webhooks.send_test(tenant.id, endpoint.id, factories.ACTOR)
    users = {"admin": admin, "other_admin": other_admin, "support": support}
    tokens = {
        role: console_sessions.start_session(user, None, "")[1] for role, user in users.items()
    }
    job = imports.create_job(
        tenant.id,
        "channels",
        "import.csv",
        b"name,channel_type,integration_id\nA,email,x\n",
        factories.ACTOR,
    )
    db.session.commit()
    params = {
        "job_id": job.id,
        "kind": "channels",
        "channel_id": channel.id,
        "integration_id": ready.sms_integration.id,
        "domain_id": ready.domain.id,
        "phone_number_id": ready.number.id,
        "key_id": revocable.id,
        "user_id": teammate.id,
        "tenant_id": tenant.id,
        "session_id": other_session.id,
        "passkey_id": passkey.id,
        "endpoint_id": endpoint.id,
        "delivery_id": delivery.id,
    }
    keys = {
        "api_read": factories.make_api_key(tenant, scope="read"),
        "api_write": factories.make_api_key(tenant, scope="write"),
        "api_other": factories.make_api_key(other_tenant, scope="write"),
    }
    # One CSRF token for every client's session (as if each had loaded a page with a form).
    with app.test_request_context():
        token = generate_csrf()
        raw_token = session[app.config["WTF_CSRF_FIELD_NAME"]]
    app.test_client_class = ConsoleClient
    clients = {role: app.test_client() for role in ROLES}
    for role, client in clients.items():
        if role == "support":
            open_tenant_in_session(client, tenant.id)
        with client.session_transaction() as stored:
            stored[app.config["WTF_CSRF_FIELD_NAME"]] = raw_token
            if role in tokens:  # signed in (Flask-Login's session keys: the session's token)
                stored["_user_id"] = tokens[role]
                stored["_fresh"] = True
    return World(params, clients, keys, token)


def classify(response) -> object:
    """The outcome of a response, in the matrix's terms."""
    status = response.status_code
    if status in (301, 302, 303) and urlsplit(response.headers["Location"]).path == "/login":
        return LOGIN
    if status in (401, 403, 404, 405):
        return status
    if status >= 500:
        return f"server error {status}"
    if status == 400 and "CSRF" in response.get_data(as_text=True):
        return "CSRF failure (the test's request is wrong)"
    return OK


def send(world: World, role: str, endpoint: str, method: str, url: str):
    """``role``'s request: console roles with their session (+ CSRF token on writes), API roles
    with their bearer key; an empty JSON object or form as the body."""
    client = world.clients[role]
    headers = {}
    if role in world.keys:
        headers["Authorization"] = f"Bearer {world.keys[role]}"
    kwargs = {}
    if endpoint.startswith("api."):
        if method in ("POST", "PATCH"):
            kwargs["json"] = {}
    elif method != "GET":
        headers["X-CSRFToken"] = world.csrf_token
        kwargs["data"] = {}
    return client.open(url, method=method, headers=headers, **kwargs)


@pytest.mark.parametrize("routes", ROUTE_CASES)
def test_permission_matrix(app, world, routes):
    """Each role gets exactly its policy's outcome on each route (owners go last)."""
    wrong = {}
    for endpoint, method, arguments in routes:
        policy = POLICIES.get(endpoint)
        assert policy is not None, f"{endpoint} has no policy (see test_every_route_has_a_policy)"
        with app.test_request_context():
            url = url_for(endpoint, **{name: world.params[name] for name in arguments})
        for role in ROLES:
            # A path argument that names a kind (``/imports/<kind>/new``) is not an object.
            expected = policy.expected(role, bool(set(arguments) - NOT_OBJECTS))
            got = classify(send(world, role, endpoint, method, url))
            if got != expected:
                where = f"{method} {url} ({policy.name}) as {role}"
                wrong[where] = f"expected {expected}, got {got}"
    assert not wrong, wrong
