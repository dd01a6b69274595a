"""The command line of DESIGN §6, driven the way scripts drive it (the last line is the value)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import cli as cli_module
from core.extensions import db
from core.models import ApiKey, AuditEvent, Channel, PhoneNumber, Tenant, User
from core.services import accounts
from tests import factories
from tests.api.assertions import database_state


@pytest.fixture
def cli(app):
    """Runs ``flask --app app <args>`` in-process; returns the click Result."""
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=list(args))

    return invoke


def last_line(result) -> str:
    return result.output.strip().splitlines()[-1]


def test_create_tenant_prints_its_id_last(cli):
    """create-tenant NAME: exit 0, the id alone on the last line; slug from the name."""
    result = cli("create-tenant", "Acme Corp")
    assert result.exit_code == 0, result.output
    tenant = db.session.get(Tenant, last_line(result))
    assert tenant is not None and tenant.name == "Acme Corp" and tenant.slug == "acme-corp"


def test_create_tenant_with_a_slug(cli):
    """--slug sets the slug."""
    result = cli("create-tenant", "Acme Corp", "--slug", "acme")
    assert result.exit_code == 0
    assert db.session.get(Tenant, last_line(result)).slug == "acme"


@pytest.mark.parametrize(
    "args, message",
    [
        (("create-tenant", "Acme", "--slug", "taken"), "already exists"),
        (("create-tenant", "Acme", "--slug", "Not A Slug!"), "slug"),
        (("create-tenant", "   "), "name"),
    ],
    ids=["duplicate slug", "bad slug", "blank name"],
)
def test_create_tenant_errors_exit_non_zero(cli, args, message):
    """Duplicate or malformed slug, blank name: non-zero exit, clear message, no tenant."""
    factories.make_tenant("Existing", "taken")
    result = cli(*args)
    assert result.exit_code != 0
    assert "Error:" in result.output and message in result.output
    db.session.rollback()
    assert len(db.session.scalars(select(Tenant)).all()) == 1


def test_create_admin_user(cli, tenant):
    """create-user EMAIL --password PW --tenant SLUG --role admin: an admin of that tenant."""
    result = cli(
        "create-user",
        "Admin@Example.org",
        "--password",
        "long-enough-pw",
        "--tenant",
        tenant.slug,
        "--role",
        "admin",
    )
    assert result.exit_code == 0, result.output
    user = db.session.get(User, last_line(result))
    assert (
        user.email == "admin@example.org" and user.role == "admin" and user.tenant_id == tenant.id
    )
    assert "long-enough-pw" not in user.password_hash


def test_create_support_user(cli):
    """--role support: a user without a tenant."""
    result = cli(
        "create-user", "help@example.org", "--password", "long-enough-pw", "--role", "support"
    )
    assert result.exit_code == 0, result.output
    user = db.session.get(User, last_line(result))
    assert user.role == "support" and user.tenant_id is None


@pytest.mark.parametrize(
    "args, message",
    [
        (("--tenant", "nope", "--role", "admin"), "No tenant with the slug 'nope'"),
        (("--role", "admin"), "belongs to a tenant"),
        (("--tenant", "{slug}", "--role", "support"), "no tenant"),
        (("--tenant", "{slug}", "--role", "owner"), "owner"),
    ],
    ids=["unknown tenant", "admin without tenant", "support with tenant", "unknown role"],
)
def test_create_user_errors_exit_non_zero(cli, tenant, args, message):
    """Unknown tenant, a role without its tenant rule: non-zero exit with a clear message."""
    args = [a.format(slug=tenant.slug) for a in args]
    result = cli("create-user", "x@example.org", "--password", "long-enough-pw", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.scalar(select(User).where(User.email == "x@example.org")) is None


def test_create_user_refuses_a_short_password(cli, tenant):
    """Fewer than 10 characters: non-zero exit naming the password rule."""
    result = cli("create-user", "x@example.org", "--password", "short", "--tenant", tenant.slug)
    assert result.exit_code != 0
    assert "password" in result.output and "10 characters" in result.output


def test_create_user_refuses_a_duplicate_email(cli, tenant):
    """The same email in another case: refused."""
    assert (
        cli(
            "create-user", "a@example.org", "--password", "long-enough-pw", "--tenant", tenant.slug
        ).exit_code
        == 0
    )
    result = cli(
        "create-user", "A@EXAMPLE.ORG", "--password", "long-enough-pw", "--tenant", tenant.slug
    )
    assert result.exit_code != 0 and "already exists" in result.output


@pytest.mark.parametrize("scope", ["write", "read"])
def test_create_api_key_prints_a_working_key_last(cli, client, tenant, scope):
    """create-api-key: the key alone on the last line; it authenticates with its scope."""
    args = ["create-api-key", "--tenant", tenant.slug, "--name", "Deploy"]
    if scope == "read":
        args += ["--scope", "read"]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    key = last_line(result)
    assert key.startswith("chk_") and " " not in key
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/channels", headers=headers).status_code == 200
    write = client.post("/api/email_domains", json={"domain": "example.net"}, headers=headers)
    assert write.status_code == (201 if scope == "write" else 403)
    stored = db.session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant.id))
    assert stored.scope == scope and key not in stored.secret_hash


def test_create_api_key_errors_exit_non_zero(cli, tenant):
    """An unknown tenant or scope: non-zero exit, no key."""
    unknown = cli("create-api-key", "--tenant", "nope", "--name", "Deploy")
    assert unknown.exit_code != 0 and "No tenant with the slug 'nope'" in unknown.output
    bad_scope = cli(
        "create-api-key", "--tenant", tenant.slug, "--name", "Deploy", "--scope", "admin"
    )
    assert bad_scope.exit_code != 0
    assert db.session.scalars(select(ApiKey)).all() == []


def test_seed_demo_prints_how_to_sign_in_and_twice_changes_nothing(cli, client):
    """seed-demo: sign-in instructions, a working key; a second run changes no row."""
    first = cli("seed-demo")
    assert first.exit_code == 0, first.output
    assert "admin@demo.example" in first.output and "channels-walkthrough" in first.output
    assert "/login" in first.output
    after_first = database_state()
    assert all(
        after_first[table]
        for table in (
            "tenants",
            "users",
            "api_keys",
            "integrations",
            "email_domains",
            "phone_numbers",
            "channels",
        )
    )

    second = cli("seed-demo")
    assert second.exit_code == 0, second.output
    assert database_state() == after_first
    assert second.output.startswith("Demo data ready (nothing to change).\n")
    # The same sign-in, key and ids as the first run printed after what it created.
    assert first.output.endswith(second.output.split("\n", 1)[1])
    assert "Created the demo tenant 123e4567-e89b-12d3-a456-426614174001" in first.output

    key = next(line.split()[-1] for line in first.output.splitlines() if "API key:" in line)
    channels = client.get("/api/channels", headers={"Authorization": f"Bearer {key}"}).get_json()[
        "data"
    ]
    by_type = {c["channel_type"]: c for c in channels}
    assert set(by_type) == {"email", "sms"}
    assert by_type["sms"]["is_default"] is True
    # Newsletter is seeded with is_default false on purpose: the README's first POST of
    # "Support Email" becomes the default email channel.
    assert by_type["email"]["name"] == "Newsletter" and by_type["email"]["is_default"] is False


def test_seed_demo_builds_the_seed_pages_world(cli):
    """The tenant, integrations, verified domain and number carry the seed page's ids."""
    assert cli("seed-demo").exit_code == 0
    tenant = db.session.get(Tenant, "123e4567-e89b-12d3-a456-426614174001")
    assert tenant is not None and tenant.slug == "demo"
    email = db.session.get(cli_module.Integration, "123e4567-e89b-12d3-a456-426614174002")
    sms = db.session.get(cli_module.Integration, "323e4567-e89b-12d3-a456-426614174011")
    domain = db.session.get(cli_module.EmailDomain, "123e4567-e89b-12d3-a456-426614174003")
    number = db.session.get(PhoneNumber, "423e4567-e89b-12d3-a456-426614174012")
    assert (email.tenant_id, email.channel_type, email.status) == (tenant.id, "email", "active")
    assert (sms.tenant_id, sms.channel_type, sms.status) == (tenant.id, "sms", "active")
    assert (domain.tenant_id, domain.domain, domain.status) == (
        tenant.id,
        "example.com",
        "verified",
    )
    assert domain.next_check_at is None  # no DNS to publish for example.com: never re-checked
    assert (number.tenant_id, number.phone_number, number.integration_id) == (
        tenant.id,
        "+15551234567",
        sms.id,
    )
    assert "sms" in number.capabilities and number.status == "active"
    admin = db.session.scalar(select(User).where(User.email == cli_module.DEMO_EMAIL))
    assert admin.tenant_id == tenant.id


