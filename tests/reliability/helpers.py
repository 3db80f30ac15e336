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


def run_and_kill(env: dict, args: list[str], delay: float, stdin_bytes: bytes | None = None) -> tuple[bool, int | None]:
    """Start the CLI, SIGKILL it after ``delay`` seconds. Returns (killed, exit code if it finished first)."""
    proc = start_cli(env, *args, stdin=subprocess.PIPE if stdin_bytes is not None else None)
    if stdin_bytes is not None:
        proc.stdin.write(stdin_bytes)
        proc.stdin.close()
        proc.stdin = None
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.communicate()
            return False, proc.returncode
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return proc.returncode == -signal.SIGKILL, proc.returncode if proc.returncode != -signal.SIGKILL else None


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


def kill_delays(rng: random.Random, runtime: float, count: int) -> list[float]:
    """Spread kills over the whole run, weighted to its last third where the
    transaction and the audit write happen."""
    return [runtime * (rng.uniform(0.05, 0.66) if i % 3 == 0 else rng.uniform(0.66, 1.05)) for i in range(count)]
