"""A lock that keeps two hosts (or two cron jobs) from rotating keys or
revoking everything at the same time.

With Redis configured it is a Redis lock: ``SET key value NX PX ttl`` with a
random token in the value, released by a Lua compare-and-delete (never
deleting someone else's lock), and renewed by a background thread every
ttl/3 while the work runs, so a long job keeps it and a crashed one loses it
after ``ttl``. On a Redis Cluster the lock is one key (so one slot); on a
cluster or under Sentinel the ``SET`` is acknowledged by a replica (``WAIT``,
``redis.wait_replicas``) before the work starts, so a failover keeps it, and a
holder whose renewal fails (the lock lapsed or someone else holds it after a
failover) sees ``lock.lost`` and stops at its next check. Without Redis it is an ``fcntl`` lock file under
``$ZEROTRUST_HOME/locks/`` (one host only). Either way a held lock raises
BusyError (exit 7).

    from zerotrust_admin.sessions.lock import distributed_lock
    with distributed_lock(config, "rotate-keys", ttl=60) as lock:
        ...            # lock.lost is True if renewal failed (Redis gone)
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from zerotrust_admin import fsutil
from zerotrust_admin.errors import BusyError, UsageError

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisLock:
    def __init__(self, client, key: str, ttl: float, where: str = "redis", *, wait_replicas: int = 0, wait_timeout: float = 2.0):
        self.r = client
        self.wait_replicas = int(wait_replicas)
        self.wait_timeout_ms = max(1, int(wait_timeout * 1000))
        self.key = key
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.where = where
        self.value = f"{secrets.token_hex(16)} {socket.gethostname()} {os.getpid()}"
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)

    def acquire(self, wait: float = 0.0) -> None:
        from zerotrust_admin.sessions.redis_store import translate

        deadline = time.monotonic() + wait
        while True:
            try:
                if self._take():
                    break
                holder, ttl = self.r.get(self.key), self.r.pttl(self.key)
            except Exception as exc:  # noqa: BLE001
                mapped = translate(exc, self.where)
                if mapped is None:
                    raise
                raise mapped from None
            if time.monotonic() >= deadline:
                who = holder.decode(errors="replace").split(" ", 1)[1] if holder and " " in holder.decode(errors="replace") else "another process"
                raise BusyError(f"lock {self.key!r} is held by {who} (expires in {max(ttl, 0) / 1000:.0f}s)",
                                hint="another host is doing this right now; wait for it to finish, then re-run")
            time.sleep(0.1)
        self._thread = threading.Thread(target=self._renewal, name=f"lock-renew:{self.key}", daemon=True)
        self._thread.start()

    def _take(self) -> bool:
        """SET NX PX; with ``wait_replicas``, WAIT on the same connection so a
        failover cannot hand the lock to a second holder: a lock the replicas
        did not acknowledge is released again and the run stops (exit 6)."""
        if not self.wait_replicas:
            return bool(self.r.set(self.key, self.value, nx=True, px=self.ttl_ms))
        from zerotrust_admin.errors import UnavailableError
        from zerotrust_admin.sessions.redis_store import node_client

        pipe = node_client(self.r, self.key).pipeline(transaction=False)
        pipe.set(self.key, self.value, nx=True, px=self.ttl_ms)
        pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
        taken, acks = pipe.execute()
        if taken and int(acks) < self.wait_replicas:
            self._release(keys=[self.key], args=[self.value])
            raise UnavailableError(f"lock {self.key!r}: only {int(acks)} of {self.wait_replicas} replica(s) acknowledged it",
                                   hint="check the replicas (INFO replication), or redis.wait_replicas; then re-run")
        return bool(taken)

    def _renewal(self) -> None:
        interval = self.ttl_ms / 3000.0
        while not self._stop.wait(interval):
            try:
                if not self._renew(keys=[self.key], args=[self.value, self.ttl_ms]):
                    self.lost = True
                    return
            except Exception:  # noqa: BLE001 - Redis gone: the lock will lapse on its own
                self.lost = True
                return

    def check(self) -> None:
        """Raise BusyError when the lock was lost (renewal failed)."""
        if self.lost:
            raise BusyError(f"lock {self.key!r} was lost while working", hint="another host may have taken over; check before re-running")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self._release(keys=[self.key], args=[self.value])
        except Exception:  # noqa: BLE001 - unreachable Redis: the lock expires after its TTL
            pass


class FileLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None
        self.lost = False

    def acquire(self, wait: float = 0.0) -> None:
        fsutil.ensure_private_dir(self.path.parent)
        fd = fsutil.create_private_file(self.path)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise BusyError(f"lock {self.path} is held by another process on this host",
                                    hint="wait for the other run to finish, then re-run") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def check(self) -> None:
        return None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


@contextmanager
def distributed_lock(config, name: str, ttl: float = 60.0, *, wait: float = 0.0, client=None,
                     where: str = "redis") -> Iterator[RedisLock | FileLock]:
    """Hold the lock ``name`` for the duration of the block (see module doc).

    ``client`` (with its safe description ``where``): an open redis-py client
    of the configured Redis to take the lock through, left open afterwards;
    ``revoke-sessions`` passes its session store's, which spares a second
    connection (on a cluster, a second topology discovery: ~20 ms). Without
    it the lock connects on its own. Ignored when Redis is not configured."""
    from zerotrust_admin.sessions.redis_store import connect, key_prefix, redis_configured, redis_mode, wait_replicas, wait_timeout

    if not _NAME.match(name):
        raise UsageError(f"invalid lock name {name!r}")
    owned = None
    if redis_configured(config):
        if client is None:
            client, where = connect(config)
            owned = client
        lock: RedisLock | FileLock = RedisLock(client, f"{key_prefix(config)}lock:{name}", ttl, where,
                                               wait_replicas=wait_replicas(config, redis_mode(config)),
                                               wait_timeout=wait_timeout(config))
    else:
        lock = FileLock(config.home / "locks" / f"{name}.lock")
    try:
        lock.acquire(wait)
        try:
            yield lock
        finally:
            lock.release()
    finally:
        if owned is not None:
            owned.close()
