"""Shared fixtures: an isolated ZEROTRUST_HOME per test, and a CLI runner that
runs the real entry point in a subprocess (the way operators and cron do)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def backend_missing(what: str) -> None:
    """A test whose real backend is missing fails under CI=true; it skips only on a dev box."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"backend missing under CI: {what}")
    pytest.skip(f"backend missing: {what}")


@dataclass
class Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")


@pytest.fixture
def zt_env(tmp_path):
    """Environment for a CLI run with its own home and config dirs; nothing of the host leaks in."""
    home = tmp_path / "home"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "userhome"),
        "ZEROTRUST_HOME": str(home),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "ZEROTRUST_PRINCIPAL": "alice@EXAMPLE.COM",
        "KRB5CCNAME": f"FILE:{tmp_path / 'no-ccache'}",
        "LANG": "C.UTF-8",
    }
    return env


@pytest.fixture
def cli(zt_env):
    """cli("vault", "get", "x", input=b"...", env={...}) -> Result."""

    def run(*args: str, input: bytes | None = None, env: dict | None = None, timeout: float = 60) -> Result:
        full_env = dict(zt_env)
        if env:
            full_env.update(env)
        proc = subprocess.run(
            [sys.executable, "-m", "zerotrust_admin", *args],
            input=input if input is not None else b"",
            capture_output=True,
            env=full_env,
            timeout=timeout,
            cwd=str(ROOT),
            start_new_session=True,  # no controlling terminal: a prompt on /dev/tty must not wait for the developer's keyboard
        )
        return Result(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))

    return run


@pytest.fixture
def initialized(cli, zt_env):
    """A home with a fresh vault (key-file master key)."""
    result = cli("init")
    assert result.code == 0, result.err
    return Path(zt_env["ZEROTRUST_HOME"])
