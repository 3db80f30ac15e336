"""Secret rotation (issue 15), end to end through the real CLI.

- 100 Redis ACL users rotated by one `rotate-secrets` run (`--secret` x100: lock,
  100 x create/apply/test/finish with their vault writes and audit records), then
  the retire run after the grace. Target < 10 s for the 100 rotations.
- Zero failed logins: a client that reconnects every 10 ms (a new connection and
  AUTH each time, with the credential it reads from the vault at that moment,
  through the library on its own connection) while `rotate-secrets` rotates its
  Redis user and, after the grace, retires the previous password; the same for a
  PostgreSQL role with `strategy: alternating`. Target: 0 failed logins.

Peers: a redis-server and a PostgreSQL 15 cluster (tests/conftest.PostgresServer)
started here on loopback. `--quick`: 10 users, shorter client runs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import yaml

from benchmarks.benchlib import Home, row

ROOT = Path(__file__).resolve().parent.parent


def _redis_server():
    from tests.servers import RedisServer

    return RedisServer()


def _write_config(home: Home, entries: list) -> None:
    path = home.dir / "config.yaml"
    path.write_text(yaml.safe_dump({"secret_rotation": entries}))
    os.chmod(path, 0o600)
    home.env["ZEROTRUST_CONFIG"] = str(path)


def _import(home: Home, values: dict) -> None:
    path = home.dir / "values.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, json.dumps(values).encode())
    os.close(fd)
    home.cli("vault", "import", str(path))
    path.unlink()


def bench_many_users(n: int) -> list[dict]:
    server = _redis_server()
    try:
        with Home() as home:
            home.cli("init")
            c = server.client()
            admin = os.urandom(16).hex()
            c.execute_command("ACL", "SETUSER", "benchadmin", "on", ">" + admin, "~*", "&*", "+@all")
            values = {"redis/admin": admin}
            entries = []
            for i in range(n):
                user, pw = f"app{i:03d}", os.urandom(12).hex()
                c.execute_command("ACL", "SETUSER", user, "on", ">" + pw, f"~{user}:*", "+@all")
                values[f"redis/{user}"] = pw
                entries.append({"secret": f"redis/{user}", "kind": "redis", "every": "30d", "grace": "2s",
                                "target": {"url": server.url, "user": user, "admin_user": "benchadmin", "admin_secret": "redis/admin"}})
            _import(home, values)
            _write_config(home, entries)
            args = [a for e in entries for a in ("--secret", e["secret"])]
            t0 = time.perf_counter()
            out = home.cli("rotate-secrets", "--json", *args)
            rotate_s = time.perf_counter() - t0
            done = sum(1 for r in json.loads(out.stdout)["results"] if r["result"] == "done")
            time.sleep(2.2)
            t0 = time.perf_counter()
            out = home.cli("rotate-secrets", "--json")
            retire_s = time.perf_counter() - t0
            retired = sum(1 for r in json.loads(out.stdout)["results"] if r["result"] == "done" and r["step"] == "retired")
            one_password = sum(1 for i in range(n) if len(c.execute_command("ACL", "GETUSER", f"app{i:03d}")[b"passwords"]) == 1)
            c.close()
    finally:
        server.stop()
    return [
        row(f"{n} Redis ACL users, one rotate-secrets run", "wall time", rotate_s, "s", target="< 10 s", met=rotate_s < 10 and done == n,
            note=f"{done}/{n} done; {rotate_s / n * 1000:.0f} ms per user (create, apply, AUTH test, finish: 5 fsynced vault writes plus the audit records of each)"),
        row(f"{n} Redis ACL users, retire run after the grace", "wall time", retire_s, "s",
            note=f"{retired}/{n} retired; {one_password}/{n} users left with exactly one password"),
    ]


class _Client(threading.Thread):
    """Reconnects every 10 ms with the credential the vault holds at that moment."""

    def __init__(self, home: Home, name: str, login):
        super().__init__(daemon=True)
        self.home, self.name, self.login = home, name, login
        self.stop = threading.Event()
        self.ok = self.failed = 0

    def run(self) -> None:
        from zerotrust_admin.keys import KeySourceContext, open_source
        from zerotrust_admin.vault import Vault

        ctx = KeySourceContext(config={}, home=self.home.home, environ={})
        vault = Vault.open(self.home.home / "vault.db", lambda kind, params: open_source(kind, ctx, params))
        try:
            while not self.stop.is_set():
                value, _ = vault.get(self.name)
                try:
                    self.login(value.reveal())
                    self.ok += 1
                except Exception:  # noqa: BLE001 - a failed login is what is counted
                    self.failed += 1
                time.sleep(0.01)
        finally:
            vault.close()


def _rotate_under_load(home: Home, name: str, login, grace: float, settle: float) -> tuple[int, int, float]:
    client = _Client(home, name, login)
    client.start()
    time.sleep(settle)
    t0 = time.perf_counter()
    home.cli("rotate-secrets", "--secret", name)
    rotate_s = time.perf_counter() - t0
    time.sleep(grace + 0.2)
    home.cli("rotate-secrets")  # the retire run
    time.sleep(settle)
    client.stop.set()
    client.join(10)
    return client.ok, client.failed, rotate_s


def bench_redis_logins(settle: float) -> list[dict]:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    server = _redis_server()
    try:
        with Home() as home:
            home.cli("init")
            c = server.client()
            admin, pw = os.urandom(16).hex(), os.urandom(12).hex()
            c.execute_command("ACL", "SETUSER", "benchadmin", "on", ">" + admin, "~*", "&*", "+@all")
            c.execute_command("ACL", "SETUSER", "app", "on", ">" + pw, "~*", "+@all")
            c.close()
            _import(home, {"redis/admin": admin, "redis/app": pw})
            _write_config(home, [{"secret": "redis/app", "kind": "redis", "every": "30d", "grace": "2s",
                                  "target": {"url": server.url, "user": "app", "admin_user": "benchadmin", "admin_secret": "redis/admin"}}])

            def login(value: bytes) -> None:
                r = redis.Redis(host="127.0.0.1", port=server.port, username="app", password=value.decode(), retry=Retry(NoBackoff(), 0))
                try:
                    r.ping()
                finally:
                    r.close()

            ok, failed, rotate_s = _rotate_under_load(home, "redis/app", login, 2.0, settle)
    finally:
        server.stop()
    return [row("Redis rotation + retire under a client reconnecting every 10 ms", "failed logins", failed, "logins", target="0",
                met=failed == 0, note=f"{ok} successful logins; the rotation run took {rotate_s:.2f} s")]


def bench_postgres_logins(settle: float) -> list[dict]:
    import psycopg

    from tests.conftest import PostgresServer

    server = PostgresServer()
    try:
        with Home() as home:
            home.cli("init")
            pw = os.urandom(12).hex()
            conn = server.connect()
            conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{pw}'")
            conn.close()
            _import(home, {"pg/admin": server.password, "pg/app": json.dumps({"username": "app", "password": pw})})
            _write_config(home, [{"secret": "pg/app", "kind": "postgres", "every": "30d", "grace": "2s",
                                  "target": {"host": "127.0.0.1", "port": server.port, "user": "app", "admin_secret": "pg/admin",
                                             "strategy": "alternating", "sslmode": "disable"}}])

            def login(value: bytes) -> None:
                cred = json.loads(value)
                psycopg.connect(host="127.0.0.1", port=server.port, user=cred["username"], password=cred["password"],
                                dbname="postgres", sslmode="disable", connect_timeout=5).close()

            ok, failed, rotate_s = _rotate_under_load(home, "pg/app", login, 2.0, settle)
    finally:
        server.stop()
    return [row("PostgreSQL (alternating) rotation + retire under a client reconnecting every 10 ms", "failed logins", failed, "logins",
                target="0", met=failed == 0, note=f"{ok} successful logins; the rotation run took {rotate_s:.2f} s")]


def run(quick: bool = False) -> list[dict]:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is missing (scripts/test.sh installs it)")
    rows = bench_many_users(10 if quick else 100)
    rows += bench_redis_logins(0.5 if quick else 2.0)
    rows += bench_postgres_logins(0.5 if quick else 2.0)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for r in run(quick="--quick" in sys.argv):
        print(r)
