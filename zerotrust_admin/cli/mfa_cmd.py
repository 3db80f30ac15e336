"""``mfa``: enrol a TOTP authenticator, show the enrolment, verify a code."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, YesOpt, app_context
from zerotrust_admin.cli.otp_input import code_source
from zerotrust_admin.cli.output import confirm, emit_json, escape_text, info, warn

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
    force: Annotated[bool, typer.Option("--force", help="Replace an existing enrolment (the old authenticator stops working). Needs a current code, or the mfa policy action.")] = False,
    principal: Annotated[Optional[str], typer.Option("--principal", "-p", help="Enrol or reset someone else (needs the mfa policy action on mfa/<principal>).")] = None,
    otp_stdin: OtpStdinOpt = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Create a TOTP seed for you (or --principal) and show it as an otpauth:// URI and a QR code."""
    from zerotrust_admin.mfa import enrolment

    app_ctx = app_context(ctx, json)
    store = _store(app_ctx)
    if dry_run:
        plan = enrolment.plan(app_ctx.config, store, app_ctx.actor, principal, replace=force)
        emit_json(plan.to_dict()) if app_ctx.json else info(
            f"Would {'replace the' if plan.would_replace else 'create an'} MFA enrolment for {plan.principal} (needs: {plan.needs})")
        return
    who = enrolment.check_principal(principal) if principal is not None else app_ctx.actor.user
    if force and store.is_enrolled(who) and not confirm(f"Replace the MFA enrolment of {who}? The old authenticator stops working.", yes=yes):
        raise typer.Exit(1)
    result = enrolment.enroll(app_ctx.config, store, app_ctx.actor, app_ctx.audit, principal, replace=force, code_source=code_source(otp_stdin))
    if app_ctx.json:
        emit_json(result.to_dict())
        return
    if sys.stdout.isatty() and not _qr(result.uri):
        warn("install 'segno' to see a QR code; add the URI below to your authenticator instead")
    print(result.uri)
    if result.principal != app_ctx.actor.user:
        info(f"Enrolled {result.principal}: hand this URI to {result.principal} over a channel you trust (it is their second factor); "
             "they check it with: zerotrust-admin mfa verify", quiet=app_ctx.quiet)
        return
    info(f"Enrolled {result.principal}: scan the QR code or add the URI to an authenticator app, then check it with: zerotrust-admin mfa verify", quiet=app_ctx.quiet)


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
    print(f"principal: {escape_text(principal)}")
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
