"""sessions.lock.distributed_lock with two real processes sharing one real Redis
(and the fcntl fallback without Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import redis_clean, redis_server, redis_server_process  # noqa: F401
from zerotrust_admin.config import load_config
from zerotrust_admin.errors import BusyError
from zerotrust_admin.sessions.lock import distributed_lock

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import os, sys, time
from zerotrust_admin.config import load_config
from zerotrust_admin.errors import BusyError
from zerotrust_admin.sessions.lock import distributed_lock
ttl, hold, wait, log, crash = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5] == "crash"
try:
    with distributed_lock(load_config(), "rotate-keys", ttl=ttl, wait=wait) as lock:
        with open(log, "a") as f:
            f.write(f"start {os.getpid()} {time.time()}\n")
        print("acquired", flush=True)
        if crash:
            os._exit(9)  # dies holding the lock: no release
        time.sleep(hold)
        lost = lock.lost
        with open(log, "a") as f:
            f.write(f"end {os.getpid()} {time.time()}\n")
    sys.exit(8 if lost else 0)
except BusyError as exc:
    print("busy:", exc.message, flush=True)
    sys.exit(exc.exit_code)
"""


@pytest.fixture
def env(tmp_path, redis_clean):
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ZEROTRUST_HOME": str(tmp_path / "home"),
            "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "ZEROTRUST_REDIS_URL": redis_clean, "PYTHONPATH": str(ROOT)}


def spawn(env, log, ttl=1.0, hold=0.5, wait=0.0, crash=False):
    return subprocess.Popen([sys.executable, "-c", WORKER, str(ttl), str(hold), str(wait), str(log), "crash" if crash else "-"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))


def wait_acquired(proc) -> None:
    assert proc.stdout.readline().strip() == "acquired"


def intervals(log: Path) -> list[tuple[float, float]]:
    starts, ends = {}, {}
    for line in log.read_text().splitlines():
        kind, pid, t = line.split()
        (starts if kind == "start" else ends)[pid] = float(t)
    return sorted((starts[p], ends[p]) for p in starts if p in ends)


def test_second_process_is_busy_while_renewal_keeps_the_lock(env, tmp_path):
    log = tmp_path / "log"
    a = spawn(env, log, ttl=1.0, hold=2.5)
    wait_acquired(a)
    time.sleep(1.5)  # past the 1 s TTL: only renewal keeps it
    b = spawn(env, log, ttl=1.0, hold=0.1)
    out_b, _ = b.communicate(timeout=30)
    assert b.returncode == 7, out_b
    assert "busy: lock 'zt:lock:rotate-keys' is held by" in out_b and str(a.pid) in out_b
    assert a.wait(30) == 0  # 0: never lost


def test_waiting_processes_never_overlap(env, tmp_path):
    log = tmp_path / "log"
    procs = [spawn(env, log, ttl=2.0, hold=0.4, wait=20) for _ in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    spans = intervals(log)
    assert len(spans) == 3
    for (s1, e1), (s2, _e2) in zip(spans, spans[1:]):
        assert e1 <= s2, spans


def test_crashed_holder_lapses_after_ttl(env, tmp_path):
    log = tmp_path / "log"
    a = spawn(env, log, ttl=1.0, crash=True)
    wait_acquired(a)
    assert a.wait(10) == 9
    start = time.monotonic()
    b = spawn(env, log, ttl=1.0, hold=0.1, wait=10)
    assert b.wait(30) == 0
    assert time.monotonic() - start < 8


def test_release_never_deletes_someone_elses_lock(env):
    import redis

    config = load_config(environ=env)
    client = redis.Redis.from_url(env["ZEROTRUST_REDIS_URL"])
    with distributed_lock(config, "rotate-keys", ttl=5):
        client.set("zt:lock:rotate-keys", "other-token otherhost 1", px=5000)  # our lock expired and someone took it
    assert client.get("zt:lock:rotate-keys") == b"other-token otherhost 1"
    client.delete("zt:lock:rotate-keys")
    with distributed_lock(config, "rotate-keys", ttl=5):
        assert client.get("zt:lock:rotate-keys") is not None
    assert client.get("zt:lock:rotate-keys") is None  # released


def test_file_lock_without_redis(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ZEROTRUST_HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PYTHONPATH": str(ROOT)}
    log = tmp_path / "log"
    a = spawn(env, log, hold=1.5)
    wait_acquired(a)
    b = spawn(env, log, hold=0.1)
    out_b, _ = b.communicate(timeout=30)
    assert b.returncode == 7 and "on this host" in out_b
    assert a.wait(30) == 0
    lock_file = tmp_path / "home" / "locks" / "rotate-keys.lock"
    assert oct(lock_file.stat().st_mode & 0o777) == "0o600"
    with distributed_lock(load_config(environ=env), "rotate-keys"):
        with pytest.raises(BusyError):
            with distributed_lock(load_config(environ=env), "rotate-keys"):
                pass
