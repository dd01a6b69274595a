"""The console provider: for either channel type, it writes messages to the app log.

Its output goes to the logger ``channels.console_provider``; there is nothing to connect to.
"""

from __future__ import annotations

import logging

from core.providers.spec import OutgoingMessage, Provider

console_log = logging.getLogger("channels.console_provider")
# The console provider's output is its delivery, not a diagnostic: always written.
console_log.setLevel(logging.INFO)


def check(credentials: dict) -> str:
    """Always fine: there is no server behind it."""
    return "The console provider writes messages to the app log; nothing to connect to."


def send(credentials: dict, message: OutgoingMessage) -> str:
    """Write the message to the log as its delivery."""
    console_log.info(
        "channel %s (%s) message from %s to %s: %s%s",
        message.channel_id,
        message.channel_type,
        message.sender,
        message.to,
        f"[{message.subject}] " if message.channel_type == "email" else "",
        message.text.strip().replace("\n", " "),
    )
    return f"Written to the app log (console provider) for {message.to}."


PROVIDER = Provider(
    "console", "Console (writes to the app log)", ("email", "sms"), (), check=check, send=send
)
