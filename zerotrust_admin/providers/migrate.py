"""``vault migrate``: copy every secret from one provider to another.

All versions are copied, oldest first, when both sides keep versions;
otherwise the current value only. Safe to re-run: a version whose content
(SHA-256 of the value, computed in memory and never stored) the target
already holds is skipped, and when the target's current value differs from
the source's the source's is written last, so the current values end equal.
Soft-deleted source secrets are not copied (they are counted). A failure on
one secret (say a name the target cannot store) is counted and the rest go
on; an unreachable or refusing provider stops the run with the counts so far,
and a re-run completes it. One audit record per secret (action ``migrate``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Callable

from zerotrust_admin.errors import DeniedError, UnavailableError, ZeroTrustError


@dataclass
class MigrateResult:
    source: str
    target: str
    dry_run: bool = False
    secrets: int = 0
    copied: int = 0
    versions_copied: int = 0
    unchanged: int = 0
    skipped_deleted: int = 0
    failed: int = 0
    failures: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        verb = "would copy" if self.dry_run else "copied"
        text = (f"{self.secrets} secrets from {self.source} to {self.target}: {verb} {self.copied} ({self.versions_copied} versions), "
                f"{self.unchanged} already there, {self.skipped_deleted} deleted skipped, {self.failed} failed")
        return text


class MigrateInterrupted(ZeroTrustError):
    def __init__(self, cause: ZeroTrustError, result: MigrateResult):
        super().__init__(f"migrate stopped: {cause.message}; so far {result.summary()}", hint="fix the cause and re-run: what was copied is skipped")
        self.exit_code = cause.exit_code
        self.result = result


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def migrate(source, target, *, dry_run: bool = False, prefix: str = "", progress: Callable[[int, int], None] | None = None) -> MigrateResult:
    """Copy ``source`` -> ``target`` (both AuditedProvider). Returns the counts."""
    if source.kind == target.kind and source.describe() == target.describe():
        from zerotrust_admin.errors import UsageError

        raise UsageError(f"source and target are the same {source.kind} provider", hint="pass --to a different provider")
    result = MigrateResult(source=source.kind, target=target.kind, dry_run=dry_run)
    every = list(source.inner.list(prefix, include_deleted=True))
    result.skipped_deleted = sum(1 for i in every if i.deleted_at)
    live = {i.name: i for i in every if not i.deleted_at}
    result.secrets = len(live)
    there = {i.name for i in target.inner.list(prefix, include_deleted=True)}
    keep_versions = source.keeps_versions and target.keeps_versions
    done = 0
    # export_all is one audited bulk read of the current values.
    for name, current, current_info in source.export_all(prefix):
        if name not in live:
            current.wipe()
            continue
        try:
            with current:
                wrote = _copy_one(source, target, name, current.reveal(), current_info, live[name].sensitive, name in there, keep_versions, dry_run)
            if wrote:
                result.copied += 1
                result.versions_copied += wrote
            else:
                result.unchanged += 1
            if not dry_run and wrote:
                target.record("migrate", name, True, source=source.kind, target=target.kind, versions=wrote)
        except (UnavailableError, DeniedError) as exc:
            result.failed += 1
            result.failures.append(name)
            if not dry_run:
                _safe_record(target, name, source.kind, exc)
            raise MigrateInterrupted(exc, result) from None
        except ZeroTrustError as exc:
            result.failed += 1
            result.failures.append(name)
            if not dry_run:
                _safe_record(target, name, source.kind, exc)
        done += 1
        if progress:
            progress(done, len(live))
    return result


def _safe_record(target, name: str, source_kind: str, exc: Exception) -> None:
    try:
        target.record("migrate", name, False, source=source_kind, target=target.kind, error=type(exc).__name__)
    except ZeroTrustError:
        pass


def _copy_one(source, target, name: str, current: bytes, info, sensitive: bool, exists: bool, keep_versions: bool, dry_run: bool) -> int:
    """Write what the target lacks; returns how many versions were (or would be) written."""
    values: list[tuple[bytes, dict]] = []
    if keep_versions and info.version > 1:
        for v in source.inner.history(name):
            if v.version == info.version:
                continue
            try:
                old, old_info = source.inner.get(name, v.version)
            except ZeroTrustError as exc:
                if exc.exit_code == 3:  # destroyed or expired version: nothing to copy
                    continue
                raise
            with old:
                values.append((old.reveal(), old_info.metadata))
    values.append((current, info.metadata))
    have: set[bytes] = set()
    target_current = None
    if exists:
        try:
            for v in target.inner.history(name):
                try:
                    got, got_info = target.inner.get(name, v.version)
                except ZeroTrustError as exc:
                    if exc.exit_code == 3:
                        continue
                    raise
                with got:
                    digest = _digest(got.reveal())
                have.add(digest)
                if v.current:
                    target_current = digest
        except ZeroTrustError as exc:
            if exc.exit_code != 3:
                raise
    wrote = 0
    for value, metadata in values:
        digest = _digest(value)
        if digest in have:
            continue
        if not dry_run:
            target.inner.put(name, value, metadata=metadata, sensitive=sensitive)
        have.add(digest)
        target_current = digest
        wrote += 1
    if target_current != _digest(current):
        if not dry_run:
            target.inner.put(name, current, metadata=info.metadata, sensitive=sensitive)
        wrote += 1
    return wrote
