"""The console's sealed session cookie, its secret, and the pinned front-end files."""

from __future__ import annotations

import hashlib
import stat
import time
from pathlib import Path

from http_bridge.console.session import SECRET_FILE, SessionSealer, load_secret
from tests.paths import ROOT

VENDOR = ROOT / "http_bridge" / "console" / "static" / "vendor"
KEY = "sk-sr-secret-key-0123456789abcdef"


def test_a_session_opens_to_what_was_sealed_and_hides_the_key() -> None:
    sealer = SessionSealer(b"x" * 32, 3600)
    session = sealer.signed_in(KEY, "user", "key_1", "app")
    value = sealer.seal(session)
    assert KEY not in value and "key_1" not in value and "app" not in value
    assert sealer.open(value) == session
    # Each seal has its own nonce: the same session never gives the same cookie twice.
    assert sealer.seal(session) != value
    assert sealer.open(sealer.seal(session.with_flash({"secret": "s"}))) == session.with_flash(
        {"secret": "s"}
    )


def test_a_forged_tampered_foreign_or_expired_cookie_opens_to_nothing() -> None:
    sealer = SessionSealer(b"x" * 32, 3600)
    value = sealer.seal(sealer.signed_in(KEY, "admin", None, "admin"))
    flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    assert sealer.open(flipped) is None
    assert SessionSealer(b"y" * 32, 3600).open(value) is None
    for junk in (None, "", "v1.", "v1.%%%", "v2." + value[3:], "not a cookie"):
        assert sealer.open(junk) is None
    short = SessionSealer(b"x" * 32, -1)
    assert short.open(short.seal(short.signed_in(KEY, "admin", None, None))) is None


def test_csrf_tokens_are_per_session_and_compared_exactly() -> None:
    sealer = SessionSealer(b"x" * 32, 3600)
    first, second = sealer.anonymous(), sealer.anonymous()
    assert first.csrf != second.csrf and len(first.csrf) >= 32
    assert first.csrf_matches(first.csrf)
    assert not first.csrf_matches(second.csrf)
    assert not first.csrf_matches("")
    assert not first.csrf_matches(None)
    assert first.expires_at > time.time()


def test_the_machine_secret_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    made = load_secret(None, tmp_path)
    assert len(made) == 32
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
    assert load_secret(None, tmp_path) == made
    assert load_secret("c" * 40, tmp_path) == b"c" * 40
    assert [path.name for path in tmp_path.iterdir()] == [SECRET_FILE]


def test_the_vendored_front_end_files_are_the_pinned_ones_with_their_licences() -> None:
    sums = dict(line.split()[::-1] for line in (VENDOR / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"htmx.min.js", "chart.umd.min.js"}
    for name, digest in sums.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    versions = (VENDOR / "VERSIONS").read_text()
    assert "htmx.org 2." in versions and "chart.js 4." in versions
    assert "MIT" in (VENDOR / "chart.js.LICENSE.md").read_text()
    assert (VENDOR / "htmx.LICENSE").read_text().strip()
