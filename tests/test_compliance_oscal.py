"""OSCAL Assessment Results (compliance-report --output X.oscal.json),
validated with compliance-trestle's OSCAL models, from a real home.

Every requirement of the JSON report is one finding; only a pass reads as
satisfied; FedRAMP requirements carry NIST's OSCAL control ids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import ROOT


def _env_for(base: Path) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base / "userhome"), "ZEROTRUST_HOME": str(base / "home"),
            "XDG_CONFIG_HOME": str(base / "xdg-config"), "XDG_DATA_HOME": str(base / "xdg-data"),
            "ZEROTRUST_PRINCIPAL": "alice@EXAMPLE.COM", "KRB5CCNAME": f"FILE:{base / 'no-ccache'}", "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    base = tmp_path_factory.mktemp("oscal")
    env = _env_for(base)

    def run(*args, input=b""):
        return subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], input=input, env=env, capture_output=True, timeout=180, cwd=str(ROOT))

    assert run("init").returncode == 0
    assert run("vault", "put", "db/password", input=b"value-1").returncode == 0
    assert run("vault", "get", "db/password").returncode == 0
    oscal = base / "all.oscal.json"
    res = run("compliance-report", "--standard", "all", "--output", str(oscal))
    assert res.returncode == 0, res.stderr.decode()
    records = [json.loads(x) for x in (base / "home" / "audit.log").read_text().splitlines()]
    return {"base": base, "env": env, "run": run, "oscal": oscal, "record": records[-1]}


def _model():
    from trestle.oscal.assessment_results import Model

    return Model


def test_export_validates_with_trestle(made):
    from trestle.oscal.assessment_results import AssessmentResults

    doc = _model().model_validate_json(made["oscal"].read_bytes())
    results = doc.assessment_results.results
    assert [r.props[0].value for r in results] == ["soc2", "pci-dss", "hipaa", "gdpr", "fedramp"]
    assert all(r.findings and r.observations for r in results)
    # trestle's own reader, as `trestle validate` uses it
    read = AssessmentResults.oscal_read(made["oscal"])
    assert read.uuid == doc.assessment_results.uuid
    assert made["record"]["event"] == "compliance_report" and made["record"]["details"]["format"] == "oscal.json"
    assert oct(made["oscal"].stat().st_mode & 0o777) == "0o600"


def test_trestle_rejects_a_broken_document(made):
    """The validator can fail: a state OSCAL does not define, a finding without a target, a bad uuid."""
    from pydantic import ValidationError

    good = json.loads(made["oscal"].read_text())
    finding = good["assessment-results"]["results"][0]["findings"][0]
    for mutate in (lambda f: f["target"]["status"].__setitem__("state", "passed"),
                   lambda f: f.pop("target"),
                   lambda f: f.__setitem__("uuid", "not-a-uuid")):
        broken = json.loads(json.dumps(good))
        mutate(broken["assessment-results"]["results"][0]["findings"][0])
        with pytest.raises(ValidationError):
            _model().model_validate(broken)
    assert finding["target"]["status"]["state"] in ("satisfied", "not-satisfied")


def _report_and_oscal(tmp_path, made, standard="all"):
    """A JSON report and its OSCAL rendering from one build (library, fixed time)."""
    from zerotrust_admin.compliance.oscal import assessment_results
    from zerotrust_admin.compliance.report import build_report
    from zerotrust_admin.config import load_config

    config = load_config(None, environ=made["env"])
    now = datetime.now(timezone.utc).replace(microsecond=0)
    report = json.loads(json.dumps(build_report(config, standard, period=timedelta(days=90), now=now, operator="alice@EXAMPLE.COM"), default=str))
    return report, assessment_results(report)


def test_every_requirement_is_a_finding_and_only_pass_is_satisfied(made, tmp_path):
    from zerotrust_admin.compliance.oscal import control_id

    report, doc = _report_and_oscal(tmp_path, made)
    _model().model_validate(doc)
    results = doc["assessment-results"]["results"]
    statuses_seen = set()
    for std, result in zip(report["standards"], results):
        findings = result["findings"]
        assert len(findings) == len(std["requirements"])
        observations = {o["uuid"] for o in result["observations"]}
        reviewed = {c["control-id"] for c in result["reviewed-controls"]["control-selections"][0]["include-controls"]}
        for req, finding in zip(std["requirements"], findings):
            props = {p["name"]: p["value"] for p in finding["props"]}
            assert props["label"] == req["id"] and props["zt-status"] == req["status"]
            state = finding["target"]["status"]["state"]
            assert (state == "satisfied") == (req["status"] == "pass"), (std["id"], req["id"], req["status"], state)
            if req["status"] == "fail":
                assert finding["target"]["status"]["reason"] == "fail"
            related = [r["observation-uuid"] for r in finding["related-observations"]]
            assert related and set(related) <= observations
            assert len(related) == max(1, len(req.get("findings") or []))  # one observation per deciding check
            cid, statement = control_id(std["id"], req["id"])
            assert cid in reviewed
            assert finding["target"]["target-id"] == (statement or f"{cid}_obj")
            statuses_seen.add(req["status"])
    assert {"pass", "fail"} <= statuses_seen  # the home has both


def test_fedramp_ids_follow_nist_oscal_catalog_conventions(made, tmp_path):
    from zerotrust_admin.compliance.oscal import control_id

    assert control_id("fedramp", "AC-7") == ("ac-7", None)
    assert control_id("fedramp", "IA-5(1)") == ("ia-5.1", None)
    assert control_id("fedramp", "AU-6(3)") == ("au-6.3", None)
    assert control_id("fedramp", "IA-5d") == ("ia-5", "ia-5_smt.d")
    assert control_id("fedramp", "IA-5(d)") == ("ia-5", "ia-5_smt.d")
    assert control_id("pci-dss", "8.3.4") == ("pci-dss_8.3.4", None)
    assert control_id("soc2", "CC6.1") == ("soc2_cc6.1", None)
    assert control_id("hipaa", "164.312(a)(2)(iv)") == ("hipaa_164.312.a.2.iv", None)
    assert control_id("gdpr", "Art. 32(1)(a)") == ("gdpr_art32.1.a", None)
    report, doc = _report_and_oscal(tmp_path, made, "fedramp")
    fed = doc["assessment-results"]["results"][0]
    ids = {c["control-id"] for c in fed["reviewed-controls"]["control-selections"][0]["include-controls"]}
    assert ids and all(i == i.lower() and "(" not in i for i in ids)
    assert "sc-28.1" in ids and "au-9" in ids  # SC-28(1), AU-9 are in the FedRAMP mapping
    # distinct requirements never collapse onto one finding
    labels = [next(p["value"] for p in f["props"] if p["name"] == "label") for f in fed["findings"]]
    assert len({f["uuid"] for f in fed["findings"]}) == len(labels)


def test_same_report_renders_to_the_same_bytes(made, tmp_path):
    from zerotrust_admin.compliance.oscal import render_oscal

    report, doc = _report_and_oscal(tmp_path, made, "pci")
    assert render_oscal(report) == render_oscal(json.loads(json.dumps(report)))
    for item in [doc["assessment-results"]] + doc["assessment-results"]["results"]:
        assert uuid.UUID(item["uuid"]).version == 5
    changed = json.loads(json.dumps(report))
    changed["hashes"]["evidence_sha256"] = "0" * 64
    assert render_oscal(changed) != render_oscal(report)  # another evidence set, other identifiers
