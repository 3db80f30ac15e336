"""``audit``: tail and verify the tamper-evident audit log."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, emit_json_line, table
from zerotrust_admin.errors import IntegrityError

app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)

COLUMNS = ["SEQ", "TIMESTAMP", "USER", "EVENT", "ACTION", "RESOURCE", "OK"]


def _row(r: dict) -> list:
    return [r.get("seq"), r.get("timestamp"), r.get("user"), r.get("event"), r.get("action"), r.get("resource"), "yes" if r.get("success") else "NO"]


@app.command("tail")
def tail(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many records.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new records as they are written.")] = False,
    json: JsonOpt = False,
) -> None:
    """Show the last records of the audit log."""
    app_ctx = app_context(ctx, json)
    log = app_ctx.audit
    records = log.tail(lines)
    if app_ctx.json or follow:
        for r in records:
            emit_json_line(r) if app_ctx.json else sys.stdout.write("\t".join(map(str, _row(r))) + "\n")
    else:
        table(None, COLUMNS, (_row(r) for r in records), highlight=lambda row: "red" if row[-1] == "NO" else None)
    if follow:
        _follow(log, records[-1]["seq"] if records else 0, app_ctx.json)


def _follow(log, last_seq: int, as_json: bool) -> None:
    sys.stdout.flush()
    try:
        while True:
            time.sleep(1.0)
            for r in log.records():
                if r.get("seq", 0) > last_seq:
                    last_seq = r["seq"]
                    emit_json_line(r) if as_json else sys.stdout.write("\t".join(map(str, _row(r))) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return


@app.command("verify")
def verify(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Check the hash chain: exit 5 naming the first bad record if anything was edited, deleted or reordered."""
    app_ctx = app_context(ctx, json)
    result = app_ctx.audit.verify()
    if app_ctx.json:
        emit_json({**result.to_dict(), "path": str(app_ctx.audit.path)})
        if not result.ok:
            raise typer.Exit(5)
        return
    if not result.ok:
        raise IntegrityError(f"audit log {app_ctx.audit.path}: first bad record {result.first_bad_seq}: {result.problem}",
                             hint="preserve the file as evidence; compare with your SIEM copy")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"OK: {result.records} records, chain intact ({app_ctx.audit.path})")
