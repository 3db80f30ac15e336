"""compliance-report: evidence from a real initialized home with real activity,
mapped to each standard; statuses follow the live state."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from zerotrust_admin.compliance.report import STANDARDS, build_report, load_standard, standard_requirements
from zerotrust_admin.config import load_config

# Requirement ids quoted from compliance-map.md (one or more per standard).
MAP_IDS = {
    "soc2": ["CC6.1", "CC6.7", "CC7.2", "CC7.3", "CC7.4", "A1.2", "A1.3"],
    "pci-dss": ["3.6.1.2", "3.7.4", "4.2.1", "8.6.2", "10.2.2", "10.3.4", "10.5.1", "10.4.1.1", "12.10.1"],
    "hipaa": ["164.312(a)(2)(iv)", "164.312(b)", "164.308(a)(1)(ii)(D)", "164.312(e)(1)", "164.308(a)(7)(ii)(A)"],
    "gdpr": ["Art. 32(1)(a)", "Art. 5(2)", "Art. 33(1)", "Art. 25(2)", "Art. 32(1)(c)"],
    "fedramp": ["SC-28(1)", "SC-12", "AU-9", "AU-11", "SI-4", "IA-2(1)", "CP-9(1)", "IA-5(7)"],
}
STATUS_WORDS = "PASS|FAIL|WARNING|MANUAL|NOT EVALUATED|N/A"


def _env_for(home: Path, base: Path) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base / "userhome"), "ZEROTRUST_HOME": str(home),
            "XDG_CONFIG_HOME": str(base / "xdg-config"), "XDG_DATA_HOME": str(base / "xdg-data"),
            "ZEROTRUST_PRINCIPAL": "alice@EXAMPLE.COM", "KRB5CCNAME": f"FILE:{base / 'no-ccache'}", "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def template_home(tmp_path_factory):
    """One real home with real activity through the CLI, built once per module."""
    import sys

    base = tmp_path_factory.mktemp("template")
    home = base / "home"
    env = _env_for(home, base)

    def run(*args, input=b""):
        return subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], input=input, env=env, capture_output=True, timeout=60).returncode

    assert run("init") == 0
    for name in ("db/password", "app/token", "ldap/keytab"):
        assert run("vault", "put", name, input=b"value-" + name.encode()) == 0
    assert run("vault", "get", "db/password") == 0
    assert run("vault", "get", "db/missing") == 3
    return home


@pytest.fixture
def active_home(zt_env, template_home):
    """A private copy of the template home (modes preserved) for each test."""
    home = Path(zt_env["ZEROTRUST_HOME"])
    shutil.copytree(template_home, home)
    return home


@pytest.fixture(scope="module")
def standard_pdfs(template_home, tmp_path_factory):
    """Each standard's PDF, rendered from the template home at a fixed time."""
    from zerotrust_admin.compliance import write_report

    out_dir = tmp_path_factory.mktemp("pdfs")
    env = _env_for(template_home, template_home.parent)
    epoch = _epoch(template_home, 20)
    config = load_config(None, environ=env)
    records = _records(template_home)
    made = {}
    for sid in STANDARDS:
        _, path = write_report(config, sid, out_dir / f"{sid}.pdf", period=timedelta(days=90),
                               now=datetime.fromtimestamp(epoch, timezone.utc), operator="alice@EXAMPLE.COM")
        made[sid] = path
    return made, epoch, records


def _master_created(home: Path) -> datetime:
    conn = sqlite3.connect(home / "vault.db")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    conn.close()
    return datetime.fromisoformat(meta.get("master_created") or meta["created"])


def _epoch(home: Path, days: float) -> int:
    return int((_master_created(home) + timedelta(days=days)).timestamp())


def _records(home: Path) -> int:
    return len((home / "audit.log").read_bytes().splitlines())


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


def _report(zt_env, now: datetime, standard="soc2", period_days=90) -> dict:
    return build_report(load_config(None, environ=zt_env), standard, period=timedelta(days=period_days), now=now, operator="test")


def _status(report: dict, control: str, standard: int = 0) -> str:
    return next(c for c in report["standards"][standard]["controls"] if c["id"] == control)["status"]


