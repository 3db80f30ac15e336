"""``vault``: put, get, list, history, delete, undelete, import, export, migrate.

Every command goes through the configured secret provider (``AppContext.provider()``):
the integrated vault by default, or HashiCorp Vault, AWS Secrets Manager, Azure Key Vault."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, YesOpt, app_context
from zerotrust_admin.cli.completion import complete_secret_name
from zerotrust_admin.cli.context import AppContext
from zerotrust_admin.cli.output import confirm, emit_json, info, table, warn
from zerotrust_admin.cli.vault_get import run_get
from zerotrust_admin.errors import UsageError

app = typer.Typer(help="Store and read secrets (the configured provider; the integrated vault by default).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Secret name: letters, digits, . _ - /; e.g. db/password.", autocompletion=complete_secret_name)]


# --- get (the body is shared with the fast path) ---------------------------
@app.command("get")
def get(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[Optional[int], typer.Option("--version", "-V", min=1, metavar="N", help="Read this version instead of the current one.")] = None,
    output_file: Annotated[Optional[str], typer.Option("--output-file", "-o", help="Write the value to this file (mode 0600) instead of stdout.")] = None,
    otp_stdin: Annotated[bool, typer.Option("--otp-stdin", help="Read the MFA code for a sensitive secret from stdin (else $ZEROTRUST_OTP or a prompt).")] = False,
    json: JsonOpt = False,
) -> None:
    """Print a secret's value to stdout, byte for byte (binary-safe)."""
    app_ctx = app_context(ctx, json)
    app_ctx.otp_stdin = otp_stdin
    run_get(app_ctx, name, version, output_file, app_ctx.json)


# --- put -----------------------------------------------------------------------
def _read_value(value: str | None, value_file: str | None) -> bytes:
    if value is not None and value_file is not None:
        raise UsageError("give the value once: --value or --value-file, not both")
    if value_file is not None:
        if value_file == "-":
            return sys.stdin.buffer.read()
        try:
            return Path(value_file).read_bytes()
        except FileNotFoundError:
            raise UsageError(f"value file {value_file} does not exist") from None
        except IsADirectoryError:
            raise UsageError(f"value file {value_file} is a directory") from None
        except PermissionError:
            raise UsageError(f"cannot read value file {value_file}: permission denied") from None
    if value is not None:
        warn("--value puts the secret in the process list and shell history; prefer stdin or --value-file")
        return value.encode("utf-8")
    if not sys.stdin.isatty():
        return sys.stdin.buffer.read()
    from zerotrust_admin.cli.terminal import ask_hidden

    first = ask_hidden("Secret value: ")
    second = ask_hidden("Secret value (again): ")
    if first != second:
        raise UsageError("the two values do not match; nothing was written", hint="type the same value twice, or pipe it on stdin")
    return first.encode("utf-8")


def _check_size(name: str, data: bytes) -> None:
    """The vault's limits, said with the limits in the message (1 byte to 1 MiB)."""
    from zerotrust_admin.vault.records import MAX_VALUE_BYTES

    if not data:
        raise UsageError(f"the value for {name} is empty; a secret is 1 byte to 1 MiB",
                         hint="pipe the value on stdin (printf '%s' \"$VALUE\" | zerotrust-admin vault put NAME) or use --value-file FILE; nothing was written")
    if len(data) > MAX_VALUE_BYTES:
        raise UsageError(f"the value for {name} is {len(data)} bytes; the limit for a secret is 1 MiB ({MAX_VALUE_BYTES} bytes)",
                         hint="store a large file elsewhere and keep its key here; nothing was written")


def _parse_meta(pairs: list[str] | None) -> dict:
    meta = {}
    for pair in pairs or []:
        key, sep, val = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta {pair!r} is not KEY=VALUE")
        meta[key] = val
    return meta


