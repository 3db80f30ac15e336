"""Threat-model rows R1-R4 (docs/threat-model.md): secret rotation.

The attacks run against a real installation through the CLI (a subprocess):
a principal allowed only to rotate, an edited rotation-state record (sqlite3,
as attacker b would), an admin credential written into the config, and a
rotation whose test fails against a real redis-server.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import yaml

from tests.servers import redis_server, redis_server_process  # noqa: F401  (fixtures)

CRON = "rotation-cron@EXAMPLE.COM"
ALICE = "alice@EXAMPLE.COM"


def write_config(tmp_path: Path, data: dict) -> dict:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return {"ZEROTRUST_CONFIG": str(path)}


def entry(name="api/key", **target) -> dict:
    return {"secret": name, "kind": "random", "every": "30d", "grace": "1h", "target": {"length": 32, **target}}


def test_r1_rotate_alone_reveals_no_credential(cli, initialized, tmp_path):
    data = {"secret_rotation": [entry()], "access": {"policies": [
        {"principals": [ALICE], "secrets": ["*"], "actions": ["read", "write", "list"], "effect": "allow"},
        {"principals": [CRON], "secrets": ["api/*"], "actions": ["rotate", "list"], "effect": "allow"}]}}
    env = write_config(tmp_path, data)
    assert cli("vault", "put", "api/key", input=b"a" * 32, env=env).code == 0
    as_cron = {**env, "ZEROTRUST_PRINCIPAL": CRON}
    run = cli("rotate-secrets", "--secret", "api/key", "--json", env=as_cron)
    assert run.code == 0, run.err
    current = cli("vault", "get", "api/key", env=env).out
    assert len(current) == 32 and current != b"a" * 32
    # The rotating principal cannot read what it rotated, nor the pending/state record.
    assert cli("vault", "get", "api/key", env=as_cron).code == 4
    for who in (as_cron, env):
        refused = cli("vault", "get", "_zerotrust/rotation/api/key", env=who)
        assert refused.code == 4 and "reserved" in refused.err
    text = run.text + run.err + (initialized / "audit.log").read_text()
    assert current.decode() not in text and "a" * 32 not in text


def test_r2_edited_rotation_state_is_exit_5(cli, initialized, tmp_path):
    env = write_config(tmp_path, {"secret_rotation": [entry()]})
    assert cli("vault", "put", "api/key", input=b"a" * 32, env=env).code == 0
    assert cli("rotate-secrets", "--secret", "api/key", env=env).code == 0
    status = json.loads(cli("secrets", "status", "--json", env=env).out)["secrets"][0]
    assert status["step"] == "finished"
    db = sqlite3.connect(initialized / "vault.db")
    # Attacker b: say the grace is over (retire the previous credential now), or rewind the step.
    row = db.execute("SELECT version, metadata FROM versions WHERE name = ? ORDER BY version DESC LIMIT 1",
                     ("_zerotrust/rotation/api/key",)).fetchone()
    meta = json.loads(row[1])
    for forged in ({**meta, "retire_after": "2000-01-01T00:00:00.000000Z"}, {**meta, "step": "tested"}):
        db.execute("UPDATE versions SET metadata = ? WHERE name = ? AND version = ?",
                   (json.dumps(forged, sort_keys=True, separators=(",", ":")), "_zerotrust/rotation/api/key", row[0]))
        db.commit()
        for args in (("secrets", "status"), ("rotate-secrets",), ("rotate-secrets", "--dry-run")):
            result = cli(*args, env=env)
            assert result.code == 5, (args, result.err)
    db.close()


def test_r3_admin_credential_never_inline(cli, initialized, tmp_path):
    for target in ({"url": "redis://127.0.0.1:6379/0", "user": "app", "admin_secret": "redis/admin", "admin_password": "Hunter2-secret"},
                   {"url": "redis://:Hunter2-secret@127.0.0.1:6379/0", "user": "app", "admin_secret": "redis/admin"},
                   {"url": "redis://127.0.0.1:6379/0", "user": "app", "admin_secret": "redis/admin", "token": "Hunter2-secret"}):
        env = write_config(tmp_path, {"secret_rotation": [{"secret": "redis/app", "kind": "redis", "every": "30d", "target": target}]})
        for args in (("rotate-secrets",), ("secrets", "status"), ("config", "check")):
            result = cli(*args, env=env)
            assert result.code in (1, 2) and "secret_rotation[0].target" in result.err + result.text, (args, result.err)
            assert "Hunter2-secret" not in result.err + result.text


def test_r4_a_failed_rotation_leaves_no_pending_credential(cli, initialized, tmp_path, redis_server_process):  # noqa: F811
    """The pending password is valid in Redis from apply; when the test fails it is
    removed again (rollback), and the vault's current one is untouched."""
    admin_pw, old = os.urandom(12).hex(), os.urandom(12).hex()
    c = redis_server_process.client()
    c.execute_command("ACL", "SETUSER", "tmadmin", "on", ">" + admin_pw, "~*", "&*", "+@all")
    # The user is off: a password can be added, but no login works, so the test step fails.
    c.execute_command("ACL", "SETUSER", "tmapp", "reset", "off", ">" + old, "~*", "+@all")
    env = write_config(tmp_path, {"secret_rotation": [{"secret": "redis/tm", "kind": "redis", "every": "30d", "grace": "1h",
                                                       "target": {"url": redis_server_process.url, "user": "tmapp",
                                                                  "admin_user": "tmadmin", "admin_secret": "redis/tmadmin"}}]})
    assert cli("vault", "put", "redis/tmadmin", input=admin_pw.encode(), env=env).code == 0
    assert cli("vault", "put", "redis/tm", input=old.encode(), env=env).code == 0
    before = c.execute_command("ACL", "GETUSER", "tmapp")
    failed = cli("rotate-secrets", "--secret", "redis/tm", "--json", env=env)
    assert failed.code == 1 and json.loads(failed.out)["results"][0]["error"] == "RotationTestFailed"
    after = c.execute_command("ACL", "GETUSER", "tmapp")
    assert after[b"passwords"] == before[b"passwords"] and len(after[b"passwords"]) == 1, "the pending password was removed again"
    assert cli("vault", "get", "redis/tm", env=env).out == old.encode()
    status = json.loads(cli("secrets", "status", "--json", env=env).out)["secrets"][0]
    assert status["step"] == "rolled_back" and status["last_result"] == "failed:RotationTestFailed at test"
    c.execute_command("ACL", "DELUSER", "tmapp", "tmadmin")
    c.close()


