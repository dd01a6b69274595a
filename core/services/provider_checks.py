"""Live provider calls: checking an integration's credentials, and the transport they share.

``check_integration`` asks the provider whether the stored credentials work and records the
outcome on the integration (``last_checked_at``, ``last_check_ok``, ``last_check_message``);
``core.services.test_send`` sends a test message through the same transport.

- smtp: a real SMTP session (``smtplib``): connect, EHLO, STARTTLS when ``use_tls`` (port 465
  means implicit TLS instead), AUTH LOGIN/PLAIN when a username is set.
- HTTP providers: each provider's own credential-check endpoint, called with ``urllib``
  (no redirects are followed, so credentials never travel to another host).
- console: always fine; it only writes to the app log.

Configuration:

- ``PROVIDER_TIMEOUT`` (seconds, default 10): connect and read timeout of every call.
- ``PROVIDER_BASE_URLS`` overrides where providers are called (tests, egress proxies). Either a
  JSON object ``{"sendgrid": "http://127.0.0.1:8025", ...}`` or comma-separated
  ``provider=url`` pairs (``sendgrid=http://127.0.0.1:8025,twilio=http://...``); instance
  config may also set a dict. Keys: ``sendgrid``, ``mailgun`` (US region), ``mailgun_eu``
  (falls back to ``mailgun`` when only that is overridden), ``ses`` (``{region}`` in the URL is
  replaced by the integration's region), ``postmark``, ``twilio``, ``vonage``, ``messagebird``.
- ``PROVIDER_CA_FILE``: a PEM bundle trusted in addition to the system's CAs (private SMTP
  relays with an internal CA).

Outcomes are plain sentences without secrets: every secret credential value is scrubbed from
anything a provider answered before it is stored, shown or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app

from core.db_types import utcnow
from core.extensions import db
from core.models import Integration
from core.providers import PROVIDERS, SECRET_MASK
from core.services import audit
from core.services.audit import Actor
from core.services.integrations import credentials_of, get_integration

log = logging.getLogger("channels.provider_checks")

DEFAULT_BASE_URLS = {
    "sendgrid": "https://api.sendgrid.com",
    "mailgun": "https://api.mailgun.net",
    "mailgun_eu": "https://api.eu.mailgun.net",
    "ses": "https://email.{region}.amazonaws.com",
    "postmark": "https://api.postmarkapp.com",
    "twilio": "https://api.twilio.com",
    "vonage": "https://rest.nexmo.com",
    "messagebird": "https://rest.messagebird.com",
}
MAX_RESPONSE_BYTES = 64 * 1024
MESSAGE_MAX = 500
USER_AGENT = "channels-provider-check/1.0"


@dataclass(frozen=True)
class ProviderResult:
    """What a provider call came to: ``ok`` and one plain sentence for people."""

    ok: bool
    message: str


@dataclass
class CheckOutcome:
    integration: Integration
    result: ProviderResult


class ProviderFailure(Exception):
    """A provider call failed; ``message`` says why in plain words (never with secrets)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- configuration --------------------------------------------------------------------------


def provider_timeout() -> float:
    """PROVIDER_TIMEOUT in seconds (typed and checked at start-up by core.settings)."""
    return current_app.config["PROVIDER_TIMEOUT"]


def parse_base_urls(value: object) -> dict[str, str]:
    """PROVIDER_BASE_URLS as a dict: a dict, a JSON object, or ``provider=url`` pairs.

    Raises ValueError saying what is wrong with the setting.
    """
    if not value:
        return {}
    if isinstance(value, dict):
        pairs = value
    elif isinstance(value, str) and value.strip().startswith("{"):
        try:
            pairs = json.loads(value)
        except ValueError as exc:
            raise ValueError("it is not a valid JSON object") from exc
        if not isinstance(pairs, dict):
            raise ValueError("it must be a JSON object")
    elif isinstance(value, str):
        pairs = {}
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, url = item.partition("=")
            if not sep:
                raise ValueError("use provider=url pairs, comma-separated")
            pairs[name.strip()] = url.strip()
    else:
        raise ValueError("it must be a JSON object or provider=url pairs")
    unknown = sorted(set(pairs) - set(DEFAULT_BASE_URLS))
    if unknown:
        raise ValueError(f"it names unknown providers: {', '.join(unknown)}")
    return {str(k): str(v).rstrip("/") for k, v in pairs.items()}