@app.command("put")
def put(
    ctx: typer.Context,
    name: NameArg,
    value_file: Annotated[Optional[str], typer.Option("--value-file", help="Read the value from this file ('-' for stdin); binary-safe.")] = None,
    value: Annotated[Optional[str], typer.Option("--value", help="The value itself (visible in argv and shell history: avoid).")] = None,
    meta: Annotated[Optional[List[str]], typer.Option("--meta", "-m", metavar="KEY=VALUE", help="Metadata KEY=VALUE (repeatable); never secret.")] = None,
    sensitive: Annotated[bool, typer.Option("--sensitive", help="Mark the secret sensitive (reads need MFA).")] = False,
    json: JsonOpt = False,
) -> None:
    """Store a new version of a secret. The value comes from stdin, --value-file, or a hidden prompt."""
    from zerotrust_admin.importplan import check_new_name

    app_ctx = app_context(ctx, json)
    check_new_name(name)
    metadata = _parse_meta(meta)
    data = _read_value(value, value_file)
    _check_size(name, data)
    version = app_ctx.provider().put(name, data, metadata=metadata, sensitive=sensitive)
    if app_ctx.json:
        emit_json(version.to_dict())
    else:
        info(f"Stored {name} version {version.version} ({version.size} bytes)", quiet=app_ctx.quiet)


@app.command("list")
def list_(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="Only names starting with this prefix, e.g. app/.")] = "",
    deleted: Annotated[bool, typer.Option("--deleted", help="Include soft-deleted secrets.")] = False,
    json: JsonOpt = False,
) -> None:
    """List secret names with their current version; never values."""
    app_ctx = app_context(ctx, json)
    items = list(app_ctx.provider().list(prefix, include_deleted=deleted))
    if app_ctx.json:
        emit_json([i.to_dict() for i in items])
        return
    table(None, ["NAME", "VERSION", "UPDATED", "FLAGS"],
          ([i.name, i.current_version, i.updated, ",".join(f for f, on in (("sensitive", i.sensitive), ("deleted", i.deleted_at)) if on)] for i in items), keep=("NAME",), drop=("UPDATED",))


