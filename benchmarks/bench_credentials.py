"""AWS credentials (issue 5): `credentials get` served from the encrypted cache, and
the cache's in-process lookups at scale.

- start-up: `zerotrust-admin credentials get --format process` on a cache hit (what the
  AWS CLI runs as `credential_process` on every command), whole-command median wall,
  interleaved with the AWS CLI's own start-up (`aws configure get region`: AWS CLI v1
  has no `configure export-credentials`) and with a full `credential_process` round
  trip (`aws sts get-caller-identity` through a profile using our command, against
  the same call with static keys), all against a local moto server.
- lookups: `CredentialCache.get` (AES-256-GCM open + parse) p50/p99 on a real SQLite
  store and a real Redis holding 100,000 cached entries of 100,000 users; the key
  comes from memory (the vault is read once per process).

`--quick`: 5 runs and 5,000 entries.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.benchlib import Home, entry_point, interleaved, median, percentile, row, time_command

ROLE = "arn:aws:iam::123456789012:role/Bench"
LOOKUP_TARGET_MS = 1.0


def sizes(quick: bool) -> dict:
    return {"runs": 5, "entries": 5_000, "lookups": 500} if quick else {"runs": 20, "entries": 100_000, "lookups": 5_000}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class Server:
    def __init__(self, argv: list[str], port: int):
        self.port = port
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(port, self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed (pip install 'moto[server]' awscli)")
    return found


def startup(n: dict) -> list[dict]:
    zt = entry_point()
    aws = _bin("aws")
    port = _free_port()
    moto = Server([_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)], port)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with Home() as home:
            cfg = home.write_config(f"aws:\n  region: us-east-1\n  endpoint_url: {endpoint}\n  credentials_provider: environment\n")
            awsdir = home.dir / "userhome" / ".aws"
            awsdir.mkdir(parents=True)
            (awsdir / "config").write_text(
                "[profile zt]\nregion = us-east-1\n"
                f"credential_process = {' '.join(zt)} credentials get --role-arn {ROLE} --format process\n"
                "[profile static]\nregion = us-east-1\naws_access_key_id = AKIABENCH\naws_secret_access_key = bench-secret\n")
            env = dict(home.env, ZEROTRUST_CONFIG=str(cfg), ZEROTRUST_AWS_ACCESS_KEY="AKIABENCH", ZEROTRUST_AWS_SECRET_KEY="bench-secret",
                       AWS_CONFIG_FILE=str(awsdir / "config"), AWS_SHARED_CREDENTIALS_FILE=str(awsdir / "credentials"),
                       AWS_EC2_METADATA_DISABLED="true")
            home.env = env
            home.cli("init")
            ours = [*zt, "credentials", "get", "--role-arn", ROLE, "--format", "process"]
            time_command(ours, env)  # fills the cache
            cpu: dict[str, list[float]] = {"ours": [], "aws": []}
            commands = {
                "ours": lambda: time_command(ours, env, cpu=cpu["ours"]),
                "aws start-up": lambda: time_command([aws, "configure", "get", "region", "--profile", "static"], env, cpu=cpu["aws"]),
                "aws via process": lambda: time_command([aws, "sts", "get-caller-identity", "--profile", "zt", "--endpoint-url", endpoint], env),
                "aws static": lambda: time_command([aws, "sts", "get-caller-identity", "--profile", "static", "--endpoint-url", endpoint], env),
            }
            samples = interleaved(commands, n["runs"], warmup=1)
    finally:
        moto.stop()
    ours_ms = median(samples["ours"]) * 1000
    aws_ms = median(samples["aws start-up"]) * 1000
    via_ms = median(samples["aws via process"]) * 1000
    static_ms = median(samples["aws static"]) * 1000
    runs = n["runs"]
    return [
        row("credential_process", "credentials get --format process (cache hit), median wall", ours_ms, "ms",
            peer="aws configure get region (AWS CLI start-up)", ratio=ours_ms / aws_ms, target="faster than the AWS CLI's own start-up",
            met=ours_ms < aws_ms, note=f"{runs} runs, interleaved"),
        row("credential_process", "aws configure get region, median wall", aws_ms, "ms", note="AWS CLI v1 start-up, no network"),
        row("credential_process", "aws sts get-caller-identity via our credential_process, median wall", via_ms, "ms",
            peer="same call with static keys", ratio=via_ms / static_ms, note=f"our process adds {via_ms - static_ms:.0f} ms to the round trip"),
        row("credential_process", "aws sts get-caller-identity with static keys, median wall", static_ms, "ms"),
        row("credential_process", "credentials get (cache hit), median CPU", median(cpu["ours"]) * 1000, "ms",
            peer="aws configure get region, median CPU", ratio=median(cpu["ours"]) / median(cpu["aws"])),
    ]


def _fill(store, cache_mod, key: bytes, count: int, expiry: int) -> list[tuple[str, str]]:
    """``count`` real sealed entries (one per user), written in bulk."""
    from zerotrust_admin.aws.credentials import Credentials
    from zerotrust_admin.crypto import seal

    creds = Credentials("ASIABENCH00000000000", "s" * 40, "t" * 600, datetime.fromtimestamp(expiry, timezone.utc), role_arn=ROLE)
    payload = creds.to_cache_bytes()
    header = cache_mod._HEADER
    items, rows = [], []
    for i in range(count):
        user, req = f"user{i}@EXAMPLE.COM", f'{{"role":"{ROLE}","i":{i}}}'
        blob = header.pack(cache_mod.MAGIC + b"\0", 1, expiry) + seal(key, payload, cache_mod.aad(user, req, expiry, 1))
        rows.append((cache_mod.entry_key(user, req), blob))
        items.append((user, req))
    ttl = expiry - time.time() - 300
    if store.kind == "sqlite":
        with store._tx() as db:
            db.executemany("INSERT OR REPLACE INTO cache (namespace, key, blob, expires) VALUES (?, ?, ?, ?)",
                           [(cache_mod.NAMESPACE, k, b, time.time() + ttl) for k, b in rows])
    else:
        pipe = store.r.pipeline(transaction=False)
        for j, (k, b) in enumerate(rows):
            pipe.set(store.k_cache(cache_mod.NAMESPACE, k), b, px=int(ttl * 1000))
            pipe.sadd(store.k_cache_index(cache_mod.NAMESPACE), k)
            if j % 5000 == 4999:
                pipe.execute()
        pipe.execute()
    return items


def lookups(n: dict) -> list[dict]:
    import redis

    from zerotrust_admin.aws import cache as C
    from zerotrust_admin.sessions.redis_store import RedisSessionStore
    from zerotrust_admin.sessions.sqlite_store import SQLiteSessionStore

    key = os.urandom(32)
    expiry = int(time.time()) + 3600
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-cred-"))
    port = _free_port()
    rserver = Server([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", str(tmp)], port)
    rows = []
    try:
        stores = {"sqlite": SQLiteSessionStore(tmp / "sessions.db"), "redis": RedisSessionStore(redis.Redis(host="127.0.0.1", port=port))}
        for name, store in stores.items():
            start = time.perf_counter()
            items = _fill(store, C, key, n["entries"], expiry)
            fill_s = time.perf_counter() - start
            cache = C.CredentialCache(store, lambda v=None: (key, 1))
            rnd = random.Random(5)
            picks = [items[rnd.randrange(len(items))] for _ in range(n["lookups"])]
            times, misses = [], 0
            for user, req in picks:
                t = time.perf_counter()
                got = cache.get(user, req)
                times.append(time.perf_counter() - t)
                misses += got is None
            if misses:
                raise RuntimeError(f"{misses} unexpected cache misses on {name}")
            p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
            rows.append(row("cache lookup", f"CredentialCache.get hit on {name}, {n['entries']:,} entries, p50", p50, "ms",
                            target=f"< {LOOKUP_TARGET_MS:g} ms", met=p50 < LOOKUP_TARGET_MS,
                            note=f"{n['lookups']:,} random lookups; p99 {p99:.3f} ms; filled in {fill_s:.1f} s"))
            store.close()
    finally:
        rserver.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def run(quick: bool = False) -> list[dict]:
    n = sizes(quick)
    return startup(n) + lookups(n)


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
