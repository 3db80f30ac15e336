"""Threat model S1 and S2: Redis Sentinel answers are network input; a failover
must not lose a revocation marker (docs/threat-model.md)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import write_user_config
from tests.redis_topologies import _Node  # redis_sentinel: a fixture from tests/conftest.py
from tests.servers import RedisServer, free_port, redis_clean, redis_server, redis_server_process  # noqa: F401
from zerotrust_admin.config import load_config
from zerotrust_admin.errors import DeniedError
from zerotrust_admin.sessions import make_session, open_session_store
from zerotrust_admin.sessions.redis_store import check_master_address

REAL_PASSWORD = "real-redis-password-" + os.urandom(6).hex()


@pytest.fixture
def rogue(tmp_path):
    """A rogue master (its own password) and a real Sentinel that names it for service ``zt``."""
    master = RedisServer(password="rogue-" + os.urandom(6).hex())
    sentinel = _Node(tmp_path / "sentinel", [], sentinel_conf=(
        f"sentinel monitor zt 127.0.0.1 {master.port} 1\nsentinel auth-pass zt {master.password}\n"))
    try:
        c = master.client()
        c.acl_log_reset()  # a clean log: any "auth" entry from now on is a client sending a wrong password
        c.close()
        yield master, sentinel
    finally:
        sentinel.stop()
        master.stop()


def _config(zt_env, tmp_path, sentinel, nodes=None):
    pw = tmp_path / "redis.pass"
    pw.write_text(REAL_PASSWORD)
    pw.chmod(0o600)
    redis = {"mode": "sentinel", "sentinels": [sentinel.address], "service_name": "zt", "password_file": str(pw), "connect_timeout": 1}
    if nodes is not None:
        redis["nodes"] = nodes
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": redis})


def _auth_attempts(master) -> int:
    c = master.client()
    try:
        return sum(int(e.get("count", 1)) for e in c.acl_log() if e.get("reason") == "auth")
    finally:
        c.close()


def test_s1_a_master_outside_redis_nodes_is_refused_before_the_password_is_sent(rogue, zt_env, tmp_path, cli):
    master, sentinel = rogue
    _config(zt_env, tmp_path, sentinel, nodes=[f"127.0.0.1:{free_port()}"])  # the deployment's real data node
    r = cli("sessions", "list")
    assert r.code == 4, r.err
    assert "not in redis.nodes" in r.err and REAL_PASSWORD not in r.err
    assert _auth_attempts(master) == 0  # the rogue never saw an AUTH


def test_s1_control_without_the_allow_list_a_loopback_master_gets_the_password(rogue, zt_env, tmp_path, cli):
    """What S1's check prevents: without redis.nodes the loopback rogue is trusted
    and receives an AUTH with the real password (refused there: wrong password)."""
    master, sentinel = rogue
    _config(zt_env, tmp_path, sentinel)
    r = cli("sessions", "list")
    assert r.code == 4 and REAL_PASSWORD not in r.err
    assert _auth_attempts(master) >= 1


def test_s1_a_remote_master_needs_the_allow_list_or_verified_tls():
    with pytest.raises(DeniedError, match="nothing vouches"):
        check_master_address("10.9.8.7", 6379, None, tls_verified=False)
    check_master_address("10.9.8.7", 6379, None, tls_verified=True)
    check_master_address("127.0.0.1", 6379, None, tls_verified=False)
    check_master_address("10.9.8.7", 6379, {("10.9.8.7", 6379)}, tls_verified=False)
    with pytest.raises(DeniedError, match="not in redis.nodes"):
        check_master_address("10.9.8.7", 6380, {("10.9.8.7", 6379)}, tls_verified=True)  # TLS does not widen the list


def test_s2_a_marker_no_replica_acknowledges_is_not_reported_done(redis_clean, zt_env, cli):
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": redis_clean, "wait_replicas": 1, "wait_timeout": 0.2}})
    store = open_session_store(load_config(environ=zt_env))
    store.put_many([make_session(f"u{i}@EXAMPLE.COM", 3600) for i in range(10)])
    store.close()
    r = cli("revoke-sessions", "--all", "--yes", "--json")
    assert r.code == 6 and "acknowledged" in r.err, r.err
    store = open_session_store(load_config(environ=zt_env))
    try:
        assert store.count() == 10  # it stopped at the marker, before deleting anything
    finally:
        store.close()
    from zerotrust_admin.audit import AuditLog

    rec = list(AuditLog(Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").records())[-1]
    assert rec["event"] == "session_revocation" and rec["success"] is False


def test_s2_the_marker_is_on_a_replica_when_the_command_returns(redis_sentinel, zt_env, cli):
    group = redis_sentinel
    group.flush()
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"mode": "sentinel", "sentinels": group.sentinel_addresses,
                                                                      "service_name": group.SERVICE}})
    store = open_session_store(load_config(environ=zt_env))
    store.put_many([make_session("alice@EXAMPLE.COM", 3600, now=time.time() - 1) for _ in range(3)])
    marker_key = store.k_marker("alice@EXAMPLE.COM")
    store.close()
    r = cli("revoke-sessions", "--user", "alice@EXAMPLE.COM", "--yes", "--json")
    assert r.code == 0, r.err
    at = json.loads(r.out)["marker_at"]
    replica = next(n for n in group.data if n.port != group.master_port())
    import redis

    c = redis.Redis(host="127.0.0.1", port=replica.port)
    try:
        assert float(c.get(marker_key)) == pytest.approx(at)  # read at once: WAIT made it be there
    finally:
        c.close()
