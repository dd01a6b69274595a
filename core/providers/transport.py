"""The one HTTP transport every HTTP provider uses (httpx), and the TLS and timeout settings
that SMTP shares.

- Redirects are never followed: credentials go to the configured host only, and a 3xx is an
  unexpected answer like any other.
- ``PROVIDER_TIMEOUT`` (seconds, default 10) bounds connecting, each read and each write.
- TLS trusts the system's CAs plus ``PROVIDER_CA_FILE`` (a PEM bundle) when set; host names
  are checked.
- Network errors become plain sentences (unreachable, refused, timeout, TLS, dropped);
  answers (also 4xx/5xx) come back to the provider module, which words them.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import urllib.parse
from dataclasses import dataclass, field

import httpx
from flask import current_app

from core.providers.outcome import ProviderFailure, clip

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "channels-provider-check/1.0"


# --- settings -------------------------------------------------------------------------------


def provider_timeout() -> float:
    """PROVIDER_TIMEOUT in seconds (typed and checked at start-up by core.settings)."""
    return current_app.config["PROVIDER_TIMEOUT"]


def tls_context() -> ssl.SSLContext:
    """The system's CAs, plus PROVIDER_CA_FILE when configured; hostnames are checked."""
    context = ssl.create_default_context()
    ca_file = current_app.config.get("PROVIDER_CA_FILE")
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


# --- requests and answers -------------------------------------------------------------------


@dataclass
class HttpCall:
    """One request to a provider's HTTP API."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass
class HttpAnswer:
    """A provider's answer: its status and (at most MAX_RESPONSE_BYTES of) its body."""

    status: int
    body: bytes

    def json(self):
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


def form_body(values: dict) -> bytes:
    """``values`` as an application/x-www-form-urlencoded body."""
    return urllib.parse.urlencode(values).encode()


def json_body(values: dict) -> bytes:
    """``values`` as a JSON body."""
    return json.dumps(values).encode()


def basic_auth(user: str, password: str) -> str:
    """An HTTP Basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- network failures as sentences ----------------------------------------------------------


def _root_cause(exc: BaseException) -> BaseException:
    """The error under httpx's wrappers (the OSError or ssl error that actually happened)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


def network_failure(label: str, host: str, exc: BaseException) -> str:
    """A network error as a sentence: unreachable host, refused, timeout, TLS, dropped."""
    message = _network_failure(label, host, exc)
    return message[:1].upper() + message[1:]


def _network_failure(label: str, host: str, exc: BaseException) -> str:
    """The sentence for the underlying error (httpx's wrappers taken off first)."""
    if isinstance(exc, httpx.TimeoutException):
        reason: BaseException = TimeoutError()
    elif isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc).lower():
        reason = http.client.RemoteDisconnected()
    elif isinstance(exc, httpx.HTTPError):
        reason = _root_cause(exc)
    else:
        reason = exc
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


# --- the transport --------------------------------------------------------------------------


def http_client() -> httpx.Client:
    """A client for one provider call: no redirects, PROVIDER_TIMEOUT, the configured CAs."""
    return httpx.Client(
        follow_redirects=False,
        timeout=httpx.Timeout(provider_timeout()),
        verify=tls_context(),
    )


def http_request(label: str, call: HttpCall) -> HttpAnswer:
    """Send one request; any answer (also 3xx/4xx/5xx) comes back, network errors raise."""
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
    try:
        with (
            http_client() as client,
            client.stream(call.method, call.url, headers=headers, content=call.body) as response,
        ):
            return HttpAnswer(response.status_code, _read_limited(response))
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
        raise ProviderFailure(invalid) from None
    except (httpx.HTTPError, OSError) as exc:
        raise ProviderFailure(network_failure(label, host, exc)) from None


def _read_limited(response: httpx.Response) -> bytes:
    """At most MAX_RESPONSE_BYTES of the body: a provider's answer is small, a flood is not."""
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= MAX_RESPONSE_BYTES:
            break
    return body[:MAX_RESPONSE_BYTES]


# --- answers as sentences -------------------------------------------------------------------


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
    return clip(candidates[0]) if candidates else ""


def status_failure(label: str, answer: HttpAnswer) -> str:
    """A non-success HTTP answer as a sentence: bad credentials or an unexpected status."""
    detail = provider_detail(answer)
    suffix = f": {detail}" if detail else ""
    if answer.status in (401, 403):
        return f"{label} rejected the credentials (HTTP {answer.status}{suffix})."
    if answer.status == 429:
        return f"{label} is rate limiting these credentials (HTTP 429); try again later."
    return f"{label} answered with an unexpected status (HTTP {answer.status}{suffix})."


def expect_status(label: str, answer: HttpAnswer, statuses=(200,)) -> None:
    """Raise ProviderFailure worded by status_failure unless the answer has one of ``statuses``."""
    if answer.status not in statuses:
        raise ProviderFailure(status_failure(label, answer))


def answer_object(answer: HttpAnswer) -> dict:
    """The answer's JSON object, or ``{}`` when it is not one."""
    data = answer.json()
    return data if isinstance(data, dict) else {}
