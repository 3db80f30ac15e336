"""Session stores: the registry and ``open_session_store(config)``.

``sessions.backend`` picks the store: ``sqlite`` (embedded, the default,
``$ZEROTRUST_HOME/sessions.db`` or ``sessions.path``) or ``redis``
(``redis.url``). Adding a store is one module plus one line in ``STORES``.
Store modules are imported only when opened (redis-py costs ~110 ms).
"""

from __future__ import annotations

import importlib

from zerotrust_admin.errors import ConfigError
from zerotrust_admin.sessions.base import (
    Session,
    SessionStore,
    check_session_id,
    check_user,
    make_session,
    new_session_id,
    parse_duration,
    revoked_by,
)

# name -> "module:factory"; the factory takes (config) and returns a SessionStore.
STORES: dict[str, str] = {
    "sqlite": "zerotrust_admin.sessions.sqlite_store:from_config",
    "redis": "zerotrust_admin.sessions.redis_store:from_config",
}

DEFAULT_TTL = "8h"
DEFAULT_MAX_TTL = "7d"


def backend_name(config) -> str:
    name = str(config.get("sessions.backend") or "sqlite").lower()
    if name in ("embedded", "sqlite3"):
        name = "sqlite"
    if name not in STORES:
        raise ConfigError(f"sessions.backend {name!r} is not one of {', '.join(STORES)}", hint="use sqlite (default) or redis")
    return name


def max_ttl_seconds(config) -> float:
    return parse_duration(config.get("sessions.max_ttl") or DEFAULT_MAX_TTL, what="sessions.max_ttl")


def default_ttl_seconds(config) -> float:
    return parse_duration(config.get("sessions.default_ttl") or DEFAULT_TTL, what="sessions.default_ttl")


def open_session_store(config, backend: str | None = None) -> SessionStore:
    """Open the configured session store (or ``backend`` when given)."""
    name = backend or backend_name(config)
    if name not in STORES:
        raise ConfigError(f"unknown session store {name!r}", hint=f"one of {', '.join(STORES)}")
    module_name, _, factory = STORES[name].partition(":")
    return getattr(importlib.import_module(module_name), factory)(config)


__all__ = [
    "STORES",
    "Session",
    "SessionStore",
    "backend_name",
    "check_session_id",
    "check_user",
    "default_ttl_seconds",
    "make_session",
    "max_ttl_seconds",
    "new_session_id",
    "open_session_store",
    "parse_duration",
    "revoked_by",
]
