"""``access``: explain which policy rule allows or denies an operation."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, escape_text, table

app = typer.Typer(help="Explain and list access policies (access.policies).", no_args_is_help=True)


@app.command("check")
def check(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret name or resource, e.g. app/db/password or keys/master.")],
    action: Annotated[str, typer.Option("--action", "-a", help="read, write, delete, rotate, revoke, report, list, mfa, backup, restore, create or notify.")],
    principal: Annotated[Optional[str], typer.Option("--principal", "-p", help="Who (default: the current operator).")] = None,
    source_ip: Annotated[Optional[str], typer.Option("--source-ip", help="From where (default: this session's source IP).")] = None,
    json: JsonOpt = False,
) -> None:
    """Say whether PRINCIPAL may do ACTION on NAME and which rule decided (exit 0 allowed, 4 denied)."""
    from zerotrust_admin.access import explain

    from zerotrust_admin.identity import check_principal, source_ip_info

    app_ctx = app_context(ctx, json)
    # How sure we are of who and where (threat model I1): a --principal is a what-if, never proven.
    if principal:
        who = check_principal(principal, "--principal")
        identity = {"principal": who, "assurance": "claimed", "source": "--principal", "detail": "given on the command line (what-if)"}
    else:
        who = app_ctx.actor.user
        identity = app_ctx.identity.to_dict()
    where, origin = (source_ip, "--source-ip") if source_ip else source_ip_info()
    result = explain(app_ctx.config, who, action, name, where)
    result["identity"] = identity
    result["source_ip_origin"] = {"source": origin, "assurance": "claimed" if origin != "host" else "host"}
    if app_ctx.json:
        emit_json(result)
    else:
        verdict = "ALLOW" if result["allowed"] else "DENY"
        print(f"{verdict}: {escape_text(who)} {action} {escape_text(name)} from {escape_text(where)}")
        print(f"  {escape_text(result['reason'])}")
        print(f"  identity: {identity['assurance']} ({escape_text(identity['detail'])})")
        print(f"  source address: {'claimed (from ' + origin + ')' if origin != 'host' else 'this host'}")
    if not result["allowed"]:
        raise typer.Exit(4)


@app.command("policies")
def policies(ctx: typer.Context, json: JsonOpt = False) -> None:
    """List the configured rules in evaluation order (the first matching deny wins)."""
    from zerotrust_admin.access import load_policies

    app_ctx = app_context(ctx, json)
    rules = load_policies(app_ctx.config)
    if app_ctx.json:
        emit_json([r.to_dict() for r in rules])
        return
    if not rules:
        print("no access policies configured: every operator may do everything file permissions allow")
        return
    table(None, ["#", "EFFECT", "PRINCIPALS", "SECRETS", "ACTIONS", "SOURCE CIDRS"],
          ([r.index, r.effect, ",".join(r.principals), ",".join(r.resources), ",".join(r.actions), ",".join(map(str, r.networks)) or "any"] for r in rules),
          keep=("PRINCIPALS", "SECRETS"))
