"""``revoke-sessions``: revoke every session, one user's, or one session."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, YesOpt, app_context
from zerotrust_admin.cli.output import confirm, emit_json, info, suggest_wait, warn
from zerotrust_admin.errors import UnavailableError, UsageError, ZeroTrustError


def revoke_sessions(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Revoke every session of every user.")] = False,
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="Revoke every session of this principal.")] = None,
    session: Annotated[Optional[str], typer.Option("--session", help="Revoke this one session.")] = None,
    reason: Annotated[Optional[str], typer.Option("--reason", "-r", help="Why (goes to the audit record and the notifications).")] = None,
    notify: Annotated[Optional[bool], typer.Option("--notify/--no-notify", help="Send breach notifications (default: security.breach_notification.enabled).")] = None,
    strict_notify: Annotated[bool, typer.Option("--strict-notify", help="Exit 6 when a notification channel failed (the revocation stands).")] = False,
    wait_lock: Annotated[float, typer.Option("--wait", "--wait-lock", min=0, max=600, metavar="SECONDS", help="With --all: wait up to this many seconds for another run's lock (default: fail at once, exit 7). --wait-lock is the old name.")] = 0.0,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    json: JsonOpt = False,
) -> None:
    """Revoke sessions: --all, --user U or --session ID (exactly one).

    Deletes the sessions and sets a revocation marker the broker checks, so
    sessions created before the end of the run are refused too."""
    from zerotrust_admin.sessions.revoke import Target, plan, revoke_sessions as run

    app_ctx = app_context(ctx, json)
    chosen = [name for name, on in (("--all", all_), ("--user", user is not None), ("--session", session is not None)) if on]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --all, --user U, --session ID" + (f" (got {' '.join(chosen)})" if chosen else ""))
    target = Target("all" if all_ else "user" if user is not None else "session", None if all_ else (user if user is not None else session))
    app_ctx.authorize("revoke", f"sessions/{target.value or 'all'}")
    count = None
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise UsageError("revoke-sessions changes the session store and stdin is not a terminal", hint="pass --yes to confirm non-interactively (or --dry-run)")
        count = plan(app_ctx.session_store(), target).revoked
        what = {"all": f"ALL {count} sessions", "user": f"{count} sessions of {user}", "session": f"session {session}"}[target.scope]
        if not confirm(f"Revoke {what} in {app_ctx.session_store().describe()}?", yes=False):
            info("nothing revoked")
            raise typer.Exit(1)

    try:
        progress, done = _progress(app_ctx, target, count)
    except ZeroTrustError:  # the store is unreachable: let the revocation fail (and be audited) below
        progress, done = None, lambda: None
    try:
        with suggest_wait():
            report = run(app_ctx.session_store, target, config=app_ctx.config, audit=app_ctx.audit, actor=app_ctx.actor,
                         reason=reason, dry_run=dry_run, notify=notify, progress=progress, lock_wait=wait_lock)
    except ZeroTrustError as exc:
        done()
        partial = getattr(exc, "report", None)
        if partial is not None and app_ctx.json and partial.revoked:
            emit_json(partial.to_dict())
        raise
    done()

    if app_ctx.json:
        emit_json(report.to_dict())
    elif dry_run:
        print(f"Would revoke {report.revoked} session(s) ({target.resource}) in {report.store}; nothing changed.")
    else:
        print(f"Revoked {report.revoked} session(s) ({target.resource}) in {report.seconds:.2f}s.")
        if report.shards:  # --all on a Redis Cluster: what each master deleted
            print("Per master: " + ", ".join(f"{node} {count}" for node, count in sorted(report.shards.items())))
        if report.marker_at:
            from zerotrust_admin.sessions.base import Session

            cutoff = Session("x" * 8, "x", report.marker_at, report.marker_at).to_dict()["created_at"]
            info(f"Sessions {'of ' + user if user else 'of every user'} created at or before {cutoff} are refused by the broker.", quiet=app_ctx.quiet)
    for n in report.notifications:
        if n.ok:
            info(f"notified {n.channel} ({n.attempts} attempt{'s' if n.attempts > 1 else ''})", quiet=app_ctx.quiet or app_ctx.json)
        else:
            warn(f"notification via {n.channel} failed after {n.attempts} attempt(s): {n.error}; the revocation stands")
    strict = strict_notify or bool(app_ctx.config.get("security.breach_notification.strict"))
    if report.notify_failed and strict:
        raise UnavailableError("the sessions were revoked but a notification channel failed", hint="zerotrust-admin notify test; notify the team by hand")


def _progress(app_ctx, target, total: int | None):
    """A rich progress bar for --all on a terminal; otherwise nothing. ``total``:
    the count shown at the confirmation, else the store's cheap upper bound."""
    if target.scope != "all" or app_ctx.json or app_ctx.quiet or not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if total is None:
        total = app_ctx.session_store().estimate_count()
    bar = Progress(TextColumn("revoking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    task = bar.add_task("revoke", total=total or None)
    bar.start()
    return (lambda n: bar.advance(task, n)), bar.stop
