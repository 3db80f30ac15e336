"""Build a compliance report: collect evidence once, evaluate C1-C13 against
each requested standard, score by requirement, render by file extension."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

from zerotrust_admin.compliance.controls import CHECKS, STATUS_RANK
from zerotrust_admin.compliance.schema import SCHEMA_VERSION, as_json_values, evidence_sha256
from zerotrust_admin.errors import AuditError, UsageError, ZeroTrustError

STANDARDS = ("soc2", "pci-dss", "hipaa", "gdpr", "fedramp")
ALIASES = {"pci": "pci-dss", "pcidss": "pci-dss", "pci_dss": "pci-dss", "soc-2": "soc2", "soc": "soc2", "fedramp-moderate": "fedramp"}
FORMATS = (".pdf", ".json", ".md", ".oscal.json")


def resolve_standards(name: str) -> list[str]:
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key == "all":
        return list(STANDARDS)
    if key not in STANDARDS:
        raise UsageError(f"unknown standard {name!r}", hint=f"valid standards: {', '.join(STANDARDS)}, all (alias: pci)")
    return [key]


def load_standard(sid: str) -> dict:
    text = resources.files("zerotrust_admin.compliance").joinpath("standards", f"{sid}.json").read_text(encoding="utf-8")
    return json.loads(text)


def report_now(environ=None) -> datetime:
    """``SOURCE_DATE_EPOCH`` (reproducible builds) or the current time."""
    env = os.environ if environ is None else environ
    epoch = env.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix time") from None
    return datetime.now(timezone.utc).replace(microsecond=0)


BACKDATE_TOLERANCE = timedelta(days=1)


def _wall_clock() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def report_clock(environ=None, wall: datetime | None = None) -> tuple[datetime, dict]:
    """The time the evidence is evaluated at, and how it was chosen.

    ``SOURCE_DATE_EPOCH`` fixes the report time (byte-identical output for
    the same state) and is always disclosed. It may not move the report into
    the past: when it lies more than a day before the system clock, the
    evidence is evaluated at the system clock (key ages, cadences and expiry
    dates are never judged at a backdated time) and the report says so."""
    env = os.environ if environ is None else environ
    wall = wall or _wall_clock()
    if not env.get("SOURCE_DATE_EPOCH"):
        return wall, {"source": "system clock", "source_date_epoch": None, "note": None}
    fixed = report_now(env)
    epoch = int(env["SOURCE_DATE_EPOCH"])
    stamp = fixed.strftime("%Y-%m-%dT%H:%M:%SZ")
    if wall - fixed > BACKDATE_TOLERANCE:
        days = int((wall - fixed).total_seconds() // 86400)
        return wall, {"source": "system clock", "source_date_epoch": epoch,
                      "note": (f"SOURCE_DATE_EPOCH={epoch} ({stamp}) is {days} days before the system clock: it was not used; "
                               f"the evidence was evaluated at the system clock's time")}
    ahead = int((fixed - wall).total_seconds() // 86400)
    note = f"report time fixed by SOURCE_DATE_EPOCH={epoch} ({stamp})"
    if ahead >= 1:
        note += f", {ahead} day(s) after the system clock"
    return fixed, {"source": "SOURCE_DATE_EPOCH", "source_date_epoch": epoch, "note": note}


def output_format(path: str | os.PathLike) -> str:
    """The report format (``.pdf``, ``.json``, ``.md``, ``.oscal.json``) from the output file's extension."""
    ext = ".oscal.json" if Path(path).name.lower().endswith(".oscal.json") else Path(path).suffix.lower()
    if ext not in FORMATS:
        raise UsageError(f"cannot tell the report format from {Path(path).name!r}", hint="use an output file ending in .pdf, .json or .md (or .oscal.json for OSCAL Assessment Results)")
    return ext


