"""``vault backup``, ``vault restore`` and ``vault backup-keygen``: encrypted
backups under a passphrase or an X25519 recipient key. Registered on the
``vault`` group from here (vault_cmd.py stays untouched)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, info
from zerotrust_admin.cli.vault_cmd import app
from zerotrust_admin.errors import UsageError
from zerotrust_admin.secret import Secret


def _passphrase(confirm: bool) -> Secret:
    from zerotrust_admin.vault.backup import PASSPHRASE_ENV

    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return Secret(from_env)
    if not sys.stdin.isatty():
        raise UsageError("a backup passphrase is needed and stdin is not a terminal", hint=f"set {PASSPHRASE_ENV}, or use --recipient / --identity")
    from zerotrust_admin.cli.context import ask_passphrase

    return ask_passphrase("Backup passphrase", confirm)


@app.command("backup")
def backup(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="Backup file to write (mode 0600).")],
    recipient: Annotated[Optional[str], typer.Option("--recipient", "-r", help="Encrypt to this X25519 public key (zt-x25519:..., or a file holding it) instead of a passphrase.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    json: JsonOpt = False,
) -> None:
    """Write an encrypted backup of every secret and version (passphrase from a prompt or ZEROTRUST_BACKUP_PASSPHRASE, or --recipient)."""
    from zerotrust_admin.vault import backup as bk

    app_ctx = app_context(ctx, json)
    kek = bk.RecipientKek(bk.parse_public(recipient)) if recipient else bk.PassphraseKek(_passphrase(confirm=True))
    result = bk.create_backup(app_ctx.vault(), Path(output), kek, overwrite=force)
    if app_ctx.json:
        emit_json(result)
    else:
        info(f"Backed up {result['secrets']} secrets ({result['versions']} versions) to {output} under a {result['kek']} key", quiet=app_ctx.quiet)


@app.command("restore")
def restore(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="The backup file.")],
    identity: Annotated[Optional[str], typer.Option("--identity", "-i", help="X25519 private key file (from backup-keygen) for a --recipient backup.")] = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Verify a backup end to end, then restore it into an empty vault (nothing is written if any byte is wrong)."""
    from zerotrust_admin.vault import backup as bk

    app_ctx = app_context(ctx, json)
    ident = bk.load_identity(Path(identity)) if identity else None
    result = bk.restore_backup(app_ctx.vault(), Path(file), get_passphrase=lambda: _passphrase(confirm=False), identity=ident, dry_run=dry_run)
    if app_ctx.json:
        emit_json(result)
    elif dry_run:
        info(f"Backup OK: {result['secrets']} secrets, {result['versions']} versions ({result['kek']} key, made {result['created']}); nothing written", quiet=app_ctx.quiet)
    else:
        info(f"Restored {result['secrets']} secrets ({result['versions']} versions) from {file}", quiet=app_ctx.quiet)


@app.command("backup-keygen")
def backup_keygen(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the private key (mode 0600; never overwritten).")],
    json: JsonOpt = False,
) -> None:
    """Create an X25519 key pair for backups: the private key goes to --output, the public recipient is printed."""
    from zerotrust_admin.vault import backup as bk

    app_ctx = app_context(ctx, json)
    public = bk.generate_identity(Path(output))
    if app_ctx.json:
        emit_json({"identity_file": output, "recipient": public})
    else:
        sys.stdout.write(public + "\n")
        info(f"Private key written to {output}; give the line above to 'vault backup --recipient'", quiet=app_ctx.quiet)
