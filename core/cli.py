"""Command line (DESIGN §6): ``flask --app app <command>``; scripts depend on the outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import click
from flask import Flask
from sqlalchemy import select

from core import rules
from core.db_types import rfc3339
from core.errors import ServiceError
from core.extensions import db
from core.models import (
    ApiKey,
    Channel,
    EmailDomain,
    Integration,
    PhoneNumber,
    PlatformEvent,
    Tenant,
    User,
)
from core.services import accounts, audit, mfa, platform_log
from core.services.audit import Actor
from core.tasks import supervise

DEMO_SLUG = "demo"
DEMO_EMAIL = "admin@demo.example"
# Chosen to pass the password policy (core.rules.passwords), which refuses one built on the
# account's email or name ("channels-demo" was); the demo admin need not change it.
DEMO_PASSWORD = "channels-walkthrough"
# A fixed demo key so that running seed-demo again can print it again (demo data only).
DEMO_API_KEY_PREFIX = "chk_de300000"
DEMO_API_KEY = DEMO_API_KEY_PREFIX + "_demo-key-for-local-use-only-never-in-production"
# The world of the seed page (shared/SEED.md): its two sample requests, sent verbatim with the
# demo key, answer its sample responses. These ids are looked up, never generated, so they need
# not be UUID4 (they are not); every id the server makes is.
DEMO_TENANT_ID = "123e4567-e89b-12d3-a456-426614174001"
DEMO_IDS = {
    "email_integration": "123e4567-e89b-12d3-a456-426614174002",
    "domain": "123e4567-e89b-12d3-a456-426614174003",
    "sms_integration": "323e4567-e89b-12d3-a456-426614174011",
    "phone_number": "423e4567-e89b-12d3-a456-426614174012",
}
DEMO_NUMBER = "+15551234567"
DEMO_PREVIOUS_SLUG = "demo-previous"
PLATFORM_LOG_MAX = 10_000


def platform_event_row(event: PlatformEvent) -> dict:
    """A platform event as the CLI prints it (its JSON form)."""
    return {
        "id": event.id,
        "created_at": rfc3339(event.created_at),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "changes": event.changes,
        "request_id": event.request_id,
        "ip": event.ip,
    }


def _fail(exc: ServiceError):
    db.session.rollback()
    details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.fields.items())
    raise click.ClickException(f"{exc.message} {details}".strip())


def _celery_argv(app: Flask, command: str, extra: tuple[str, ...]) -> list[str]:
    """Celery's argv for ``command``; refuses without BROKER_URL (the embedded engine runs in
    the development server itself)."""
    if not app.config["BROKER_URL"]:
        raise click.ClickException(
            f"BROKER_URL is not set: `{command}` needs a broker (e.g. redis://localhost:6379/1)."
            " Without one, the development server (`flask --app app run`) delivers webhooks and"
            " runs the schedules itself."
        )
    return [command, "--loglevel", app.config["LOG_LEVEL"], *extra]


def register_tasks_cli(app: Flask) -> None:
    """``worker`` and ``scheduler``: the task engine's processes (core.tasks)."""

    @app.cli.command(
        "worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
    )
    @click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
    def worker(celery_args):
        """Run a task worker (any number, on any machines); extra arguments go to Celery's
        worker (e.g. --concurrency 4)."""
        celery_app = app.extensions["celery"]
        argv = _celery_argv(app, "worker", celery_args)
        # Supervised: a worker that dies on a broker outage is replaced (core.tasks.supervise).
        raise SystemExit(supervise(lambda: celery_app.worker_main(argv)))

    @app.cli.command(
        "scheduler", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
    )
    @click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
    def scheduler(celery_args):
        """Run the periodic scheduler (Celery beat: the outbox dispatcher and sweeper, the
        re-checks of domains and integrations). Run exactly one."""
        celery_app = app.extensions["celery"]
        celery_app.start(_celery_argv(app, "beat", celery_args))


