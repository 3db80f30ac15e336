"""``revoke-sessions --all`` on a real Redis Cluster (the shared 3 masters + 3
replicas of tests/conftest.py): several buckets per Lua call on Redis >= 7.0,
one call per bucket on a server that refuses script flags, the users of one
call bounded like a standalone batch, exact per-master counts, a lost lock
stopping every master, and the lock taken through the store's own connection."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.conftest import write_user_config
from tests.test_sessions_topologies import cluster_settings, seed
from zerotrust_admin.audit import AuditLog
from zerotrust_admin.config import load_config
from zerotrust_admin.errors import BusyError
from zerotrust_admin.identity import current_actor
from zerotrust_admin.sessions import open_session_store
from zerotrust_admin.sessions import redis_store
from zerotrust_admin.sessions.revoke import Target, revoke_sessions


@pytest.fixture
def cluster_store(redis_cluster, zt_env):
    redis_cluster.flush()
    write_user_config(zt_env, cluster_settings(redis_cluster))
    store = open_session_store(load_config(environ=zt_env))
    yield store
    store.close()


def _per_master(store, sessions) -> dict[str, int]:
    expected: dict[str, int] = {}
    for s in sessions:
        name = store.r.get_node_from_key(store.k_session(s.id)).name
        expected[name] = expected.get(name, 0) + 1
    return expected


def _evalsha_calls(store) -> int:
    return sum(int(c.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)) for _n, c in store.primaries())


def _registered_users(store) -> int:
    return sum(int(store._node_client(store.k_users(t)).scard(store.k_users(t))) for t in (format(i, "03x") for i in range(redis_store.BUCKETS)))


def test_one_call_covers_many_buckets_with_exact_per_master_counts(cluster_store):
    store = cluster_store
    made = seed(store, 1200, 2)
    expected = _per_master(store, made)
    before = _evalsha_calls(store)
    assert store.delete_all() == 2400
    calls = _evalsha_calls(store) - before
    masters = len(store.primaries())
    # ~1,366 buckets per master, 64 per call, 200 users per call at most: one round of calls
    assert calls <= masters * (math.ceil(redis_store.BUCKETS / masters / redis_store.BUCKETS_PER_CALL) + 1), calls
    assert store.last_shards == expected
    assert store.count() == 0 and _registered_users(store) == 0


def test_the_users_of_one_call_stay_bounded(cluster_store):
    """batch_size 100: one user per call (one call per round trip), whatever
    the buckets hold; buckets with users left come back in the next round."""
    store = cluster_store
    made = seed(store, 1200, 2)
    expected = _per_master(store, made)
    seen: list[int] = []
    assert store.delete_all(batch_size=100, progress=seen.append) == 2400
    assert sum(seen) == 2400 and max(seen) <= 1 * 2, max(seen)
    assert store.last_shards == expected
    assert store.count() == 0 and _registered_users(store) == 0


def test_a_server_refusing_script_flags_gets_one_call_per_bucket(cluster_store, monkeypatch):
    """Redis < 7.0 refuses a script with a shebang; a flag this server does not
    know is refused the same way, at SCRIPT LOAD: the deletion falls back to
    one call per bucket, with the same result."""
    store = cluster_store
    made = seed(store, 600, 3)
    expected = _per_master(store, made)
    monkeypatch.setattr(redis_store, "_DELETE_BUCKETS", "#!lua flags=no-such-flag\nreturn 1\n")
    before = _evalsha_calls(store)
    assert store.delete_all() == 1800
    assert _evalsha_calls(store) - before >= redis_store.BUCKETS  # one per bucket
    assert store.last_shards == expected
    assert store.count() == 0 and _registered_users(store) == 0


def test_a_lost_lock_stops_every_master(cluster_store):
    """The lock's check raises in the first report: every worker stops before
    its next round trip, and the per-master counts are what was deleted."""
    store = cluster_store
    seed(store, 1200, 2)

    def lost(n):
        raise BusyError("lock 'zt:lock:revoke-sessions' was lost while working")

    with pytest.raises(BusyError, match="lost"):
        store.delete_all(batch_size=100, progress=lost)
    left = store.count()
    # per master at most the call before the first report and the one in flight (one user of 2 sessions each)
    assert left >= 2400 - len(store.primaries()) * 2 * 1 * 2, left
    assert sum(store.last_shards.values()) == 2400 - left


def test_revoke_all_takes_its_lock_through_the_store_connection(cluster_store, zt_env, monkeypatch):
    store = cluster_store
    config = load_config(environ=zt_env)
    seed(store, 30, 2)
    opened = []
    real_connect = redis_store.connect
    monkeypatch.setattr(redis_store, "connect", lambda *a, **k: opened.append(1) or real_connect(*a, **k))
    report = revoke_sessions(store, Target("all"), config=config, audit=AuditLog(Path(zt_env["ZEROTRUST_HOME"]) / "audit.log"),
                             actor=current_actor(zt_env), notify=False)
    assert report.revoked == 60 and sum(report.shards.values()) == 60
    assert opened == []  # no second connection (on a cluster: no second topology discovery)
    assert store.r.get("zt:lock:revoke-sessions") is None  # released through the shared client...
    assert store.count() == 0  # ...which is still open for the caller
    from zerotrust_admin.sessions.lock import distributed_lock

    with distributed_lock(config, "rotate-keys", ttl=5):  # without a client the lock connects on its own
        assert opened == [1]
