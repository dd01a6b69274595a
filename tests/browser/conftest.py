"""Browser test harness: Debian's Chromium, driven by Playwright, against the per-test app.

- ``server`` (tests/conftest.py): the test's own ``app`` served on 127.0.0.1 in a thread.
- ``open_page`` / ``page``: a fresh browser context per page, with no network: the CDN URL of
  htmx (``app.config["HTMX_SRC"]``) is answered from ``tests/.cache/htmx.min.js``, whose
  sha384 must equal ``app.HTMX_SRI`` (fetched with npm when missing, so that plain ``pytest``
  works too); every other request that is not for the test server is aborted and fails the test.
- Every console error, uncaught page error, CSP violation and 5xx response fails the test at
  teardown (``page_problems`` shows how to allow an expected one).
- ``sign_in`` signs a user made with ``tests.factories.make_user`` in through the login form
  (support staff, who need a second factor to open a tenant, get an authenticator app and sign
  in with its code).
- ``screenshot(page, name)`` writes ``tests/artifacts/screenshots/<name>-<width>.png`` at
  1280x800 and at 390x844.

Every test under tests/browser/ carries the ``browser`` marker.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import url_for
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

import app as app_module
from core.crypto import unseal
from core.extensions import db
from core.models import TotpFactor
from core.services import mfa
from tests import factories

TESTS = Path(__file__).resolve().parents[1]
CACHE = TESTS / ".cache"
HTMX_FILE = CACHE / "htmx.min.js"
AXE_FILE = CACHE / "axe.min.js"
AXE_VERSION = "4.10.3"  # keep in step with tests/run
AXE_INTEGRITY = (  # the registry's dist.integrity of that version
    "sha512-Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg=="  # noqa: E501
)
SCREENSHOTS = TESTS / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct-horse-battery"  # what tests.factories.make_user gives every user
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Reports a CSP violation even where Chromium would not log one (e.g. report-only policies).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  const element = event.target instanceof Element ? event.target.outerHTML.slice(0, 160) : "";
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber} ${element}`);
});
"""
# Chromium logs this for every 4xx/5xx response, including the 422 of a form with errors that a
# test provokes on purpose; responses are asserted by the tests and 5xx fail through on_response.
NETWORK_STATUS_LOG = re.compile(
    r"^Failed to load resource: the server responded with a status of 4\d\d"
)


def pytest_collection_modifyitems(items):
    """Every test in this folder drives a browser: mark it so ``-m "not browser"`` skips them."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


# --- front-end assets -----------------------------------------------------------------------


def sri(algorithm: str, data: bytes) -> str:
    """A Subresource Integrity value: ``sha384-<base64 digest>``."""
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def npm_fetch(spec: str, member: str, dest: Path, integrity: str | None = None) -> None:
    """Extract one file of a package from the npm registry (``npm pack``) to ``dest``."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            f"{dest.name} is not in tests/.cache/ and npm is missing to fetch {spec}: "
            "run `bash tests/run` (it installs what the tests need) or install npm.",
            pytrace=False,
        )
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [npm, "pack", "--silent", spec], cwd=tmp, capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            pytest.fail(f"npm pack {spec} failed:\n{result.stderr}", pytrace=False)
        tarball = next(Path(tmp).glob("*.tgz"))
        if integrity and sri("sha512", tarball.read_bytes()) != integrity:
            pytest.fail(f"{spec}: the tarball does not match the pinned {integrity}", pytrace=False)
        with tarfile.open(tarball) as archive:
            extracted = archive.extractfile(member)
            assert extracted is not None, f"{member} is not a file in {spec}"
            data = extracted.read()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(f".{os.getpid()}.part")  # atomic for parallel workers
    partial.write_bytes(data)
    os.replace(partial, dest)


@pytest.fixture(scope="session")
def htmx_js() -> bytes:
    """The pinned htmx build, byte for byte the one whose SRI app.py pins."""
    if not HTMX_FILE.exists():
        npm_fetch(f"htmx.org@{app_module.HTMX_VERSION}", "package/dist/htmx.min.js", HTMX_FILE)
    data = HTMX_FILE.read_bytes()
    actual = sri("sha384", data)
    if actual != app_module.HTMX_SRI:
        pytest.fail(
            f"{HTMX_FILE} does not match the SRI pinned in core/settings.py:\n"
            f"  app.HTMX_SRI: {app_module.HTMX_SRI}\n  file:         {actual}\n"
            "Delete the file and run `bash tests/run` to fetch htmx.org@"
            f"{app_module.HTMX_VERSION} again; if it still differs, the pin in core/settings.py "
            "is wrong.",
            pytrace=False,
        )
    return data


@pytest.fixture(scope="session")
def axe_path() -> Path:
    """axe-core's axe.min.js in tests/.cache/, fetched with npm when missing."""
    stamp = CACHE / "axe.version"
    current = stamp.read_text().strip() if stamp.exists() else ""
    if not AXE_FILE.exists() or current != AXE_VERSION:
        npm_fetch(f"axe-core@{AXE_VERSION}", "package/axe.min.js", AXE_FILE, AXE_INTEGRITY)
        stamp.write_text(AXE_VERSION + "\n")
    return AXE_FILE


# --- browser and server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium; one per test module (Playwright's event loop lives only here)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `bash tests/run` (installs Debian's chromium "
            "as root), or `apt-get install chromium`, or set CHROMIUM to a Chromium binary.",
            pytrace=False,
        )
    # Assertions retry for up to 10 s (Playwright's default is 5 s): CI's 2 cores also run the
    # rest of the suite on another xdist worker.
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


# --- pages ----------------------------------------------------------------------------------------