def base_url(key: str, **template) -> str:
    """The base URL to call for a provider key, with ``{region}``-style fields filled in."""
    overrides = current_app.config["PROVIDER_BASE_URLS"]  # a dict, parsed at start-up
    url = overrides.get(key)
    if url is None and key == "mailgun_eu":
        url = overrides.get("mailgun")
    url = url or DEFAULT_BASE_URLS[key]
    return url.format(**template) if template else url


def tls_context() -> ssl.SSLContext:
    """The system's CAs, plus PROVIDER_CA_FILE when configured; hostnames are checked."""
    context = ssl.create_default_context()
    ca_file = current_app.config.get("PROVIDER_CA_FILE")
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


# --- secrets never leave in messages ----------------------------------------------------------


def secret_values(provider: str, credentials: dict) -> list[str]:
    spec = PROVIDERS.get(provider)
    names = spec.secret_fields if spec else tuple(credentials)
    values = [str(credentials[n]) for n in names if credentials.get(n) not in (None, "")]
    return sorted(values, key=len, reverse=True)


def scrub(text: str, secrets_: list[str]) -> str:
    """``text`` with every secret value (and its URL-encoded form) replaced by the mask."""
    for secret in secrets_:
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            if form:
                text = text.replace(form, SECRET_MASK)
    return text


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- HTTP -----------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Credentials go to the configured host only: a redirect is an unexpected answer."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


@dataclass
class HttpCall:
    """One request to a provider's HTTP API."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass
class HttpAnswer:
    status: int
    body: bytes

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


def form_body(values: dict) -> bytes:
    return urllib.parse.urlencode(values).encode()


def json_body(values: dict) -> bytes:
    return json.dumps(values).encode()


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def network_failure(label: str, host: str, exc: BaseException) -> str:
    """A network error as a sentence: unreachable host, refused, timeout, TLS, dropped."""
    message = _network_failure(label, host, exc)
    return message[:1].upper() + message[1:]


def _network_failure(label: str, host: str, exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        seconds = provider_timeout()
        unit = "second" if seconds == 1 else "seconds"
        return f"{label} did not answer within {seconds:g} {unit} ({host})."
    if isinstance(reason, socket.gaierror):
        return f"Could not reach {label}: the host name {host} could not be resolved."
    if isinstance(reason, ConnectionRefusedError):
        return f"Could not reach {label} at {host}: the connection was refused."
    if isinstance(reason, ssl.SSLCertVerificationError):
        detail = reason.verify_message or "not trusted"
        return f"Could not connect securely to {label} at {host}: its certificate is {detail}."
    if isinstance(reason, ssl.SSLError):
        return f"Could not connect securely to {label} at {host}: the TLS handshake failed."
    if isinstance(reason, http.client.RemoteDisconnected | ConnectionResetError | EOFError):
        return f"{label} at {host} closed the connection without answering."
    if isinstance(reason, OSError):
        detail = reason.strerror or reason.__class__.__name__
        return f"Could not reach {label} at {host}: {detail}."
    return f"Could not reach {label} at {host}: {reason}."


def http_request(label: str, call: HttpCall) -> HttpAnswer:
    """Send one request; any answer (also 4xx/5xx) comes back, network errors raise."""
    invalid = f"The address configured for {label} is not a valid http(s) URL."
    try:
        parts = urllib.parse.urlsplit(call.url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise ProviderFailure(invalid)
    host = parts.netloc.rpartition("@")[2]
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **call.headers}
    request = urllib.request.Request(call.url, data=call.body, headers=headers, method=call.method)
    opener = urllib.request.build_opener(
        _NoRedirect(), urllib.request.HTTPSHandler(context=tls_context())
    )
    try:
        with opener.open(request, timeout=provider_timeout()) as response:
            return HttpAnswer(response.status, response.read(MAX_RESPONSE_BYTES))
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(MAX_RESPONSE_BYTES)
        except (OSError, http.client.HTTPException):
            body = b""
        finally:
            exc.close()
        return HttpAnswer(exc.code, body)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise ProviderFailure(network_failure(label, host, exc)) from None
    except ValueError:  # e.g. a port that is not a number
        raise ProviderFailure(invalid) from None


def provider_detail(answer: HttpAnswer) -> str:
    """The provider's own error text, when its answer carries one."""
    data = answer.json()
    candidates = []
    if isinstance(data, dict):
        for key in ("message", "Message", "error", "error-text", "detail", "title"):
            if isinstance(data.get(key), str):
                candidates.append(data[key])
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            for key in ("message", "description", "detail"):
                if isinstance(errors[0].get(key), str):
                    candidates.append(errors[0][key])
        if isinstance(data.get("error"), dict) and isinstance(data["error"].get("message"), str):
            candidates.append(data["error"]["message"])
    elif answer.body and answer.body.lstrip()[:1] not in (b"<", b""):
        candidates.append(answer.body.decode("utf-8", "replace"))
    return _clip(candidates[0]) if candidates else ""


