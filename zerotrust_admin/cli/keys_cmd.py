"""``keys``: the key hierarchy at a glance, and moving the master key between a
key file and an HSM."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, YesOpt, app_context
from zerotrust_admin.cli.output import confirm, emit_json, info, suggest_wait, table

app = typer.Typer(help="Inspect the key hierarchy and migrate the master key.", no_args_is_help=True)

COLUMNS = ["ID", "KIND", "SOURCE", "CREATED", "AGE", "NEXT DUE", "STATE", "NOTE"]


@app.command("status")
def status(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Every key (master, data keys, session keys, audit key): id, kind, created, age, next due, state. Overdue keys are flagged."""
    from zerotrust_admin.rotation.schedule import Policy
    from zerotrust_admin.rotation.status import key_status, provider_row, status_summary

    app_ctx = app_context(ctx, json)
    config = app_ctx.config
    external = config.provider != "local"
    rows = []
    if not external or config.vault_path.exists():  # an external provider may run without the integrated vault
        rows = key_status(app_ctx.vault(), Policy.from_config(config.data), audit_key_path=app_ctx.audit.key_path)
    if external:
        extra = provider_row(app_ctx.provider().provider_key_status())
        if extra:
            rows.append(extra)
    if app_ctx.json:
        emit_json(status_summary(rows))
        return
    def short(ts):  # minutes are enough for people; --json has the full RFC 3339 time
        return ts[:16].replace("T", " ") if ts else "-"

    table(None, COLUMNS, ([r["id"], r["kind"], r["source"], short(r["created"]), r["age"], short(r["next_due"]),
                          r["state"].upper() if r["overdue"] else r["state"], r["note"]] for r in rows),
          highlight=lambda row: "bold red" if row[6] == "OVERDUE" else None, keep=("ID",), drop=("NOTE", "SOURCE", "CREATED", "AGE"))


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="Where the master key goes: hsm (encryption.hsm) or keyfile.")],
    wait: Annotated[float, typer.Option("--wait", min=0, metavar="SECONDS", help="Seconds to wait for a running rotation instead of exiting 7.")] = 0.0,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Move the master key from a key file to the HSM, or back: data keys are re-wrapped, the old key is destroyed."""
    from zerotrust_admin.rotation.run import migrate_master

    app_ctx = app_context(ctx, json)
    app_ctx.authorize("rotate", "keys/master")  # it replaces and destroys the master key (threat-model row P2)
    vault = app_ctx.vault()
    if dry_run:
        result = migrate_master(vault, app_ctx.config, app_ctx.key_context(), to=to, dry_run=True)
        emit_json(result) if app_ctx.json else info(f"Would move master key {result['master_key_id']} from {result['from']} to {result['to']} "
                                                    f"and re-wrap {result['data_keys']} data key(s) and {result['session_keys']} session key(s)")
        return
    if not confirm(f"Move the master key to {to} and destroy the old one? (Back up the vault first.)", yes=yes):
        raise typer.Exit(1)
    with suggest_wait():
        result = migrate_master(vault, app_ctx.config, app_ctx.key_context(), to=to, lock_wait=wait)
    if app_ctx.json:
        emit_json(result)
    else:
        info(f"Master key moved from {result['from']} to {result['to']}: new key {result['new_master_key_id']}, "
             f"{result['data_keys']} data key(s) re-wrapped; old key {result['old_master_key_id']} destroyed", quiet=app_ctx.quiet)


@app.command("public-key")
def public_key(
    ctx: typer.Context,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the public key to this file instead of stdout.")] = None,
    json: JsonOpt = False,
) -> None:
    """The installation's signing public key (signing.pub): pin it for audit verify --public-key and vault restore --signer."""
    from zerotrust_admin import fsutil
    from zerotrust_admin.signing import ALGORITHM

    app_ctx = app_context(ctx, json)
    if output is not None:
        app_ctx.config.check_output(output)  # never over the tool's own files, signing.pub included (F1/F3)
    public = app_ctx.audit.ensure_signing_key(app_ctx.actor).public
    if output is not None:
        fsutil.write_private_file(output, public.text().encode("ascii"))
    if app_ctx.json:
        emit_json({"key_id": public.key_id, "public_key": public.text().split()[1], "algorithm": ALGORITHM, **({"output": str(output)} if output else {})})
    elif output is None:
        print(public.text(), end="")
    else:
        info(f"wrote signing public key {public.key_id} to {output}", quiet=app_ctx.quiet)
