"""Command line (DESIGN §6): ``flask --app app <command>``; scripts depend on the outputs."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from core.errors import ServiceError
from core.extensions import db
from core.models import ApiKey, Channel, EmailDomain, Integration, PhoneNumber, Tenant, User
from core.services import accounts
from core.services.audit import Actor

DEMO_SLUG = "demo"
DEMO_EMAIL = "admin@demo.example"
DEMO_PASSWORD = "channels-demo"
# A fixed demo key so that running seed-demo again can print it again (demo data only).
DEMO_API_KEY_PREFIX = "chk_de300000"
DEMO_API_KEY = DEMO_API_KEY_PREFIX + "_demo-key-for-local-use-only-never-in-production"
DEMO_IDS = {
    "email_integration": "8f1c3a52-6d4e-4b7a-9c2f-1e5d7a9b3c01",
    "sms_integration": "8f1c3a52-6d4e-4b7a-9c2f-1e5d7a9b3c02",
    "domain": "8f1c3a52-6d4e-4b7a-9c2f-1e5d7a9b3c03",
    "phone_number": "8f1c3a52-6d4e-4b7a-9c2f-1e5d7a9b3c04",
}
DEMO_NUMBER = "+14155550100"


def _fail(exc: ServiceError):
    db.session.rollback()
    details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.fields.items())
    raise click.ClickException(f"{exc.message} {details}".strip())


def register_cli(app: Flask) -> None:
    @app.cli.command("create-tenant")
    @click.argument("name")
    @click.option("--slug", help="URL-safe identifier; derived from NAME when omitted.")
    def create_tenant(name, slug):
        """Create a tenant; prints its id on the last line."""
        try:
            tenant = accounts.create_tenant(name, slug)
        except ServiceError as exc:
            _fail(exc)
        db.session.commit()
        click.echo(f"Created tenant {tenant.name} (slug {tenant.slug}).")
        click.echo(tenant.id)

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--password", required=True, help="At least 10 characters.")
    @click.option("--tenant", "tenant_slug", help="Slug of the tenant (for --role admin).")
    @click.option(
        "--role", type=click.Choice(["admin", "support"]), default="admin", show_default=True
    )
    @click.option("--name", default="", help="Display name.")
    def create_user(email, password, tenant_slug, role, name):
        """Create a tenant admin (--tenant SLUG --role admin) or a support user (--role support)."""
        try:
            tenant = accounts.get_tenant_by_slug(tenant_slug) if tenant_slug else None
            user = accounts.create_user(email, password, role, tenant, name)
        except ServiceError as exc:
            _fail(exc)
        db.session.commit()
        where = f" of tenant {tenant.slug}" if tenant else ""
        click.echo(f"Created {user.role} {user.email}{where}.")
        click.echo(user.id)

    @app.cli.command("create-api-key")
    @click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant.")
    @click.option("--name", required=True, help="What the key is for.")
    @click.option(
        "--scope", type=click.Choice(["read", "write"]), default="write", show_default=True
    )
    def create_api_key(tenant_slug, name, scope):
        """Create an API key; prints the key alone on the last line (it is never shown again)."""
        try:
            tenant = accounts.get_tenant_by_slug(tenant_slug)
            new = accounts.create_api_key(tenant.id, name, scope)
        except ServiceError as exc:
            _fail(exc)
        db.session.commit()
        click.echo(
            f"Created {scope} key {new.api_key.prefix} for tenant {tenant.slug}. Store it now:"
        )
        click.echo(new.secret)

    @app.cli.command("seed-demo")
    def seed_demo():
        """A demo tenant with an admin, integrations, a verified domain, a number and channels."""
        seed_demo_data()
        db.session.commit()
        click.echo("Demo data ready.")
        click.echo(f"  Console:  http://127.0.0.1:5000/login  as {DEMO_EMAIL} / {DEMO_PASSWORD}")
        click.echo(f"  API key:  {DEMO_API_KEY}")
        click.echo(
            f"  Email integration {DEMO_IDS['email_integration']}, domain {DEMO_IDS['domain']}"
        )
        click.echo(
            f"  SMS integration {DEMO_IDS['sms_integration']}, number {DEMO_IDS['phone_number']}"
        )


def seed_demo_data() -> Tenant:
    """Idempotent: each piece is created only when missing, so a second run changes nothing."""
    from core.crypto import encrypt_credentials
    from core.db_types import utcnow
    from core.services.channels import create_channel
    from core.services.phone_numbers import add_phone_number

    actor = Actor.system("seed-demo")
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
    if tenant is None:
        tenant = accounts.create_tenant("Demo Company", DEMO_SLUG)
    if db.session.scalar(select(User).where(User.email == DEMO_EMAIL)) is None:
        accounts.create_user(DEMO_EMAIL, DEMO_PASSWORD, "admin", tenant, "Demo Admin", actor)
    if db.session.scalar(select(ApiKey).where(ApiKey.prefix == DEMO_API_KEY_PREFIX)) is None:
        db.session.add(
            ApiKey(
                tenant_id=tenant.id,
                name="Demo key",
                prefix=DEMO_API_KEY_PREFIX,
                secret_hash=accounts._hash_key(DEMO_API_KEY),
                scope="write",
                created_at=utcnow(),
            )
        )
    for key, channel_type, name in (
        ("email_integration", "email", "Console email"),
        ("sms_integration", "sms", "Console SMS"),
    ):
        if db.session.get(Integration, DEMO_IDS[key]) is None:
            db.session.add(
                Integration(
                    id=DEMO_IDS[key],
                    tenant_id=tenant.id,
                    name=name,
                    channel_type=channel_type,
                    provider="console",
                    credentials_encrypted=encrypt_credentials({}),
                    status="active",
                    created_at=utcnow(),
                )
            )
    if db.session.get(EmailDomain, DEMO_IDS["domain"]) is None:
        now = utcnow()
        db.session.add(
            EmailDomain(
                id=DEMO_IDS["domain"],
                tenant_id=tenant.id,
                domain="example.com",
                status="verified",  # demo shortcut: no DNS to publish for example.com
                verification_token="demo0000000000000000000000000000",
                verified_at=now,
                last_checked_at=now,
                record_statuses={"verification": "verified", "spf": "verified", "dkim": "verified"},
                created_at=now,
            )
        )
    db.session.flush()
    if db.session.get(PhoneNumber, DEMO_IDS["phone_number"]) is None:
        add_phone_number(
            tenant.id,
            {"phone_number": DEMO_NUMBER, "integration_id": DEMO_IDS["sms_integration"]},
            actor,
            phone_number_id=DEMO_IDS["phone_number"],
        )
    newsletter = select(Channel).where(
        Channel.tenant_id == tenant.id, Channel.name_key == "newsletter"
    )
    if db.session.scalar(newsletter) is None:
        # Not the default, so that the README's "Support Email" example becomes the default
        # email channel.
        create_channel(
            tenant.id,
            {
                "name": "Newsletter",
                "channel_type": "email",
                "integration_id": DEMO_IDS["email_integration"],
                "send_from_email": "news@example.com",
                "email_domain_id": DEMO_IDS["domain"],
                "is_default": False,
                "metadata": {"team": "marketing"},
            },
            actor,
        )
    return tenant
