"""Local stand-ins for the providers: an HTTP server playing every HTTP provider's API, an SMTP
server (aiosmtpd, optionally with STARTTLS and AUTH), a closed port and a port that never answers.

The HTTP server checks credentials the way each provider does (Bearer, basic auth, token
headers, query/form keys, an AWS SigV4 signature recomputed by botocore, not by our code) and
echoes the presented secret in its error texts, so tests can prove that secrets are scrubbed
from what users see.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GOOD = {
    "sendgrid": {"api_key": "SG.good-key"},
    "mailgun": {"api_key": "key-good-mailgun", "domain": "mg.example.com", "region": "us"},
    "ses": {
        "access_key_id": "AKIDGOOD",
        "secret_access_key": "ses-good-secret",
        "region": "eu-west-1",
    },
    "postmark": {"server_token": "pm-good-token"},
    "twilio": {"account_sid": "AC0123456789", "auth_token": "tw-good-token"},
    "vonage": {"api_key": "vonage-key", "api_secret": "vonage-good-secret"},
    "messagebird": {"access_key": "mb-good-key"},
}
CHANNEL_TYPE = {
    "sendgrid": "email",
    "mailgun": "email",
    "ses": "email",
    "postmark": "email",
    "twilio": "sms",
    "vonage": "sms",
    "messagebird": "sms",
}
HTTP_PROVIDERS = tuple(GOOD)
# The secret field of each provider, replaced by WRONG_SECRET to play bad credentials.
SECRET_FIELD = {
    "sendgrid": "api_key",
    "mailgun": "api_key",
    "ses": "secret_access_key",
    "postmark": "server_token",
    "twilio": "auth_token",
    "vonage": "api_secret",
    "messagebird": "access_key",
}
WRONG_SECRET = "WRONG-s3cr3t/value+1"
SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-pa55word"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bad_credentials(provider: str) -> dict:
    return {**GOOD[provider], SECRET_FIELD[provider]: WRONG_SECRET}


def aws_signature(
    method: str, url: str, headers: dict, body: bytes, amz_date: str, region: str
) -> str:
    """The Authorization header AWS expects for the good SES keys, as botocore computes it.

    The request is rebuilt from what arrived on the wire (the signed headers only) and signed
    at the instant it claims, so the check is independent of the code under test.
    """
    good = GOOD["ses"]
    request = AWSRequest(method=method, url=url, data=body or None, headers=headers)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(good["access_key_id"], good["secret_access_key"]), "ses", region)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    scope = signer.scope(request)
    return (
        f"AWS4-HMAC-SHA256 Credential={scope}, "
        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, "
        f"Signature={signature}"
    )


class _Handler(BaseHTTPRequestHandler):
    server: ProviderServer

    def log_message(self, format, *args):  # keep test output clean
        return

    def _reply(self, status: int, payload=None):
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        parts = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {
            "method": self.command,
            "path": parts.path,
            "query": dict(urllib.parse.parse_qsl(parts.query)),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        self.server.received.append(record)
        if self.server.force_status:
            self._reply(self.server.force_status, {"message": "internal trouble"})
            return
        segments = parts.path.strip("/").split("/")
        route = getattr(self, "_" + segments[0].replace("-", "_"), None)
        if route is None:
            self._reply(404, {"message": "no such provider"})
            return
        status, payload = route("/" + "/".join(segments[1:]), record)
        self._reply(status, payload)

    do_GET = do_POST = _handle

    # --- one method per provider: (path within the provider, request) -> (status, payload)

    def _sendgrid(self, path, r):
        presented = r["headers"].get("authorization", "")
        if presented != f"Bearer {GOOD['sendgrid']['api_key']}":
            return 401, {"errors": [{"message": f"authorization failed for {presented}"}]}
        if (r["method"], path) == ("GET", "/v3/scopes"):
            return 200, {"scopes": ["mail.send"]}
        if (r["method"], path) == ("POST", "/v3/mail/send"):
            return 202, None
        return 404, {"errors": [{"message": "not found"}]}

    def _mailgun(self, path, r, region="us"):
        good = GOOD["mailgun"]
        if r["headers"].get("authorization") != basic("api", good["api_key"]):
            return 401, {"message": "Invalid private key"}
        if r["method"] == "GET" and path == f"/v3/domains/{good['domain']}":
            return 200, {"domain": {"name": good["domain"], "state": "active"}}
        if r["method"] == "POST" and path == f"/v3/{good['domain']}/messages":
            return 200, {"id": "<1@mg.example.com>", "message": "Queued. Thank you."}
        return 404, {"message": "Domain not found"}

    def _mailgun_us(self, path, r):
        return self._mailgun(path, r, "us")

    def _mailgun_eu(self, path, r):
        return self._mailgun(path, r, "eu")

    def _ses(self, path, r):
        region, _, rest = path.strip("/").partition("/")
        rest = "/" + rest
        good = GOOD["ses"]
        authorization = r["headers"].get("authorization", "")
        fields = dict(
            item.strip().split("=", 1)
            for item in authorization.split(" ", 1)[-1].split(",")
            if "=" in item
        )
        signed = fields.get("SignedHeaders", "").split(";")
        when = r["headers"].get("x-amz-date", "")
        try:
            dt.datetime.strptime(when, "%Y%m%dT%H%M%SZ")
        except ValueError:
            return 403, {"message": "Missing X-Amz-Date"}
        expected = aws_signature(
            r["method"],
            f"http://{r['headers']['host']}{r['path']}",
            {name: r["headers"].get(name, "") for name in signed},
            r["body"],
            when,
            region,
        )
        if region != good["region"] or authorization != expected:
            return 403, {
                "message": "The request signature we calculated does not match the signature "
                "you provided."
            }
        if (r["method"], rest) == ("GET", "/v2/email/account"):
            return 200, {"SendingEnabled": True, "ProductionAccessEnabled": True}
        if (r["method"], rest) == ("POST", "/v2/email/outbound-emails"):
            return 200, {"MessageId": "ses-message-1"}
        return 404, {"message": "not found"}

    def _postmark(self, path, r):
        presented = r["headers"].get("x-postmark-server-token", "")
        if presented != GOOD["postmark"]["server_token"]:
            return 401, {"ErrorCode": 10, "Message": f"Bad or missing Server API token {presented}"}
        if (r["method"], path) == ("GET", "/server"):
            return 200, {"ID": 1, "Name": "Test server"}
        if (r["method"], path) == ("POST", "/email"):
            return 200, {"ErrorCode": 0, "Message": "OK", "MessageID": "pm-1"}
        return 404, {"ErrorCode": 404, "Message": "not found"}

    def _twilio(self, path, r):
        good = GOOD["twilio"]
        if r["headers"].get("authorization") != basic(good["account_sid"], good["auth_token"]):
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        account = f"/2010-04-01/Accounts/{good['account_sid']}"
        if (r["method"], path) == ("GET", account + ".json"):
            return 200, {"sid": good["account_sid"], "status": "active"}
        if (r["method"], path) == ("POST", account + "/Messages.json"):
            return 201, {"sid": "SM1", "status": "queued"}
        return 404, {"code": 20404, "message": "not found"}

    def _vonage(self, path, r):
        good = GOOD["vonage"]
        values = (
            r["query"] if r["method"] == "GET" else dict(urllib.parse.parse_qsl(r["body"].decode()))
        )
        valid = (
            values.get("api_key") == good["api_key"]
            and values.get("api_secret") == good["api_secret"]
        )
        if (r["method"], path) == ("GET", "/account/get-balance"):
            if not valid:
                return 401, {"error-code": "401", "error-code-label": "authentication failed"}
            return 200, {"value": 10.5, "autoReload": False}
        if (r["method"], path) == ("POST", "/sms/json"):
            if not valid:  # Vonage answers 200 with a per-message status
                return 200, {
                    "message-count": "1",
                    "messages": [{"status": "4", "error-text": "Bad Credentials"}],
                }
            return 200, {"message-count": "1", "messages": [{"status": "0", "message-id": "v-1"}]}
        return 404, {"error-code-label": "not found"}

    def _messagebird(self, path, r):
        presented = r["headers"].get("authorization", "")
        if presented != f"AccessKey {GOOD['messagebird']['access_key']}":
            return 401, {
                "errors": [{"code": 2, "description": f"Request not allowed ({presented})"}]
            }
        if (r["method"], path) == ("GET", "/balance"):
            return 200, {"payment": "prepaid", "type": "credits", "amount": 10}
        if (r["method"], path) == ("POST", "/messages"):
            return 201, {"id": "mb-1"}
        return 404, {"errors": [{"code": 20, "description": "not found"}]}


class LocalHTTPServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (HTTPS with ``tls_context``), served by a thread while used
    as a context manager; ``received`` is for its handler to record requests in."""

    daemon_threads = True

    def __init__(self, handler, tls_context=None):
        super().__init__(("127.0.0.1", 0), handler)
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls_context is not None else "http"
        self.received: list[dict] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


