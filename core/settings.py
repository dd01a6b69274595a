"""Every setting, declared once: its type, default and meaning; typed and checked at start-up.

``load_settings`` merges the layers, lowest to highest precedence: the defaults declared here,
``instance/config.py``, environment variables, then ``create_app``'s ``test_config``. Each
setting is read from the environment under its variable name (``CHANNELS_ENV`` and
``DATABASE_URL`` are ``app.config["ENV"]`` and ``["SQLALCHEMY_DATABASE_URI"]``; the instance
file and ``test_config`` accept either name). Pydantic types every value; a bad one raises
``SettingsError`` naming the variable, where it came from and what was expected, so the app
never starts with a value that would fail later inside a request.

The layers are merged here rather than by pydantic-settings' source chain: that chain has no
slot for the instance file between the defaults and the environment, and an error must say
which layer the bad value came from.

The README's Configuration table is ``settings_table()``'s output (a test keeps them equal).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple

import click
import limits
import limits.storage
from cryptography.fernet import Fernet
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.crypto import dev_credentials_key
from core.database import normalize_database_url

DEV_SECRET_KEY = "dev-only-insecure-secret-key"
# The htmx pin (DESIGN §6); tests/browser checks the cached build against HTMX_SRI.
HTMX_VERSION = "2.0.11"
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
HTMX_CDN = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
PRODUCTION_SECRET_KEY_MIN = 32
METRICS_TOKEN_MIN = 16
SHOWN_VALUE_MAX = 80
DNS_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?)+$")


class SettingsError(click.ClickException, RuntimeError):
    """A setting has a bad value: the app refuses to start, saying which and what was expected.

    A ``click.ClickException`` so that ``flask --app app ...`` prints the message alone (no
    traceback) and exits with status 1.
    """

    def __init__(self, problems: list[str]):
        """One problem per line, under a line saying how many there are."""
        self.problems = problems
        intro = "The app cannot start: a setting is invalid."
        if len(problems) > 1:
            intro = f"The app cannot start: {len(problems)} settings are invalid."
        super().__init__("\n".join([intro, *(f"  {p}" for p in problems)]))


class Nameserver(NamedTuple):
    """One DNS server to ask: an IP address and a UDP/TCP port."""

    host: str
    port: int


# --- parsers: each raises ValueError saying what is wrong ------------------------------------


def _nameservers(value: object) -> object:
    """``address[:port]`` entries, comma-separated (or a list), as ``Nameserver`` tuples."""
    if not isinstance(value, str | list | tuple):
        return value
    entries = value.split(",") if isinstance(value, str) else list(value)
    parsed = []
    for entry in entries:
        if isinstance(entry, Nameserver | tuple):
            entry = f"[{entry[0]}]:{entry[1]}" if ":" in str(entry[0]) else f"{entry[0]}:{entry[1]}"
        entry = str(entry).strip()
        if entry:
            parsed.append(_nameserver(entry))
    return tuple(parsed)


def _nameserver(entry: str) -> Nameserver:
    """One ``address[:port]`` entry (IPv6 with a port as ``[::1]:53``); port 53 by default."""
    host, port = entry, "53"
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{entry!r} is not address[:port]")
            port = rest[1:]
    elif entry.count(":") == 1:  # v4:port (a bare v6 address has several colons)
        host, port = entry.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # dnspython would accept a host name here and fail at every lookup.
        raise ValueError(f"{host!r} is not an IP address") from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{port!r} is not a port (1-65535)")
    return Nameserver(str(address), int(port))


def _base_urls(value: object) -> object:
    """PROVIDER_BASE_URLS as a dict, each URL an absolute http(s) URL."""
    # The format and the provider keys belong to the provider code: one parser for both.
    # Imported here, not at the top: reading settings should not load the models.
    from core.providers.endpoints import parse_base_urls

    urls = parse_base_urls(value)
    for key, url in urls.items():
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{key}: {url!r} is not an http(s) URL")
    return urls


def _credentials_key(value: object) -> object:
    """Comma-separated Fernet keys, normalised to ``key1,key2`` (the first one encrypts)."""
    if value is None or not isinstance(value, str):
        return value
    keys = [k.strip() for k in value.split(",") if k.strip()]
    if not keys:
        return None
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            # Never echo the key: it is a secret.
            raise ValueError(f"key {position} of {len(keys)} is not a Fernet key") from None
    return ",".join(keys)


def _database_url(value: object) -> object:
    """An SQLAlchemy URL, with ``postgres://`` spellings moved to the psycopg 3 driver."""
    if value is None or not isinstance(value, str):
        return value
    url = normalize_database_url(value.strip())
    try:
        make_url(url)
    except ArgumentError:
        raise ValueError("it is not a URL such as postgresql://user@host/name") from None
    return url


