"""Sessions on a real Redis Cluster (3 masters, 3 replicas) and a real Sentinel
group: the key schema's slots, ``revoke-sessions --all`` fanned out per
master with per-shard counts, the lock, the failover of a master in the
middle of ``--all`` (cluster: a replica takes over; Sentinel: a new master is
elected), and the copy of a standalone deployment's sessions to a cluster."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import write_user_config
# redis_cluster, redis_sentinel, redis_cluster_tls, private_redis_*: fixtures from tests/conftest.py
from tests.servers import redis_clean, redis_server, redis_server_process  # noqa: F401
from zerotrust_admin.audit import AuditLog
from zerotrust_admin.config import load_config
from zerotrust_admin.errors import BusyError, UnavailableError, UsageError
from zerotrust_admin.identity import current_actor
from zerotrust_admin.sessions import Session, make_session, open_session_store
from zerotrust_admin.sessions.base import InterruptedDeletion, user_tag
from zerotrust_admin.sessions.lock import distributed_lock
from zerotrust_admin.sessions.revoke import Target, revoke_sessions


def cluster_settings(group, **extra) -> dict:
    return {"sessions": {"backend": "redis", **extra.pop("sessions", {})},
            "redis": {"mode": "cluster", "nodes": group.addresses, "connect_timeout": 1, "socket_timeout": 2, **extra}}


def sentinel_settings(group, **extra) -> dict:
    return {"sessions": {"backend": "redis", **extra.pop("sessions", {})},
            "redis": {"mode": "sentinel", "sentinels": group.sentinel_addresses, "service_name": group.SERVICE,
                      "connect_timeout": 1, "socket_timeout": 2, **extra}}


def seed(store, users: int, per_user: int) -> list[Session]:
    made = [make_session(f"u{i}@EXAMPLE.COM", 3600, "10.0.0.9", now=time.time() - 1) for i in range(users) for _ in range(per_user)]
    store.put_many(made)
    return made


def audit_records(zt_env) -> list[dict]:
    return list(AuditLog(Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").records())


# --- the key schema ------------------------------------------------------------------------
def test_a_users_keys_share_one_slot_and_ids_carry_it(redis_cluster, zt_env):
    redis_cluster.flush()
    write_user_config(zt_env, cluster_settings(redis_cluster))
    store = open_session_store(load_config(environ=zt_env))
    try:
        s = make_session("alice@EXAMPLE.COM", 3600)
        assert s.id.startswith(user_tag("alice@EXAMPLE.COM") + "-")
        store.put(s)
        slots = {store.r.keyslot(k) for k in (store.k_session(s.id), store.k_index(s.user), store.k_marker(s.user),
                                              store.k_users(user_tag(s.user)))}
        assert len(slots) == 1
        # an id without its user's tag cannot be stored on a cluster (it could not be found by id alone)
        with pytest.raises(UsageError, match="slot tag"):
            store.put(Session(id="abcdefgh1234", user="alice@EXAMPLE.COM", created=time.time(), expires=time.time() + 60))
    finally:
        store.close()


def test_revoke_user_on_a_cluster_is_one_script_call_on_one_master(redis_cluster, zt_env):
    redis_cluster.flush()
    write_user_config(zt_env, cluster_settings(redis_cluster))
    store = open_session_store(load_config(environ=zt_env))
    try:
        seed(store, 30, 4)
        user = "u7@EXAMPLE.COM"
        owner = store.r.get_node_from_key(store.k_index(user)).name

        def evals():
            return {name: int(c.info("commandstats").get("cmdstat_eval", {}).get("calls", 0)) for name, c in store.primaries()}

        before = evals()
        t0 = time.perf_counter()
        count, at = store.revoke_user_atomically(user)
        elapsed = time.perf_counter() - t0
        after = evals()
        assert count == 4 and store.count(user) == 0 and store.count() == 116
        assert {n: after[n] - before[n] for n in after} == {n: (1 if n == owner else 0) for n in after}
        assert store.markers(user)[0] == at
        assert elapsed < 0.5  # one round trip (generous bound for a loaded 2-core CI box)
    finally:
        store.close()


# --- revoke-sessions --all on a cluster ---------------------------------------------------------
def test_revoke_all_on_a_cluster_reports_per_shard_counts(redis_cluster, zt_env, cli):
    redis_cluster.flush()
    write_user_config(zt_env, cluster_settings(redis_cluster))
    store = open_session_store(load_config(environ=zt_env))
    made = seed(store, 60, 5)
    store.close()
    r = cli("revoke-sessions", "--all", "--yes", "--json", "--reason", "cluster drill")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    masters = {f"127.0.0.1:{n.port}" for n in redis_cluster.masters()}
    assert out["revoked"] == 300 and set(out["shards"]) == masters and sum(out["shards"].values()) == 300
    assert all(v > 0 for v in out["shards"].values())
    rec = audit_records(zt_env)[-1]
    assert rec["event"] == "session_revocation" and rec["success"] is True and rec["details"]["shards"] == out["shards"]
    seed_store = open_session_store(load_config(environ=zt_env))
    seed(seed_store, 6, 5)
    seed_store.close()
    text = cli("revoke-sessions", "--all", "--yes", "--reason", "cluster drill, text")
    assert text.code == 0, text.err
    line = next(x for x in text.out.decode().splitlines() if x.startswith("Per master: "))
    assert {part.rsplit(" ", 1)[0] for part in line[len("Per master: "):].split(", ")} == masters
    assert sum(int(part.rsplit(" ", 1)[1]) for part in line[len("Per master: "):].split(", ")) == 30
    store = open_session_store(load_config(environ=zt_env))
    try:
        assert store.count() == 0 and store.estimate_count() <= 3  # markers and the lock's leftovers only
        assert all(store.is_revoked(s) for s in made[:20])
        assert store.markers("u1@EXAMPLE.COM")[1] == pytest.approx(out["marker_at"])
    finally:
        store.close()


def test_lock_on_a_cluster_and_under_sentinel(redis_cluster, redis_sentinel, zt_env):
    for settings in (cluster_settings(redis_cluster), sentinel_settings(redis_sentinel)):
        write_user_config(zt_env, settings)
        config = load_config(environ=zt_env)
        with distributed_lock(config, "rotate-keys", ttl=5) as held:
            assert held.wait_replicas == 1
            with pytest.raises(BusyError):
                with distributed_lock(config, "rotate-keys", ttl=5):
                    pass
            held.check()
        with distributed_lock(config, "rotate-keys", ttl=5):  # released: free again
            pass


def test_a_marker_no_replica_acknowledges_fails_closed(redis_sentinel, zt_env, cli):
    """More replicas asked for than exist: the write is not reported as done (exit 6)."""
    redis_sentinel.flush()
    write_user_config(zt_env, sentinel_settings(redis_sentinel, wait_replicas=3, wait_timeout=0.2))
    store = open_session_store(load_config(environ=zt_env))
    seed(store, 1, 2)
    store.close()
    r = cli("revoke-sessions", "--user", "u0@EXAMPLE.COM", "--yes")
    assert r.code == 6 and "acknowledged" in r.err, r.err


# --- failover in the middle of --all -----------------------------------------------------------
def _revoke_all(config, zt_env, **kw):
    store = open_session_store(config)
    try:
        return revoke_sessions(store, Target("all"), config=config, audit=AuditLog(Path(zt_env["ZEROTRUST_HOME"]) / "audit.log"),
                               actor=current_actor(zt_env), notify=False, **kw)
    finally:
        store.close()


def _check_all_refused(config, made):
    store = open_session_store(config)
    try:
        assert store.count() == 0
        assert store.markers("u0@EXAMPLE.COM")[1] is not None
        for s in made[::7]:
            assert store.get(s.id) is None and store.is_revoked(s)  # no revoked session is valid again
    finally:
        store.close()


def test_cluster_master_killed_during_revoke_all(private_redis_cluster, zt_env):
    group = private_redis_cluster
    write_user_config(zt_env, cluster_settings(group, sessions={"batch_size": 100}))
    config = load_config(environ=zt_env)
    store = open_session_store(config)
    made = seed(store, 1500, 4)
    marker_master = store.r.get_node_from_key(store.k_marker(None)).port
    store.close()
    killed = []

    def kill_marker_master(n):
        if not killed:  # the global marker is written (and acknowledged by a replica): kill its master now
            group.node(marker_master).kill()
            killed.append(marker_master)

    t0 = time.monotonic()
    try:
        report = _revoke_all(config, zt_env, progress=kill_marker_master)
        outcome = "completed"
    except (InterruptedDeletion, UnavailableError) as exc:
        assert exc.exit_code == 6
        outcome = "exit 6"
    assert killed
    group.wait_ok(expect_replicas=0)  # a replica took over the dead master's slots
    # The new master has no replica: marker writes wait for one (redis.wait_replicas: 1) and would
    # exit 6, so the operator brings the dead node back; it rejoins as the new master's replica.
    group.node(marker_master).restart()
    group.wait_ok(expect_replicas=1)
    if outcome == "exit 6":
        report = _revoke_all(config, zt_env, lock_wait=15)  # the re-run finishes (a stale lock lapses within 10 s)
    print(f"cluster failover outcome: {outcome}")
    assert report.complete
    _check_all_refused(config, made)
    assert time.monotonic() - t0 < 60


def test_sentinel_master_killed_during_revoke_all(private_redis_sentinel, zt_env):
    group = private_redis_sentinel
    write_user_config(zt_env, sentinel_settings(group, sessions={"batch_size": 100}))
    config = load_config(environ=zt_env)
    store = open_session_store(config)
    made = seed(store, 400, 5)
    store.close()
    old = group.master()
    killed = []

    def kill_master(n):
        if not killed:
            old.kill()
            killed.append(old.port)

    t0 = time.monotonic()
    with pytest.raises((InterruptedDeletion, UnavailableError)) as info:
        _revoke_all(config, zt_env, progress=kill_master)
    assert info.value.exit_code == 6
    deadline = time.monotonic() + 30
    while group.master_port() == old.port:  # the sentinels elect the replica
        assert time.monotonic() < deadline, "no new master elected"
        time.sleep(0.2)
    group.wait_ok(expect_replicas=0)
    old.restart()  # back as a replica of the new master (the sentinels reconfigure it), so markers are acknowledged again
    group.wait_ok(expect_replicas=1)
    report = _revoke_all(config, zt_env, lock_wait=15)
    assert report.complete
    _check_all_refused(config, made)
    assert time.monotonic() - t0 < 60


# --- configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize("settings, message", [
    ({"mode": "cluster"}, "redis.nodes must list"),
    ({"mode": "cluster", "nodes": ["localhost"]}, "is not host:port"),
    ({"mode": "cluster", "nodes": ["redis://user:pw@h:1"]}, "no credentials"),
    ({"mode": "sentinel", "sentinels": ["127.0.0.1:1"]}, "service_name"),
    ({"mode": "ring"}, "redis.mode"),
])
def test_bad_topology_settings_are_refused(zt_env, settings, message):
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": settings})
    with pytest.raises(Exception) as info:
        open_session_store(load_config(environ=zt_env))
    assert message in str(info.value) and getattr(info.value, "exit_code", None) == 2
    assert "pw" not in str(info.value)


# --- moving a standalone deployment to a cluster --------------------------------------------------
def test_copy_standalone_sessions_to_a_cluster(redis_clean, redis_cluster, tmp_path):
    from zerotrust_admin.sessions.migrate import copy_sessions

    redis_cluster.flush()
    env = {"ZEROTRUST_HOME": str(tmp_path / "h"), "HOME": str(tmp_path), "ZEROTRUST_SESSIONS_BACKEND": "redis"}
    old = open_session_store(load_config(environ={**env, "ZEROTRUST_REDIS_URL": redis_clean}))
    new = open_session_store(load_config(environ={**env, "ZEROTRUST_REDIS_MODE": "cluster", "ZEROTRUST_REDIS_NODES": ",".join(redis_cluster.addresses)}))
    try:
        tagged = seed(old, 20, 3)
        legacy = Session(id="Ca42SCtrMOI5aN6OTx3Wz-YBnz-ACqMw", user="old@EXAMPLE.COM", created=time.time() - 5, expires=time.time() + 600)
        revoked = make_session("bob@EXAMPLE.COM", 600, now=time.time() - 5)
        old.put_many([legacy, revoked])
        old.set_marker("bob@EXAMPLE.COM", time.time())
        report = copy_sessions(old, new)
        assert report.to_dict() == {"copied": 60, "skipped_untagged": 1, "skipped_revoked": 1}
        assert new.count() == 60 and all(new.check_session(s.id) == s for s in tagged[::5])
        assert new.get(revoked.id) is None and new.get(legacy.id) is None
        assert copy_sessions(old, new).copied == 60 and new.count() == 60  # re-runnable
    finally:
        old.close()
        new.close()


# --- TLS with a client certificate, ACL user --------------------------------------------------
def test_cluster_over_tls_with_a_client_certificate_and_an_acl_user(redis_cluster_tls, zt_env, tmp_path, cli):
    group = redis_cluster_tls
    password = group.client_kwargs["password"]
    pw = tmp_path / "redis.pass"
    pw.write_text(password)
    pw.chmod(0o600)
    tls = {"ca_file": str(group.server_ca), "cert_file": str(group.client_cert), "key_file": str(group.client_key)}
    settings = {"mode": "cluster", "nodes": [f"rediss://{a}" for a in group.addresses], "username": "zt", "password_file": str(pw),
                "tls": tls, "wait_replicas": 0, "connect_timeout": 2}
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": settings})
    r = cli("sessions", "create", "--user", "alice@EXAMPLE.COM", "--ttl", "1h")
    assert r.code == 0, r.err
    r = cli("revoke-sessions", "--all", "--yes", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["revoked"] == 1 and len(out["shards"]) == 3 and "rediss-cluster://" in out["store"]
    # without the client certificate the nodes refuse the handshake
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {**settings, "tls": {"ca_file": str(group.server_ca)}}})
    r = cli("sessions", "list")
    assert r.code == 6, r.err
    # a server certificate the CA does not vouch for
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {**settings, "tls": {**tls, "ca_file": str(group.client_cert)}}})
    r = cli("sessions", "list")
    assert r.code == 6, r.err
    # the wrong password: refused (exit 4), and neither password is printed
    pw.write_text("not-the-password")
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": settings})
    r = cli("sessions", "list")
    assert r.code == 4, r.err
    assert password not in r.err and "not-the-password" not in r.err


def test_sentinel_over_tls_with_passwords_for_the_data_nodes_and_the_sentinels(zt_env, tmp_path, cli):
    from tests.redis_topologies import RedisSentinelGroup
    from tests.servers import self_signed_cert

    group = RedisSentinelGroup(password="data-" + os.urandom(6).hex(), sentinel_password="sent-" + os.urandom(6).hex(), tls=True)
    try:
        files = {}
        for name, value in (("redis.pass", group.password), ("sentinel.pass", group.sentinel_password)):
            files[name] = tmp_path / name
            files[name].write_text(value)
            files[name].chmod(0o600)
        settings = sentinel_settings(group, password_file=str(files["redis.pass"]), tls={"ca_file": str(group.ca)},
                                     sentinel_auth={"password_file": str(files["sentinel.pass"])})
        settings["redis"]["sentinels"] = [f"rediss://{a}" for a in group.sentinel_addresses]
        write_user_config(zt_env, settings)
        r = cli("sessions", "create", "--user", "alice@EXAMPLE.COM", "--ttl", "1h")
        assert r.code == 0, r.err
        r = cli("revoke-sessions", "--user", "alice@EXAMPLE.COM", "--yes", "--json")
        assert r.code == 0, r.err
        out = json.loads(r.out)
        assert out["revoked"] == 1 and out["store"].startswith("redis:rediss-sentinel://")
        # a CA that did not sign the servers' certificate: the handshake fails (exit 6)
        other_ca, _ = self_signed_cert(tmp_path / "other-ca")
        write_user_config(zt_env, {**settings, "redis": {**settings["redis"], "tls": {"ca_file": str(other_ca)}}})
        r = cli("sessions", "list")
        assert r.code == 6 and "TLS handshake" in r.err, r.err
        # without the Sentinels' password they refuse to answer: exit 4, naming the setting
        del settings["redis"]["sentinel_auth"]
        write_user_config(zt_env, settings)
        r = cli("sessions", "list")
        assert r.code == 4 and "sentinel_auth" in r.err, r.err
        assert group.password not in r.err and group.sentinel_password not in r.err
    finally:
        group.stop()


# --- the lock's fencing: a holder that lost its lock stops ---------------------------------------
def test_revoke_all_stops_at_the_next_batch_once_its_lock_is_lost(redis_clean, zt_env, monkeypatch):
    """As after a failover that lost the lock (or a lapse): another host's value is in
    the key; the renewal notices, and the run stops at its next batch (exit 7)."""
    import redis as redis_py

    from zerotrust_admin.errors import BusyError
    from zerotrust_admin.sessions import revoke

    monkeypatch.setattr(revoke, "LOCK_TTL", 1.5)  # renewal every 0.5 s
    write_user_config(zt_env, {"sessions": {"backend": "redis", "batch_size": 100}, "redis": {"url": redis_clean}})
    config = load_config(environ=zt_env)
    store = open_session_store(config)
    seed(store, 300, 2)
    store.close()
    raw = redis_py.Redis.from_url(redis_clean)
    calls = []

    def steal(n):
        calls.append(n)
        if len(calls) == 1:
            raw.set("zt:lock:revoke-sessions", "someone-else other-host 1", px=60_000)
            time.sleep(1.0)

    with pytest.raises(BusyError, match="lost") as info:
        _revoke_all(config, zt_env, progress=steal)
    assert info.value.exit_code == 7 and len(calls) == 1
    rec = audit_records(zt_env)[-1]
    assert rec["success"] is False and 0 < rec["details"]["revoked"] < 600
    assert raw.get("zt:lock:revoke-sessions") == b"someone-else other-host 1"  # never deleted another holder's lock
    raw.close()


@pytest.mark.parametrize("mode,setting", [("cluster", "redis.nodes"), ("sentinel", "redis.sentinels")])
def test_unreachable_cluster_or_sentinels_hint_names_their_setting(zt_env, monkeypatch, mode, setting):
    """Nothing listens: exit 6, and the hint names the setting the operator wrote
    (redis.nodes / redis.sentinels), not redis.url."""
    from tests.servers import free_port

    addresses = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    redis = {"mode": mode, "connect_timeout": 1, "socket_timeout": 1}
    redis.update({"nodes": addresses} if mode == "cluster" else {"sentinels": addresses, "service_name": "zt"})
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": redis})
    for key, value in zt_env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(UnavailableError) as info:
        store = open_session_store(load_config())
        store.count()
    assert info.value.exit_code == 6 and setting in (info.value.hint or ""), (info.value.message, info.value.hint)
