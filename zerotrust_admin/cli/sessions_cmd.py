"""``sessions``: list and create (break-glass) sessions in the session store."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, info, table, warn

app = typer.Typer(help="Inspect and create sessions in the session store (sqlite by default, or Redis).", no_args_is_help=True)

COLUMNS = ["ID", "USER", "CREATED", "EXPIRES", "SOURCE IP", "STATE"]


@app.command("list")
def list_sessions(
    ctx: typer.Context,
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="Only this principal's sessions (uses the per-user index).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many sessions.")] = None,
    json: JsonOpt = False,
) -> None:
    """List live sessions, with their state (active, or revoked by a marker)."""
    from zerotrust_admin.sessions.listing import list_with_state

    app_ctx = app_context(ctx, json)
    rows = list_with_state(app_ctx.session_store(), user=user, limit=limit)
    if app_ctx.json:
        emit_json([{**s.to_dict(), "state": state} for s, state in rows])
        return
    table(None, COLUMNS, ([s.id, s.user, s.to_dict()["created_at"], s.to_dict()["expires_at"], s.source_ip or "", state] for s, state in rows),
          highlight=lambda row: "red" if row[-1] == "revoked" else None, keep=("ID", "USER"), drop=("SOURCE IP", "CREATED", "EXPIRES"))
    if not rows:
        info("no live sessions" + (f" for {user}" if user else ""), quiet=app_ctx.quiet)


def principal_notes(user: str) -> list[str]:
    """What looks wrong in a Kerberos principal (realms are case-sensitive)."""
    name, at, realm = user.rpartition("@")
    if not at:
        return [f"principal {user!r} has no realm; the broker sees user@REALM (e.g. {user}@EXAMPLE.COM), so this session matches no ticket"]
    if realm != realm.upper():
        return [f"realm {realm!r} of {user!r} is not upper case; Kerberos realms are case-sensitive and usually upper case "
                f"({name}@{realm.upper()} is a different principal)"]
    return []


@app.command("create")
def create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="The principal the session belongs to, e.g. alice@EXAMPLE.COM.")],
    ttl: Annotated[Optional[str], typer.Option("--ttl", help="Lifetime: 8h, 30m, 1d (default: sessions.default_ttl, 8h).")] = None,
    source_ip: Annotated[Optional[str], typer.Option("--source-ip", help="Client address recorded with the session.")] = None,
    json: JsonOpt = False,
) -> None:
    """Create a session (break-glass access and tests). Audited."""
    from zerotrust_admin.sessions.base import check_user
    from zerotrust_admin.sessions.listing import create_session

    app_ctx = app_context(ctx, json)
    app_ctx.authorize("create", f"sessions/{check_user(user)}")  # threat-model row P2
    for note in principal_notes(user):
        warn(note)
    session = create_session(app_ctx.session_store(), app_ctx.config, user=user, ttl=ttl, source_ip=source_ip, audit=app_ctx.audit, actor=app_ctx.actor)
    if app_ctx.json:
        emit_json(session.to_dict())
    else:
        print(session.id)
        info(f"Created session for {session.user}, expires {session.to_dict()['expires_at']}", quiet=app_ctx.quiet)