def _htmx_src(value: object) -> object:
    """An http(s) URL, or a path on this site (``/static/htmx.min.js``)."""
    if not isinstance(value, str):
        return value
    parts = urllib.parse.urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return value
    if value.startswith("/") and not value.startswith("//") and not parts.scheme:
        return value
    raise ValueError("it is neither an http(s) URL nor a path starting with /")


def _rate_limit(value: object) -> object:
    """A Flask-Limiter rate limit string (checked by the same parser Flask-Limiter uses)."""
    if isinstance(value, str):
        limits.parse_many(value)  # ValueError: "couldn't parse rate limit string ..."
    return value


def _storage_uri(value: object) -> object:
    """A storage URI whose scheme the ``limits`` package knows."""
    if isinstance(value, str):
        scheme = value.partition("://")[0]
        if "://" not in value or scheme not in limits.storage.SCHEMES:
            raise ValueError(f"{scheme!r} is not a storage scheme the limits package knows")
    return value


def _ca_file(value: object) -> object:
    """A readable PEM bundle (loaded once now, so that a bad file is found at start)."""
    if isinstance(value, str) and value.strip():
        try:
            ssl.create_default_context().load_verify_locations(cafile=value)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"it cannot be loaded ({exc.strerror or exc})") from None
        return value
    return None if value == "" else value


def _whole_number(value: object) -> object:
    """Digits only: ``True``, ``1.5`` and ``"1.0"`` are refused rather than rounded."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("it is not a whole number")
    if isinstance(value, str) and not value.isdigit():
        raise ValueError("it is not a whole number")
    return value


BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp", "sentinel", "memory")


def _broker_url(value: object) -> object:
    """A Celery broker URL with a scheme Celery knows (``redis://host:6379/1``)."""
    if isinstance(value, str):
        scheme = urllib.parse.urlsplit(value).scheme
        if scheme not in BROKER_SCHEMES:
            raise ValueError(f"the scheme must be one of {', '.join(BROKER_SCHEMES)}")
    return value


def _upper(value: object) -> object:
    """Log levels in any case (``debug`` is ``DEBUG``)."""
    return value.upper() if isinstance(value, str) else value


def _metrics_token(value: object) -> object:
    """A bearer token long enough not to be guessed (never echoed: it is a secret)."""
    if isinstance(value, str):
        if not value:
            return None
        if len(value) < METRICS_TOKEN_MIN or any(ch.isspace() for ch in value):
            raise ValueError(f"it must be at least {METRICS_TOKEN_MIN} characters, without spaces")
    return value


def _api_key_cache(value: object) -> object:
    """``off``, ``local`` or a Redis URL."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if value.lower() in ("off", "local"):
            return value.lower()
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("it is neither off, local nor a redis:// URL")
    return value


def _writable_directory(value: object) -> object:
    """An existing directory this process may write files in."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if not os.path.isdir(value):
            raise ValueError("it is not an existing directory")
        if not os.access(value, os.W_OK | os.X_OK):
            raise ValueError("it is not writable by this process")
    return value


def _dns_name(value: object) -> object:
    """A host name for the DNS records tenants publish (labels of letters, digits, - and _)."""
    if isinstance(value, str) and not DNS_NAME.fullmatch(value):
        raise ValueError("it is not a DNS name")
    return value


def _origin(value: object) -> object:
    """A web origin: scheme, host and optional port, nothing else (no path, no slash)."""
    if isinstance(value, str):
        parts = urllib.parse.urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
        ):
            raise ValueError("it is not an origin such as https://console.example.com")
    return value


