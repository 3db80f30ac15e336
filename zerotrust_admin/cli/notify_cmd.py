"""``notify``: test and list the breach-notification channels."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, table, warn
from zerotrust_admin.errors import UnavailableError

app = typer.Typer(help="Breach notifications: list the channels, send a test.", no_args_is_help=True)


@app.command("test")
def test(
    ctx: typer.Context,
    channel: Annotated[Optional[str], typer.Option("--channel", "-C", help="Only this channel (its kind or its name).")] = None,
    json: JsonOpt = False,
) -> None:
    """Send a test message through each configured channel (or --channel C). Exit 6 if one fails."""
    from zerotrust_admin.notify.testing import send_test

    app_ctx = app_context(ctx, json)
    app_ctx.authorize("notify", f"notify/{channel or 'all'}")  # threat-model row P2
    results = send_test(app_ctx.config, only=channel, audit=app_ctx.audit, actor=app_ctx.actor)
    if app_ctx.json:
        emit_json([r.to_dict() for r in results])
    else:
        table(None, ["CHANNEL", "KIND", "RESULT", "ATTEMPTS", "SECONDS", "ERROR"],
              ([r.channel, r.kind, "ok" if r.ok else "FAILED", r.attempts, f"{r.elapsed:.2f}", r.error or ""] for r in results),
              highlight=lambda row: "red" if row[2] == "FAILED" else None)
    failed = [r.channel for r in results if not r.ok]
    if failed:
        if app_ctx.json:
            raise typer.Exit(6)
        raise UnavailableError(f"notification channel(s) failed: {', '.join(failed)}", hint="see the ERROR column; check the endpoint and credentials")


@app.command("channels")
def channels(ctx: typer.Context, json: JsonOpt = False) -> None:
    """List the configured channels (no secrets)."""
    from zerotrust_admin.notify import enabled, open_channels

    app_ctx = app_context(ctx, json)
    chans = open_channels(app_ctx.config)
    if app_ctx.json:
        emit_json({"enabled": enabled(app_ctx.config), "channels": [{"name": c.name, "kind": c.kind, "target": c.describe()} for c in chans]})
        return
    table(None, ["NAME", "KIND", "TARGET"], ([c.name, c.kind, c.describe()] for c in chans))
    if not enabled(app_ctx.config):
        warn("security.breach_notification.enabled is false: revocations do not notify unless --notify is given")
