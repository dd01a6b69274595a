"""Settings: typed once at start-up; a bad value stops ``create_app`` naming the variable."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from app import create_app
from core.settings import (
    DEV_SECRET_KEY,
    Nameserver,
    Settings,
    SettingsError,
    env_name,
    load_settings,
    settings_table,
)
from tests.conftest import SECRET_KEY

PROJECT = Path(__file__).resolve().parent.parent
# Fixed (not generated) keys: parameter ids must be the same in every xdist worker.
KEY_1 = base64.urlsafe_b64encode(b"1" * 32).decode()
KEY_2 = base64.urlsafe_b64encode(b"2" * 32).decode()

# (variable, bad value, a phrase of what the message says it expected)
BAD_VALUES = [
    ("CHANNELS_ENV", "prod", "development, testing or production"),
    ("DATABASE_URL", "not a url", "a database URL"),
    ("CREDENTIALS_KEY", "not-a-fernet-key", "Fernet keys"),
    ("CREDENTIALS_KEY", f"{KEY_1},short", "Fernet keys"),
    ("HTMX_SRC", "javascript:alert(1)", "an http(s) URL or a path"),
    ("HTMX_SRC", "//cdn.example/htmx.js", "an http(s) URL or a path"),
    ("DNS_NAMESERVERS", "not a host:port", "address[:port] entries"),
    ("DNS_NAMESERVERS", "ns.example.com", "address[:port] entries"),
    ("DNS_NAMESERVERS", "127.0.0.1:99999", "address[:port] entries"),
    ("DNS_NAMESERVERS", "[::1]x", "address[:port] entries"),
    ("DNS_TIMEOUT", "0", "a number of seconds greater than 0"),
    ("SPF_INCLUDE", "not a name", "a DNS name"),
    ("DKIM_SELECTOR", "a/b", "a DNS name"),
    ("DKIM_TARGET_SUFFIX", "x..y", "a DNS name"),
    ("RATELIMIT_STORAGE_URI", "nonsense://x", "a storage URI"),
    ("RATELIMIT_STORAGE_URI", "localhost:6379", "a storage URI"),
    ("RATELIMIT_API", "nonsense", "a rate limit"),
    ("RATELIMIT_API_AUTH_FAILURES", "60 per fortnight", "a rate limit"),
    ("RATELIMIT_SIGNIN", "ten per minute", "a rate limit"),
    ("RATELIMIT_ENABLED", "nonsense", "a boolean"),
    ("PROVIDER_BASE_URLS", "sendgrid", "a JSON object or provider=url pairs"),
    ("PROVIDER_BASE_URLS", "smtp=http://x", "a JSON object or provider=url pairs"),
    ("PROVIDER_BASE_URLS", '{"sendgrid": "ftp://x"}', "a JSON object or provider=url pairs"),
    ("PROVIDER_BASE_URLS", "{not json", "a JSON object or provider=url pairs"),
    ("PROVIDER_TIMEOUT", "abc", "a number of seconds greater than 0"),
    ("PROVIDER_TIMEOUT", "-1", "a number of seconds greater than 0"),
    ("PROVIDER_TIMEOUT", "nan", "a number of seconds greater than 0"),
    ("PROVIDER_CA_FILE", "/no/such/bundle.pem", "the path of a readable PEM bundle"),
    ("TRUSTED_PROXIES", "-1", "a whole number of proxies"),
    ("TRUSTED_PROXIES", "yes", "a whole number of proxies"),
    ("TRUSTED_PROXIES", "1.5", "a whole number of proxies"),
    ("LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ("PAGE_SIZE", "0", "a whole number from 1 to 200"),
    ("PAGE_SIZE", "many", "a whole number from 1 to 200"),
    ("SESSION_COOKIE_SECURE", "sometimes", "a boolean"),
    ("WEBHOOK_ALLOW_PRIVATE_URLS", "maybe", "a boolean"),
    ("METRICS_TOKEN", "too-short", "a random string of 16+ characters"),
    ("PROMETHEUS_MULTIPROC_DIR", "/no/such/directory", "the path of a writable directory"),
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No setting leaks in from the shell that runs the tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(env_name(name), raising=False)


@pytest.fixture
def instance_dir(tmp_path, monkeypatch):
    """The app's instance folder is a temporary one (its ``config.py`` is the test's)."""
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    return tmp_path


def minimal_config(**extra) -> dict:
    """Just enough test_config to build an app; everything else comes from the layers below."""
    return {"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", **extra}


@pytest.mark.parametrize(("variable", "value", "expected"), BAD_VALUES)
def test_a_bad_environment_value_refuses_to_start(monkeypatch, variable, value, expected):
    """Each bad value stops create_app, naming the variable, its source and what it expects."""
    monkeypatch.setenv(variable, value)
    config = minimal_config()
    if variable == "DATABASE_URL":
        del config["SQLALCHEMY_DATABASE_URI"]
    with pytest.raises(SettingsError) as refused:
        create_app(config)
    message = refused.value.message
    assert f"{variable} (from the environment)" in message
    assert f"expected {expected}" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(("variable", "value", "expected"), BAD_VALUES)
def test_a_bad_test_config_value_refuses_to_start(variable, value, expected):
    """The same values given in test_config (by their environment names) are refused too."""
    config = minimal_config(**{variable: value})
    if variable == "DATABASE_URL":
        del config["SQLALCHEMY_DATABASE_URI"]
    with pytest.raises(SettingsError, match=variable) as refused:
        create_app(config)
    assert f"expected {expected}" in refused.value.message


def test_a_bad_instance_config_value_refuses_to_start(instance_dir):
    """instance/config.py is checked like the environment, and named as the source."""
    (instance_dir / "config.py").write_text("PROVIDER_TIMEOUT = 'soon'\n")
    with pytest.raises(SettingsError) as refused:
        create_app(minimal_config())
    assert "PROVIDER_TIMEOUT (from instance/config.py) = 'soon'" in refused.value.message


def test_every_bad_setting_is_listed_at_once(monkeypatch):
    """Several bad values: one error listing each, so one restart fixes them all."""
    monkeypatch.setenv("PROVIDER_TIMEOUT", "abc")
    monkeypatch.setenv("TRUSTED_PROXIES", "-1")
    monkeypatch.setenv("RATELIMIT_API", "nonsense")
    with pytest.raises(SettingsError) as refused:
        create_app(minimal_config())
    message = refused.value.message
    assert message.startswith("The app cannot start: 3 settings are invalid.")
    for variable in ("PROVIDER_TIMEOUT", "TRUSTED_PROXIES", "RATELIMIT_API"):
        assert variable in message


def test_secret_values_are_never_echoed(monkeypatch):
    """A malformed CREDENTIALS_KEY is named, but its value never appears in the message."""
    monkeypatch.setenv("CREDENTIALS_KEY", f"{KEY_1},almost-a-secret-value")
    with pytest.raises(SettingsError) as refused:
        create_app(minimal_config())
    message = refused.value.message
    assert "CREDENTIALS_KEY" in message and "key 2 of 2 is not a Fernet key" in message
    assert "almost-a-secret-value" not in message and KEY_1 not in message


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({}, ["SECRET_KEY", "CREDENTIALS_KEY"]),
        ({"SECRET_KEY": DEV_SECRET_KEY, "CREDENTIALS_KEY": KEY_1}, ["SECRET_KEY"]),
        ({"SECRET_KEY": "x" * 31, "CREDENTIALS_KEY": KEY_1}, ["SECRET_KEY"]),
        ({"SECRET_KEY": "x" * 32}, ["CREDENTIALS_KEY"]),
    ],
)
def test_production_refuses_to_start_without_real_secrets(monkeypatch, environ, missing):
    """CHANNELS_ENV=production needs a 32+ character SECRET_KEY and a CREDENTIALS_KEY."""
    monkeypatch.setenv("CHANNELS_ENV", "production")
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        create_app(minimal_config())
    message = refused.value.message
    for name in missing:
        assert f"{name} " in message and "in production" in message
    assert DEV_SECRET_KEY not in message


def test_production_starts_with_real_secrets(monkeypatch):
    """With both secrets set, production starts, its cookie Secure."""
    monkeypatch.setenv("CHANNELS_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("CREDENTIALS_KEY", KEY_1)
    app = create_app(minimal_config())
    assert app.config["ENV"] == "production"
    assert app.config["CREDENTIALS_KEY"] == KEY_1
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] is False


def test_typed_values_reach_app_config(monkeypatch, tmp_path):
    """Environment strings arrive in app.config as the types the code uses."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text(ssl_bundle())
    for name, value in {
        "PROVIDER_TIMEOUT": "2.5",
        "DNS_TIMEOUT": " 1 ",
        "DNS_NAMESERVERS": "127.0.0.1:5353, [::1], 192.0.2.1",
        "TRUSTED_PROXIES": "2",
        "RATELIMIT_ENABLED": "off",
        "PROVIDER_BASE_URLS": "sendgrid=http://127.0.0.1:8025/, twilio=http://127.0.0.1:8026",
        "PROVIDER_CA_FILE": str(bundle),
        "LOG_LEVEL": "debug",
        "PAGE_SIZE": "10",
        "CREDENTIALS_KEY": f" {KEY_1} , {KEY_2} ",
        "SESSION_COOKIE_SECURE": "true",
        "DATABASE_URL": "postgres://u@db.internal/channels",
    }.items():
        monkeypatch.setenv(name, value)
    config = minimal_config()
    del config["SQLALCHEMY_DATABASE_URI"]
    app = create_app(config)
    assert app.config["PROVIDER_TIMEOUT"] == 2.5
    assert app.config["DNS_TIMEOUT"] == 1.0
    assert app.config["DNS_NAMESERVERS"] == (
        Nameserver("127.0.0.1", 5353),
        Nameserver("::1", 53),
        Nameserver("192.0.2.1", 53),
    )
    assert app.config["TRUSTED_PROXIES"] == 2
    assert app.config["RATELIMIT_ENABLED"] is False
    assert app.config["PROVIDER_BASE_URLS"] == {
        "sendgrid": "http://127.0.0.1:8025",
        "twilio": "http://127.0.0.1:8026",
    }
    assert app.config["PROVIDER_CA_FILE"] == str(bundle)
    assert app.config["LOG_LEVEL"] == "DEBUG"
    assert app.config["PAGE_SIZE"] == 10
    assert app.config["CREDENTIALS_KEY"] == f"{KEY_1},{KEY_2}"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.internal/channels"
    assert "CHANNELS_ENV" not in app.config and "DATABASE_URL" not in app.config