def status_failure(label: str, answer: HttpAnswer) -> str:
    """A non-success HTTP answer as a sentence: bad credentials or an unexpected status."""
    detail = provider_detail(answer)
    suffix = f": {detail}" if detail else ""
    if answer.status in (401, 403):
        return f"{label} rejected the credentials (HTTP {answer.status}{suffix})."
    if answer.status == 429:
        return f"{label} is rate limiting these credentials (HTTP 429); try again later."
    return f"{label} answered with an unexpected status (HTTP {answer.status}{suffix})."


# --- AWS Signature Version 4 (SES) ----------------------------------------------------------


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sigv4_headers(
    method: str,
    url: str,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    now: datetime | None = None,
    sign_payload_header: bool = True,
) -> dict[str, str]:
    """The headers that sign a request with AWS Signature Version 4 (``Authorization`` etc.)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    parts = urllib.parse.urlsplit(url)
    payload_hash = hashlib.sha256(body or b"").hexdigest()
    signed = {k.lower(): " ".join(str(v).split()) for k, v in (headers or {}).items()}
    signed["host"] = parts.netloc
    signed["x-amz-date"] = amz_date
    if sign_payload_header:
        signed["x-amz-content-sha256"] = payload_hash
    canonical_headers = "".join(f"{k}:{signed[k]}\n" for k in sorted(signed))
    signed_names = ";".join(sorted(signed))
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(query)
    )
    canonical_path = urllib.parse.quote(parts.path or "/", safe="/-_.~%")
    canonical_request = "\n".join(
        [method, canonical_path, canonical_query, canonical_headers, signed_names, payload_hash]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + secret_access_key).encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    result = {k: v for k, v in signed.items() if k != "host"}
    result["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return result


def ses_call(credentials: dict, method: str, path: str, body: bytes = b"") -> HttpCall:
    """A signed call to the SES v2 API in the integration's region."""
    region = credentials["region"]
    url = base_url("ses", region=region) + path
    headers = {"content-type": "application/json"} if body else {}
    headers.update(
        sigv4_headers(
            method,
            url,
            access_key_id=credentials["access_key_id"],
            secret_access_key=credentials["secret_access_key"],
            region=region,
            service="ses",
            body=body,
            headers=headers,
        )
    )
    return HttpCall(method, url, headers, body or None)


# --- SMTP -----------------------------------------------------------------------------------


