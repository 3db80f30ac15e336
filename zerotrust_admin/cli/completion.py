"""Shell completion callbacks (Typer ``autocompletion=``): thin, the names come
from zerotrust_admin.completion (no values, no audit record, silent on failure)."""

from __future__ import annotations


def complete_secret_name(ctx, incomplete: str) -> list[str]:
    from zerotrust_admin.completion import secret_names

    root = ctx.find_root() if ctx is not None else None
    config_path = (root.params or {}).get("config") if root is not None else None
    return secret_names(incomplete or "", config_path=config_path)
