"""The command line of DESIGN §6, driven the way scripts drive it (the last line is the value)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import ApiKey, Tenant, User
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
    assert "admin@demo.example" in first.output and "channels-demo" in first.output
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
    assert second.output == first.output

    key = next(line.split()[-1] for line in first.output.splitlines() if "API key" in line)
    channels = client.get("/api/channels", headers={"Authorization": f"Bearer {key}"}).get_json()[
        "data"
    ]
    by_type = {c["channel_type"]: c for c in channels}
    assert set(by_type) == {"email", "sms"}
    assert by_type["sms"]["is_default"] is True
    # Newsletter is seeded with is_default false on purpose: the README's first POST of
    # "Support Email" becomes the default email channel.
    assert by_type["email"]["name"] == "Newsletter" and by_type["email"]["is_default"] is False
