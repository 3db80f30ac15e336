"""``sessions list`` / ``sessions create`` as library calls."""

from __future__ import annotations

import ipaddress

from zerotrust_admin.errors import UsageError, ZeroTrustError
from zerotrust_admin.sessions import default_ttl_seconds, max_ttl_seconds
from zerotrust_admin.sessions.base import Session, check_user, make_session, parse_duration, revoked_by


def list_with_state(store, *, user: str | None = None, limit: int | None = None) -> list[tuple[Session, str]]:
    if user is not None:
        check_user(user)
    markers: dict[str, tuple] = {}
    rows = []
    for s in store.list(user, limit=limit):
        if s.user not in markers:
            markers[s.user] = store.markers(s.user)
        rows.append((s, "revoked" if revoked_by(s, *markers[s.user]) else "active"))
    return rows


def create_session(store, config, *, user: str, ttl: str | None, source_ip: str | None, audit, actor) -> Session:
    check_user(user)
    seconds = parse_duration(ttl, what="--ttl") if ttl else default_ttl_seconds(config)
    limit = max_ttl_seconds(config)
    if seconds > limit:
        raise UsageError(f"--ttl {ttl} is longer than sessions.max_ttl ({int(limit)}s)", hint="ask for less, or raise sessions.max_ttl")
    if source_ip is not None:
        try:
            source_ip = str(ipaddress.ip_address(source_ip))
        except ValueError:
            raise UsageError(f"--source-ip {source_ip!r} is not an IP address") from None
    session = make_session(user, seconds, source_ip)
    try:
        store.put(session)
    except ZeroTrustError as exc:
        audit.append(event="session_create", action="create", resource=f"user:{user}", success=False, actor=actor, error=exc.message, store=store.describe())
        raise
    audit.append(event="session_create", action="create", resource=f"session:{session.id}", success=True, actor=actor,
                 session_user=user, ttl_seconds=int(seconds), store=store.describe(), **({"session_source_ip": source_ip} if source_ip else {}))
    return session