@app.command("history")
def history(ctx: typer.Context, name: NameArg, json: JsonOpt = False) -> None:
    """List the versions of a secret: who wrote each and when; never values."""
    app_ctx = app_context(ctx, json)
    versions = app_ctx.provider().history(name)
    if app_ctx.json:
        emit_json([v.to_dict() for v in versions])
        return
    table(name, ["VERSION", "CREATED", "BY", "SIZE", "CURRENT"],
          ([v.version, v.created, v.created_by, v.size, "*" if v.current else ""] for v in versions), keep=("BY",), drop=("SIZE",))


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: NameArg,
    destroy: Annotated[bool, typer.Option("--destroy", help="Purge every version for good (not recoverable).")] = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Soft-delete a secret (recoverable with 'vault undelete'); --destroy purges all versions."""
    app_ctx = app_context(ctx, json)
    vault = app_ctx.provider()
    current = vault.info(name)
    mode = "destroy" if destroy else "soft"
    if dry_run:
        result = {"name": name, "mode": mode, "dry_run": True, "versions": current.current_version}
        emit_json(result) if app_ctx.json else info(f"Would {'destroy all versions of' if destroy else 'soft-delete'} {name}")
        return
    question = f"Destroy every version of {name}? This cannot be undone." if destroy else f"Delete {name}? (recoverable with: zerotrust-admin vault undelete {name})"
    if not confirm(question, yes=yes):  # without a terminal: --yes, as the option's help says
        raise typer.Exit(1)
    count = vault.destroy(name) if destroy else (vault.delete(name) or 0)
    if app_ctx.json:
        emit_json({"name": name, "mode": mode, "versions_destroyed": count if destroy else 0})
    else:
        info(f"Destroyed {count} version(s) of {name}" if destroy else f"Deleted {name} (recover with: zerotrust-admin vault undelete {name})", quiet=app_ctx.quiet)


@app.command("undelete")
def undelete(ctx: typer.Context, name: NameArg, json: JsonOpt = False) -> None:
    """Recover a soft-deleted secret."""
    app_ctx = app_context(ctx, json)
    provider = app_ctx.provider()
    if not provider.info(name).deleted_at:  # a live secret: nothing to restore, and say so
        emit_json({"name": name, "restored": False, "deleted": False}) if app_ctx.json else info(f"{name} is not deleted; nothing changed", quiet=app_ctx.quiet)
        return
    provider.undelete(name)
    emit_json({"name": name, "restored": True}) if app_ctx.json else info(f"Restored {name}", quiet=app_ctx.quiet)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A .env or .json file ('-' for stdin, with --format).")],
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="env or json (default: from the file name).")] = None,
    skip_empty: Annotated[bool, typer.Option("--skip-empty", help="Leave out KEY= entries (empty values cannot be stored) instead of refusing the file.")] = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Import many secrets from .env or JSON; unchanged values are skipped, so re-running is safe.

    Values must be non-empty and at most 1 MiB. A KEY= line is refused, naming
    its line, unless --skip-empty. --dry-run checks everything the real run
    checks (names, values, access policies) and writes nothing."""
    from zerotrust_admin.importplan import plan_import
    from zerotrust_admin.vault import bulk

    app_ctx = app_context(ctx, json)
    kind = bulk.detect_format(file, fmt)
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    plan = plan_import(raw, kind, file, skip_empty=skip_empty)  # the same checks for the dry run and the real one
    for line in plan.warnings():
        warn(line)
    provider = app_ctx.provider()
    if dry_run:
        _check_import_allowed(app_ctx, plan.names)
        result = {"dry_run": True, **plan.to_dict()}
        emit_json(result) if app_ctx.json else info(f"Would import {len(plan.items)} secrets from {file}; nothing written (dry run)")
        return
    try:
        with _progress(f"importing {Path(file).name}", enabled=not app_ctx.json and not app_ctx.quiet and len(plan.items) >= 1000, total=len(plan.items)) as tick:
            outcome = provider.import_many(plan.items, source=file, progress=(lambda done: tick(done, len(plan.items))) if tick else None)
    except KeyboardInterrupt:
        if app_ctx.config.provider != "local":
            raise  # an external provider is written item by item: "interrupted", no promise
        from zerotrust_admin.errors import ZeroTrustError

        err = ZeroTrustError("interrupted; nothing imported (the import is one transaction)")
        err.exit_code = 130
        raise err from None
    if app_ctx.json:
        emit_json({**outcome.to_dict(), **({"skipped_empty": plan.skipped_empty} if plan.skipped_empty else {})})
    else:
        info(f"Imported from {file}: {outcome.created} created, {outcome.updated} updated, {outcome.unchanged} unchanged", quiet=app_ctx.quiet)
        if outcome.compared is False and sys.stderr.isatty():  # threat model P3: why nothing is "unchanged"
            info("values not compared: you may not read them; every item was written as a new version", quiet=app_ctx.quiet)


def _check_import_allowed(app_ctx: AppContext, names: list[str]) -> None:
    """The real run's ``write`` check on every name (a denial is audited, as
    in the real run; an allowed name writes nothing)."""
    for name in names:
        app_ctx.access_guard.authorize("write", name)


