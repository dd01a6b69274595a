"""The platform log: support staff's authentication events and tenant access, stored (not only
an app log line), read by support staff in the console and by operators with the CLI; every
authentication event of a tenant admin stays in their tenant's audit log instead."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, PlatformEvent
from core.services import platform_log
from core.services.audit import Actor
from tests.console.conftest import another_browser
from tests.console.helpers import PASSWORD, csrf_token, sign_in, soup
from tests.console.test_sessions import move_session


def platform_actions() -> list[str]:
    db.session.rollback()
    query = select(PlatformEvent.action).order_by(PlatformEvent.created_at, PlatformEvent.id)
    return list(db.session.scalars(query))


def tenant_actions(tenant_id: str) -> list[str]:
    db.session.rollback()
    query = select(AuditEvent.action).where(
        AuditEvent.tenant_id == tenant_id, AuditEvent.action.like("user.%")
    )
    return list(db.session.scalars(query.order_by(AuditEvent.created_at, AuditEvent.id)))


def add_events(count: int) -> None:
    """``count`` platform events a second apart (from a second from now), oldest first."""
    start = datetime.now(UTC) + timedelta(seconds=1)
    for n in range(count):
        with time_machine.travel(start + timedelta(seconds=n), tick=False):
            platform_log.record(Actor.system("tests"), "user.signed_in", "user", None, {"n": n})
    db.session.commit()


def test_every_support_authentication_event_is_a_platform_event(app, client, support_user):
    """Failure (reason class), sign-in, password change (masked), revoked sessions, sign-out,
    expiry: all in the platform log, none in any tenant's log, no password anywhere."""
    sign_in(client, support_user.email, "wrong-password-123")
    sign_in(client, support_user.email)
    laptop = another_browser(app, support_user.email)
    token = csrf_token(client, "/account")
    client.post("/account/sessions/revoke-others", data={"csrf_token": token})
    data = {
        "csrf_token": token,
        "current_password": PASSWORD,
        "new_password": "mauve pelican outgrows tuesday",
        "confirm_password": "mauve pelican outgrows tuesday",
    }
    assert client.post("/account/password", data=data).status_code == 303
    client.post("/logout", data={"csrf_token": token})
    another = app.test_client()
    assert sign_in(another, support_user.email, "mauve pelican outgrows tuesday").status_code == 303
    move_session(support_user.id, last_seen_at=timedelta(hours=1))
    assert another.get("/account").status_code == 303  # expired: to sign-in
    assert laptop.get("/account").status_code == 303  # revoked earlier
    assert platform_actions() == [
        "user.sign_in_failed",
        "user.signed_in",
        "user.signed_in",
        "user.sessions_revoked",
        "user.password_changed",
        "user.signed_out",
        "user.signed_in",
        "user.session_expired",
    ]
    rows = db.session.scalars(select(PlatformEvent).order_by(PlatformEvent.created_at)).all()
    assert rows[0].changes == {"reason": "wrong_password"}
    assert rows[-1].changes["reason"] == "idle"
    assert rows[4].changes["password"] == {"before": "********", "after": "********"}
    assert all(row.resource_id == support_user.id for row in rows)
    assert db.session.scalar(select(AuditEvent)) is None
    stored = json.dumps([row.changes for row in rows])
    assert PASSWORD not in stored and "mauve pelican" not in stored


def test_tenant_admins_events_stay_in_their_tenants_log(app, client, admin, tenant):
    """The same events of a tenant admin: the tenant's audit log, never the platform log."""
    sign_in(client, admin.email, "wrong-password-123")
    sign_in(client, admin.email)
    move_session(admin.id, created_at=timedelta(hours=13))
    assert client.get("/channels").status_code == 303
    assert tenant_actions(tenant.id) == [
        "user.sign_in_failed",
        "user.signed_in",
        "user.session_expired",
    ]
    db.session.rollback()
    expired = db.session.scalar(select(AuditEvent).where(AuditEvent.action.like("%expired")))
    assert expired.changes["reason"] == "max_lifetime"
    assert platform_actions() == []


