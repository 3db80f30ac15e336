"""``credentials get``: STS temporary credentials for the operator principal."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.credentials_get import run_get

app = typer.Typer(help="AWS STS temporary credentials for the operator principal (cached encrypted while valid).", no_args_is_help=True)


@app.command("get")
def get(
    ctx: typer.Context,
    role_arn: Annotated[str, typer.Option("--role-arn", metavar="ARN", help="The role to assume: arn:aws:iam::<account>:role/<name>.")],
    external_id: Annotated[Optional[str], typer.Option("--external-id", help="ExternalId for a cross-account role (default: aws.role_config / aws.external_id).")] = None,
    via: Annotated[Optional[List[str]], typer.Option("--via", metavar="ARN", help="Assume this role first (repeatable, in order): role chaining, capped at 1 hour.")] = None,
    duration: Annotated[Optional[int], typer.Option("--duration", metavar="SECONDS", help="Lifetime in seconds, 900-43200 (default: aws.duration_seconds, 3600).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="env (export lines), json, or process (AWS credential_process JSON).")] = "env",
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Always call STS; neither read nor write the cache.")] = False,
    json: JsonOpt = False,
) -> None:
    """Print STS temporary credentials for the operator principal.

    RoleSessionName and SourceIdentity are the principal, mapped as in
    docs/aws-credentials.md. Served from the encrypted cache while valid. Use
    --format process in ~/.aws/config:
    credential_process = zerotrust-admin credentials get --role-arn ARN --format process"""
    app_ctx = app_context(ctx, json)
    run_get(app_ctx, role_arn, external_id, list(via or []), duration, fmt, no_cache, app_ctx.json)
