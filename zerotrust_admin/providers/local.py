"""The integrated vault (``vault.db`` under ``$ZEROTRUST_HOME``) as a provider.

A thin adapter: every call goes straight to ``Vault``, so the local path keeps
its exact behaviour, messages and audit records. The integrated vault writes
its audit record inside its own SQLite transaction (a write that cannot be
audited is rolled back), which no wrapper can do from outside, so the audit
wrapper leaves this provider's records to it (``audits_itself``).
"""

from __future__ import annotations

from zerotrust_admin.errors import NotFoundError
from zerotrust_admin.providers.base import ProviderBase, ProviderContext, VersionConflict


class LocalProvider(ProviderBase):
    kind = "local"
    keeps_versions = True
    audits_itself = True

    def __init__(self, ctx: ProviderContext):
        if ctx.open_local_vault is None:
            from zerotrust_admin.errors import ConfigError

            raise ConfigError("the local provider needs the integrated vault, and none can be opened here")
        self._open = ctx.open_local_vault
        self._vault = None

    @property
    def vault(self):
        if self._vault is None:
            self._vault = self._open()
        return self._vault

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.vault.path)}

    def put(self, name, value, *, metadata=None, sensitive=False, cas=None):
        if cas is not None:
            # Best effort: the vault's write transaction is not exposed, so this
            # check and the write are two steps (atomic only within one process).
            try:
                current = self.vault.info(name).current_version
            except NotFoundError:
                current = 0
            if current != cas:
                raise VersionConflict(f"secret {name!r} changed meanwhile (check-and-set failed)", hint="read it again and retry")
        return self.vault.put(name, value, metadata=metadata, sensitive=sensitive)

    def get(self, name, version=None):
        return self.vault.get(name, version)

    def info(self, name):
        return self.vault.info(name)

    def list(self, prefix="", *, include_deleted=False):
        return self.vault.list(prefix, include_deleted=include_deleted)

    def history(self, name):
        return self.vault.history(name)

    def delete(self, name):
        return self.vault.delete(name)

    def undelete(self, name):
        return self.vault.undelete(name)

    def destroy(self, name):
        return self.vault.destroy(name)

    def import_many(self, items, *, source="", progress=None, compare=True):
        if compare:
            return self.vault.import_many(items, source=source, progress=progress)
        return self.vault.import_many(items, source=source, progress=progress, compare=False)  # P3: nothing read

    def export_all(self, prefix=""):
        return self.vault.export_all(prefix)

    def check(self) -> dict:
        stats = self.vault.stats()
        return {"endpoint": str(self.vault.path), "identity": stats.get("master_source", ""), "problems": []}

    def close(self) -> None:
        # The vault belongs to whoever supplied open_local_vault (AppContext closes it).
        self._vault = None
