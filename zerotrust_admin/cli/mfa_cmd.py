"""``mfa``: enrol a TOTP authenticator, show the enrolment, verify a code."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, YesOpt, app_context
from zerotrust_admin.cli.otp_input import code_source
from zerotrust_admin.cli.output import confirm, emit_json, info, warn

app = typer.Typer(help="Multi-factor authentication (TOTP) for sensitive secrets.", no_args_is_help=True)

OtpStdinOpt = Annotated[bool, typer.Option("--otp-stdin", help="Read the MFA code from the first line of stdin (for scripts).")]


def _store(app_ctx):
    from zerotrust_admin.mfa import MfaPolicy, MfaStore

    return MfaStore(app_ctx.vault(), app_ctx.config.home, MfaPolicy.from_config(app_ctx.config))


def _qr(uri: str) -> bool:
    try:
        import segno
    except ImportError:
        return False
    segno.make(uri, error="m").terminal(out=sys.stdout, compact=True)
    return True


@app.command("enroll")
def enroll(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing enrolment (the old authenticator stops working).")] = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Create a TOTP seed for you and show it as an otpauth:// URI and a QR code."""
    app_ctx = app_context(ctx, json)
    store = _store(app_ctx)
    principal = app_ctx.actor.user
    enrolled = store.is_enrolled(principal)
    if dry_run:
        plan = {"principal": principal, "dry_run": True, "already_enrolled": enrolled, "would_replace": enrolled and force}
        emit_json(plan) if app_ctx.json else info(f"Would {'replace the' if enrolled else 'create an'} MFA enrolment for {principal}")
        return
    if enrolled and force and not confirm(f"Replace the MFA enrolment of {principal}? The old authenticator stops working.", yes=yes):
        raise typer.Exit(1)
    try:
        result = store.enroll(principal, replace=force)
    except Exception as exc:
        app_ctx.audit.append(event="mfa", action="enroll", resource=f"principal:{principal}", success=False, actor=app_ctx.actor, error=type(exc).__name__)
        raise
    app_ctx.audit.append(event="mfa", action="enroll", resource=f"principal:{principal}", success=True, actor=app_ctx.actor, replaced=result.replaced)
    if app_ctx.json:
        emit_json(result.to_dict())
        return
    if sys.stdout.isatty() and not _qr(result.uri):
        warn("install 'segno' to see a QR code; add the URI below to your authenticator instead")
    print(result.uri)
    info(f"Enrolled {principal}: scan the QR code or add the URI to an authenticator app, then check it with: zerotrust-admin mfa verify", quiet=app_ctx.quiet)


@app.command("status")
def status(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Show whether you are enrolled, when a code was last used, and any lockout."""
    from zerotrust_admin.lockout import Lockout
    from zerotrust_admin.secret import memory_lock_status

    app_ctx = app_context(ctx, json)
    principal = app_ctx.actor.user
    result = _store(app_ctx).status(principal)
    result["lockout"] = Lockout.for_config(app_ctx.config).state(principal).to_dict()
    result["memory_lock"] = memory_lock_status()
    if app_ctx.json:
        emit_json(result)
        return
    print(f"principal: {principal}")
    print(f"enrolled:  {'yes, since ' + str(result['enrolled_at']) if result['enrolled'] else 'no (run: zerotrust-admin mfa enroll)'}")
    lock = result["lockout"]
    print(f"lockout:   {'locked until ' + lock['locked_until'] if lock['locked_until'] else 'none'} ({lock['recent_failures']} recent failure(s))")


@app.command("verify")
def verify(ctx: typer.Context, otp_stdin: OtpStdinOpt = False, json: JsonOpt = False) -> None:
    """Check a code from your authenticator (it is consumed: codes are single-use)."""
    from zerotrust_admin.mfa import require_mfa

    app_ctx = app_context(ctx, json)
    principal = app_ctx.actor.user
    require_mfa(app_ctx.config, _store(app_ctx), app_ctx.actor, app_ctx.audit, f"principal:{principal}", code_source(otp_stdin))
    emit_json({"principal": principal, "verified": True}) if app_ctx.json else info(f"MFA code accepted for {principal}", quiet=app_ctx.quiet)
