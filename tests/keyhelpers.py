"""Helpers shared by the key-hierarchy tests (rotation, HSM, backup): open the
vault of a test home in-process, and run a rotation in a child process that
SIGKILLs itself at a chosen step."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

ZT = [sys.executable, "-m", "zerotrust_admin"]


def open_vault(env: dict, *, audited: bool = True):
    """(vault, config, key context) for the home in ``env``; caller closes the vault.
    ``audited=False`` skips audit records (bulk checks: each record is fsynced)."""
    from zerotrust_admin.audit.log import Actor, AuditLog
    from zerotrust_admin.config import load_config
    from zerotrust_admin.keys import KeySourceContext, open_source
    from zerotrust_admin.vault import Vault

    config = load_config(environ=env)
    kctx = KeySourceContext(config=config.data, home=config.home, environ=dict(env))
    vault = Vault.open(config.vault_path, lambda kind, params: open_source(kind, kctx, params),
                       audit=AuditLog(config.audit_path) if audited else None, actor=Actor("tester@EXAMPLE.COM", "127.0.0.1"))
    return vault, config, kctx


def _needs_child(env: dict) -> bool:
    # A PKCS#11 library reads its token list once per process (and SOFTHSM2_CONF
    # from the real environment), so HSM-backed vaults are used from a child.
    return "SOFTHSM2_CONF" in env


def _child(env: dict, call: str, payload) -> object:
    import base64
    import os

    script = (
        "import base64, json, os, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests import keyhelpers as k\n"
        "payload = json.loads(sys.stdin.read())\n"
        f"print(json.dumps(k._child_{call}(dict(os.environ), payload)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps(payload), env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _child_fill(env: dict, payload: dict) -> dict:
    import base64

    values = fill(env, payload["count"], versions=payload["versions"], prefix=payload["prefix"])
    return {k: [base64.b64encode(v).decode() for v in vs] for k, vs in values.items()}


def _child_check(env: dict, payload: dict) -> bool:
    import base64

    check_all(env, {k: [base64.b64decode(v) for v in vs] for k, vs in payload.items()})
    return True


def fill(env: dict, count: int, *, versions: int = 1, prefix: str = "app/s") -> dict[str, list[bytes]]:
    """Write ``count`` secrets (binary-ish values) with ``versions`` versions each; return the values."""
    import base64
    import os

    if _needs_child(env) and "SOFTHSM2_CONF" not in os.environ:
        got = _child(env, "fill", {"count": count, "versions": versions, "prefix": prefix})
        return {k: [base64.b64decode(v) for v in vs] for k, vs in got.items()}

    vault, _, _ = open_vault(env, audited=False)
    expected: dict[str, list[bytes]] = {}
    try:
        items = []
        for v in range(versions):
            for i in range(count):
                value = f"{prefix}{i}-v{v}-".encode() + os.urandom(8) + b"\x00\xff"
                items.append((f"{prefix}{i}", value))
                expected.setdefault(f"{prefix}{i}", []).append(value)
            vault.import_many(items)
            items = []
    finally:
        vault.close()
    return expected


def check_all(env: dict, expected: dict[str, list[bytes]]) -> None:
    """Every version of every secret reads back byte-exact."""
    import base64
    import os

    if _needs_child(env) and "SOFTHSM2_CONF" not in os.environ:
        _child(env, "check", {k: [base64.b64encode(v).decode() for v in vs] for k, vs in expected.items()})
        return
    vault, _, _ = open_vault(env, audited=False)
    try:
        for name, values in expected.items():
            for number, value in enumerate(values, start=1):
                secret, _ = vault.get(name, number)
                with secret:
                    assert secret.reveal() == value, (name, number)
    finally:
        vault.close()


def db_rows(home: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(home / "vault.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def meta(home: Path) -> dict:
    return dict(db_rows(home, "SELECT key, value FROM meta"))


CRASH_SCRIPT = r"""
import json, os, signal, sys
sys.path.insert(0, {root!r})
from tests.keyhelpers import open_vault
from zerotrust_admin.rotation.run import rotate_keys, migrate_master
kill_at, kill_nth, mode, arg = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
seen = {{}}
def checkpoint(name):
    seen[name] = seen.get(name, 0) + 1
    if name == kill_at and seen[name] == kill_nth:
        os.kill(os.getpid(), signal.SIGKILL)
vault, config, kctx = open_vault(dict(os.environ))
if mode == "rotate":
    rotate_keys(vault, config, kctx, force=set(arg.split(",")), checkpoint=checkpoint, batch=int(os.environ.get("ZT_TEST_BATCH", "50")))
else:
    migrate_master(vault, config, kctx, to=arg, checkpoint=checkpoint)
vault.close()
print(json.dumps(seen))
"""


def run_with_crash(env: dict, kill_at: str, nth: int, mode: str, arg: str, *, batch: int = 50) -> subprocess.CompletedProcess:
    """Run a rotation (mode "rotate", arg "master,dek") or migration (mode "migrate",
    arg target) that SIGKILLs itself at the ``nth`` time it reaches ``kill_at``."""
    script = CRASH_SCRIPT.format(root=str(ROOT))
    return subprocess.run([sys.executable, "-c", script, kill_at, str(nth), mode, arg], env={**env, "ZT_TEST_BATCH": str(batch)},
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))


def cli_json(cli, *args, env=None) -> dict:
    result = cli(*args, "--json", env=env)
    assert result.code == 0, result.err
    return json.loads(result.out)
