"""OSCAL Assessment Results (OSCAL 1.1.2) from a compliance report.

One ``result`` per standard; each requirement becomes one ``finding`` whose
target is the requirement's control objective, backed by one
``observation`` that carries the requirement's own evidence text. Identifiers
are UUIDv5 derived from the report's evidence hash and the requirement, so
the same state gives the same document byte for byte.

Control ids: NIST SP 800-53 (FedRAMP) follows NIST's OSCAL catalog
(``AC-7`` -> ``ac-7``, ``IA-5(1)`` -> ``ia-5.1``, ``IA-5d`` / ``IA-5(d)``
-> control ``ia-5``, statement ``ia-5_smt.d``). The other frameworks have no
official OSCAL catalog; their ids are ours, documented in
docs/evidence-bundle.md: ``pci-dss_8.3.4``, ``soc2_cc6.1``,
``hipaa_164.312.a.2.iv``, ``gdpr_art32.1.a``. The requirement id as the
standard writes it is always kept in a ``label`` property.

Status: ``pass`` is ``satisfied``; everything else is ``not-satisfied`` with
reason ``fail`` (fail) or ``other`` (warning, manual, not evaluated, not
applicable), and our exact status in a ``zt-status`` property, so nothing
that was not a pass reads as one. Pure Python: no trestle, typer or rich.
"""

from __future__ import annotations

import json
import re
import uuid

OSCAL_VERSION = "1.1.2"
NS = "urn:zerotrust-admin:oscal"
_ROOT = uuid.UUID("6f1c2d1e-5b8a-5c0e-9d27-7a6f3e0b9c41")

_NIST = re.compile(r"^([A-Za-z]{2})-(\d+)(?:\((\d+)\))?(?:\(?([a-z])\)?)?$")


def control_id(standard: str, requirement: str) -> tuple[str, str | None]:
    """(OSCAL control id, statement id or None) for a requirement id of a standard."""
    req = requirement.strip()
    if standard == "fedramp":
        m = _NIST.match(req)
        if m:
            family, number, enhancement, item = m.groups()
            cid = f"{family.lower()}-{int(number)}" + (f".{int(enhancement)}" if enhancement else "")
            return cid, (f"{cid}_smt.{item}" if item else None)
    prefix = {"pci-dss": "pci-dss", "soc2": "soc2", "hipaa": "hipaa", "gdpr": "gdpr", "fedramp": "nist"}.get(standard, standard)
    body = re.sub(r"^art\.?\s*", "art", req.lower()).replace("§", "")
    body = re.sub(r"[()\s]+", ".", body)
    body = re.sub(r"[^a-z0-9._-]", "-", body)
    body = re.sub(r"\.{2,}", ".", body).strip(".-")
    return f"{prefix}_{body}", None


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_ROOT, "\x1f".join(parts)))


def _prop(name: str, value, *, ns: bool = True) -> dict:
    prop = {"name": name, "value": str(value).strip() or "-"}
    if ns:
        prop["ns"] = NS
    return prop


def _oscal_time(text: str) -> str:
    return text if text.endswith("Z") else text + "Z"


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "-"


def _evidence_text(req: dict) -> str:
    evidence = req.get("evidence")
    if isinstance(evidence, str):
        return evidence or "no evidence recorded"
    return json.dumps(evidence, sort_keys=True, ensure_ascii=False, default=str)


def _checks(req: dict) -> list[tuple[str, str, str]]:
    """(check name, what it found, its status) per check that decided the
    requirement; one entry from the requirement's evidence when it lists none."""
    out = []
    for item in req.get("findings") or []:
        if not isinstance(item, dict):
            continue
        lines = item.get("evidence")
        lines = lines if isinstance(lines, list) else ([lines] if lines else [])
        text = "\n".join([str(item.get("finding") or "")] + [str(x) for x in lines]).strip()
        out.append((str(item.get("check") or ""), text or "no evidence recorded", str(item.get("status") or req["status"])))
    return out or [("", _evidence_text(req), req["status"])]


def _state(status: str) -> dict:
    if status == "pass":
        return {"state": "satisfied", "reason": "pass"}
    return {"state": "not-satisfied", "reason": "fail" if status == "fail" else "other"}


