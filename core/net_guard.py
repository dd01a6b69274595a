"""The SSRF guard: may the server send a request to this URL (webhooks, DESIGN §8)?

``check_url(url, allow_private=...)`` parses the URL, resolves its host once with
``getaddrinfo`` and answers a ``ResolvedTarget`` (scheme, host, port and every checked address)
or raises ``UnsafeURL`` whose ``reason`` is one sentence naming why, fit for a 422 on ``url``;
``check_webhook_url(url)`` is the same under the app's ``WEBHOOK_ALLOW_PRIVATE_URLS``.
``send_pinned`` then sends the request to one of the *checked* addresses while TLS (SNI and the
certificate check) and the ``Host`` header keep the URL's host name: the name is never resolved
a second time, so a DNS answer that changes between the check and the connection (DNS
rebinding) cannot move the request to another address. Check at save time (a 422 for the
tenant) and again before every delivery.

Decisions (``allow_private=False``, i.e. production unless ``WEBHOOK_ALLOW_PRIVATE_URLS``):

- **Scheme**: ``https`` only. ``allow_private`` also allows ``http``: the receivers it exists
  for (a development machine, a private network) rarely hold a public certificate.
  ``require_https`` overrides that either way.
- **Userinfo** (``https://user:pass@host``) is refused in every mode: credentials in a URL end
  up in logs, and ``user@`` is the classic way to make a URL look like another host's.
- **Port**: any port from 1 to 65535 (explicit or the scheme's default). The address is public,
  so a port reaches nothing a stranger on the internet could not reach anyway.
- **Host**: required; an IDN is encoded with IDNA (as httpx sends it). A host that does not
  resolve raises ``HostNotResolved`` (an ``UnsafeURL``): at save time it is refused like any
  other, at delivery it is a failure to retry later (DNS may be back).
- **Addresses**: *every* address the name resolves to must be public, else the URL is refused
  (one private answer among public ones is how rebinding is staged). Refused, by the tables
  below, IPv4 and IPv6 alike: unspecified/"this network" (``0.0.0.0/8``, ``::``), loopback
  (``127/8``, ``::1``), private (RFC 1918, IPv6 local-use NAT64 ``64:ff9b:1::/48``), shared
  address space (carrier-grade NAT, ``100.64/10``), link-local (``169.254/16`` — cloud metadata
  at ``169.254.169.254`` — and ``fe80::/10``), IETF protocol assignments (``192.0.0/24``,
  ``2001::/23`` with Teredo), documentation (``192.0.2/24``, ``198.51.100/24``,
  ``203.0.113/24``, ``2001:db8::/32``, ``3fff::/20``), benchmarking (``198.18/15``,
  ``2001:2::/48``), multicast (``224/4``, ``ff00::/8``), reserved and broadcast (``240/4``),
  the deprecated 6to4 relay anycast (``192.88.99/24``) and 6to4 itself (``2002::/16``, RFC
  7526), unique local (``fc00::/7``), site-local (``fec0::/10``), discard-only (``100::/64``),
  SRv6 SIDs (``5f00::/16``), and every IPv6 address outside global unicast ``2000::/3``.
- **IPv4 inside IPv6** is judged by the IPv4 address it carries: IPv4-mapped
  (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::/96``), 6to4 (``2002::/16``) and Teredo (server and
  client). ``::ffff:8.8.8.8`` is public; ``::ffff:127.0.0.1`` and ``2002:7f00:1::`` are loopback.
- Python's ``is_global`` differs between patch releases (3.11.7 calls ``64:ff9b::10.0.0.1`` and
  ``3fff::1`` global, ``100.64.0.1`` not), so the tables here decide; ``is_global`` is only a
  last, stricter net behind them.
- ``allow_private=True`` still parses, refuses userinfo and resolves (the deliverer pins the
  connection the same way), but accepts any address.

What is *not* done here: redirects (the deliverer never follows them), proxies (``guarded_client``
ignores ``HTTP(S)_PROXY``: a proxy would resolve the name itself), and a timeout on
``getaddrinfo`` (the system resolver's own applies).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import httpx
from flask import current_app

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

# (network, what it is); the first match names the reason. Categories a reader of a 422 knows.
_V4 = [
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # includes 255.255.255.255 (broadcast)
]
_V6 = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "private"),
    ("100::/64", "reserved"),
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "reserved"),  # includes Teredo 2001::/32 (its IPv4 judged first)
    ("2002::/16", "reserved"),  # 6to4, deprecated by RFC 7526 (its IPv4 judged first)
    ("3fff::/20", "documentation"),
    ("5f00::/16", "reserved"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
]
V4_TABLE = [(ipaddress.ip_network(net), category) for net, category in _V4]
V6_TABLE = [(ipaddress.ip_network(net), category) for net, category in _V6]
GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
NAT64 = ipaddress.ip_network("64:ff9b::/96")

PHRASES = {
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
    "not-global": "an address that is not publicly routable",
}


class UnsafeURL(ValueError):
    """The URL may not be called; ``reason`` says why in one sentence, ``category`` in a word.

    Categories: ``invalid``, ``scheme``, ``userinfo``, ``port``, ``unresolved`` and the address
    classes of ``PHRASES`` (``private``, ``loopback``, ``link-local``, ...).
    """

    def __init__(self, reason: str, category: str, address: IPAddress | None = None):
        super().__init__(reason)
        self.reason = reason
        self.category = category
        self.address = address


class HostNotResolved(UnsafeURL):
    """The host name has no address now: refused when saving, retried when delivering."""


@dataclass(frozen=True)
class ResolvedTarget:
    """A checked URL: where to connect (``addresses``, in resolver order) and what to call it.

    ``host`` is the URL's host as sent on the wire (IDNA-encoded, lower case, IPv6 without
    brackets); ``ip_literal`` when the URL names an address rather than a name.
    """

    url: httpx.URL
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def ip_literal(self) -> bool:
        """The URL's host is an IP address (no name to put in SNI)."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def host_header(self) -> str:
        """``Host`` as the URL would send it: the port only when it is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != DEFAULT_PORTS[self.scheme]:
            return f"{host}:{self.port}"
        return host

    def url_for(self, address: IPAddress) -> httpx.URL:
        """The URL with its host replaced by ``address`` (path, query and port kept)."""
        return self.url.copy_with(host=str(address), port=self.port)


# --- addresses ---------------------------------------------------------------------------------


def address_category(address: IPAddress) -> str | None:
    """Why ``address`` may not be called (a ``PHRASES`` key), or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded:
            for v4 in embedded:
                category = address_category(v4)
                if category:
                    return category
            if address.ipv4_mapped is not None:
                return None  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
        for network, category in V6_TABLE:
            if address in network:
                return category
        if address not in GLOBAL_UNICAST_V6 and address not in NAT64:
            return "reserved"
    else:
        for network, category in V4_TABLE:
            if address in network:
                return category
    if not address.is_global:
        return "not-global"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, NAT64, 6to4, Teredo server+client."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    return []


