"""Rotation of the secrets themselves in their target systems (issue 15):
Redis ACL users, PostgreSQL roles, IAM access keys, Kerberos keytabs, TLS
certificates, random API keys.

Not to be confused with ``zerotrust_admin.rotation``, which rotates the
tool's own keys (master key, data keys, session keys).

    from zerotrust_admin.secret_rotation import rotate_secrets, status
    result = rotate_secrets(vault, config)          # what is due; nothing due is success

One module per kind (``redis_kind.py``, ...), registered in ``registry.KINDS``;
the interface is ``base.Rotator``; the state machine is ``engine.py``; the
state lives in the vault (``state.py``). docs/secret-rotation.md.
"""

from __future__ import annotations

from zerotrust_admin.secret_rotation.engine import plan, rotate_secrets, status  # noqa: F401
from zerotrust_admin.secret_rotation.registry import KINDS  # noqa: F401

__all__ = ["KINDS", "plan", "rotate_secrets", "status"]
