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

``redis.mode`` picks the deployment: ``standalone`` (one ``redis.url``),
``cluster`` (redis-py's ``RedisCluster`` over ``redis.nodes``) or ``sentinel``
(``Sentinel.master_for(redis.service_name)``, the named master checked against
``redis.nodes``: threat model S1). On a cluster every key of one user carries
the user's bucket as hash tag (``zt:{3f2}:session:<id>``, session ids start
with the same tag), so each Lua script touches one slot and ``--user`` stays
one call; ``--all`` runs every master in parallel. On a cluster and under
Sentinel markers and locks wait for a replica (``WAIT``; threat model S2).
docs/sessions.md has the schemas and the migration.

redis-py is imported inside functions: importing it costs ~110 ms.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

from zerotrust_admin.errors import ConfigError, DeniedError, UnavailableError, UsageError
from zerotrust_admin.sessions.base import (
    TAG_CHARS,
    InterruptedDeletion,
    ProgressFn,
    Session,
    StoreHelpers,
    check_namespace,
    check_session_id,
    check_user,
    id_tag,
    user_tag,
)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "zt:"
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_BATCH = 20000  # keys SCANned per server-side batch of revoke --all
DEFAULT_WAIT_TIMEOUT = 2.0  # seconds a marker write waits for its replica acknowledgements
BUCKETS = 16 ** TAG_CHARS  # 4,096 user buckets (hash tags) on a cluster

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

# Cluster: delete the sessions of up to ARGV[2] users of one bucket; every key
# carries the bucket's hash tag, so the call stays in one slot. KEYS[1] = the
# bucket's registry; ARGV = session key prefix, users per call, index key prefix.
# Returns {users, sessions, users left}.
_DELETE_BUCKET = _DELETE_USERS_BATCH.replace("return {#users, deleted}", "return {#users, deleted, redis.call('SCARD', KEYS[1])}")

# Cluster, Redis >= 7.0: the same deletion over several buckets of one master in
# one call, at most ARGV[1] users in all (the bound of one standalone batch), so
# that 4,096 buckets do not cost 4,096 calls. The buckets' keys are in different
# slots of that master, which the shebang flag allows (an older server refuses
# the script: then one call per bucket, _DELETE_BUCKET). KEYS[1] = the first
# bucket's registry (a master that no longer serves it answers MOVED); ARGV =
# users per call, then each bucket's key base ("zt:{3f2}:"). Returns {users,
# sessions, positions in the bucket list (from 1) of the buckets with users left}.
_DELETE_BUCKETS = """#!lua flags=allow-cross-slot-keys
local budget = tonumber(ARGV[1])
local done, deleted, left = 0, 0, {}
for b = 2, #ARGV do
  if done >= budget then
    left[#left + 1] = b - 1
  else
    local reg, sp, ip = ARGV[b] .. 'session-users', ARGV[b] .. 'session:', ARGV[b] .. 'session-index:'
    local users = redis.call('SPOP', reg, budget - done)
    for u = 1, #users do
      local idx = ip .. users[u]
      local ids = redis.call('SMEMBERS', idx)
      local i = 1
      while i <= #ids do
        local j = math.min(i + 4999, #ids)
        local keys = {}
        for k = i, j do keys[#keys + 1] = sp .. ids[k] end
        deleted = deleted + redis.call('DEL', unpack(keys))
        i = j + 1
      end
      redis.call('UNLINK', idx)
    end
    done = done + #users
    if redis.call('SCARD', reg) > 0 then left[#left + 1] = b - 1 end
  end
end
return {done, deleted, left}
"""
BUCKETS_PER_CALL = 64  # _DELETE_BUCKETS: buckets named in one call (its users are bounded separately)

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


MODES = ("standalone", "cluster", "sentinel")


def redis_mode(config) -> str:
    mode = str(config.get("redis.mode") or "standalone").lower()
    if mode not in MODES:
        raise ConfigError(f"redis.mode {mode!r} is not one of {', '.join(MODES)}", hint="standalone (default), cluster or sentinel")
    return mode


def redis_configured(config) -> bool:
    """Redis is in use when it is the session backend or a server is named."""
    return str(config.get("sessions.backend") or "").lower() == "redis" or bool(
        config.get("redis.url") or config.get("redis.host") or config.get("redis.nodes") or config.get("redis.sentinels"))