@app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="env or json.")] = "json",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to this file (mode 0600) instead of stdout.")] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="Only secrets whose names start with this.")] = "",
    yes: YesOpt = False,
    json: Annotated[bool, typer.Option("--json", help="Without --output: the same as --format json. With --output: a JSON summary on stdout.")] = False,
) -> None:
    """Export current secret values in plaintext (.env or JSON). Needs --yes without a terminal."""
    from zerotrust_admin import fsutil
    from zerotrust_admin.vault import bulk

    app_ctx = app_context(ctx, json)
    if app_ctx.json and not output:
        if fmt not in ("json", ".json"):
            raise UsageError(f"--json writes the export as JSON; it cannot be combined with --format {fmt}")
    if output:
        app_ctx.config.check_output(output)  # never over the tool's own files (F1/F3)
    kind = bulk.detect_format("", fmt)
    where = output or "standard output"
    if not confirm(f"Export secret values in plaintext to {where}?", yes=yes):
        raise typer.Exit(1)
    items = []
    for name, secret, _meta in app_ctx.provider().export_all(prefix):
        with secret:
            items.append((name, secret.reveal()))
    text = bulk.format_env(items) if kind == "env" else bulk.format_json(items)
    if output:
        fsutil.write_private_file(Path(output), text.encode("utf-8"))
        if app_ctx.json:
            emit_json({"output": output, "format": kind, "secrets": len(items)})
        else:
            info(f"Exported {len(items)} secrets to {output}", quiet=app_ctx.quiet)
    else:
        sys.stdout.write(text)


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="Target provider: local, hashicorp, aws or azure (settings from secrets.targets.<name>).")],
    from_: Annotated[Optional[str], typer.Option("--from", help="Source provider (default: the configured secrets.provider).")] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="Only secrets whose names start with this.")] = "",
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Copy every secret (all versions where the target keeps versions) to another provider; re-running skips what is there."""
    from zerotrust_admin.providers.migrate import migrate as run_migrate

    app_ctx = app_context(ctx, json)
    source = app_ctx.provider(from_)
    target = app_ctx.provider(to)
    if not dry_run and not confirm(f"Copy secrets from {source.kind} to {target.kind}?", yes=yes):
        raise typer.Exit(1)
    with _progress(f"{source.kind} -> {target.kind}", enabled=not app_ctx.json and not app_ctx.quiet) as tick:
        result = run_migrate(source, target, dry_run=dry_run, prefix=prefix, progress=tick)
    if app_ctx.json:
        emit_json(result.to_dict())
    else:
        info(("Dry run: " if dry_run else "Migrated ") + result.summary(), quiet=app_ctx.quiet)
        for name in result.failures:
            warn(f"not copied: {name}")
    if result.failed:
        raise typer.Exit(1)


@app.command("recover")
def recover(
    ctx: typer.Context,
    interrupted: Annotated[bool, typer.Option("--interrupted", help="Accept the vault as it is after a write that was audited but never committed (a crash).")] = False,
    yes: YesOpt = False,
    json: JsonOpt = False,
) -> None:
    """After checking: accept the vault's generation when its last audited write was interrupted (audited; policy action 'restore')."""
    from zerotrust_admin.keys import open_configured_source
    from zerotrust_admin.vault import Vault

    if not interrupted:
        raise UsageError("say what to recover: --interrupted", hint="zerotrust-admin vault recover --interrupted")
    app_ctx = app_context(ctx, json)
    kctx = app_ctx.key_context()
    with Vault.open(app_ctx.config.vault_path, lambda kind, params: open_configured_source(kctx, kind, params),
                    audit=app_ctx.audit, actor=app_ctx.actor, interrupted_ok=True) as vault:
        app_ctx.authorize("restore", f"vault/{vault.vault_id}")
        pending, generation = vault._pending_generation()
        if pending <= generation:
            result = None
        else:
            if not confirm(f"The write of generation {pending} is not in the vault (generation {generation}); accept the vault as it is?", yes=yes):
                raise typer.Exit(1)
            result = vault.acknowledge_interrupted()
    if app_ctx.json:
        emit_json(result or {"vault_id": None, "interrupted": False})
    elif result is None:
        info("Nothing to recover: no interrupted write", quiet=app_ctx.quiet)
    else:
        info(f"Accepted vault generation {result['vault_generation']} (the write of generation {result['pending_generation']} was interrupted)", quiet=app_ctx.quiet)


class _progress:
    """A rich progress bar on stderr when it is a terminal; otherwise nothing."""

    def __init__(self, label: str, enabled: bool, total: int | None = None):
        self.label = label
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()
        self._bar = None
        self._task = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.__enter__()
        self._task = self._bar.add_task(self.label, total=self.total)

        def tick(done: int, total: int) -> None:
            self._bar.update(self._task, completed=done, total=total)

        return tick

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
