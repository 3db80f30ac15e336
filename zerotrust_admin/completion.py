"""Secret names for shell completion (``vault get/put/delete/history/undelete``).

Names only, never values; no audit record (a completion is not an access: it
runs at every Tab press, and listing names is what ``vault list`` shows); only
names the principal may ``list`` under ``access.policies`` (the same
``decide()`` as every command), never the tool's own ``_zerotrust/`` records.
Never prompts: a vault that needs a passphrase, an unreachable provider or any
other failure gives no names at all (the shell then completes nothing).
"""

from __future__ import annotations

import os

MAX_NAMES = 500  # a shell menu, not an export


def secret_names(prefix: str = "", *, config=None, config_path: str | None = None, environ: dict | None = None) -> list[str]:
    """Names of live secrets starting with ``prefix`` that the principal may list.
    Raises nothing: any failure returns []."""
    try:
        return _secret_names(prefix, config, config_path, dict(os.environ if environ is None else environ))
    except (Exception, KeyboardInterrupt):  # noqa: BLE001  (completion fails silently)
        return []


def _secret_names(prefix: str, config, config_path, environ: dict) -> list[str]:
    from zerotrust_admin import providers
    from zerotrust_admin.access import decide
    from zerotrust_admin.identity import actor_for, establish

    if config is None:
        from zerotrust_admin.config import load_config

        config = load_config(config_path, environ)
    actor = actor_for(establish(environ, config=config), environ)
    opened: list = []

    def open_local_vault():
        from zerotrust_admin.keys import KeySourceContext, open_configured_source
        from zerotrust_admin.vault import Vault

        # ask_passphrase=None: a passphrase vault raises instead of prompting
        kctx = KeySourceContext(config=config.data, home=config.home, ask_passphrase=None, environ=environ)
        vault = Vault.open(config.vault_path, lambda kind, params: open_configured_source(kctx, kind, params), actor=actor)
        opened.append(vault)
        return vault

    provider = providers.open_provider(config.provider, config, actor=actor, open_local_vault=open_local_vault, environ=environ, audited=False)
    try:
        items = list(provider.list(prefix, include_deleted=False))
    finally:
        provider.close()
        for vault in opened:
            vault.close()
    names = []
    for item in items:
        name = item.name
        if not name.startswith(prefix) or name.startswith("_zerotrust/"):
            continue
        if decide(config, actor.user, "list", name, actor.source_ip).allowed:
            names.append(name)
            if len(names) >= MAX_NAMES:
                break
    return sorted(names)
