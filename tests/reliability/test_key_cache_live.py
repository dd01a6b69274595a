"""API keys cached per worker, revoked everywhere at once: a key revoked through one gunicorn
worker (the console's revoke button) is refused by the very next request, whichever of the
other workers serves it, although every worker had it cached."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from core.extensions import db
from core.models import ApiKey
from tests import factories
from tests.console.conftest import make_console_user
from tests.console.helpers import PASSWORD
from tests.reliability.live import csrf_of, in_parallel, statuses


def test_a_key_revoked_in_one_worker_is_refused_by_every_other_at_once(live):
    """40 parallel requests warm every worker's cache; the revoke (one worker) is followed by
    requests answered 401 by all of them, each worker serving several."""
    with live.context():
        tenant = factories.make_tenant()
        key = factories.make_api_key(tenant)
        other_key = factories.make_api_key(tenant)
        admin = make_console_user(f"keys-{tenant.slug}@example.com", tenant=tenant)
        prefix = "_".join(key.split("_", 2)[:2])
        key_id = db.session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix))
        email = admin.email
    get = lambda k=key: live.request("GET", "/api/channels", key=k)  # noqa: E731
    assert statuses(in_parallel([get] * 40)) == [200] * 40

    with httpx.Client(base_url=live.url, timeout=30) as browser:
        login = browser.get("/login")
        signed_in = browser.post(
            "/login", data={"csrf_token": csrf_of(login.text), "email": email, "password": PASSWORD}
        )
        assert signed_in.status_code == 303, signed_in.text
        keys_page = browser.get("/api-keys")
        assert keys_page.status_code == 200
        revoke_url = f"/api-keys/{key_id}/revoke"
        revoked = browser.post(revoke_url, data={"csrf_token": csrf_of(keys_page.text)})
        assert revoked.status_code == 303, revoked.text

    after = in_parallel([get] * 40)
    assert statuses(after) == [401] * 40
    # Another key of the same tenant is untouched (its workers' entries were only re-read).
    assert statuses(in_parallel([lambda: get(other_key)] * 8)) == [200] * 8
