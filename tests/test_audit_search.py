"""audit search: streaming filters over a real audit log (library and CLI)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from zerotrust_admin.anomaly.synthetic import Synthetic, write_log
from zerotrust_admin.audit import AuditLog
from zerotrust_admin.audit.search import AuditQuery, SearchStats, parse_duration, parse_when, search
from zerotrust_admin.errors import UsageError


@pytest.fixture(scope="module")
def synthetic_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "audit.log"
    syn = Synthetic(days=10, window_days=3, users=12, services=2, seed=11)
    records = list(syn.records())
    write_log(path, iter(records))
    return AuditLog(path), records


def _expected(records, pred):
    return [r["seq"] for r in records if pred(r)]


def test_filters_match_a_plain_python_scan(synthetic_log):
    log, records = synthetic_log
    user = records[100]["user"]
    got = [r["seq"] for r in search(log, AuditQuery(users=[user]))]
    assert got == _expected(records, lambda r: r["user"] == user) and got
    got = [r["seq"] for r in search(log, AuditQuery(actions=["write"], success=False))]
    assert got == _expected(records, lambda r: r["action"] == "write" and not r["success"]) and got
    got = [r["seq"] for r in search(log, AuditQuery(resource="payments/db/*"))]
    assert got == _expected(records, lambda r: r["resource"].startswith("payments/db/")) and got
    got = [r["seq"] for r in search(log, AuditQuery(events=["authentication"]))]
    assert got == _expected(records, lambda r: r["event"] == "authentication") and got


def test_user_glob_and_time_range(synthetic_log):
    log, records = synthetic_log
    start = datetime.fromisoformat(records[len(records) // 3]["timestamp"])
    end = datetime.fromisoformat(records[len(records) // 2]["timestamp"])
    got = [r["seq"] for r in search(log, AuditQuery(users=["svc/*"], since=start, until=end))]
    want = _expected(records, lambda r: r["user"].startswith("svc/") and start <= datetime.fromisoformat(r["timestamp"]) < end)
    assert got == want and got


def test_limit_stops_early_and_counts_scanned(synthetic_log):
    log, records = synthetic_log
    stats = SearchStats()
    got = list(search(log, AuditQuery(limit=5), stats))
    assert [r["seq"] for r in got] == [1, 2, 3, 4, 5]
    assert stats.scanned == 5


def test_damaged_line_is_skipped_and_reported(tmp_path, synthetic_log):
    _, records = synthetic_log
    path = tmp_path / "audit.log"
    write_log(path, iter(records[:50]))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[9] = b'{"broken\n'
    path.write_bytes(b"".join(lines))
    stats = SearchStats()
    got = list(search(AuditLog(path), AuditQuery(), stats))
    assert len(got) == 49 and stats.unreadable_lines == [10]


def test_durations_and_times():
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("90m") == timedelta(minutes=90)
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    assert parse_when("2d", now=now) == datetime(2026, 1, 8, tzinfo=timezone.utc)
    assert parse_when("2026-01-05T00:00:00Z") == datetime(2026, 1, 5, tzinfo=timezone.utc)
    with pytest.raises(UsageError):
        parse_duration("soon")
    with pytest.raises(UsageError):
        parse_when("yesterday-ish")


def test_cli_search_over_real_activity(cli, initialized):
    for name in ("db/password", "db/replica", "app/token"):
        assert cli("vault", "put", name, input=b"v").code == 0
    assert cli("vault", "get", "db/password").code == 0
    assert cli("vault", "get", "db/missing").code == 3
    res = cli("audit", "search", "--resource", "db/*", "--action", "read", "--json")
    assert res.code == 0, res.err
    rows = [json.loads(line) for line in res.text.splitlines()]
    assert [(r["resource"], r["success"]) for r in rows] == [("db/password", True), ("db/missing", False)]
    res = cli("audit", "search", "--failure", "--json")
    assert [r["resource"] for r in map(json.loads, res.text.splitlines())] == ["db/missing"]
    res = cli("audit", "search", "--user", "alice@EXAMPLE.COM", "--action", "write", "--count")
    assert res.text.strip() == "3"
    res = cli("audit", "search", "--user", "nobody@EXAMPLE.COM", "--count")
    assert res.text.strip() == "0"
    res = cli("audit", "search", "--since", "1h", "--until", "2099-01-01T00:00:00Z", "--count")
    total = sum(1 for _ in open(initialized / "audit.log"))
    assert int(res.text) == total
    res = cli("audit", "search", "--since", "tomorrow")
    assert res.code == 2 and "neither a time" in res.err
