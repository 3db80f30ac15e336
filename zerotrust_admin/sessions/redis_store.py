"""The Redis session store (redis-py), for multi-host deployments.

Key schema (docs/sessions.md; the broker writes the same keys), with the
default prefix ``zt:`` (``redis.key_prefix``):

    zt:session:<id>             HASH user, created, expires[, source_ip]; PEXPIREAT = expires
    zt:session-index:<user>     SET of session ids; expiry = its latest session's
    zt:session-users            SET of users that have (or had) an index
    zt:revoked:user:<user>      STRING revocation time (POSIX seconds); TTL = sessions.max_ttl
    zt:revoked:all              STRING global revocation time; TTL = sessions.max_ttl
    zt:cache:<ns>:<key>         STRING opaque blob; PX = the entry's TTL
    zt:cache-index:<ns>         SET of the namespace's cache keys
    zt:lock:<name>              STRING lock token (sessions.lock)

Revoking a user reads one index set. Revoking everything walks the user
registry server-side (SPOP a batch of users, UNLINK their sessions and index),
then sweeps what is left with a server-side SCAN MATCH ``zt:session*`` + UNLINK
(sessions a broker wrote without registering them); no key name is shipped
to the client and nothing is held in memory.

redis-py is imported inside functions: importing it costs ~110 ms.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

from zerotrust_admin.errors import ConfigError, DeniedError, UnavailableError
from zerotrust_admin.sessions.base import (
    InterruptedDeletion,
    ProgressFn,
    Session,
    StoreHelpers,
    check_namespace,
    check_session_id,
    check_user,
)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "zt:"
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_BATCH = 20000  # keys SCANned per server-side batch of revoke --all

# Server-side SCAN + UNLINK of one batch. Returns {next cursor, sessions, keys}.
_DELETE_BATCH = """
local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', tonumber(ARGV[3]))
local keys = r[2]
local sp = ARGV[4]
local n = string.len(sp)
local sessions = 0
for i = 1, #keys do
  if string.sub(keys[i], 1, n) == sp then sessions = sessions + 1 end
