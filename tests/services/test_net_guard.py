"""The SSRF guard (core/net_guard.py): every refused address class, IPv4 and IPv6, names that
resolve to them, the URL checks, the setting's defaults, and requests pinned to the checked
address with TLS still verifying the host name (against a real local TLS server)."""

from __future__ import annotations

import base64
import http.server
import ipaddress
import socket
import ssl

import httpx
import pytest

from app import create_app
from core.net_guard import (
    HostNotResolved,
    UnsafeURL,
    check_url,
    check_webhook_url,
    guarded_client,
    send_pinned,
)
from tests.conftest import SECRET_KEY
from tests.services.fake_providers import LocalHTTPServer, closed_port, make_tls_files

# (address, category it is refused as): one or more per class, IPv4 then IPv6.
REFUSED = [
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.0.0.5", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.10", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.200", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.1", "benchmarking"),
    ("192.88.99.1", "reserved"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456:789a::1", "unique-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("2001:2::1", "benchmarking"),
    ("100::1", "reserved"),
    ("5f00::1", "reserved"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation"),  # Teredo, client 192.0.2.45
    ("2001:0:5ef5:79fb:0:59d:a0e5:ba1", "reserved"),  # Teredo with public IPv4s
    ("2002:808:808::1", "reserved"),  # 6to4 around a public IPv4 (deprecated)
    ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
    ("2002:c0a8:101::1", "private"),  # 6to4 around 192.168.1.1
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:10.1.2.3", "private"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:100.64.1.1", "shared"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
    ("64:ff9b::10.0.0.1", "private"),  # NAT64 well-known prefix around a private IPv4
    ("64:ff9b::127.0.0.1", "loopback"),
    ("64:ff9b::169.254.169.254", "link-local"),
    ("64:ff9b:1::1", "private"),  # local-use NAT64
    ("4000::1", "reserved"),  # outside global unicast 2000::/3
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",  # just below the shared range
    "100.128.0.1",  # just above it
    "172.32.0.1",  # just above 172.16/12
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::8.8.8.8",  # NAT64 of a public IPv4
]
PHRASE = {
    "unspecified": "an unspecified address",
    "private": "a private address",
    "shared": "a shared (carrier-grade NAT) address",
    "loopback": "a loopback address",
    "link-local": "a link-local address",
    "reserved": "a reserved address",
    "documentation": "a documentation address",
    "benchmarking": "a benchmarking address",
    "multicast": "a multicast address",
    "unique-local": "a unique local address",
    "site-local": "a site-local address",
}


def url_of(address: str, port: int | None = None) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}{f':{port}' if port else ''}/hooks"


@pytest.fixture
def dns(monkeypatch):
    """A resolver the test fills in: {name: [addresses]} served through getaddrinfo."""
    answers: dict[str, list[str]] = {}
    calls: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        try:  # addresses (httpx connecting to a pinned one) go to the real resolver
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return real(host, port, family, type, proto, flags)
        calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        result = []
        for address in answers[host]:
            if ":" in address:
                result.append((socket.AF_INET6, type, proto, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, type, proto, "", (address, port)))
        return result

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, calls


# --- address classes -------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "category"), REFUSED)
def test_every_non_public_address_is_refused_and_named(address, category):
    """An IP literal of each refused class: UnsafeURL naming the class and the address."""
    with pytest.raises(UnsafeURL) as caught:
        check_url(url_of(address), allow_private=False)
    assert caught.value.category == category
    assert caught.value.address == ipaddress.ip_address(address)
    reason = caught.value.reason
    assert reason.startswith(
        f"The URL points to {PHRASE[category]} ({ipaddress.ip_address(address)}"
    )
    assert reason.endswith("); only public addresses are allowed.")


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("64:ff9b::10.0.0.1", "10.0.0.1"),
        ("2002:c0a8:101::1", "192.168.1.1"),
    ],
)
def test_ipv4_carried_in_ipv6_is_named(address, carried):
    """The sentence names the IPv4 address an IPv6 address carries."""
    with pytest.raises(UnsafeURL, match=f"carrying IPv4 {carried}"):
        check_url(url_of(address), allow_private=False)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    """Public IPv4 and IPv6 literals (mapped and NAT64 of public IPv4 too) pass, unresolved."""
    target = check_url(url_of(address, 8443), allow_private=False)
    assert target.addresses == (ipaddress.ip_address(address),)
    assert target.port == 8443 and target.scheme == "https" and target.ip_literal


@pytest.mark.parametrize(("address", "category"), REFUSED)
def test_a_name_resolving_to_each_class_is_refused(dns, address, category):
    """A DNS name resolving to a refused address is refused with the name and the address."""
    answers, _ = dns
    answers["hooks.example.com"] = [address]
    with pytest.raises(UnsafeURL) as caught:
        check_url("https://hooks.example.com/in", allow_private=False)
    assert caught.value.category == category
    assert caught.value.reason.startswith(
        f"The host hooks.example.com resolves to {PHRASE[category]} "
        f"({ipaddress.ip_address(address)}"
    )


