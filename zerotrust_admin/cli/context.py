"""One context object per invocation: config, output mode, and lazily built,
cached handles to the vault and the audit log."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property

from zerotrust_admin.secret import Secret


@dataclass
class AppContext:
    config_path: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: bool = False
    _vault: object = field(default=None, repr=False)

    @cached_property
    def config(self):
        from zerotrust_admin.config import load_config

        return load_config(self.config_path)

    @cached_property
    def actor(self):
        from zerotrust_admin.identity import current_actor

        return current_actor()

    @cached_property
    def audit(self):
        from zerotrust_admin.audit import AuditLog

        return AuditLog(self.config.audit_path)

    def key_context(self):
        from zerotrust_admin.keys import KeySourceContext

        return KeySourceContext(config=self.config.data, home=self.config.home, ask_passphrase=ask_passphrase if sys.stdin.isatty() else None, environ=dict(os.environ))

    def vault(self):
        """The integrated vault, opened once per invocation."""
        if self._vault is None:
            from zerotrust_admin.keys import open_source
            from zerotrust_admin.vault import Vault

            kctx = self.key_context()
            self._vault = Vault.open(self.config.vault_path, lambda kind, params: open_source(kind, kctx, params), audit=self.audit, actor=self.actor)
        return self._vault

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()
            self._vault = None


def ask_passphrase(prompt: str, confirm: bool) -> Secret:
    import getpass

    from zerotrust_admin.errors import UsageError

    first = getpass.getpass(f"{prompt}: ")
    if confirm:
        second = getpass.getpass(f"{prompt} (again): ")
        if first != second:
            raise UsageError("the passphrases do not match; nothing was changed")
    return Secret(first)