end
local i = 1
while i <= #keys do
  local j = math.min(i + 4999, #keys)
  redis.call('UNLINK', unpack(keys, i, j))
  i = j + 1
end
return {r[1], sessions, #keys}
"""

# Delete the sessions of one batch of registered users. KEYS[1] = registry;
# ARGV = session key prefix, users per batch, index key prefix. Returns {users, sessions}.
_DELETE_USERS_BATCH = """
local users = redis.call('SPOP', KEYS[1], tonumber(ARGV[2]))
local deleted = 0
for u = 1, #users do
  local idx = ARGV[3] .. users[u]
  local ids = redis.call('SMEMBERS', idx)
  local i = 1
  while i <= #ids do
    local j = math.min(i + 4999, #ids)
    local keys = {}
    for k = i, j do keys[#keys + 1] = ARGV[1] .. ids[k] end
    deleted = deleted + redis.call('DEL', unpack(keys))  -- small hashes: DEL frees them as fast as UNLINK would, with less overhead
    i = j + 1
  end
  redis.call('UNLINK', idx)
end
return {#users, deleted}
"""

# Count matching keys of one SCAN batch without touching them.
_COUNT_BATCH = """
local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', tonumber(ARGV[3]))
return {r[1], #r[2]}
"""

def _unlink_user_lua(registry: str, user: str) -> str:
    """Lua: UNLINK every session named in the index KEYS[1] (key prefix ARGV[1]),
    in batches of 5,000, then the index itself and the user's registry entry."""
    return f"""
local ids = redis.call('SMEMBERS', KEYS[1])
local deleted = 0
local i = 1
while i <= #ids do
  local j = math.min(i + 4999, #ids)
  local keys = {{}}
  for k = i, j do keys[#keys + 1] = ARGV[1] .. ids[k] end
  deleted = deleted + redis.call('UNLINK', unpack(keys))
  i = j + 1
end
redis.call('UNLINK', KEYS[1])
redis.call('SREM', {registry}, {user})
return deleted
"""


# Delete one user's sessions through the index. KEYS = index, registry; ARGV = session key prefix, user.
_DELETE_USER = _unlink_user_lua("KEYS[2]", "ARGV[2]")

# Marker + deletion of one user in one atomic call. KEYS = index, marker, registry;
# ARGV = session key prefix, time, marker ttl ms, user.
_REVOKE_USER = """
local cur = redis.call('GET', KEYS[2])
if (not cur) or tonumber(cur) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[3], 'GT')
end
""" + _unlink_user_lua("KEYS[3]", "ARGV[4]")

# A marker never moves backwards. KEYS[1] = marker; ARGV = time, ttl ms.
_SET_MARKER = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'GT')
end
return 1
"""


def glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def safe_url(url: str) -> str:
    """The URL without user name or password, for messages and audit records."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _tls_kwargs(config, url: str) -> dict:
    redis_tls = config.get("redis.tls")
    redis_tls = redis_tls if isinstance(redis_tls, dict) else {}
    enabled = url.startswith("rediss://") or bool(config.get("redis.ssl")) or bool(redis_tls.get("enabled"))
    if not enabled:
        return {}
    tls = {k: v for k, v in {**config.section("tls"), **redis_tls}.items() if k != "enabled"}
    from zerotrust_admin.tlspolicy import redis_kwargs  # the TLS policy: IANA cipher names mapped, AEAD only, TLS 1.2+

    return redis_kwargs({"tls": tls})


def redis_url(config) -> str:
    url = config.get("redis.url")
    if url:
        return str(url)
    if config.get("redis.host"):
        scheme = "rediss" if config.get("redis.ssl") else "redis"
        return f"{scheme}://{config.get('redis.host')}:{int(config.get('redis.port') or 6379)}/{int(config.get('redis.db') or 0)}"
    return DEFAULT_URL


def redis_configured(config) -> bool:
    """Redis is in use when it is the session backend or a server is named."""
    return str(config.get("sessions.backend") or "").lower() == "redis" or bool(config.get("redis.url") or config.get("redis.host"))


def key_prefix(config) -> str:
    return str(config.get("redis.key_prefix") or config.get("sessions.key_prefix") or DEFAULT_PREFIX)


def connect(config, *, retries: int = 1):
    """A redis-py client for the configured server: password from
    ``redis.password`` / ``redis.password_file`` / ``ZEROTRUST_REDIS_PASSWORD``,
    TLS per ``redis.tls`` / ``tls``, bounded timeouts. Returns (client, safe url)."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    url = redis_url(config)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis.url {safe_url(url)!r} must start with redis://, rediss:// or unix://")
    password = config.get_secret("redis.password")
    kwargs = {
        "socket_timeout": float(config.get("redis.socket_timeout") or DEFAULT_SOCKET_TIMEOUT),
        "socket_connect_timeout": float(config.get("redis.connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        "health_check_interval": 0,
    }
    if config.get("redis.db") is not None and not config.get("redis.url"):
        kwargs["db"] = int(config.get("redis.db"))
    if config.get("redis.username"):
        kwargs["username"] = str(config.get("redis.username"))
    if password is not None:
        with password:
            kwargs["password"] = password.reveal().decode("utf-8")
    tls_kwargs = _tls_kwargs(config, url)
    if tls_kwargs and url.startswith("redis://"):
        url = "rediss://" + url[len("redis://"):]  # redis.ssl / redis.tls.enabled on a redis:// URL
    kwargs.update(tls_kwargs)
    try:
        client = redis.Redis.from_url(url, **kwargs)
    except ValueError:
        raise ConfigError(f"redis.url {safe_url(url)!r} is not a valid Redis URL") from None
    finally:
        kwargs.pop("password", None)
    return client, safe_url(url)


def translate(exc: Exception, where: str):
    """redis-py exceptions -> our error types, with no server text in them."""
    import redis.exceptions as E

    text = str(exc)
    if isinstance(exc, E.AuthenticationError) or (isinstance(exc, E.ResponseError) and text.startswith(("WRONGPASS", "NOAUTH", "NOPERM"))) \
            or isinstance(exc, E.NoPermissionError):
        return DeniedError(f"Redis at {where} refused the credentials or the command",
                           hint="check redis.password_file / ZEROTRUST_REDIS_PASSWORD and the ACL user")
    if isinstance(exc, E.ConnectionError) and any(m in text for m in ("CERTIFICATE_VERIFY_FAILED", "SSL", "TLS", "WRONG_VERSION_NUMBER")):
        return UnavailableError(f"TLS handshake with Redis at {where} failed", hint="check redis.tls.ca_file (or tls.ca_file) and that the server speaks TLS on that port")
    if isinstance(exc, (E.TimeoutError, TimeoutError)):
        return UnavailableError(f"Redis at {where} did not answer within the timeout", hint="check that redis-server is running and reachable; redis.socket_timeout")
    if isinstance(exc, (E.ConnectionError, OSError)):
        return UnavailableError(f"Redis at {where} is unavailable (cannot connect)", hint="check that redis-server is running and reachable; redis.url")
    if isinstance(exc, E.RedisError):
        return UnavailableError(f"Redis at {where} failed: {type(exc).__name__}")
    return None


def from_config(config) -> "RedisSessionStore":
    from zerotrust_admin.sessions import max_ttl_seconds

    client, where = connect(config)
    return RedisSessionStore(client, prefix=key_prefix(config), where=where, max_ttl=max_ttl_seconds(config),
                             batch_size=int(config.get("sessions.batch_size") or DEFAULT_BATCH))


class RedisSessionStore(StoreHelpers):
    kind = "redis"

    def __init__(self, client, *, prefix: str = DEFAULT_PREFIX, where: str = "redis", max_ttl: float = 7 * 86400, clock=time.time, batch_size: int = DEFAULT_BATCH):
        self.r = client
        self.batch_size = max(10, int(batch_size))
        self.prefix = prefix
        self.where = where
        self.max_ttl = float(max_ttl)
        self.clock = clock
        self._scripts: dict = {}

    # --- plumbing --------------------------------------------------------
    @contextmanager
    def _io(self):
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - translated or re-raised
            mapped = translate(exc, self.where)
            if mapped is None:
                raise
            raise mapped from None

    def _script(self, source: str):
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.r.register_script(source)
        return script

    def k_session(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def k_index(self, user: str) -> str:
        return f"{self.prefix}session-index:{user}"

    def k_users(self) -> str:
        return f"{self.prefix}session-users"

    def k_marker(self, user: str | None) -> str:
        return f"{self.prefix}revoked:all" if user is None else f"{self.prefix}revoked:user:{user}"

    def k_cache(self, namespace: str, key: str) -> str:
        return f"{self.prefix}cache:{namespace}:{key}"

    def k_cache_index(self, namespace: str) -> str:
        return f"{self.prefix}cache-index:{namespace}"

    def describe(self) -> str:
        return f"redis:{self.where}"

    def ping(self) -> None:
        with self._io():
            self.r.ping()

    @staticmethod
    def _decode(session_id: str, h: dict) -> Session | None:
        if not h or b"user" not in h:
            return None
        ip = h.get(b"source_ip")
        return Session(id=session_id, user=h[b"user"].decode(), created=float(h[b"created"]), expires=float(h[b"expires"]),
                       source_ip=ip.decode() if ip else None)

    # --- sessions --------------------------------------------------------
    def _queue_put(self, pipe, s: Session) -> None:
        mapping = {"user": s.user, "created": repr(float(s.created)), "expires": repr(float(s.expires))}
        if s.source_ip:
            mapping["source_ip"] = s.source_ip
        at_ms = int(s.expires * 1000)
        key, idx = self.k_session(s.id), self.k_index(s.user)
        pipe.hset(key, mapping=mapping)
        pipe.pexpireat(key, at_ms)
        pipe.sadd(idx, s.id)
        pipe.pexpireat(idx, at_ms, nx=True)  # a fresh set has no expiry: GT alone would not set one
        pipe.pexpireat(idx, at_ms, gt=True)
        pipe.sadd(self.k_users(), s.user)

    def put(self, session: Session) -> None:
        self.put_many([session])

    def put_many(self, sessions: Iterable[Session], batch_size: int = 5000) -> int:
        total = 0
        with self._io():
            pipe = self.r.pipeline(transaction=False)
            queued = 0
            for s in sessions:
                check_session_id(s.id)
                check_user(s.user)
                self._queue_put(pipe, s)
                queued += 1
                if queued >= batch_size:
                    pipe.execute()
                    total += queued
                    queued = 0
            if queued:
                pipe.execute()
                total += queued
        return total

    def get(self, session_id: str) -> Session | None:
        with self._io():
            s = self._decode(session_id, self.r.hgetall(self.k_session(session_id)))
        return s if s is not None and not s.expired(self.clock()) else None

    def _fetch(self, ids: list[str]) -> list[Session]:
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.k_session(i))
        now = self.clock()
        found = [self._decode(i, h) for i, h in zip(ids, pipe.execute())]
        return [s for s in found if s is not None and not s.expired(now)]

    def list(self, user: str | None = None, limit: int | None = None) -> Iterator[Session]:
        emitted = 0
        with self._io():
            if user is not None:
                ids = sorted(m.decode() for m in self.r.smembers(self.k_index(user)))
                sessions = []
                for start in range(0, len(ids), 1000):
                    sessions.extend(self._fetch(ids[start:start + 1000]))
                sessions.sort(key=lambda s: s.created)
                yield from sessions[:limit] if limit is not None else sessions
                return
            pattern = glob_escape(f"{self.prefix}session:") + "*"
            plen = len(self.prefix) + len("session:")
            batch: list[str] = []
            for key in self.r.scan_iter(match=pattern, count=1000):
                batch.append(key.decode()[plen:])
                if len(batch) >= 500:
                    for s in self._fetch(batch):
                        if limit is not None and emitted >= limit:
                            return
                        emitted += 1
                        yield s
                    batch = []
            for s in self._fetch(batch):
                if limit is not None and emitted >= limit:
                    return
                emitted += 1
                yield s

    def count(self, user: str | None = None) -> int:
        with self._io():
            if user is not None:
                ids = [self.k_session(m.decode()) for m in self.r.smembers(self.k_index(user))]
                return sum(self.r.exists(*ids[i:i + 1000]) for i in range(0, len(ids), 1000))
            script = self._script(_COUNT_BATCH)
            pattern = glob_escape(f"{self.prefix}session:") + "*"
            cursor, total = b"0", 0
            while True:
                cursor, n = script(args=[cursor, pattern, 10000])
                total += int(n)
                if cursor in (b"0", 0, "0"):
                    return total

    def estimate_count(self) -> int:
        with self._io():
            return int(self.r.dbsize())

    def delete_session(self, session_id: str) -> Session | None:
        with self._io():
            s = self._decode(session_id, self.r.hgetall(self.k_session(session_id)))
            if s is None:
                return None
            pipe = self.r.pipeline(transaction=False)
            pipe.unlink(self.k_session(session_id))
            pipe.srem(self.k_index(s.user), session_id)
            deleted, _ = pipe.execute()
        return s if deleted and not s.expired(self.clock()) else None

    def delete_user(self, user: str) -> int:
        with self._io():
            return int(self._script(_DELETE_USER)(keys=[self.k_index(user), self.k_users()], args=[f"{self.prefix}session:", user]))

    def revoke_user_atomically(self, user: str) -> tuple[int, float]:
        """Marker and deletion in one Lua call (atomic, one round trip): (count, marker time)."""
        check_user(user)
        at = self.clock()
        ttl_ms = max(1000, int(self.max_ttl * 1000))
        with self._io():
            deleted = self._script(_REVOKE_USER)(keys=[self.k_index(user), self.k_marker(user), self.k_users()],
                                                 args=[f"{self.prefix}session:", repr(float(at)), ttl_ms, user])
        return int(deleted), at

    def delete_all(self, *, batch_size: int | None = None, progress: ProgressFn | None = None) -> int:
        batch_size = batch_size or self.batch_size
        done = 0

        def step(script, **kwargs):
            try:
                with self._io():
                    return script(**kwargs)
            except UnavailableError as exc:
                raise InterruptedDeletion(f"{exc.message}; {done} sessions were deleted before it failed",
                                          hint="the revocation markers are set; re-run the same command to finish", done=done) from None

        # 1. the registered users, through their indexes (no keyspace scan)
        users_script = self._script(_DELETE_USERS_BATCH)
        per_batch = max(1, batch_size // 100)
        while True:
            users, sessions = step(users_script, keys=[self.k_users()], args=[f"{self.prefix}session:", per_batch, f"{self.prefix}session-index:"])
            done += int(sessions)
            if progress and sessions:
                progress(int(sessions))
            if not users:
                break
        # 2. a sweep of whatever is left under zt:session* (unregistered writers, orphans)
        scan_script = self._script(_DELETE_BATCH)
        pattern = glob_escape(f"{self.prefix}session") + "*"
        cursor = b"0"
        while True:
            cursor, sessions, _keys = step(scan_script, args=[cursor, pattern, batch_size, f"{self.prefix}session:"])
            done += int(sessions)
            if progress and sessions:
                progress(int(sessions))
            if cursor in (b"0", 0, "0"):
                return done

    # --- markers ---------------------------------------------------------
    def set_marker(self, user: str | None, at: float) -> None:
        if user is not None:
            check_user(user)
        ttl_ms = int((max(at, self.clock()) + self.max_ttl - self.clock()) * 1000)
        with self._io():
            self._script(_SET_MARKER)(keys=[self.k_marker(user)], args=[repr(float(at)), max(ttl_ms, 1000)])

    def markers(self, user: str) -> tuple[float | None, float | None]:
        with self._io():
            u, g = self.r.mget(self.k_marker(user), self.k_marker(None))
        return (float(u) if u is not None else None, float(g) if g is not None else None)

    # --- cache -----------------------------------------------------------
    def cache_put(self, namespace: str, key: str, blob: bytes, ttl_seconds: float) -> None:
        check_namespace(namespace)
        if ttl_seconds <= 0:
            return
        ms = max(1, int(ttl_seconds * 1000))
        idx = self.k_cache_index(namespace)
        at_ms = int((self.clock() + ttl_seconds) * 1000)
        with self._io():
            pipe = self.r.pipeline(transaction=True)
            pipe.set(self.k_cache(namespace, key), bytes(blob), px=ms)
            pipe.sadd(idx, key)
            pipe.pexpireat(idx, at_ms, nx=True)
            pipe.pexpireat(idx, at_ms, gt=True)
            pipe.execute()

    def cache_get(self, namespace: str, key: str) -> bytes | None:
        with self._io():
            return self.r.get(self.k_cache(check_namespace(namespace), key))

    def cache_delete(self, namespace: str, key: str) -> bool:
        with self._io():
            pipe = self.r.pipeline(transaction=True)
            pipe.unlink(self.k_cache(check_namespace(namespace), key))
            pipe.srem(self.k_cache_index(namespace), key)
            deleted, _ = pipe.execute()
        return bool(deleted)

    def cache_delete_prefix(self, namespace: str, prefix: str) -> int:
        check_namespace(namespace)
        idx = self.k_cache_index(namespace)
        deleted = 0
        with self._io():
            batch: list[bytes] = []
            for member in self.r.sscan_iter(idx, match=glob_escape(prefix) + "*", count=1000):
                batch.append(member)
                if len(batch) >= 1000:
                    deleted += self._cache_unlink(namespace, idx, batch)
                    batch = []
            if batch:
                deleted += self._cache_unlink(namespace, idx, batch)
        return deleted

    def _cache_unlink(self, namespace: str, idx: str, members: list[bytes]) -> int:
        pipe = self.r.pipeline(transaction=False)
        pipe.unlink(*[self.k_cache(namespace, m.decode()) for m in members])
        pipe.srem(idx, *members)
        return int(pipe.execute()[0])

    def close(self) -> None:
        if self.r is not None:
            try:
                self.r.close()
            except Exception:  # noqa: BLE001 - closing must not mask the real error
                pass
            self.r = None
