"""Markdown rendering of a compliance report: the PDF's content, page for page
(cover, top findings, per standard every requirement grouped by section with
its own finding and evidence, accepted risks, declarations, comparison,
control detail, key ages, activity, anomalies, evidence hashes)."""

from __future__ import annotations

from zerotrust_admin.compliance.schema import percent_text
from zerotrust_admin.compliance.summary import declarations, exceptions, top_findings
from zerotrust_admin.textsafe import escape_document

STATUS_LABEL = {"pass": "PASS", "fail": "FAIL", "warning": "WARNING", "manual": "MANUAL", "not_evaluated": "NOT EVALUATED",
                "not_applicable": "N/A"}


def _cell(text) -> str:
    return str(text if text not in (None, "") else "-").replace("|", "\\|").replace("\n", " ")


def _line(text) -> str:
    return str(text if text not in (None, "") else "-").replace("\n", " ")


def _value(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "none"
    return str(value)


def render_markdown(report: dict) -> str:
    r = report["report"]
    out = [f"# {r['title']}: {', '.join(r['standard_names'])}", ""]
    clock = r.get("time_source") or {}
    out += ["| | |", "|---|---|",
            f"| Standard(s) | {', '.join(r['standard_names'])} |",
            f"| Period | {r['period']['start']} to {r['period']['end']} ({r['period']['days']:g} days) |",
            f"| System | {_cell(r['system'])} |", f"| Host | {_cell(r['host'])} |", f"| Operator | {_cell(r['operator'])} |",
            f"| Generated | {r['generated']} |"]
    if clock.get("note"):
        out.append(f"| Report time | {_cell(clock['note'])} |")
    out += [f"| Overall result | **{report['overall'].upper()}** |", ""]
    if report["failing_controls"]:
        out += [f"Failing controls: {', '.join(report['failing_controls'])}", ""]

    out += ["## Top findings", ""]
    top = top_findings(report)
    if not top:
        out.append("No failing or warning finding.")
    for i, g in enumerate(top, 1):
        out.append(f"{i}. **{STATUS_LABEL[g['status']]}**: {_line(g['finding'])} ({', '.join(g['requirements'][:8])}"
                   + (f" and {len(g['requirements']) - 8} more" if len(g["requirements"]) > 8 else "") + ")"
                   + (f". Remediation: {_line(g['remediation'])}" if g["remediation"] else ""))
    out.append("")

    comp = report.get("comparison")
    if comp:
        out += ["## Changes since the previous report", "",
                f"Previous report {comp['previous_file']} generated {comp['previous_generated']} (overall {comp['previous_overall']}); "
                f"{comp['unchanged']} requirement(s) unchanged, {len(comp['changes'])} changed.", ""]
        if comp["changes"]:
            out += ["| Standard | Requirement | Before | Now |", "|---|---|---|---|"]
            for c in comp["changes"]:
                out.append(f"| {_cell(c['standard'])} | {_cell(c['requirement'])} | {STATUS_LABEL.get(c['before'], c['before'])} | {STATUS_LABEL.get(c['after'], c['after'])} |")
            out.append("")

    for std in report["standards"]:
        s = std["score"]
        out += [f"## {std['name']} ({std['version']})", "",
                f"Result: **{std['overall'].upper()}**. Requirements: {s['requirements']} "
                f"(pass {s['pass']}, fail {s['fail']}, warning {s['warning']}, manual {s['manual']}, not evaluated {s['not_evaluated']}, "
                f"not applicable {s['not_applicable']}); score {percent_text(s['percent'])} of scored requirements.", ""]
        for label, key in (("Retention", "retention"), ("Log review", "review")):
            if std.get(key):
                out.append(f"{label}: {std[key]}.")
        if std.get("note"):
            out += ["", f"_{std['note']}_"]
        out.append("")
        by_id = {q["id"]: q for q in std["requirements"]}
        for section in std.get("sections") or [{"id": "", "title": "Requirements", "requirements": [q["id"] for q in std["requirements"]]}]:
            out += [f"### {section['id']} {section['title']}".replace("###  ", "### "), ""]
            for rid in section["requirements"]:
                q = by_id[rid]
                out += [f"#### {q['id']} {q['title']}: {STATUS_LABEL[q['status']]}", ""]
                if q.get("controls"):
                    out.append(f"Controls: {', '.join(q['controls'])}")
                if len(q.get("findings") or []) <= 1:
                    out.append(f"Finding: {_line(q['finding'])}")
                    for f in q.get("findings") or []:
                        out += [f"- {_line(e)}" for e in f["evidence"]]
                else:
                    for f in q["findings"]:
                        out.append(f"- **{STATUS_LABEL[f['status']]}** ({f['check']}): {_line(f['finding'])}")
                        out += [f"  - {_line(e)}" for e in f["evidence"]]
                if q.get("exception"):
                    e = q["exception"]
                    out.append(f"- accepted risk: owner {_line(e['owner'])}, until {e['expires'][:10]}{' (EXPIRED)' if e['expired'] else ''}: {_line(e['reason'])} (audit record {e['seq']})")
                if q.get("remediation"):
                    out.append(f"- remediation: {_line(q['remediation'])}")
                out.append("")

    exc = exceptions(report)
    out += ["## Accepted risks (exceptions)", ""]
    if exc:
        out += ["Accepted risks do not change a requirement's status.", "",
                "| Standard | Requirement | Status | Owner | Reason | Expires | Recorded |", "|---|---|---|---|---|---|---|"]
        for e in exc:
            out.append(f"| {_cell(e['standard'])} | {_cell(e['requirement'])} | {STATUS_LABEL[e['status']]} | {_cell(e['owner'])} | {_cell(e['reason'])} | "
                       f"{e['expires'][:10]}{' EXPIRED' if e['expired'] else ''} | {_cell(e['user'])}, {e['timestamp']}, record {e['seq']} |")
    else:
        out.append("No accepted risk is recorded (compliance accept-risk).")
    out.append("")
    decl = declarations(report)
    out += ["## Scope and attestations", ""]
    if decl["scope"]:
        for name, d in decl["scope"].items():
            out.append(f"- {name.replace('_', ' ')}: {'in scope' if d['in_scope'] else 'out of scope'}, declared by {_line(d['user'])} at {d['timestamp']} (audit record {d['seq']})"
                       + (f": {_line(d['note'])}" if d.get("note") else ""))
    else:
        out.append("- No scope declaration (compliance scope): requirements tied to cardholder data, PHI, personal data or availability are N/A.")
    for a in decl["attestations"]:
        out.append(f"- {a['requirement']}{' (' + a['standard'] + ')' if a.get('standard') else ''}: attested by {_line(a['reviewer'])} at {a['timestamp']}, "
                   f"{_line(a['document'])} SHA-256 `{a['sha256']}`, expires {str(a['expires'])[:10]} (audit record {a['seq']})")
    out.append("")

    for std in report["standards"]:
        out += [f"## {std['name']}: control detail (C1-C13)", "", "| Control | Title | Status | Summary |", "|---|---|---|---|"]
        for c in std["controls"]:
            out.append(f"| {c['id']} | {_cell(c['title'])} | {STATUS_LABEL[c['status']]} | {_cell(c['summary'])} |")
        out.append("")
        for c in std["controls"]:
            out += [f"### {c['id']} {c['title']}: {STATUS_LABEL[c['status']]}", "",
                    f"Requirements: {', '.join(q['id'] for q in c['requirements']) or 'none for this standard'}", "", f"Finding: {_line(c['summary'])}", ""]
            for k, v in c["evidence"].items():
                out.append(f"- {k}: {_line(_value(v))}")
            for f in c["findings"]:
                out.append(f"- **finding**: {_line(f)}")
            if c["remediation"]:
                out.append(f"- remediation: {_line(c['remediation'])}")
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
    # Values come from audit records, principals and the operator's own input:
    # no ESC sequence, separator or bidi control reaches the file (F2).
    return escape_document("\n".join(out))
