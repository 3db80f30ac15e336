"""PDF rendering (reportlab, imported here only): a printable audit report.

Cover, table of contents, executive summary with a status chart, one row per
requirement, key-age and audit-activity charts, anomalies, one section per
control, and an appendix with the evidence hashes. Page numbers "page N of M".
With ``SOURCE_DATE_EPOCH`` set, reportlab runs in invariant mode, so the same
state gives a byte-identical file.
"""

from __future__ import annotations

import io
import os

from zerotrust_admin.compliance.schema import percent_text

COLORS = {"pass": "#2e7d32", "fail": "#c62828", "warning": "#ef8f00", "manual": "#5c6bc0", "not_evaluated": "#9e9e9e", "not_applicable": "#78909c"}
LABEL = {"pass": "PASS", "fail": "FAIL", "warning": "WARNING", "manual": "MANUAL", "not_evaluated": "NOT EVALUATED", "not_applicable": "N/A"}
ORDER = ("pass", "warning", "fail", "manual", "not_evaluated", "not_applicable")


def _overall_status(overall: str) -> str:
    """The badge of an overall result: pass, fail, not applicable, else warning."""
    return {"pass": "pass", "fail": "fail", "not applicable": "not_applicable"}.get(overall, "warning")


def render_pdf(report: dict, invariant: bool | None = None) -> bytes:
    from reportlab.graphics.shapes import Drawing, Line, Rect, String
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas as canvas_mod
    from reportlab.platypus import (BaseDocTemplate, CondPageBreak, Frame, KeepTogether, PageBreak, PageTemplate, Paragraph, Spacer, Table,
                                    TableStyle)
    from reportlab.platypus.tableofcontents import TableOfContents

    if invariant is None:
        invariant = bool(os.environ.get("SOURCE_DATE_EPOCH"))
    r = report["report"]
    styles = getSampleStyleSheet()
    # splitLongWords=0: a word (an e-mail address, a key id) is never broken mid-word
    base = ParagraphStyle("body", parent=styles["BodyText"], fontName="Helvetica", fontSize=9, leading=11.5, splitLongWords=0)
    small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=9)
    h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontName="Helvetica-Bold", fontSize=16, leading=20, spaceBefore=4, spaceAfter=8,
                        textColor=colors.HexColor("#1a237e"))
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontName="Helvetica-Bold", fontSize=12, leading=15, spaceBefore=10, spaceAfter=4,
                        textColor=colors.HexColor("#283593"))
    h3 = ParagraphStyle("h3", parent=styles["Heading3"], fontName="Helvetica-Bold", fontSize=10, leading=13, spaceBefore=8, spaceAfter=3)
    cover_title = ParagraphStyle("ct", parent=h1, fontSize=24, leading=30, alignment=TA_CENTER, textColor=colors.HexColor("#1a237e"))
    cover_sub = ParagraphStyle("cs", parent=base, fontSize=13, leading=17, alignment=TA_CENTER)
    mono = ParagraphStyle("mono", parent=small, fontName="Courier", fontSize=7.5, leading=9)
    tiny = ParagraphStyle("tiny", parent=small, fontSize=6.8, leading=8.2, textColor=colors.HexColor("#455a64"))

    def esc(text) -> str:
        return (str(text if text not in (None, "") else "-").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))

    def P(text, style=base):
        return Paragraph(esc(text), style)

    def badge(status: str, style=small):
        return Paragraph(f'<font color="{COLORS[status]}"><b>{LABEL[status]}</b></font>', style)

    class Doc(BaseDocTemplate):
        def afterFlowable(self, flowable):
            if isinstance(flowable, Paragraph) and getattr(flowable, "_toc_level", None) is not None:
                text = flowable.getPlainText()
                key = f"toc-{self.seq.nextf('toc')}"
                self.canv.bookmarkPage(key)
                self.notify("TOCEntry", (flowable._toc_level, text, self.page, key))

    def heading(text, level=0):
        p = Paragraph(esc(text), h1 if level == 0 else h2)
        p._toc_level = level
        return p

    title = f"{r['title']}: {', '.join(r['standard_names'])}"

    class NumberedCanvas(canvas_mod.Canvas):
        def __init__(self, *args, **kwargs):
            kwargs["invariant"] = 1 if invariant else 0
            super().__init__(*args, **kwargs)
            self._saved = []

        def showPage(self):
            self._saved.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._saved)
            for state in self._saved:
                self.__dict__.update(state)
                if self._pageNumber > 1:
                    self.setFont("Helvetica", 7.5)
                    self.setFillColor(colors.HexColor("#555555"))
                    self.drawString(18 * mm, 10 * mm, f"Compliance report | {', '.join(x.upper() for x in r['standards'])} | {r['host'][:30]} | {r['generated']}")
                    self.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {self._pageNumber} of {total}")
                    self.setStrokeColor(colors.HexColor("#9fa8da"))
                    self.line(18 * mm, 13 * mm, A4[0] - 18 * mm, 13 * mm)
                super().showPage()
            super().save()

    buf = io.BytesIO()
    doc = Doc(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=18 * mm,
              title=title, author=r.get("operator") or "zerotrust-admin", subject=f"Period {r['period']['start']} to {r['period']['end']}",
              creator=r["system"], invariant=1 if invariant else 0)
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="main")
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    W = doc.width
    story: list = []

    # --- cover -------------------------------------------------------------------
    overall = report["overall"]
    ocolor = COLORS[_overall_status(overall)]
    story += [Spacer(1, 40 * mm), Paragraph(esc(r["title"]), cover_title), Spacer(1, 6 * mm),
              Paragraph(esc(", ".join(r["standard_names"])), cover_sub), Spacer(1, 14 * mm)]
    cover_rows = [["Standard(s)", ", ".join(f"{s['name']} ({s['version']})" for s in report["standards"])],
                  ["Period", f"{r['period']['start']} to {r['period']['end']} ({r['period']['days']:g} days)"],
                  ["System", r["system"]], ["Host", r["host"]], ["Operator", r["operator"] or "-"], ["Generated", r["generated"]]]
    if (r.get("time_source") or {}).get("note"):
        cover_rows.append(["Report time", r["time_source"]["note"]])
    t = Table([[P(a, base), P(b, base)] for a, b in cover_rows], colWidths=[35 * mm, W - 35 * mm])
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#c5cae9")), ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#e8eaf6")),
                           ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [t, Spacer(1, 12 * mm)]
    result = Table([[Paragraph(f'<font color="white" size="16"><b>Overall result: {esc(overall.upper())}</b></font>', cover_sub)]],
                   colWidths=[W * 0.7], rowHeights=[16 * mm])
    result.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colors.HexColor(ocolor)), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story += [result, Spacer(1, 8 * mm)]
    if report["failing_controls"]:
        story.append(Paragraph(f"Failing controls: {esc(', '.join(report['failing_controls']))}", cover_sub))
    story.append(PageBreak())

    # --- table of contents ---------------------------------------------------------------
    toc = TableOfContents()
    toc.levelStyles = [ParagraphStyle("toc0", parent=base, fontName="Helvetica-Bold", fontSize=10, leftIndent=0, leading=14),
                       ParagraphStyle("toc1", parent=base, fontSize=9, leftIndent=12, leading=12)]
    story += [Paragraph("Contents", h1), toc, PageBreak()]

    # --- executive summary ------------------------------------------------------------------
    story.append(heading("Executive summary"))
    story.append(P(f"This report collects evidence from the live system on host {r['host']} and maps it to the requirements of "
                   f"{', '.join(r['standard_names'])}. Each requirement is decided by the checks written for it (its own finding, naming the key, "
                   "rule or record range judged); process and document requirements are MANUAL until a reviewer's attestation is recorded. "
                   "The C1-C13 matrix below summarises the same evidence by control. Thresholds such as 90/30/1-day key rotation, 1-hour STS credentials and TLS 1.2 "
                   "with AEAD suites are the organisation's own policy, stricter than the standards: a pass means the system meets the "
                   "defined policy; the standard's own figure is cited where it has one."))
    story.append(Spacer(1, 4 * mm))
    rows = [["Standard", "Result", "Pass", "Warn", "Fail", "Manual", "Not eval.", "N/A", "Score"]]
    for s in report["standards"]:
        sc = s["score"]
        rows.append([P(s["name"], small), badge(_overall_status(s["overall"])),
                     sc["pass"], sc["warning"], sc["fail"], sc["manual"], sc["not_evaluated"], sc["not_applicable"], percent_text(sc["percent"])])
    t = Table(rows, colWidths=[38 * mm, 24 * mm] + [(W - 62 * mm - 18 * mm) / 6] * 6 + [18 * mm], repeatRows=1)
    t.setStyle(_grid(colors))
    story += [t, Spacer(1, 5 * mm)]
    story.append(_status_chart(report["standards"], W, Drawing, Rect, String, colors))
    story.append(Spacer(1, 5 * mm))
    story.append(Paragraph("Controls", h2))
    head = ["Control", "Title"] + [s["id"].upper() for s in report["standards"]]
    rows = [head]
    for i, c in enumerate(report["standards"][0]["controls"]):
        rows.append([c["id"], P(c["title"], small)] + [badge(s["controls"][i]["status"]) for s in report["standards"]])
    ncol = len(report["standards"])
    col = min(24 * mm, (W - 14 * mm - 60 * mm) / ncol)
    t = Table(rows, colWidths=[14 * mm, W - 14 * mm - col * ncol] + [col] * ncol, repeatRows=1)
    t.setStyle(_grid(colors))
    story += [t]

    # --- top findings: a one-page narrative ----------------------------------------------
    from zerotrust_admin.compliance.summary import declarations, exceptions, top_findings

    story.append(PageBreak())
    story.append(heading("Top findings"))
    top = top_findings(report)
    if not top:
        story.append(P("No failing or warning finding."))
    for i, g in enumerate(top, 1):
        refs = ", ".join(g["requirements"][:8]) + (f" and {len(g['requirements']) - 8} more" if len(g["requirements"]) > 8 else "")
        text = (f'<b>{i}.</b> <font color="{COLORS[g["status"]]}"><b>{LABEL[g["status"]]}</b></font> {esc(g["finding"])} '
                f'<font color="#455a64">({esc(refs)})</font>')
        if g["remediation"]:
            text += f'<br/><i>Remediation: {esc(g["remediation"])}</i>'
        story += [Paragraph(text, base), Spacer(1, 2 * mm)]
    comp = report.get("comparison")
    if comp:
        story.append(heading("Changes since the previous report", 1))
        story.append(P(f"Previous report {comp['previous_file']} generated {comp['previous_generated']} (overall {comp['previous_overall']}); "
                       f"{comp['unchanged']} requirement(s) unchanged, {len(comp['changes'])} changed."))
        if comp["changes"]:
            rows = [["Standard", "Requirement", "Before", "Now"]]
            for c in comp["changes"][:80]:
                rows.append([P(c["standard"], small), P(c["requirement"], small),
                             badge(c["before"]) if c["before"] in LABEL else P(c["before"], small), badge(c["after"]) if c["after"] in LABEL else P(c["after"], small)])
            t = Table(rows, colWidths=[45 * mm, 45 * mm, 30 * mm, 30 * mm], repeatRows=1)
            t.setStyle(_grid(colors))
            story.append(t)

    # --- charts: key ages, activity --------------------------------------------------------------
    story.append(PageBreak())
    story.append(heading("Key ages against the rotation policy"))
    if report["key_ages"]:
        story.append(_key_chart(report["key_ages"], W, Drawing, Rect, String, Line, colors))
        story.append(P("Bars show each key's age; the mark is the organisation's cryptoperiod for that key type. "
                       "PCI DSS 3.7.4 requires an entity-defined cryptoperiod but prescribes no number.", small))
    else:
        story.append(P("Key ages not available (see control C3)."))
    story.append(heading("Audit activity over the period"))
    story.append(_activity_chart(report["activity"], W, Drawing, Rect, String, Line, colors))
    ev_audit = report["evidence"]["audit"]
    story.append(P(f"{ev_audit.get('records_in_period')} records in the period; {ev_audit.get('records')} in the log; "
                   f"{ev_audit.get('failures_in_period')} failed operations in the period.", small))

    # --- anomalies ------------------------------------------------------------------------------------
    an = report["anomalies"]
    story.append(heading("Anomalies found"))
    story.append(P(f"Detection window {an.get('since')} to {an.get('until')}, baseline from {an.get('baseline_start')}. "
                   f"{(an.get('stats') or {}).get('window_records', 0)} records checked."))
    for note in an.get("notes") or []:
        story.append(P(f"Note: {note}", small))
    findings = an.get("findings") or []
    if findings:
        rows = [["Severity", "Kind", "User", "Start (UTC)", "Records", "Finding"]]
        for f in findings[:60]:
            rows.append([Paragraph(f'<font color="{COLORS["fail"] if f["severity"] == "high" else COLORS["warning"]}"><b>{f["severity"]}</b></font>', small),
                         P(f["kind"].replace("_", " "), small), P(f["user"], small), P(f["start"].replace("T", " "), small), f["count"], P(f["title"], small)])
        t = Table(rows, colWidths=[13 * mm, 24 * mm, 36 * mm, 28 * mm, 13 * mm, W - 114 * mm], repeatRows=1)
        t.setStyle(_grid(colors))
        story.append(t)
        if len(findings) > 60:
            story.append(P(f"... {len(findings) - 60} more in the JSON report.", small))
    else:
        story.append(P("No anomalies were found in the window."))

    # --- per standard: requirements and control detail ------------------------------------------------------------
    for s in report["standards"]:
        story.append(PageBreak())
        story.append(heading(f"{s['name']}: requirements"))
        story.append(P(f"{s['version']}. Result: {s['overall'].upper()}; score {percent_text(s['score']['percent'])} of {s['score']['scored']} scored requirements."))
        if s.get("retention"):
            story.append(P(f"Retention: {s['retention']}.", small))
        if s.get("review"):
            story.append(P(f"Log review: {s['review']}.", small))
        if s.get("note"):
            story.append(P(s["note"], small))
        story.append(Spacer(1, 3 * mm))
        by_id = {q["id"]: q for q in s["requirements"]}
        for section in s.get("sections") or [{"id": "", "title": "Requirements", "requirements": list(by_id)}]:
            story.append(CondPageBreak(60 * mm))  # a section heading never ends a page
            story.append(Paragraph(esc(f"{section['id']} {section['title']}".strip()), h3))
            rows = [["Requirement", "Status", "Finding and evidence"]]
            for rid in section["requirements"]:
                q = by_id[rid]
                cell = [Paragraph(f"<b>{esc(q['title'])}</b>", small)]
                multi = len(q.get("findings") or []) > 1
                if not q.get("findings"):
                    cell.append(P(q["finding"], small))
                for f in q.get("findings") or []:
                    lead = f'<font color="{COLORS[f["status"]]}"><b>{LABEL[f["status"]]}</b></font> ' if multi else ""
                    cell.append(Paragraph(lead + esc(f["finding"]), small))
                    for e in f["evidence"]:
                        cell.append(Paragraph("&#8226; " + esc(e), tiny))
                if q.get("exception"):
                    e = q["exception"]
                    cell.append(Paragraph(f'<font color="{COLORS["manual"]}">Accepted risk: owner {esc(e["owner"])}, until {esc(e["expires"][:10])}'
                                          f'{" (EXPIRED)" if e["expired"] else ""}: {esc(e["reason"])}</font>', small))
                if q.get("remediation"):
                    cell.append(Paragraph(f'<font color="{COLORS["fail"]}">Remediation: {esc(q["remediation"])}</font>', small))
                ctrl = ", ".join(q.get("controls") or [])
                rows.append([[P(q["id"], small), Paragraph(esc(ctrl), tiny)], badge(q["status"]), cell])
            t = Table(rows, colWidths=[27 * mm, 19 * mm, W - 46 * mm], repeatRows=1)
            t.setStyle(_grid(colors))
            story.append(t)
        story.append(heading(f"{s['name']}: control detail", 1))
        for c in s["controls"]:
            block = [Paragraph(f'{esc(c["id"])} {esc(c["title"])}: <font color="{COLORS[c["status"]]}">{LABEL[c["status"]]}</font>', h3),
                     P("Requirements: " + (", ".join(q["id"] for q in c["requirements"]) or "none for this standard"), small),
                     P(f"Finding: {c['summary']}", base), Spacer(1, 2 * mm)]
            rows = [[P(k.replace("_", " "), small), P(_value(v), small)] for k, v in c["evidence"].items()]
            if rows:
                et = Table(rows, colWidths=[45 * mm, W - 45 * mm])
                et.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#cfd8dc")), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f5f5f5"))]))
                block.append(et)
            for f in c["findings"]:
                block.append(Paragraph(f'<font color="{COLORS["fail"] if c["status"] == "fail" else COLORS["warning"]}">&#8226; {esc(f)}</font>', small))
            if c["remediation"]:
                block.append(P(f"Remediation: {c['remediation']}", small))
            story.append(CondPageBreak(40 * mm))
            story.append(KeepTogether(block[:4]))
            story += block[4:]

    # --- accepted risks, scope and attestations -----------------------------------------------------
    story.append(PageBreak())
    story.append(heading("Accepted risks (exceptions)"))
    exc = exceptions(report)
    if exc:
        story.append(P("An accepted risk never changes a requirement's status: the row keeps its finding, and the risk is listed here."))
        rows = [["Standard", "Req.", "Status", "Owner", "Reason", "Expires", "Recorded"]]
        for e in exc:
            rows.append([P(e["standard"], small), P(e["requirement"], small), badge(e["status"]), P(e["owner"], small), P(e["reason"], small),
                         P(e["expires"][:10] + (" EXPIRED" if e["expired"] else ""), small), P(f"{e['user']}, {e['timestamp']}, record {e['seq']}", small)])
        t = Table(rows, colWidths=[22 * mm, 18 * mm, 18 * mm, 25 * mm, W - 146 * mm, 23 * mm, 40 * mm], repeatRows=1)
        t.setStyle(_grid(colors))
        story.append(t)
    else:
        story.append(P("No accepted risk is recorded (compliance accept-risk)."))
    story.append(heading("Scope and attestations"))
    decl = declarations(report)
    if decl["scope"]:
        for name, d in decl["scope"].items():
            story.append(P(f"{name.replace('_', ' ')}: {'in scope' if d['in_scope'] else 'out of scope'}, declared by {d['user']} at {d['timestamp']} "
                           f"(audit record {d['seq']})" + (f": {d['note']}" if d.get("note") else "")))
    else:
        story.append(P("No scope declaration (compliance scope): requirements tied to cardholder data, PHI, personal data or availability are N/A."))
    if decl["attestations"]:
        rows = [["Requirement", "Reviewer", "Document (SHA-256)", "Expires", "Recorded"]]
        for a in decl["attestations"]:
            rows.append([P(a["requirement"] + (f" ({a['standard']})" if a.get("standard") else ""), small), P(a["reviewer"], small),
                         Paragraph(esc(a["document"]) + "<br/>" + esc(a["sha256"][:32]) + "<br/>" + esc(a["sha256"][32:]), mono), P(str(a["expires"])[:10], small), P(f"{a['user']}, record {a['seq']}", small)])
        t = Table(rows, colWidths=[24 * mm, 28 * mm, W - 112 * mm, 20 * mm, 40 * mm], repeatRows=1)
        t.setStyle(_grid(colors))
        story.append(t)

    # --- appendix -------------------------------------------------------------------------------------
    story.append(PageBreak())
    story.append(heading("Appendix: evidence hashes"))
    story.append(P("These values let a reviewer check this report against the system later: re-compute them on the host "
                   "(sha256sum of the files, zerotrust-admin audit verify for the chain head) and compare."))
    h = report["hashes"]
    head_info = h.get("audit_chain_head") or {}
    rows = [["Item", "Value"],
            [P("Effective configuration (redacted, canonical JSON) SHA-256", small), P(h.get("config_sha256"), mono)],
            [P("Config file SHA-256", small), P(h.get("config_file_sha256") or "no config file", mono)],
            [P("Audit chain head (record, hash)", small), P(f"{head_info.get('seq', '-')}  {head_info.get('hash', '-')}", mono)],
            [P("Audit records", small), P(h.get("audit_records"), mono)],
            [P("Vault file SHA-256", small), P(h.get("vault_sha256") or "n/a", mono)],
            [P("Collected evidence SHA-256", small), P(h.get("evidence_sha256"), mono)]]
    t = Table(rows, colWidths=[60 * mm, W - 60 * mm], repeatRows=1)
    t.setStyle(_grid(colors))
    story.append(t)

    doc.multiBuild(story, canvasmaker=NumberedCanvas)
    return buf.getvalue()