def smtp_failure(host: str, exc: BaseException) -> str:
    """An SMTP session error as a sentence."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"The SMTP server rejected the username or password ({_smtp_reply(exc)})."
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        text = str(exc)
        if "STARTTLS" in text.upper():
            return (
                f"The SMTP server at {host} does not offer STARTTLS; turn off "
                '"Use STARTTLS" only if the server is on a trusted network.'
            )
        return (
            f"The SMTP server at {host} does not offer authentication (AUTH) on this "
            "connection; remove the username, or turn on STARTTLS if it requires TLS first."
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        reply = f"{replies[0][0]} {replies[0][1].decode('utf-8', 'replace')}" if replies else ""
        return f"The SMTP server refused the recipient ({_clip(reply)})."
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"The SMTP server refused the sender address ({_smtp_reply(exc)})."
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"The SMTP server answered with an error ({_smtp_reply(exc)})."
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib reports a read timeout as a disconnect; the timeout is the real story.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, TimeoutError):
            return network_failure("the SMTP server", host, cause)
        return f"The SMTP server at {host} closed the connection unexpectedly."
    if isinstance(exc, smtplib.SMTPException):
        return f"The SMTP session with {host} failed: {_clip(str(exc))}."
    return network_failure("the SMTP server", host, exc)


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode("utf-8", "replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return _clip(f"{exc.smtp_code} {text}")


def smtp_session(credentials: dict, action: Callable[[smtplib.SMTP], None] | None = None) -> None:
    """Open an authenticated SMTP session as configured, run ``action`` in it, say QUIT."""
    host = credentials["host"]
    port = int(credentials.get("port") or 587)
    timeout = provider_timeout()
    address = f"{host}:{port}"
    try:
        if port == 465:  # SMTPS: TLS from the first byte
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        try:
            client.ehlo()
            if credentials.get("use_tls", True) and port != 465:
                client.starttls(context=tls_context())
                client.ehlo()
            if credentials.get("username"):
                client.login(credentials["username"], credentials.get("password") or "")
            if action is not None:
                action(client)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    except (smtplib.SMTPException, OSError, EOFError) as exc:
        raise ProviderFailure(smtp_failure(address, exc)) from None


# --- the checks -----------------------------------------------------------------------------


def expect_status(label: str, answer: HttpAnswer, statuses=(200,)) -> None:
    if answer.status not in statuses:
        raise ProviderFailure(status_failure(label, answer))


def _check_smtp(credentials: dict) -> str:
    smtp_session(credentials)
    how = " with STARTTLS" if credentials.get("use_tls", True) else ""
    if int(credentials.get("port") or 587) == 465:
        how = " over TLS"
    auth = " and signed in" if credentials.get("username") else ""
    return f"Connected to {credentials['host']}:{credentials.get('port')}{how}{auth}."


def _check_sendgrid(c: dict) -> str:
    call = HttpCall(
        "GET", base_url("sendgrid") + "/v3/scopes", {"Authorization": f"Bearer {c['api_key']}"}
    )
    expect_status("SendGrid", http_request("SendGrid", call))
    return "SendGrid accepted the API key."


def mailgun_base_url(c: dict) -> str:
    return base_url("mailgun_eu" if c.get("region") == "eu" else "mailgun")


def _check_mailgun(c: dict) -> str:
    domain = urllib.parse.quote(c["domain"], safe="")
    call = HttpCall(
        "GET",
        f"{mailgun_base_url(c)}/v3/domains/{domain}",
        {"Authorization": basic_auth("api", c["api_key"])},
    )
    answer = http_request("Mailgun", call)
    if answer.status == 404:
        region = c.get("region", "us").upper()
        raise ProviderFailure(
            f"Mailgun accepted the API key but has no domain {c['domain']} in the {region} region."
        )
    expect_status("Mailgun", answer)
    return f"Mailgun accepted the API key for {c['domain']}."


def _check_ses(c: dict) -> str:
    answer = http_request("Amazon SES", ses_call(c, "GET", "/v2/email/account"))
    expect_status("Amazon SES", answer)
    data = answer.json() if isinstance(answer.json(), dict) else {}
    if data.get("SendingEnabled") is False:
        raise ProviderFailure(
            f"Amazon SES accepted the keys, but sending is paused in {c['region']}."
        )
    return f"Amazon SES accepted the access key in {c['region']}."


def _check_postmark(c: dict) -> str:
    call = HttpCall(
        "GET", base_url("postmark") + "/server", {"X-Postmark-Server-Token": c["server_token"]}
    )
    expect_status("Postmark", http_request("Postmark", call))
    return "Postmark accepted the server token."


def _check_twilio(c: dict) -> str:
    sid = urllib.parse.quote(c["account_sid"], safe="")
    call = HttpCall(
        "GET",
        f"{base_url('twilio')}/2010-04-01/Accounts/{sid}.json",
        {"Authorization": basic_auth(c["account_sid"], c["auth_token"])},
    )
    answer = http_request("Twilio", call)
    expect_status("Twilio", answer)
    data = answer.json() if isinstance(answer.json(), dict) else {}
    if data.get("status") and data["status"] != "active":
        raise ProviderFailure(
            f"Twilio accepted the credentials, but the account is {data['status']}."
        )
    return "Twilio accepted the account SID and auth token."


def _check_vonage(c: dict) -> str:
    query = urllib.parse.urlencode({"api_key": c["api_key"], "api_secret": c["api_secret"]})
    call = HttpCall("GET", f"{base_url('vonage')}/account/get-balance?{query}")
    expect_status("Vonage", http_request("Vonage", call))
    return "Vonage accepted the API key and secret."


def _check_messagebird(c: dict) -> str:
    call = HttpCall(
        "GET",
        base_url("messagebird") + "/balance",
        {"Authorization": f"AccessKey {c['access_key']}"},
    )
    expect_status("MessageBird", http_request("MessageBird", call))
    return "MessageBird accepted the access key."


def _check_console(c: dict) -> str:
    return "The console provider writes messages to the app log; nothing to connect to."


CHECKS: dict[str, Callable[[dict], str]] = {
    "smtp": _check_smtp,
    "sendgrid": _check_sendgrid,
    "mailgun": _check_mailgun,
    "ses": _check_ses,
    "postmark": _check_postmark,
    "twilio": _check_twilio,
    "vonage": _check_vonage,
    "messagebird": _check_messagebird,
    "console": _check_console,
}


def run_provider_call(provider: str, credentials: dict, call: Callable[[], str]) -> ProviderResult:
    """Run a provider call and turn its outcome into a scrubbed ProviderResult."""
    try:
        result = ProviderResult(True, call())
    except ProviderFailure as exc:
        result = ProviderResult(False, exc.message)
    except KeyError as exc:  # a required credential is missing (stored before a catalogue change)
        result = ProviderResult(False, f"The integration has no {exc.args[0]} credential; edit it.")
    message = _clip(scrub(result.message, secret_values(provider, credentials)), MESSAGE_MAX)
    return ProviderResult(result.ok, message)


def check_credentials(provider: str, credentials: dict) -> ProviderResult:
    """Ask the provider whether these credentials work (no database access)."""
    check = CHECKS.get(provider)
    if check is None:
        return ProviderResult(False, f"Checking {provider} integrations is not supported.")
    return run_provider_call(provider, credentials, lambda: check(credentials))


def check_integration(tenant_id: str, integration_id: str, actor: Actor) -> CheckOutcome:
    """Check an integration's credentials with its provider; store and audit the outcome."""
    integration = get_integration(tenant_id, integration_id)
    result = check_credentials(integration.provider, credentials_of(integration))
    before = {"ok": integration.last_check_ok, "message": integration.last_check_message}
    integration.last_checked_at = utcnow()
    integration.last_check_ok = result.ok
    integration.last_check_message = result.message
    db.session.flush()
    log.info(
        "integration %s (%s) checked: %s",
        integration.id,
        integration.provider,
        "ok" if result.ok else "failed",
    )
    audit.record(
        tenant_id,
        actor,
        "integration.check",
        "integration",
        integration.id,
        {
            "last_check_ok": {"before": before["ok"], "after": result.ok},
            "last_check_message": {"before": before["message"], "after": result.message},
        },
    )
    return CheckOutcome(integration, result)
