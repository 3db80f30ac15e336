"""What the PDF and the Markdown both print beyond the rows: the top findings
narrative, the comparison with a previous report (``--compare``), the
accepted risks and the declarations (scope, attestations)."""

from __future__ import annotations

import json
from pathlib import Path

from zerotrust_admin.errors import UsageError

RANK = {"fail": 0, "warning": 1, "not_evaluated": 2}


def top_findings(report: dict, limit: int = 10) -> list[dict]:
    """Failing and warning findings, the same finding once with every
    requirement it decides, worst and widest first."""
    groups: dict[tuple, dict] = {}
    for s in report["standards"]:
        for q in s["requirements"]:
            for f in q.get("findings") or []:
                if f["status"] not in RANK:
                    continue
                key = (f["status"], f["finding"])
                g = groups.setdefault(key, {"status": f["status"], "finding": f["finding"], "remediation": f.get("remediation", ""), "requirements": []})
                ref = f"{s['name']} {q['id']}"
                if ref not in g["requirements"]:
                    g["requirements"].append(ref)
    ordered = sorted(groups.values(), key=lambda g: (RANK[g["status"]], -len(g["requirements"]), g["finding"]))
    return ordered[:limit]


def exceptions(report: dict) -> list[dict]:
    out = []
    for s in report["standards"]:
        for q in s["requirements"]:
            exc = q.get("exception")
            if exc:
                out.append({**exc, "standard": s["name"], "standard_id": s["id"], "requirement": q["id"], "status": q["status"]})
    return out


def declarations(report: dict) -> dict:
    audit = report["evidence"]["audit"]
    return {"scope": audit.get("scope") or {}, "attestations": audit.get("attestations") or []}


def load_previous(path: str | Path) -> dict:
    p = Path(path).expanduser()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--compare {p}: no such file", hint="give the .json of an earlier compliance-report run") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"--compare {p}: not a JSON report ({type(exc).__name__})", hint="give the .json of an earlier compliance-report run") from None
    if not isinstance(data, dict) or not isinstance(data.get("standards"), list) or not isinstance(data.get("report"), dict):
        raise UsageError(f"--compare {p}: not a compliance report", hint="give the .json of an earlier compliance-report run")
    return data


def compare(previous: dict, current: dict, name: str = "") -> dict:
    """Requirement by requirement: what changed status since ``previous``."""
    before = {(s.get("id"), q.get("id")): q.get("status") for s in previous["standards"] if isinstance(s, dict)
              for q in s.get("requirements") or [] if isinstance(q, dict)}
    changes, same = [], 0
    seen = set()
    compared = {k[0] for k in before}
    for s in current["standards"]:
        if s["id"] not in compared:  # a standard the previous report did not cover: nothing to compare
            continue
        for q in s["requirements"]:
            key = (s["id"], q["id"])
            seen.add(key)
            old = before.get(key)
            if old == q["status"]:
                same += 1
            else:
                changes.append({"standard": s["name"], "requirement": q["id"], "before": old or "absent", "after": q["status"]})
    names = {s["id"]: s["name"] for s in current["standards"]}
    for key, old in before.items():
        if key not in seen and key[0] in names:
            changes.append({"standard": names[key[0]], "requirement": key[1], "before": old, "after": "absent"})
    prev = previous.get("report") or {}
    return {"previous_file": name, "standards_compared": sorted(compared & {s["id"] for s in current["standards"]}), "previous_generated": prev.get("generated"), "previous_period": prev.get("period"),
            "previous_overall": previous.get("overall"), "unchanged": same, "changes": changes}
