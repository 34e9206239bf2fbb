"""Helpers for the chain, runtime dataset type, override and provenance tests.

``registries`` gives each repository of a test its own registry: ``None`` (the
default SQLite file inside the repository) or a fresh PostgreSQL schema.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

RegistryFactory = Callable[[], "str | None"]


def _conninfo(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registries(request: pytest.FixtureRequest) -> Iterator[RegistryFactory]:
    """A factory of registry URLs for ``Butler.create``: one fresh registry per call."""
    if request.param == "sqlite":
        yield lambda: None
        return
    server = str(request.getfixturevalue("postgres_server"))
    with postgres_schemas(server) as make:
        yield make


@contextlib.contextmanager
def postgres_schemas(server: str) -> Iterator[Callable[[], str]]:
    """A factory of registry URLs, each a fresh schema on ``server``; dropped at the end."""
    import psycopg

    schemas: list[str] = []

    def make() -> str:
        schema = f"butler_test_{uuid.uuid4().hex[:16]}"
        admin: Any
        with psycopg.connect(_conninfo(server), autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        schemas.append(schema)
        url = sa.make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with psycopg.connect(_conninfo(server), autocommit=True) as admin:
            admin.execute("SET lock_timeout = '30s'")
            for schema in schemas:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