def test_defaults_are_safe_for_development(instance_dir):
    """Nothing set: development, the pinned htmx, a derived credentials key, a local SQLite."""
    app = create_app({"TESTING": True})
    assert app.config["ENV"] == "development"
    assert app.config["SECRET_KEY"] == DEV_SECRET_KEY
    assert app.config["HTMX_SRC"].endswith("/htmx.org@2.0.11/dist/htmx.min.js")
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance_dir / 'channels.db'}"
    assert app.config["DNS_NAMESERVERS"] == ()
    assert app.config["PROVIDER_BASE_URLS"] == {}
    assert app.config["PROVIDER_TIMEOUT"] == 10.0
    assert app.config["TRUSTED_PROXIES"] == 0
    assert app.config["RATELIMIT_ENABLED"] is True
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] is True
    Fernet(app.config["CREDENTIALS_KEY"].encode())  # a usable key, derived from SECRET_KEY


def test_precedence_defaults_instance_environment_test_config(instance_dir, monkeypatch):
    """Each layer overrides the one below: defaults < instance config < environment < test."""
    (instance_dir / "config.py").write_text(
        "PROVIDER_TIMEOUT = 4\nDNS_TIMEOUT = 5\nPAGE_SIZE = 6\nHTMX_SRC = '/static/instance.js'\n"
        "CUSTOM_FLASK_KEY = 'kept'\n"
    )
    monkeypatch.setenv("DNS_TIMEOUT", "7")
    monkeypatch.setenv("PAGE_SIZE", "8")
    monkeypatch.setenv("HTMX_SRC", "/static/environment.js")
    app = create_app(minimal_config(HTMX_SRC="/static/test.js"))
    assert app.config["RATELIMIT_API"] == "600 per minute"  # the default
    assert app.config["PROVIDER_TIMEOUT"] == 4.0  # instance config over the default
    assert app.config["DNS_TIMEOUT"] == 7.0 and app.config["PAGE_SIZE"] == 8  # environment
    assert app.config["HTMX_SRC"] == "/static/test.js"  # test_config over everything
    assert app.config["CUSTOM_FLASK_KEY"] == "kept"  # undeclared Flask keys pass through