def _value(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "none"
    if value is None:
        return "-"
    return str(value)


def _grid(colors):
    from reportlab.platypus import TableStyle

    return TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b0bec5")),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#283593")), ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                       ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"), ("FONTSIZE", (0, 0), (-1, -1), 8),
                       ("VALIGN", (0, 0), (-1, -1), "TOP"), ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f4fb")])])


def _status_chart(standards, width, Drawing, Rect, String, colors):
    """One stacked bar per standard: its requirements by status."""
    bar_h, gap, label_w = 14, 8, 110
    height = len(standards) * (bar_h + gap) + 30
    d = Drawing(width, height)
    usable = width - label_w - 10
    y = height - 20
    for s in standards:
        total = max(1, s["score"]["requirements"])
        x = label_w
        d.add(String(0, y + 3, s["name"][:24], fontName="Helvetica", fontSize=8))
        for status in ORDER:
            n = s["score"][status]
            if not n:
                continue
            w = usable * n / total
            d.add(Rect(x, y, w, bar_h, fillColor=colors.HexColor(COLORS[status]), strokeColor=colors.white, strokeWidth=0.5))
            if w > 14:
                d.add(String(x + w / 2, y + 4, str(n), fontName="Helvetica-Bold", fontSize=7, fillColor=colors.white, textAnchor="middle"))
            x += w
        y -= bar_h + gap
    x = label_w
    for status in ORDER:
        d.add(Rect(x, 2, 8, 8, fillColor=colors.HexColor(COLORS[status]), strokeColor=None))
        d.add(String(x + 11, 3, LABEL[status].lower(), fontName="Helvetica", fontSize=7))
        x += 62
    return d


