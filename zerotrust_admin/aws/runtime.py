"""What the AWS features need from their surroundings, outside the CLI.

``Runtime`` offers the same handles as the CLI's ``AppContext`` (``config``,
``actor``, ``audit``, ``vault()``, ``session_store()``, ``close()``), so
library code takes either; the Python API (``zerotrust_kerberos``) uses this.
"""

from __future__ import annotations

import os
from functools import cached_property


class Runtime:
    def __init__(self, config=None, *, config_path=None, environ=None, actor=None):
        self._config = config
        self._config_path = config_path
        self._environ = dict(os.environ if environ is None else environ)
        self._actor = actor
        self._vault = None
        self._store = None

    @cached_property
    def config(self):
        if self._config is None:
            from zerotrust_admin.config import load_config

            self._config = load_config(self._config_path, self._environ)
        return self._config

    @cached_property
    def actor(self):
        if self._actor is None:
            from zerotrust_admin.identity import current_actor

            self._actor = current_actor(self._environ, config=self.config)  # security.identity applies here too
        return self._actor

    @cached_property
    def audit(self):
        from zerotrust_admin.audit import open_audit_log

        return open_audit_log(self.config)  # the configured sinks and signing key, as the CLI

    def vault(self):
        if self._vault is None:
            from zerotrust_admin.keys import KeySourceContext, open_source
            from zerotrust_admin.vault import Vault

            kctx = KeySourceContext(config=self.config.data, home=self.config.home, ask_passphrase=None, environ=self._environ)
            self._vault = Vault.open(self.config.vault_path, lambda kind, params: open_source(kind, kctx, params), audit=self.audit, actor=self.actor)
        return self._vault

    def session_store(self):
        if self._store is None:
            from zerotrust_admin.sessions import open_session_store

            self._store = open_session_store(self.config)
        return self._store

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()
            self._vault = None
        if self._store is not None:
            self._store.close()
            self._store = None
