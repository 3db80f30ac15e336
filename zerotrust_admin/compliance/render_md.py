"""Markdown rendering of a compliance report (same content as the PDF)."""

from __future__ import annotations

STATUS_LABEL = {"pass": "PASS", "fail": "FAIL", "warning": "WARNING", "manual": "MANUAL", "not_evaluated": "NOT EVALUATED",
                "not_applicable": "N/A"}


def _cell(text) -> str:
    return str(text if text not in (None, "") else "-").replace("|", "\\|").replace("\n", " ")


def _value(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "none"
    return str(value)


def render_markdown(report: dict) -> str:
    r = report["report"]
    out = [f"# {r['title']}: {', '.join(r['standard_names'])}", ""]
    out += ["| | |", "|---|---|",
            f"| Standard(s) | {', '.join(r['standard_names'])} |",
            f"| Period | {r['period']['start']} to {r['period']['end']} ({r['period']['days']:g} days) |",
            f"| System | {_cell(r['system'])} |", f"| Host | {_cell(r['host'])} |", f"| Operator | {_cell(r['operator'])} |",
            f"| Generated | {r['generated']} |", f"| Overall result | **{report['overall'].upper()}** |", ""]
    if report["failing_controls"]:
        out += [f"Failing controls: {', '.join(report['failing_controls'])}", ""]
    for std in report["standards"]:
        s = std["score"]
        out += [f"## {std['name']} ({std['version']})", "",
                f"Result: **{std['overall'].upper()}**. Requirements: {s['requirements']} "
                f"(pass {s['pass']}, fail {s['fail']}, warning {s['warning']}, manual {s['manual']}, not evaluated {s['not_evaluated']}, "
                f"not applicable {s['not_applicable']}); score {s['percent']}% of scored requirements.", ""]
        if std.get("note"):
            out += [f"_{std['note']}_", ""]
        out += ["### Controls", "", "| Control | Title | Status | Summary |", "|---|---|---|---|"]
        for c in std["controls"]:
            out.append(f"| {c['id']} | {_cell(c['title'])} | {STATUS_LABEL[c['status']]} | {_cell(c['summary'])} |")
        out += ["", "### Requirements", "", "| Requirement | Title | Controls | Status | Remediation |", "|---|---|---|---|---|"]
        for q in std["requirements"]:
            out.append(f"| {_cell(q['id'])} | {_cell(q['title'])} | {', '.join(q['controls']) or 'manual'} | {STATUS_LABEL[q['status']]} | {_cell(q['remediation'])} |")
        out += ["", "### Control detail", ""]
        for c in std["controls"]:
            out += [f"#### {c['id']} {c['title']}: {STATUS_LABEL[c['status']]}", "",
                    f"Requirements: {', '.join(q['id'] for q in c['requirements'])}", "", f"Finding: {c['summary']}", ""]
            for k, v in c["evidence"].items():
                out.append(f"- {k}: {_cell(_value(v))}")
            for f in c["findings"]:
                out.append(f"- **finding**: {_cell(f)}")
            if c["remediation"]:
                out.append(f"- remediation: {_cell(c['remediation'])}")
            out.append("")
    if report["key_ages"]:
        out += ["## Key ages against policy", "", "| Key | Age (days) | Policy (days) |", "|---|---|---|"]
        for k in report["key_ages"]:
            out.append(f"| {k['key']} | {k['age_days']} | {k['policy_days']:g} |")
        out.append("")
    out += ["## Audit activity in the period", "", "| Day | Records |", "|---|---|"]
    out += [f"| {day} | {count} |" for day, count in report["activity"] if count]
    an = report["anomalies"]
    out += ["", "## Anomalies", "", f"Window {an.get('since')} to {an.get('until')}, baseline from {an.get('baseline_start')}.", ""]
    for note in an.get("notes") or []:
        out.append(f"_Note: {note}_")
    findings = an.get("findings") or []
    if findings:
        out += ["", "| Severity | Kind | User | Start | Records | Finding |", "|---|---|---|---|---|---|"]
        for f in findings:
            out.append(f"| {f['severity']} | {f['kind']} | {_cell(f['user'])} | {f['start']} | {f['count']} | {_cell(f['title'])} |")
    else:
        out.append("No anomalies found in the window.")
    h = report["hashes"]
    head = h.get("audit_chain_head") or {}
    out += ["", "## Appendix: evidence hashes", "",
            f"- Effective configuration (redacted, canonical JSON) SHA-256: `{h.get('config_sha256')}`",
            f"- Config file SHA-256: `{h.get('config_file_sha256') or 'no config file'}`",
            f"- Audit chain head: record {head.get('seq', '-')}, hash `{head.get('hash', '-')}`",
            f"- Audit records: {h.get('audit_records')}",
            f"- Vault file SHA-256: `{h.get('vault_sha256') or 'n/a'}`",
            f"- Evidence SHA-256: `{h.get('evidence_sha256')}`", ""]
    return "\n".join(out)