def _key_chart(keys, width, Drawing, Rect, String, Line, colors):
    bar_h, gap, label_w = 12, 6, 150
    height = len(keys) * (bar_h + gap) + 24
    d = Drawing(width, height)
    scale_max = max(max((k["age_days"] or 0) for k in keys), max(k["policy_days"] for k in keys)) * 1.1 or 1
    usable = width - label_w - 40
    y = height - 18
    for k in keys:
        age = k["age_days"] or 0
        overdue = age > k["policy_days"]
        d.add(String(0, y + 2, k["key"][:34], fontName="Helvetica", fontSize=7.5))
        px = label_w + usable * k["policy_days"] / scale_max
        # the policy's span as a light track, so that a new key's short bar is seen against it
        d.add(Rect(label_w, y, px - label_w, bar_h, fillColor=colors.HexColor("#e8f5e9"), strokeColor=colors.HexColor("#a5d6a7"), strokeWidth=0.4))
        d.add(Rect(label_w, y, max(3, usable * age / scale_max), bar_h, fillColor=colors.HexColor(COLORS["fail"] if overdue else COLORS["pass"]), strokeColor=None))
        d.add(Line(px, y - 2, px, y + bar_h + 2, strokeColor=colors.HexColor("#212121"), strokeWidth=1.5))
        d.add(String(label_w + usable + 4, y + 2, f"{age:g}/{k['policy_days']:g} d", fontName="Helvetica", fontSize=7))
        y -= bar_h + gap
    d.add(String(label_w, 2, "age in days (bar) against policy (mark)", fontName="Helvetica", fontSize=7, fillColor=colors.HexColor("#555555")))
    return d


