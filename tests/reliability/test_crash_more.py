"""Crash injection, part 2: SIGKILL `rotate-keys --master`, `rotate-keys --dek`,
`vault restore` and `revoke-sessions --all` at random points of real CLI runs.

After each kill the vault opens (with the old or the new master key), every
secret reads back, nothing half-done is visible, the audit chain verifies, and
re-running the interrupted command completes the job.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from tests.reliability.helpers import ROOT, KillSchedule, audit_of, open_vault, settle_after_kill, timed_run, warm_runtime

KILLS = int(os.environ.get("ZT_CRASH_KILLS_EACH", "30"))


def _fill(env, count: int, prefix: str = "app/s") -> dict[str, bytes]:
    expected = {f"{prefix}{i:05d}": f"value-{i}".encode() for i in range(count)}
    with open_vault(env) as vault:
        vault.import_many(expected.items(), source="fill")
    return expected


def _check(env, expected) -> None:
    with open_vault(env) as vault:
        for name, value in expected.items():
            secret, _ = vault._read(name, None)
            assert secret.reveal() == value, name
    result = audit_of(env).verify()
    assert result.ok or "torn" in (result.problem or ""), result.problem


def _campaign(env, args, expected, seed, rerun_args=None) -> int:
    rng = random.Random(seed)
    runtime = warm_runtime(env, args)
    killed = 0
    schedule = KillSchedule(rng, runtime, KILLS)
    for delay in schedule:
        was_killed, code = schedule.run(env, args, delay)
        killed += was_killed
        assert was_killed or code == 0
        # A kill between a transaction's audit record and its COMMIT (every vault
        # write carries one, key rotations included) is exit 5 "interrupted" until
        # `vault recover --interrupted` (threat model V4); nothing else is accepted.
        assert not settle_after_kill(env, schedule) or was_killed
        _check(env, expected)
    # Re-running completes whatever was interrupted.
    timed_run(env, rerun_args or args)
    _check(env, expected)
    assert audit_of(env).verify().ok
    return killed


def test_sigkill_rotate_master(initialized, zt_env):
    env = dict(zt_env)
    expected = _fill(env, 300)
    killed = _campaign(env, ["rotate-keys", "--master", "--json"], expected, 11, ["rotate-keys", "--json"])
    print(f"RELIABILITY rotate-master kills={killed} runs={KILLS}")
    assert killed >= KILLS // 2
    with open_vault(env) as vault:
        assert not any(k.startswith("master_pending") for k in vault.meta)


def test_sigkill_rotate_dek(initialized, zt_env):
    env = dict(zt_env)
    expected = _fill(env, 3000)
    killed = _campaign(env, ["rotate-keys", "--dek", "--json"], expected, 12)
    print(f"RELIABILITY rotate-dek kills={killed} runs={KILLS}")
    assert killed >= KILLS // 2
    with open_vault(env) as vault:
        assert vault.pending_reencryption() == 0


def test_sigkill_vault_restore(initialized, zt_env, tmp_path):
    env = dict(zt_env)
    env["ZEROTRUST_BACKUP_PASSPHRASE"] = "correct horse battery staple"
    expected = _fill(env, 1000)
    backup = tmp_path / "vault.ztb"
    timed_run(env, ["vault", "backup", "--output", str(backup)])
    rng = random.Random(13)
    target = dict(env)
    killed = 0
    schedule = None
    # The backup is signed by the source installation; each target is a fresh
    # installation with its own key, so it is told which signer to trust.
    signer = ["--signer", str(Path(env["ZEROTRUST_HOME"]) / "signing.pub")]
    for attempt in range(KILLS):
        target_home = tmp_path / f"restore-{attempt}"
        target.update(ZEROTRUST_HOME=str(target_home), XDG_CONFIG_HOME=str(tmp_path / f"cfg-{attempt}"))
        timed_run(target, ["init"])
        if schedule is None:
            runtime = warm_runtime(target, ["vault", "restore", str(backup), "--dry-run", *signer]) * 1.3
            schedule = KillSchedule(rng, runtime, KILLS)
        delay = schedule.runtime * rng.uniform(0.3, 1.1)
        was_killed, code = schedule.run(target, ["vault", "restore", str(backup), *signer], delay)
        killed += was_killed
        assert not settle_after_kill(target) or was_killed
        with open_vault(target) as vault:
            count = len(vault._query_list("", True))
        assert count in (0, len(expected)), f"half-restored vault: {count} secrets"
        if count == 0:
            timed_run(target, ["vault", "restore", str(backup), *signer])  # the re-run completes the job
        _check(target, expected)
    print(f"RELIABILITY vault-restore kills={killed} runs={KILLS}")
    assert killed >= KILLS // 3


def test_sigkill_revoke_sessions_all(initialized, zt_env):
    env = dict(zt_env)
    script = (
        "import sys; from zerotrust_admin.config import load_config; from zerotrust_admin.sessions import open_session_store;"
        "from zerotrust_admin.sessions.base import make_session;"
        "s = open_session_store(load_config()); n = s.put_many(make_session(f'user{i % 200}@EXAMPLE.COM', 3600) for i in range(int(sys.argv[1]))); print(n)"
    )

    def fill(count: int) -> None:
        subprocess.run([sys.executable, "-c", script, str(count)], env={**os.environ, **env}, cwd=str(ROOT), check=True, capture_output=True)

    def remaining() -> int:
        out = subprocess.run([sys.executable, "-m", "zerotrust_admin", "sessions", "list", "--json"], env=env, cwd=str(ROOT), capture_output=True)
        assert out.returncode == 0, out.stderr.decode()
        return len(json.loads(out.stdout))

    rng = random.Random(14)
    fill(20000)
    args = ["revoke-sessions", "--all", "--yes", "--no-notify", "--json"]
    runtime = timed_run(env, args)
    killed = 0
    schedule = KillSchedule(rng, runtime, KILLS)
    for delay in schedule:
        fill(20000)
        was_killed, code = schedule.run(env, args, delay)
        killed += was_killed
        left = remaining()
        assert was_killed or (code == 0 and left == 0)
        result = audit_of(env).verify()
        assert result.ok or "torn" in (result.problem or ""), result.problem
        timed_run(env, args)  # the re-run finishes the job
        assert remaining() == 0
    print(f"RELIABILITY revoke-all kills={killed} runs={KILLS}")
    assert killed >= KILLS // 3