def register_cli(app: Flask) -> None:
    from core.cli_rechecks import register_recheck_cli

    register_tasks_cli(app)
    register_recheck_cli(app)

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
    @click.option(
        "--password",
        required=True,
        help="The initial password (the password policy applies); changed at first sign-in.",
    )
    @click.option("--tenant", "tenant_slug", help="Slug of the tenant (for --role admin).")
    @click.option(
        "--role", type=click.Choice(["admin", "support"]), default="admin", show_default=True
    )
    @click.option("--name", default="", help="Display name.")
    def create_user(email, password, tenant_slug, role, name):
        """Create a tenant admin (--tenant SLUG --role admin) or a support user (--role support).

        The operator chose the password, so the user must choose their own at first sign-in."""
        try:
            tenant = accounts.get_tenant_by_slug(tenant_slug) if tenant_slug else None
            user = accounts.create_user(
                email, password, role, tenant, name, must_change_password=True
            )
        except ServiceError as exc:
            _fail(exc)
        db.session.commit()
        where = f" of tenant {tenant.slug}" if tenant else ""
        click.echo(f"Created {user.role} {user.email}{where}.")
        click.echo(user.id)

    @app.cli.command("reset-password")
    @click.argument("email")
    @click.option(
        "--password",
        prompt="New password",
        hide_input=True,
        confirmation_prompt=True,
        help="The temporary password (asked for when omitted; the password policy applies).",
    )
    def reset_password(email, password):
        """Set a temporary password for a user who lost theirs; they choose their own at the
        next sign-in, and every session of theirs ends now."""
        try:
            ended = accounts.reset_password(email, password)
        except ServiceError as exc:
            _fail(exc)
        db.session.commit()
        sessions = f"{ended} session" + ("" if ended == 1 else "s")
        click.echo(
            f"Password reset for {email.strip().lower()}: {sessions} ended; they choose their"
            " own password at the next sign-in."
        )

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

    @app.cli.command("platform-log")
    @click.option(
        "--limit",
        type=click.IntRange(1, PLATFORM_LOG_MAX),
        default=50,
        show_default=True,
        help="How many of the latest events.",
    )
    @click.option("--json", "as_json", is_flag=True, help="One JSON object a line (NDJSON).")
    def platform_log_command(limit, as_json):
        """The platform log (support staff's sign-ins and tenant access), newest first."""
        for event in platform_log.latest_events(limit):
            row = platform_event_row(event)
            if as_json:
                click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))
            else:
                changes = json.dumps(row["changes"], ensure_ascii=False, sort_keys=True)
                click.echo(
                    f"{row['created_at']}  {row['action']}  {row['resource_type']}"
                    f" {row['resource_id'] or '-'}  by {row['actor_name']}"
                    f"  ip {row['ip'] or '-'}  {changes}"
                )

    @app.cli.command("reset-mfa")
    @click.argument("email")
    def reset_mfa(email):
        """Help a locked-out user: remove their second factors and recovery codes and end their
        sessions (audited as user.mfa_reset by the operator). They sign in with their password
        alone and set up a factor again (at once, where MFA is required of them)."""
        user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
        if user is None:
            raise click.ClickException(f"No user with the email {email!r}.")
        removed = mfa.reset_mfa(user, Actor.system("cli reset-mfa"))
        db.session.commit()
        click.echo(
            f"Reset two-factor authentication of {user.email}: "
            f"authenticator app {'removed' if removed['authenticator_app'] else 'none'}, "
            f"{removed['passkeys']} passkey(s) and {removed['recovery_codes']} unused recovery "
            f"code(s) removed, {removed['sessions']} session(s) ended."
        )

    @app.cli.command("seed-demo")
    def seed_demo():
        """The seed's demo world: tenant, admin, key, integrations, verified domain, number."""
        try:
            report = seed_demo_data()
        except ServiceError as exc:
            _fail(exc)
        db.session.commit()
        for line in report.done:
            click.echo(line)
        click.echo("Demo data ready." if report.done else "Demo data ready (nothing to change).")
        click.echo(f"  Console:  http://127.0.0.1:5000/login  as {DEMO_EMAIL} / {DEMO_PASSWORD}")
        click.echo(f"  API key:  {DEMO_API_KEY}")
        click.echo(f"  Tenant {DEMO_TENANT_ID} (slug {DEMO_SLUG})")
        click.echo(
            f"  Email integration {DEMO_IDS['email_integration']},"
            f" domain example.com {DEMO_IDS['domain']}"
        )
        click.echo(
            f"  SMS integration {DEMO_IDS['sms_integration']},"
            f" number {DEMO_NUMBER} {DEMO_IDS['phone_number']}"
        )


@dataclass
class SeedReport:
    """What ``seed_demo_data`` changed, one sentence a line; empty when nothing was missing."""

    tenant: Tenant
    done: list[str] = field(default_factory=list)


