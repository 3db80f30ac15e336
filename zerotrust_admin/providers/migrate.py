"""``vault migrate``: copy every secret from one provider to another.

All versions are copied, oldest first, when both sides keep versions;
otherwise the current value only. Safe to re-run: a version whose content
(SHA-256 of the value, computed in memory and never stored) the target
already holds is skipped, and when the target's current value differs from
the source's, the source's is written last, so the current values end equal.
Soft-deleted source secrets are not copied (they are counted).

Who may migrate what (docs/security-model.md): the tool's own records under
``_zerotrust/`` (MFA seeds, the credential-cache key) are never copied, with
or without access checks, so no path leaks them to another store or
overwrites the target's; they are counted (``skipped_reserved``). With an
access guard (the CLI always sets one), every other secret needs ``read``
and ``write`` under the access policies, all decided before the first copy
(``AccessGuard.before_migrate``): one denial copies nothing and exits 4.
Names the principal may not list are left out and counted
(``skipped_hidden``), as ``vault export`` does; and one MFA code is needed
up front when any secret to copy is sensitive. The copy below then reads and
writes through the providers' ``inner`` objects: every name it touches was
authorized here.

Source reads happen in the calling thread (the integrated vault's SQLite
handle is not shared); target writes run on a small thread pool when the
target is a network service (``concurrency``), with new secrets written by
check-and-set (``cas``), so a secret created meanwhile is never overwritten.

A failure on one secret (say a name the target cannot store) is counted and
the rest go on; an unreachable or refusing provider stops the run with the
counts so far, and a re-run completes it. Audit: the source's bulk read
(``export``), one ``migrate`` record with the counts, and one ``migrate``
failure record per secret that could not be copied.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Callable

from zerotrust_admin.access import RESERVED_PREFIX
from zerotrust_admin.errors import DeniedError, UnavailableError, UsageError, ZeroTrustError


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
    skipped_reserved: int = 0
    skipped_hidden: int = 0
    failed: int = 0
    failures: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def counts(self) -> dict:
        return {k: v for k, v in self.to_dict().items() if isinstance(v, int) and not isinstance(v, bool)}

    def summary(self) -> str:
        verb = "would copy" if self.dry_run else "copied"
        extra = "".join(f", {n} {what} skipped" for n, what in ((self.skipped_reserved, "reserved (_zerotrust/)"),
                                                                 (self.skipped_hidden, "not visible to you")) if n)
        return (f"{self.secrets} secrets from {self.source} to {self.target}: {verb} {self.copied} ({self.versions_copied} versions), "
                f"{self.unchanged} already there, {self.skipped_deleted} deleted skipped{extra}, {self.failed} failed")


class MigrateInterrupted(ZeroTrustError):
    def __init__(self, cause: ZeroTrustError, result: MigrateResult):
        super().__init__(f"migrate stopped: {cause.message}; so far {result.summary()}", hint="fix the cause and re-run: what was copied is skipped")
        self.exit_code = cause.exit_code
        self.result = result


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def migrate(source, target, *, dry_run: bool = False, prefix: str = "", progress: Callable[[int, int], None] | None = None,
            workers: int | None = None) -> MigrateResult:
    """Copy ``source`` -> ``target`` (both AuditedProvider). Returns the counts."""
    if source.kind == target.kind and source.describe() == target.describe():
        raise UsageError(f"source and target are the same {source.kind} provider", hint="pass --to a different provider")
    result = MigrateResult(source=source.kind, target=target.kind, dry_run=dry_run)
    every = list(source.inner.list(prefix, include_deleted=True))
    result.skipped_deleted = sum(1 for i in every if i.deleted_at)
    candidates = [i for i in every if not i.deleted_at]
    live = {i.name: i for i in candidates if not i.name.startswith(RESERVED_PREFIX)}
    result.skipped_reserved = len(candidates) - len(live)
    allowed, result.skipped_hidden = _authorize(source, target, list(live.values()))
    live = {i.name: i for i in allowed}
    result.secrets = len(live)
    there = {i.name for i in target.inner.list(prefix, include_deleted=True)}
    keep_versions = source.keeps_versions and target.keeps_versions
    workers = workers or max(1, int(getattr(target.inner, "concurrency", 1)))
    stop: list[ZeroTrustError] = []
    done = 0

    def finish(future, name: str) -> None:
        nonlocal done
        try:
            wrote = future.result()
        except (UnavailableError, DeniedError) as exc:
            result.failed += 1
            result.failures.append(name)
            stop.append(exc)
            _record_failure(target, name, source.kind, exc, dry_run)
        except ZeroTrustError as exc:
            result.failed += 1
            result.failures.append(name)
            _record_failure(target, name, source.kind, exc, dry_run)
        else:
            if wrote:
                result.copied += 1
                result.versions_copied += wrote
            else:
                result.unchanged += 1
        done += 1
        if progress:
            progress(done, len(live))

    pending: dict = {}
    with (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zt-migrate") if workers > 1 else _Inline()) as pool:
        # export_all is one audited bulk read of the current values.
        for name, current, info in source.export_all(prefix):
            with current:
                if name not in live or stop:
                    continue
                try:
                    values = _source_versions(source, name, current.reveal(), info, keep_versions)
                except (UnavailableError, DeniedError) as exc:
                    result.failed += 1
                    result.failures.append(name)
                    stop.append(exc)
                    break
            future = pool.submit(_write_missing, target, name, values, live[name].sensitive, name in there, dry_run)
            pending[future] = name
            if len(pending) >= workers * 4:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    finish(f, pending.pop(f))
        for f in list(pending):
            finish(f, pending.pop(f))
    result.failures.sort()
    if not dry_run:
        target.record("migrate", f"{source.kind}->{target.kind}", not stop and not result.failed, prefix=prefix or "*", **result.counts())
    if stop:
        raise MigrateInterrupted(stop[0], result)
    return result


def _authorize(source, target, items: list) -> tuple[list, int]:
    """Every secret to copy checked before the first copy (a denial raises
    DeniedError, exit 4); returns (the items to copy, how many were hidden).
    The source's guard decides reads, the target's writes; when only one side
    has a guard, it decides both (fail closed)."""
    reader = getattr(source, "guard", None)
    writer = getattr(target, "guard", None)
    if reader is None and writer is None:
        return items, 0  # a library caller without access checks (tests, tools)
    reader = reader or writer
    return reader.before_migrate(items, writer=writer or reader)


class _Inline:
    """An executor that runs each call at once, in this thread (SQLite handles stay in their thread)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        from concurrent.futures import Future

        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # delivered through future.result(), like a pool
            future.set_exception(exc)
        return future


