"""Brute-force protection: N failures in a window lock a principal out with a
retry-after time, the delay doubles on each repeated lockout, success clears
it, the state file is private, and a wrong passphrase on a real vault counts."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.errors import ConfigError, DeniedError
from zerotrust_admin.lockout import Lockout, LockoutPolicy
from tests.servers import softhsm  # noqa: F401  (fixture)

ACTOR = Actor(user="alice@EXAMPLE.COM", source_ip="192.0.2.10", host="h")


class Clock:
    def __init__(self):
        self.t = 1_700_000_000.0

    def __call__(self):
        return self.t


@pytest.fixture
def setup(tmp_path):
    clock = Clock()
    audit = AuditLog(tmp_path / "audit.log")
    notes = []
    lock = Lockout(tmp_path / "lockout.db", LockoutPolicy(max_failures=3, window_seconds=60, base_delay_seconds=10, max_delay_seconds=35),
                   audit=audit, actor=ACTOR, notify=lambda p, d: notes.append((p, d)), clock=clock)
    return lock, clock, audit, notes


def test_lockout_backoff_and_reset(setup, tmp_path):
    lock, clock, audit, notes = setup
    p = "alice@EXAMPLE.COM"
    lock.record_failure(p, "passphrase")
    lock.record_failure(p, "mfa")
    lock.record_failure(p, "passphrase")
    lock.record_failure(p, "pin")
    lock.check(p)  # each kind counts on its own: 2, 1, 1 < 3, not locked
    state = lock.record_failure(p, "passphrase")
    assert state.locked_until == clock.t + 10 and state.locked_kind == "passphrase"
    with pytest.raises(DeniedError, match=r"retry after 10 s") as err:
        lock.check(p, "mfa")
    assert err.value.exit_code == 4
    with pytest.raises(DeniedError, match=r"OS user .* is locked out"):
        lock.check("bob@EXAMPLE.COM")  # the same OS account: locked too (threat model P4)
    other_account = Lockout(lock.path, lock.policy, clock=clock, os_user="1001:bob@h")
    other_account.check("bob@EXAMPLE.COM")  # another principal on another OS account: not locked
    clock.t += 10.5
    lock.check(p)  # expired
    for _ in range(3):
        state = lock.record_failure(p, "passphrase")
    assert state.locked_until == clock.t + 20 and state.lockouts == 2  # doubled
    clock.t += 21
    for _ in range(3):
        state = lock.record_failure(p, "passphrase")
    assert state.locked_until == clock.t + 35  # 40 capped at max_delay
    assert len(notes) == 3 and notes[0][0] == p
    lock.record_success(p, "passphrase")  # a shared secret: clears the OS account's counter too
    lock.check(p)
    assert lock.state(p).lockouts == 0
    assert stat.S_IMODE(os.stat(tmp_path / "lockout.db").st_mode) == 0o600
    events = [r["event"] for r in audit.records()]
    # 3 lockouts (of the principal and the OS account at once) + 2 refusals
    assert events.count("auth_failure") == 11 and events.count("lockout") == 5


def test_failures_outside_the_window_do_not_count(setup):
    lock, clock, _audit, _notes = setup
    p = "alice@EXAMPLE.COM"
    lock.record_failure(p, "mfa")
    lock.record_failure(p, "mfa")
    clock.t += 61
    state = lock.record_failure(p, "mfa")
    assert state.locked_until is None and state.recent_failures == 1


def test_policy_validation():
    with pytest.raises(ConfigError, match="max_failures"):
        LockoutPolicy.from_config({"security": {"lockout": {"max_failures": 0}}})
    with pytest.raises(ConfigError, match="security.lockout.windw"):
        LockoutPolicy.from_config({"security": {"lockout": {"windw": 3}}})
    assert LockoutPolicy.from_config({}).max_failures == 5


def test_wrong_passphrase_locks_out_the_cli(cli, zt_env, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("security:\n  lockout: {max_failures: 2, window_seconds: 600, base_delay_seconds: 300}\n")
    config.chmod(0o600)
    env = {"ZEROTRUST_CONFIG": str(config), "ZEROTRUST_PASSPHRASE": "correct horse battery staple"}
    assert cli("init", "--passphrase", env=env).code == 0
    assert cli("vault", "put", "a", input=b"v", env=env).code == 0
    wrong = {**env, "ZEROTRUST_PASSPHRASE": "wrong passphrase, twelve+"}
    for _ in range(2):
        result = cli("vault", "list", env=wrong)
        assert result.code == 4 and "does not open the vault" in result.err
    locked = cli("vault", "get", "a", env=wrong)
    assert locked.code == 4 and "locked out" in locked.err and "retry after" in locked.err
    # The right passphrase is refused too while locked: that is the point.
    assert cli("vault", "get", "a", env=env).code == 4
    records = [json.loads(line) for line in (tmp_path / "home" / "audit.log").read_text().splitlines()]
    assert sum(1 for r in records if r["event"] == "auth_failure") == 2
    assert any(r["event"] == "lockout" and r["user"] == "alice@EXAMPLE.COM" for r in records)


def test_wrong_hsm_pin_locks_out(cli, zt_env, softhsm):  # noqa: F811
    path = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(softhsm.config_block() + "\nsecurity:\n  lockout: {max_failures: 2, window_seconds: 600, base_delay_seconds: 300}\n")
    path.chmod(0o600)
    zt_env.update(softhsm.env)
    assert cli("init").code == 0
    softhsm.pin_file.write_text("999999")
    for _ in range(2):
        result = cli("vault", "list")
        assert result.code == 4 and "refused the PIN" in result.err
    locked = cli("vault", "list")
    assert locked.code == 4 and "locked out" in locked.err and "pin" in locked.err
    softhsm.pin_file.write_text(softhsm.pin)
    assert "locked out" in cli("vault", "list").err  # the right PIN waits too


def test_lockout_records_under_a_custom_audit_path_are_signed_by_the_installation_key(cli, zt_env, tmp_path):
    """The lockout's audit records go through the configured signing key, not one
    looked for beside a log kept outside $ZEROTRUST_HOME (that was exit 5)."""
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o700)
    config = tmp_path / "config.yaml"
    config.write_text(f"audit:\n  path: {logs / 'audit.log'}\nsecurity:\n  lockout: {{max_failures: 3, window_seconds: 600, base_delay_seconds: 300}}\n")
    config.chmod(0o600)
    env = {"ZEROTRUST_CONFIG": str(config), "ZEROTRUST_PASSPHRASE": "correct horse battery staple"}
    assert cli("init", "--passphrase", env=env).code == 0
    assert cli("vault", "put", "a", input=b"v", env=env).code == 0
    result = cli("vault", "list", env={**env, "ZEROTRUST_PASSPHRASE": "wrong passphrase, twelve+"})
    assert result.code == 4 and "does not open the vault" in result.err, result.err
    verify = cli("audit", "verify", env=env)
    assert verify.code == 0, verify.err
    records = [json.loads(line) for line in (logs / "audit.log").read_text().splitlines()]
    assert any(r["event"] == "auth_failure" for r in records)
