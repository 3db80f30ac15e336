"""Real Redis Cluster and Redis Sentinel groups on loopback, for the session
store and credential-cache tests in every ``redis.mode``.

* ``RedisClusterGroup``: 3 masters + 3 replicas, ``redis-server
  --cluster-enabled yes`` on free loopback ports, joined by ``redis-cli
  --cluster create ... --cluster-replicas 1 --cluster-yes``; a 1 s
  ``cluster-node-timeout`` so a replica takes over within a few seconds.
* ``RedisSentinelGroup``: one master, one replica and three sentinels
  (``redis-server --sentinel``, quorum 2) watching service ``zt``.

Session fixtures ``redis_cluster`` / ``redis_sentinel`` start one of each
once for the whole run (tests/conftest.py imports them, so every module shares
the same groups; do not import them into a test module, that would start
another group for it); ``private_redis_cluster`` / ``private_redis_sentinel``
give a test its own group (the failover tests kill masters).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest



def _binary(name: str) -> str:
    from tests.conftest import backend_missing  # imported late: tests/conftest.py imports this module

    path = shutil.which(name)
    if path is None:
        backend_missing(f"{name} (apt-get install redis-server redis-tools)")
    return path  # type: ignore[return-value]


def _cluster_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free too and below 65536."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 50000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


def _client(port: int, **extra):
    import redis

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2, **extra)


class _Node:
    def __init__(self, root: Path, extra: list[str], port: int | None = None, sentinel_conf: str | None = None, conf: str | None = None):
        from tests.servers import free_port, wait_port

        self.port = port or free_port()
        self.dir = root / str(self.port)
        self.dir.mkdir(parents=True, exist_ok=True)
        binary = _binary("redis-server")
        if sentinel_conf is not None:
            path = self.dir / "sentinel.conf"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            ports = f"port 0\ntls-port {self.port}\n" if "tls-cert-file" in sentinel_conf else f"port {self.port}\n"
            os.write(fd, f"{ports}bind 127.0.0.1\ndir {self.dir}\n{sentinel_conf}".encode())
            os.close(fd)
            args = [binary, str(path), "--sentinel"]
        else:
            tls = "--tls-cert-file" in extra  # TLS only: the plain port is closed
            ports = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
            args = [binary, *ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning", *extra]
            if conf is not None:  # passwords and ACL users go through a 0600 file, never argv
                path = self.dir / "redis.conf"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.write(fd, conf.encode())
                os.close(fd)
                args.insert(1, str(path))
        self.args = args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        wait_port(self.port, proc=self.proc)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        """Start the killed node again, same port and directory (a cluster node rejoins as a replica)."""
        from tests.servers import wait_port

        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        wait_port(self.port, proc=self.proc)

    def stop(self) -> None:
        from tests.servers import stop_process

        stop_process(self.proc)


class RedisClusterGroup:
    """3 masters + 3 replicas (``replicas=0``: 3 masters only). With ``tls``:
    TLS only (client and cluster bus), client certificates required, an ACL
    user ``zt`` with ``password`` and the default user off; ``server_ca``,
    ``client_cert``/``client_key`` are the files a client needs."""

    def __init__(self, replicas: int = 1, node_timeout_ms: int = 1000, tls: bool = False, password: str | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="zt-rcluster-"))
        count = 3 * (1 + replicas)
        extra = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", str(node_timeout_ms), "--cluster-require-full-coverage", "yes"]
        self.client_kwargs: dict = {}
        cli_extra: list[str] = []
        env = dict(os.environ)
        conf = None
        if tls:
            from tests.servers import self_signed_cert

            self.server_ca, server_key = self_signed_cert(self.root / "server-tls")
            self.client_cert, self.client_key = self_signed_cert(self.root / "client-tls", host="127.0.0.2")  # another subject than the server's
            bundle = self.root / "trusted.pem"  # the nodes trust each other (bus, replication) and the client
            bundle.write_bytes(self.server_ca.read_bytes() + self.client_cert.read_bytes())
            extra += ["--tls-cluster", "yes", "--tls-replication", "yes", "--tls-cert-file", str(self.server_ca),
                      "--tls-key-file", str(server_key), "--tls-ca-cert-file", str(bundle), "--tls-auth-clients", "yes"]
            self.client_kwargs.update(ssl=True, ssl_ca_certs=str(self.server_ca), ssl_certfile=str(self.client_cert), ssl_keyfile=str(self.client_key))
            cli_extra += ["--tls", "--cacert", str(self.server_ca), "--cert", str(self.client_cert), "--key", str(self.client_key)]
        if password:
            conf = f"user default off\nuser zt on >{password} ~* &* +@all\n"
            self.client_kwargs.update(username="zt", password=password)
            cli_extra += ["--user", "zt"]
            env["REDISCLI_AUTH"] = password  # redis-cli reads it from the environment, not argv
        self.nodes: list[_Node] = []
        try:
            for _ in range(count):
                self.nodes.append(_Node(self.root, extra, port=_cluster_port(), conf=conf))
            create = [_binary("redis-cli"), *cli_extra, "--cluster", "create", *[n.address for n in self.nodes],
                      "--cluster-replicas", str(replicas), "--cluster-yes"]
            done = subprocess.run(create, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, env=env)
            if done.returncode != 0:
                raise RuntimeError("redis-cli --cluster create failed: " + done.stdout.decode(errors="replace")[-2000:])
            self.wait_ok(expect_replicas=replicas)
        except BaseException:
            self.stop()
            raise

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def node(self, port: int) -> _Node:
        return next(n for n in self.nodes if n.port == port)

    def _c(self, port: int):
        import redis

        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2, **self.client_kwargs)

    def _info(self, node: _Node) -> dict:
        c = self._c(node.port)
        try:
            return c.cluster("info")
        finally:
            c.close()

    def masters(self) -> list[_Node]:
        """The live nodes that serve slots as masters now (per CLUSTER SLOTS of a live node)."""
        for n in self.nodes:
            if not n.alive():
                continue
            c = self._c(n.port)
            try:
                ports = {int(s[2][1]) for s in c.cluster("slots")}
            finally:
                c.close()
            return [m for m in self.nodes if m.port in ports and m.alive()]
        return []

    def wait_ok(self, timeout: float = 30.0, expect_replicas: int = 1) -> None:
        """Until every live node says cluster_state:ok and each master has its replicas in sync."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ok = all(str(self._info(n).get("cluster_state")) == "ok" for n in self.nodes if n.alive())
                for n in self.nodes:  # every slot served by a live master, in every live node's view
                    if n.alive():
                        c = self._c(n.port)
                        try:
                            ok = ok and all(self.node(int(r[2][1])).alive() for r in c.cluster("slots"))
                        finally:
                            c.close()
                if ok and expect_replicas:
                    for m in self.masters():
                        c = self._c(m.port)
                        try:
                            info = c.info("replication")
                        finally:
                            c.close()
                        if int(info.get("connected_slaves", 0)) < expect_replicas or any(
                                isinstance(v, dict) and v.get("state") != "online" for k, v in info.items() if k.startswith("slave")):
                            ok = False
                if ok:
                    return
            except Exception:  # noqa: BLE001 - still converging
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis cluster did not converge")
            time.sleep(0.1)

    def client(self):
        from redis.cluster import ClusterNode, RedisCluster

        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in self.nodes if n.alive()], socket_timeout=5, **self.client_kwargs)

    def flush(self) -> None:
        from redis.cluster import RedisCluster

        c = self.client()
        try:
            c.flushall(target_nodes=RedisCluster.PRIMARIES)
        finally:
            c.close()

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisSentinelGroup:
    """A master, ``replicas`` replicas and three sentinels (quorum 2) for service ``zt``.
    ``password``: the data nodes require it; ``sentinel_password``: the Sentinels do."""

    SERVICE = "zt"

    def __init__(self, replicas: int = 1, down_after_ms: int = 1000, extra: list[str] | None = None,
                 password: str | None = None, sentinel_password: str | None = None, tls: bool = False):
        self.root = Path(tempfile.mkdtemp(prefix="zt-rsentinel-"))
        self.data: list[_Node] = []
        self.sentinels: list[_Node] = []
        self.password, self.sentinel_password = password, sentinel_password
        data_conf = f"requirepass {password}\nmasterauth {password}\n" if password else None
        self.tls_kwargs: dict = {}
        tls_conf = ""
        if tls:  # everything TLS only: clients, replication, the Sentinels (server certificates verified, no client certificates)
            from tests.servers import self_signed_cert

            self.ca, key = self_signed_cert(self.root / "tls")
            extra = [*(extra or []), "--tls-cert-file", str(self.ca), "--tls-key-file", str(key), "--tls-ca-cert-file", str(self.ca),
                     "--tls-auth-clients", "no", "--tls-replication", "yes"]
            tls_conf = (f"tls-cert-file {self.ca}\ntls-key-file {key}\ntls-ca-cert-file {self.ca}\n"
                        "tls-auth-clients no\ntls-replication yes\n")
            self.tls_kwargs = {"ssl": True, "ssl_ca_certs": str(self.ca)}
        try:
            master = _Node(self.root, list(extra or []), conf=data_conf)
            self.data.append(master)
            for _ in range(replicas):
                self.data.append(_Node(self.root, [*(extra or []), "--replicaof", "127.0.0.1", str(master.port)], conf=data_conf))
            conf = tls_conf + (f"sentinel monitor {self.SERVICE} 127.0.0.1 {master.port} 2\n"
                    f"sentinel down-after-milliseconds {self.SERVICE} {down_after_ms}\n"
                    f"sentinel failover-timeout {self.SERVICE} 5000\n"
                    f"sentinel parallel-syncs {self.SERVICE} 1\n")
            if password:
                conf += f"sentinel auth-pass {self.SERVICE} {password}\n"
            if sentinel_password:
                conf += f"requirepass {sentinel_password}\nsentinel sentinel-pass {sentinel_password}\n"
            for _ in range(3):
                self.sentinels.append(_Node(self.root, [], sentinel_conf=conf))
            self.wait_ok(expect_replicas=replicas)
        except BaseException:
            self.stop()
            raise

    def _d(self, port: int):
        """A client of a data node (its password, TLS)."""
        return _client(port, password=self.password, **self.tls_kwargs)

    def _s(self, port: int):
        """A client of a Sentinel (the Sentinels' password, TLS)."""
        return _client(port, password=self.sentinel_password, **self.tls_kwargs)

    @property
    def sentinel_addresses(self) -> list[str]:
        return [n.address for n in self.sentinels]

    def master_port(self) -> int:
        c = self._s(self.sentinels[0].port)
        try:
            host, port = c.sentinel_get_master_addr_by_name(self.SERVICE)
        finally:
            c.close()
        return int(port)

    def master(self) -> _Node:
        port = self.master_port()
        return next(n for n in self.data if n.port == port)

    def wait_ok(self, timeout: float = 30.0, expect_replicas: int = 1) -> None:
        """Until the sentinels agree on a live master that has its replicas online and knows the other sentinels."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                port = self.master_port()
                node = next(n for n in self.data if n.port == port)
                c = self._d(port)
                try:
                    info = c.info("replication")
                finally:
                    c.close()
                s = self._s(self.sentinels[0].port)
                try:
                    state = s.sentinel_master(self.SERVICE)
                finally:
                    s.close()
                online = sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online")
                if node.alive() and info.get("role") == "master" and online >= expect_replicas \
                        and int(state.get("num-other-sentinels", 0)) >= 2 and "down" not in str(state.get("flags")):
                    return
            except Exception:  # noqa: BLE001 - still converging
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Sentinel group did not converge")
            time.sleep(0.1)

    def flush(self) -> None:
        c = self._d(self.master_port())
        try:
            c.flushall()
        finally:
            c.close()

    def stop(self) -> None:
        for n in self.sentinels + self.data:
            n.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# The shared groups tolerate a node stalled for a few seconds on a loaded CI box
# (no spurious failover); the private ones fail over within about 2 s.
@pytest.fixture(scope="session")
def redis_cluster():
    group = RedisClusterGroup(node_timeout_ms=5000)
    yield group
    group.stop()


@pytest.fixture(scope="session")
def redis_sentinel():
    group = RedisSentinelGroup(down_after_ms=5000)
    yield group
    group.stop()


@pytest.fixture(scope="session")
def redis_cluster_tls():
    """3 masters, TLS only with client certificates, ACL user ``zt`` (``.client_kwargs["password"]``)."""
    group = RedisClusterGroup(replicas=0, tls=True, password="zt-cluster-" + os.urandom(8).hex(), node_timeout_ms=5000)
    yield group
    group.stop()


@pytest.fixture
def private_redis_cluster():
    group = RedisClusterGroup()
    yield group
    group.stop()


@pytest.fixture
def private_redis_sentinel():
    group = RedisSentinelGroup()
    yield group
    group.stop()


def topology_env(mode: str, request) -> dict:
    """``ZEROTRUST_REDIS_*`` settings for a store in ``mode`` on the shared (flushed) servers."""
    if mode == "standalone":
        return {"ZEROTRUST_REDIS_URL": request.getfixturevalue("redis_clean")}
    if mode == "cluster":
        group = request.getfixturevalue("redis_cluster")
        group.flush()
        return {"ZEROTRUST_REDIS_MODE": "cluster", "ZEROTRUST_REDIS_NODES": ",".join(group.addresses)}
    group = request.getfixturevalue("redis_sentinel")
    group.flush()
    return {"ZEROTRUST_REDIS_MODE": "sentinel", "ZEROTRUST_REDIS_SENTINELS": ",".join(group.sentinel_addresses),
            "ZEROTRUST_REDIS_SERVICE_NAME": group.SERVICE}


__all__ = ["RedisClusterGroup", "RedisSentinelGroup", "private_redis_cluster", "private_redis_sentinel", "redis_cluster",
           "redis_cluster_tls", "redis_sentinel", "topology_env"]