def _record_failure(target, name: str, source_kind: str, exc: Exception, dry_run: bool) -> None:
    if dry_run:
        return
    try:
        target.record("migrate", name, False, source=source_kind, target=target.kind, error=type(exc).__name__)
    except ZeroTrustError:
        pass


def _source_versions(source, name: str, current: bytes, info, keep_versions: bool) -> list[tuple[bytes, dict]]:
    """[(value, metadata)] oldest first, ending with the current version."""
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
    return values


def _write_missing(target, name: str, values: list[tuple[bytes, dict]], sensitive: bool, exists: bool, dry_run: bool) -> int:
    """Write what the target lacks; returns how many versions were (or would be) written."""
    have: set[bytes] = set()
    target_current = None
    if exists:
        try:
            for v in target.inner.history(name):
                try:
                    got, _ = target.inner.get(name, v.version)
                except ZeroTrustError as exc:
                    if exc.exit_code == 3:  # a deleted or destroyed version
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
            # A new secret is written by check-and-set: 0, then 1, 2... versions.
            target.inner.put(name, value, metadata=metadata, sensitive=sensitive, cas=None if exists else wrote)
        have.add(digest)
        target_current = digest
        wrote += 1
    current, metadata = values[-1]
    if target_current != _digest(current):
        if not dry_run:
            target.inner.put(name, current, metadata=metadata, sensitive=sensitive)
        wrote += 1
    return wrote
