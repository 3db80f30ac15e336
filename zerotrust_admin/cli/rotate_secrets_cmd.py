"""``rotate-secrets`` and ``secrets status``: the managed secrets (``secret_rotation:``)
rotated in their target systems. The work is ``zerotrust_admin.secret_rotation``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import DryRunOpt, JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, info, table

app = typer.Typer(help="The managed secrets (secret_rotation): inventory and rotation state.", no_args_is_help=True)

STATUS_COLUMNS = ["SECRET", "KIND", "VERSION", "AGE", "NEXT DUE", "EXPIRES", "STAGE", "LAST RESULT"]


def _vault(app_ctx):
    from zerotrust_admin.errors import UsageError

    if app_ctx.config.provider != "local":
        raise UsageError("rotate-secrets keeps the rotation state in the integrated vault; secrets.provider is " + app_ctx.config.provider,
                         hint="rotate managed secrets on an installation whose secrets.provider is local")
    return app_ctx.vault()


def rotate_secrets(
    ctx: typer.Context,
    secret: Annotated[Optional[list[str]], typer.Option("--secret", metavar="NAME", help="Rotate this managed secret now, due or not (repeatable).")] = None,
    wait: Annotated[float, typer.Option("--wait", min=0, metavar="SECONDS", help="Seconds to wait for another running rotation instead of exiting 7.")] = 0.0,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Rotate the managed secrets that are due (secret_rotation: Redis users, PostgreSQL roles, IAM keys, Kerberos keytabs, TLS certificates, random API keys) in their target systems; resume an interrupted rotation; retire previous credentials after their grace period. Nothing due is success (exit 0)."""
    from zerotrust_admin.errors import ZeroTrustError
    from zerotrust_admin.secret_rotation import rotate_secrets as run

    app_ctx = app_context(ctx, json)
    result = run(_vault(app_ctx), app_ctx.config, names=secret or None, dry_run=dry_run, authorize=app_ctx.authorize, lock_wait=wait)
    if app_ctx.json:
        emit_json(result)
    elif dry_run or result["nothing_due"]:
        table("Secret rotation plan (dry run)" if dry_run else None, ["SECRET", "KIND", "ACTION", "REASON", "DUE"],
              ([i["secret"], i["kind"], i["action"], i["reason"], _short(i["due_at"])] for i in result["plan"]))
        if not result["plan"]:
            info("No managed secrets: the configuration has no secret_rotation entries (docs/secret-rotation.md).", quiet=app_ctx.quiet)
        elif result["nothing_due"] and not dry_run:
            info("Nothing due: every managed secret is within its rotation period.", quiet=app_ctx.quiet)
    else:
        for r in result["results"]:
            if r["result"] == "done":
                what = {"retired": "previous credential retired" if r["action"] == "retire" else f"rotated to version {r.get('version')} (nothing to keep)",
                        "finished": f"rotated to version {r.get('version')}, previous kept until {_short(r.get('retire_after'))}"}
                info(f"{r['secret']} ({r['kind']}): {what.get(r['step'], r['step'])} [{', '.join(r['steps'])}]", quiet=app_ctx.quiet)
            else:
                info(f"{r['secret']} ({r['kind']}): FAILED after [{', '.join(r['steps']) or 'nothing'}]: {r['message']}", quiet=False)
    failed = [r for r in result.get("results", []) if r["result"] == "failed"]
    if failed:
        raise ZeroTrustError(f"{len(failed)} of {len(result['results'])} rotation(s) failed: {', '.join(r['secret'] for r in failed)}",
                             hint="see secrets status and the audit log (event secret_rotation); the next run resumes or retries them")


CERT_COLUMNS = ["SECRET", "SUBJECT", "NOT AFTER", "DAYS LEFT", "MANAGED", "STATE"]


