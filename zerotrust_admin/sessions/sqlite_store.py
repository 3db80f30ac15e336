"""The embedded session store: one SQLite file, ``$ZEROTRUST_HOME/sessions.db``
(mode 0600), for single-host deployments and as the default.

Schema (docs/sessions.md): ``sessions`` (indexed by user and by expiry),
``markers`` (revocation markers), ``cache`` (opaque blobs with expiry).
Expired rows are invisible to reads and purged on open and on writes.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Iterator

from zerotrust_admin import fsutil
from zerotrust_admin.errors import BusyError, UnavailableError, ZeroTrustError
from zerotrust_admin.sessions.base import (
    ProgressFn,
    Session,
    StoreHelpers,
    check_namespace,
    check_session_id,
    check_user,
)

SCHEMA_VERSION = 1
GLOBAL = "*"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    source_ip TEXT
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user, created);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
CREATE TABLE IF NOT EXISTS markers (
    scope TEXT PRIMARY KEY,      -- '{GLOBAL}' or the user name
    revoked_at REAL NOT NULL,    -- sessions created at or before this are refused
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    blob BLOB NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
"""


def from_config(config) -> "SQLiteSessionStore":
    from zerotrust_admin.sessions import max_ttl_seconds

    configured = config.get("sessions.path")
    path = Path(configured).expanduser() if configured else config.home / "sessions.db"
    return SQLiteSessionStore(path, max_ttl=max_ttl_seconds(config))


def _row(r) -> Session:
    return Session(id=r[0], user=r[1], created=r[2], expires=r[3], source_ip=r[4])


