"""The console under load: the channels page and the type-switch fragment.

An admin of the measured tenant signs in through the real form (``/login``, with its CSRF
token) once; wrk then replays that session cookie, with the same User-Agent so that
Flask-Login's session protection sees the same client.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from bench import loadgen
from bench.dataset import Seed

PASSWORD = "quiet-lantern-orbit-4817"  # passes the password policy (not built on the email)
EMAIL = "bench-admin@example.org"
CONSOLE_MIN_SECONDS = 3
USER_AGENT = "channels-bench"
PAGES = {  # name: (endpoint, query string, htmx request?)
    "channels_page": ("console.channels_index", "", False),
    "type_fields_fragment": ("console.channels_type_fields", "?channel_type=sms", True),
}


@dataclass
class ConsoleTarget:
    """The paths to measure (found in the app's URL map)."""

    paths: dict[str, tuple[str, bool]]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def prepare(app, seed: Seed) -> ConsoleTarget | None:
    """An admin user of the measured tenant; None while the console has no channel routes."""
    from core.extensions import db
    from core.models import Tenant
    from core.services import accounts

    rules = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
    if not all(endpoint in rules for endpoint, _, _ in PAGES.values()):
        return None
    accounts.create_user(
        EMAIL,
        PASSWORD,
        "admin",
        db.session.get(Tenant, seed.measured.id),
        must_change_password=False,
    )
    db.session.commit()
    return ConsoleTarget(
        {name: (rules[endpoint] + query, htmx) for name, (endpoint, query, htmx) in PAGES.items()}
    )


def sign_in(base: str) -> str:
    """Sign in through the form; returns the ``Cookie`` header value of the session."""
    opener = urllib.request.build_opener(_NoRedirect)
    headers = {"User-Agent": USER_AGENT}
    with opener.open(urllib.request.Request(f"{base}/login", headers=headers), timeout=10) as page:
        html = page.read().decode()
        cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    if token is None:
        raise loadgen.LoadError("no CSRF token on /login")
    form = urllib.parse.urlencode(
        {"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD}
    )
    request = urllib.request.Request(
        f"{base}/login", data=form.encode(), headers=dict(headers, Cookie=cookie), method="POST"
    )
    try:
        opener.open(request, timeout=10)
        raise loadgen.LoadError("sign-in did not redirect")
    except urllib.error.HTTPError as answer:  # the 303 to the channels page
        if answer.code != 303:
            raise loadgen.LoadError(f"sign-in answered {answer.code}") from None
        return answer.headers["Set-Cookie"].split(";", 1)[0]


def measure(base: str, bare: str, target: ConsoleTarget, profile) -> dict[str, dict]:
    """Server time (wrk, one connection) and bytes of each console response, against bare JSON."""
    cookie = sign_in(base)
    with urllib.request.urlopen(f"{bare}/bare/json", timeout=10) as response:
        bare_bytes = len(response.read())
    baseline = loadgen.run(
        "console-bare", f"{bare}/bare/json", duration=profile.growth_seconds, connections=1
    )
    figures = {}
    for name, (path, htmx) in target.paths.items():
        headers = {"Cookie": cookie, "User-Agent": USER_AGENT}
        if htmx:
            headers["HX-Request"] = "true"
        opener = urllib.request.build_opener(_NoRedirect)
        with opener.open(
            urllib.request.Request(base + path, headers=headers), timeout=10
        ) as response:
            body = response.read()
            if response.status != 200:
                raise loadgen.LoadError(
                    f"console {path} answered {response.status} for a signed-in admin"
                )
        result = loadgen.run(
            f"console-{name}",
            base + path,
            # A page can take over a second on a loaded machine: a short window could end
            # before its first answer.
            duration=max(profile.growth_seconds, CONSOLE_MIN_SECONDS),
            connections=1,
            headers=headers,
        )
        figures[name] = {
            "path": path,
            "bytes": len(body),
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "rps": result.rps,
            "p50_vs_bare": round(result.p50_ms / baseline.p50_ms, 3),
            "bytes_vs_bare": round(len(body) / bare_bytes, 1),
        }
    figures["bare_json"] = {
        "path": "/bare/json",
        "bytes": bare_bytes,
        "p50_ms": baseline.p50_ms,
        "p99_ms": baseline.p99_ms,
        "rps": baseline.rps,
        "p50_vs_bare": 1.0,
        "bytes_vs_bare": 1.0,
    }
    return figures