def _activity_chart(days, width, Drawing, Rect, String, Line, colors):
    height = 120
    d = Drawing(width, height)
    if not days:
        d.add(String(0, height / 2, "no records in the period", fontName="Helvetica", fontSize=8))
        return d
    left, bottom, top = 36, 18, 10
    plot_w, plot_h = width - left - 4, height - bottom - top
    peak = max(c for _, c in days) or 1
    bw = plot_w / len(days)
    d.add(Line(left, bottom, left + plot_w, bottom, strokeColor=colors.HexColor("#616161")))
    d.add(Line(left, bottom, left, bottom + plot_h, strokeColor=colors.HexColor("#616161")))
    d.add(String(left - 4, bottom + plot_h - 6, str(peak), fontName="Helvetica", fontSize=7, textAnchor="end"))
    d.add(String(left - 4, bottom - 2, "0", fontName="Helvetica", fontSize=7, textAnchor="end"))
    for i, (day, count) in enumerate(days):
        if count:
            d.add(Rect(left + i * bw + bw * 0.1, bottom, max(0.6, bw * 0.8), plot_h * count / peak, fillColor=colors.HexColor("#3949ab"), strokeColor=None))
    step = max(1, len(days) // 6)
    for i in range(0, len(days), step):
        if left + i * bw + 40 <= width:
            d.add(String(left + i * bw, 4, days[i][0], fontName="Helvetica", fontSize=6.5))
    d.add(String(left + plot_w, bottom + plot_h + 1, "records per day (UTC)", fontName="Helvetica", fontSize=7, textAnchor="end",
                 fillColor=colors.HexColor("#555555")))
    return d
