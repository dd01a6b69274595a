"""A real DNS server for tests: dnslib on a free UDP port of 127.0.0.1, serving what a test
publishes. The app resolves through it with ``DNS_NAMESERVERS="127.0.0.1:<port>"``; no
resolver is patched. Tests get it through the ``zone`` fixture of tests/conftest.py."""

from __future__ import annotations

from contextlib import contextmanager

from dnslib import CNAME, QTYPE, RCODE, RR, TXT, DNSError
from dnslib.server import DNSLogger, DNSServer

SERVFAIL = "servfail"
SILENT = "silent"  # the query is received and never answered: the client times out


class ZoneResolver:
    """Answers from ``records``: {(name without trailing dot, "TXT"|"CNAME"): [values]}.

    ``failing`` makes names fail instead: {name: SERVFAIL} answers SERVFAIL, {name: SILENT}
    answers nothing (a timeout); ``failing["*"]`` applies to every name."""

    def __init__(self):
        self.records: dict[tuple[str, str], list[str]] = {}
        self.failing: dict[str, str] = {}
        self.port: int | None = None

    def unpublish(self, host: str, rtype: str) -> None:
        self.records.pop((host.lower().rstrip("."), rtype), None)

    def publish(self, host: str, rtype: str, value: str) -> None:
        self.records.setdefault((host.lower().rstrip("."), rtype), []).append(value)

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        failure = self.failing.get(qname) or self.failing.get("*")
        if failure == SILENT:
            raise DNSError("dropped on purpose")  # the server logs it and sends nothing
        if failure == SERVFAIL:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        values = self.records.get((qname, qtype), [])
        for value in values:
            rdata = TXT(value) if qtype == "TXT" else CNAME(value + ".")
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=60))
        if not values and not any(name == qname for name, _ in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@contextmanager
def running_zone():
    """Start the DNS server in a thread; yields its resolver (with ``port`` set)."""
    resolver = ZoneResolver()
    server = DNSServer(
        resolver, address="127.0.0.1", port=0, logger=DNSLogger("-", logf=lambda _: None)
    )
    server.start_thread()
    resolver.port = server.server.server_address[1]
    try:
        yield resolver
    finally:
        server.server.shutdown()
        server.server.server_close()
