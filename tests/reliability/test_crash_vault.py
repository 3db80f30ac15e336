"""Crash injection: SIGKILL `vault put` and `vault import` at many points.

After each kill: the vault opens (or, killed between a write's audit record
and its COMMIT, is exit 5 "interrupted" until `vault recover --interrupted`,
and then holds the previous value), every acknowledged write is readable,
nothing half-written is visible, the audit chain verifies (a torn last line is
detected and then recovered by the next writer), and re-running completes.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.reliability.helpers import KillSchedule, audit_of, open_vault, settle_after_kill, timed_run, warm_runtime

PUT_KILLS = int(os.environ.get("ZT_CRASH_PUT_KILLS", "80"))
IMPORT_KILLS = int(os.environ.get("ZT_CRASH_IMPORT_KILLS", "30"))


def _check_audit(env) -> None:
    result = audit_of(env).verify()
    if not result.ok:
        # The only acceptable damage after SIGKILL is a torn final line, and it must be reported.
        assert "torn" in (result.problem or ""), result.problem


def test_sigkill_vault_put(initialized, zt_env):
    env = dict(zt_env)
    rng = random.Random(20261128)
    runtime = warm_runtime(env, ["vault", "put", "warmup"], b"w")
    acknowledged: dict[str, bytes] = {"warmup": b"w"}
    attempted: dict[str, set[bytes]] = {}
    killed = 0
    schedule = KillSchedule(rng, runtime, PUT_KILLS)
    for i, delay in enumerate(schedule):
        name = f"crash/put-{i % 7}"
        value = f"value-{i}-{rng.random()}".encode()
        attempted.setdefault(name, set()).add(value)
        was_killed, code = schedule.run(env, ["vault", "put", name], delay, value)
        killed += was_killed
        if not was_killed:
            assert code == 0
            acknowledged[name] = value
        interrupted = settle_after_kill(env, schedule)
        assert not interrupted or was_killed
        with open_vault(env) as vault:
            if interrupted:  # the interrupted put is not in the vault: the previous value (or none)
                head = vault._select_head(vault._conn, name)
                assert (head is None and name not in acknowledged) or vault._read(name, None)[0].reveal() == acknowledged.get(name)
            for ack_name, ack_value in acknowledged.items():
                secret, info = vault._read(ack_name, None)
                got = secret.reveal()
                # The current value is the acknowledged one or a later attempt, never garbage.
                assert got == ack_value or got in attempted.get(ack_name, set())
            for listed in vault._query_list("", False):
                secret, _ = vault._read(listed.name, None)
                assert secret.reveal() in attempted.get(listed.name, set()) | {acknowledged.get(listed.name)}
        _check_audit(env)
        if was_killed:
            # Re-running the interrupted command completes it.
            timed_run(env, ["vault", "put", name], value)
            acknowledged[name] = value
            assert audit_of(env).verify().ok
    print(f"RELIABILITY vault-put kills={killed} interrupted={schedule.interrupted} runs={PUT_KILLS}")
    assert killed >= PUT_KILLS // 2, f"only {killed} of {PUT_KILLS} runs were actually killed mid-flight"


def test_sigkill_vault_import(initialized, zt_env, tmp_path):
    env = dict(zt_env)
    rng = random.Random(7)
    size = 1500  # one transaction either way; 30 batches of 3,000 made this the slowest test in CI

    def batch(attempt: int):
        path = tmp_path / f"batch-{attempt}.env"
        path.write_text("".join(f'imp{attempt}/s{i:05d}="v{attempt}-{i}"\n' for i in range(size)))
        return path

    runtime = warm_runtime(env, ["vault", "import", str(batch(999))])
    killed = 0
    schedule = KillSchedule(rng, runtime, IMPORT_KILLS)
    for attempt, delay in enumerate(schedule):
        path = batch(attempt)
        was_killed, code = schedule.run(env, ["vault", "import", str(path)], delay)
        killed += was_killed
        interrupted = settle_after_kill(env, schedule)
        with open_vault(env) as vault:
            names = [s.name for s in vault._query_list(f"imp{attempt}/", False)]
        assert not interrupted or not names  # an interrupted import left nothing
        # One transaction: all or nothing, never a partial import.
        assert len(names) in (0, size), len(names)
        _check_audit(env)
        timed_run(env, ["vault", "import", str(path)])  # the re-run completes the job (or changes nothing)
        with open_vault(env) as vault:
            assert len(vault._query_list(f"imp{attempt}/", False)) == size
            secret, _ = vault._read(f"imp{attempt}/s{size - 1:05d}", None)
            assert secret.reveal() == f"v{attempt}-{size - 1}".encode()
    print(f"RELIABILITY vault-import kills={killed} interrupted={schedule.interrupted} runs={IMPORT_KILLS}")
    assert audit_of(env).verify().ok
    assert killed >= IMPORT_KILLS // 2
