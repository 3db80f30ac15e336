"""The kinds: one module each, one line here (imported only when used)."""

from __future__ import annotations

import importlib

KINDS: dict[str, str] = {
    "random": "zerotrust_admin.secret_rotation.random_kind:RandomRotator",
    "redis": "zerotrust_admin.secret_rotation.redis_kind:RedisRotator",
    "postgres": "zerotrust_admin.secret_rotation.postgres_kind:PostgresRotator",
    "aws-iam": "zerotrust_admin.secret_rotation.aws_iam_kind:AwsIamRotator",
    "tls": "zerotrust_admin.secret_rotation.tls_kind:TlsRotator",
    "keytab": "zerotrust_admin.secret_rotation.keytab_kind:KeytabRotator",
}


def rotator_class(kind: str):
    module_name, _, cls = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module_name), cls)
