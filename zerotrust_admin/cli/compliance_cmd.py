"""``compliance-report``: an evidence-based report for SOC 2, PCI DSS, HIPAA, GDPR, FedRAMP."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, escape_text, info


def _plain(value: str | None, option: str) -> str | None:
    """Names and reasons recorded in the audit log and printed in reports are
    one line of printable text: a control character (ESC, a newline, U+2028,
    a bidi override) is refused at input, exit 2 (threat model F2)."""
    from zerotrust_admin.textsafe import escape_line, has_controls

    if value is not None and has_controls(value):
        from zerotrust_admin.errors import UsageError

        raise UsageError(f"{option} {escape_line(value)!s} contains a control character", hint="give one line of printable text")
    return value


def compliance_report(
    ctx: typer.Context,
    standard: Annotated[str, typer.Option("--standard", "-s", help="soc2, pci-dss (pci), hipaa, gdpr, fedramp or all.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Report file; the format follows the extension: .pdf, .json, .md or .oscal.json (OSCAL Assessment Results). With --bundle: a new directory.")],
    period: Annotated[str, typer.Option("--period", help="How far back the evidence goes (90d, 12w, 365d).")] = "90d",
    fail_on_findings: Annotated[bool, typer.Option("--fail-on-findings", help="Exit 10 when a requirement fails that no unexpired accepted risk covers (for CI and cron).")] = False,
    compare: Annotated[Optional[Path], typer.Option("--compare", metavar="PREVIOUS.json", help="Show what changed, requirement by requirement, since an earlier JSON report.")] = None,
    bundle: Annotated[bool, typer.Option("--bundle", help="Write a signed evidence bundle: --output is a new directory holding the PDF, JSON, Markdown, OSCAL, the raw evidence and a signed manifest (check it with: compliance verify).")] = False,
    json: JsonOpt = False,
) -> None:
    """Collect evidence from the live system and map it to a standard's requirements.

    SOURCE_DATE_EPOCH fixes the report time, so the same state gives a
    byte-identical report."""
    from zerotrust_admin.compliance import run_report
    from zerotrust_admin.compliance.schema import percent_text

    app_ctx = app_context(ctx, json)
    app_ctx.config.check_output(output)  # never over the tool's own files (F1/F3)
    app_ctx.authorize("report", f"compliance/{standard}")
    if bundle:
        from zerotrust_admin.compliance.bundle import run_bundle

        report, _manifest, path = run_bundle(app_ctx.config, app_ctx.config.home, standard, output, period=period,
                                             audit=app_ctx.audit, actor=app_ctx.actor)
    else:
        report, path = run_report(app_ctx.config, standard, output, period=period, audit=app_ctx.audit, actor=app_ctx.actor, compare=compare)
    summary = {"output": str(path), "overall": report["overall"], "failing_controls": report["failing_controls"],
               "failing_requirements": report["failing_requirements"], "accepted_failures": report["accepted_failures"],
               "standards": {s["id"]: {"overall": s["overall"], **{k: s["score"][k] for k in ("pass", "fail", "warning", "manual", "not_evaluated", "not_applicable", "percent")}}
                             for s in report["standards"]}}
    if app_ctx.json:
        emit_json(summary)
    else:
        for sid, s in summary["standards"].items():
            print(f"{sid}: {s['overall'].upper()} (pass {s['pass']}, fail {s['fail']}, warning {s['warning']}, manual {s['manual']}, "
                  f"not evaluated {s['not_evaluated']}; {percent_text(s['percent'])})")
        info(f"{'signed evidence bundle' if bundle else 'report'} written to {path}", quiet=app_ctx.quiet)
    if fail_on_findings and report["accepted_failures"]:
        info(f"failing, under an accepted risk: {', '.join(report['accepted_failures'])}", quiet=app_ctx.quiet)
    if fail_on_findings and report["failing_requirements"]:
        info(f"failing requirements: {', '.join(report['failing_requirements'])}", quiet=app_ctx.quiet)
        if report["failing_controls"]:
            info(f"failing controls: {', '.join(report['failing_controls'])}", quiet=app_ctx.quiet)
        raise typer.Exit(10)


app = typer.Typer(help="Compliance evidence: check signed evidence bundles; declare scope, record attestations and accepted risks.", no_args_is_help=True)


@app.command("verify")
def verify(
    ctx: typer.Context,
    bundle: Annotated[str, typer.Argument(help="The bundle directory compliance-report --bundle wrote.")],
    public_key: Annotated[Optional[Path], typer.Option("--public-key", metavar="FILE", help="Trust this signing public key (the signing.pub the auditor pinned) instead of this installation's own.")] = None,
    json: JsonOpt = False,
) -> None:
    """Check a signed evidence bundle: the manifest's signature, then every file's SHA-256; exit 5 on any change, missing or added file."""
    from zerotrust_admin.compliance.bundle import verify_bundle
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.signing import PublicKey, own_public_key

    app_ctx = app_context(ctx, json)
    trusted = PublicKey.from_file(public_key) if public_key else own_public_key(app_ctx.config, app_ctx.config.home)
    verdict = verify_bundle(bundle, trusted)
    if app_ctx.json:
        emit_json(verdict.to_dict())
        if not verdict.ok:
            raise typer.Exit(5)
        return
    if not verdict.ok:
        for f in verdict.files:
            if f["verdict"] != "valid":
                print(f"{f['verdict']}: {escape_text(f['name'])}", file=sys.stderr)  # a name from an untrusted bundle
        raise IntegrityError(f"evidence bundle {bundle} is not intact: {verdict.problems[0]}",
                             hint="the bundle was changed after it was signed, or signed by a key you do not trust")
    m = verdict.manifest or {}
    print(f"bundle {escape_text(bundle)}: signature valid (key {verdict.key_id}), {len(verdict.files)} files intact")
    print(escape_text(f"standards: {', '.join(m.get('standards') or [])}; period {m['period']['start']} to {m['period']['end']}; created {m.get('created')}"))
    if m.get("source_date_epoch") is not None:
        print(f"note: the report time was fixed by SOURCE_DATE_EPOCH={m['source_date_epoch']}")
    print(f"evidence sha256: {m.get('evidence_sha256')}")


def _yes_no(value: Optional[str], name: str) -> Optional[bool]:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("yes", "y", "true", "in"):
        return True
    if v in ("no", "n", "false", "out"):
        return False
    from zerotrust_admin.errors import UsageError

    raise UsageError(f"--{name} {value!r}: say yes or no")


@app.command("scope")
def scope(
    ctx: typer.Context,
    cardholder_data: Annotated[Optional[str], typer.Option("--cardholder-data", help="yes/no: the vault stores card numbers (PCI DSS 3.5.1, 10.2.1.1).")] = None,
    phi: Annotated[Optional[str], typer.Option("--phi", help="yes/no: the vault holds ePHI.")] = None,
    personal_data: Annotated[Optional[str], typer.Option("--personal-data", help="yes/no: personal data (SOC 2 P-series, GDPR Art. 34(3)(a)).")] = None,
    availability: Annotated[Optional[str], typer.Option("--availability", help="yes/no: Availability criteria in scope (SOC 2 A1.x).")] = None,
    note: Annotated[str, typer.Option("--note", help="Why (cited in the report).")] = "",
    json: JsonOpt = False,
) -> None:
    """Declare what is in scope; recorded in the audit log. Out of scope (or never declared) makes the tied requirements N/A, citing the declaration."""
    from zerotrust_admin.compliance.declarations import record_scope

    _plain(note, "--note")
    app_ctx = app_context(ctx, json)
    app_ctx.authorize("report", "compliance/scope")
    given = {"cardholder_data": _yes_no(cardholder_data, "cardholder-data"), "phi": _yes_no(phi, "phi"),
             "personal_data": _yes_no(personal_data, "personal-data"), "availability": _yes_no(availability, "availability")}
    record = record_scope(app_ctx.audit, app_ctx.actor, {k: v for k, v in given.items() if v is not None}, note)
    if app_ctx.json:
        emit_json({"seq": record["seq"], "scope": record["details"]["scope"]})
        return
    for k, v in record["details"]["scope"].items():
        print(f"{k.replace('_', ' ')}: {'in scope' if v else 'out of scope'}")
    info(f"recorded as audit record {record['seq']}", quiet=app_ctx.quiet)


@app.command("attest")
def attest(
    ctx: typer.Context,
    requirement: Annotated[str, typer.Argument(help="The requirement ID as the report prints it (12.10.1, CC7.4, IA-5d).")],
    file: Annotated[Path, typer.Option("--file", metavar="DOC", help="The document the reviewer signed off (its SHA-256 is recorded, not its content).")],
    reviewer: Annotated[str, typer.Option("--reviewer", metavar="NAME", help="Who reviewed it.")],
    expires: Annotated[str, typer.Option("--expires", metavar="YYYY-MM-DD", help="When it must be reviewed again; after that the requirement is a WARNING.")],
    standard: Annotated[Optional[str], typer.Option("--standard", "-s", help="Only for this standard (default: every standard with that ID).")] = None,
    json: JsonOpt = False,
) -> None:
    """Record that a process or document requirement was reviewed: the report cites it (reviewer, date, SHA-256, expiry) instead of MANUAL."""
    from zerotrust_admin.compliance.declarations import record_attestation

    _plain(requirement, "requirement")
    _plain(reviewer, "--reviewer")
    _plain(standard, "--standard")
    app_ctx = app_context(ctx, json)
    app_ctx.authorize("report", f"compliance/requirement/{requirement}")
    record = record_attestation(app_ctx.audit, app_ctx.actor, requirement, file, reviewer, expires, standard)
    d = record["details"]
    if app_ctx.json:
        emit_json({"seq": record["seq"], **d})
        return
    print(f"{escape_text(d['requirement'])}: attested by {escape_text(d['reviewer'])}, {escape_text(d['document'])} sha256 {d['document_sha256']}, "
          f"expires {escape_text(d['expires'][:10])}")
    info(f"recorded as audit record {record['seq']}", quiet=app_ctx.quiet)


@app.command("accept-risk")
def accept_risk(
    ctx: typer.Context,
    requirement: Annotated[str, typer.Argument(help="The requirement ID whose finding is accepted.")],
    owner: Annotated[str, typer.Option("--owner", metavar="NAME", help="Who owns the risk.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why it is accepted (no secrets: it is written to the audit log).")],
    expires: Annotated[str, typer.Option("--expires", metavar="YYYY-MM-DD", help="When the acceptance lapses.")],
    standard: Annotated[Optional[str], typer.Option("--standard", "-s", help="Only for this standard (default: every standard with that ID).")] = None,
    json: JsonOpt = False,
) -> None:
    """Record an accepted risk. The requirement keeps its status; the report lists the exception on its own page."""
    from zerotrust_admin.compliance.declarations import record_exception

    _plain(requirement, "requirement")
    _plain(owner, "--owner")
    _plain(reason, "--reason")
    _plain(standard, "--standard")
    app_ctx = app_context(ctx, json)
    app_ctx.authorize("report", f"compliance/requirement/{requirement}")
    record = record_exception(app_ctx.audit, app_ctx.actor, requirement, owner, reason, expires, standard)
    d = record["details"]
    if app_ctx.json:
        emit_json({"seq": record["seq"], **d})
        return
    print(f"{escape_text(d['requirement'])}: risk accepted by {escape_text(d['owner'])} until {escape_text(d['expires'][:10])}")
    info(f"recorded as audit record {record['seq']}", quiet=app_ctx.quiet)
