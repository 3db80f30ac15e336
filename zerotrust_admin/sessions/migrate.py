"""Copy live sessions from one store to another: the move of a standalone
Redis deployment to a Redis Cluster (docs/sessions.md, "Moving to a cluster").

Only sessions that are live and not refused by a marker are copied, so the
target needs no markers; a session whose id does not start with its user's
slot tag (``<tag>-``, what brokers write since the cluster schema) cannot live
on a cluster and is counted as skipped: its user logs in again.

    from zerotrust_admin.sessions.migrate import copy_sessions
    report = copy_sessions(old_store, cluster_store)
"""

from __future__ import annotations

from dataclasses import dataclass

from zerotrust_admin.sessions.base import ProgressFn, Session, id_tag, user_tag


@dataclass
class CopyReport:
    copied: int = 0
    skipped_untagged: int = 0   # ids without their user's slot tag: these users log in again
    skipped_revoked: int = 0    # refused by a marker in the source: never carried over

    def to_dict(self) -> dict:
        return {"copied": self.copied, "skipped_untagged": self.skipped_untagged, "skipped_revoked": self.skipped_revoked}


def copy_sessions(source, target, *, batch_size: int = 2000, progress: ProgressFn | None = None) -> CopyReport:
    """Copy every live, unrevoked session of ``source`` into ``target`` (same
    ids, users, times and source IPs); safe to run again (a put overwrites)."""
    report = CopyReport()
    needs_tag = bool(getattr(target, "cluster", False))
    batch: list[Session] = []

    def flush() -> None:
        if batch:
            report.copied += target.put_many(batch, batch_size=batch_size)
            if progress:
                progress(len(batch))
            batch.clear()

    for session in source.list():
        if needs_tag and id_tag(session.id) != user_tag(session.user):
            report.skipped_untagged += 1
        elif source.is_revoked(session):
            report.skipped_revoked += 1
        else:
            batch.append(session)
            if len(batch) >= batch_size:
                flush()
    flush()
    return report