@pytest.mark.parametrize("standard", STANDARDS)
def test_pdf_per_standard_has_requirements_evidence_and_statuses(standard_pdfs, template_home, standard):
    made, epoch, records = standard_pdfs
    out = made[standard]
    assert out.read_bytes().startswith(b"%PDF") and (os.stat(out).st_mode & 0o777) == 0o600
    flat = re.sub(r"\s+", " ", _pdf_text(out))
    for rid in MAP_IDS[standard] + [r["id"] for _section, r in standard_requirements(load_standard(standard))]:
        assert rid in flat, rid
    assert f"{records} records, chain intact" in flat  # the actual audit record count
    age = round((datetime.fromtimestamp(epoch, timezone.utc) - _master_created(template_home)).total_seconds() / 86400, 2)
    assert f": {age} d (policy 90 d)" in flat  # the actual master key age against the policy
    for n in range(1, 14):
        assert re.search(rf"C{n} [^\n]*?: ({STATUS_WORDS})", flat), f"C{n} has no status"
    assert "Overall result" in flat and "Page 2 of" in flat and "Appendix: evidence hashes" in flat


def test_cli_writes_a_pdf(cli, active_home, tmp_path):
    out = tmp_path / "soc2.pdf"
    res = cli("compliance-report", "--standard", "soc2", "--output", str(out))
    assert res.code == 0, res.err
    assert "soc2: FAIL" in res.text and _pdf_text(out).count("SOC 2") > 3


def test_statuses_follow_the_live_state(cli, zt_env, active_home):
    created = _master_created(active_home)
    fresh = _report(zt_env, created + timedelta(days=20))
    assert _status(fresh, "C3") == "pass" and _status(fresh, "C5") == "pass" and _status(fresh, "C6") == "pass"
    assert _status(fresh, "C7") == "fail" and _status(fresh, "C8") == "fail" and _status(fresh, "C9") == "not_applicable"
    assert _status(_report(zt_env, created + timedelta(days=100)), "C3") == "fail"  # master key past its 90-day cryptoperiod
    # an anomaly review in the log satisfies C7 (SOC 2 fixes no cadence)
    assert cli("audit", "anomalies").code == 0
    assert _status(_report(zt_env, datetime.now(timezone.utc) + timedelta(hours=1)), "C7") == "pass"
    # a vault file others can read fails C5
    os.chmod(active_home / "vault.db", 0o644)
    assert _status(_report(zt_env, created + timedelta(days=20)), "C5") == "fail"
    os.chmod(active_home / "vault.db", 0o600)
    # access policies: a wildcard admin grant fails C8, a scoped policy passes
    cfg = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('access:\n  policies:\n    - {principals: ["*"], secrets: ["*"], actions: ["*"], effect: allow}\n')
    os.chmod(cfg, 0o600)
    assert _status(_report(zt_env, created + timedelta(days=20)), "C8") == "fail"
    cfg.write_text('access:\n  policies:\n    - {principals: ["alice@EXAMPLE.COM"], secrets: ["db/*"], actions: [read, write], effect: allow}\n'
                   'aws:\n  roles: ["arn:aws:iam::111122223333:role/app"]\n  allowed_accounts: ["111122223333"]\n  duration_seconds: 7200\n')
    report = _report(zt_env, created + timedelta(days=20))
    assert _status(report, "C8") == "pass" and _status(report, "C9") == "fail"


def test_broken_audit_chain_fails_the_audit_integrity_control(cli, zt_env, active_home, tmp_path):
    log = active_home / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"success":true', b'"success":false')
    log.write_bytes(b"".join(lines))
    epoch = _epoch(active_home, 10)
    out = tmp_path / "pci.json"
    # The audit writer refuses to append to a rewritten log (exit 5), so the
    # run cannot record itself and leaves no report behind ...
    res = cli("compliance-report", "--standard", "pci", "--output", str(out), env={"SOURCE_DATE_EPOCH": str(epoch)})
    assert res.code == 5 and not out.exists(), res.err
    # ... and the report itself (built without the run record) names the break.
    from zerotrust_admin.compliance import write_report

    write_report(load_config(None, environ=zt_env), "pci", out, period=timedelta(days=90), now=datetime.fromtimestamp(epoch, timezone.utc))
    report = json.loads(out.read_text())
    c6 = next(c for c in report["standards"][0]["controls"] if c["id"] == "C6")
    assert c6["status"] == "fail" and "record 2" in " ".join(c6["findings"])
    req = {r["id"]: r for r in report["standards"][0]["requirements"]}
    assert req["10.3.4"]["status"] == "fail" and "C6" in req["10.3.4"]["controls"]


