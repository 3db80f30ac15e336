"""Shared helpers for the reliability campaign (docs/RELIABILITY.md)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from zerotrust_admin.audit import AuditLog
from zerotrust_admin.keys import KeySourceContext, open_source
from zerotrust_admin.vault import Vault

ROOT = Path(__file__).resolve().parents[2]


def start_cli(env: dict, *args: str, stdin=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zerotrust_admin", *args], env=env, cwd=str(ROOT),
                            stdin=stdin if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_and_kill(env: dict, args: list[str], delay: float, stdin_bytes: bytes | None) -> tuple[bool, int | None, float]:
    """Start the CLI, SIGKILL it after ``delay`` seconds.

    Returns (killed, exit code if it finished first, seconds it ran)."""
    started = time.monotonic()
    proc = start_cli(env, *args, stdin=subprocess.PIPE if stdin_bytes is not None else None)
    if stdin_bytes is not None:
        proc.stdin.write(stdin_bytes)
        proc.stdin.close()
        proc.stdin = None
    deadline = started + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            elapsed = time.monotonic() - started
            proc.communicate()
            return False, proc.returncode, elapsed
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    if proc.returncode == -signal.SIGKILL:
        return True, None, delay
    return False, proc.returncode, time.monotonic() - started


def timed_run(env: dict, args: list[str], stdin_bytes: bytes | None = None) -> float:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], env=env, cwd=str(ROOT), input=stdin_bytes or b"", capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return time.monotonic() - started


def open_vault(env: dict) -> Vault:
    home = Path(env["ZEROTRUST_HOME"])
    ctx = KeySourceContext(config={}, home=home, environ=env)
    return Vault.open(home / "vault.db", lambda kind, params: open_source(kind, ctx, params))


def audit_of(env: dict) -> AuditLog:
    return AuditLog(Path(env["ZEROTRUST_HOME"]) / "audit.log")


class KillSchedule:
    """Kill delays spread over the whole run, weighted to its last third where
    the transaction and the audit write happen.

    The delays follow how long the command takes on this machine *now*: a
    single calibration run is a poor estimate on a shared CI machine (a cold
    first start writes bytecode caches, load comes and goes), and an estimate
    that is too long lets most runs finish before their kill. Every run that
    completes before its kill therefore lowers the estimate to what that run
    really took.
    """

    def __init__(self, rng: random.Random, runtime: float, count: int) -> None:
        self.rng = rng
        self.runtime = runtime
        self.count = count
        self.killed = 0
        self.interrupted = 0  # kills between a write's audit record and its COMMIT (settle_after_kill)

    def __iter__(self):
        for i in range(self.count):
            fraction = self.rng.uniform(0.05, 0.66) if i % 3 == 0 else self.rng.uniform(0.66, 1.05)
            yield self.runtime * fraction

    def run(self, env: dict, args: list[str], delay: float, stdin_bytes: bytes | None = None) -> tuple[bool, int | None]:
        killed, code, elapsed = run_and_kill(env, args, delay, stdin_bytes)
        if killed:
            self.killed += 1
        else:
            self.runtime = min(self.runtime, elapsed)
        return killed, code


INTERRUPTED = "it was interrupted"


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], env=env, cwd=str(ROOT), input=b"", capture_output=True, timeout=120)


def settle_after_kill(env: dict, schedule: "KillSchedule | None" = None) -> bool:
    """After a kill, the CLI opens the vault (exit 0), or (killed between the
    write's audit record and its COMMIT) refuses with exit 5 "interrupted" until
    ``vault recover --interrupted --yes``; nothing else is acceptable. Returns
    True (and counts it) when the recovery was needed."""
    proc = _cli(env, "vault", "list", "--json")
    if proc.returncode == 0:
        return False
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 5 and INTERRUPTED in err and proc.stdout == b"", (proc.returncode, err)
    recovered = _cli(env, "vault", "recover", "--interrupted", "--yes")
    assert recovered.returncode == 0, recovered.stderr.decode()
    again = _cli(env, "vault", "list", "--json")
    assert again.returncode == 0, again.stderr.decode()
    if schedule is not None:
        schedule.interrupted += 1
    return True


def warm_runtime(env: dict, args: list[str], stdin_bytes: bytes | None = None, runs: int = 3) -> float:
    """The fastest of a few runs: the first start of a fresh clone is slow
    because it compiles bytecode, and later runs are the ones we kill."""
    return min(timed_run(env, args, stdin_bytes) for _ in range(runs))