def test_instance_config_and_test_config_take_either_name(instance_dir):
    """ENV / CHANNELS_ENV and SQLALCHEMY_DATABASE_URI / DATABASE_URL are the same setting."""
    (instance_dir / "config.py").write_text("CHANNELS_ENV = 'testing'\n")
    app = create_app({"TESTING": True, "DATABASE_URL": "postgres://u@h/n"})
    assert app.config["ENV"] == "testing"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/n"


def test_an_empty_environment_variable_counts_as_unset(instance_dir, monkeypatch):
    """``PROVIDER_TIMEOUT=`` (empty) leaves the lower layers' value, as it always has."""
    (instance_dir / "config.py").write_text("PROVIDER_TIMEOUT = 4\n")
    monkeypatch.setenv("PROVIDER_TIMEOUT", "")
    assert create_app(minimal_config()).config["PROVIDER_TIMEOUT"] == 4.0


def test_load_settings_alone_types_the_layers():
    """load_settings merges mappings without an app: instance < environ < test_config."""
    settings = load_settings(
        {"TRUSTED_PROXIES": 1, "PAGE_SIZE": 5},
        {"PAGE_SIZE": "9"},
        environ={"TRUSTED_PROXIES": "3", "PAGE_SIZE": "7", "RATELIMIT_ENABLED": "no"},
    )
    assert (settings.TRUSTED_PROXIES, settings.PAGE_SIZE) == (3, 9)
    assert settings.RATELIMIT_ENABLED is False


def test_the_cli_prints_the_problem_without_a_traceback(tmp_path):
    """``flask --app app ...`` with a bad value: exit status 1 and one clear message."""
    env = {
        **os.environ,  # the settings themselves were cleared by clean_environment
        "PROVIDER_TIMEOUT": "abc",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "routes"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        "Error: The app cannot start: a setting is invalid.\n"
        "  PROVIDER_TIMEOUT (from the environment) = 'abc': "
        "expected a number of seconds greater than 0."
    ) in result.stderr


def test_the_readme_lists_every_setting_as_declared():
    """README's Configuration table is exactly settings_table(): one declaration, kept true."""
    readme = (PROJECT / "README.md").read_text()
    assert settings_table() in readme, (
        "README.md's Configuration table differs from core.settings; paste the output of "
        "python -c 'from core.settings import settings_table; print(settings_table())'"
    )


def ssl_bundle() -> str:
    """A PEM bundle that ssl can load: the system's own CA file, when it has one."""
    import ssl

    paths = ssl.get_default_verify_paths()
    if paths.cafile and Path(paths.cafile).exists():
        return Path(paths.cafile).read_text()
    pytest.skip("no system CA bundle to copy")
