"""SMTP: a real SMTP session (``smtplib``) checks the credentials and sends the test message.

Connect, EHLO, STARTTLS when ``use_tls`` (port 465 means implicit TLS instead), AUTH LOGIN/PLAIN
when a username is set. TLS and the timeout are the HTTP transport's (``PROVIDER_CA_FILE``,
``PROVIDER_TIMEOUT``).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from core.providers.outcome import ProviderFailure, clip
from core.providers.spec import CredentialField, OutgoingMessage, Provider
from core.providers.transport import network_failure, provider_timeout, tls_context

FIELDS = (
    CredentialField("host", "Host", kind="host", max_length=253),
    CredentialField("port", "Port", kind="integer", default=587),
    CredentialField("username", "Username", required=False),
    CredentialField("password", "Password", required=False, secret=True),
    CredentialField("use_tls", "Use STARTTLS", kind="boolean", default=True),
)


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
        return f"The SMTP server refused the recipient ({clip(reply)})."
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
        return f"The SMTP session with {host} failed: {clip(str(exc))}."
    return network_failure("the SMTP server", host, exc)


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    """The server's reply code and text, on one short line."""
    text = (
        exc.smtp_error.decode("utf-8", "replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return clip(f"{exc.smtp_code} {text}")


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
    except ValueError:  # a host the IDNA codec refuses, stored before the host rule existed
        raise ProviderFailure(
            f"The SMTP host {clip(host)!r} is not a host name nor an IP address."
        ) from None


def check(credentials: dict) -> str:
    """Connect (and sign in when a username is set) without sending anything."""
    smtp_session(credentials)
    how = " with STARTTLS" if credentials.get("use_tls", True) else ""
    if int(credentials.get("port") or 587) == 465:
        how = " over TLS"
    auth = " and signed in" if credentials.get("username") else ""
    return f"Connected to {credentials['host']}:{credentials.get('port')}{how}{auth}."


def send(credentials: dict, message: OutgoingMessage) -> str:
    """Send the message as a plain-text email through the configured server."""
    email = EmailMessage()
    email["From"] = message.sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = make_msgid(domain=message.sender.rsplit("@", 1)[1])
    email.set_content(message.text)
    smtp_session(credentials, lambda client: client.send_message(email))
    return f"Sent to {message.to} through {credentials['host']}:{credentials.get('port')}."


PROVIDER = Provider("smtp", "SMTP", ("email",), FIELDS, check=check, send=send)
