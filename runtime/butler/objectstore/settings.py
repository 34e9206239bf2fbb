"""How to reach an object store: endpoint, profile, region, time-outs, retries, part sizes.

Credentials never come from here: boto3 finds them where every AWS tool does
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws/credentials``
and ``~/.aws/config``, an instance role). A repository's ``butler.yaml`` may name the
``endpoint_url``, ``profile`` and ``region`` under ``s3:``; a configuration that holds
an access key or secret is refused, so no credential is ever written into a repository.
The standard ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` variables, when set, win
over the configuration's ``endpoint_url`` (so one user can point at a local mirror).

Retries: botocore's ``standard`` mode retries a connection failure, a time-out and a
500/502/503/504 or throttling answer with exponential back-off and jitter, up to
``max_attempts`` tries in all. That is safe for every request :class:`ObjectStore` sends:
reads and deletes are idempotent, and writes are conditional and carry a put id that
recognises a first attempt that had in fact succeeded (see :mod:`.client`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError

__all__ = ["ENDPOINT_VARIABLES", "S3Settings", "make_client"]

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_SECRET_KEYS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key",
        "secret_key",
        "secret",
        "password",
        "key",
        "token",
    }
)
_KNOWN = frozenset(
    {
        "endpoint_url",
        "profile",
        "region",
        "connect_timeout",
        "read_timeout",
        "max_attempts",
        "multipart_threshold",
        "part_size",
        "max_concurrency",
    }
)
MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Connection settings; every field has a default that works against AWS S3."""

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    #: Seconds to wait for a connection, and for each answer, before retrying.
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    #: Tries per request in all (1 = no retry).
    max_attempts: int = 5
    #: Objects of at least this many bytes are uploaded in parts (S3: parts >= 5 MiB).
    multipart_threshold: int = 64 * MiB
    part_size: int = 16 * MiB
    #: Parts uploaded at once.
    max_concurrency: int = 4

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> S3Settings:
        """Settings from a repository's ``s3:`` section, with the environment's endpoint."""
        config = dict(config or {})
        environ = os.environ if environ is None else environ
        secrets = sorted(k for k in config if k.lower() in _SECRET_KEYS)
        if secrets:
            raise ConfigError(
                f"the repository's s3 settings hold credentials ({', '.join(secrets)}); remove"
                " them: credentials come from the environment (AWS_ACCESS_KEY_ID,"
                " AWS_PROFILE) or ~/.aws/credentials, never from the repository"
            )
        unknown = sorted(set(config) - _KNOWN)
        if unknown:
            raise ConfigError(
                f"unknown s3 setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN))}"
            )
        settings = cls()
        try:
            settings = replace(settings, **config)
        except TypeError as error:  # pragma: no cover - guarded by _KNOWN
            raise ConfigError(f"bad s3 settings: {error}") from None
        if any(environ.get(name) for name in ENDPOINT_VARIABLES):
            settings = replace(settings, endpoint_url=None)
        if settings.part_size < 5 * MiB:
            raise ConfigError("s3 part_size must be at least 5 MiB (S3's smallest part)")
        return settings

    def endpoint(self, environ: Mapping[str, str] | None = None) -> str:
        """The endpoint requests go to, for messages."""
        environ = os.environ if environ is None else environ
        for name in ENDPOINT_VARIABLES:
            if environ.get(name):
                return environ[name]
        return self.endpoint_url or "AWS S3"


def make_client(settings: S3Settings) -> Any:
    """A boto3 S3 client for ``settings`` (credentials from the usual places)."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ProfileNotFound
    except ImportError:
        raise ConfigError(
            "S3 repositories need boto3, which is not installed: pip install 'butler[s3]'"
        ) from None
    try:
        session = boto3.session.Session(profile_name=settings.profile)
    except ProfileNotFound:
        raise ConfigError(
            f"the AWS profile {settings.profile!r} (from AWS_PROFILE or the repository's"
            " s3.profile) is not in ~/.aws/config or ~/.aws/credentials"
        ) from None
    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        max_pool_connections=max(10, settings.max_concurrency * 2),
        s3={"addressing_style": "path"} if settings.endpoint_url else {},
    )
    return session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region or session.region_name or "us-east-1",
        config=config,
    )