def test_expired_sessions_purged_at_a_sign_in_are_audited_once(app, client, admin, tenant):
    """Sessions nobody comes back to are purged at anyone's next sign-in, each audited as
    expired; a copy of the cookie presented later adds nothing."""
    old = another_browser(app, admin.email)
    another_browser(app, admin.email)
    move_session(admin.id, last_seen_at=timedelta(hours=2))
    sign_in(client, admin.email)  # purges the two idle ones
    assert tenant_actions(tenant.id).count("user.session_expired") == 2
    assert old.get("/channels").status_code == 303
    assert tenant_actions(tenant.id).count("user.session_expired") == 2


def test_unknown_emails_are_only_logged(client, caplog):
    """A failed sign-in naming no account writes no row (no tenant, nothing to flood), one log
    line without the typed password."""
    caplog.set_level(logging.INFO, logger="channels.auth")
    logger = logging.getLogger("channels.auth")
    logger.addHandler(caplog.handler)
    try:
        sign_in(client, "nobody@example.org", "typed-secret-123")
    finally:
        logger.removeHandler(caplog.handler)
    assert platform_actions() == []
    lines = [r.getMessage() for r in caplog.records]
    assert "user.sign_in_failed reason=unknown_account" in lines
    assert not any("typed-secret-123" in line for line in lines)


def test_support_staff_read_the_platform_log_page(support_console, support_user):
    """Newest first, who/what/when/from where, the nav marks it."""
    page = support_console.get("/platform-log")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = soup(page)
    rows = html.select("#platform-log-results tbody tr")
    assert [row.th.get_text(strip=True) for row in rows] == ["user.signed_in"]
    assert support_user.email in rows[0].get_text()
    current = html.find("a", attrs={"aria-current": "page"})
    assert current.get_text(strip=True) == "Platform log"


def test_the_page_is_paginated_both_ways(app, support_console):
    """PAGE_SIZE rows a page: older, then newer again; htmx gets the results alone."""
    app.config["PAGE_SIZE"] = 5
    add_events(11)  # and the support user's own sign-in: 12
    first = soup(support_console.get("/platform-log"))
    numbers = [
        row.select_one("[data-label=Changes]").get_text(" ", strip=True)
        for row in first.select("tbody tr")
    ]
    assert numbers == ["n 10", "n 9", "n 8", "n 7", "n 6"]
    older = first.find("a", rel="next")["href"]
    second = support_console.get(older, headers={"HX-Request": "true"})
    assert "<nav" not in second.get_data(as_text=True).split('id="platform-log-results"')[0]
    second = soup(second)
    assert len(second.select("tbody tr")) == 5
    third = soup(support_console.get(second.find("a", rel="next")["href"]))
    assert [r.th.get_text(strip=True) for r in third.select("tbody tr")] == ["user.signed_in"] * 2
    assert third.find("a", rel="next") is None
    newer = soup(support_console.get(third.find("a", rel="prev")["href"]))
    assert len(newer.select("tbody tr")) == 5


def test_tenant_admins_cannot_read_it(console):
    """Admins: 403 (the platform log is about support staff, not their tenant)."""
    assert console.get("/platform-log").status_code == 403
    assert "Platform log" not in console.get("/channels").get_data(as_text=True)


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def test_platform_log_cli_prints_the_latest_events(cli, app):
    """flask --app app platform-log [--limit N] [--json]: newest first, one event a line."""
    add_events(3)
    result = cli("platform-log")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith('{"n": 2}') and "user.signed_in" in lines[0] and "by tests" in lines[0]
    assert cli("platform-log", "--limit", "1").output.strip().endswith('{"n": 2}')
    rows = [json.loads(line) for line in cli("platform-log", "--json").output.splitlines()]
    assert [row["changes"] for row in rows] == [{"n": 2}, {"n": 1}, {"n": 0}]
    assert set(rows[0]) == {
        "id",
        "created_at",
        "actor_type",
        "actor_id",
        "actor_name",
        "action",
        "resource_type",
        "resource_id",
        "changes",
        "request_id",
        "ip",
    }
    assert rows[0]["created_at"].endswith("Z")


@pytest.mark.parametrize("limit", ["0", "-1", "many", "10001"])
def test_platform_log_cli_refuses_a_bad_limit(cli, limit):
    """A limit out of 1..10000: a clear error, non-zero exit."""
    result = cli("platform-log", "--limit", limit)
    assert result.exit_code != 0 and "--limit" in result.output


def test_platform_log_cli_on_an_empty_log(cli, app):
    """Nothing yet: no output, exit 0."""
    result = cli("platform-log")
    assert result.exit_code == 0 and result.output == ""