@dataclass
class PageProblems:
    """What went wrong in the browser during a test; any entry left fails the test."""

    entries: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Accept console errors matching ``pattern`` (for a test that provokes one on purpose)."""
        self.allowed.append(re.compile(pattern))

    def add(self, entry: str) -> None:
        self.entries.append(entry)

    def unexpected(self) -> list[str]:
        return [e for e in self.entries if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def page_problems() -> PageProblems:
    """Console errors, page errors, CSP violations, 5xx responses and blocked requests."""
    return PageProblems()


@pytest.fixture
def open_page(chromium, server, app, htmx_js, page_problems) -> Iterator[Callable[..., Page]]:
    """Opens a page in a new context (``open_page(java_script_enabled=False)``, ...)."""
    contexts: list[BrowserContext] = []
    htmx_src = app.config["HTMX_SRC"]

    def route(route: Route) -> None:
        url = route.request.url
        if url == htmx_src:
            route.fulfill(
                status=200,
                body=htmx_js,
                headers={
                    "Content-Type": "text/javascript; charset=utf-8",
                    "Access-Control-Allow-Origin": "*",  # SRI on a cross-origin script needs CORS
                },
            )
        elif urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            page_problems.add(f"blocked a request off this machine: {route.request.method} {url}")
            route.abort("blockedbyclient")

    def on_console(message) -> None:
        if message.type == "error" and not NETWORK_STATUS_LOG.search(message.text):
            page_problems.add(f"console.error: {message.text} ({message.location.get('url')})")

    def on_response(response) -> None:
        if response.status >= 500:
            page_problems.add(
                f"HTTP {response.status} for {response.request.method} {response.url}"
            )

    def open_(**options) -> Page:
        options.setdefault("viewport", dict(DESKTOP))
        context = chromium.new_context(base_url=server, **options)
        contexts.append(context)
        context.set_default_timeout(10_000)
        context.route("**/*", route)
        context.add_init_script(CSP_LISTENER)
        context.on("console", on_console)
        context.on("weberror", lambda error: page_problems.add(f"page error: {error.error}"))
        context.on("response", on_response)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()
    problems = page_problems.unexpected()
    if problems:
        pytest.fail("The browser reported problems:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def page(open_page) -> Page:
    """A page at 1280x800 with JavaScript on."""
    return open_page()


def end_test_transaction() -> None:
    """End the test thread's transaction (its objects expire) before the server writes.

    The test and the server share one database: a transaction the test keeps open would
    read an old snapshot, and on SQLite it could not write any more once the server committed.
    Call it before reading what the server wrote and before writing (factories) after browsing.
    """
    db.session.rollback()


def unused_code(user_id: str) -> str:
    """A code of the user's authenticator app that the server has not accepted yet (a code
    works once: a second sign-in within 30 seconds takes the next step's code)."""
    end_test_transaction()
    row = db.session.get(TotpFactor, user_id)
    clock = time.time()
    now = int(clock) // mfa.TOTP_INTERVAL
    step = now - 1 if row.last_used_step is None else max(now - 1, row.last_used_step + 1)
    # The server accepts the steps next to its own (mfa.TOTP_DRIFT_STEPS): the previous step's
    # code stops working when the current window ends. Near its end, the browser's sign-in
    # could reach the server after it: take the current step's code, good for 30 s more.
    window_left = (now + 1) * mfa.TOTP_INTERVAL - clock
    if step == now - 1 and window_left < 10:
        step = now
    assert step <= now + 1, "more than three sign-ins of one user within 30 seconds"
    code = pyotp.TOTP(unseal(row.secret_encrypted)).generate_otp(step)
    end_test_transaction()
    return code


@pytest.fixture
def sign_in(app) -> Callable[..., None]:
    """``sign_in(page, user)``: signs in through the login form and waits to leave it."""

    def sign_in_(page: Page, user, password: str = PASSWORD, give_factor: bool = True) -> None:
        email, support = user.email, user.is_support
        # Reading ``user.email`` may have opened a read transaction in this thread; SQLite could
        # not upgrade it to a write after the server's own write (last_login_at) committed.
        end_test_transaction()
        # Support staff open tenants only with a second factor: they get an authenticator app
        # (``give_factor=False`` keeps them without one) and sign in with its code.
        second_step = support and give_factor
        if second_step and not mfa.has_factor(user.id):
            factories.enroll_totp(user)
        end_test_transaction()
        page.goto(url_for("console.login"))
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name=re.compile("^sign in$", re.I)).click()
        if second_step:
            expect(page).to_have_url(re.compile(r"/login/verify"))
            page.get_by_label("Authentication code").fill(unused_code(user.id))
            page.get_by_role("button", name="Verify").click()
        expect(page).not_to_have_url(re.compile(r"/login"))

    return sign_in_


@pytest.fixture
def admin(app, setup):
    """An admin of the ready tenant (``setup``): email+SMS integrations, domain, number."""
    return factories.make_user(setup.tenant, email="ada@example.com", name="Ada Admin")


@pytest.fixture
def screenshot() -> Callable[[Page, str], None]:
    """``screenshot(page, name)``: full-page PNGs at 1280x800 and 390x844, viewport restored."""

    def take(page: Page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        before = page.viewport_size or DESKTOP
        for size in (DESKTOP, PHONE):
            page.set_viewport_size(size)
            # caret="initial": hiding the caret leaves style="" on the focused input, which htmx
            # then copies while settling a swap, and the page's CSP rightly refuses that.
            page.screenshot(
                path=SCREENSHOTS / f"{name}-{size['width']}.png", full_page=True, caret="initial"
            )
        page.set_viewport_size(before)

    return take
