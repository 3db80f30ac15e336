"""An installation written by the previous release (commit 39f564a: vault
format 1, an audit log with an unsigned head anchor) keeps working after the
upgrade, whatever command runs first. The homes in tests/vectors/release-39f564a/
were written by that release's CLI (see its README)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors" / "release-39f564a"
EXPECTED = {"app/db": b"db-v2", "app/api": b"api-key-1"}
DELETED = "app/old"


@pytest.fixture(params=["plain", "rotated"])
def old_home(request, zt_env):
    home = Path(zt_env["ZEROTRUST_HOME"])
    shutil.copytree(VECTORS / request.param, home)
    home.chmod(0o700)
    for f in home.iterdir():
        f.chmod(0o600)
    return home


@pytest.mark.parametrize("first", [
    ["vault", "get", "app/db"],
    ["keys", "public-key"],
    ["keys", "status"],
    ["audit", "verify"],
    ["vault", "list"],
])
def test_previous_release_home_works_whatever_command_runs_first(cli, old_home, first):
    res = cli(*first)
    assert res.code == 0, (first, res.err)
    for name, value in EXPECTED.items():
        res = cli("vault", "get", name)
        assert res.code == 0 and res.out == value, (name, res.err)
    assert cli("vault", "get", DELETED).code == 3  # still soft-deleted after the upgrade
    assert cli("vault", "undelete", DELETED).code == 0
    assert cli("vault", "get", DELETED).out == b"old-1"
    res = cli("--json", "audit", "verify")
    assert res.code == 0, res.err
    assert json.loads(res.out)["ok"] is True
    pub = old_home.parent / "auditor.pub"  # an auditor's copy lives outside the home (-o into it is refused)
    assert cli("keys", "public-key", "--output", str(pub)).code == 0
    res = cli("audit", "verify", "--public-key", str(pub))
    assert res.code == 0, res.err
    events = [json.loads(line)["event"] for line in (old_home / "audit.log").read_text().splitlines()]
    assert "vault_upgrade" in events


def test_previous_release_history_is_kept(cli, old_home):
    res = cli("--json", "vault", "history", "app/db")
    assert res.code == 0, res.err
    assert [v["version"] for v in json.loads(res.out)] == [1, 2]
    assert cli("vault", "get", "app/db", "--version", "1").out == b"db-v1"