def check_output(path: str | os.PathLike) -> tuple[Path, str]:
    """Validate the output path before any work: extension, directory, writability."""
    out = Path(path).expanduser()
    ext = output_format(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ZeroTrustError(f"cannot write the report: directory {parent} does not exist", hint="create it or choose another --output")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ZeroTrustError(f"cannot write the report to {out}: permission denied", hint="choose a writable --output path")
    if out.is_dir():
        raise ZeroTrustError(f"cannot write the report to {out}: it is a directory")
    return out, ext


@dataclass
class _Ctx:
    config: object
    now: datetime
    key_ages: list | None = None
    start: datetime | None = None
    rctx: object = None


def _requirement_status(statuses: list[str]) -> str:
    relevant = [s for s in statuses if s != "not_applicable"]
    if not relevant:
        return "not_applicable"
    return max(relevant, key=lambda s: STATUS_RANK[s])


def standard_requirements(std: dict) -> list[tuple[dict, dict]]:
    """(section, requirement) pairs of a standard's data file, sorted by
    section and requirement ID (natural order: 10.2.1.2 before 10.2.1.10)."""
    from zerotrust_admin.compliance.requirements import natural_key

    pairs = [(section, req) for section in std["sections"] for req in section["requirements"]]
    return sorted(pairs, key=lambda p: (natural_key(p[0]["id"]), natural_key(p[1]["id"])))


def evaluate_standard(std: dict, evidence: dict, ctx: _Ctx) -> dict:
    from zerotrust_admin.compliance.requirements import Context, evaluate_requirement

    ctx.rctx = Context(evidence, ctx.now, ctx.start or ctx.now - timedelta(days=90), std, ctx.config)
    controls = []
    by_control: dict[str, list[str]] = {}
    for section, req in standard_requirements(std):
        for cid in req.get("controls", []):
            by_control.setdefault(cid, []).append(req["id"])
    for check in CHECKS:
        result = check(evidence, std, ctx).to_dict()
        result["requirements"] = [{"id": rid} for rid in by_control.get(result["id"], [])]
        controls.append(result)
    requirements = [evaluate_requirement(ctx.rctx, section, req) for section, req in standard_requirements(std)]
    counts = {s: 0 for s in ("pass", "warning", "fail", "manual", "not_evaluated", "not_applicable")}
    for r in requirements:
        counts[r["status"]] += 1
    scored = counts["pass"] + counts["warning"] + counts["fail"] + counts["not_evaluated"]
    if counts["not_applicable"] == len(requirements):
        overall = "not applicable"  # declared out of scope as a whole: never a green PASS
    elif counts["fail"]:
        overall = "fail"
    elif counts["warning"] or counts["not_evaluated"]:
        overall = "pass with warnings"
    else:
        overall = "pass"
    sections = []
    for r in requirements:
        if not sections or sections[-1]["id"] != r["section"]:
            sections.append({"id": r["section"], "title": r["section_title"], "requirements": []})
        sections[-1]["requirements"].append(r["id"])
    return {"id": std["id"], "name": std["name"], "version": std["version"], "note": std.get("note", ""), "sections": sections,
            "retention": std.get("retention_note"), "review": std.get("review_note"), "overall": overall,
            "score": {**counts, "requirements": len(requirements), "scored": scored,
                      "percent": round(100.0 * counts["pass"] / scored, 1) if scored else None},
            "controls": controls, "requirements": requirements}


def build_report(config, standard: str, *, period: timedelta = timedelta(days=90), now: datetime | None = None,
                 operator: str = "", host: str | None = None, previous: dict | None = None, previous_name: str = "") -> dict:
    from zerotrust_admin import __version__
    from zerotrust_admin.compliance.evidence import collect_all

    sids = resolve_standards(standard)
    if now is None:
        now, clock = report_clock()
    else:
        clock = {"source": "given by the caller", "source_date_epoch": None, "note": None}
    start = now - period
    evidence = collect_all(config, now, start)
    ctx = _Ctx(config, now, start=start)
    standards = [evaluate_standard(load_standard(sid), evidence, ctx) for sid in sids]
    failing = sorted({c["id"] for s in standards for c in s["controls"] if c["status"] == "fail"}, key=lambda x: int(x[1:]))
    # --fail-on-findings: a FAIL row counts unless an unexpired accepted risk covers it
    # (the row stays FAIL on every page; only the exit code honours the exception).
    unaccepted = [f"{s['id']} {r['id']}" for s in standards for r in s["requirements"]
                  if r["status"] == "fail" and not (r.get("exception") and not r["exception"].get("expired"))]
    accepted = [f"{s['id']} {r['id']}" for s in standards for r in s["requirements"]
                if r["status"] == "fail" and r.get("exception") and not r["exception"].get("expired")]
    applicable = [s for s in standards if s["overall"] != "not applicable"]
    if not applicable:
        overall = "not applicable"
    elif any(s["overall"] == "fail" for s in applicable):
        overall = "fail"
    elif any(s["overall"] != "pass" for s in applicable):
        overall = "pass with warnings"
    else:
        overall = "pass"
    audit = evidence["audit"]
    # The evidence members as the JSON report holds them, so that the hash is
    # recomputable from the file alone (compliance/schema.py, docs/compliance-schema.json).
    hashed = {"anomalies": as_json_values({k: evidence["anomalies"].get(k) for k in ("since", "until", "baseline_start", "stats", "notes", "findings")}),
              "evidence": as_json_values({k: v for k, v in evidence.items() if k != "anomalies"})}
    evidence_digest = evidence_sha256(hashed)
    result = {
        "schema_version": SCHEMA_VERSION,
        "report": {
            "title": "Secrets management compliance report",
            "standards": sids, "standard_names": [s["name"] for s in standards],
            "period": {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "days": round(period.total_seconds() / 86400, 2)},
            "generated": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "time_source": clock, "host": host or socket.gethostname(), "operator": operator,
            "system": "zerotrust-admin " + __version__ + " (ZeroTrustKerberosLink secrets)",
        },
        "overall": overall,
        "failing_controls": failing,
        "failing_requirements": unaccepted,
        "accepted_failures": accepted,
        "standards": standards,
        "key_ages": ctx.key_ages or [],
        "activity": audit.get("per_day", []),
        "anomalies": hashed["anomalies"],
        "evidence": hashed["evidence"],
        "hashes": {
            "config_sha256": evidence["config"].get("config_sha256"),
            "config_file_sha256": evidence["config"].get("file_sha256"),
            "audit_chain_head": audit.get("chain_head"),
            "audit_records": audit.get("records"),
            "vault_sha256": evidence["vault"].get("vault_sha256"),
            "evidence_sha256": evidence_digest,
        },
    }
    if previous is not None:
        from zerotrust_admin.compliance.summary import compare

        result["comparison"] = compare(previous, result, previous_name)
    return result


def render(report: dict, ext: str) -> bytes:
    if ext == ".oscal.json":
        from zerotrust_admin.compliance.oscal import render_oscal

        return render_oscal(report)
    if ext == ".json":
        return (json.dumps(report, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
    if ext == ".md":
        from zerotrust_admin.compliance.render_md import render_markdown

        return render_markdown(report).encode("utf-8")
    from zerotrust_admin.compliance.render_pdf import render_pdf

    return render_pdf(report)


def write_report(config, standard: str, output: str | os.PathLike, *, period: timedelta, operator: str = "", now: datetime | None = None,
                 compare: str | os.PathLike | None = None) -> tuple[dict, Path]:
    """Check the output path, build, render and write the report atomically (0600)."""
    from zerotrust_admin import fsutil

    sids = resolve_standards(standard)  # exit 2 before any work
    out, ext = check_output(output)
    previous = None
    if compare is not None:
        from zerotrust_admin.compliance.summary import load_previous

        previous = load_previous(compare)  # exit 2 before any work
    report = build_report(config, ",".join(sids) if len(sids) == 1 else "all", period=period, now=now, operator=operator,
                          previous=previous, previous_name=Path(compare).name if compare is not None else "")
    data = render(report, ext)
    try:
        fsutil.write_private_file(out, data)
    except OSError as exc:
        raise ZeroTrustError(f"cannot write the report to {out}: {exc.strerror}", hint="choose a writable --output path") from None
    return report, out


AUDIT_EVENT = "compliance_report"
AUDIT_ACTION = "report"  # the access-policy action that guards compliance-report (access/policy.py ACTIONS)


def run_report(config, standard: str, output: str | os.PathLike, *, period: str, audit, actor,
               now: datetime | None = None, compare: str | os.PathLike | None = None) -> tuple[dict, Path]:
    """``compliance-report``: write the report, then one ``compliance_report``
    audit record for the run, success or failure.

    Building a report reads the whole audit log and the live state, and access
    to audit trails must itself be logged (PCI DSS 10.2.1.3). The record holds
    what was asked and the outcome, never report content: standards, format,
    period, output path, the report file's SHA-256 (to tie a file to its run)
    and per-standard counts of requirement statuses. Input rejected before any
    work (unknown standard, bad --period or extension: exit 2) writes no record,
    as for a malformed secret name; every later failure (unwritable output:
    exit 1, a failed write) is recorded with ``success: false`` and the error
    class. If the success record cannot be written, the report is removed: an
    unaudited read of the audit trail is refused like an unaudited secret read.
    """
    from zerotrust_admin.audit.search import parse_duration

    sids = resolve_standards(standard)
    span = parse_duration(period, what="--period")
    fmt = output_format(output).lstrip(".")
    resource = "compliance/" + (sids[0] if len(sids) == 1 else "all")
    asked = {"standards": sids, "format": fmt, "period": period, "output": str(Path(output).expanduser().absolute())}
    try:
        report, out = write_report(config, standard, output, period=span, operator=actor.user, now=now, compare=compare)
        digest = _file_sha256(out)
    except Exception as exc:
        if not isinstance(exc, (UsageError, AuditError)):
            audit.append(event=AUDIT_EVENT, action=AUDIT_ACTION, resource=resource, success=False, actor=actor,
                         **asked, error=type(exc).__name__)
        raise
    counts = {s["id"]: {k: s["score"][k] for k in ("pass", "fail", "warning", "not_evaluated", "manual", "not_applicable")}
              for s in report["standards"]}
    try:
        audit.append(event=AUDIT_EVENT, action=AUDIT_ACTION, resource=resource, success=True, actor=actor, **asked,
                     period_start=report["report"]["period"]["start"], period_end=report["report"]["period"]["end"],
                     overall=report["overall"], counts=counts, report_sha256=digest,
                     config_sha256=report["hashes"].get("config_sha256"))  # lets later reports see configuration changes
    except Exception:  # AuditError, or the writer refusing a rewritten log (IntegrityError): no unaudited report is left
        out.unlink(missing_ok=True)
        raise
    return report, out


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