def key_prefix(config) -> str:
    return str(config.get("redis.key_prefix") or config.get("sessions.key_prefix") or DEFAULT_PREFIX)


def parse_address(text, what: str) -> tuple[str, int, bool]:
    """``host:port``, ``[v6]:port``, ``redis://host:port`` or ``rediss://host:port``
    -> (host, port, tls). Never carries credentials (they come from redis.password*)."""
    raw = str(text).strip()
    tls = raw.startswith("rediss://")
    if raw.startswith(("redis://", "rediss://")):
        parts = urlsplit(raw)
        if parts.username or parts.password:
            raise ConfigError(f"{what}: put no credentials in a node address", hint="use redis.username and redis.password_file")
        host, port = parts.hostname, parts.port
    else:
        host, _, port_text = raw.rpartition(":")
        host = host.strip("[]")
        try:
            port = int(port_text)
        except ValueError:
            port = None
    if not host or not port or not 0 < int(port) < 65536 or any(c in host for c in "/@ "):
        raise ConfigError(f"{what}: {safe_url(raw) if '://' in raw else raw!r} is not host:port")
    return host, int(port), tls


def _addresses(config, key: str) -> list[tuple[str, int, bool]]:
    value = config.get(key)
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key} must list at least one host:port", hint=f"e.g. {key}: [\"10.0.0.1:6379\", \"10.0.0.2:6379\"]")
    return [parse_address(v, key) for v in value]


