"""Precision and recall of the detectors against labelled synthetic anomalies.

A finding is a true positive when any record it cites is an injected record
(any label). A label is recalled when a finding cites one of its records.
Findings on benign noise (late evenings, real travel, deploy days) are false
positives: that is what an analyst would have to dismiss.
"""

from __future__ import annotations

from collections import defaultdict


def evaluate(findings, labels) -> dict:
    owner: dict[int, object] = {}
    for lab in labels:
        for seq in lab.seqs:
            owner[seq] = lab
    tp = 0
    recalled: set[str] = set()
    per_kind_findings: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> [tp, total]
    false_positives = []
    for f in findings:
        hits = {owner[s].id for s in f.seqs if s in owner}
        per_kind_findings[f.kind][1] += 1
        if hits:
            tp += 1
            per_kind_findings[f.kind][0] += 1
            recalled |= hits
        else:
            false_positives.append(f)
    per_label_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> [recalled, total]
    for lab in labels:
        per_label_kind[lab.kind][1] += 1
        if lab.id in recalled:
            per_label_kind[lab.kind][0] += 1
    total = len(findings)
    return {
        "findings": total,
        "true_positives": tp,
        "precision": tp / total if total else 1.0,
        "labels": len(labels),
        "recalled": len(recalled),
        "recall": len(recalled) / len(labels) if labels else 1.0,
        "by_finding_kind": {k: {"true_positives": v[0], "findings": v[1]} for k, v in sorted(per_kind_findings.items())},
        "by_label_kind": {k: {"recalled": v[0], "labels": v[1]} for k, v in sorted(per_label_kind.items())},
        "false_positive_examples": [f.title for f in false_positives[:10]],
    }
