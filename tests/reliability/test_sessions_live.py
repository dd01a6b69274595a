"""The replay attack on a live server with several gunicorn workers: a session cookie copied
before sign-out opens pages on every worker while the session lives, and is refused by every
worker once the session was signed out (the session row is gone: nothing lives in a worker's
memory)."""

from __future__ import annotations

import httpx

from tests import factories
from tests.console.conftest import make_console_user
from tests.console.helpers import PASSWORD
from tests.reliability.live import csrf_of, in_parallel


def test_a_cookie_copied_before_sign_out_is_refused_by_every_worker_after_it(live):
    """40 parallel replays of the copied cookie: all 200 before sign-out, all sent to sign-in
    after it, whichever worker serves them."""
    with live.context():
        tenant = factories.make_tenant()
        email = make_console_user(f"replay-{tenant.slug}@example.com", tenant=tenant).email

    with httpx.Client(base_url=live.url, timeout=30) as browser:
        login = browser.get("/login")
        signed_in = browser.post(
            "/login", data={"csrf_token": csrf_of(login.text), "email": email, "password": PASSWORD}
        )
        assert signed_in.status_code == 303, signed_in.text
        copied = dict(browser.cookies)  # what an attacker copied

        def replay() -> int:
            with httpx.Client(base_url=live.url, timeout=30, cookies=copied) as attacker:
                return attacker.get("/channels").status_code

        assert in_parallel([replay] * 40) == [200] * 40
        channels = browser.get("/channels")
        signed_out = browser.post("/logout", data={"csrf_token": csrf_of(channels.text)})
        assert signed_out.status_code == 303, signed_out.text

    def replay_after() -> tuple[int, str]:
        with httpx.Client(base_url=live.url, timeout=30, cookies=copied) as attacker:
            page = attacker.get("/channels")
            return page.status_code, page.headers.get("Location", "")

    after = in_parallel([replay_after] * 40)
    assert all(status == 303 and "/login" in where for status, where in after), after
