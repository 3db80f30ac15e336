"""One contract suite, run against every session store: SQLite, and a real Redis
in each ``redis.mode`` (one server, a 3-master/3-replica Redis Cluster, a
Sentinel group)."""

from __future__ import annotations

import time

import pytest

from tests.redis_topologies import topology_env  # the cluster and Sentinel fixtures come from tests/conftest.py
from tests.servers import redis_clean, redis_server, redis_server_process  # noqa: F401
from zerotrust_admin.config import load_config
from zerotrust_admin.errors import DeniedError, NotFoundError, UsageError
from zerotrust_admin.sessions import STORES, Session, SessionStore, make_session, open_session_store


def store_config(tmp_path, backend: str, redis_url: str | None = None, **extra):
    env = {"ZEROTRUST_HOME": str(tmp_path / "home"), "ZEROTRUST_SESSIONS_BACKEND": backend, "HOME": str(tmp_path)}
    if redis_url:
        env["ZEROTRUST_REDIS_URL"] = redis_url
    env.update(extra)
    return load_config(environ=env)


@pytest.fixture(params=["sqlite", "redis", "redis-cluster", "redis-sentinel"])
def store(request, tmp_path):
    backend, _, mode = request.param.partition("-")
    extra = topology_env(mode or "standalone", request) if backend == "redis" else {}
    s = open_session_store(store_config(tmp_path, backend, **extra))
    assert s.kind == backend and getattr(s, "cluster", False) == (mode == "cluster")
    yield s
    s.close()


def test_every_registered_store_is_tested():
    assert set(STORES) == {"sqlite", "redis"}


def test_store_satisfies_protocol(store):
    assert isinstance(store, SessionStore)
    store.ping()
    assert store.kind in store.describe()


def test_put_get_roundtrip(store):
    s = make_session("alice@EXAMPLE.COM", 3600, "10.1.2.3")
    store.put(s)
    got = store.get(s.id)
    assert got == s
    assert store.get("no-such-session-id") is None


def test_source_ip_optional(store):
    s = make_session("bob@EXAMPLE.COM", 60)
    store.put(s)
    assert store.get(s.id).source_ip is None


def test_list_and_count_by_user(store):
    now = time.time()
    alice = [make_session("alice@EXAMPLE.COM", 3600, now=now + i) for i in range(5)]
    bob = [make_session("bob@EXAMPLE.COM", 3600) for _ in range(3)]
    assert store.put_many(alice + bob) == 8
    assert [s.id for s in store.list("alice@EXAMPLE.COM")] == [s.id for s in alice]
    assert store.count("alice@EXAMPLE.COM") == 5
    assert store.count("bob@EXAMPLE.COM") == 3
    assert store.count("carol@EXAMPLE.COM") == 0
    assert store.count() == 8
    assert {s.id for s in store.list()} == {s.id for s in alice + bob}
    assert len(list(store.list(limit=2))) == 2
    assert store.estimate_count() >= 8


def test_record_expires_with_the_session(store):
    s = make_session("alice@EXAMPLE.COM", 1.0)
    store.put(s)
    assert store.get(s.id) is not None
    time.sleep(1.2)
    assert store.get(s.id) is None
    assert store.count("alice@EXAMPLE.COM") == 0
    assert list(store.list("alice@EXAMPLE.COM")) == []


def test_already_expired_session_is_invisible(store):
    s = make_session("alice@EXAMPLE.COM", 60, now=time.time() - 120)
    store.put(s)
    assert store.get(s.id) is None


def test_delete_session(store):
    a, b = make_session("alice@EXAMPLE.COM", 3600), make_session("alice@EXAMPLE.COM", 3600)
    store.put_many([a, b])
    assert store.delete_session(a.id) == a
    assert store.get(a.id) is None
    assert store.delete_session(a.id) is None
    assert [s.id for s in store.list("alice@EXAMPLE.COM")] == [b.id]


def test_delete_user_leaves_others(store):
    store.put_many([make_session("alice@EXAMPLE.COM", 3600) for _ in range(7)])
    keep = make_session("bob@EXAMPLE.COM", 3600)
    store.put(keep)
    assert store.delete_user("alice@EXAMPLE.COM") == 7
    assert store.count("alice@EXAMPLE.COM") == 0
    assert store.get(keep.id) == keep
    assert store.delete_user("alice@EXAMPLE.COM") == 0


def test_delete_all_streams_and_reports(store):
    sessions = [make_session(f"user{i % 13}@EXAMPLE.COM", 3600) for i in range(250)]
    store.put_many(sessions, batch_size=40)
    seen = []
    assert store.delete_all(batch_size=50, progress=seen.append) == 250
    assert sum(seen) == 250
    assert store.count() == 0
    assert all(store.count(f"user{i}@EXAMPLE.COM") == 0 for i in range(13))
    assert store.delete_all() == 0


def test_delete_all_keeps_markers_and_cache(store):
    store.put(make_session("alice@EXAMPLE.COM", 3600))
    store.cache_put("aws", "alice|role", b"sealed", 60)
    store.set_marker("alice@EXAMPLE.COM", 100.0)
    store.delete_all()
    assert store.cache_get("aws", "alice|role") == b"sealed"
    assert store.markers("alice@EXAMPLE.COM")[0] == 100.0