@app.command("status")
def status(
    ctx: typer.Context,
    certificates: Annotated[bool, typer.Option("--certificates/--no-certificates",
                                               help="Also list every certificate in the vault, managed or not (reads every value you may read; one audit record).")] = True,
    json: JsonOpt = False,
) -> None:
    """Every managed secret: kind, version, age, next due, expiry (certificates), stage (current / pending / previous in grace), last result; then every certificate in the vault, managed or not, with its expiry. Overdue, expired and expiring ones are flagged."""
    from zerotrust_admin.access import decide
    from zerotrust_admin.rotation.schedule import describe_age
    from zerotrust_admin.secret_rotation import status as run

    app_ctx = app_context(ctx, json)
    config, actor = app_ctx.config, app_ctx.actor
    # Names the principal may not list are left out (names only: no value is read).
    rows = run(_vault(app_ctx), config, visible=lambda name: decide(config, actor.user, "list", name, actor.source_ip).allowed)
    certs = _certificates(app_ctx) if certificates else None
    if app_ctx.json:
        out = {"secrets": rows, "overdue": sum(1 for r in rows if r["overdue"])}
        if certs is not None:
            out.update(certificates=certs["certificates"], certificates_expired=sum(1 for c in certs["certificates"] if c["expired"]),
                       certificates_expiring=sum(1 for c in certs["certificates"] if c["expiring"]),
                       certificate_scan={k: certs[k] for k in ("inspected", "not_readable", "needs_mfa", "expiring_days")})
        emit_json(out)
        return
    table(None, STATUS_COLUMNS,
          ([r["secret"], r["kind"], r["version"] or "-", describe_age(r["age_seconds"]) if r["age_seconds"] is not None else "-",
            ("OVERDUE " if r["overdue"] else "") + _short(r["next_due"]),
            ("EXPIRED " if r.get("expired") else "") + _short(r.get("expires")), r["stage"], r["last_result"] or "-"] for r in rows),
          highlight=lambda row: "bold red" if str(row[4]).startswith("OVERDUE") or str(row[5]).startswith("EXPIRED") or "failed" in str(row[7]) else None,
          keep=("SECRET",), drop=("VERSION", "AGE", "EXPIRES"))
    if certs is not None:
        _print_certificates(app_ctx, certs)


def _certificates(app_ctx) -> dict:
    """The vault's certificates (zerotrust_admin.secret_rotation.certs): read what
    the principal may read; a secret that needs MFA only with a code given in
    $ZEROTRUST_OTP (never a prompt: status runs from cron and scripts)."""
    import os

    from zerotrust_admin.mfa import OTP_ENV, MfaPolicy
    from zerotrust_admin.secret_rotation.certs import certificate_inventory
    from zerotrust_admin.secret_rotation.config import load_managed

    vault, guard = _vault(app_ctx), app_ctx.access_guard
    policy = MfaPolicy.from_config(app_ctx.config)
    managed = {e.secret: e for e in load_managed(app_ctx.config)}

    def mfa(name: str) -> bool:
        code = (os.environ.get(OTP_ENV) or "").strip()
        if not code:
            return False
        guard.code_source = lambda: code  # the code given, never a prompt
        guard.require_mfa(name)  # a wrong or replayed code: exit 4, audited, as for vault get
        return True

    return certificate_inventory(vault, managed, may_list=lambda n: guard.allows("list", n), may_read=lambda n: guard.allows("read", n),
                                 needs_mfa=policy.required, mfa=mfa)


def _print_certificates(app_ctx, certs: dict) -> None:
    rows = certs["certificates"]
    info(f"Certificates in the vault: {len(rows)} found in {certs['inspected']} value(s) read "
         f"(expiring: fewer than {certs['expiring_days']} days left, or past a managed certificate's renewal time)", quiet=app_ctx.quiet)
    if rows:
        table(None, CERT_COLUMNS,
              ([c["secret"], c["subject"], _short(c["not_after"]), str(c["days_left"]), c["kind"] or "no",
                "EXPIRED" if c["expired"] else "EXPIRING" if c["expiring"] else "ok"] for c in rows),
              highlight=lambda row: "bold red" if row[5] == "EXPIRED" else "yellow" if row[5] == "EXPIRING" else None,
              keep=("SECRET",), drop=("SUBJECT",))
    for what, names, why in (("not_readable", certs["not_readable"], "you may not read them (access policy action read)"),
                             ("needs_mfa", certs["needs_mfa"], "they need MFA; give a code in $ZEROTRUST_OTP to include them")):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            info(f"Not inspected for certificates: {len(names)} secret(s), {why}: {shown}", quiet=False)


def _short(ts) -> str:
    return ts[:16].replace("T", " ") if ts else "-"
