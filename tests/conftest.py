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


def write_user_config(zt_env: dict, data: dict) -> Path:
    """``data`` as the test home's user config ($XDG_CONFIG_HOME/zerotrust/config.yaml, 0600)."""
    import yaml

    path = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


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


# --- PostgreSQL 15 (Debian's postgresql package), for secret rotation ----------
class PostgresServer:
    """A real PostgreSQL cluster made by initdb in a temp dir, listening on
    127.0.0.1:``port`` with SCRAM passwords; superuser ``postgres`` with
    password ``.password`` (given to initdb through a 0600 file, never argv).
    As root, initdb and postgres run as the ``postgres`` OS user."""

    BIN = Path(os.environ.get("ZT_PG_BIN", "/usr/lib/postgresql/15/bin"))

    def __init__(self):
        import pwd
        import secrets
        import socket
        import tempfile
        import time

        if not (self.BIN / "initdb").exists():
            backend_missing(f"PostgreSQL 15 ({self.BIN}/initdb; apt-get install postgresql)")
        # As root, the server runs as postgres, which must reach its directory: not under a 0700 /tmp.
        base = tempfile.gettempdir()
        if os.geteuid() == 0 and not os.stat(base).st_mode & 0o001:
            base = next((d for d in ("/var/tmp", "/dev/shm") if os.path.isdir(d) and os.stat(d).st_mode & 0o001), base)
        self.dir = Path(tempfile.mkdtemp(prefix="zt-pg-", dir=base))
        self.password = "zt-pg-" + secrets.token_hex(12)
        user = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            user = {"user": pw.pw_uid, "group": pw.pw_gid}
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        if user:
            os.chown(pwfile, user["user"], user["group"])
        subprocess.run([str(self.BIN / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "--auth=scram-sha-256",
                        f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8", "--locale=C"],
                       check=True, capture_output=True, timeout=120, **user)
        pwfile.unlink()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([str(self.BIN / "postgres"), "-D", str(self.dir / "data"), "-p", str(self.port),
                                      "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                      "-c", "max_connections=200"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **user)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.connect().close()
                break
            except Exception:  # noqa: BLE001
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("PostgreSQL did not start")
                time.sleep(0.1)

    def connect(self, user: str = "postgres", password: str | None = None, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=user, password=password or self.password,
                               dbname=dbname, connect_timeout=5, autocommit=True)

    @property
    def url(self) -> str:
        return f"postgresql://127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        import shutil

        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: smart shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL 15 for the test session (see PostgresServer)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        backend_missing("psycopg (pip install 'psycopg[binary]')")
    server = PostgresServer()
    yield server
    server.stop()


# Redis Cluster and Sentinel groups (tests/redis_topologies.py), shared by every module.
from tests.redis_topologies import (  # noqa: E402,F401
    private_redis_cluster,
    private_redis_sentinel,
    redis_cluster,
    redis_cluster_tls,
    redis_sentinel,
)
