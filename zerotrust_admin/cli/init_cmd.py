"""Create $ZEROTRUST_HOME, the vault and its master key, and an example config if none exists; refuses to overwrite an existing vault."""

from __future__ import annotations

from typing import Annotated

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, info


def init(
    ctx: typer.Context,
    passphrase: Annotated[bool, typer.Option("--passphrase", help="Derive the master key from a passphrase (prompted; ZEROTRUST_PASSPHRASE without a terminal).")] = False,
    json: JsonOpt = False,
) -> None:
    """Create $ZEROTRUST_HOME, the vault and its master key, and an example config if none exists."""
    from zerotrust_admin.setup import initialize

    app = app_context(ctx, json)
    result = initialize(app.config, app.key_context(), want_passphrase=passphrase, audit=app.audit, actor=app.actor, config_explicit=bool(app.config_path))
    signing = app.audit.signer.public_key(create=True)  # made with the first audit record; auditors pin its public half
    result["signing_key_id"] = signing.key_id
    if app.json:
        emit_json(result)
        return
    info(f"Created vault {result['vault']} (master key: {result['master_source']}"
         + (f", {result['master_key_file']}" if result.get("master_key_file") else "") + ")", quiet=app.quiet)
    if result.get("config_written"):
        info(f"Wrote example config {result['config_written']}", quiet=app.quiet)
    if result.get("master_key_file"):
        info("Back up the master key file now: without it the vault cannot be opened.", quiet=app.quiet)
    info(f"Audit checkpoints are signed by key {signing.key_id}; give auditors its public key: zerotrust-admin keys public-key --output signing.pub",
         quiet=app.quiet)