@pytest.mark.parametrize(
    "addresses",
    [
        ["93.184.215.14", "10.0.0.5"],
        ["10.0.0.5", "93.184.215.14"],
        ["93.184.215.14", "2606:4700::1", "fd00::5"],
    ],
)
def test_one_private_answer_among_public_ones_refuses(dns, addresses):
    """Every resolved address must be public: one private answer anywhere refuses the URL."""
    answers, _ = dns
    answers["mixed.example.com"] = addresses
    with pytest.raises(UnsafeURL) as caught:
        check_url("https://mixed.example.com/", allow_private=False)
    assert caught.value.category in ("private", "unique-local")


def test_a_public_name_returns_every_checked_address(dns):
    """The target carries each address once, in the resolver's order, with host and port."""
    answers, calls = dns
    answers["hooks.example.com"] = ["93.184.215.14", "2606:4700::6810:84e5", "93.184.215.14"]
    target = check_url("https://Hooks.Example.com./in?x=1", allow_private=False)
    assert calls == ["hooks.example.com"]
    assert target.host == "hooks.example.com" and target.port == 443
    assert [str(a) for a in target.addresses] == ["93.184.215.14", "2606:4700::6810:84e5"]
    assert target.host_header == "hooks.example.com" and not target.ip_literal
    assert str(target.url_for(target.addresses[1])) == "https://[2606:4700::6810:84e5]/in?x=1"


def test_idn_host_is_resolved_in_idna_form(dns):
    """An internationalised name is looked up as the IDNA name httpx would send."""
    answers, calls = dns
    answers["xn--bcher-kva.example"] = ["93.184.215.14"]
    target = check_url("https://bücher.example/", allow_private=False)
    assert calls == ["xn--bcher-kva.example"] and target.host == "xn--bcher-kva.example"


def test_localhost_through_the_real_resolver_is_loopback():
    """No patch: the system resolver's answer for localhost is refused as loopback."""
    with pytest.raises(UnsafeURL) as caught:
        check_url("https://localhost:8443/hook", allow_private=False)
    assert caught.value.category == "loopback"
    assert "The host localhost resolves to a loopback address" in caught.value.reason


@pytest.mark.parametrize("host", ["127.1", "0x7f000001", "2130706433", "017700000001"])
def test_odd_spellings_of_loopback_are_caught_by_resolution(host):
    """Short, hex, decimal and octal IPv4 spellings resolve (inet_aton) to 127.0.0.1: refused."""
    with pytest.raises(UnsafeURL) as caught:
        check_url(f"https://{host}/", allow_private=False)
    assert caught.value.category == "loopback"


def test_a_name_that_does_not_resolve(dns):
    """No address: HostNotResolved (an UnsafeURL), naming the host."""
    with pytest.raises(HostNotResolved) as caught:
        check_url("https://nowhere.example.com/", allow_private=False)
    assert caught.value.category == "unresolved"
    assert caught.value.reason.startswith("The host nowhere.example.com could not be resolved")
    assert isinstance(caught.value, UnsafeURL)


# --- the URL itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "category", "phrase"),
    [
        ("http://hooks.example.com/", "scheme", "must use https"),
        ("ftp://hooks.example.com/", "scheme", "must start with https://"),
        ("file:///etc/passwd", "scheme", "must start with https://"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme", "must start with https://"),
        ("https://user:pw@hooks.example.com/", "userinfo", "user name or password"),
        ("https://user@hooks.example.com/", "userinfo", "user name or password"),
        ("https://hooks.example.com:0/", "port", "from 1 to 65535"),
        ("https://hooks.example.com:70000/", "port", "from 1 to 65535"),
        ("https://hooks.example.com:abc/", "invalid", "not a valid URL"),
        ("https:///path", "invalid", "no host"),
        ("https://hooks example.com/", "invalid", "spaces or control characters"),
        ("https://hooks.example.com/\r\nX: y", "invalid", "spaces or control characters"),
        ("", "invalid", "empty"),
        ("https://hooks.example.com/" + "a" * 2100, "invalid", "longer than 2048"),
        ("hooks.example.com/x", "scheme", "must start with https://"),
    ],
)
def test_bad_urls_are_refused_with_a_sentence(url, category, phrase):
    """Scheme, userinfo, port and shape: each refused with its own sentence, before any DNS."""
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, allow_private=False)
    assert caught.value.category == category
    assert phrase in caught.value.reason
    assert caught.value.reason.endswith(".")


def test_allow_private_allows_http_and_private_addresses_but_never_userinfo(dns):
    """WEBHOOK_ALLOW_PRIVATE_URLS mode: http and loopback pass; credentials in a URL never do."""
    answers, _ = dns
    answers["receiver.internal"] = ["10.0.0.5"]
    target = check_url("http://receiver.internal:8080/x", allow_private=True)
    assert target.addresses == (ipaddress.ip_address("10.0.0.5"),)
    assert target.host_header == "receiver.internal:8080"
    assert check_url("http://127.0.0.1:9/", allow_private=True).port == 9
    with pytest.raises(UnsafeURL, match="user name or password"):
        check_url("http://u:p@receiver.internal/", allow_private=True)
    with pytest.raises(UnsafeURL, match="must use https"):
        check_url("http://receiver.internal/", allow_private=True, require_https=True)
    with pytest.raises(HostNotResolved):
        check_url("http://unknown.internal/", allow_private=True)


