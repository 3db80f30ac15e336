"""Issue 15: the compliance report takes the rotation history as evidence.

The history is made by the real ``rotate-secrets`` (the ``random`` kind: no
server needed) and the report is evaluated later with the report's ``now``
(or ``SOURCE_DATE_EPOCH`` through the CLI), as the other compliance tests
backdate. Rows: PCI DSS 8.3.9 (at most 90 days; user passwords stay
password_only_users' manual finding) and 8.6.3, HIPAA 164.308(a)(5)(ii)(D),
FedRAMP IA-5(1)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from zerotrust_admin.compliance.report import build_report
from zerotrust_admin.config import load_config

ROWS = {"pci-dss": ["8.3.9", "8.6.3"], "hipaa": ["164.308(a)(5)(ii)(D)"], "fedramp": ["IA-5(1)"]}


def write_config(zt_env: dict, entries: list, **extra) -> dict:
    path = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    path.write_text(yaml.safe_dump({**(data or {}), "secret_rotation": entries, **extra}))
    os.chmod(path, 0o600)
    return {"ZEROTRUST_CONFIG": str(path)}


def random_entry(name="api/key", every="30d", **target) -> dict:
    return {"secret": name, "kind": "random", "every": every, "grace": "1h", "target": {"length": 24, "alphabet": "hex", **target}}


def report(zt_env: dict, env: dict, now: datetime, days: int = 90) -> dict:
    return build_report(load_config(None, environ={**zt_env, **env}), "all", period=timedelta(days=days), now=now, operator="test")


def check(rep: dict, sid: str, rid: str) -> tuple[dict, dict]:
    """(the row, its secret_rotation finding)."""
    std = next(s for s in rep["standards"] if s["id"] == sid)
    row = next(q for q in std["requirements"] if q["id"] == rid)
    return row, next(f for f in row["findings"] if f["check"] == "secret_rotation")


def rotate(cli, env: dict, *args: str) -> None:
    result = cli("rotate-secrets", *args, env=env)
    assert result.code == 0, result.err


def test_rotations_replayed_against_the_cadence(cli, initialized, zt_env):
    env = write_config(zt_env, [random_entry(), random_entry("db/app", every="120d")])
    rotate(cli, env)  # first values of both: finished (and retired) now
    rotate(cli, env, "--secret", "api/key")  # a second rotation of api/key: two rotation ids, two times
    t0 = datetime.now(timezone.utc)
    fresh = report(zt_env, env, t0 + timedelta(days=5))
    for sid, rids in ROWS.items():
        for rid in rids:
            _row, f = check(fresh, sid, rid)
            assert f["status"] == "pass", (sid, rid, f)
            assert any(line.startswith("api/key (random): every 30 d, judged against at most 31 d; 2 rotation(s) in the period") for line in f["evidence"]), f["evidence"]
    row, _ = check(fresh, "pci-dss", "8.3.9")
    assert row["status"] == "manual", "8.3.9 is about user passwords: password_only_users stays the auditor's"
    assert "password_only_users" in row["checks"] and "cryptoperiod" not in row["checks"]

    # 45 days later: api/key (every 30 d) is overdue since day 31 (+1 day for cron); db/app (120 d) is not.
    late_at = t0 + timedelta(days=45)
    late = report(zt_env, env, late_at)
    row, f = check(late, "pci-dss", "8.6.3")
    assert row["status"] == "fail" and f["status"] == "fail"
    assert f["finding"].startswith("api/key overdue on ") and "db/app" not in f["finding"]
    days = int(f["finding"].split("overdue on ")[1].split(" ")[0])
    assert 13 <= days <= 15, f["finding"]
    assert f"to {late_at.strftime('%Y-%m-%d')})" in f["finding"]
    assert "rotate-secrets" in f["remediation"]
    for sid, rids in ROWS.items():
        for rid in rids:
            assert check(late, sid, rid)[1]["status"] == "fail", (sid, rid)

    # 100 days later, db/app alone: within its own 120 days (8.6.3 passes) but past 8.3.9's 90.
    env = write_config(zt_env, [random_entry("db/app", every="120d")])
    later = report(zt_env, env, t0 + timedelta(days=100), days=95)
    assert check(later, "pci-dss", "8.6.3")[1]["status"] == "pass"
    f = check(later, "pci-dss", "8.3.9")[1]
    assert f["status"] == "fail" and f["finding"].startswith("db/app overdue on "), f
    assert any("at most 90 d" in line for line in f["evidence"])


def test_no_managed_password_is_manual(cli, initialized, zt_env):
    for entries in ([], [{"secret": "web/tls", "kind": "tls", "grace": "1h",
                          "target": {"ca_secret": "pki/ca", "common_name": "web.example.com"}}]):
        env = write_config(zt_env, entries)
        rep = report(zt_env, env, datetime.now(timezone.utc) + timedelta(minutes=2))
        for sid, rids in ROWS.items():
            for rid in rids:
                row, f = check(rep, sid, rid)
                assert f["status"] == "manual" and "evidence of the process" in f["finding"], (sid, rid, f)
                assert row["status"] in ("manual", "fail", "warning", "not_evaluated"), row["status"]
        assert ("other than certificates" in f["finding"]) == bool(entries)


def test_failed_steps_in_the_period_are_a_warning(cli, initialized, zt_env):
    dead = "http://127.0.0.1:9/rotate"  # nothing listens on the discard port
    env = write_config(zt_env, [random_entry()])
    rotate(cli, env)
    assert cli("vault", "put", "hooks/key", input=b"k" * 32, env=env).code == 0
    env = write_config(zt_env, [random_entry(webhook_url=dead, webhook_secret="hooks/key")])
    failed = cli("rotate-secrets", "--secret", "api/key", env=env)
    assert failed.code == 1, failed.err
    rep = report(zt_env, env, datetime.now(timezone.utc) + timedelta(days=1))
    row, f = check(rep, "pci-dss", "8.6.3")
    assert f["status"] == "warning" and "api/key at apply" in f["finding"], f
    assert any("UnavailableError" in line for line in f["evidence"]), f["evidence"]
    assert check(rep, "fedramp", "IA-5(1)")[0]["status"] == "warning"
    # The same log judged from a period that starts after the failure: no warning.
    later = report(zt_env, env, datetime.now(timezone.utc) + timedelta(days=12), days=10)
    assert check(later, "pci-dss", "8.6.3")[1]["status"] == "pass"


def test_cli_report_with_source_date_epoch(cli, initialized, zt_env, tmp_path):
    env = write_config(zt_env, [random_entry()])
    rotate(cli, env)
    epoch = int((datetime.now(timezone.utc) + timedelta(days=40)).timestamp())
    out = tmp_path / "r.json"
    res = cli("compliance-report", "--standard", "pci", "--output", str(out), env={**env, "SOURCE_DATE_EPOCH": str(epoch)})
    assert res.code == 0, res.err
    rep = json.loads(out.read_text())
    row, f = check(rep, "pci-dss", "8.6.3")
    assert row["status"] == "fail" and f["finding"].startswith("api/key overdue on "), f
    assert rep["evidence"]["secret_rotation"]["managed"][0]["secret"] == "api/key"
    assert len(rep["evidence"]["audit"]["secret_rotations"]["api/key"]) == 1
