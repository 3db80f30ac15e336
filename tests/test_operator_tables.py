"""Issue 14, item 1: on a narrow terminal, IDs and principals are never cut.

Each command runs on a real pseudo-terminal 80 and 60 columns wide; every ID
and principal that ``--json`` reports must appear whole, on one line."""

from __future__ import annotations

import json

import pytest

from tests.operator_pty import run_in_pty

CAROL = "carol.on-call-engineer@EXAMPLE.COM"


@pytest.fixture
def busy_home(initialized, cli, zt_env):
    for _ in range(3):
        r = cli("sessions", "create", "--user", CAROL, "--source-ip", "192.0.2.10", env={"ZEROTRUST_PRINCIPAL": CAROL})
        assert r.code == 0, r.err
    return zt_env


def whole_on_one_line(screen: str, value: str) -> bool:
    return any(value in line for line in screen.splitlines())


@pytest.mark.parametrize("cols", [80, 60])
def test_sessions_list_keeps_ids_and_principals_whole(busy_home, cli, cols):
    sessions = json.loads(cli("sessions", "list", "--json").text)
    assert len(sessions) == 3
    r = run_in_pty(["sessions", "list"], busy_home, cols=cols)
    assert r.code == 0, r.screen
    for s in sessions:
        assert whole_on_one_line(r.screen, s["id"]), r.screen
        assert whole_on_one_line(r.screen, s["user"]), r.screen
    assert "…" not in r.screen
    assert max(len(line) for line in r.screen.splitlines()) <= cols


@pytest.mark.parametrize("cols", [80, 60])
def test_keys_status_keeps_key_ids_whole(busy_home, cli, cols):
    keys = json.loads(cli("keys", "status", "--json").text)["keys"]
    assert keys
    r = run_in_pty(["keys", "status"], busy_home, cols=cols)
    assert r.code == 0, r.screen
    for k in keys:
        assert whole_on_one_line(r.screen, k["id"]), r.screen
    assert "…" not in r.screen


@pytest.mark.parametrize("cols", [80, 60])
def test_audit_tail_keeps_principals_and_resources_whole(busy_home, cli, cols):
    records = [json.loads(line) for line in cli("audit", "tail", "--json").text.splitlines()]
    assert any(rec["user"] == CAROL for rec in records)
    r = run_in_pty(["audit", "tail"], busy_home, cols=cols)
    assert r.code == 0, r.screen
    for rec in records:
        assert whole_on_one_line(r.screen, rec["user"]), r.screen
        assert whole_on_one_line(r.screen, rec["resource"]), r.screen
    assert "…" not in r.screen


def test_wide_terminal_still_shows_every_column(busy_home):
    r = run_in_pty(["sessions", "list"], busy_home, cols=200)
    assert "SOURCE IP" in r.screen and "192.0.2.10" in r.screen and "CREATED" in r.screen
