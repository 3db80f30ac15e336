"""``revoke-credentials``: purge a user's cached AWS credentials, deny their
already-issued STS sessions on the roles, and revoke their sessions."""

from __future__ import annotations

import sys
from typing import Annotated, List, Optional

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, YesOpt, app_context
from zerotrust_admin.cli.output import confirm, emit_json, info, warn
from zerotrust_admin.errors import UsageError, ZeroTrustError


def revoke_credentials(
    ctx: typer.Context,
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="The principal whose credentials to revoke.")] = None,
    role_arn: Annotated[Optional[List[str]], typer.Option("--role-arn", metavar="ARN", help="Role to put the deny policy on (repeatable; default: every role in aws.roles).")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Deny every session issued before now (the console's AWSRevokeOlderSessions policy).")] = False,
    keep_sessions: Annotated[bool, typer.Option("--keep-sessions", help="Leave the user's sessions in the session store alone.")] = False,
    reason: Annotated[Optional[str], typer.Option("--reason", "-r", help="Why (goes to the audit record and the notifications).")] = None,
    notify: Annotated[Optional[bool], typer.Option("--notify/--no-notify", help="Send breach notifications (default: security.breach_notification.enabled).")] = None,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    json: JsonOpt = False,
) -> None:
    """Revoke a user's AWS credentials: cache, issued STS sessions, and sessions.

    Purges the user's cached credentials, puts an inline role policy denying
    their sessions issued before now (merged with earlier revocations), and
    revokes their sessions. --dry-run prints the exact policy JSON, changing nothing."""
    from zerotrust_admin.aws.revoke import compact, iso, revoke_credentials as run

    app_ctx = app_context(ctx, json)
    if all_users == (user is not None):
        raise UsageError("give exactly one of --user U or --all-users")
    app_ctx.authorize("revoke", f"credentials/{user or 'all'}")
    if not dry_run:
        what = "of ALL users" if all_users else f"of {user}"
        roles = ", ".join(role_arn) if role_arn else "every role in aws.roles"
        if not sys.stdin.isatty() and not yes:
            raise UsageError("revoke-credentials changes IAM policies and stdin is not a terminal", hint="pass --yes to confirm non-interactively (or --dry-run)")
        if not confirm(f"Revoke the AWS credentials {what} on {roles}?", yes=yes):
            info("nothing revoked")
            raise typer.Exit(1)
    try:
        report = run(app_ctx, user=user, role_arns=role_arn or None, all_users=all_users, keep_sessions=keep_sessions,
                     dry_run=dry_run, reason=reason, notify=notify)
    except ZeroTrustError as exc:
        partial = getattr(exc, "report", None)
        if partial is not None and app_ctx.json:
            emit_json(partial.to_dict())
        raise
    if app_ctx.json:
        emit_json(report.to_dict())
    elif dry_run:
        for plan in report.roles:
            info(f"# would put inline policy {plan.policy_name} on {plan.role_arn} ({len(compact(plan.document))} characters):", quiet=app_ctx.quiet)
            print(compact(plan.document))
        info("nothing changed (dry run)", quiet=app_ctx.quiet)
    else:
        who = "every user" if all_users else user
        print(f"Denied sessions of {who} issued before {iso(report.cutoff)} on {sum(1 for r in report.roles if r.ok)} role(s); "
              f"purged {report.cache_purged or 0} cached credential(s); "
              + ("sessions kept." if keep_sessions else f"revoked {report.sessions_revoked or 0} session(s)."))
    for n in report.notifications:
        if n.ok:
            info(f"notified {n.channel}", quiet=app_ctx.quiet or app_ctx.json)
        else:
            warn(f"notification via {n.channel} failed after {n.attempts} attempt(s): {n.error}; the revocation stands")