def _retire_previous_demo(actor: Actor, done: list[str]) -> list[User | ApiKey]:
    """A database seeded before the seed's ids holds a "demo" tenant with another id.

    Its data is kept (someone may have worked in it): it is renamed out of the way. Returns the
    demo admin and the demo API key found in it, which must move to the seed's tenant.
    """
    previous = db.session.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
    if previous is None or previous.id == DEMO_TENANT_ID:
        return []
    slug, n = DEMO_PREVIOUS_SLUG, 1
    while db.session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        n += 1
        slug = f"{DEMO_PREVIOUS_SLUG}-{n}"
    before = {"name": previous.name, "slug": previous.slug}
    previous.name = f"{previous.name} (previous demo)"[: rules.NAME_MAX]
    previous.name_key = rules.name_key(previous.name)
    previous.slug = slug
    db.session.flush()
    audit.record(
        previous.id,
        actor,
        "tenant.update",
        "tenant",
        previous.id,
        audit.diff(before, {"name": previous.name, "slug": slug}),
    )
    done.append(
        f"Found the demo tenant of an earlier seed-demo (id {previous.id}): kept its data and"
        f" renamed it “{previous.name}” (slug {slug})."
    )
    user = db.session.scalar(
        select(User).where(User.email == DEMO_EMAIL, User.tenant_id == previous.id)
    )
    key = db.session.scalar(
        select(ApiKey).where(ApiKey.prefix == DEMO_API_KEY_PREFIX, ApiKey.tenant_id == previous.id)
    )
    return [row for row in (user, key) if row is not None]


def _move_to(tenant: Tenant, rows: list[User | ApiKey], actor: Actor, done: list[str]) -> None:
    """The demo admin and key of a previous demo tenant now open the seed's tenant."""
    for row in rows:
        kind = "user" if isinstance(row, User) else "api_key"
        old_tenant = row.tenant_id
        row.tenant_id = tenant.id
        db.session.flush()
        for tenant_id in (old_tenant, tenant.id):
            audit.record(
                tenant_id,
                actor,
                f"{kind}.update",
                kind,
                row.id,
                audit.diff({"tenant_id": old_tenant}, {"tenant_id": tenant.id}),
            )
        what = f"the demo admin {DEMO_EMAIL}" if kind == "user" else "the demo API key"
        done.append(f"Moved {what} to the demo tenant {tenant.id}.")


def seed_demo_data() -> SeedReport:
    """The seed's world (SEED.md, DESIGN §6), idempotent: only what is missing is created."""
    from core.crypto import encrypt_credentials
    from core.db_types import utcnow
    from core.services.channels import create_channel
    from core.services.phone_numbers import add_phone_number

    actor = Actor.system("seed-demo")
    done: list[str] = []
    movers = _retire_previous_demo(actor, done)
    tenant = db.session.get(Tenant, DEMO_TENANT_ID)
    if tenant is None:
        tenant = accounts.create_tenant("Demo Company", DEMO_SLUG, actor, tenant_id=DEMO_TENANT_ID)
        done.append(f"Created the demo tenant {tenant.id} (slug {DEMO_SLUG}).")
    _move_to(tenant, movers, actor, done)
    if db.session.scalar(select(User).where(User.email == DEMO_EMAIL)) is None:
        # Exempt from the change at first sign-in: the README's walk-through stays one command.
        accounts.create_user(
            DEMO_EMAIL,
            DEMO_PASSWORD,
            "admin",
            tenant,
            "Demo Admin",
            actor,
            must_change_password=False,
        )
        done.append(f"Created the demo admin {DEMO_EMAIL}.")
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
        done.append("Created the demo API key.")
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
            done.append(f"Created the {channel_type} integration {DEMO_IDS[key]} ({name}).")
    if db.session.get(EmailDomain, DEMO_IDS["domain"]) is None:
        now = utcnow()
        demo_domain = EmailDomain(
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
        db.session.add(demo_domain)
        db.session.flush()
        # Nobody can publish records for example.com: the scheduler leaves it alone (checked,
        # it would be at risk, then failed, three days into a demo).
        demo_domain.next_check_at = None
        done.append(f"Created the verified domain example.com {DEMO_IDS['domain']}.")
    db.session.flush()
    if db.session.get(PhoneNumber, DEMO_IDS["phone_number"]) is None:
        add_phone_number(
            tenant.id,
            {"phone_number": DEMO_NUMBER, "integration_id": DEMO_IDS["sms_integration"]},
            actor,
            phone_number_id=DEMO_IDS["phone_number"],
        )
        done.append(
            f"Added the number {DEMO_NUMBER} {DEMO_IDS['phone_number']} with its SMS channel."
        )
    newsletter = select(Channel).where(
        Channel.tenant_id == tenant.id, Channel.name_key == "newsletter"
    )
    if db.session.scalar(newsletter) is None:
        # Not the default, so that the seed's "Support Email" becomes the default email channel.
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
        done.append("Created the email channel Newsletter.")
    return SeedReport(tenant=tenant, done=done)