def assessment_results(report: dict) -> dict:
    """The OSCAL ``assessment-results`` document (a dict ready for JSON) for a built report."""
    meta = report["report"]
    digest = report.get("hashes", {}).get("evidence_sha256") or ""
    generated = _oscal_time(meta["generated"])
    start = _oscal_time(meta["period"]["start"])
    end = _oscal_time(meta["period"]["end"])
    doc_uuid = _uuid("assessment-results", digest, generated, ",".join(meta["standards"]))
    results = []
    for std in report["standards"]:
        sid = std["id"]
        findings, observations, controls, seen = [], [], {}, {}
        for req in std["requirements"]:
            cid, statement = control_id(sid, req["id"])
            seen[req["id"]] = seen.get(req["id"], 0) + 1
            key = req["id"] if seen[req["id"]] == 1 else f"{req['id']}#{seen[req['id']]}"  # a listed-twice row keeps unique uuids
            controls.setdefault(cid, set())
            if statement:
                controls[cid].add(statement)
            related = []
            for n, (check, text, check_status) in enumerate(_checks(req)):
                obs_uuid = _uuid(doc_uuid, sid, key, "observation", str(n))
                related.append({"observation-uuid": obs_uuid})
                observations.append({
                    "uuid": obs_uuid,
                    "title": _one_line(f"{std['name']} {req['id']}" + (f": {check}" if check else "")),
                    "description": text,
                    "props": [_prop("label", req["id"], ns=False), _prop("zt-status", check_status),
                              *([_prop("zt-check", check)] if check else [])],
                    "methods": ["EXAMINE"] if check_status in ("manual", "not_applicable") else ["TEST"],
                    "types": ["control-objective"],
                    "collected": end,
                    "relevant-evidence": [{"href": "#evidence", "description": f"evidence_sha256 {digest} (compliance report JSON, 'evidence' and 'anomalies')"}],
                })
            target = {"type": "statement-id", "target-id": statement} if statement else {"type": "objective-id", "target-id": f"{cid}_obj"}
            status = _state(req["status"])
            remediation = req.get("remediation") or ""
            if remediation:
                status["remarks"] = f"remediation: {remediation}"
            findings.append({
                "uuid": _uuid(doc_uuid, sid, key, "finding"),
                "title": _one_line(f"{req['id']} {req.get('title', '')}"),
                "description": str(req.get("finding") or "") or _evidence_text(req),
                "props": [_prop("label", req["id"], ns=False), _prop("zt-status", req["status"]),
                          *([_prop("zt-controls", " ".join(req["controls"]))] if req.get("controls") else [])],
                "target": {**target, "status": status},
                "related-observations": related,
            })
        selections = [{"control-id": cid, **({"statement-ids": sorted(st)} if st else {})} for cid, st in controls.items()]
        score = std.get("score", {})
        result = {
            "uuid": _uuid(doc_uuid, sid, "result"),
            "title": _one_line(f"{std['name']} {std.get('version', '')}: {std['overall']}"),
            "description": _one_line(f"zerotrust-admin compliance report for {std['name']} {std.get('version', '')}; "
                                     f"pass {score.get('pass', 0)}, fail {score.get('fail', 0)}, warning {score.get('warning', 0)}, "
                                     f"manual {score.get('manual', 0)}, not evaluated {score.get('not_evaluated', 0)}, "
                                     f"not applicable {score.get('not_applicable', 0)}"),
            "start": start,
            "end": end,
            "props": [_prop("zt-standard", sid), _prop("zt-overall", std["overall"])],
            "reviewed-controls": {"control-selections": [{"include-controls": selections}]} if selections
            else {"control-selections": [{"include-all": {}}]},
        }
        if observations:
            result["observations"] = observations
            result["findings"] = findings
        results.append(result)
    props = [_prop("zt-evidence-sha256", digest or "-"), _prop("zt-schema-version", report.get("schema_version", "-"))]
    clock = meta.get("time_source") or {}
    if clock.get("source_date_epoch") is not None:  # disclosed whenever it was set
        props.append(_prop("zt-source-date-epoch", clock["source_date_epoch"]))
        props.append(_prop("zt-time-source", clock.get("source") or "-"))
    return {"assessment-results": {
        "uuid": doc_uuid,
        "metadata": {
            "title": _one_line(f"{meta['title']}: {', '.join(meta.get('standard_names', meta['standards']))}"),
            "last-modified": generated,
            "version": report.get("schema_version", "1.0"),
            "oscal-version": OSCAL_VERSION,
            "props": props,
            "remarks": f"{meta['system']} on {meta['host']}, operator {meta['operator'] or '-'}; period {start} to {end}"
                       + (f"; {clock['note']}" if clock.get("note") else ""),
        },
        "import-ap": {"href": "#assessment-plan", "remarks": "No separate assessment plan: the plan is the standard's requirement mapping shipped with zerotrust-admin."},
        "results": results,
    }}


def render_oscal(report: dict) -> bytes:
    """The OSCAL JSON document, deterministic (sorted keys, 2-space indent)."""
    return (json.dumps(assessment_results(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