class ProviderServer(LocalHTTPServer):
    """Every HTTP provider on one local port, each under its own path prefix."""

    def __init__(self):
        super().__init__(_Handler)
        self.force_status: int | None = None

    def base_urls(self) -> dict[str, str]:
        """A PROVIDER_BASE_URLS value pointing every provider here."""
        return {
            "sendgrid": f"{self.url}/sendgrid",
            "mailgun": f"{self.url}/mailgun-us",
            "mailgun_eu": f"{self.url}/mailgun-eu",
            "ses": f"{self.url}/ses/{{region}}",
            "postmark": f"{self.url}/postmark",
            "twilio": f"{self.url}/twilio",
            "vonage": f"{self.url}/vonage",
            "messagebird": f"{self.url}/messagebird",
        }

    def reset(self) -> None:
        self.received.clear()
        self.force_status = None


# --- ports that fail ------------------------------------------------------------------------


def closed_port() -> int:
    """A local port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SilentServer:
    """Accepts TCP connections (the kernel does, from the backlog) and never says a word."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.sock.close()


# --- SMTP -----------------------------------------------------------------------------------


def make_tls_files(
    directory, dns_names: tuple[str, ...] = ("localhost",)
) -> tuple[str, ssl.SSLContext]:
    """A throwaway CA and a server certificate for 127.0.0.1 and ``dns_names``; returns (CA
    file, server context)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Channels test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    *(x509.DNSName(name) for name in dns_names),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    cert_path = directory / "server.pem"
    key_path = directory / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_path), str(key_path))
    return str(ca_path), context


class _Recorder:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "content": envelope.content.decode("utf-8", "replace"),
                "tls": session.ssl is not None,
                "authenticated": session.authenticated,
            }
        )
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """A real SMTP server on 127.0.0.1: ``tls`` offers STARTTLS, ``auth`` requires AUTH."""

    def __init__(self, tls_context: ssl.SSLContext | None = None, auth: bool = False):
        self.recorder = _Recorder()
        kwargs = {}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if auth:
            # Without TLS, AUTH is offered but not required (aiosmtpd warns about requiring
            # it in the clear); our client signs in whenever a username is configured.
            kwargs.update(
                authenticator=_authenticator,
                auth_required=tls_context is not None,
                auth_require_tls=tls_context is not None,
            )
        self.controller = Controller(
            self.recorder, hostname="127.0.0.1", port=closed_port(), ready_timeout=10, **kwargs
        )

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def messages(self) -> list[dict]:
        return self.recorder.messages
