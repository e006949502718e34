"""Fixtures the account-store tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.server.accounts.accounts_backends import postgres_unavailable, temporary_database


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    """A fresh database on the local Postgres for the test module; the module is skipped without one."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with temporary_database() as dsn:
        yield dsn
