"""Brute-force protection: failed passphrase, PIN and MFA attempts per principal.

State lives in ``$ZEROTRUST_HOME/lockout.db`` (SQLite, mode 0600), so every
process on the host sees the same counters. After ``max_failures`` failures
within ``window_seconds`` the principal is locked out for ``base_delay_seconds``;
each further lockout without a success in between doubles the delay, up to
``max_delay_seconds``. A success clears the counters. Refusals, failures and
lockouts are audited; a lockout also triggers a breach notification when
notifications are configured.

Configuration (``security.lockout``), with defaults::

    security:
      lockout: {enabled: true, max_failures: 5, window_seconds: 900,
                base_delay_seconds: 60, max_delay_seconds: 3600}
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from zerotrust_admin import fsutil
from zerotrust_admin.errors import ConfigError, DeniedError

DEFAULTS = {"enabled": True, "max_failures": 5, "window_seconds": 900, "base_delay_seconds": 60, "max_delay_seconds": 3600}
KINDS = ("passphrase", "pin", "mfa")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (principal TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_by_principal ON failures (principal, at);
CREATE TABLE IF NOT EXISTS locks (principal TEXT PRIMARY KEY, until REAL NOT NULL, lockouts INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class LockoutPolicy:
    enabled: bool = True
    max_failures: int = 5
    window_seconds: float = 900
    base_delay_seconds: float = 60
    max_delay_seconds: float = 3600

    @classmethod
    def from_config(cls, config) -> "LockoutPolicy":
        raw = _section(config)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError("security.lockout must be a mapping")
        unknown = sorted(set(raw) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown config key 'security.lockout.{unknown[0]}'", hint=f"known: {', '.join(DEFAULTS)}")
        merged = {**DEFAULTS, **raw}
        if not isinstance(merged["enabled"], bool):
            raise ConfigError("security.lockout.enabled must be true or false")
        for key in ("max_failures", "window_seconds", "base_delay_seconds", "max_delay_seconds"):
            value = merged[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"security.lockout.{key} must be a positive number, not {value!r}")
        return cls(merged["enabled"], int(merged["max_failures"]), float(merged["window_seconds"]),
                   float(merged["base_delay_seconds"]), float(merged["max_delay_seconds"]))


def _section(config):
    if config is None:
        return None
    if isinstance(config, dict):
        return (config.get("security") or {}).get("lockout")
    return config.get("security.lockout")


def _home_of(config) -> Path:
    if isinstance(config, dict):
        from zerotrust_admin.config.loader import default_home

        return default_home()
    return config.home


@dataclass(frozen=True)
class LockState:
    principal: str
    recent_failures: int
    locked_until: float | None
    lockouts: int

    def to_dict(self) -> dict:
        from datetime import datetime, timezone

        from zerotrust_admin.timeutil import rfc3339

        until = rfc3339(datetime.fromtimestamp(self.locked_until, timezone.utc)) if self.locked_until else None
        return {"principal": self.principal, "recent_failures": self.recent_failures, "lockouts": self.lockouts, "locked_until": until}


class Lockout:
    def __init__(self, path: Path, policy: LockoutPolicy | None = None, *, audit=None, actor=None,
                 notify: Callable[[str, dict], None] | None = None, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.policy = policy or LockoutPolicy()
        self.audit = audit
        self.actor = actor
        self.notify = notify
        self.clock = clock

    @classmethod
    def for_config(cls, config, *, audit=None, actor=None, home: Path | None = None) -> "Lockout":
        policy = LockoutPolicy.from_config(config)
        base = Path(home) if home is not None else _home_of(config)
        return cls(base / "lockout.db", policy, audit=audit, actor=actor, notify=_notifier(config))

    # --- storage -----------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        return fsutil.connect_private_sqlite(self.path, what="lockout database", schema=_SCHEMA)

    # --- queries -------------------------------------------------------------
    def state(self, principal: str) -> LockState:
        now = self.clock()
        if not os.path.lexists(self.path):
            return LockState(principal, 0, None, 0)  # no failure ever recorded: nothing to read or create
        conn = self._connect()
        try:
            count = conn.execute("SELECT COUNT(*) FROM failures WHERE principal = ? AND at > ?", (principal, now - self.policy.window_seconds)).fetchone()[0]
            row = conn.execute("SELECT until, lockouts FROM locks WHERE principal = ?", (principal,)).fetchone()
        finally:
            conn.close()
        until = row[0] if row and row[0] > now else None
        return LockState(principal, count, until, row[1] if row else 0)

    def check(self, principal: str, kind: str = "passphrase") -> None:
        """Raise DeniedError (exit 4) with a retry-after time while locked out."""
        if not self.policy.enabled:
            return
        state = self.state(principal)
        if state.locked_until is None:
            return
        retry = max(1, int(state.locked_until - self.clock() + 0.999))
        self._audit("lockout", kind, principal, False, reason="locked_out", retry_after_seconds=retry)
        raise DeniedError(
            f"{principal} is locked out after repeated failed {kind} attempts; retry after {retry} s",
            hint="wait, or have an administrator review the audit log (audit search --event auth_failure)",
        )

    def record_failure(self, principal: str, kind: str) -> LockState:
        if not self.policy.enabled:
            return LockState(principal, 0, None, 0)
        now = self.clock()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM failures WHERE at <= ?", (now - self.policy.window_seconds,))
            conn.execute("INSERT INTO failures (principal, kind, at) VALUES (?, ?, ?)", (principal, kind, now))
            count = conn.execute("SELECT COUNT(*) FROM failures WHERE principal = ?", (principal,)).fetchone()[0]
            row = conn.execute("SELECT until, lockouts FROM locks WHERE principal = ?", (principal,)).fetchone()
            lockouts = row[1] if row else 0
            until = None
            if count >= self.policy.max_failures:
                lockouts += 1
                delay = min(self.policy.base_delay_seconds * (2 ** (lockouts - 1)), self.policy.max_delay_seconds)
                until = now + delay
                conn.execute("INSERT OR REPLACE INTO locks (principal, until, lockouts) VALUES (?, ?, ?)", (principal, until, lockouts))
                conn.execute("DELETE FROM failures WHERE principal = ?", (principal,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        self._audit("auth_failure", kind, principal, False, failures_in_window=count)
        if until is not None:
            details = {"failures": count, "lockouts": lockouts, "locked_seconds": int(until - now)}
            self._audit("lockout", kind, principal, False, level="warning", **details)
            if self.notify is not None:
                try:
                    self.notify(principal, {"kind": kind, **details})
                except Exception:  # a failed notification must not unlock anything
                    pass
        return LockState(principal, count, until, lockouts)

    def record_success(self, principal: str) -> None:
        if not self.policy.enabled or not os.path.lexists(self.path):
            return
        conn = self._connect()
        try:
            if conn.execute("SELECT 1 FROM failures WHERE principal = ? UNION ALL SELECT 1 FROM locks WHERE principal = ? LIMIT 1",
                            (principal, principal)).fetchone() is None:
                return  # the common case: nothing to clear, no write
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM failures WHERE principal = ?", (principal,))
            conn.execute("DELETE FROM locks WHERE principal = ?", (principal,))
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _audit(self, event: str, kind: str, principal: str, success: bool, level: str | None = None, **details) -> None:
        if self.audit is None:
            return
        actor = self.actor
        if actor is None:
            from zerotrust_admin.identity import current_actor

            actor = current_actor()
        self.audit.append(event=event, action=f"authenticate:{kind}", resource=f"principal:{principal}", success=success,
                          actor=actor, level=level, **details)


def _notifier(config):
    """A breach notification on lockout, when the notify package and channels exist."""
    if config is None or isinstance(config, dict):
        return None
    if not config.get("security.breach_notification.enabled"):
        return None

    def send(principal: str, details: dict) -> None:
        try:
            from zerotrust_admin import notify
        except ImportError:
            return
        fn = getattr(notify, "notify_event", None) or getattr(notify, "send_event", None)
        if fn is None:
            return
        fn(config, event="lockout", summary=f"{principal} locked out after {details['failures']} failed {details['kind']} attempts", details={"principal": principal, **details})

    return send


class AttemptGuard:
    """Lockout for one secret-entry attempt by a key source (passphrase, HSM PIN):
    ``check()`` before asking, then ``failed()`` or ``succeeded()``."""

    def __init__(self, lockout: Lockout, principal: str, kind: str):
        self.lockout = lockout
        self.principal = principal
        self.kind = kind

    @classmethod
    def for_key_context(cls, ctx, kind: str) -> "AttemptGuard":
        """From a ``keys.KeySourceContext`` (config dict, home, environ)."""
        from zerotrust_admin.audit.log import AuditLog
        from zerotrust_admin.identity import current_actor

        actor = current_actor(ctx.environ or None)
        audit_path = (ctx.config.get("audit") or {}).get("path")
        audit = AuditLog(Path(audit_path).expanduser() if audit_path else Path(ctx.home) / "audit.log")
        return cls(Lockout.for_config(ctx.config, audit=audit, actor=actor, home=Path(ctx.home)), actor.user, kind)

    def check(self) -> None:
        self.lockout.check(self.principal, self.kind)

    def failed(self) -> None:
        self.lockout.record_failure(self.principal, self.kind)

    def succeeded(self) -> None:
        self.lockout.record_success(self.principal)