# --- the declaration ----------------------------------------------------------------------------


def setting(
    default: Any,
    meaning: str,
    *,
    expected: str,
    env: str | None = None,
    shown_default: str | None = None,
    secret: bool = False,
) -> Any:
    """A declared setting: its default, what it means and the format expected of it.

    ``env`` names the environment variable when it differs from the ``app.config`` key;
    ``shown_default`` is how the README shows the default; a ``secret`` value is never echoed.
    """
    return Field(
        default,
        description=meaning,
        json_schema_extra={
            "expected": expected,
            "env": env,
            "shown_default": shown_default,
            "secret": secret,
        },
    )


Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # minutes or hours
WholeAtLeastOne = Annotated[int, BeforeValidator(_whole_number), Field(ge=1)]
RateLimit = Annotated[str, BeforeValidator(_rate_limit)]
DnsName = Annotated[str, BeforeValidator(_dns_name)]
LEVELS = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseModel):
    """The typed settings; field names are the ``app.config`` keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    ENV: Literal["development", "testing", "production"] = setting(
        "development",
        "`production` refuses to start without a real `SECRET_KEY` (32+ characters) and a "
        "`CREDENTIALS_KEY`, and marks the session cookie `Secure`",
        expected="`development`, `testing` or `production`",
        env="CHANNELS_ENV",
    )
    SQLALCHEMY_DATABASE_URI: Annotated[str | None, BeforeValidator(_database_url)] = setting(
        None,
        "SQLAlchemy URL; `postgresql://…` and `postgres://…` use the psycopg 3 driver",
        expected="a database URL",
        env="DATABASE_URL",
        shown_default="`sqlite:///instance/channels.db`",
    )
    SECRET_KEY: Annotated[str, Field(min_length=1)] = setting(
        DEV_SECRET_KEY,
        "signs sessions and CSRF tokens",
        expected="a long random string",
        shown_default="a development-only value",
        secret=True,
    )
    CREDENTIALS_KEY: Annotated[str | None, BeforeValidator(_credentials_key)] = setting(
        None,
        "Fernet key(s) encrypting integration secrets at rest; comma-separated for rotation, "
        'the first one encrypts. Make one with `python -c "from cryptography.fernet import '
        'Fernet; print(Fernet.generate_key().decode())"`',
        expected="Fernet keys (32 url-safe base64-encoded bytes), comma-separated",
        shown_default="derived from `SECRET_KEY` (development only)",
        secret=True,
    )
    HTMX_SRC: Annotated[str, BeforeValidator(_htmx_src)] = setting(
        HTMX_CDN,
        "where pages load htmx from (the SRI hash stays pinned; a same-origin path such as "
        "`/static/htmx.min.js` also works)",
        expected="an http(s) URL or a path starting with `/`",
    )
    DNS_NAMESERVERS: Annotated[tuple[Nameserver, ...], BeforeValidator(_nameservers)] = setting(
        (),
        "DNS servers that verify email domains",
        expected="`address[:port]` entries, comma-separated (IP addresses; IPv6 as `[::1]:53`)",
        shown_default="the system resolver",
    )
    DNS_TIMEOUT: Seconds = setting(
        3.0,
        "seconds a DNS lookup may take",
        expected="a number of seconds greater than 0",
    )
    SPF_INCLUDE: DnsName = setting(
        "spf.channels-mail.net",
        "the `include:` of the SPF record tenants publish",
        expected="a DNS name",
    )
    DKIM_SELECTOR: DnsName = setting(
        "channels",
        "the DKIM selector of the CNAME record tenants publish",
        expected="a DNS name",
    )
    DKIM_TARGET_SUFFIX: DnsName = setting(
        "dkim.channels-mail.net",
        "where tenants' DKIM CNAME records point (under `<selector>.<domain>.`)",
        expected="a DNS name",
    )
    RATELIMIT_STORAGE_URI: Annotated[str, BeforeValidator(_storage_uri)] = setting(
        "memory://",
        "Flask-Limiter storage; use `redis://host:6379/0` with several workers",
        expected="a storage URI such as `memory://` or `redis://host:6379/0`",
    )
    RATELIMIT_API: RateLimit = setting(
        "600 per minute",
        "per API key",
        expected="a rate limit such as `600 per minute` (several separated by `;`)",
    )
    RATELIMIT_API_AUTH_FAILURES: RateLimit = setting(
        "60 per minute",
        "failed API authentications (401s) per client IP; past it the address gets 429 on "
        "`/api`, whatever key it sends",
        expected="a rate limit such as `60 per minute`",
    )
    RATELIMIT_SIGNIN: RateLimit = setting(
        "10 per minute",
        "sign-in attempts per account and per IP",
        expected="a rate limit such as `10 per minute`",
    )
    RATELIMIT_SIGNIN_ACCOUNT: RateLimit = setting(
        "100 per hour",
        "sign-in attempts per account over a longer window, on top of `RATELIMIT_SIGNIN`; "
        "reaching it is audited (`user.sign_in_locked`)",
        expected="a rate limit such as `100 per hour`",
    )
    RATELIMIT_ENABLED: bool = setting(
        True,
        "`false` switches rate limiting off (the benchmarks do)",
        expected="a boolean (`true`/`false`, `1`/`0`, `on`/`off`, `yes`/`no`)",
        shown_default="`true`",
    )
    RATELIMIT_KEY_NAMESPACE: str = setting(
        "",
        "prefix of every rate-limit counter key (one per deployment sharing a Redis)",
        expected="any text",
        shown_default="empty",
    )
    PROVIDER_BASE_URLS: Annotated[dict[str, str], BeforeValidator(_base_urls)] = setting(
        {},
        "override provider endpoints (tests, proxies). Keys: `sendgrid`, `mailgun`, "
        "`mailgun_eu`, `ses` (`{region}` is filled in), `postmark`, `twilio`, `vonage`, "
        "`messagebird`",
        expected="a JSON object or `provider=url` pairs, comma-separated",
        shown_default="the providers' own",
    )
    PROVIDER_TIMEOUT: Seconds = setting(
        10.0,
        "seconds for every provider call (connection checks, test sends)",
        expected="a number of seconds greater than 0",
    )
    PROVIDER_CA_FILE: Annotated[str | None, BeforeValidator(_ca_file)] = setting(
        None,
        "CA certificates trusted in addition to the system's (private SMTP relays)",
        expected="the path of a readable PEM bundle",
        shown_default="none",
    )
    TRUSTED_PROXIES: Annotated[int, BeforeValidator(_whole_number), Field(ge=0)] = setting(
        0,
        "how many reverse proxies to trust for `X-Forwarded-For` and `-Proto` (client IP in "
        "audit events and sign-in limits)",
        expected="a whole number of proxies, 0 for none",
    )
    LOG_LEVEL: Annotated[LEVELS, BeforeValidator(_upper)] = setting(
        "INFO",
        "the least severe level the app logs",
        expected="`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`",
    )
    PAGE_SIZE: Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=200)] = setting(
        25,
        "rows per page in the console's tables",
        expected="a whole number from 1 to 200",
    )
    SESSION_IDLE_MINUTES: Annotated[float, Field(gt=0, allow_inf_nan=False)] = setting(
        30,
        "a console session unused this long ends (checked on the server at every request)",
        expected="a number of minutes greater than 0",
    )
    SESSION_MAX_HOURS: Annotated[float, Field(gt=0, allow_inf_nan=False)] = setting(
        12,
        "a console session ends this long after sign-in, however busy; Flask's signed cookie "
        "is accepted no longer either",
        expected="a number of hours greater than 0",
    )
    SUPPORT_ACCESS_MINUTES: Annotated[float, Field(gt=0, allow_inf_nan=False)] = setting(
        60,
        "how long a tenant opened by support staff stays open; then they open it again, with a "
        "reason",
        expected="a number of minutes greater than 0",
    )
    REAUTH_MINUTES: Annotated[float, Field(gt=0, allow_inf_nan=False)] = setting(
        10,
        "sensitive actions (API keys, admins, integration credentials, factors, the MFA "
        "policy) need a sign-in or confirmation this recent; otherwise the user confirms with "
        "a password or a factor first",
        expected="a number of minutes greater than 0",
    )
    RATELIMIT_MFA: RateLimit = setting(
        "5 per minute; 30 per hour",
        "wrong second-factor codes and passkey assertions per account (sign-in and "
        "confirmations); past it, every factor of the account is refused until the window "
        "moves on",
        expected="a rate limit such as `5 per minute; 30 per hour`",
    )
    WEBAUTHN_RP_ID: Annotated[str | None, BeforeValidator(_dns_name)] = setting(
        None,
        "the WebAuthn relying party id passkeys are bound to (the site's host name, or a "
        "parent domain of it); set it in production, where passkeys must survive a change of "
        "host name",
        expected="a DNS name",
        shown_default="the request's host name",
    )
    WEBAUTHN_ORIGIN: Annotated[str | None, BeforeValidator(_origin)] = setting(
        None,
        "the origin the browser shows for the console (`https://console.example.com`), "
        "checked in every passkey response",
        expected="an origin: `https://host[:port]`",
        shown_default="the request's scheme and host",
    )
    SESSION_COOKIE_SECURE: bool | None = setting(
        None,
        "mark the session cookie `Secure`; unset, it is everywhere but `development` and `testing`",
        expected="a boolean",
        shown_default="by `CHANNELS_ENV`",
    )
    BROKER_URL: Annotated[str | None, BeforeValidator(_broker_url)] = setting(
        None,
        "the task engine's broker (Celery): `flask --app app worker` processes and the "
        "`flask --app app scheduler` take work from it. Unset, the development server runs an "
        "embedded worker and scheduler in its own process (no broker needed; not for production)",
        expected="a broker URL: `redis://host:6379/1`, `rediss://…`, `amqp://…`",
        shown_default="none (embedded, development only)",
        secret=True,
    )
    TASK_QUEUE: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")] = setting(
        "channels",
        "the broker queue the app's tasks go to and its workers take them from (one per "
        "deployment sharing a broker)",
        expected="1–100 letters, digits, `_`, `.`, `:` or `-`",
    )
    WEBHOOK_TIMEOUT: Seconds = setting(
        10.0,
        "seconds a webhook receiver has to answer (connect and read); slower is a failed attempt",
        expected="a number of seconds greater than 0",
    )
    OUTBOX_POLL_SECONDS: Seconds = setting(
        5.0,
        "how often the scheduler's dispatcher hands due deliveries (new, or retries whose time "
        "came) to the workers",
        expected="a number of seconds greater than 0",
    )
    OUTBOX_SWEEP_SECONDS: Seconds = setting(
        300.0,
        "a delivery handed to the workers this long ago and still unfinished (broker outage, "
        "killed worker) is handed over again by the sweeper",
        expected="a number of seconds greater than 0",
    )
    DOMAIN_PENDING_CHECK_MINUTES: Positive = setting(
        10.0,
        "how often the scheduler re-checks the DNS records of a domain not verified yet, while "
        "its verification window is open",
        expected="a number of minutes greater than 0",
    )
    DOMAIN_VERIFY_WINDOW_HOURS: Positive = setting(
        72.0,
        "how long a domain is re-checked before it is `failed` without success (adding it, "
        '"Verify" and a lost verification each open a new window)',
        expected="a number of hours greater than 0",
    )
    DOMAIN_RECHECK_HOURS: Positive = setting(
        24.0,
        "how often a verified domain's DNS records are checked again",
        expected="a number of hours greater than 0",
    )
    DOMAIN_GRACE_CHECKS: WholeAtLeastOne = setting(
        3,
        "consecutive scheduled checks that find a verified domain's ownership record missing or "
        "changed before the domain is `failed` (it is `at_risk`, still sending, from the first; "
        "DNS errors never count)",
        expected="a whole number, at least 1",
    )
    INTEGRATION_CHECK_HOURS: Positive = setting(
        24.0,
        'how often active integrations are checked with their provider ("Test connection")',
        expected="a number of hours greater than 0",
    )
    INTEGRATION_FAILURE_CHECKS: WholeAtLeastOne = setting(
        3,
        "consecutive failed checks after which an integration is `unhealthy` (never disabled "
        "by it; the next successful check recovers it)",
        expected="a whole number, at least 1",
    )
    RECHECK_TICK_SECONDS: Seconds = setting(
        60.0,
        "how often the scheduler looks for domains and integrations due for a check and hands "
        "them to the workers in batches",
        expected="a number of seconds greater than 0",
    )
    RECHECK_BATCH_SIZE: Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=5000)] = (
        setting(
            200,
            "how many domains (or integrations) one task checks; a tick hands over as many "
            "batches as are due, to any number of workers",
            expected="a whole number from 1 to 5000",
        )
    )
    RECHECK_LEASE_SECONDS: Seconds = setting(
        600.0,
        "how long a worker holds the objects of its batch: until then no other worker checks "
        "them; a killed worker's objects are due again after it",
        expected="a number of seconds greater than 0",
    )
    DNS_CONCURRENCY: Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=512)] = setting(
        32,
        "DNS lookups one worker process runs at once when re-checking domains",
        expected="a whole number from 1 to 512",
    )
    INTEGRATION_CHECKS_PER_MINUTE: WholeAtLeastOne = setting(
        60,
        "scheduled integration checks one worker process sends to one provider per minute",
        expected="a whole number, at least 1",
    )
    API_KEY_CACHE: Annotated[str | None, BeforeValidator(_api_key_cache)] = setting(
        None,
        "where workers share the API-key revocation counter that lets them keep verified keys "
        "in memory (no database lookup per request; a revoked key is refused by every worker "
        "at once): `local` for the workers of one machine, a Redis URL for several machines, "
        "`off` to look every key up in the database. On Redis (6 or later) each worker keeps "
        "one connection with `CLIENT TRACKING` on for the counter and learns of a bump from "
        "Redis's push, so a request sends Redis nothing. Unset on PostgreSQL, it is the Redis "
        "of `RATELIMIT_STORAGE_URI`, else of `BROKER_URL`, when either is a `redis://` URL (so "
        "every machine must get the same values, as in Deploying), else `off`. A Redis that "
        "does not answer, or a worker's tracking connection that ends, sends keys to the "
        "database, and a revocation then fails with 503 (see `core/key_cache.py`)",
        expected="`off`, `local` or a `redis://` URL",
        shown_default="`local` on SQLite; on PostgreSQL the Redis of `RATELIMIT_STORAGE_URI` "
        "or `BROKER_URL`, else `off`",
    )
    METRICS_TOKEN: Annotated[str | None, BeforeValidator(_metrics_token)] = setting(
        None,
        "bearer token that `GET /metrics` (Prometheus) requires; unset, `/metrics` answers 404 "
        "and requests are not measured at all",
        expected=f"a random string of {METRICS_TOKEN_MIN}+ characters, no spaces",
        shown_default="none (metrics off)",
        secret=True,
    )
    PROMETHEUS_MULTIPROC_DIR: Annotated[str | None, BeforeValidator(_writable_directory)] = setting(
        None,
        "prometheus-client's multi-process mode: each gunicorn worker writes its metrics "
        "there and `/metrics` adds them up. Set it in gunicorn's environment (the library "
        "reads it there), to a directory emptied at every start (`gunicorn -c "
        "python:core.gunicorn_hooks` does it); see Deploying",
        expected="the path of a writable directory",
        shown_default="none (one process)",
    )
    WEBHOOK_ALLOW_PRIVATE_URLS: bool | None = setting(
        None,
        "let webhook URLs use plain `http` and resolve to loopback, private, link-local and "
        "other non-public addresses (the SSRF guard, `core/net_guard.py`, refuses them "
        "otherwise); unset, it is `true` in `development` and `testing` and `false` elsewhere",
        expected="a boolean",
        shown_default="by `CHANNELS_ENV`",
    )


def _extra(name: str) -> dict:
    """What ``setting()`` recorded about a field beyond its default and meaning."""
    return Settings.model_fields[name].json_schema_extra


def env_name(name: str) -> str:
    """The environment variable of a setting (its config key unless declared otherwise)."""
    return _extra(name)["env"] or name


# Keys accepted in instance/config.py and test_config: config keys and environment names.
FIELD_OF = {key: name for name in Settings.model_fields for key in {name, env_name(name)}}


def _declared(layer: Mapping[str, object]) -> dict[str, tuple[str, object]]:
    """The declared settings of one layer: field name -> (the key it was given as, value)."""
    return {FIELD_OF[key]: (key, value) for key, value in layer.items() if key in FIELD_OF}


def _environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Settings set in the environment; an empty variable counts as unset (as it always has)."""
    found = {}
    for name in Settings.model_fields:
        value = environ.get(env_name(name), "")
        if value.strip():
            found[env_name(name)] = value
    return found


