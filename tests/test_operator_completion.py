"""Issue 14 polish: shell completion completes secret names for vault
get/put/delete/history/undelete: names only (never values), no audit record per
completion, only what the principal may list, silent (and prompt-free) on a
locked vault, and quick."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.operator_pty import run_in_pty


def _complete(zt_env, line: str, env: dict | None = None) -> tuple[int, list[str], str, float]:
    words = line.split(" ")
    full = {**zt_env, **(env or {}), "_ZEROTRUST_ADMIN_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "zerotrust_admin"], env=full, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=60, start_new_session=True)
    took = time.perf_counter() - start
    return proc.returncode, proc.stdout.decode().split(), proc.stderr.decode(), took


def _audit_lines(home: Path) -> int:
    return len((home / "audit.log").read_bytes().splitlines())


def _seed(cli):
    for name, value in (("db/password", b"pw-value-1"), ("db/user", b"user-value-2"), ("app/key", b"app-value-3")):
        assert cli("vault", "put", name, input=value).code == 0


def test_secret_names_complete_without_values_or_audit_records(cli, initialized, zt_env):
    _seed(cli)
    assert cli("vault", "delete", "db/user", "--yes").code == 0
    before = _audit_lines(initialized)
    for command in ("get", "put", "delete", "history", "undelete"):
        code, names, err, took = _complete(zt_env, f"zerotrust-admin vault {command} db/")
        assert code == 0 and err == "", err
        assert names == ["db/password"], (command, names)  # a deleted secret is not offered
        assert took < 5, took
    code, names, _err, _took = _complete(zt_env, "zerotrust-admin vault get ")
    assert names == ["app/key", "db/password"]
    assert _audit_lines(initialized) == before  # no audit record per completion
    out = subprocess.run([sys.executable, "-m", "zerotrust_admin", "vault", "get", "db/password"], env=zt_env, capture_output=True).stdout
    assert out == b"pw-value-1"  # the secret is there; completion only never shows it
    for value in ("pw-value-1", "app-value-3"):
        assert value not in " ".join(names)


def test_completion_offers_only_names_the_principal_may_list(cli, initialized, zt_env, tmp_path):
    _seed(cli)
    cfg = tmp_path / "policy.yaml"
    cfg.write_text("access:\n  policies:\n    - {principals: ['alice@EXAMPLE.COM'], secrets: ['app/*'], actions: [read, list], effect: allow}\n")
    os.chmod(cfg, 0o600)
    code, names, err, _ = _complete(zt_env, "zerotrust-admin vault get ", {"ZEROTRUST_CONFIG": str(cfg)})
    assert code == 0 and names == ["app/key"], (names, err)
    code, names, err, _ = _complete(zt_env, f"zerotrust-admin --config {cfg} vault get ")
    assert code == 0 and names == ["app/key"], (names, err)


def test_a_locked_vault_completes_nothing_silently_without_prompting(cli, zt_env):
    env = {**zt_env, "ZEROTRUST_PASSPHRASE": "correct horse battery staple"}
    assert cli("init", "--passphrase", env=env).code == 0
    assert cli("vault", "put", "db/password", input=b"v", env=env).code == 0
    code, names, err, _ = _complete(zt_env, "zerotrust-admin vault get db/")  # no passphrase available
    assert (code, names, err) == (0, [], "")
    code, names, _err, _ = _complete(zt_env, "zerotrust-admin vault get db/", env)
    assert names == ["db/password"]
    # on a real terminal: no passphrase prompt either, and nothing printed
    full = {**zt_env, "_ZEROTRUST_ADMIN_COMPLETE": "complete_bash", "COMP_WORDS": "zerotrust-admin vault get db/", "COMP_CWORD": "3"}
    res = run_in_pty([], full, stdout_pipe=True, timeout=30)
    assert res.code == 0 and res.stdout.strip() == b"" and res.screen.strip() == "", res.screen
