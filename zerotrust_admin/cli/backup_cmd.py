"""``vault backup``, ``vault restore`` and ``vault backup-keygen``: encrypted,
signed backups under a passphrase or an X25519 recipient key (docs/backup.md). Registered on the
``vault`` group from here (vault_cmd.py stays untouched)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, info, warn
from zerotrust_admin.cli.vault_cmd import app
from zerotrust_admin.errors import UsageError
from zerotrust_admin.secret import Secret


def _passphrase(confirm: bool) -> Secret:
    from zerotrust_admin.vault.backup import PASSPHRASE_ENV

    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return Secret(from_env)
    from zerotrust_admin.cli.terminal import controlling_terminal

    if not controlling_terminal():
        raise UsageError("a backup passphrase is needed and there is no terminal to ask on", hint=f"set {PASSPHRASE_ENV}, or use --recipient / --identity")
    from zerotrust_admin.cli.context import ask_passphrase

    return ask_passphrase("Backup passphrase", confirm)


@app.command("backup")
def backup(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="Backup file to write (mode 0600).")],
    recipient: Annotated[Optional[str], typer.Option("--recipient", help="Encrypt to this X25519 public key (zt-x25519:..., or a file holding it) instead of a passphrase.")] = None,
    include_mfa_seeds: Annotated[bool, typer.Option("--include-mfa-seeds", help="Also back up MFA seeds and the tool's other _zerotrust/ records (needs the mfa action on mfa/*).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    json: JsonOpt = False,
) -> None:
    """Write an encrypted, signed backup of the secrets you may read (passphrase from a prompt or ZEROTRUST_BACKUP_PASSPHRASE, or --recipient)."""
    from zerotrust_admin.vault import backup as bk

    app_ctx = app_context(ctx, json)
    app_ctx.config.check_output(output)  # never over the tool's own files, even with --force (F1/F3)
    vault = app_ctx.vault()
    app_ctx.authorize("backup", f"vault/{vault.vault_id}")
    bk.check_output(Path(output), force)
    public = bk.parse_public(recipient) if recipient else None
    plan = bk.plan_backup(vault, app_ctx.access_guard, include_reserved=include_mfa_seeds)  # policy and MFA before any prompt
    kek = bk.RecipientKek(public) if public else bk.PassphraseKek(_passphrase(confirm=True))
    signer = app_ctx.audit.ensure_signing_key(app_ctx.actor)
    result = bk.create_backup(vault, Path(output), kek, signer=signer, plan=plan, overwrite=force)
    if app_ctx.json:
        emit_json(result)
        return
    info(f"Backed up {result['secrets']} secrets ({result['versions']} versions) to {output} under a {result['kek']} key, "
         f"signed by {result['signer_key_id']}", quiet=app_ctx.quiet)
    left = result["left_out"]
    if left["reserved"]:
        info(f"Left out {left['reserved']} MFA seed and other _zerotrust/ records (add them with --include-mfa-seeds)", quiet=app_ctx.quiet)
    if left["hidden"]:
        info(f"Left out {left['hidden']} secrets you may not list", quiet=app_ctx.quiet)


def _trusted_signer(app_ctx, signer: str | None):
    from zerotrust_admin.errors import NotFoundError
    from zerotrust_admin.signing import PublicKey, own_public_key

    if signer:
        return PublicKey.from_file(Path(signer))
    try:
        # B1: the key derived from signing.key (or the token), never a signing.pub
        # alone; both present and different is exit 5 (IntegrityError).
        return own_public_key(app_ctx.config, app_ctx.config.home, derived_only=True)
    except NotFoundError:
        return None  # restore_backup refuses a signed backup it cannot check (exit 5)


@app.command("restore")
def restore(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="The backup file.")],
    identity: Annotated[Optional[str], typer.Option("--identity", "-i", help="X25519 private key file (from backup-keygen) for a --recipient backup.")] = None,
    signer: Annotated[Optional[str], typer.Option("--signer", help="The signing.pub of the installation that made the backup (default: this installation's own).")] = None,
    allow_unsigned: Annotated[bool, typer.Option("--allow-unsigned", help="Restore an old unsigned (format 1) backup: anyone with the recipient string could have made it. Audited.")] = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Check a backup's signature, verify it end to end, then restore it into an empty vault (nothing is written if any byte is wrong)."""
    from zerotrust_admin.vault import backup as bk

    app_ctx = app_context(ctx, json)
    vault = app_ctx.vault()
    app_ctx.authorize("restore", f"vault/{vault.vault_id}")
    trusted = _trusted_signer(app_ctx, signer)
    ident = bk.load_identity(Path(identity)) if identity else None
    result = bk.restore_backup(vault, Path(file), get_passphrase=lambda: _passphrase(confirm=False), identity=ident, trusted=trusted,
                               allow_unsigned=allow_unsigned, guard=app_ctx.access_guard, dry_run=dry_run)
    if not result["signed"]:
        warn(f"{file} is an UNSIGNED format-1 backup: anyone holding the recipient string or passphrase could have made it; "
             + ("verified only" if dry_run else "restored only") + " because of --allow-unsigned" + ("" if dry_run else " (audited)"))
    signed_by = f"signed by {result['signer_key_id']}" if result["signed"] else "UNSIGNED"
    if app_ctx.json:
        emit_json(result)
    elif dry_run:
        info(f"Backup OK: {result['secrets']} secrets, {result['versions']} versions ({result['kek']} key, {signed_by}, made {result['created']}); nothing written", quiet=app_ctx.quiet)
    else:
        info(f"Restored {result['secrets']} secrets ({result['versions']} versions) from {file}, {signed_by}", quiet=app_ctx.quiet)


@app.command("backup-keygen")
def backup_keygen(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the private key (mode 0600; never overwritten).")],
    json: JsonOpt = False,
) -> None:
    """Create an X25519 key pair for backups: the private key goes to --output, the public recipient is printed."""
    from zerotrust_admin.vault import backup as bk

    app_ctx = app_context(ctx, json)
    app_ctx.config.check_output(output)  # never over the tool's own files (F1/F3)
    public = bk.generate_identity(Path(output))
    if app_ctx.json:
        emit_json({"identity_file": output, "recipient": public})
    else:
        sys.stdout.write(public + "\n")
        info(f"Private key written to {output}; give the line above to 'vault backup --recipient'", quiet=app_ctx.quiet)