def test_markers_refuse_older_sessions(store):
    old = make_session("alice@EXAMPLE.COM", 3600, now=time.time() - 10)
    store.put(old)
    assert store.markers("alice@EXAMPLE.COM") == (None, None)
    assert store.check_session(old.id) == old
    store.set_marker("alice@EXAMPLE.COM", time.time())
    assert store.is_revoked(old)
    with pytest.raises(DeniedError):
        store.check_session(old.id)
    newer = make_session("alice@EXAMPLE.COM", 3600, now=time.time() + 1)
    assert not store.is_revoked(newer)
    other = make_session("bob@EXAMPLE.COM", 3600, now=time.time() - 10)
    assert not store.is_revoked(other)


def test_global_marker_refuses_everyone(store):
    bob = make_session("bob@EXAMPLE.COM", 3600, now=time.time() - 5)
    store.put(bob)
    store.set_marker(None, time.time())
    assert store.markers("bob@EXAMPLE.COM")[1] is not None
    assert store.is_revoked(bob)


def test_marker_never_moves_backwards(store):
    store.set_marker("alice@EXAMPLE.COM", 2000.0)
    store.set_marker("alice@EXAMPLE.COM", 1000.0)
    assert store.markers("alice@EXAMPLE.COM")[0] == 2000.0
    store.set_marker("alice@EXAMPLE.COM", 3000.5)
    assert store.markers("alice@EXAMPLE.COM")[0] == 3000.5


def test_check_session_missing(store):
    with pytest.raises(NotFoundError):
        store.check_session("abcdefgh12345678")
    with pytest.raises(UsageError):
        store.check_session("bad id!")


def test_cache_roundtrip_and_expiry(store):
    blob = bytes(range(256))
    store.cache_put("aws", "alice@EXAMPLE.COM|arn:aws:iam::1:role/x", blob, 60)
    assert store.cache_get("aws", "alice@EXAMPLE.COM|arn:aws:iam::1:role/x") == blob
    assert store.cache_get("other", "alice@EXAMPLE.COM|arn:aws:iam::1:role/x") is None
    store.cache_put("aws", "short", b"x", 0.5)
    time.sleep(0.7)
    assert store.cache_get("aws", "short") is None
    assert store.cache_delete("aws", "alice@EXAMPLE.COM|arn:aws:iam::1:role/x") is True
    assert store.cache_delete("aws", "alice@EXAMPLE.COM|arn:aws:iam::1:role/x") is False


def test_cache_delete_prefix_is_literal(store):
    for key in ("alice|r1", "alice|r2", "alice*|r3", "alicex|r4", "bob|r1"):
        store.cache_put("aws", key, key.encode(), 60)
    store.cache_put("other", "alice|r1", b"o", 60)
    assert store.cache_delete_prefix("aws", "alice|") == 2
    assert store.cache_get("aws", "alice*|r3") == b"alice*|r3"
    assert store.cache_delete_prefix("aws", "alice*") == 1
    assert store.cache_get("aws", "alicex|r4") == b"alicex|r4"
    assert store.cache_get("other", "alice|r1") == b"o"
    assert store.cache_delete_prefix("aws", "") == 2
    assert store.cache_get("aws", "bob|r1") is None


def test_rejects_bad_names(store):
    with pytest.raises(UsageError):
        store.put(Session(id="x y", user="alice", created=time.time(), expires=time.time() + 5))
    with pytest.raises(UsageError):
        store.put(Session(id="abcdefgh1234", user="al ice", created=time.time(), expires=time.time() + 5))
    with pytest.raises(UsageError):
        store.cache_put("bad ns", "k", b"v", 5)


def test_atomic_user_revocation_when_offered(store):
    atomic = getattr(store, "revoke_user_atomically", None)
    assert atomic is not None  # both stores offer it; revoke.execute falls back when a store does not
    old = make_session("alice@EXAMPLE.COM", 3600, now=time.time() - 1)
    keep = make_session("bob@EXAMPLE.COM", 3600)
    store.put_many([old, make_session("alice@EXAMPLE.COM", 3600, now=time.time() - 2), keep])
    count, at = atomic("alice@EXAMPLE.COM")
    assert count == 2 and abs(at - time.time()) < 5
    assert store.count("alice@EXAMPLE.COM") == 0 and store.get(keep.id) == keep
    assert store.markers("alice@EXAMPLE.COM")[0] == at and store.is_revoked(old)
    assert atomic("alice@EXAMPLE.COM")[0] == 0


def test_delete_all_catches_unregistered_sessions(store, request):
    """Sessions a broker wrote without the user registry (Redis) are swept too."""
    store.put_many([make_session(f"u{i}@EXAMPLE.COM", 3600) for i in range(30)])
    if store.kind == "redis":
        store.r.delete(store.k_users())  # as if an older broker never registered users
        store.r.hset(store.k_session("orphan-session-1"), mapping={"user": "x@EXAMPLE.COM", "created": "1", "expires": str(time.time() + 60)})
        expected = 31
    else:
        expected = 30
    assert store.delete_all(batch_size=20) == expected
    assert store.count() == 0