def load_settings(
    instance: Mapping[str, object],
    test_config: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults < instance config < environment < test_config, and type every value.

    Raises ``SettingsError`` naming every bad variable, where it was set and what it expects.
    """
    layers = (
        ("instance/config.py", instance),
        ("environment", _environment(os.environ if environ is None else environ)),
        ("test_config", test_config or {}),
    )
    values: dict[str, object] = {}
    origin: dict[str, tuple[str, str]] = {}
    for where, layer in layers:
        for name, (key, value) in _declared(layer).items():
            # An environment line often carries a stray space or newline; secrets stay exact.
            if isinstance(value, str) and not _extra(name)["secret"]:
                value = value.strip()
            values[name], origin[name] = value, (where, key)
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_problems(exc, values, origin)) from None
    production_problems = _production_problems(settings, origin)
    if production_problems:
        raise SettingsError(production_problems)
    if settings.CREDENTIALS_KEY is None:
        derived = dev_credentials_key(settings.SECRET_KEY)
        settings = settings.model_copy(update={"CREDENTIALS_KEY": derived})
    return settings


def _describe(name: str, origin: dict[str, tuple[str, str]], value: object = None) -> str:
    """``NAME (from the environment) = 'value'``; secrets are named, never shown."""
    if name not in origin:
        return f"{env_name(name)} (not set)"
    where, key = origin[name]
    text = f"{key} (from {'the environment' if where == 'environment' else where})"
    if value is None or _extra(name)["secret"]:
        return text
    shown = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(shown) > SHOWN_VALUE_MAX:
        shown = shown[: SHOWN_VALUE_MAX - 1] + "…"
    return f"{text} = {shown!r}"


def _problems(exc: ValidationError, values: dict, origin: dict) -> list[str]:
    """One line per bad setting: the variable, where it came from, what it expects, and why."""
    problems = []
    seen = set()
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        if name in seen:
            continue
        seen.add(name)
        if name not in Settings.model_fields:
            problems.append(error["msg"])
            continue
        line = f"{_describe(name, origin, values.get(name))}: expected {_plain(name)}"
        if error["type"] == "value_error":  # our own parsers say what exactly is wrong
            reason = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
            line += f"; {reason}"
        problems.append(line + ".")
    return problems


def _plain(name: str) -> str:
    """The expected format without the README's Markdown backticks."""
    return _extra(name)["expected"].replace("`", "")


def _production_problems(settings: Settings, origin: dict) -> list[str]:
    """Production refuses to start on development secrets (DESIGN §6)."""
    if settings.ENV != "production":
        return []
    problems = []
    secret_key = settings.SECRET_KEY
    if secret_key == DEV_SECRET_KEY or len(secret_key) < PRODUCTION_SECRET_KEY_MIN:
        problems.append(
            f"{_describe('SECRET_KEY', origin)}: expected a long random value of at least "
            f"{PRODUCTION_SECRET_KEY_MIN} characters in production (not the development one)."
        )
    if settings.CREDENTIALS_KEY is None:
        problems.append(
            f"{_describe('CREDENTIALS_KEY', origin)}: expected a Fernet key in production "
            "(the key derived from SECRET_KEY is for development only)."
        )
    return problems


def settings_table() -> str:
    """The README's Configuration table, made from the declaration above."""
    rows = [
        "| variable | format | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        default = extra["shown_default"] or f"`{_shown(field.default)}`"
        expected = extra["expected"].replace("|", "\\|")
        meaning = field.description.replace("|", "\\|")
        rows.append(f"| `{env_name(name)}` | {expected} | {default} | {meaning} |")
    return "\n".join(rows)


def _shown(default: object) -> str:
    """A default as the README shows it (``10``, not ``10.0``)."""
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)
