"""The encrypted credentials cache on a real SQLite store and a real Redis.

Served while valid, never within the safety margin or after expiry (injected
clock); another user's or role's entry is a miss; a tampered entry is a miss,
is deleted and is audited; purging a user deletes by name, never decrypting.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pytest

from tests.aws_helpers import aws_env, audit_records, base_aws, role_arn, write_config
from tests.servers import moto_server, redis_clean, redis_server, redis_server_process  # noqa: F401  (fixtures)
from zerotrust_admin.aws import cache as C
from zerotrust_admin.aws.credentials import Credentials

T0 = 1_900_000_000.0
KEY = os.urandom(32)


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


def static_keys(version=None):
    return KEY, 1


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    clock = Clock()
    if request.param == "sqlite":
        from zerotrust_admin.sessions.sqlite_store import SQLiteSessionStore

        s = SQLiteSessionStore(tmp_path / "sessions.db", clock=clock)
    else:
        url = request.getfixturevalue("redis_clean")
        import redis

        from zerotrust_admin.sessions.redis_store import RedisSessionStore

        s = RedisSessionStore(redis.Redis.from_url(url), clock=clock)
    s.test_clock = clock
    yield s
    s.close()


def creds(expires_at: float, key_id="ASIAEXAMPLE0000001") -> Credentials:
    return Credentials(key_id, "secret-" + os.urandom(8).hex(), "token-" + os.urandom(16).hex(),
                       datetime.fromtimestamp(expires_at, timezone.utc), role_arn=role_arn("Deploy"), session_name="alice@EX")


def make_cache(store, rejected=None):
    return C.CredentialCache(store, static_keys, margin=300, clock=store.test_clock,
                             on_reject=(lambda name, why: rejected.append((name, why))) if rejected is not None else None)


def test_hit_while_valid_and_never_after_the_safety_margin(store):
    cache = make_cache(store)
    c = creds(T0 + 1000)
    assert cache.put("alice@EX", "req-1", c)
    got = cache.get("alice@EX", "req-1")
    assert got is not None and got.cached
    assert (got.access_key_id, got.secret_access_key, got.session_token, got.expiration) == (c.access_key_id, c.secret_access_key, c.session_token, c.expiration)
    store.test_clock.t = T0 + 699  # 301 s left: still outside the 300 s margin
    assert cache.get("alice@EX", "req-1") is not None
    store.test_clock.t = T0 + 700  # 300 s left: inside the margin
    assert cache.get("alice@EX", "req-1") is None
    store.test_clock.t = T0 + 2000
    assert cache.get("alice@EX", "req-1") is None


def test_store_ttl_ends_a_safety_margin_before_expiry(store):
    cache = make_cache(store)
    cache.put("alice@EX", "req-1", creds(T0 + 1000))
    name = C.entry_key("alice@EX", "req-1")
    if store.kind == "redis":
        ttl = store.r.pttl(store.k_cache(C.NAMESPACE, name))
        assert 690_000 < ttl <= 700_000
    else:
        expires, = store.db.execute("SELECT expires FROM cache WHERE key = ?", (name,)).fetchone()
        assert expires == pytest.approx(T0 + 700)


def test_credentials_expiring_within_the_margin_are_not_cached(store):
    cache = make_cache(store)
    assert cache.put("alice@EX", "req-1", creds(T0 + 299)) is False
    assert store.cache_get(C.NAMESPACE, C.entry_key("alice@EX", "req-1")) is None


def test_another_users_or_roles_entry_is_a_miss(store):
    rejected = []
    cache = make_cache(store, rejected)
    cache.put("alice@EX", "role-A", creds(T0 + 1000))
    assert cache.get("bob@EX", "role-A") is None  # a different name: nothing there
    assert cache.get("alice@EX", "role-B") is None
    # Even copied under bob's name, alice's entry does not authenticate for bob.
    blob = store.cache_get(C.NAMESPACE, C.entry_key("alice@EX", "role-A"))
    store.cache_put(C.NAMESPACE, C.entry_key("bob@EX", "role-A"), blob, 600)
    assert cache.get("bob@EX", "role-A") is None
    assert len(rejected) == 1 and "does not authenticate" in rejected[0][1]
    assert store.cache_get(C.NAMESPACE, C.entry_key("bob@EX", "role-A")) is None  # deleted
    store.cache_put(C.NAMESPACE, C.entry_key("alice@EX", "role-B"), blob, 600)
    assert cache.get("alice@EX", "role-B") is None and len(rejected) == 2
    assert cache.get("alice@EX", "role-A") is not None  # the original still serves


@pytest.mark.parametrize("where", ["ciphertext", "expiry", "version", "magic", "truncated"])
def test_tampered_entry_is_a_miss_and_reported(store, where):
    rejected = []
    cache = make_cache(store, rejected)
    cache.put("alice@EX", "req-1", creds(T0 + 1000))
    name = C.entry_key("alice@EX", "req-1")
    blob = bytearray(store.cache_get(C.NAMESPACE, name))
    if where == "ciphertext":
        blob[-20] ^= 1
    elif where == "expiry":
        blob[8:16] = int(T0 + 5000).to_bytes(8, "big")  # try to extend its life
    elif where == "version":
        blob[4:8] = (2).to_bytes(4, "big")
    elif where == "magic":
        blob[0:3] = b"XX1"
    else:
        blob = blob[:20]
    store.cache_put(C.NAMESPACE, name, bytes(blob), 600)
    assert cache.get("alice@EX", "req-1") is None
    assert len(rejected) == 1
    assert store.cache_get(C.NAMESPACE, name) is None


def test_purging_a_user_deletes_only_their_entries_without_any_key(store):
    cache = make_cache(store)
    for req in ("r1", "r2", "r3"):
        cache.put("alice@EX", req, creds(T0 + 1000))
    cache.put("bob@EX", "r1", creds(T0 + 1000))
    cache.put("alice@EX.evil", "r1", creds(T0 + 1000))  # a name alice@EX is a prefix of

    def no_key(version=None):
        raise AssertionError("purging must not need the cache key")

    assert C.CredentialCache(store, no_key).purge_user("alice@EX") == 3
    assert all(cache.get("alice@EX", r) is None for r in ("r1", "r2", "r3"))
    assert cache.get("bob@EX", "r1") is not None and cache.get("alice@EX.evil", "r1") is not None


def test_entry_names_carry_no_principal_or_role():
    name = C.entry_key("alice@EXAMPLE.COM", json.dumps({"role": role_arn("Deploy")}))
    assert "alice" not in name and "Deploy" not in name and name.startswith(C.user_prefix("alice@EXAMPLE.COM"))


# --- through the service, with the real vault key and the audit log --------------------------
def test_tampered_entry_through_get_credentials_is_audited_and_reissued(tmp_path, zt_env, cli, moto_server, monkeypatch):
    from zerotrust_admin.aws.runtime import Runtime
    from zerotrust_admin.aws.service import get_credentials
    from zerotrust_admin.config import load_config

    cfg = write_config(tmp_path / "cfg" / "config.yaml", base_aws(moto_server.endpoint_url))
    assert cli("init").code == 0
    env = {**zt_env, "ZEROTRUST_CONFIG": str(cfg), **aws_env(moto_server)}
    rt = Runtime(load_config(None, env), environ=env)
    try:
        first = get_credentials(rt, role_arn("Deploy"))
        first_key = first.access_key_id
        assert get_credentials(rt, role_arn("Deploy")).access_key_id == first_key  # a hit
        store = rt.session_store()
        name, = [k for k in _cache_keys(store)]
        blob = bytearray(store.cache_get(C.NAMESPACE, name))
        blob[-1] ^= 0x80
        store.cache_put(C.NAMESPACE, name, bytes(blob), 600)
        again = get_credentials(rt, role_arn("Deploy"))
        assert again.access_key_id != first_key and not again.cached
    finally:
        rt.close()
    home = tmp_path / "home"
    records = [r for r in audit_records(home) if r["event"] == "credential_issue"]
    assert [(r["action"], r["success"]) for r in records] == [("issue", True), ("issue", True), ("cache_reject", False), ("issue", True)]
    assert records[2]["level"] == "warning" and "does not authenticate" in records[2]["details"]["problem"]
    # the cache key lives in the vault under its reserved name
    r = cli("vault", "list", "_zerotrust/", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert C.KEY_NAME in r.text


def _cache_keys(store):
    rows = store.db.execute("SELECT key FROM cache WHERE namespace = ?", (C.NAMESPACE,)).fetchall()
    return [r[0] for r in rows]


# --- the Credentials object ------------------------------------------------------------------
def test_credentials_redact_wipe_and_render():
    import pickle

    c = creds(T0 + 3600)
    secret, token = c.secret_access_key, c.session_token
    for text in (repr(c), str(c), json.dumps(c.metadata())):
        assert secret not in text and token not in text
    doc = json.loads(c.process_json())
    assert doc == {"Version": 1, "AccessKeyId": c.access_key_id, "SecretAccessKey": secret, "SessionToken": token,
                   "Expiration": datetime.fromtimestamp(T0 + 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert f"export AWS_SECRET_ACCESS_KEY={secret}\n" in c.env_lines()
    with pytest.raises(TypeError):
        pickle.dumps(c)
    with c:
        assert c.session_token == token
    assert c.wiped and "<wiped>" in repr(c)
    with pytest.raises(ValueError):
        c.secret_access_key
    with pytest.raises(ValueError):
        c.session_token