def test_seed_demo_on_a_database_with_the_previous_demo_tenant(cli, client):
    """A demo tenant seeded before the seed's ids is kept under another slug, its admin and key
    move to the seed's tenant, the run says so, and the seed's call works with the demo key."""
    previous = accounts.create_tenant("Demo Company", "demo")
    accounts.create_user(
        cli_module.DEMO_EMAIL,
        cli_module.DEMO_PASSWORD,
        "admin",
        previous,
        must_change_password=False,
    )
    db.session.add(
        ApiKey(
            tenant_id=previous.id,
            name="Demo key",
            prefix=cli_module.DEMO_API_KEY_PREFIX,
            secret_hash=accounts._hash_key(cli_module.DEMO_API_KEY),
            scope="write",
        )
    )
    ready = factories.make_ready_tenant(previous)
    old_channel = factories.make_channel(ready, "email", name="Kept")
    db.session.commit()
    previous_id, old_channel_id = previous.id, old_channel.id

    result = cli("seed-demo")
    assert result.exit_code == 0, result.output
    assert f"Found the demo tenant of an earlier seed-demo (id {previous_id})" in result.output
    assert "slug demo-previous" in result.output
    assert f"Moved the demo admin {cli_module.DEMO_EMAIL}" in result.output
    assert "Moved the demo API key" in result.output
    db.session.expire_all()
    kept = db.session.get(Tenant, previous_id)
    assert kept.slug == "demo-previous" and kept.name == "Demo Company (previous demo)"
    assert db.session.get(Channel, old_channel_id).tenant_id == previous_id
    seed_tenant = db.session.get(Tenant, cli_module.DEMO_TENANT_ID)
    assert seed_tenant.slug == "demo"
    admin = db.session.scalar(select(User).where(User.email == cli_module.DEMO_EMAIL))
    key = db.session.scalar(select(ApiKey).where(ApiKey.prefix == cli_module.DEMO_API_KEY_PREFIX))
    assert admin.tenant_id == key.tenant_id == seed_tenant.id
    moves = db.session.scalars(
        select(AuditEvent.tenant_id).where(AuditEvent.action.in_(["user.update", "api_key.update"]))
    ).all()
    assert sorted(moves) == sorted([previous_id, seed_tenant.id] * 2)

    response = client.post(
        "/api/channels",
        json={
            "name": "Sales SMS",
            "channel_type": "sms",
            "integration_id": "323e4567-e89b-12d3-a456-426614174011",
            "send_from_phone_number": "+15551234567",
            "phone_number_id": "423e4567-e89b-12d3-a456-426614174012",
            "is_default": False,
        },
        headers={"Authorization": f"Bearer {cli_module.DEMO_API_KEY}"},
    )
    assert response.status_code == 201
    assert response.get_json()["tenant_id"] == cli_module.DEMO_TENANT_ID

    again = cli("seed-demo")
    assert again.exit_code == 0 and again.output.startswith("Demo data ready (nothing to change).")
