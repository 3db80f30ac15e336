"""Issue 14, anomaly detection: a rolling baseline, so that a window may cover
the whole history of the log (``audit anomalies --since 30d`` on a young log).

Scenario of the issue: two weeks of office-hours reads from one workstation,
then forty reads of a secret at 3 a.m. from a never-seen address."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from zerotrust_admin.anomaly import detect
from zerotrust_admin.anomaly.synthetic import write_log


def _stamp(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rec(ts, user, ip, action="read", resource="db/prod/password"):
    return {"timestamp": _stamp(ts), "level": "info", "event": "secret_access", "user": user, "action": action,
            "resource": resource, "source_ip": ip, "host": "broker-1", "success": True}


def _young_log(start: datetime, days: int = 14):
    """Alice and Bob read secrets 9:00-17:00 on weekdays from their own workstations
    for ``days`` days; then Alice's account reads one secret forty times at 3 a.m. from
    203.0.113.77. Returns (records, the night's first index)."""
    out = []
    for d in range(days):
        day = start + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for k in range(12):
            out.append(_rec(day + timedelta(hours=9, minutes=k * 40), "alice@EXAMPLE.COM", "10.1.5.7"))
            out.append(_rec(day + timedelta(hours=9, minutes=k * 40 + 7), "bob@EXAMPLE.COM", "10.1.5.9"))
    night = start + timedelta(days=days, hours=3)
    first = len(out)
    out += [_rec(night + timedelta(seconds=20 * k), "alice@EXAMPLE.COM", "203.0.113.77") for k in range(40)]
    return out, first


def _numbered(records):
    return [dict(r, seq=i) for i, r in enumerate(records, 1)]


def test_a_window_covering_the_whole_log_judges_each_record_against_the_ones_before_it():
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday
    records, first = _young_log(start)
    records = _numbered(records)
    until = start + timedelta(days=15)
    report = detect(iter(records), until - timedelta(days=30), until)  # the window starts before the first record
    night_seqs = {r["seq"] for r in records[first:]}
    by_kind = {f.kind: f for f in report.findings}
    assert set(by_kind) >= {"unusual_hour", "new_network"}, [f.title for f in report.findings]
    hour, net = by_kind["unusual_hour"], by_kind["new_network"]
    assert hour.user == net.user == "alice@EXAMPLE.COM"
    assert hour.severity == "high" and hour.count == 40 and set(hour.seqs) <= night_seqs  # flagged reads never teach the profile
    assert net.count == 40 and net.evidence["network"] == "203.0.113.0/24" and net.evidence["known_networks"] == ["10.1.5.0/24"]
    # the first two weeks (the warm-up of the rolling profile) raise nothing, and Bob nothing at all
    assert all(set(f.seqs) <= night_seqs for f in report.findings), [f.title for f in report.findings]
    assert report.stats["baseline_days"] == 0 and report.stats["rolling"] is True


def test_a_volume_spike_late_in_a_young_log_is_found_without_a_prior_baseline():
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    records, first = _young_log(start, days=14)
    records = records[:first]
    burst = start + timedelta(days=11, hours=10, minutes=5)  # a Friday, office hours, known workstation
    records += [_rec(burst + timedelta(seconds=5 * k), "bob@EXAMPLE.COM", "10.1.5.9") for k in range(300)]
    records.sort(key=lambda r: r["timestamp"])
    records = _numbered(records)
    until = start + timedelta(days=15)
    report = detect(iter(records), until - timedelta(days=30), until)
    spikes = [f for f in report.findings if f.kind == "volume_spike"]
    assert len(spikes) == 1 and spikes[0].user == "bob@EXAMPLE.COM" and spikes[0].count >= 300
    assert spikes[0].evidence["baseline_days"] >= 7
    # the first seven days are not judged for volume, and the report says so
    assert any("volume spikes not evaluated" in n for n in report.notes)


def test_cli_anomalies_since_30d_on_a_log_younger_than_the_window(cli, zt_env):
    home = Path(zt_env["ZEROTRUST_HOME"])
    now = datetime.now(timezone.utc)
    start = (now - timedelta(days=16)).replace(hour=0, minute=0, second=0, microsecond=0)
    records, first = _young_log(start)
    assert records[-1]["timestamp"] < _stamp(now)
    write_log(home / "audit.log", iter(records))
    res = cli("audit", "anomalies", "--since", "30d", "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    night = {f["kind"]: f for f in out["findings"] if f["user"] == "alice@EXAMPLE.COM"}
    assert {"unusual_hour", "new_network"} <= set(night), out
    assert night["unusual_hour"]["severity"] == "high" and night["unusual_hour"]["count"] == 40
    assert night["new_network"]["evidence"]["first_ip"] == "203.0.113.77"
    assert min(f["seqs"][0] for f in out["findings"]) > first  # nothing from the two quiet weeks
    text = cli("audit", "anomalies", "--since", "30d", "--min-severity", "high")
    assert text.code == 0 and "unusual_hour" in text.text and "alice@EXAMPLE.COM" in text.text