class SQLiteSessionStore(StoreHelpers):
    kind = "sqlite"

    def __init__(self, path: Path, *, max_ttl: float = 7 * 86400, clock=time.time):
        self.path = Path(path)
        self.max_ttl = float(max_ttl)
        self.clock = clock
        fsutil.ensure_private_dir(self.path.parent)
        if not os.path.lexists(self.path):
            os.close(fsutil.create_private_file(self.path))  # 0600 before SQLite opens it
        fsutil.check_private_file(self.path, what="session store")
        try:
            self.db = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA cache_size=-32768")  # 32 MiB: index pages of a 1M-session store stay cached
            self.db.executescript(_SCHEMA)
            self._purge_expired()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> ZeroTrustError:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return BusyError(f"session store {self.path} is locked by another process", hint="retry in a moment")
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return ZeroTrustError(f"session store {self.path} is not a valid session database", hint="move it aside; sessions are recreated on login")
        return UnavailableError(f"session store {self.path}: {type(exc).__name__}")

    def _tx(self):
        store = self

        class _Tx:
            def __enter__(self_inner):
                store.db.execute("BEGIN IMMEDIATE")
                return store.db

            def __exit__(self_inner, exc_type, exc, tb):
                store.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
                return False

        return _Tx()

    def _purge_expired(self) -> None:
        now = self.clock()
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            db.execute("DELETE FROM markers WHERE expires <= ?", (now,))
            db.execute("DELETE FROM cache WHERE expires <= ?", (now,))

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def ping(self) -> None:
        try:
            self.db.execute("SELECT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    # --- sessions --------------------------------------------------------
    def put(self, session: Session) -> None:
        self.put_many([session])

    def put_many(self, sessions: Iterable[Session], batch_size: int = 5000) -> int:
        total = 0
        batch: list[tuple] = []

        def flush() -> None:
            with self._tx() as db:
                db.executemany("INSERT OR REPLACE INTO sessions (id, user, created, expires, source_ip) VALUES (?, ?, ?, ?, ?)", batch)

        try:
            for s in sessions:
                batch.append((check_session_id(s.id), check_user(s.user), s.created, s.expires, s.source_ip))
                if len(batch) >= batch_size:
                    flush()
                    total += len(batch)
                    batch = []
            if batch:
                flush()
                total += len(batch)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None
        return total

    def get(self, session_id: str) -> Session | None:
        r = self.db.execute("SELECT id, user, created, expires, source_ip FROM sessions WHERE id = ? AND expires > ?",
                            (session_id, self.clock())).fetchone()
        return _row(r) if r else None

    def list(self, user: str | None = None, limit: int | None = None) -> Iterator[Session]:
        now = self.clock()
        lim = -1 if limit is None else int(limit)
        if user is None:
            cur = self.db.execute("SELECT id, user, created, expires, source_ip FROM sessions WHERE expires > ? ORDER BY user, created LIMIT ?", (now, lim))
        else:
            cur = self.db.execute("SELECT id, user, created, expires, source_ip FROM sessions WHERE user = ? AND expires > ? ORDER BY created LIMIT ?", (user, now, lim))
        for r in cur:
            yield _row(r)

    def count(self, user: str | None = None) -> int:
        now = self.clock()
        if user is None:
            return self.db.execute("SELECT count(*) FROM sessions WHERE expires > ?", (now,)).fetchone()[0]
        return self.db.execute("SELECT count(*) FROM sessions WHERE user = ? AND expires > ?", (user, now)).fetchone()[0]

    def estimate_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM sessions").fetchone()[0]

    def delete_session(self, session_id: str) -> Session | None:
        try:
            with self._tx() as db:
                r = db.execute("DELETE FROM sessions WHERE id = ? RETURNING id, user, created, expires, source_ip", (session_id,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None
        if r is None or r[3] <= self.clock():
            return None
        return _row(r)

    def delete_user(self, user: str) -> int:
        try:
            with self._tx() as db:
                return self._delete_user(db, user)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def _delete_user(self, db, user: str) -> int:
        now = self.clock()
        expiries = db.execute("DELETE FROM sessions WHERE user = ? RETURNING expires", (user,)).fetchall()
        return sum(1 for (e,) in expiries if e > now)

    def revoke_user_atomically(self, user: str) -> tuple[int, float]:
        """Marker and deletion in one transaction (the broker sees both or
        neither), so SQLite needs no before/after markers: (count, marker time)."""
        check_user(user)
        try:
            with self._tx() as db:
                count = self._delete_user(db, user)
                at = self.clock()
                self._upsert_marker(db, user, at)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None
        return count, at

    def delete_all(self, *, batch_size: int | None = None, progress: ProgressFn | None = None) -> int:
        # One transaction: SQLite's truncate optimisation drops every page at
        # once, far faster than deleting in batches, and it is all-or-nothing.
        # The count is of rows (expired ones are purged whenever the store opens).
        try:
            with self._tx() as db:
                rows = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
                db.execute("DELETE FROM sessions")
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None
        if progress:
            progress(rows)
        return rows

    # --- markers ---------------------------------------------------------
    def set_marker(self, user: str | None, at: float) -> None:
        scope = GLOBAL if user is None else check_user(user)
        try:
            with self._tx() as db:
                self._upsert_marker(db, scope, at)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def _upsert_marker(self, db, scope: str, at: float) -> None:
        expires = max(at, self.clock()) + self.max_ttl
        db.execute(
            "INSERT INTO markers (scope, revoked_at, expires) VALUES (?, ?, ?) "
            "ON CONFLICT(scope) DO UPDATE SET revoked_at = max(revoked_at, excluded.revoked_at), expires = max(expires, excluded.expires)",
            (scope, at, expires),
        )

    def markers(self, user: str) -> tuple[float | None, float | None]:
        now = self.clock()
        found = dict(self.db.execute("SELECT scope, revoked_at FROM markers WHERE scope IN (?, ?) AND expires > ?", (user, GLOBAL, now)).fetchall())
        return found.get(user), found.get(GLOBAL)

    # --- cache -----------------------------------------------------------
    def cache_put(self, namespace: str, key: str, blob: bytes, ttl_seconds: float) -> None:
        check_namespace(namespace)
        if ttl_seconds <= 0:
            return
        try:
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO cache (namespace, key, blob, expires) VALUES (?, ?, ?, ?)",
                           (namespace, key, bytes(blob), self.clock() + float(ttl_seconds)))
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def cache_get(self, namespace: str, key: str) -> bytes | None:
        r = self.db.execute("SELECT blob FROM cache WHERE namespace = ? AND key = ? AND expires > ?", (check_namespace(namespace), key, self.clock())).fetchone()
        return bytes(r[0]) if r else None

    def cache_delete(self, namespace: str, key: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM cache WHERE namespace = ? AND key = ?", (check_namespace(namespace), key)).rowcount > 0

    def cache_delete_prefix(self, namespace: str, prefix: str) -> int:
        check_namespace(namespace)
        now = self.clock()
        with self._tx() as db:
            # substr comparison, not LIKE: keys may contain % and _.
            live = db.execute("SELECT count(*) FROM cache WHERE namespace = ? AND substr(key, 1, ?) = ? AND expires > ?",
                              (namespace, len(prefix), prefix, now)).fetchone()[0]
            db.execute("DELETE FROM cache WHERE namespace = ? AND substr(key, 1, ?) = ?", (namespace, len(prefix), prefix))
        return live

    def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
            self.db = None