# --- the setting -----------------------------------------------------------------------------


def _app(env: str, **extra):
    config = {
        "ENV": env,
        "SECRET_KEY": SECRET_KEY,
        "CREDENTIALS_KEY": base64.urlsafe_b64encode(b"1" * 32).decode(),
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        **extra,
    }
    return create_app(config)


@pytest.mark.parametrize(
    ("env", "setting", "expected"),
    [
        ("development", None, True),
        ("testing", None, True),
        ("production", None, False),
        ("production", "true", True),
        ("development", "false", False),
    ],
)
def test_allow_private_default_follows_the_environment(monkeypatch, env, setting, expected):
    """Unset: true only in development and testing; an explicit value always wins."""
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_URLS", raising=False)
    if setting is not None:
        monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", setting)
    app = _app(env)
    assert app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] is expected
    with app.app_context():
        if expected:
            assert check_webhook_url("http://127.0.0.1:8080/").port == 8080
        else:
            with pytest.raises(UnsafeURL, match="must use https"):
                check_webhook_url("http://127.0.0.1:8080/")
            with pytest.raises(UnsafeURL, match="loopback"):
                check_webhook_url("https://127.0.0.1:8080/")


# --- requests pinned to the checked address --------------------------------------------------

HOOK_HOST = "hooks.example.test"


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Records each request's method, path, Host and body; answers 204."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append({"path": self.path, "host": self.headers["Host"], "body": body})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_receiver(tmp_path):
    """A TLS server on 127.0.0.1 whose certificate names HOOK_HOST; records SNI names seen."""
    ca_file, server_context = make_tls_files(tmp_path, dns_names=(HOOK_HOST,))
    sni_seen: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: sni_seen.append(name)
    with LocalHTTPServer(_Receiver, server_context) as server:
        server.sni_seen = sni_seen
        server.client_context = ssl.create_default_context(cafile=ca_file)
        yield server


def test_pinned_request_keeps_sni_host_and_certificate_check(dns, tls_receiver):
    """The request reaches the checked IP; SNI, Host and the certificate are the host name's."""
    answers, calls = dns
    port = tls_receiver.server_address[1]
    answers[HOOK_HOST] = ["127.0.0.1"]
    target = check_url(f"https://{HOOK_HOST}:{port}/in?a=1", allow_private=True)
    # Rebinding: whatever the name resolves to now, the request goes to the checked address.
    answers[HOOK_HOST] = ["192.0.2.1"]
    with guarded_client(timeout=5, verify=tls_receiver.client_context) as client:
        response = send_pinned(
            client, target, "POST", headers={"Content-Type": "application/json"}, content=b"{}"
        )
    assert response.status_code == 204
    assert calls == [HOOK_HOST]  # resolved once, at the check
    assert tls_receiver.sni_seen == [HOOK_HOST]
    assert tls_receiver.received == [
        {"path": "/in?a=1", "host": f"{HOOK_HOST}:{port}", "body": b"{}"}
    ]


def test_pinned_request_verifies_the_certificate_against_the_host_name(dns, tls_receiver):
    """A name the certificate does not cover fails TLS, though the IP itself is in it."""
    answers, _ = dns
    port = tls_receiver.server_address[1]
    answers["other.example.test"] = ["127.0.0.1"]
    target = check_url(f"https://other.example.test:{port}/", allow_private=True)
    with guarded_client(timeout=5, verify=tls_receiver.client_context) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|Hostname"):
            send_pinned(client, target, "POST", content=b"{}")
    assert tls_receiver.received == []


def test_pinned_request_moves_to_the_next_address_when_one_refuses(dns, tls_receiver):
    """A refused connection on one checked address tries the next; never an unchecked one."""
    answers, _ = dns
    port = tls_receiver.server_address[1]
    answers[HOOK_HOST] = ["127.0.0.2", "127.0.0.1"]  # the server listens on 127.0.0.1 only
    target = check_url(f"https://{HOOK_HOST}:{port}/in", allow_private=True)
    with guarded_client(timeout=5, verify=tls_receiver.client_context) as client:
        response = send_pinned(client, target, "POST", content=b"{}")
    assert response.status_code == 204 and len(tls_receiver.received) == 1


def test_pinned_request_raises_when_no_address_answers(dns):
    """Every checked address refusing: the connection error is raised (a retryable failure)."""
    answers, _ = dns
    answers[HOOK_HOST] = ["127.0.0.1"]
    target = check_url(f"http://{HOOK_HOST}:{closed_port()}/", allow_private=True)
    with guarded_client(timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            send_pinned(client, target, "POST", content=b"{}")


def test_send_pinned_refuses_a_client_that_follows_redirects(dns):
    """A redirect would leave the checked address: such a client is refused outright."""
    target = check_url("http://127.0.0.1:9/", allow_private=True)
    with httpx.Client(follow_redirects=True) as client:
        with pytest.raises(ValueError, match="never follows redirects"):
            send_pinned(client, target, "POST")
