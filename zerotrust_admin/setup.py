"""``init``: the home directory, the vault with its master key, the audit key and
an example config. Refuses to overwrite an existing vault."""

from __future__ import annotations

import os
from pathlib import Path

from zerotrust_admin import fsutil
from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.config import Config
from zerotrust_admin.config.example import EXAMPLE_CONFIG
from zerotrust_admin.config.loader import user_config_path
from zerotrust_admin.errors import AlreadyExistsError
from zerotrust_admin.keys import KeySourceContext, choose_new_source, source_class
from zerotrust_admin.vault import Vault


def initialize(config: Config, kctx: KeySourceContext, *, want_passphrase: bool, audit: AuditLog, actor: Actor, config_explicit: bool) -> dict:
    home = fsutil.ensure_private_dir(config.home)
    vault_path = config.vault_path
    if os.path.lexists(vault_path):
        raise AlreadyExistsError(f"a vault already exists at {vault_path}; refusing to overwrite it", hint="use another ZEROTRUST_HOME, or move the existing vault (and its key) away first")
    kind = choose_new_source(kctx, want_passphrase=want_passphrase)
    cls = source_class(kind)
    vault = Vault.create(vault_path, kind, lambda key_id: cls.create(kctx, key_id), audit=audit, actor=actor)
    try:
        described = vault._key_source.describe()
        audit.append(event="key_rotation", action="create", resource=f"vault:{vault.vault_id}", success=True, actor=actor,
                     master_source=kind, master_key_id=vault.master_key_id)
    finally:
        vault.close()
    result = {"home": str(home), "vault": str(vault_path), "vault_id": vault.vault_id, "master_source": kind,
              "master_key_id": vault.master_key_id, "audit_log": str(audit.path), "config_written": None}
    if kind == "keyfile":
        result["master_key_file"] = described.get("location")
    if config.path is None and not config_explicit:
        target = user_config_path(config.environ)
        if not target.exists():
            fsutil.ensure_private_dir(target.parent)
            fsutil.write_private_file(Path(target), EXAMPLE_CONFIG.encode(), overwrite=False)
            result["config_written"] = str(target)
    return result
