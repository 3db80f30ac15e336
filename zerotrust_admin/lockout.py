"""Brute-force protection: failed passphrase, PIN and MFA attempts per principal
and per OS account.

State lives in ``$ZEROTRUST_HOME/lockout.db`` (SQLite, mode 0600), so every
process on the host sees the same counters. After ``max_failures`` failures
within ``window_seconds`` the principal is locked out for ``base_delay_seconds``;
the same count is kept for the OS user and host the process runs as (the
claimed principal is whatever ``ZEROTRUST_PRINCIPAL`` says, the uid is not), and
a lock on either refuses the attempt;
each further lockout without a success in between doubles the delay, up to
``max_delay_seconds``. Each kind of secret (passphrase, PIN, MFA code) has its
own counter, lock and delay, and a lock of any kind refuses every attempt. A
success clears only the counters of its own kind (threat model P4, M1): a
passphrase success never clears MFA failures (else every command, which opens
the vault first, would reset the count of wrong codes before the MFA check adds
one), and an MFA success never clears passphrase or PIN failures. A passphrase
or PIN success, a secret shared by everyone, clears that kind for the principal
and the OS account; an MFA success only for its principal, so one's own good
code cannot reset the count of guesses at another principal's. Refusals,
failures and lockouts are audited; a lockout also triggers a breach
notification when notifications are configured.

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

# Counters per (scope, subject): scope "principal" is the claimed principal,
# scope "os-user" the OS account and host the process runs as (threat model
# P4: ZEROTRUST_PRINCIPAL is whatever the caller sets, the uid is not).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempt_failures (scope TEXT NOT NULL, subject TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS attempt_failures_by_subject ON attempt_failures (scope, subject, at);
CREATE TABLE IF NOT EXISTS kind_locks (scope TEXT NOT NULL, subject TEXT NOT NULL, kind TEXT NOT NULL, until REAL NOT NULL,
                                       lockouts INTEGER NOT NULL, PRIMARY KEY (scope, subject, kind));
"""
PRINCIPAL, OS_USER = "principal", "os-user"
# Kinds whose secret is one for the whole installation (the vault passphrase,
# the HSM PIN): a success proves it, so it clears the OS account's counter too.
# An MFA success proves only that principal's own code and clears only it,
# else one's own good code would reset the count of guesses at others'.
SHARED_SECRET_KINDS = ("passphrase", "pin")


def os_user_subject() -> str:
    """``<uid>:<name>@<host>`` of this process: the OS account the kernel vouches for."""
    import socket

    uid = os.getuid()
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        name = str(uid)
    return f"{uid}:{name}@{socket.gethostname()}"


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
    locked_by: str | None = None  # "principal" or "os-user": which counter holds the lock
    locked_kind: str | None = None  # "passphrase", "pin" or "mfa": whose failures set it

    def to_dict(self) -> dict:
        from datetime import datetime, timezone

        from zerotrust_admin.timeutil import rfc3339

        until = rfc3339(datetime.fromtimestamp(self.locked_until, timezone.utc)) if self.locked_until else None
        return {"principal": self.principal, "recent_failures": self.recent_failures, "lockouts": self.lockouts, "locked_until": until,
                "locked_by": self.locked_by, "locked_kind": self.locked_kind}