def _common_kwargs(config, tls: bool, retries: int) -> dict:
    """Timeouts, retry, ACL user and TLS: the same for every node of every mode."""
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    kwargs = {
        "socket_timeout": float(config.get("redis.socket_timeout") or DEFAULT_SOCKET_TIMEOUT),
        "socket_connect_timeout": float(config.get("redis.connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        "health_check_interval": 0,
    }
    if config.get("redis.username"):
        kwargs["username"] = str(config.get("redis.username"))
    if tls:
        kwargs["ssl"] = True
        kwargs.update(_tls_kwargs(config, "rediss://"))
    return kwargs


def _tls_wanted(config, addresses) -> bool:
    redis_tls = config.get("redis.tls")
    return any(a[2] for a in addresses) or bool(config.get("redis.ssl")) or (isinstance(redis_tls, dict) and bool(redis_tls.get("enabled")))


def check_master_address(host: str, port: int, allowed: set[tuple[str, int]] | None, *, tls_verified: bool) -> None:
    """Threat model S1: a Sentinel's answer (the master's address) is network
    input. The client connects there and sends the Redis password, so the
    address must be one of ``redis.nodes`` when that list is set; without it,
    only a loopback address or a TLS connection that verifies the server's
    certificate is accepted."""
    import ipaddress

    if allowed is not None:
        if (host, int(port)) in allowed:
            return
        raise DeniedError(f"a Sentinel named {host}:{port} as the master, which is not in redis.nodes",
                          hint="a Sentinel answer is only trusted for the data nodes listed in redis.nodes; check the Sentinels")
    if tls_verified:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise DeniedError(f"a Sentinel named {host}:{port} as the master, and nothing vouches for it",
                          hint="list the data nodes in redis.nodes, or use TLS with certificate verification (rediss://)")


def connect(config, *, retries: int = 1):
    """A redis-py client for the configured deployment (``redis.mode``):
    ``standalone`` (``redis.url``), ``cluster`` (``RedisCluster`` over
    ``redis.nodes``) or ``sentinel`` (the master of ``redis.service_name`` as
    named by ``redis.sentinels``). Password from ``redis.password`` /
    ``redis.password_file`` / ``ZEROTRUST_REDIS_PASSWORD``, TLS per
    ``redis.tls`` / ``tls``, bounded timeouts. Returns (client, safe description)."""
    mode = redis_mode(config)
    if mode == "cluster":
        return _connect_cluster(config, retries)
    if mode == "sentinel":
        return _connect_sentinel(config, retries)
    import redis

    url = redis_url(config)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis.url {safe_url(url)!r} must start with redis://, rediss:// or unix://")
    password = config.get_secret("redis.password")
    kwargs = _common_kwargs(config, False, retries)
    if config.get("redis.db") is not None and not config.get("redis.url"):
        kwargs["db"] = int(config.get("redis.db"))
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


def _connect_cluster(config, retries: int):
    from redis.cluster import ClusterNode, RedisCluster

    nodes = _addresses(config, "redis.nodes")
    tls = _tls_wanted(config, nodes)
    kwargs = _common_kwargs(config, tls, retries)
    password = config.get_secret("redis.password")
    if password is not None:
        with password:
            kwargs["password"] = password.reveal().decode("utf-8")
    where = f"{'rediss' if tls else 'redis'}-cluster://{nodes[0][0]}:{nodes[0][1]}" + (f"+{len(nodes) - 1}" if len(nodes) > 1 else "")
    try:
        client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p, _ in nodes], require_full_coverage=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - RedisCluster connects in its constructor
        mapped = translate(exc, where)
        if mapped is None:
            raise
        raise mapped from None
    finally:
        kwargs.pop("password", None)
    return client, where


def _connect_sentinel(config, retries: int):
    from redis.sentinel import Sentinel

    sentinels = _addresses(config, "redis.sentinels")
    service = str(config.get("redis.service_name") or "")
    if not service:
        raise ConfigError("redis.mode sentinel needs redis.service_name", hint="the name the Sentinels monitor (sentinel monitor <name> ...)")
    allowed = {(h, p) for h, p, _ in _addresses(config, "redis.nodes")} if config.get("redis.nodes") else None
    tls = _tls_wanted(config, sentinels)
    kwargs = _common_kwargs(config, tls, retries)
    verified = tls and kwargs.get("ssl_cert_reqs") == "required"
    sentinel_kwargs = {k: v for k, v in kwargs.items() if k != "username"}
    if config.get("redis.sentinel_auth.username"):
        sentinel_kwargs["username"] = str(config.get("redis.sentinel_auth.username"))
    sentinel_password = config.get_secret("redis.sentinel_auth.password")
    if sentinel_password is not None:
        with sentinel_password:
            sentinel_kwargs["password"] = sentinel_password.reveal().decode("utf-8")
    password = config.get_secret("redis.password")
    if password is not None:
        with password:
            kwargs["password"] = password.reveal().decode("utf-8")
    where = f"{'rediss' if tls else 'redis'}-sentinel://{sentinels[0][0]}:{sentinels[0][1]}/{service}"

    class CheckedSentinel(Sentinel):
        def discover_master(self, service_name):
            host, port = super().discover_master(service_name)
            check_master_address(str(host), int(port), allowed, tls_verified=verified)
            return host, port

    try:
        manager = CheckedSentinel([(h, p) for h, p, _ in sentinels], sentinel_kwargs=sentinel_kwargs, **kwargs)
        client = manager.master_for(service)
    finally:
        kwargs.pop("password", None)
        sentinel_kwargs.pop("password", None)
    return client, where


def translate(exc: Exception, where: str):
    """redis-py exceptions -> our error types, with no server text in them."""
    import redis.exceptions as E

    text = str(exc)
    if isinstance(exc, DeniedError | UnavailableError | ConfigError):
        return exc
    if isinstance(exc, E.RedisClusterException):  # not a RedisError: it wraps the node's own error
        cause = exc.__cause__ or exc.__context__
        mapped = translate(cause, where) if isinstance(cause, Exception) else None
        return mapped or UnavailableError(f"Redis Cluster at {where} cannot be used ({type(exc).__name__})",
                                          hint="check redis.nodes (cluster-enabled servers, reachable) and the cluster's state (CLUSTER INFO)")
    if type(exc).__name__ == "MasterNotFoundError" and any(m in text for m in ("NOAUTH", "WRONGPASS", "NOPERM", "AuthenticationError")):
        return DeniedError(f"the Sentinels at {where} refused the credentials", hint="check redis.sentinel_auth (username, password_file)")
    if type(exc).__name__ == "MasterNotFoundError" and any(m in text for m in ("CERTIFICATE_VERIFY_FAILED", "SSL", "WRONG_VERSION_NUMBER")):
        return UnavailableError(f"TLS handshake with the Sentinels at {where} failed",
                                hint="check redis.tls.ca_file (or tls.ca_file) and that the Sentinels speak TLS on those ports")
    if type(exc).__name__ == "MasterNotFoundError":
        return UnavailableError(f"no Sentinel at {where} names a live master", hint="check redis.sentinels, redis.service_name and the Sentinels' state")
    if isinstance(exc, E.AuthenticationError) or (isinstance(exc, E.ResponseError) and text.startswith(("WRONGPASS", "NOAUTH", "NOPERM"))) \
            or isinstance(exc, E.NoPermissionError):
        return DeniedError(f"Redis at {where} refused the credentials or the command",
                           hint="check redis.password_file / ZEROTRUST_REDIS_PASSWORD and the ACL user")
    if isinstance(exc, E.ConnectionError) and any(m in text for m in ("CERTIFICATE_VERIFY_FAILED", "SSL", "TLS", "WRONG_VERSION_NUMBER")):
        return UnavailableError(f"TLS handshake with Redis at {where} failed", hint="check redis.tls.ca_file (or tls.ca_file) and that the server speaks TLS on that port")
    if isinstance(exc, (E.TimeoutError, TimeoutError)):
        return UnavailableError(f"Redis at {where} did not answer within the timeout", hint="check that redis-server is running and reachable; redis.socket_timeout")
    if isinstance(exc, (E.ConnectionError, OSError, E.ClusterDownError, E.TryAgainError)) or type(exc).__name__ in ("ClusterDownError", "MaxConnectionsError"):
        scheme = where.split("://", 1)[0]
        setting = "redis.nodes" if scheme.endswith("-cluster") else "redis.sentinels" if scheme.endswith("-sentinel") else "redis.url"
        return UnavailableError(f"Redis at {where} is unavailable (cannot connect)", hint=f"check that redis-server is running and reachable; {setting}")
    if isinstance(exc, E.ResponseError) and text.startswith(("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "LOADING", "MASTERDOWN")):
        return UnavailableError(f"Redis at {where} is failing over ({text.split(' ', 1)[0]})", hint="wait for the failover to finish, then re-run")
    if isinstance(exc, E.RedisError):
        return UnavailableError(f"Redis at {where} failed: {type(exc).__name__}")
    return None


def is_cluster(client) -> bool:
    return hasattr(client, "get_primaries") and hasattr(client, "nodes_manager")


def node_client(client, key: str):
    """A client bound to the master that owns ``key`` (the client itself off a
    cluster): ``WAIT`` must follow the write on the same connection, so a
    write that needs it goes through a pipeline of this client."""
    if not is_cluster(client):
        return client
    return client.get_redis_connection(client.get_node_from_key(key))


def wait_replicas(config, mode: str) -> int:
    """How many replicas must acknowledge a revocation marker or a lock
    (``WAIT``) before the tool goes on: ``redis.wait_replicas``, by default 1
    on a cluster or under Sentinel (a failover must not lose a marker), 0 on
    a standalone server."""
    value = config.get("redis.wait_replicas")
    if value is None:
        return 0 if mode == "standalone" else 1
    return max(0, int(value))


def wait_timeout(config) -> float:
    """``redis.wait_timeout`` (default 2 s), kept below the socket timeout so
    that a missing acknowledgement is reported as such, not as a dead server."""
    socket_timeout = float(config.get("redis.socket_timeout") or DEFAULT_SOCKET_TIMEOUT)
    return max(0.05, min(float(config.get("redis.wait_timeout") or DEFAULT_WAIT_TIMEOUT), socket_timeout * 0.8))


def from_config(config) -> "RedisSessionStore":
    from zerotrust_admin.sessions import max_ttl_seconds

    mode = redis_mode(config)
    prefix = key_prefix(config)
    if mode == "cluster" and any(c in prefix for c in "{}"):
        raise ConfigError("redis.key_prefix may not contain { or } on a cluster (they are hash-tag delimiters)")
    client, where = connect(config)
    return RedisSessionStore(client, prefix=prefix, where=where, max_ttl=max_ttl_seconds(config),
                             batch_size=int(config.get("sessions.batch_size") or DEFAULT_BATCH),
                             wait_replicas=wait_replicas(config, mode),
                             wait_timeout=wait_timeout(config))


class RedisSessionStore(StoreHelpers):
    kind = "redis"

    def __init__(self, client, *, prefix: str = DEFAULT_PREFIX, where: str = "redis", max_ttl: float = 7 * 86400, clock=time.time,
                 batch_size: int = DEFAULT_BATCH, wait_replicas: int = 0, wait_timeout: float = DEFAULT_WAIT_TIMEOUT):
        self.r = client
        self.cluster = is_cluster(client)
        self.wait_replicas = int(wait_replicas)
        self.wait_timeout_ms = max(1, int(wait_timeout * 1000))
        self.last_shards: dict[str, int] | None = None  # per-master counts of the last delete_all on a cluster
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

    # Key names. Standalone and Sentinel: the schema 1 names of docs/sessions.md.
    # Cluster: a user's keys carry the user's bucket as hash tag, "zt:{3f2}:session:<id>",
    # and a session id starts with that bucket, so one user's keys share one slot.
    def _tag(self, tag: str) -> str:
        return f"{self.prefix}{{{tag}}}:"

    def k_session(self, session_id: str) -> str:
        if self.cluster:
            return f"{self._tag(id_tag(session_id) or session_id[:TAG_CHARS])}session:{session_id}"
        return f"{self.prefix}session:{session_id}"

    def k_index(self, user: str) -> str:
        if self.cluster:
            return f"{self._tag(user_tag(user))}session-index:{user}"
        return f"{self.prefix}session-index:{user}"

    def k_users(self, tag: str | None = None) -> str:
        """The user registry (on a cluster: one per bucket, ``tag``; without
        one, the first bucket's)."""
        if self.cluster:
            return f"{self._tag(tag or '000')}session-users"
        return f"{self.prefix}session-users"

    def k_marker(self, user: str | None) -> str:
        if user is None:
            return f"{self.prefix}revoked:all"
        if self.cluster:
            return f"{self._tag(user_tag(user))}revoked:user:{user}"
        return f"{self.prefix}revoked:user:{user}"

    def k_cache(self, namespace: str, key: str) -> str:
        if self.cluster:  # a namespace in one slot: its index and entries change together
            return f"{self.prefix}cache:{{{namespace}}}:{key}"
        return f"{self.prefix}cache:{namespace}:{key}"

    def k_cache_index(self, namespace: str) -> str:
        if self.cluster:
            return f"{self.prefix}cache-index:{{{namespace}}}"
        return f"{self.prefix}cache-index:{namespace}"

    def _session_prefix(self, user: str) -> str:
        """What the Lua scripts prepend to an id to name the session key."""
        return f"{self._tag(user_tag(user))}session:" if self.cluster else f"{self.prefix}session:"

    def _session_pattern(self) -> str:
        """SCAN MATCH pattern of every session key (cluster: of any bucket)."""
        if self.cluster:
            return glob_escape(self.prefix) + "{*}:session:*"
        return glob_escape(f"{self.prefix}session:") + "*"

    def _id_of(self, key: bytes) -> str:
        text = key.decode()
        return text[text.index(":session:") + len(":session:"):] if self.cluster else text[len(self.prefix) + len("session:"):]

    def primaries(self) -> list:
        """(name, client) of every master: the cluster's primaries, or the one server."""
        if not self.cluster:
            return [(self.where, self.r)]
        return [(n.name, self.r.get_redis_connection(n)) for n in self.r.get_primaries()]

    def _node_client(self, key: str):
        return node_client(self.r, key)

    def _acknowledged(self, key: str, script_source: str, keys: list, args: list):
        """Run a script, then (when ``wait_replicas``) ``WAIT`` on the same
        connection for the replicas to hold its writes. A write they do not
        acknowledge in time raises UnavailableError (exit 6): a failover could
        lose it, so the caller must not report it as done."""
        if not self.wait_replicas:
            return self._script(script_source)(keys=keys, args=args)
        client = self._node_client(key)
        pipe = client.pipeline(transaction=False)
        pipe.eval(script_source, len(keys), *keys, *args)
        pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
        result, acks = pipe.execute()
        if int(acks) < self.wait_replicas:
            raise UnavailableError(f"Redis at {self.where}: only {int(acks)} of {self.wait_replicas} replica(s) acknowledged the write within "
                                   f"{self.wait_timeout_ms / 1000:g}s", hint="check the replicas (INFO replication); redis.wait_replicas, redis.wait_timeout; then re-run")
        return result

    def describe(self) -> str:
        return f"redis:{self.where}"

    def lock_client(self) -> dict:
        """What ``distributed_lock`` needs to take its lock through this store's
        connection (``client``, ``where``) instead of opening another one: on a
        cluster that is a second topology discovery (CLUSTER SLOTS, COMMAND).
        redis-py's clients are safe to share between threads (the lock's renewal
        runs in its own)."""
        return {"client": self.r, "where": self.where}

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
        pipe.sadd(self.k_users(user_tag(s.user)), s.user)

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
                if self.cluster and id_tag(s.id) != user_tag(s.user):
                    raise UsageError(f"session id {s.id} does not start with its user's slot tag {user_tag(s.user)}-",
                                     hint="on a Redis Cluster session ids are '<tag>-<random>' (docs/sessions.md); make them with new_session_id(user)")
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
            batch: list[str] = []
            for key in self.r.scan_iter(match=self._session_pattern(), count=1000):
                batch.append(self._id_of(key))
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
            pattern, total = self._session_pattern(), 0
            for _name, client in self.primaries():  # a keyless script: it runs on the node it is sent to
                cursor = b"0"
                while True:
                    cursor, n = client.eval(_COUNT_BATCH, 0, cursor, pattern, 10000)
                    total += int(n)
                    if cursor in (b"0", 0, "0"):
                        break
            return total

    def estimate_count(self) -> int:
        with self._io():
            return sum(int(client.dbsize()) for _name, client in self.primaries())

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
            return int(self._script(_DELETE_USER)(keys=[self.k_index(user), self.k_users(user_tag(user))], args=[self._session_prefix(user), user]))

    def revoke_user_atomically(self, user: str) -> tuple[int, float]:
        """Marker and deletion in one Lua call (atomic, one round trip): (count, marker time)."""
        check_user(user)
        at = self.clock()
        ttl_ms = max(1000, int(self.max_ttl * 1000))
        with self._io():
            deleted = self._acknowledged(self.k_index(user), _REVOKE_USER,
                                         [self.k_index(user), self.k_marker(user), self.k_users(user_tag(user))],
                                         [self._session_prefix(user), repr(float(at)), ttl_ms, user])
        return int(deleted), at

    def delete_all(self, *, batch_size: int | None = None, progress: ProgressFn | None = None) -> int:
        if self.cluster:
            return self._delete_all_cluster(batch_size=batch_size, progress=progress)
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

    def _buckets_by_primary(self) -> dict:
        """{master name: (client, [bucket tags whose slot it serves])}."""
        groups: dict = {}
        for i in range(BUCKETS):
            tag = format(i, f"0{TAG_CHARS}x")
            node = self.r.get_node_from_key(self.k_users(tag))
            if node.name not in groups:
                groups[node.name] = (self.r.get_redis_connection(node), [])
            groups[node.name][1].append(tag)
        return groups

    def _delete_all_cluster(self, *, batch_size: int | None, progress: ProgressFn | None, cross_slot: bool = True) -> int:
        """Every master at once, one thread each: its buckets' registries, then
        a SCAN + UNLINK sweep of what is left under ``zt:{*}:session*`` on that
        master. On Redis >= 7.0 (``cross_slot``) one Lua call covers up to
        BUCKETS_PER_CALL buckets and at most ``batch_size // 100`` users, like
        one standalone batch; on an older server one call per bucket (one
        slot each, pipelined). ``progress`` runs in the workers, one at a
        time, after each round trip; once it raises
        (a lost lock) every worker stops before its next one, and the error is
        raised. A master that fails does not stop the others. Per-master counts
        land in ``last_shards``."""
        import threading
        from concurrent.futures import ThreadPoolExecutor, wait

        from redis.exceptions import ResponseError

        batch_size = batch_size or self.batch_size
        per_call = max(1, batch_size // 100)
        sweep = glob_escape(self.prefix) + "{*}:session*"
        with self._io():
            groups = self._buckets_by_primary()
        counts = {name: 0 for name in groups}
        guard = threading.Lock()
        stop = threading.Event()
        stopped_by: list[BaseException] = []  # what ``progress`` raised (a lost lock)

        def add(name: str, n: int) -> None:
            """Count one round trip's deletions and report them: ``progress`` runs
            in the worker, one at a time; once it raises, every worker stops
            before its next round trip."""
            if not n:
                return
            with guard:
                counts[name] += n
                if progress is not None and not stop.is_set():
                    try:
                        progress(n)
                    except BaseException as exc:
                        stop.set()
                        stopped_by.append(exc)
                        raise

        def one_per_bucket(name: str, client, tags: list[str]) -> None:
            sha = client.script_load(_DELETE_BUCKET)
            todo = tags
            while todo:
                left = []
                for start in range(0, len(todo), 256):
                    if stop.is_set():
                        return
                    chunk = todo[start:start + 256]
                    pipe = client.pipeline(transaction=False)
                    for tag in chunk:
                        pipe.evalsha(sha, 1, self.k_users(tag), f"{self._tag(tag)}session:", per_call, f"{self._tag(tag)}session-index:")
                    deleted = 0
                    for tag, (_users, n, remaining) in zip(chunk, pipe.execute()):
                        deleted += int(n)
                        if int(remaining):
                            left.append(tag)
                    add(name, deleted)
                todo = left

        def many_per_call(name: str, client, tags: list[str], sha: str) -> None:
            todo = tags
            while todo:
                calls = [todo[i:i + BUCKETS_PER_CALL] for i in range(0, len(todo), BUCKETS_PER_CALL)]
                left = []
                for bucket_tags in calls:  # one call per round trip: Redis is blocked for one batch at a time, as on one server
                    if stop.is_set():
                        return
                    _users, deleted, rest = client.evalsha(sha, 1, self.k_users(bucket_tags[0]), per_call, *[self._tag(t) for t in bucket_tags])
                    left += [bucket_tags[int(i) - 1] for i in rest]
                    add(name, int(deleted))
                todo = left

        def work(name: str, client, tags: list[str]) -> None:
            sha = None
            if cross_slot:
                try:
                    sha = client.script_load(_DELETE_BUCKETS)
                except ResponseError:  # Redis < 7.0: no script flags
                    sha = None
            if sha is None:
                one_per_bucket(name, client, tags)
            else:
                many_per_call(name, client, tags, sha)
            cursor = 0
            while not stop.is_set():
                cursor, keys = client.scan(cursor, match=sweep, count=batch_size)
                if keys:
                    pipe = client.pipeline(transaction=False)
                    for key in keys:  # one key per command: the keys are in different slots
                        pipe.unlink(key)
                    removed = pipe.execute()
                    add(name, sum(int(r) for key, r in zip(keys, removed) if b":session:" in key))
                if int(cursor) == 0:
                    return

        try:
            with ThreadPoolExecutor(max_workers=len(groups) or 1, thread_name_prefix="revoke-shard") as pool:
                futures = {pool.submit(work, name, client, tags): name for name, (client, tags) in groups.items()}
                try:
                    wait(futures)  # a failed master does not stop the others: every session they delete is one fewer
                except BaseException:  # Ctrl-C: the workers stop before their next round trip
                    stop.set()
                    raise
        finally:
            self.last_shards = dict(counts)
        if stopped_by:
            raise stopped_by[0]
        total = sum(counts.values())
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            mapped = translate(errors[0], self.where) if isinstance(errors[0], Exception) else None
            if mapped is None:
                raise errors[0]
            failed = ", ".join(sorted(futures[f] for f in futures if f.exception() is not None))
            raise InterruptedDeletion(f"{mapped.message} (master {failed}); {total} sessions were deleted before it failed",
                                      hint="the revocation markers are set; re-run the same command to finish", done=total)
        return total

    # --- markers ---------------------------------------------------------
    def set_marker(self, user: str | None, at: float) -> None:
        if user is not None:
            check_user(user)
        ttl_ms = int((max(at, self.clock()) + self.max_ttl - self.clock()) * 1000)
        with self._io():
            self._acknowledged(self.k_marker(user), _SET_MARKER, [self.k_marker(user)], [repr(float(at)), max(ttl_ms, 1000)])

    def markers(self, user: str) -> tuple[float | None, float | None]:
        with self._io():
            if self.cluster:  # two slots: the user's bucket and the global marker's
                u, g = self.r.mget_nonatomic(self.k_marker(user), self.k_marker(None))
            else:
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
        pipe = self._node_client(idx).pipeline(transaction=False)  # a namespace is one slot on a cluster
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
