"""Files and permissions: 0600/0700 under any umask; refuse files others can
write; never follow a symlink planted in place of the vault, key or audit file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.helpers import ROOT


def _run_with_umask(env: dict, umask: str, *args: str, input: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", f'umask {umask}; exec "$0" -m zerotrust_admin "$@"', sys.executable, *args],
                          input=input, capture_output=True, env=env, cwd=str(ROOT))


@pytest.mark.parametrize("umask", ["000", "077", "022"])
def test_everything_created_is_private(zt_env, umask):
    env = dict(zt_env)
    assert _run_with_umask(env, umask, "init").returncode == 0
    assert _run_with_umask(env, umask, "vault", "put", "a/b", input=b"v").returncode == 0
    out = Path(env["ZEROTRUST_HOME"]).parent / "out.bin"
    assert _run_with_umask(env, umask, "vault", "get", "a/b", "--output-file", str(out)).returncode == 0
    created = [Path(env["ZEROTRUST_HOME"]), Path(env["XDG_CONFIG_HOME"]) / "zerotrust", out]
    for base in created[:2]:
        created.extend(base.rglob("*"))
    for path in created:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            assert mode == 0o700, (path, oct(mode))
        else:
            assert mode == 0o600, (path, oct(mode))


@pytest.mark.parametrize("victim,mode", [("vault.db", 0o666), ("vault.db", 0o620), ("master.key", 0o644), ("master.key", 0o640)])
def test_refuses_files_others_can_touch(initialized, cli, victim, mode):
    path = initialized / victim
    os.chmod(path, mode)
    result = cli("vault", "list")
    assert result.code == 2, result.err
    assert str(path) in result.err and "chmod 600" in result.err


@pytest.mark.parametrize("victim", ["vault.db", "master.key", "audit.log", "audit.key"])
def test_never_follows_a_planted_symlink(initialized, cli, tmp_path, victim):
    path = initialized / victim
    real = tmp_path / f"attacker-{victim}"
    real.write_bytes(path.read_bytes())
    os.chmod(real, 0o600)
    before = real.read_bytes()
    path.unlink()
    path.symlink_to(real)
    result = cli("vault", "put", "x/y", input=b"value")
    assert result.code != 0
    assert "Traceback" not in result.err
    assert result.err.count("error:") == 1
    assert real.read_bytes() == before, "the tool wrote through a planted symlink"
