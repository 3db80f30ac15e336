"""The one place where provider operations are audited.

``AuditedProvider`` wraps any provider: each operation writes one record with
the local vault's fields (event ``secret_access``; action read, write, list,
history, delete, undelete, destroy, import, export, migrate; resource = the
secret name or prefix; success; on failure the error class). Never a value.
A provider that audits inside its own transactions (the integrated vault) says
so with ``audits_itself`` and is passed through unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from zerotrust_admin.errors import AuditError, ZeroTrustError


class AuditedProvider:
    guard = None  # access policies + MFA (access/guard.py), set by the CLI context; None: no checks

    def __init__(self, inner, audit, actor):
        self.inner = inner
        self.audit = audit
        self.actor = actor
        self._self_audited = bool(getattr(inner, "audits_itself", False))

    # --- plumbing ----------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def keeps_versions(self) -> bool:
        return self.inner.keeps_versions

    def __getattr__(self, item):  # describe, check, provider_key_status, vault...
        return getattr(self.inner, item)

    def __repr__(self) -> str:
        return f"AuditedProvider({self.inner!r})"

    def record(self, action: str, resource: str, success: bool, **details) -> None:
        if self.audit is None or self.actor is None:
            return
        details.setdefault("provider", self.inner.kind)
        self.audit.append(event="secret_access", action=action, resource=resource, success=success, actor=self.actor, **details)

    def _check(self, action: str, resource: str) -> None:
        if self.guard is not None:
            self.guard.authorize(action, resource)

    @contextmanager
    def _audited(self, action: str, resource: str, **details):
        if self._self_audited:
            yield details
            return
        try:
            yield details
        except ZeroTrustError as exc:
            if not isinstance(exc, AuditError):
                self.record(action, resource, False, error=type(exc).__name__, **details)
            raise
        except Exception as exc:  # an unmapped SDK error: audit the failure, then let the top level handle it
            self.record(action, resource, False, error=type(exc).__name__, **details)
            raise
        else:
            self.record(action, resource, True, **details)

    # --- operations ------------------------------------------------------------------
    def put(self, name: str, value: bytes, *, metadata: dict | None = None, sensitive: bool = False, cas: int | None = None):
        self._check("write", name)
        with self._audited("write", name) as details:
            info = self.inner.put(name, value, metadata=metadata, sensitive=sensitive, cas=cas)
            details["version"] = info.version
        return info

    def get(self, name: str, version: int | None = None):
        guard = self.guard
        if guard is not None:
            if self._self_audited:
                guard.before_read(self.inner, name)  # policy, then MFA before the vault decrypts (and audits) anything
            else:
                guard.authorize("read", name)
                guard.prepare_read(self.inner)
        with self._audited("read", name, **({"version": version} if version else {})) as details:
            secret, info = self.inner.get(name, version)
            details["version"] = info.version
            if guard is not None and not self._self_audited:
                try:
                    guard.after_read(self.inner, name)  # MFA for sensitive secrets; a refusal audits the read as failed
                except BaseException:
                    secret.wipe()
                    raise
        return secret, info

    def info(self, name: str):
        return self.inner.info(name)  # metadata only, like the vault's info(): not a secret access

    def list(self, prefix: str = "", *, include_deleted: bool = False) -> Iterator:
        with self._audited("list", prefix or "*"):
            items = list(self.inner.list(prefix, include_deleted=include_deleted))
        if self.guard is not None:
            items = self.guard.visible(items)  # only what the principal may list
        return iter(items)

    def history(self, name: str):
        self._check("list", name)
        with self._audited("history", name):
            return self.inner.history(name)

    def delete(self, name: str) -> None:
        self._check("delete", name)
        with self._audited("delete", name, mode="soft"):
            self.inner.delete(name)

    def undelete(self, name: str) -> None:
        self._check("write", name)
        with self._audited("undelete", name):
            self.inner.undelete(name)

    def destroy(self, name: str) -> int:
        self._check("delete", name)
        with self._audited("destroy", name, mode="destroy") as details:
            count = self.inner.destroy(name)
            details["versions"] = count
        return count

    def import_many(self, items, *, source: str = "", progress=None):
        """``write`` on every name; the comparison with the current values (and
        so ``unchanged``) only where the guard allows reading them all
        (threat-model row P3), else every item is written unread."""
        items = list(items)
        for name, _value in items:
            self._check("write", name)
        compare = self.guard is None or self.guard.may_compare_import(self.inner, [name for name, _ in items])
        extra = {} if compare else {"compare": False}
        with self._audited("import", source or "import", compared=compare) as details:
            result = self.inner.import_many(items, source=source, progress=progress, **extra)
            details.update(result.to_dict())
        return result

    def export_all(self, prefix: str = "") -> Iterator:
        if self.guard is not None:
            return self._guarded_export(prefix)
        return self._export_all(prefix)

    def _guarded_export(self, prefix: str) -> Iterator:
        if self._self_audited:  # checked per secret as the vault streams them (no extra audited listing)
            for name, secret, version in self.inner.export_all(prefix):
                try:
                    keep = self.guard.export_item(self.inner, name)
                except BaseException:
                    secret.wipe()
                    raise
                if keep:
                    yield name, secret, version
                else:
                    secret.wipe()
            return
        names = {i.name for i in self.guard.before_export(self.inner.list(prefix))}  # all allowed (and MFA once) before any value is read
        for name, secret, version in self._export_all(prefix):
            if name in names:
                yield name, secret, version
            else:
                secret.wipe()

    def _export_all(self, prefix: str) -> Iterator:
        if self._self_audited:
            return self.inner.export_all(prefix)
        with self._audited("export", prefix or "*") as details:
            items = list(self.inner.list(prefix))
            details["count"] = len(items)
        return self._export(items)

    def _export(self, items):
        for info in items:
            secret, version = self.inner.get(info.name)
            yield info.name, secret, version

    # --- provider-side key (rotate-keys / keys status) ------------------------------
    def provider_key_status(self) -> dict | None:
        fn = getattr(self.inner, "provider_key_status", None)
        return fn() if fn else None

    def rotate_provider_key(self, *, dry_run: bool = False) -> dict | None:
        """Rotate the provider's own key where it has one; audited as key_rotation."""
        fn = getattr(self.inner, "rotate_provider_key", None)
        if fn is None:
            return None
        if dry_run:
            return fn(dry_run=True)
        resource = f"{self.inner.kind}-provider-key"
        try:
            result = fn(dry_run=False)
        except ZeroTrustError as exc:
            if not isinstance(exc, AuditError) and self.audit is not None and self.actor is not None:
                self.audit.append(event="key_rotation", action="rotate", resource=resource, success=False, actor=self.actor,
                                  provider=self.inner.kind, error=type(exc).__name__)
            raise
        if result is not None and self.audit is not None and self.actor is not None:
            self.audit.append(event="key_rotation", action="rotate", resource=str(result.get("key_id") or resource), success=True,
                              actor=self.actor, provider=self.inner.kind, outcome=str(result.get("action", "")))
        return result

    def close(self) -> None:
        self.inner.close()
