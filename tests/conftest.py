"""Shared fixtures: database URLs for registry tests.

``registry_url`` runs a test once on SQLite (a file in ``tmp_path``) and once
on PostgreSQL (a fresh schema with a random name, dropped afterwards, so runs
never see each other's rows). PostgreSQL tests skip when the server is not
reachable, unless ``BUTLER_REQUIRE_POSTGRES=1``, which makes them fail.
The server is ``BUTLER_TEST_POSTGRES_URL``, by default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get(
    "BUTLER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_required() -> bool:
    return os.environ.get("BUTLER_REQUIRE_POSTGRES") == "1"


def _conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _unavailable(reason: str) -> None:
    if _postgres_required():
        pytest.fail(f"BUTLER_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server's URL, once it has answered (else skip, or fail if required)."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'butler[postgres]')")
    try:
        psycopg.connect(_conninfo(POSTGRES_URL), connect_timeout=3).close()
    except psycopg.Error as err:
        detail = " ".join(str(err).split())
        _unavailable(f"PostgreSQL is not reachable at {sa.make_url(POSTGRES_URL)}: {detail}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose ``search_path`` is a fresh, empty schema, dropped after the test."""
    import psycopg

    schema = f"butler_test_{uuid.uuid4().hex[:16]}"
    admin: Any
    with psycopg.connect(_conninfo(postgres_server), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    url = sa.make_url(postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_conninfo(postgres_server), autocommit=True) as admin:
            admin.execute("SET lock_timeout = '30s'")
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL for a registry file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'registry.sqlite3'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest) -> str:
    """A URL for a new registry, on each database the registry supports."""
    return str(request.getfixturevalue(f"{request.param}_url"))


from _s3server import s3_location, s3_repository, s3_server, s3_settings  # noqa: E402, F401  (fixtures)