def test_truncated_and_garbled_log_is_reported_not_fatal(cli, active_home, tmp_path):
    log = active_home / "audit.log"
    data = log.read_bytes()
    log.write_bytes(data + b'{"timestamp":"2026-01-01T00:00:00.000000Z","seq":99,"user":"x"')  # torn write, no newline
    out = tmp_path / "r.md"
    res = cli("compliance-report", "--standard", "soc2", "--output", str(out))
    assert res.code == 0, res.err
    text = out.read_text()
    assert re.search(r"\| C6 \| [^|]+\| FAIL \|", text) and "unreadable line" in text


def test_json_and_markdown_outputs(cli, active_home, tmp_path):
    epoch = str(_epoch(active_home, 5))
    records_before = _records(active_home)  # the run appends its own record after the report is built
    res = cli("compliance-report", "--standard", "all", "--output", str(tmp_path / "all.json"), "--json", env={"SOURCE_DATE_EPOCH": epoch})
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    report = json.loads((tmp_path / "all.json").read_text())
    assert [s["id"] for s in report["standards"]] == list(STANDARDS)
    assert summary["failing_controls"] == report["failing_controls"]
    assert report["hashes"]["audit_records"] == records_before
    assert report["hashes"]["audit_chain_head"]["seq"] == records_before
    for s in report["standards"]:
        assert {c["id"] for c in s["controls"]} == {f"C{n}" for n in range(1, 14)}
        assert s["score"]["requirements"] == len(s["requirements"])
    res = cli("compliance-report", "--standard", "hipaa", "--output", str(tmp_path / "h.md"), env={"SOURCE_DATE_EPOCH": epoch})
    md = (tmp_path / "h.md").read_text()
    assert res.code == 0 and md.startswith("# Secrets management compliance report: HIPAA Security Rule")
    for rid in MAP_IDS["hipaa"]:
        assert rid in md
    assert "Audit chain head: record" in md


def test_fail_on_findings_exits_10(cli, active_home, tmp_path):
    out = str(tmp_path / "r.json")
    assert cli("compliance-report", "--standard", "gdpr", "--output", out).code == 0
    res = cli("compliance-report", "--standard", "gdpr", "--output", out, "--fail-on-findings")
    assert res.code == 10 and "failing controls: C7" in res.err


def test_same_state_and_source_date_epoch_give_a_byte_identical_pdf(cli, active_home, tmp_path):
    env = {"SOURCE_DATE_EPOCH": str(_epoch(active_home, 3))}
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    # Each run appends its own audit record, which the next report counts: put
    # the log back between the runs so that both see the same state.
    saved = {name: (active_home / name).read_bytes() for name in ("audit.log", "audit.log.head")}
    assert cli("compliance-report", "--standard", "fedramp", "--output", str(a), env=env).code == 0
    assert _records(active_home) == saved["audit.log"].count(b"\n") + 1
    for name, data in saved.items():
        (active_home / name).write_bytes(data)
    assert cli("compliance-report", "--standard", "fedramp", "--output", str(b), env=env).code == 0
    assert a.read_bytes() == b.read_bytes()
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(a), "-"], capture_output=True, check=True).stdout.decode()
        assert "FedRAMP Moderate" in text and "AU-11" in text


