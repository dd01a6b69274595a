"""``recheck-domains`` and ``check-integrations`` (DESIGN §9): the scheduler's jobs, run once.

For cron-style deployments and operators: every due object (``--all``: every object) is claimed
like a scheduler batch (so a worker never checks it at the same time), checked now, and
reported on one line: what it was, what it is now. The exit status is 0 whatever the checks
found; only a crash is non-zero.
"""

from __future__ import annotations

import click
from flask import Flask

from core.database import writing
from core.models import EmailDomain, Integration
from core.services import rechecks
from core.services.audit import Actor

CLI_ACTOR = {
    "domains": Actor.system("flask recheck-domains"),
    "integrations": Actor.system("flask check-integrations"),
}


def _records(statuses: dict) -> str:
    return " ".join(
        f"{purpose}={statuses.get(purpose, 'pending')}" for purpose in rechecks.PURPOSES
    )


def _tenant(slug: str | None) -> str | None:
    if slug is None:
        return None
    tenant_id = rechecks.tenant_id_of(slug)
    if tenant_id is None:
        raise click.ClickException(f"No tenant with the slug {slug!r}.")
    return tenant_id


def register_recheck_cli(app: Flask) -> None:
    tenant_option = click.option(
        "--tenant", "tenant_slug", help="Only this tenant's (its slug); default: every tenant."
    )
    all_option = click.option(
        "--all", "every", is_flag=True, help="Every one, due or not (default: the due ones)."
    )

    @app.cli.command("recheck-domains")
    @tenant_option
    @all_option
    def recheck_domains(tenant_slug, every):
        """Check the DNS records of every due email domain now; one line per domain."""
        _check_due(
            EmailDomain, rechecks.check_domain_batch, "domains", _domain_line, tenant_slug, every
        )

    @app.cli.command("check-integrations")
    @tenant_option
    @all_option
    def check_integrations(tenant_slug, every):
        """Check every due active integration with its provider now; one line per integration."""
        _check_due(
            Integration,
            rechecks.check_integration_batch,
            "integrations",
            _integration_line,
            tenant_slug,
            every,
        )


def _domain_line(outcome, slugs: dict) -> str:
    domain = outcome.domain
    return (
        f"{slugs.get(domain.tenant_id)} {domain.domain}: {outcome.before} -> "
        f"{outcome.after} ({_records(domain.record_statuses or {})})"
    )


def _integration_line(outcome, slugs: dict) -> str:
    integration = outcome.integration
    result = "ok" if integration.last_check_ok else "failed"
    return (
        f"{slugs.get(integration.tenant_id)} {integration.name} "
        f"({integration.provider}): {outcome.before} -> {outcome.after} "
        f"(check {result}, {integration.failed_checks} failed in a row: "
        f"{outcome.message})"
    )


def _check_due(model, check_batch, kind: str, line, tenant_slug: str | None, every: bool) -> None:
    """The one loop of both commands: claim the due (``every``: all) ``model`` rows of the
    tenant (None: every tenant) batch by batch as the scheduler does, check each batch with
    ``check_batch`` as ``CLI_ACTOR[kind]``, echo ``line(outcome, slugs)`` per outcome, then the
    count (``N domain(s) checked.``)."""
    with writing():
        tenant_id = _tenant(tenant_slug)
        slugs = rechecks.tenant_slugs()
        count = 0
        for batch in rechecks.claim_due(model, tenant_id=tenant_id, every=every):
            for outcome in check_batch(batch.token, CLI_ACTOR[kind]):
                click.echo(line(outcome, slugs))
                count += 1
        click.echo(f"{count} {kind[:-1]}(s) checked.")
