"""The console's session: a sealed, HttpOnly, SameSite=Strict cookie, and its CSRF token.

Why sealed (AES-GCM), not only signed: the console calls the API with the key the person logged in
with, exactly as any other client would (the API decides what that key may see), so the key has to
travel with the session. Sealed, the cookie is opaque: the key is never in a page, a URL or readable
cookie text, and no script can read the cookie at all (HttpOnly). Any replica holding the same
secret opens it, so sessions need no shared store; a revoked key ends its session at the next call.

Every session, the anonymous one the login page starts included, carries a random CSRF token;
a mutating request must send it back (form field or X-CSRF-Token header), compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["COOKIE", "SECRET_FILE", "Session", "SessionSealer", "load_secret"]

COOKIE = "siraya_console"
SECRET_FILE = "console-secret"
_VERSION = b"v1"
_NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class Session:
    """Who is logged in. `key` is None for the anonymous session of the login page."""

    csrf: str
    expires_at: float
    key: str | None = None
    # "admin" or "user".
    role: str | None = None
    key_id: str | None = None
    name: str | None = None
    # Shown by the next page, then dropped: a new secret after a create or a rotate (Post/Redirect/Get,
    # so that reloading the page neither shows it again nor creates another key).
    flash: dict[str, str] | None = None

    @property
    def admin(self) -> bool:
        return self.key is not None and self.role == "admin"

    @property
    def signed_in(self) -> bool:
        return self.key is not None

    def with_flash(self, flash: dict[str, str] | None) -> Session:
        return replace(self, flash=flash)

    def csrf_matches(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), (token or "").encode())


class SessionSealer:
    """Seals sessions into cookie values and opens them; a value it did not seal opens to None."""

    def __init__(self, secret: bytes, lifetime_seconds: float) -> None:
        # A key of its own for the cookie, derived from the secret, whatever the secret's form.
        self._aead = AESGCM(hashlib.sha256(b"siraya-console-session\0" + secret).digest())
        self.lifetime = lifetime_seconds

    def anonymous(self) -> Session:
        return Session(csrf=secrets.token_urlsafe(32), expires_at=time.time() + self.lifetime)

    def signed_in(self, key: str, role: str, key_id: str | None, name: str | None) -> Session:
        """A new session (and a new CSRF token) for a key that just logged in."""
        return Session(
            csrf=secrets.token_urlsafe(32),
            expires_at=time.time() + self.lifetime,
            key=key,
            role=role,
            key_id=key_id,
            name=name,
        )

    def seal(self, session: Session) -> str:
        payload = orjson.dumps(
            {
                "c": session.csrf,
                "e": session.expires_at,
                "k": session.key,
                "r": session.role,
                "i": session.key_id,
                "n": session.name,
                "f": session.flash,
            }
        )
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, payload, _VERSION)
        return _VERSION.decode() + "." + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, value: str | None) -> Session | None:
        """The session in a cookie value; None if absent, forged, tampered with or expired."""
        if not value or not value.startswith(_VERSION.decode() + "."):
            return None
        body = value[len(_VERSION) + 1 :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            payload = orjson.loads(self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _VERSION))
            session = Session(
                csrf=payload["c"],
                expires_at=float(payload["e"]),
                key=payload["k"],
                role=payload["r"],
                key_id=payload["i"],
                name=payload["n"],
                flash=payload.get("f"),
            )
        except (ValueError, TypeError, KeyError, InvalidTag):
            return None
        if session.expires_at <= time.time():
            return None
        return session


def load_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else this machine's: created once in data_dir, readable by its owner
    only, so that every worker process on the machine opens the others' cookies."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked into place: a worker racing this one either
    # links its own first or reads a complete file, never a half-written one.
    temporary = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(32))
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_bytes()