class Lockout:
    def __init__(self, path: Path, policy: LockoutPolicy | None = None, *, audit=None, actor=None,
                 notify: Callable[[str, dict], None] | None = None, clock: Callable[[], float] = time.time,
                 os_user: str | None = None):
        self.path = Path(path)
        self.os_user = os_user or os_user_subject()
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
    def _subjects(self, principal: str) -> list[tuple[str, str]]:
        return [(PRINCIPAL, principal), (OS_USER, self.os_user)]

    def state(self, principal: str, kind: str | None = None) -> LockState:
        """The principal's counters (failures of ``kind``, or of every kind);
        ``locked_until`` is the latest lock of any kind on the principal or on
        the OS account (any one locks)."""
        now = self.clock()
        if not os.path.lexists(self.path):
            return LockState(principal, 0, None, 0)  # no failure ever recorded: nothing to read or create
        kinds = (kind,) if kind else KINDS
        conn = self._connect()
        try:
            count = conn.execute(f"SELECT COUNT(*) FROM attempt_failures WHERE scope = ? AND subject = ? AND at > ? "  # nosec B608 - only "?" placeholders are joined; values are bound
                                 f"AND kind IN ({','.join('?' * len(kinds))})",
                                 (PRINCIPAL, principal, now - self.policy.window_seconds, *kinds)).fetchone()[0]
            locks = [(scope, *row) for scope, subject in self._subjects(principal)
                     for row in conn.execute("SELECT kind, until, lockouts FROM kind_locks WHERE scope = ? AND subject = ?", (scope, subject))]
        finally:
            conn.close()
        until, by, by_kind = None, None, None
        for scope, lock_kind, lock_until, _n in locks:
            if lock_until > now and (until is None or lock_until > until):
                until, by, by_kind = lock_until, scope, lock_kind
        lockouts = max([n for scope, lock_kind, _u, n in locks if scope == PRINCIPAL and lock_kind in kinds], default=0)
        return LockState(principal, count, until, lockouts, by, by_kind)

    def check(self, principal: str, kind: str = "passphrase") -> None:
        """Raise DeniedError (exit 4) with a retry-after time while the principal
        or the OS account this process runs as is locked out, by failures of
        any kind (a wrong-code lock also stops passphrase entry)."""
        if not self.policy.enabled:
            return
        state = self.state(principal)
        if state.locked_until is None:
            return
        retry = max(1, int(state.locked_until - self.clock() + 0.999))
        subject = principal if state.locked_by == PRINCIPAL else f"OS user {self.os_user}"
        what = {"mfa": "MFA code"}.get(state.locked_kind, state.locked_kind or kind)
        self._audit("lockout", kind, principal, False, reason="locked_out", locked_by=state.locked_by, locked_kind=state.locked_kind,
                    retry_after_seconds=retry)
        raise DeniedError(
            f"{subject} is locked out after repeated failed {what} attempts; retry after {retry} s",
            hint="wait, or have an administrator review the audit log (audit search --event auth_failure)",
        )

    def record_failure(self, principal: str, kind: str) -> LockState:
        """Count one failure of ``kind`` against the principal and against the
        OS account; each locks on its own when its count of that kind reaches
        ``max_failures``."""
        if kind not in KINDS:
            raise ValueError(f"unknown attempt kind {kind!r}")
        if not self.policy.enabled:
            return LockState(principal, 0, None, 0)
        now = self.clock()
        counts, locked = {}, {}
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM attempt_failures WHERE at <= ?", (now - self.policy.window_seconds,))
            for scope, subject in self._subjects(principal):
                conn.execute("INSERT INTO attempt_failures (scope, subject, kind, at) VALUES (?, ?, ?, ?)", (scope, subject, kind, now))
                count = conn.execute("SELECT COUNT(*) FROM attempt_failures WHERE scope = ? AND subject = ? AND kind = ?",
                                     (scope, subject, kind)).fetchone()[0]
                row = conn.execute("SELECT until, lockouts FROM kind_locks WHERE scope = ? AND subject = ? AND kind = ?",
                                   (scope, subject, kind)).fetchone()
                lockouts = row[1] if row else 0
                counts[scope] = (count, lockouts)
                if count >= self.policy.max_failures:
                    lockouts += 1
                    delay = min(self.policy.base_delay_seconds * (2 ** (lockouts - 1)), self.policy.max_delay_seconds)
                    conn.execute("INSERT OR REPLACE INTO kind_locks (scope, subject, kind, until, lockouts) VALUES (?, ?, ?, ?, ?)",
                                 (scope, subject, kind, now + delay, lockouts))
                    conn.execute("DELETE FROM attempt_failures WHERE scope = ? AND subject = ? AND kind = ?", (scope, subject, kind))
                    locked[scope] = (now + delay, lockouts)
                    counts[scope] = (count, lockouts)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        count, lockouts = counts[PRINCIPAL]
        self._audit("auth_failure", kind, principal, False, failures_in_window=count, os_user_failures_in_window=counts[OS_USER][0])
        until, by = None, None
        for scope, (scope_until, _lockouts) in locked.items():
            if until is None or scope_until > until:
                until, by = scope_until, scope
        if until is not None:
            # one record and one notification, naming every counter that locked
            details = {"failures": counts[by][0], "lockouts": locked[by][1], "locked_seconds": int(until - now), "locked_by": sorted(locked)}
            if OS_USER in locked:
                details["os_user"] = self.os_user
            self._audit("lockout", kind, principal, False, level="warning", **details)
            if self.notify is not None:
                try:
                    self.notify(principal, {"kind": kind, **details})
                except Exception:  # a failed notification must not unlock anything
                    pass
        return LockState(principal, count, until, lockouts, by, kind if until is not None else None)

    def record_success(self, principal: str, kind: str | None = "mfa") -> None:
        """Clear the failures and locks of ``kind`` only: the principal's, and
        for a shared secret (passphrase, PIN) the OS account's too. ``None``
        (callers that predate kinds: the MFA check) is an MFA success."""
        kind = kind or "mfa"
        if kind not in KINDS:
            raise ValueError(f"unknown attempt kind {kind!r}")
        if not self.policy.enabled or not os.path.lexists(self.path):
            return
        subjects = [(PRINCIPAL, principal)] + ([(OS_USER, self.os_user)] if kind in SHARED_SECRET_KINDS else [])
        conn = self._connect()
        try:
            if not any(conn.execute("SELECT 1 FROM attempt_failures WHERE scope = ? AND subject = ? AND kind = ? UNION ALL "
                                    "SELECT 1 FROM kind_locks WHERE scope = ? AND subject = ? AND kind = ? LIMIT 1",
                                    (scope, subject, kind, scope, subject, kind)).fetchone() for scope, subject in subjects):
                return  # the common case: nothing to clear, no write
            conn.execute("BEGIN IMMEDIATE")
            for scope, subject in subjects:
                conn.execute("DELETE FROM attempt_failures WHERE scope = ? AND subject = ? AND kind = ?", (scope, subject, kind))
                conn.execute("DELETE FROM kind_locks WHERE scope = ? AND subject = ? AND kind = ?", (scope, subject, kind))
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
        from zerotrust_admin.audit.checkpoint import Signer
        from zerotrust_admin.audit.log import AuditLog
        from zerotrust_admin.identity import current_actor

        actor = current_actor(ctx.environ or None)
        audit_path = (ctx.config.get("audit") or {}).get("path")
        # The configured signing key (security.signing), not one looked for beside the log.
        audit = AuditLog(Path(audit_path).expanduser() if audit_path else Path(ctx.home) / "audit.log", signer=Signer(ctx.config, ctx.home))
        return cls(Lockout.for_config(ctx.config, audit=audit, actor=actor, home=Path(ctx.home)), actor.user, kind)

    def check(self) -> None:
        self.lockout.check(self.principal, self.kind)

    def failed(self) -> None:
        self.lockout.record_failure(self.principal, self.kind)

    def succeeded(self) -> None:
        self.lockout.record_success(self.principal, self.kind)
