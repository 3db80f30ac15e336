"""Session revocation: markers first, then deletion, then notifications.

Order matters. The revocation marker is written before anything is deleted,
so the broker refuses the targeted sessions at once (even the ones the
deletion has not reached yet); it is written again, with the finishing time,
after the deletion, so a session created while the revocation ran is refused
too. Notifications go out only after the revocation is complete and can
neither block nor undo it. Each run writes one ``session_revocation`` audit
record with its counts, also when it fails.

``revoke_sessions`` is what the CLI and ``revoke-credentials`` call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from zerotrust_admin.errors import NotFoundError, UsageError, ZeroTrustError
from zerotrust_admin.sessions.base import InterruptedDeletion, ProgressFn, check_session_id, check_user

SCOPES = ("all", "user", "session")
LOCK_NAME = "revoke-sessions"
LOCK_TTL = 10.0  # renewed every ttl/3 while working; a crashed run frees it within 10 s


@dataclass
class Target:
    scope: str                  # all | user | session
    value: str | None = None    # the user or session id

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise UsageError(f"unknown revocation scope {self.scope!r}")
        if self.scope == "user":
            check_user(self.value or "")
        elif self.scope == "session":
            check_session_id(self.value or "")
        elif self.value is not None:
            raise UsageError("--all takes no user or session")

    @property
    def resource(self) -> str:
        return "sessions:all" if self.scope == "all" else f"{self.scope}:{self.value}"


@dataclass
class RevocationReport:
    target: Target
    store: str
    dry_run: bool
    revoked: int = 0            # sessions deleted (or that would be, on a dry run)
    complete: bool = True
    user: str | None = None     # the owner, for --session
    marker_at: float | None = None
    seconds: float = 0.0
    reason: str | None = None
    notifications: list = field(default_factory=list)  # DeliveryResult
    error: str | None = None
    shards: dict | None = None  # --all on a Redis Cluster: sessions deleted per master ("host:port" -> count)

    @property
    def notify_failed(self) -> bool:
        return any(not n.ok for n in self.notifications)

    def to_dict(self) -> dict:
        return {
            "scope": self.target.scope,
            "target": self.target.value,
            "user": self.user,
            "store": self.store,
            "dry_run": self.dry_run,
            "revoked": self.revoked,
            "complete": self.complete,
            "marker_at": self.marker_at,
            "seconds": round(self.seconds, 4),
            "reason": self.reason,
            "notifications": [n.to_dict() for n in self.notifications],
            "error": self.error,
            **({"shards": self.shards} if self.shards is not None else {}),
        }


def plan(store, target: Target) -> RevocationReport:
    """What a revocation would do (``--dry-run``); NotFoundError for an unknown user or session."""
    report = RevocationReport(target=target, store=store.describe(), dry_run=True)
    if target.scope == "session":
        session = store.get(target.value)
        if session is None:
            raise NotFoundError(f"session {target.value} does not exist or has expired", hint="list them: zerotrust-admin sessions list")
        report.revoked, report.user = 1, session.user
    elif target.scope == "user":
        report.revoked = store.count(target.value)
        if report.revoked == 0:
            raise _no_user(target.value)
    else:
        report.revoked = store.count()
    return report


def _no_user(user: str) -> NotFoundError:
    return NotFoundError(f"user {user} has no live sessions", hint="check the principal's spelling (realm is upper case): zerotrust-admin sessions list")


def execute(store, target: Target, *, progress: ProgressFn | None = None, missing_ok: bool = False, clock: Callable[[], float] = time.time) -> RevocationReport:
    """Revoke (no audit, no notification: see ``revoke_sessions``). On an
    interrupted ``--all`` the report says how far it got and the error is raised
    with the report attached as ``exc.report``."""
    report = RevocationReport(target=target, store=store.describe(), dry_run=False)
    start = time.monotonic()
    counted = [0]  # sessions deleted so far by --all, for a run stopped by something else than the store

    def counting(n: int) -> None:
        counted[0] += n
        if progress is not None:
            progress(n)

    try:
        if target.scope == "session":
            session = store.get(target.value)
            if session is None:
                raise NotFoundError(f"session {target.value} does not exist or has expired", hint="list them: zerotrust-admin sessions list")
            report.user = session.user
            deleted = store.delete_session(target.value)
            report.revoked = 1 if deleted is not None else 0
        elif target.scope == "user":
            if not missing_ok and store.count(target.value) == 0:
                raise _no_user(target.value)
            atomic = getattr(store, "revoke_user_atomically", None)
            if atomic is not None:
                report.revoked, report.marker_at = atomic(target.value)
            else:
                store.set_marker(target.value, clock())
                report.revoked = store.delete_user(target.value)
                report.marker_at = clock()
                store.set_marker(target.value, report.marker_at)
        else:
            store.set_marker(None, clock())
            try:
                report.revoked = store.delete_all(progress=counting)
            finally:
                report.shards = getattr(store, "last_shards", None)
            report.marker_at = clock()
            store.set_marker(None, report.marker_at)
    except InterruptedDeletion as exc:
        report.revoked, report.complete, report.error = exc.done, False, exc.message
        report.seconds = time.monotonic() - start
        exc.report = report
        raise
    except ZeroTrustError as exc:
        report.complete, report.error = False, exc.message
        report.revoked = max(report.revoked, counted[0])
        report.seconds = time.monotonic() - start
        exc.report = report
        raise
    report.seconds = time.monotonic() - start
    return report


def notification_for(report: RevocationReport, actor) -> "object":
    from zerotrust_admin.notify import Notification

    what = {"all": "ALL sessions", "user": f"sessions of {report.target.value}", "session": f"session {report.target.value} of {report.user}"}[report.target.scope]
    title = f"ZeroTrust: {what} revoked ({report.revoked})"
    summary = f"{actor.user} revoked {what} from {actor.source_ip}: {report.revoked} session(s) in {report.store}."
    if report.reason:
        summary += f"\nReason: {report.reason}"
    details = {"scope": report.target.scope, "target": report.target.value or "*", "revoked": report.revoked,
               "operator": actor.user, "store": report.store}
    if report.reason:
        details["reason"] = report.reason
    return Notification(event="session_revocation", title=title, summary=summary, severity="critical", details=details)


def revoke_sessions(
    store,
    target: Target,
    *,
    config,
    audit,
    actor,
    reason: str | None = None,
    dry_run: bool = False,
    notify: bool | None = None,
    progress: ProgressFn | None = None,
    missing_ok: bool = False,
    lock: bool | None = None,
    lock_wait: float = 0.0,
) -> RevocationReport:
    """The whole revocation: (lock) -> markers + deletion -> audit -> notifications.

    ``store`` is a SessionStore or a no-argument callable opening one (so that
    a store that cannot be reached is audited as a failed revocation too).
    ``notify``: None follows ``security.breach_notification.enabled``.
    ``lock``: None locks for ``--all`` only (Redis lock when Redis is configured,
    else a local lock file; BusyError when still held after ``lock_wait`` s). Raises on a failed revocation
    after auditing it; notification failures are in ``report.notifications``.
    """
    if reason is not None and (len(reason) > 500 or any(ord(c) < 32 for c in reason)):
        raise UsageError("--reason must be one line of at most 500 characters")
    use_lock = (target.scope == "all") if lock is None else lock
    try:
        if not hasattr(store, "describe"):
            store = store()
        if dry_run:
            report = plan(store, target)
            report.reason = reason
            return report
        if use_lock:
            from zerotrust_admin.sessions.lock import distributed_lock

            shared = store.lock_client() if hasattr(store, "lock_client") else None  # the store's own connection, no second one
            with distributed_lock(config, LOCK_NAME, ttl=LOCK_TTL, wait=lock_wait, **(shared or {})) as held:
                def guarded(n: int) -> None:  # stop at the next batch once the lock is lost (a failover, a lapse)
                    held.check()
                    if progress is not None:
                        progress(n)

                report = _audited(store, target, audit=audit, actor=actor, reason=reason, progress=guarded, missing_ok=missing_ok)
        else:
            report = _audited(store, target, audit=audit, actor=actor, reason=reason, progress=progress, missing_ok=missing_ok)
    except ZeroTrustError as exc:
        if not dry_run and not getattr(exc, "audited", False):
            audit.append(event="session_revocation", action="revoke", resource=target.resource, success=False, actor=actor,
                         scope=target.scope, revoked=0, complete=False, error=exc.message, **({"reason": reason} if reason else {}))
        raise
    if notify is False:  # --no-notify: not even the notify package is imported
        return report
    from zerotrust_admin import notify as notify_mod

    if notify or notify_mod.enabled(config):
        report.notifications = send_notification(config, notification_for(report, actor), audit=audit, actor=actor)
    return report


def _audited(store, target, *, audit, actor, reason, progress, missing_ok) -> RevocationReport:
    try:
        report = execute(store, target, progress=progress, missing_ok=missing_ok)
    except ZeroTrustError as exc:
        # Every failed attempt is evidence, an unknown user included.
        partial = getattr(exc, "report", None)
        audit.append(event="session_revocation", action="revoke", resource=target.resource, success=False, actor=actor,
                     scope=target.scope, revoked=partial.revoked if partial else 0, complete=False, store=store.describe(),
                     error=exc.message, **({"shards": partial.shards} if partial is not None and partial.shards is not None else {}),
                     **({"reason": reason} if reason else {}))
        exc.audited = True
        raise
    report.reason = reason
    audit.append(event="session_revocation", action="revoke", resource=target.resource, success=True, actor=actor,
                 scope=target.scope, revoked=report.revoked, complete=True, store=report.store,
                 seconds=round(report.seconds, 4), **({"user_of_session": report.user} if report.user and target.scope == "session" else {}),
                 **({"shards": report.shards} if report.shards is not None else {}),
                 **({"reason": reason} if reason else {}))
    return report


def send_notification(config, note, *, audit=None, actor=None, only: str | None = None) -> list:
    """Deliver through the configured channels (``zerotrust_admin.notify.send``);
    never raises for a channel, since the revocation is already done."""
    from zerotrust_admin.notify import send

    return send(config, note, audit=audit, actor=actor, only=only)