def test_r1_a_proxy_in_the_environment_never_sees_the_handed_over_value(cli, initialized, tmp_path):
    """The random kind hands the new value to a plain-http loopback webhook: a
    principal allowed only to `rotate` who sets http_proxy to its own listener
    receives nothing; the configured receiver gets the value."""
    import http.server
    import threading

    got: dict[str, list[bytes]] = {"receiver": [], "proxy": []}

    def server(key):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                got[key].append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv

    receiver, proxy = server("receiver"), server("proxy")
    try:
        data = {"secret_rotation": [entry(webhook_url=f"http://127.0.0.1:{receiver.server_port}/hook", webhook_secret="hook/key")],
                "access": {"policies": [
                    {"principals": [ALICE], "secrets": ["*"], "actions": ["read", "write", "list"], "effect": "allow"},
                    {"principals": [CRON], "secrets": ["api/*"], "actions": ["rotate", "list"], "effect": "allow"}]}}
        env = write_config(tmp_path, data)
        assert cli("vault", "put", "hook/key", input=b"k" * 32, env=env).code == 0
        assert cli("vault", "put", "api/key", input=b"a" * 32, env=env).code == 0
        as_cron = {**env, "ZEROTRUST_PRINCIPAL": CRON, "http_proxy": f"http://127.0.0.1:{proxy.server_port}",
                   "HTTP_PROXY": f"http://127.0.0.1:{proxy.server_port}", "no_proxy": "", "NO_PROXY": ""}
        run = cli("rotate-secrets", "--secret", "api/key", env=as_cron)
        assert run.code == 0, run.err
        current = cli("vault", "get", "api/key", env=env).out
        assert got["proxy"] == [] and any(current in body for body in got["receiver"]), got
    finally:
        receiver.shutdown()
        proxy.shutdown()


def test_r5_the_vault_value_never_chooses_the_postgres_role(cli, initialized, tmp_path, postgres_server):
    """A writer of the managed secret stores another role's name in it: the
    rotation refuses (exit 2) and that role's password is untouched."""
    pg = postgres_server
    c = pg.connect()
    c.execute("CREATE ROLE app_r5 LOGIN PASSWORD 'initial-app'")
    c.execute("CREATE ROLE billing_r5 LOGIN PASSWORD 'billing-secret'")
    c.close()
    try:
        target = {"host": "127.0.0.1", "port": pg.port, "user": "app_r5", "admin_secret": "admin/pg", "admin_user": "postgres",
                  "strategy": "alternating", "sslmode": "disable"}
        env = write_config(tmp_path, {"secret_rotation": [{"secret": "pg/app", "kind": "postgres", "every": "30d", "grace": "0s", "target": target}]})
        assert cli("vault", "put", "admin/pg", input=pg.password.encode(), env=env).code == 0
        assert cli("vault", "put", "pg/app", input=json.dumps({"username": "billing_r5", "password": "x"}).encode(), env=env).code == 0
        run = cli("rotate-secrets", "--secret", "pg/app", env=env)
        assert run.code != 0 and "billing_r5" in run.err and "does not manage" in run.err, run.err
        pg.connect("billing_r5", "billing-secret").close()  # still logs in with its own password
    finally:
        c = pg.connect()
        for role in ("app_r5_clone", "app_r5", "billing_r5"):
            c.execute(f'DROP ROLE IF EXISTS "{role}"')
        c.close()
