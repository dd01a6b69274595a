"""Console API keys: create (secret shown once), list with prefix, revoke (then 401)."""

from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from core.models import ApiKey
from tests import factories
from tests.console.helpers import csrf_token, field_errors, htmx_headers, soup
from tests.services.fake_providers import closed_port


def _create(console, name="Billing", scope="write"):
    token = csrf_token(console, "/api-keys")
    return console.post("/api-keys", data={"csrf_token": token, "name": name, "scope": scope})


def test_secret_is_shown_exactly_once(client, console, tenant):
    """The POST's page shows the key with a copy button; no later page shows it; it works."""
    response = _create(console, "Billing", "read")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = soup(response)
    secret = page.find(id="new-key-secret").get_text()
    assert page.find("button", attrs={"data-copy": "#new-key-secret"}) is not None
    key = db.session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant.id))
    assert secret.startswith(key.prefix + "_") and key.scope == "read"
    listing = console.get("/api-keys").get_data(as_text=True)
    assert secret not in listing
    assert f"{key.prefix}…" in listing
    api = factories.ApiClient(client, secret)
    assert api.get("/api/channels").status_code == 200


def test_validation_error_inline(console):
    """An empty name: 422 with the error next to the field."""
    response = _create(console, name="  ")
    assert response.status_code == 422
    assert field_errors(response)["name"] == ["This field is required."]


def test_revoke_htmx_then_the_key_gets_401(client, console, tenant):
    """Revoke swaps the row to Revoked; the API refuses the key from then on."""
    secret = factories.make_api_key(tenant, name="Old")
    key = db.session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant.id))
    response = console.post(
        f"/api-keys/{key.id}/revoke", headers=htmx_headers(console, "/api-keys")
    )
    assert response.status_code == 200
    page = soup(response)
    assert "Revoked" in page.find("tr", id=f"key-{key.id}").get_text()
    assert "is revoked" in page.find(id="flash").get_text()
    assert secret not in response.get_data(as_text=True)
    assert factories.ApiClient(client, secret).get("/api/channels").status_code == 401


def test_revoke_without_js_confirms_first(console, tenant, other_tenant):
    """No JS: a confirmation page, then a POST and a redirect; other tenants' keys: 404."""
    factories.make_api_key(tenant, name="Old")
    key = db.session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant.id))
    assert "Revoke key" in console.get(f"/api-keys/{key.id}/revoke").get_data(as_text=True)
    token = csrf_token(console, "/api-keys")
    response = console.post(f"/api-keys/{key.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 303
    db.session.refresh(key)
    assert key.revoked_at is not None
    factories.make_api_key(other_tenant)
    theirs = db.session.scalar(select(ApiKey).where(ApiKey.tenant_id == other_tenant.id))
    assert (
        console.post(f"/api-keys/{theirs.id}/revoke", data={"csrf_token": token}).status_code == 404
    )
    assert console.post("/api-keys", data={"name": "x"}).status_code == 400


def test_a_revocation_whose_counter_cannot_be_bumped_answers_503(app, client, console, tenant):
    """The key cache's counter (Redis) does not answer: the revocation is rolled back and the
    console answers 503 with Retry-After (not a 500), and the key still works."""
    app.config["API_KEY_CACHE"] = f"redis://127.0.0.1:{closed_port()}/12"
    secret = factories.make_api_key(tenant, name="Kept")
    key = db.session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant.id))
    token = csrf_token(console, "/api-keys")
    response = console.post(f"/api-keys/{key.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).revoked_at is None
    assert factories.ApiClient(client, secret).get("/api/channels").status_code == 200