def test_bad_input(cli, zt_env, active_home, tmp_path):
    res = cli("compliance-report", "--standard", "iso27001", "--output", str(tmp_path / "r.pdf"))
    assert res.code == 2 and "soc2, pci-dss, hipaa, gdpr, fedramp" in res.err
    res = cli("compliance-report", "--standard", "soc2", "--output", str(tmp_path / "missing-dir" / "r.pdf"))
    assert res.code == 1 and "does not exist" in res.err and not (tmp_path / "missing-dir").exists()
    res = cli("compliance-report", "--standard", "soc2", "--output", str(tmp_path / "r.docx"))
    assert res.code == 2 and ".pdf, .json or .md" in res.err
    # a period with no records: written, and the numbers say so
    epoch = str(_epoch(active_home, 60))
    res = cli("compliance-report", "--standard", "soc2", "--period", "1d", "--output", str(tmp_path / "empty.json"), env={"SOURCE_DATE_EPOCH": epoch})
    assert res.code == 0, res.err
    assert json.loads((tmp_path / "empty.json").read_text())["evidence"]["audit"]["records_in_period"] == 0


def test_missing_vault_is_not_evaluated_not_passing(cli, zt_env, tmp_path):
    res = cli("compliance-report", "--standard", "soc2", "--output", str(tmp_path / "r.json"))
    assert res.code == 0, res.err
    report = json.loads((tmp_path / "r.json").read_text())
    assert _status(report, "C1") == "not_evaluated" and _status(report, "C2") == "not_evaluated" and _status(report, "C3") == "not_evaluated"
    assert _status(report, "C6") == "fail"  # no audit records at all


def test_parallel_chain_check_reports_the_same_break(zt_env, active_home, monkeypatch):
    from zerotrust_admin.compliance import evidence

    log = active_home / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    del lines[2]  # a deleted record
    log.write_bytes(b"".join(lines))
    now = _master_created(active_home) + timedelta(days=1)
    inline_report = _report(zt_env, now)
    inline = inline_report["evidence"]["audit"]["verify"]
    monkeypatch.setattr(evidence, "PARALLEL_VERIFY_BYTES", 0)  # force the forked verifier and statistics pass
    forked_report = _report(zt_env, now)
    forked = forked_report["evidence"]["audit"]["verify"]
    assert forked == inline and forked["ok"] is False and forked["first_bad_seq"] == 3
    # the statistics and period replay made by the child are the same as inline, and so are the anomalies
    assert forked_report["evidence"]["audit"] == inline_report["evidence"]["audit"]
    assert forked_report["anomalies"] == inline_report["anomalies"]


def test_a_backup_moves_c12_from_fail_to_warning(cli, zt_env, active_home, tmp_path):
    now = lambda: datetime.now(timezone.utc) + timedelta(minutes=5)  # noqa: E731
    before = _report(zt_env, now())
    assert _status(before, "C12") == "fail"
    res = cli("vault", "backup", "--output", str(tmp_path / "vault.bak"), env={"ZEROTRUST_BACKUP_PASSPHRASE": "correct horse battery"})
    assert res.code == 0, res.err
    after = _report(zt_env, now())
    c12 = next(c for c in after["standards"][0]["controls"] if c["id"] == "C12")
    assert c12["status"] == "warning" and c12["evidence"]["last_backup"] is not None
    assert c12["findings"] == ["no restore test in the last 365 d"]


