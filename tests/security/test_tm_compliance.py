"""Threat model V5 as the compliance report meets it: key times and states in
the report come from the vault's authenticated records, and a vault whose key
records were edited is a failed requirement, never a pass or a fresh key."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def _report(cli, tmp_path, name: str) -> dict:
    out = tmp_path / name
    res = cli("compliance-report", "--standard", "pci", "--output", str(out))
    assert res.code == 0, res.err
    return json.loads(out.read_text())


def _rows(report: dict) -> dict:
    return {q["id"]: q for s in report["standards"] for q in s["requirements"]}


def test_v5_report_key_times_come_from_authenticated_records(cli, zt_env, tmp_path):
    assert cli("init").code == 0
    assert cli("vault", "put", "app/db", input=b"v1").code == 0
    clean = _report(cli, tmp_path, "clean.json")
    vault = clean["evidence"]["vault"]
    assert vault["authenticated"] is True and vault["deks"], vault
    assert _rows(clean)["3.7.4"]["status"] != "fail"
    # An attacker without keys makes the data key look new forever (V5).
    db = Path(zt_env["ZEROTRUST_HOME"]) / "vault.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE deks SET created = '2099-01-01T00:00:00.000000Z'")
    edited = _report(cli, tmp_path, "edited.json")
    vault = edited["evidence"]["vault"]
    assert vault["available"] is False and vault.get("integrity_failed") is True, vault
    assert "does not authenticate" in vault["note"]
    rows = _rows(edited)
    for req in ("3.6.1", "3.7.1", "3.7.4"):
        assert rows[req]["status"] == "fail", (req, rows[req]["status"], rows[req].get("finding"))
    assert "2099" not in json.dumps(edited["evidence"]["vault"])
