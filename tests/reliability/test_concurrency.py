"""Concurrency: 4 processes x 500 writes while a DEK rotation and `audit verify`
run against the same vault. All 2,000 writes must be readable afterwards,
"database is locked" must never reach a caller, and the audit chain must hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.reliability.helpers import ROOT, audit_of, open_vault

WRITERS = 4
WRITES = int(os.environ.get("ZT_CONCURRENCY_WRITES", "500"))

WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from zerotrust_admin.audit import Actor, AuditLog
    from zerotrust_admin.keys import KeySourceContext, open_source
    from zerotrust_admin.vault import Vault

    home, worker, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    ctx = KeySourceContext(config={}, home=home, environ={})
    actor = Actor(f"writer{worker}@EXAMPLE.COM", "127.0.0.1", "h")
    errors = 0
    # A fresh open per write, like separate CLI invocations.
    for i in range(count):
        with Vault.open(home / "vault.db", lambda k, p: open_source(k, ctx, p), audit=AuditLog(home / "audit.log"), actor=actor) as v:
            v.put(f"w{worker}/s{i:04d}", f"{worker}:{i}".encode())
    print("done")
    """
)


def test_parallel_writers_with_rotation_and_verify(initialized, zt_env, cli):
    env = dict(zt_env)
    home = Path(env["ZEROTRUST_HOME"])
    proc_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WORKER, str(home), str(w), str(WRITES)], env=proc_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in range(WRITERS)]
    rotations = verifies = 0
    while any(p.poll() is None for p in writers):
        rotated = cli("rotate-keys", "--dek", "--json")
        assert rotated.code == 0, rotated.err
        assert "locked" not in rotated.err
        rotations += 1
        verified = cli("audit", "verify", "--json")
        assert verified.code == 0, verified.text + verified.err
        verifies += 1
    for p in writers:
        out, err = p.communicate()
        assert p.returncode == 0, err.decode()[-2000:]
        assert b"locked" not in err
    assert rotations >= 1 and verifies >= 1
    with open_vault(env) as vault:
        for w in range(WRITERS):
            for i in range(WRITES):
                secret, _ = vault._read(f"w{w}/s{i:04d}", None)
                assert secret.reveal() == f"{w}:{i}".encode()
    result = audit_of(env).verify()
    assert result.ok, result.problem
    writes = sum(1 for r in audit_of(env).records() if r["action"] == "write" and r["success"])
    assert writes == WRITERS * WRITES