def describe(address: IPAddress, category: str) -> str:
    """``a loopback address (::ffff:127.0.0.1, IPv4 127.0.0.1)``."""
    shown = str(address)
    if isinstance(address, ipaddress.IPv6Address):
        carried = [str(v4) for v4 in _embedded_ipv4(address) if address_category(v4)]
        if carried:
            shown += f", carrying IPv4 {carried[0]}"
    return f"{PHRASES[category]} ({shown})"


# --- the check ---------------------------------------------------------------------------------


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to for a TCP connection, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise HostNotResolved(
            f"The host {host} could not be resolved ({_gai_reason(exc)}).", "unresolved"
        ) from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise HostNotResolved(f"The host {host} has no IP address.", "unresolved")
    return addresses


def _gai_reason(exc: BaseException) -> str:
    """getaddrinfo's error in a few words (``Name or service not known``)."""
    return getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__


def check_url(
    url: str, *, allow_private: bool, require_https: bool | None = None
) -> ResolvedTarget:
    """Check ``url`` and resolve its host; raise ``UnsafeURL`` naming why it may not be called.

    ``require_https`` defaults to ``not allow_private`` (see the module's decisions).
    """
    if require_https is None:
        require_https = not allow_private
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("The URL is empty.", "invalid")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"The URL is longer than {MAX_URL_LENGTH} characters.", "invalid")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise UnsafeURL("The URL contains spaces or control characters.", "invalid")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise UnsafeURL("The URL is not a valid URL.", "invalid") from None
    scheme = parsed.scheme
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURL("The URL must start with https://.", "scheme")
    if require_https and scheme != "https":
        raise UnsafeURL("The URL must use https.", "scheme")
    if parsed.userinfo:
        raise UnsafeURL(
            "The URL must not contain a user name or password (user:password@).", "userinfo"
        )
    try:
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    except UnicodeError:
        raise UnsafeURL("The URL's host is not a valid host name.", "invalid") from None
    if not host:
        raise UnsafeURL("The URL has no host.", "invalid")
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise UnsafeURL("The URL's port must be from 1 to 65535.", "port")

    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [literal] if literal is not None else resolve(host, port)
    if not allow_private:
        for address in addresses:
            category = address_category(address)
            if category is None:
                continue
            what = describe(address, category)
            if literal is not None:
                reason = f"The URL points to {what}; only public addresses are allowed."
            else:
                reason = f"The host {host} resolves to {what}; only public addresses are allowed."
            raise UnsafeURL(reason, category, address)
    return ResolvedTarget(
        url=parsed, scheme=scheme, host=host, port=port, addresses=tuple(addresses)
    )


def check_webhook_url(url: str) -> ResolvedTarget:
    """``check_url`` under the app's ``WEBHOOK_ALLOW_PRIVATE_URLS`` (true only in development
    and testing unless set)."""
    return check_url(url, allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE_URLS"])


# --- sending to a checked address --------------------------------------------------------------


def guarded_client(*, timeout: float, verify: Any = True) -> httpx.Client:
    """An httpx client fit for ``send_pinned``: no redirects, no proxy from the environment.

    ``verify`` is an ``ssl.SSLContext`` (or True for the system's CAs).
    """
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout),
        verify=verify,
    )


def send_pinned(
    client: httpx.Client,
    target: ResolvedTarget,
    method: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    stream: bool = False,
) -> httpx.Response:
    """Send to the first of ``target.addresses`` that accepts a connection; never re-resolve.

    The request goes to ``https://<address>:<port>/path`` with ``Host: <host>`` and, over TLS,
    SNI and the certificate check on ``<host>`` (httpx's ``sni_hostname`` request extension),
    so the receiver sees exactly the request the URL describes. Only a failure to connect moves
    on to the next address; any other error (timeout while reading, TLS) is raised. With
    ``stream`` the body is left unread (read what you keep, then close the response).
    """
    if client.follow_redirects:
        raise ValueError("send_pinned needs a client that never follows redirects")
    last_error: httpx.ConnectError | None = None
    for address in target.addresses:
        request_headers = {**(headers or {}), "Host": target.host_header}
        extensions = {} if target.ip_literal else {"sni_hostname": target.host}
        request = client.build_request(
            method,
            target.url_for(address),
            headers=request_headers,
            content=content,
            extensions=extensions,
        )
        try:
            return client.send(request, stream=stream)
        except httpx.ConnectError as exc:
            last_error = exc
    assert last_error is not None  # addresses is never empty
    raise last_error
