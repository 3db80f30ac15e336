"""``rotate-keys``: rotate what the schedule says is due (the cron line), or force."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, info, suggest_wait, table


def rotate_keys(
    ctx: typer.Context,
    master: Annotated[bool, typer.Option("--master", help="Rotate the master key now (re-wraps the data keys only).")] = False,
    dek: Annotated[bool, typer.Option("--dek", help="Rotate the data key now (re-encrypts every secret version in batches).")] = False,
    session: Annotated[bool, typer.Option("--session", help="Rotate the session signing key now (the previous one keeps verifying).")] = False,
    provider: Annotated[bool, typer.Option("--provider", help="Rotate the external secret provider's key now (AWS KMS, Vault transit) where it allows it.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Rotate every key now (with an external provider, its key too).")] = False,
    wait: Annotated[float, typer.Option("--wait", min=0, metavar="SECONDS", help="Seconds to wait for another running rotation instead of exiting 7.")] = 0.0,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Rotate the keys that are due (encryption.rotation: master 90 d, data keys 30 d, session keys 24 h). Nothing due is success (exit 0)."""
    with suggest_wait():
        _rotate_keys(ctx, master, dek, session, provider, all_, wait, dry_run, json)


def _rotate_keys(ctx, master, dek, session, provider, all_, wait, dry_run, json) -> None:
    from zerotrust_admin.rotation.run import rotate_keys as run

    app_ctx = app_context(ctx, json)
    force = {"master", "dek", "session"} if all_ else {k for k, on in (("master", master), ("dek", dek), ("session", session)) if on}
    for kind in sorted(force or {"master", "dek", "session"}):
        app_ctx.authorize("rotate", f"keys/{kind}")
    config = app_ctx.config
    external = config.provider != "local"
    result = {"dry_run": dry_run, "plan": [], "rotated": [], "nothing_due": True}
    if not external or config.vault_path.exists():  # an external provider may run without the integrated vault
        with _progress(enabled=not app_ctx.json and not app_ctx.quiet and sys.stderr.isatty()) as progress:
            result = run(app_ctx.vault(), config, app_ctx.key_context(), force=force, dry_run=dry_run, progress=progress, lock_wait=wait)
    if external and (provider or all_):
        from zerotrust_admin.rotation.run import rotate_provider

        outcome = rotate_provider(app_ctx.provider(), config, dry_run=dry_run, lock_wait=wait)
        if outcome:
            result["provider"] = outcome
            result["nothing_due"] = False
    elif provider:
        from zerotrust_admin.errors import UsageError

        raise UsageError("--provider needs an external secrets.provider (the integrated vault's keys rotate with --master/--dek)")
    if app_ctx.json:
        emit_json(result)
        return
    if dry_run:
        table("Rotation plan (dry run)", ["KIND", "KEY", "CREATED", "DUE", "ACTION"],
              ([i["kind"], i["key_id"] or "-", i["created"] or "-", i["due_at"] or "-", ("rotate: " if i["action"] else "skip: ") + i["reason"]]
               for i in result["plan"]), keep=("KEY",), drop=("CREATED",))
        return
    if result.get("provider"):
        p = result["provider"]
        info(f"provider key {p.get('key_id', '')}: {p.get('action', 'done')}", quiet=app_ctx.quiet)
    if result["nothing_due"]:
        info("Nothing due: every key is within its rotation period.", quiet=app_ctx.quiet)
        return
    for r in result["rotated"]:
        if r["kind"] == "master":
            info(f"master key rotated ({r['reason']}): {r['old_master_key_id']} -> {r['new_master_key_id']}, {r['data_keys']} data key(s) re-wrapped", quiet=app_ctx.quiet)
        elif r["kind"] == "dek":
            info(f"data key rotated ({r['reason']}): new {r['new_dek_id']}, {r['reencrypted']} version(s) re-encrypted, retired {', '.join(r['retired_dek_ids']) or '-'}", quiet=app_ctx.quiet)
        else:
            info(f"session key rotated ({r['reason']}): new {r['new_key_id']}, previous {r['previous_key_id'] or '-'}", quiet=app_ctx.quiet)


class _progress:
    """A rich progress bar on a terminal; a no-op callback otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._bar = None
        self._task = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress("re-encrypting", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.__enter__()

        def update(done: int, total: int) -> None:
            if self._task is None:
                self._task = self._bar.add_task("dek", total=total)
            self._bar.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
