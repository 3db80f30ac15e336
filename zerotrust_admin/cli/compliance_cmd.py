"""``compliance-report``: an evidence-based report for SOC 2, PCI DSS, HIPAA, GDPR, FedRAMP."""

from __future__ import annotations

from typing import Annotated

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, info


def compliance_report(
    ctx: typer.Context,
    standard: Annotated[str, typer.Option("--standard", "-s", help="soc2, pci-dss (pci), hipaa, gdpr, fedramp or all.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Report file; the format follows the extension: .pdf, .json or .md.")],
    period: Annotated[str, typer.Option("--period", help="How far back the evidence goes (90d, 12w, 365d).")] = "90d",
    fail_on_findings: Annotated[bool, typer.Option("--fail-on-findings", help="Exit 10 when any control fails (for CI and cron).")] = False,
    json: JsonOpt = False,
) -> None:
    """Collect evidence from the live system and map it to a standard's requirements.

    SOURCE_DATE_EPOCH fixes the report time, so the same state gives a
    byte-identical report."""
    from zerotrust_admin.compliance import run_report

    app_ctx = app_context(ctx, json)
    app_ctx.authorize("report", f"compliance/{standard}")
    report, path = run_report(app_ctx.config, standard, output, period=period, audit=app_ctx.audit, actor=app_ctx.actor)
    summary = {"output": str(path), "overall": report["overall"], "failing_controls": report["failing_controls"],
               "standards": {s["id"]: {"overall": s["overall"], **{k: s["score"][k] for k in ("pass", "fail", "warning", "manual", "not_evaluated", "not_applicable", "percent")}}
                             for s in report["standards"]}}
    if app_ctx.json:
        emit_json(summary)
    else:
        for sid, s in summary["standards"].items():
            print(f"{sid}: {s['overall'].upper()} (pass {s['pass']}, fail {s['fail']}, warning {s['warning']}, manual {s['manual']}, "
                  f"not evaluated {s['not_evaluated']}; {s['percent']}%)")
        info(f"report written to {path}", quiet=app_ctx.quiet)
    if fail_on_findings and report["failing_controls"]:
        info(f"failing controls: {', '.join(report['failing_controls'])}", quiet=app_ctx.quiet)
        raise typer.Exit(10)
