"""Encryption at rest with CREDENTIALS_KEY (Fernet, with key rotation): integration credentials,
TOTP seeds and the form of a sensitive action waiting for a confirmation."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def dev_credentials_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY: only for development and tests."""
    digest = hashlib.sha256(("channels-credentials:" + secret_key).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def _fernet() -> MultiFernet:
    keys = [k.strip() for k in current_app.config["CREDENTIALS_KEY"].split(",") if k.strip()]
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt_credentials(credentials: dict) -> str:
    """Encrypt with the first key of CREDENTIALS_KEY."""
    return seal(credentials)


def seal(data: dict | list | str) -> str:
    """Any JSON value as a Fernet token of the first key of CREDENTIALS_KEY."""
    payload = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return _fernet().encrypt(payload).decode()


def unseal(token: str):
    """The JSON value of a ``seal`` token (RuntimeError when no configured key opens it)."""
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise RuntimeError("a sealed value cannot be decrypted with CREDENTIALS_KEY") from exc


def decrypt_credentials(token: str) -> dict:
    """Decrypt with whichever configured key encrypted it."""
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:  # a key was removed from CREDENTIALS_KEY too early
        raise RuntimeError(
            "integration credentials cannot be decrypted with CREDENTIALS_KEY"
        ) from exc


def rotate_credentials(token: str) -> str:
    """Re-encrypt a token with the current first key."""
    return _fernet().rotate(token.encode()).decode()


def encrypt_secret(secret: str) -> str:
    """Encrypt one secret string (a webhook signing secret) with the first key."""
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    """Decrypt a secret string encrypted by ``encrypt_secret``."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("a secret cannot be decrypted with CREDENTIALS_KEY") from exc