# --- each run is itself audited (PCI DSS 10.2.1.3: access to audit logs is logged) -----
def _log(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit.log").read_bytes().splitlines()]


COUNT_KEYS = ("pass", "fail", "warning", "not_evaluated", "manual", "not_applicable")


def test_a_report_run_writes_one_audit_record_without_report_content(cli, zt_env, active_home, tmp_path):
    before = _log(active_home)
    out = tmp_path / "pci.json"
    res = cli("compliance-report", "--standard", "pci", "--period", "30d", "--output", str(out))
    assert res.code == 0, res.err
    after = _log(active_home)
    assert after[: len(before)] == before and len(after) == len(before) + 1
    rec, report = after[-1], json.loads(out.read_text())
    assert (rec["event"], rec["action"], rec["resource"], rec["success"], rec["level"], rec["user"]) == \
        ("compliance_report", "report", "compliance/pci-dss", True, "info", "alice@EXAMPLE.COM")
    details = rec["details"]
    # what was asked and how it came out; never the report's evidence, findings or remediation
    assert set(details) == {"standards", "format", "period", "output", "period_start", "period_end", "overall", "counts", "report_sha256", "config_sha256"}
    assert details["config_sha256"] == report["hashes"]["config_sha256"]
    assert (details["standards"], details["format"], details["period"], details["output"]) == (["pci-dss"], "json", "30d", str(out))
    assert (details["period_start"], details["period_end"]) == (report["report"]["period"]["start"], report["report"]["period"]["end"])
    assert details["overall"] == report["overall"]
    assert details["counts"] == {"pci-dss": {k: report["standards"][0]["score"][k] for k in COUNT_KEYS}}
    assert details["report_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    verify = cli("audit", "verify", "--json")
    assert verify.code == 0 and json.loads(verify.out)["records"] == len(after)
    # the next report counts the run as a logged read of the audit trail
    nxt = _report(zt_env, datetime.now(timezone.utc) + timedelta(minutes=5), standard="pci")
    c6 = next(c for c in nxt["standards"][0]["controls"] if c["id"] == "C6")
    assert c6["evidence"]["audit_log_reads_recorded"].startswith(f"1 compliance report run(s) (last {rec['timestamp'][:19]}Z)")
    req = {r["id"]: r for r in nxt["standards"][0]["requirements"]}
    assert req["10.2.1.3"]["status"] == "manual" and "compliance_report" in req["10.2.1.3"]["finding"]


def test_a_failed_report_run_writes_a_failure_record(cli, active_home, tmp_path):
    start = len(_log(active_home))
    missing = tmp_path / "missing-dir" / "r.pdf"
    res = cli("compliance-report", "--standard", "soc2", "--output", str(missing))
    assert res.code == 1 and "does not exist" in res.err
    (tmp_path / "a-dir.md").mkdir()
    res = cli("compliance-report", "--standard", "all", "--output", str(tmp_path / "a-dir.md"), "--period", "7d")
    assert res.code == 1 and "is a directory" in res.err
    records = _log(active_home)
    assert len(records) == start + 2
    first, second = records[-2:]
    assert (first["event"], first["action"], first["resource"], first["success"], first["level"]) == \
        ("compliance_report", "report", "compliance/soc2", False, "warning")
    assert first["details"] == {"standards": ["soc2"], "format": "pdf", "period": "90d", "output": str(missing), "error": "ZeroTrustError"}
    assert second["resource"] == "compliance/all" and second["success"] is False
    assert second["details"]["standards"] == list(STANDARDS) and second["details"]["format"] == "md"
    # Input rejected before any work writes no record, as for a malformed secret name.
    for args in (("--standard", "iso27001"), ("--standard", "soc2", "--period", "soon")):
        assert cli("compliance-report", *args, "--output", str(tmp_path / "r.pdf")).code == 2
    assert cli("compliance-report", "--standard", "soc2", "--output", str(tmp_path / "r.docx")).code == 2
    assert len(_log(active_home)) == start + 2
    assert cli("audit", "verify").code == 0


def test_a_report_that_cannot_be_audited_is_not_left_behind(cli, zt_env, active_home, tmp_path):
    cfg = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f"audit:\n  sinks: [file, syslog]\n  syslog: {{address: 'unix:{tmp_path}/nobody.sock'}}\n")
    os.chmod(cfg, 0o600)
    out = tmp_path / "r.json"
    res = cli("compliance-report", "--standard", "gdpr", "--output", str(out))
    assert res.code == 1 and "could not be shipped" in res.err
    assert not out.exists()  # refused like an unaudited secret read
    records = _log(active_home)
    assert records[-2]["event"] == "compliance_report" and records[-1]["event"] == "audit_sink_failure"
    assert cli("audit", "verify").code == 0


def test_both_line_parsers_give_the_same_evidence(zt_env, active_home, monkeypatch):
    """orjson (when installed) and the audit package's parser read the log alike, unreadable lines included."""
    from zerotrust_admin.compliance import evidence

    log = active_home / "audit.log"
    log.write_bytes(log.read_bytes() + b'{"seq": NaN}\n{"torn":\n')
    now = _master_created(active_home) + timedelta(days=1)
    first = _report(zt_env, now)["evidence"]["audit"]
    monkeypatch.setattr(evidence, "line_parser", lambda: evidence.strict_parse)
    second = _report(zt_env, now)["evidence"]["audit"]
    assert first["unreadable_lines"] == 2 and first == second
