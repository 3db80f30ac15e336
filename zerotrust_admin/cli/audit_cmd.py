"""``audit``: tail and verify the tamper-evident audit log."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, emit_json_line, table, tsv_line
from zerotrust_admin.errors import IntegrityError

app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)

COLUMNS = ["SEQ", "TIMESTAMP", "USER", "EVENT", "ACTION", "RESOURCE", "OK"]
KEEP = ("USER", "RESOURCE")  # copied into revoke-sessions / search commands: never cut (issue 14)
DROP = ("ACTION", "SEQ", "EVENT")  # left out first on a narrow terminal; --json and pipes keep them


def _row(r: dict) -> list:
    return [r.get("seq"), r.get("timestamp"), r.get("user"), r.get("event"), r.get("action"), r.get("resource"), "yes" if r.get("success") else "NO"]


@app.command("tail")
def tail(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many records.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing new records as they are written.")] = False,
    json: JsonOpt = False,
) -> None:
    """Show the last records of the audit log."""
    app_ctx = app_context(ctx, json)
    log = app_ctx.audit
    records = log.tail(lines)
    if app_ctx.json or follow:
        for r in records:
            emit_json_line(r) if app_ctx.json else sys.stdout.write(tsv_line(_row(r)))
    else:
        table(None, COLUMNS, (_row(r) for r in records), highlight=lambda row: "red" if row[-1] == "NO" else None, keep=KEEP, drop=DROP)
    if follow:
        _follow(log, records[-1]["seq"] if records else 0, app_ctx.json)


def _follow(log, last_seq: int, as_json: bool) -> None:
    sys.stdout.flush()
    try:
        while True:
            time.sleep(1.0)
            for r in log.records():
                if r.get("seq", 0) > last_seq:
                    last_seq = r["seq"]
                    emit_json_line(r) if as_json else sys.stdout.write(tsv_line(_row(r)))
            sys.stdout.flush()
    except KeyboardInterrupt:
        return


@app.command("verify")
def verify(
    ctx: typer.Context,
    public_key: Annotated[Optional[Path], typer.Option("--public-key", metavar="FILE", help="Verify the signed checkpoints with this public key only (no audit.key needed): the file keys public-key wrote.")] = None,
    witness: Annotated[Optional[Path], typer.Option("--witness", metavar="FILE", help="Checkpoints as a sink received them (JSON lines or raw syslog lines): each must match the local log.")] = None,
    json: JsonOpt = False,
) -> None:
    """Check the hash chain and the signed anchor: exit 5 naming the first bad record if anything was edited, deleted or reordered."""
    from zerotrust_admin.audit.verify import run_verify

    app_ctx = app_context(ctx, json)
    report = run_verify(app_ctx.audit, public_key=public_key, witness=witness)
    if app_ctx.json:
        emit_json({**report.to_dict(), "path": str(app_ctx.audit.path)})
        if not report.ok:
            raise typer.Exit(5)
        return
    if not report.ok:
        raise IntegrityError(f"audit log {app_ctx.audit.path}: {report.problem_line()}", hint=report.hint())
    for warning in report.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    for line in report.summary_lines():
        print(line)


@app.command("search")
def search(
    ctx: typer.Context,
    user: Annotated[Optional[list[str]], typer.Option("--user", "-u", help="Principal (exact, or a glob like '*@OPS.EXAMPLE.COM'); repeatable.")] = None,
    action: Annotated[Optional[list[str]], typer.Option("--action", "-a", help="read, write, delete, rotate, revoke, ...; repeatable.")] = None,
    event: Annotated[Optional[list[str]], typer.Option("--event", "-e", help="secret_access, key_rotation, ...; repeatable.")] = None,
    resource: Annotated[Optional[str], typer.Option("--resource", help="Resource glob, e.g. 'db/*'.")] = None,
    source_ip: Annotated[Optional[str], typer.Option("--source-ip", help="Exact source address.")] = None,
    success: Annotated[Optional[bool], typer.Option("--success/--failure", help="Only successes / only failures.")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="From this time (2026-01-31T00:00:00Z) or this long ago (7d).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Before this time or this long ago.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Stop after this many matches.")] = None,
    count: Annotated[bool, typer.Option("--count", help="Print only the number of matches.")] = False,
    json: JsonOpt = False,
) -> None:
    """Filter the audit log (streamed; --json prints one JSON record per line)."""
    from zerotrust_admin.audit.search import AuditQuery, SearchStats, parse_when
    from zerotrust_admin.audit.search import search as run_search

    app_ctx = app_context(ctx, json)
    query = AuditQuery(users=user or [], actions=action or [], events=event or [], resource=resource, source_ip=source_ip, success=success,
                       since=parse_when(since, what="--since") if since else None, until=parse_when(until, what="--until") if until else None,
                       limit=limit)
    stats = SearchStats()
    found = [0]

    def counted(records):
        for r in records:
            found[0] += 1
            yield r

    matches = counted(run_search(app_ctx.audit, query, stats))
    if count:
        n = sum(1 for _ in matches)
        emit_json({"matches": n, "scanned": stats.scanned, "unreadable_lines": len(stats.unreadable_lines)}) if app_ctx.json else print(n)
    elif app_ctx.json:
        for r in matches:
            emit_json_line(r)
    elif sys.stdout.isatty():
        table(None, COLUMNS, (_row(r) for r in matches), highlight=lambda row: "red" if row[-1] == "NO" else None, keep=KEEP, drop=DROP)
    else:
        for r in matches:
            sys.stdout.write(tsv_line(_row(r)))
    sys.stdout.flush()
    if not found[0] and event:
        _unknown_events(app_ctx.audit, event)
    if not found[0] and not count and not app_ctx.json:
        print("no records matched", file=sys.stderr)
    if stats.unreadable_lines:
        print(f"warning: {len(stats.unreadable_lines)} unreadable line(s) skipped (first: line {stats.unreadable_lines[0]}); run: zerotrust-admin audit verify", file=sys.stderr)


# Every event name the tool writes (docs/audit-format.md); a name that is neither
# here nor in the log is a typo, refused with a suggestion instead of an empty result.
KNOWN_EVENTS = sorted({
    "access_denied", "anomaly_review", "audit_anomaly", "audit_recovery", "audit_sink_failure", "auth_failure", "authentication",
    "backup", "compliance_attestation", "compliance_exception", "compliance_report", "compliance_scope", "credential_issue",
    "credential_revocation", "key_rotation", "lockout", "mfa", "notification", "notify_test", "secret_access", "secret_rotation",
    "secret_rotation_failed", "session_create", "session_revocation", "vault_commit", "vault_upgrade",
})


def _unknown_events(log, events: list[str]) -> None:
    """Nothing matched: refuse an --event that no record of the log has and the tool never writes."""
    import difflib

    from zerotrust_admin.errors import UsageError

    unknown = [e for e in events if e not in KNOWN_EVENTS]
    if unknown:
        unknown = [e for e in unknown if e not in {r.get("event") for r in log.records()}]
    if unknown:
        close = difflib.get_close_matches(unknown[0], KNOWN_EVENTS, n=1)
        raise UsageError(f"unknown audit event {unknown[0]!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                         hint=f"known events: {', '.join(KNOWN_EVENTS)}")


@app.command("anomalies")
def anomalies(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="Detection window: this long ago (7d) or a time.")] = "7d",
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Baseline length before the window (default 28d, security.anomaly_detection.baseline_days).")] = None,
    min_severity: Annotated[str, typer.Option("--min-severity", help="low, medium or high.")] = "low",
    notify: Annotated[bool, typer.Option("--notify", help="Send high-severity findings through the breach-notification channels.")] = False,
    json: JsonOpt = False,
) -> None:
    """Unusual hours, volume spikes, new networks and locations, impossible travel, failure bursts.

    Each run is recorded in the audit log as an anomaly review (evidence for
    compliance-report). Exit 0 whether or not anything was found."""
    from zerotrust_admin.anomaly import review
    from zerotrust_admin.anomaly.detectors import SEVERITY_ORDER
    from zerotrust_admin.audit.search import parse_duration, parse_when
    from zerotrust_admin.errors import UsageError
    from zerotrust_admin.timeutil import utcnow

    app_ctx = app_context(ctx, json)
    if min_severity not in SEVERITY_ORDER:
        raise UsageError(f"--min-severity {min_severity!r} is not one of low, medium, high")
    now = utcnow()
    baseline_days = max(1, round(parse_duration(baseline, what="--baseline").total_seconds() / 86400)) if baseline else None
    report, deliveries = review(app_ctx.audit, app_ctx.config, app_ctx.actor, parse_when(since, now=now, what="--since"), now,
                                baseline_days=baseline_days, notify=notify)
    findings = report.by_severity(min_severity)
    if app_ctx.json:
        out = report.to_dict()
        out["findings"] = [f.to_dict() for f in findings]
        out["notifications"] = deliveries
        emit_json(out)
        return
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if not findings:
        print(f"no anomalies since {report.since} ({report.stats['window_records']} records, each checked against the records before it;"
              f" {report.stats['baseline_days']} days of log before the window)")
    else:
        table(None, ["SEVERITY", "KIND", "USER", "START", "RECORDS", "WHAT"],
              ([f.severity, f.kind, f.user, f.start, f.count, f.title] for f in findings),
              highlight=lambda row: "red" if row[0] == "high" else None, keep=("USER",), drop=("RECORDS", "START"))
    for d in deliveries:
        print(f"notified {d['channel']}: {'ok' if d['ok'] else 'FAILED: ' + str(d.get('error'))}", file=sys.stderr)


@app.command("export")
def export(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", "-f", help="ocsf: one OCSF 1.7.0 event per line (API Activity, Authentication, Account Change); json: the records as they are.")] = "ocsf",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FILE", help="Write to this file (0600, atomically) instead of stdout.")] = None,
    json: JsonOpt = False,
) -> None:
    """Stream the audit log to a SIEM format, one JSON object per line, in constant memory (no chain check: run audit verify)."""
    from zerotrust_admin import __version__
    from zerotrust_admin.audit.ocsf import export_log
    from zerotrust_admin.errors import UsageError

    app_ctx = app_context(ctx, json)
    if format not in ("ocsf", "json"):
        raise UsageError(f"--format {format!r} is not one of ocsf, json")
    if output is not None:
        app_ctx.config.check_output(output)  # never over the tool's own files (F1/F3)
    count = export_log(app_ctx.audit, format, output, product_version=__version__)
    if output is not None:
        if app_ctx.json:
            emit_json({"output": str(output), "format": format, "records": count})
        else:
            print(f"exported {count} records as {format} to {output}", file=sys.stderr)
