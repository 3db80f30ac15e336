"""Issue 13: every rejection of the auditor's review, as a test on a real home.

Each test drives the real CLI (or the report library on a home the CLI
built) and looks at the requirement rows an auditor reads: their status and
their own finding. Each one failed on the report before issue 13 (39f564a).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import backend_missing
from zerotrust_admin.compliance import report as report_mod
from zerotrust_admin.compliance.report import STANDARDS, build_report, load_standard, standard_requirements
from zerotrust_admin.config import load_config


def _env_for(home: Path, base: Path, principal="alice@EXAMPLE.COM") -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base / "userhome"), "ZEROTRUST_HOME": str(home),
            "XDG_CONFIG_HOME": str(base / "xdg-config"), "XDG_DATA_HOME": str(base / "xdg-data"),
            "ZEROTRUST_PRINCIPAL": principal, "KRB5CCNAME": f"FILE:{base / 'no-ccache'}", "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def template_home(tmp_path_factory):
    base = tmp_path_factory.mktemp("reqs")
    home = base / "home"
    env = _env_for(home, base)

    def run(*args, input=b""):
        res = subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], input=input, env=env, capture_output=True, timeout=60)
        assert res.returncode in (0, 3), res.stderr
        return res.returncode

    run("init")
    for name in ("db/password", "app/token", "ldap/keytab"):
        run("vault", "put", name, input=b"value-" + name.encode())
    run("vault", "get", "db/password")
    run("vault", "get", "db/missing")
    return home


@pytest.fixture
def home(zt_env, template_home):
    h = Path(zt_env["ZEROTRUST_HOME"])
    shutil.copytree(template_home, h)
    return h


def _config_file(zt_env) -> Path:
    cfg = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    return cfg


def _write_config(zt_env, text: str) -> Path:
    cfg = _config_file(zt_env)
    cfg.write_text(text)
    os.chmod(cfg, 0o600)
    return cfg


def _created(home: Path) -> datetime:
    conn = sqlite3.connect(home / "vault.db")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    conn.close()
    return datetime.fromisoformat(meta["created"].replace("Z", "+00:00"))


def _build(zt_env, standard="all", now=None, days=90) -> dict:
    now = now or datetime.now(timezone.utc) + timedelta(minutes=2)
    return build_report(load_config(None, environ=zt_env), standard, period=timedelta(days=days), now=now, operator="test")


def _reqs(report: dict, sid: str) -> dict:
    std = next(s for s in report["standards"] if s["id"] == sid)
    return {q["id"]: q for q in std["requirements"]}


def _control(report: dict, sid: str, cid: str) -> dict:
    std = next(s for s in report["standards"] if s["id"] == sid)
    return next(c for c in std["controls"] if c["id"] == cid)


# --- PASS on process or document requirements with nothing behind them -> MANUAL ----------------
PROCESS_ROWS = {"pci-dss": ["12.10.1", "12.10.2", "12.10.5", "12.3.3", "4.2.1.1", "3.6.1.1", "7.2.1"], "soc2": ["CC7.4"],
                "hipaa": ["164.404", "164.408", "164.410"], "gdpr": ["Art. 30(1)(g)"]}


def test_process_requirements_are_manual_until_attested_and_warn_once_expired(cli, zt_env, home, tmp_path):
    # a state in which every automated part passes as far as it can: channels and revocation are what CC7.4 had
    report = _build(zt_env)
    for sid, ids in PROCESS_ROWS.items():
        rows = _reqs(report, sid)
        for rid in ids:
            assert rows[rid]["status"] in ("manual", "fail", "warning"), (sid, rid, rows[rid]["status"])
            assert any(f["check"] == "manual" and f["status"] == "manual" for f in rows[rid]["findings"]), (sid, rid)
    # GDPR Art. 33(1): no breach happened: not applicable (not PASS)
    assert _reqs(report, "gdpr")["Art. 33(1)"]["status"] == "not_applicable"
    # an attestation makes the document requirement PASS, citing reviewer, date, the document's SHA-256 and expiry
    doc = tmp_path / "ir-plan.pdf"
    doc.write_bytes(b"%PDF incident response plan v3")
    expires = (datetime.now(timezone.utc) + timedelta(days=2)).date().isoformat()
    res = cli("compliance", "attest", "12.10.1", "--file", str(doc), "--reviewer", "Carol Auditor", "--expires", expires)
    assert res.code == 0, res.err
    rec = json.loads((home / "audit.log").read_bytes().splitlines()[-1])
    assert rec["event"] == "compliance_attestation" and rec["action"] == "report"
    import hashlib

    digest = hashlib.sha256(doc.read_bytes()).hexdigest()
    assert rec["details"]["document_sha256"] == digest and "incident" not in json.dumps(rec)  # the hash, never the content
    row = _reqs(_build(zt_env), "pci-dss")["12.10.1"]
    assert row["status"] == "pass" and "Carol Auditor" in row["finding"] and digest[:16] in row["finding"] and expires in row["finding"]
    # ... and a WARNING once it has expired
    late = _reqs(_build(zt_env, now=datetime.now(timezone.utc) + timedelta(days=5)), "pci-dss")["12.10.1"]
    assert late["status"] == "warning" and "EXPIRED" in late["finding"]
    # bad input: unknown requirement (3), a past expiry (2), a missing document (3); none is recorded
    n = len((home / "audit.log").read_bytes().splitlines())
    assert cli("compliance", "attest", "99.9", "--file", str(doc), "--reviewer", "x", "--expires", expires).code == 3
    assert cli("compliance", "attest", "12.10.2", "--file", str(doc), "--reviewer", "x", "--expires", "2020-01-01").code == 2
    assert cli("compliance", "attest", "12.10.2", "--file", str(tmp_path / "nope"), "--reviewer", "x", "--expires", expires).code == 3
    assert len((home / "audit.log").read_bytes().splitlines()) == n


# --- a control's evidence pasted onto every requirement ------------------------------------------------
def test_each_requirement_has_its_own_finding(zt_env, home):
    report = _build(zt_env, "pci")
    rows = _reqs(report, "pci-dss")
    tenx = [q for rid, q in rows.items() if rid.startswith("10.") and q["status"] != "manual" and q["status"] != "not_applicable"]
    assert len(tenx) >= 9
    assert len({q["finding"] for q in tenx}) == len(tenx), "two 10.x rows share one finding"
    assert not any("chain intact" in q["finding"] for q in tenx if not q["id"].startswith("10.3"))
    # a 0644 config fails the file-mode requirement, not 8.6.2 (hard-coded passwords)
    cfg = _write_config(zt_env, "audit:\n  retention_days: 400\n")
    os.chmod(cfg, 0o644)
    rows = _reqs(_build(zt_env, "pci"), "pci-dss")
    assert rows["2.2.6"]["status"] == "fail" and str(cfg) in rows["2.2.6"]["finding"]
    assert rows["8.6.2"]["status"] == "pass"
    os.chmod(cfg, 0o600)


def test_one_edited_record_fails_integrity_not_retention(zt_env, home):
    log = home / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"success":true', b'"success":false')
    log.write_bytes(b"".join(lines))
    rows = _reqs(_build(zt_env, "pci"), "pci-dss")
    assert rows["10.3.4"]["status"] == "fail" and "record 3" in rows["10.3.4"]["finding"]
    assert "retention" in rows["10.5.1"]["finding"] and "chain" not in rows["10.5.1"]["finding"]
    assert rows["10.5.1"]["status"] != "fail"


# --- period claims the evidence cannot cover ------------------------------------------------------------
def test_a_90_day_report_on_a_new_log_passes_neither_retention_nor_coverage(zt_env, home):
    report = _build(zt_env, "all")
    pci, hipaa = _reqs(report, "pci-dss"), _reqs(report, "hipaa")
    assert pci["10.5.1"]["status"] != "pass" and "365 d required" in pci["10.5.1"]["finding"]
    assert hipaa["164.316(b)(2)(i)"]["status"] != "pass"
    cov = pci["10.2.1"]
    assert cov["status"] != "pass" and "does not cover" in cov["finding"]
    # a log whose first records were removed: the uncovered part is a FAIL
    log = home / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[3:]))
    assert _reqs(_build(zt_env, "pci"), "pci-dss")["10.2.1"]["status"] == "fail"


def test_review_cadence_is_replayed_over_the_period(cli, zt_env, home):
    assert cli("audit", "anomalies").code == 0
    later = datetime.now(timezone.utc) + timedelta(days=3)
    report = _build(zt_env, "all", now=later)
    assert _reqs(report, "pci-dss")["10.4.1"]["status"] == "fail"  # daily: a 3-day gap
    assert "gap" in _reqs(report, "pci-dss")["10.4.1"]["finding"]
    assert _reqs(report, "fedramp")["AU-6"]["status"] == "pass"  # weekly
    assert _reqs(report, "soc2")["CC7.3"]["status"] == "pass"  # no frequency fixed


# --- false negatives ----------------------------------------------------------------------------------
def test_wildcard_policies_fail_through_effective_permissions(zt_env, home):
    _write_config(zt_env, 'access:\n  policies:\n'
                          '    - {principals: ["alice@EXAMPLE.COM"], secrets: ["*"], actions: ["*"], effect: allow}\n'
                          '    - {principals: ["*"], secrets: ["*"], actions: [read], effect: allow}\n')
    rows = _reqs(_build(zt_env, "pci"), "pci-dss")
    assert rows["7.2.2"]["status"] == "fail" and "rule 1: anyone may read every secret (3 of 3" in rows["7.2.2"]["finding"]
    _write_config(zt_env, 'access:\n  policies:\n'
                          '    - {principals: ["*@EXAMPLE.COM"], secrets: ["*"], actions: ["*"], effect: allow}\n')
    report = _build(zt_env, "all")
    row = _reqs(report, "pci-dss")["7.2.2"]
    assert row["status"] == "fail" and "rule 0: any principal matching *@EXAMPLE.COM may admin" in row["finding"]
    assert _reqs(report, "fedramp")["AC-6(5)"]["status"] == "fail" and _control(report, "pci-dss", "C8")["status"] == "fail"
    # a deny rule before it removes the grant: the analysis evaluates the rules in order
    _write_config(zt_env, 'access:\n  policies:\n'
                          '    - {principals: ["*@EXAMPLE.COM"], secrets: ["*"], actions: ["*"], effect: deny}\n'
                          '    - {principals: ["*@EXAMPLE.COM"], secrets: ["*"], actions: ["*"], effect: allow}\n'
                          '    - {principals: ["alice@EXAMPLE.COM"], secrets: ["db/*"], actions: [read], effect: allow}\n')
    assert _reqs(_build(zt_env, "pci"), "pci-dss")["7.2.2"]["status"] == "pass"
    # a realm may read one prefix: not every secret
    _write_config(zt_env, 'access:\n  policies:\n'
                          '    - {principals: ["*@EXAMPLE.COM"], secrets: ["app/*"], actions: [read], effect: allow}\n')
    row = _reqs(_build(zt_env, "pci"), "pci-dss")["7.2.2"]
    assert row["status"] == "pass"
    assert any(line.startswith("*@EXAMPLE.COM (rule 0) can read: app/ (") for f in row["findings"] for line in f["evidence"]), row["findings"]
    # every existing prefix listed by name is no narrower than '*' (review of issue 13)
    names = sorted({n.split("/")[0] for n in _build(zt_env, "pci")["evidence"]["vault"]["secret_names"]})
    prefixes = ", ".join(f'"{n}/*"' for n in names)
    _write_config(zt_env, 'access:\n  policies:\n'
                          f'    - {{principals: ["*@EXAMPLE.COM"], secrets: [{prefixes}], actions: [read], effect: allow}}\n')
    row = _reqs(_build(zt_env, "pci"), "pci-dss")["7.2.2"]
    assert row["status"] == "fail" and "any principal matching *@EXAMPLE.COM may read every secret" in row["finding"], row["finding"]
    assert "created later" not in row["finding"]


def test_no_mfa_fails_pci_8_4_and_fedramp_ia_2(zt_env, home):
    report = _build(zt_env, "all")  # no secret is --sensitive, no required_for
    for sid, rid in (("pci-dss", "8.4.1"), ("pci-dss", "8.4.2"), ("fedramp", "IA-2(1)"), ("fedramp", "IA-2(2)")):
        assert _reqs(report, sid)[rid]["status"] == "fail", (sid, rid)
    assert _control(report, "pci-dss", "C10")["status"] == "fail"
    assert _reqs(report, "hipaa")["164.312(d)"]["status"] == "warning"  # HIPAA does not mandate MFA


def test_mfa_coverage_is_the_share_of_sensitive_reads_that_were_verified(zt_env, home):
    # db/password was read without a code; once db/* requires MFA, that read is an unverified sensitive read
    _write_config(zt_env, "security:\n  mfa:\n    required_for: [\"db/*\"]\n")
    report = _build(zt_env, "pci")
    cov = report["evidence"]["audit"]["mfa_coverage"]
    assert cov["sensitive_reads"] == 1 and cov["verified"] == 0
    row = _reqs(report, "pci-dss")["8.4.2"]
    assert row["status"] == "fail" and "1 of 1 sensitive read(s)" in row["finding"] and "0.0% coverage" in row["finding"]


def test_backup_cadence_per_standard(cli, zt_env, home, tmp_path):
    res = cli("vault", "backup", "--output", str(tmp_path / "v.bak"), env={"ZEROTRUST_BACKUP_PASSPHRASE": "correct horse battery"})
    assert res.code == 0, res.err
    report = _build(zt_env, "all", now=datetime.now(timezone.utc) + timedelta(days=100))
    cp9 = _reqs(report, "fedramp")["CP-9"]
    assert cp9["status"] == "fail" and "without a backup" in cp9["finding"]
    assert _control(report, "fedramp", "C12")["status"] == "fail"
    fresh = _build(zt_env, "fedramp", now=datetime.now(timezone.utc) + timedelta(hours=1))
    assert _reqs(fresh, "fedramp")["CP-9"]["status"] == "pass" and _reqs(fresh, "fedramp")["CP-9(8)"]["status"] == "pass"


def test_empty_vault_is_not_a_pass_and_the_algorithm_is_observed(cli, zt_env, tmp_path, monkeypatch):
    assert cli("init").code == 0
    report = _build(zt_env, "all")
    assert _control(report, "soc2", "C1")["status"] == "not_evaluated"
    assert _reqs(report, "fedramp")["SC-28"]["status"] == "not_evaluated"
    assert cli("vault", "put", "a/b", input=b"v").code == 0
    ok = _reqs(_build(zt_env, "fedramp"), "fedramp")["SC-28"]
    assert ok["status"] == "pass" and "known-answer test passed" in ok["finding"]
    # a cipher that is not AES-256-GCM is caught by the known answer, not asserted by a string
    from zerotrust_admin.crypto import aead

    monkeypatch.setattr(aead, "seal", lambda key, pt, aad, nonce=None: bytes(12) + bytes(len(pt) + 16))
    bad = _reqs(_build(zt_env, "fedramp"), "fedramp")["SC-28"]
    assert bad["status"] == "fail" and "known-answer" in bad["finding"]


def test_memory_protection_is_verified_in_a_child_holding_a_secret(zt_env, home):
    report = _build(zt_env, "fedramp")
    probe = report["evidence"]["memory"]["probe"]
    assert set(probe) >= {"locked", "vmlck_kb", "core_limit", "dumpable", "wiped"}
    assert probe["core_limit"] == 0 and probe["dumpable"] == 0 and probe["wiped"] is True
    if probe["locked"]:
        assert probe["vmlck_kb"] > 0  # the lock is seen by the kernel, not inferred from a docstring
    sc4 = _reqs(report, "fedramp")["SC-4"]
    assert "child process holding a secret" in sc4["evidence"]


def test_lockout_maps_to_pci_8_3_4_and_fedramp_ac_7(zt_env, home):
    report = _build(zt_env, "all")  # defaults: 5 failures, first lock 1 minute
    assert _reqs(report, "pci-dss")["8.3.4"]["status"] == "fail" and "1 min (at least 30 min)" in _reqs(report, "pci-dss")["8.3.4"]["finding"]
    _write_config(zt_env, "security:\n  lockout:\n    max_failures: 5\n    base_delay_seconds: 1800\n")
    report = _build(zt_env, "all")
    assert _reqs(report, "pci-dss")["8.3.4"]["status"] == "pass"
    assert _reqs(report, "fedramp")["AC-7"]["status"] == "pass"  # SP 800-63B: at most 100 consecutive failures
    _write_config(zt_env, "security:\n  lockout:\n    max_failures: 500\n")
    ac7 = _reqs(_build(zt_env, "fedramp"), "fedramp")["AC-7"]
    assert ac7["status"] == "fail" and "500 attempts allowed (at most 100)" in ac7["finding"]


# --- backdating ------------------------------------------------------------------------------------------
def test_source_date_epoch_cannot_backdate_and_is_disclosed(zt_env, home, monkeypatch):
    created = _created(home)
    monkeypatch.setattr(report_mod, "_wall_clock", lambda: (created + timedelta(days=100)).replace(microsecond=0))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(created.timestamp())))
    config = load_config(None, environ=zt_env)
    report = build_report(config, "pci", period=timedelta(days=90))
    assert _control(report, "pci-dss", "C3")["status"] == "fail"  # the master key is 100 days old on the system clock
    assert _reqs(report, "pci-dss")["3.7.4"]["status"] == "fail"
    ts = report["report"]["time_source"]
    assert ts["source_date_epoch"] == int(created.timestamp()) and "100 days before the system clock" in ts["note"]
    from zerotrust_admin.compliance.render_md import render_markdown

    assert "100 days before the system clock" in render_markdown(report)
    # a SOURCE_DATE_EPOCH that does not move the time back is used, and still disclosed
    monkeypatch.setattr(report_mod, "_wall_clock", lambda: created.replace(microsecond=0))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int((created + timedelta(days=3)).timestamp())))
    fixed = build_report(config, "pci", period=timedelta(days=90))
    assert fixed["report"]["time_source"]["source"] == "SOURCE_DATE_EPOCH" and "fixed by SOURCE_DATE_EPOCH" in fixed["report"]["time_source"]["note"]


def test_records_dated_after_the_report_time_are_a_finding(zt_env, home):
    created = _created(home)
    report = _build(zt_env, "fedramp", now=created - timedelta(hours=2) + timedelta(days=0))
    au8 = _reqs(report, "fedramp")["AU-8"]
    assert au8["status"] == "fail" and "after the report time" in au8["finding"]


# --- mapping errors ------------------------------------------------------------------------------------
def test_mapping_errors_are_fixed(zt_env, home):
    data = {sid: load_standard(sid) for sid in STANDARDS}
    ids = {sid: [r["id"] for _s, r in standard_requirements(d)] for sid, d in data.items()}
    for sid, lst in ids.items():
        assert len(lst) == len(set(lst)), f"{sid} lists a requirement twice"
    reqs = {sid: {r["id"]: r for _s, r in standard_requirements(d)} for sid, d in data.items()}
    assert "cryptoperiod" not in reqs["pci-dss"]["8.3.9"]["checks"]
    assert "private_file_modes" not in reqs["pci-dss"]["11.5.2"]["checks"] and reqs["soc2"]["CC7.1"]["checks"] == ["manual"]
    assert "key_separation" not in reqs["pci-dss"]["3.7.1"]["checks"] and reqs["pci-dss"]["3.6.1.3"]["checks"] == ["manual"]
    assert "Protects Cryptographic Keys" in reqs["soc2"]["CC6.1"]["title"]
    assert "Protects Encryption Keys" not in json.dumps(data)
    assert "164.402" not in reqs["hipaa"]
    for rid in ("AU-6(3)", "IA-2(6)", "CP-10(2)", "IR-3(2)", "AC-7", "AU-7(1)", "CA-7", "SC-45", "IA-5d"):
        assert rid in reqs["fedramp"], rid
    assert "IA-5(d)" not in reqs["fedramp"]
    report = _build(zt_env, "all")
    pci, fed, soc2 = _reqs(report, "pci-dss"), _reqs(report, "fedramp"), _reqs(report, "soc2")
    assert pci["3.5.1"]["status"] == "not_applicable" and "not declared in scope" in pci["3.5.1"]["finding"]
    assert fed["SC-13"]["status"] != "pass" and fed["SC-8(1)"]["status"] != "pass" and "FIPS" in fed["SC-13"]["finding"]
    for rid in ("A1.2", "A1.3", "P6.6"):
        assert soc2[rid]["status"] == "not_applicable"
    # titles come from the requirement, not from the first control mapped to it
    assert pci["3.6.1"]["title"] != pci["3.6.1.2"]["title"]


def test_missing_rows_are_present(zt_env, home):
    report = _build(zt_env, "all")
    pci, hipaa = _reqs(report, "pci-dss"), _reqs(report, "hipaa")
    for rid in ("10.3.1", "10.3.3", "8.3.4", "10.2.1.6", "10.2.1.7", "3.7.7"):
        assert rid in pci and pci[rid]["checks"] != ["manual"], rid
    for rid in ("10.6.1", "10.6.2", "10.6.3", "3.7.6", "3.7.8", "7.2.5.1"):
        assert pci[rid]["status"] == "manual", rid
    for rid in ("164.308(a)(8)", "164.308(a)(1)(ii)(A)", "164.308(a)(7)(ii)(E)"):
        assert rid in hipaa, rid
    assert pci["10.3.3"]["status"] == "fail" and "only in the local file" in pci["10.3.3"]["finding"]


# --- scope and exceptions ------------------------------------------------------------------------------
def test_scope_declarations_decide_scoped_requirements(cli, zt_env, home):
    assert cli("compliance", "scope", "--cardholder-data", "no", "--availability", "yes", "--note", "PAN tokenised upstream").code == 0
    seq = json.loads((home / "audit.log").read_bytes().splitlines()[-1])["seq"]
    report = _build(zt_env, "all")
    pan = _reqs(report, "pci-dss")["3.5.1"]
    assert pan["status"] == "not_applicable" and f"audit record {seq}" in pan["finding"] and "declared out of scope by alice@EXAMPLE.COM" in pan["finding"]
    assert _reqs(report, "soc2")["A1.2"]["status"] == "fail"  # now scored: no backup
    assert cli("compliance", "scope", "--cardholder-data", "yes").code == 0
    pan = _reqs(_build(zt_env, "pci"), "pci-dss")["3.5.1"]
    assert pan["status"] == "pass" and "AES-256-GCM" in pan["finding"]
    n = len((home / "audit.log").read_bytes().splitlines())
    assert cli("compliance", "scope", "--phi", "maybe").code == 2
    assert cli("compliance", "scope").code == 2  # nothing declared
    assert len((home / "audit.log").read_bytes().splitlines()) == n


def test_a_standard_declared_out_of_scope_is_not_applicable_never_pass(cli, zt_env, home, tmp_path):
    """HIPAA concerns ePHI, GDPR personal data: declared "no", every row is N/A
    citing the declaration, and the standard is NOT APPLICABLE (not a green PASS)."""
    before = _build(zt_env, "all")
    assert {s["id"]: s["overall"] for s in before["standards"]}["hipaa"] != "not applicable"
    assert cli("compliance", "scope", "--phi", "no", "--personal-data", "no").code == 0
    seq = json.loads((home / "audit.log").read_bytes().splitlines()[-1])["seq"]
    report = _build(zt_env, "all")
    for sid in ("hipaa", "gdpr"):
        std = next(s for s in report["standards"] if s["id"] == sid)
        assert std["overall"] == "not applicable" and std["score"]["percent"] is None
        assert {q["status"] for q in std["requirements"]} == {"not_applicable"}
        assert all(f"audit record {seq}" in q["finding"] for q in std["requirements"])
    assert _build(zt_env, "hipaa")["overall"] == "not applicable"
    assert _reqs(report, "pci-dss")["10.3.3"]["status"] == "fail"  # other standards are untouched
    out = tmp_path / "h.json"
    res = cli("compliance-report", "-s", "hipaa", "-o", str(out))
    assert res.code == 0 and "hipaa: NOT APPLICABLE" in res.out.decode() + res.err and "n/a)" in res.out.decode() + res.err
    assert cli("compliance", "scope", "--phi", "yes").code == 0
    std = next(s for s in _build(zt_env, "hipaa")["standards"])
    assert std["overall"] != "not applicable" and any(q["status"] != "not_applicable" for q in std["requirements"])


def test_fail_on_findings_honours_an_unexpired_accepted_risk_only(cli, zt_env, home, tmp_path):
    until = (datetime.now(timezone.utc) + timedelta(days=30)).date().isoformat()
    assert cli("compliance", "accept-risk", "10.3.3", "-s", "pci", "--owner", "Bob CISO", "--reason", "SIEM in Q1", "--expires", until).code == 0
    report = _build(zt_env, "pci")
    assert "pci-dss 10.3.3" in report["accepted_failures"] and "pci-dss 10.3.3" not in report["failing_requirements"]
    assert _reqs(report, "pci-dss")["10.3.3"]["status"] == "fail"  # the row stays FAIL
    failing = {f"pci-dss {q['id']}" for q in next(iter(report["standards"]))["requirements"] if q["status"] == "fail"}
    assert set(report["failing_requirements"]) == failing - {"pci-dss 10.3.3"}
    late = _build(zt_env, "pci", now=datetime.now(timezone.utc) + timedelta(days=40))
    assert "pci-dss 10.3.3" in late["failing_requirements"] and not late["accepted_failures"]
    res = cli("compliance-report", "-s", "pci", "-o", str(tmp_path / "r.json"), "--fail-on-findings")
    assert res.code == 10 and "under an accepted risk: pci-dss 10.3.3" in res.err and "failing requirements: pci-dss" in res.err


def test_accepted_risks_are_listed_never_green(cli, zt_env, home, tmp_path):
    until = (datetime.now(timezone.utc) + timedelta(days=30)).date().isoformat()
    res = cli("compliance", "accept-risk", "10.3.3", "-s", "pci", "--owner", "Bob CISO", "--reason", "SIEM arrives in Q1", "--expires", until)
    assert res.code == 0, res.err
    report = _build(zt_env, "all")
    row = _reqs(report, "pci-dss")["10.3.3"]
    assert row["status"] == "fail" and row["exception"]["owner"] == "Bob CISO" and row["exception"]["expired"] is False
    assert "exception" not in _reqs(report, "fedramp").get("AU-9", {})
    out = tmp_path / "r.md"
    assert cli("compliance-report", "-s", "pci", "-o", str(out)).code == 0
    md = out.read_text()
    page = md.split("## Accepted risks (exceptions)")[1].split("\n## ")[0]
    assert "| PCI DSS | 10.3.3 | FAIL | Bob CISO | SIEM arrives in Q1 |" in page, page
    late = _reqs(_build(zt_env, "pci", now=datetime.now(timezone.utc) + timedelta(days=40)), "pci-dss")["10.3.3"]
    assert late["exception"]["expired"] is True


# --- pages -------------------------------------------------------------------------------------------
def _natural(text):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text) if p]


def test_rows_are_grouped_by_section_and_sorted_and_markdown_has_each_finding(cli, zt_env, home, tmp_path):
    report = _build(zt_env, "all")
    for s in report["standards"]:
        ids = [q["id"] for q in s["requirements"]]
        assert [q["section"] for q in s["requirements"]] == [x for sec in s["sections"] for x in [sec["id"]] * len(sec["requirements"])]
        for sec in s["sections"]:
            assert sec["requirements"] == sorted(sec["requirements"], key=_natural)
        assert len(ids) == len(set(ids))
    from zerotrust_admin.compliance.render_md import render_markdown

    md = render_markdown(report)  # the Markdown of the same report object
    assert "## Top findings" in md and "## Accepted risks (exceptions)" in md and "## Scope and attestations" in md
    for s in report["standards"]:
        for q in s["requirements"]:
            assert f"#### {q['id']} " in md, q["id"]
            for f in q["findings"]:
                for line in f["evidence"]:
                    assert line in md, (q["id"], line)
            first = q["findings"][0]["finding"] if q["findings"] else q["finding"]
            assert first.replace("\n", " ") in md.replace("\n", " ") or q["status"] == "not_applicable", q["id"]


def test_pdf_keeps_words_whole_and_shows_the_sections(cli, zt_env, home, tmp_path):
    if not shutil.which("pdftotext"):
        backend_missing("pdftotext (poppler-utils)")
    env = {"ZEROTRUST_PRINCIPAL": "walter17@EXAMPLE.COM"}
    _write_config(zt_env, 'access:\n  policies:\n    - {principals: ["walter17@EXAMPLE.COM", "alice@EXAMPLE.COM"], secrets: ["*"], actions: ["*"], effect: allow}\n')
    assert cli("compliance", "scope", "--personal-data", "yes", env=env).code == 0
    out = tmp_path / "soc2.pdf"
    assert cli("compliance-report", "-s", "soc2", "-o", str(out)).code == 0
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, check=True).stdout.decode()
    assert "walter17@EXAMPLE.COM" in text and not re.search(r"walter17@EXAMPLE\.CO\s+M", text)
    for heading in ("Top findings", "CC6 Logical and Physical Access Controls", "Accepted risks (exceptions)", "Scope and attestations"):
        assert heading in text, heading


def test_compare_shows_what_changed(cli, zt_env, home, tmp_path):
    first = tmp_path / "first.json"
    assert cli("compliance-report", "-s", "pci", "-o", str(first)).code == 0
    doc = tmp_path / "roster.txt"
    doc.write_text("on-call roster")
    until = (datetime.now(timezone.utc) + timedelta(days=200)).date().isoformat()
    assert cli("compliance", "attest", "12.10.3", "--file", str(doc), "--reviewer", "Dana", "--expires", until).code == 0
    second = tmp_path / "second.md"
    res = cli("compliance-report", "-s", "pci", "-o", str(second), "--compare", str(first))
    assert res.code == 0, res.err
    md = second.read_text()
    assert "## Changes since the previous report" in md and "| PCI DSS | 12.10.3 | MANUAL | PASS |" in md
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert cli("compliance-report", "-s", "pci", "-o", str(tmp_path / "x.md"), "--compare", str(bad)).code == 2


def test_configuration_changes_between_runs_are_listed(cli, zt_env, home, tmp_path):
    out = str(tmp_path / "r.json")
    assert cli("compliance-report", "-s", "soc2", "-o", out).code == 0
    _write_config(zt_env, "audit:\n  retention_days: 400\n")
    assert cli("compliance-report", "-s", "soc2", "-o", out).code == 0
    row = _reqs(_build(zt_env, "soc2"), "soc2")["CC8.1"]
    assert row["status"] == "manual" and "changed 1 time(s) between the 2 report runs" in row["finding"]
    assert any("changed between records" in line for f in row["findings"] for line in f["evidence"])


def test_an_attestation_covers_a_fips_requirement(cli, zt_env, home, tmp_path):
    cert = tmp_path / "cmvp-4282.pdf"
    cert.write_bytes(b"certificate")
    until = (datetime.now(timezone.utc) + timedelta(days=300)).date().isoformat()
    assert _reqs(_build(zt_env, "fedramp"), "fedramp")["SC-13"]["status"] == "manual"
    assert cli("compliance", "attest", "SC-13", "-s", "fedramp", "--file", str(cert), "--reviewer", "3PAO", "--expires", until).code == 0
    row = _reqs(_build(zt_env, "fedramp"), "fedramp")["SC-13"]
    assert row["status"] == "pass" and "cmvp-4282.pdf" in row["finding"]


def test_compare_covers_only_the_standards_both_reports_hold(zt_env, home):
    from zerotrust_admin.compliance.summary import compare

    pci = _build(zt_env, "pci")
    both = compare(pci, _build(zt_env, "all"), "pci.json")
    assert both["standards_compared"] == ["pci-dss"] and all(c["standard"] == "PCI DSS" for c in both["changes"])


def test_declarations_need_the_report_action(cli, zt_env, home, tmp_path):
    _write_config(zt_env, 'access:\n  policies:\n    - {principals: ["alice@EXAMPLE.COM"], secrets: ["*"], actions: [read], effect: allow}\n')
    doc = tmp_path / "d.txt"
    doc.write_text("x")
    until = (datetime.now(timezone.utc) + timedelta(days=30)).date().isoformat()
    for args in (("scope", "--phi", "yes"), ("attest", "12.10.1", "--file", str(doc), "--reviewer", "x", "--expires", until),
                 ("accept-risk", "10.3.3", "--owner", "x", "--reason", "y", "--expires", until)):
        assert cli("compliance", *args).code == 4, args
    last = json.loads((home / "audit.log").read_bytes().splitlines()[-1])
    assert last["event"] == "access_denied" and last["resource"] == "compliance/requirement/10.3.3"


def test_c10_applies_lockout_figures_only_where_the_standard_fixes_them(zt_env, home):
    _write_config(zt_env, "security:\n  mfa:\n    required_for: [\"prod/*\"]\n")
    report = _build(zt_env, "all")
    assert _control(report, "hipaa", "C10")["status"] == "pass"  # MFA required; HIPAA fixes no lockout figure
    assert _control(report, "pci-dss", "C10")["status"] == "fail"  # PCI DSS 8.3.4: a 1-minute first lock


# --- key ages replayed over the period: the vault's first master key (review of issue 13) ---------
def _key_ctx(now, *, created_days: float, rotated_days: float | None, period_days: int = 90):
    from zerotrust_admin.compliance.requirements import Context

    iso = lambda d: (now - timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    master_days = rotated_days if rotated_days is not None else created_days
    vault = {"available": True, "external": False, "created": iso(created_days), "master_created": iso(master_days), "master_key_id": "m2",
             "deks": [{"id": "d1", "created": iso(1), "state": "active", "master_key_id": "m2"}], "session_keys": []}
    audit = {"master_rotations": [iso(rotated_days)] if rotated_days is not None else [], "first_seq": 1, "oldest_record": iso(created_days)}
    return Context({"vault": vault, "audit": audit}, now, now - timedelta(days=period_days), {"id": "pci-dss"})


def test_cryptoperiod_replay_counts_the_master_key_the_vault_was_created_with():
    from zerotrust_admin.compliance.requirements import cryptoperiod

    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    # created 200 days ago, first master rotation 2 days ago: the original master key was
    # past its 90-day cryptoperiod on about 88 days of the period.
    f = cryptoperiod(_key_ctx(now, created_days=200, rotated_days=2), {}, {})
    assert f.status == "fail" and "master key (original) past its cryptoperiod" in f.text, f.text
    assert "over 2 master" in " ".join(f.evidence)
    # rotated in time (80 days after creation, 10 days ago): every day within the policy
    f = cryptoperiod(_key_ctx(now, created_days=90, rotated_days=10), {}, {})
    assert f.status == "pass" and "every day of the period" in f.text, f.text
    # a vault made 3 days ago: the pass says which days it covers
    f = cryptoperiod(_key_ctx(now, created_days=3, rotated_days=None), {}, {})
    assert f.status == "pass" and "since the first key" in f.text and "of the 90-day period" in f.text, f.text
