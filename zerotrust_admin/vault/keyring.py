"""The key hierarchy inside the vault: data keys, the head key, session keys,
and the master key switch (rewrap)."""

from __future__ import annotations

import json
import os
from typing import Iterable

from zerotrust_admin.crypto import DecryptionFailed, constant_time_equal, open_sealed, random_key, seal
from zerotrust_admin.errors import IntegrityError, NotFoundError
from zerotrust_admin.keys import KeySource, UnwrapFailed
from zerotrust_admin.secret import Secret
from zerotrust_admin.timeutil import rfc3339
from zerotrust_admin.vault import format as fmt
from zerotrust_admin.vault.records import DekInfo, SessionKeyInfo
from zerotrust_admin.vault.schema import _db_errors


class KeyringMixin:
    # --- keys --------------------------------------------------------------
    def _dek(self, dek_id: str) -> bytes:
        cached = self._deks.get(dek_id)
        if cached is not None:
            return cached
        with _db_errors(self.path):
            row = self._conn.execute("SELECT wrapped, master_key_id FROM deks WHERE id = ?", (dek_id,)).fetchone()
        if row is None:
            raise IntegrityError(f"data key {dek_id} referenced by the vault is missing", hint="restore the vault from a backup")
        wrapped, master_key_id = row
        if master_key_id != self.master_key_id:
            self._refresh_master()
        try:
            dek = self._key_source.unwrap(wrapped, fmt.dek_aad(self.vault_id, dek_id, master_key_id))
        except UnwrapFailed:
            # The key check value proved the master key right, so this is tampering.
            raise IntegrityError(f"data key {dek_id} does not authenticate (tampered vault)", hint="restore the vault from a backup") from None
        self._deks[dek_id] = dek
        return dek

    def _active_dek_id(self) -> str:
        row = self._conn.execute("SELECT id, master_key_id, created, state, mac FROM deks WHERE state = 'active' ORDER BY created DESC, id DESC LIMIT 1").fetchone()
        if row is None:
            raise IntegrityError("the vault has no active data key", hint="restore the vault from a backup")
        self._check_dek_row(*row)
        return row[0]


    # --- key hierarchy (issue 3): additive; used by zerotrust_admin.rotation ---------
    @property
    def key_source(self) -> KeySource:
        return self._key_source

    def reload_meta(self) -> dict:
        """The meta records as they are in the file now, authenticated (meta MAC)."""
        with _db_errors(self.path):
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("master_key_id") != self.master_key_id:
            self._refresh_master()  # rotated by another process: reopen the new master key first
            meta = dict(self._meta)
        self._check_meta(meta)
        self._meta = meta
        return dict(self._meta)

    def list_deks(self) -> list["DekInfo"]:
        """Every data key with its state and how many secret versions it seals."""
        with self._read_txn() as conn:
            rows = conn.execute(
                "SELECT d.id, d.master_key_id, d.created, d.state, d.mac, "
                "(SELECT COUNT(*) FROM versions v WHERE v.dek_id = d.id) FROM deks d ORDER BY d.created, d.id"
            ).fetchall()
        for r in rows:  # rotation decides on created/state: only authenticated values
            self._check_dek_row(*r[:5])
        return [DekInfo(r[0], r[1], r[2], r[3], r[5]) for r in rows]

    def active_dek(self) -> "DekInfo":
        with _db_errors(self.path):
            dek_id = self._active_dek_id()
        return next(d for d in self.list_deks() if d.id == dek_id)

    def add_dek(self) -> tuple[str, list[str]]:
        """Make a new data key active for writes; the old active keys become
        'retired' (they still decrypt until nothing refers to them). One transaction."""
        new_id = os.urandom(8).hex()
        dek = random_key()
        with self._write_txn() as conn:
            self._check_master_unchanged(conn)
            self._maintenance_check(conn)
            active = conn.execute("SELECT id, master_key_id, created FROM deks WHERE state = 'active'").fetchall()
            retired = [r[0] for r in active]
            conn.executemany("UPDATE deks SET state = 'retired', mac = ? WHERE id = ?",
                             [(self._dek_mac(i, mk, created, "retired"), i) for i, mk, created in active])
            now = rfc3339()
            conn.execute(
                "INSERT INTO deks (id, wrapped, master_key_id, created, state, mac) VALUES (?, ?, ?, ?, 'active', ?)",
                (new_id, self._key_source.wrap(dek, fmt.dek_aad(self.vault_id, new_id, self.master_key_id)), self.master_key_id, now,
                 self._dek_mac(new_id, self.master_key_id, now, "active")),
            )
        self._deks[new_id] = dek
        return new_id, retired

    def pending_reencryption(self) -> int:
        """How many secret versions are still sealed under a retired data key."""
        with _db_errors(self.path):
            # V2 (F5): from the table itself (NOT INDEXED): a planted index root page must not make this 0.
            return self._conn.execute(
                "SELECT COUNT(*) FROM versions NOT INDEXED WHERE dek_id IN (SELECT id FROM deks WHERE state = 'retired')"
            ).fetchone()[0]

    def reencrypt_batch(self, limit: int = 2000) -> int:
        """Re-seal up to ``limit`` versions from retired data keys under the active
        one, in one short transaction (so reads and writes of other processes
        interleave between batches). Returns how many were moved; 0 means done."""
        with self._write_txn() as conn:
            self._check_all_buckets(conn)  # O(n) once per process: the result is kept until another process writes
            target = self._active_dek_id()
            rows = conn.execute(
                "SELECT v.name, v.version, v.dek_id, v.sealed, v.created, v.created_by, v.size, v.metadata, v.mac, s.incarnation "
                "FROM versions v NOT INDEXED JOIN secrets s ON s.name = v.name "
                "WHERE v.dek_id IN (SELECT id FROM deks WHERE state = 'retired') LIMIT ?",
                (limit,),
            ).fetchall()
            if not rows:
                return 0
            new_key = self._dek(target)
            updates = []
            for name, version, dek_id, sealed, created, created_by, size, metadata_json, mac, incarnation in rows:
                # Re-sealing must not bless an edited row: its MAC and its ciphertext are checked first.
                expected = self._version_mac(name, incarnation, version, dek_id, created, created_by, size, metadata_json, sealed)
                if not isinstance(mac, str) or not constant_time_equal(expected.encode(), mac.encode()):
                    raise IntegrityError(f"secret {name!r} version {version}: its record does not authenticate (tampered vault)", hint="restore the vault from a backup")
                try:
                    plaintext = open_sealed(self._dek(dek_id), sealed, fmt.secret_aad(self.vault_id, name, version, dek_id, metadata_json))
                except DecryptionFailed:
                    raise IntegrityError(f"secret {name!r} version {version} does not authenticate (tampered or moved record)", hint="restore the vault from a backup") from None
                resealed = seal(new_key, plaintext, fmt.secret_aad(self.vault_id, name, version, target, metadata_json))
                updates.append((target, resealed, self._version_mac(name, incarnation, version, target, created, created_by, size, metadata_json, resealed),
                                name, version, dek_id))
            conn.executemany("UPDATE versions SET dek_id = ?, sealed = ?, mac = ? WHERE name = ? AND version = ? AND dek_id = ?", updates)
            return len(updates)

    def _maintenance_check(self, conn) -> None:
        """V2 (F5), before a decision that destroys or skips data (rotation, purge,
        destroy): ``PRAGMA quick_check`` must say ok, and every index must hold
        exactly the rows of its table (a root page pointed at another b-tree
        passes the schema check but not this). O(n)."""
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            detail = "; ".join(line for p in problems for line in str(p).splitlines() if not line.startswith("***"))
            raise IntegrityError(f"the vault {self.path} fails SQLite's quick_check ({detail}); nothing was changed", hint="restore the vault from a backup")
        for index, table, column in (("versions_by_dek", "versions", "dek_id"), ("secrets_by_bucket", "secrets", "bucket")):
            rows = conn.execute(f"SELECT COUNT(*) FROM {table} NOT INDEXED").fetchone()[0]  # nosec B608 - table and index names come from a constant tuple
            indexed = conn.execute(f"SELECT COUNT(*) FROM {table} INDEXED BY {index} WHERE {column} IS NOT NULL").fetchone()[0]  # nosec B608 - table and index names come from a constant tuple
            if rows != indexed:
                raise IntegrityError(f"the vault {self.path}: index {index} holds {indexed} row(s) but table {table} holds {rows} "
                                     "(an altered index root page?); nothing was changed", hint="restore the vault from a backup")

    def purge_retired_deks(self) -> list[str]:
        """Delete retired data keys that no version refers to any more (their
        pages are zeroed by secure_delete). Returns the ids removed."""
        with self._write_txn() as conn:
            self._maintenance_check(conn)
            # V2 (F5): which keys still seal a version is read from the table (NOT INDEXED), never an index.
            used = {r[0] for r in conn.execute("SELECT DISTINCT dek_id FROM versions NOT INDEXED")}
            ids = [r[0] for r in conn.execute("SELECT id FROM deks WHERE state = 'retired'").fetchall() if r[0] not in used]
            conn.executemany("DELETE FROM deks WHERE id = ?", [(i,) for i in ids])
            if ids:
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (fmt.META_DEK_ROTATED, rfc3339()))
        for dek_id in ids:
            self._deks.pop(dek_id, None)
        return ids

    def set_meta(self, updates: dict[str, str], deletes: Iterable[str] = ()) -> None:
        """Write optional meta records (never the core ones) in one transaction."""
        protected = {"format", "vault_id", "master_source", "master_params", "master_key_id", "kcv", "master_created", fmt.META_HEAD_KEY,
                     fmt.META_AUDIT_BINDING} | fmt.META_UNMACED
        if protected & (set(updates) | set(deletes)):
            raise ValueError("core meta records change only through rewrap_master")
        if any("\x00" in str(k) + str(v) for k, v in updates.items()):
            raise ValueError("meta records cannot hold NUL bytes (the meta MAC input separates fields with NUL)")
        with self._write_txn() as conn:
            conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(updates.items()))
            conn.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in deletes])
        for k in deletes:
            self._meta.pop(k, None)
        self._meta.update(updates)

    def _check_master_unchanged(self, conn) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'master_key_id'").fetchone()
        if row is None or row[0] != self.master_key_id:
            from zerotrust_admin.errors import BusyError

            raise BusyError("the vault's master key was changed by another process while this one ran", hint="re-run the command")

    def rewrap_master(self, new_source: KeySource, new_kind: str, new_params: dict, *, retiring: dict | None = None) -> dict:
        """Re-wrap every data key and session key under ``new_source`` and switch
        the vault's master key records (id, source, params, key check value,
        created), all in ONE transaction: a crash leaves the old master key in
        force or the new one, never a mix. Cost: one unwrap + one wrap per data
        key, independent of the number of secrets."""
        new_id = new_source.key_id
        now = rfc3339()
        old_id = self.master_key_id
        with self._write_txn() as conn:
            self._check_master_unchanged(conn)
            deks = conn.execute("SELECT id, wrapped, master_key_id, created, state FROM deks").fetchall()
            rewrapped = []
            for dek_id, wrapped, mk, created, state in deks:
                plain = self._unwrap_or_integrity(wrapped, fmt.dek_aad(self.vault_id, dek_id, mk), f"data key {dek_id}")
                rewrapped.append((new_source.wrap(plain, fmt.dek_aad(self.vault_id, dek_id, new_id)), new_id,
                                  self._dek_mac(dek_id, new_id, created, state), dek_id))
            conn.executemany("UPDATE deks SET wrapped = ?, master_key_id = ?, mac = ? WHERE id = ?", rewrapped)
            session_rows = []
            if self._has_table(conn, "session_keys"):
                for key_id, wrapped, mk, created, state in conn.execute("SELECT id, wrapped, master_key_id, created, state FROM session_keys").fetchall():
                    plain = self._unwrap_or_integrity(wrapped, fmt.session_key_aad(self.vault_id, key_id, mk), f"session key {key_id}")
                    session_rows.append((new_source.wrap(plain, fmt.session_key_aad(self.vault_id, key_id, new_id)), new_id,
                                         self._session_mac(key_id, new_id, created, state), key_id))
                conn.executemany("UPDATE session_keys SET wrapped = ?, master_key_id = ?, mac = ? WHERE id = ?", session_rows)
            head_key = self._unwrap_or_integrity(bytes.fromhex(self._meta[fmt.META_HEAD_KEY]), fmt.head_key_aad(self.vault_id, old_id), "head key")
            params = {k: v for k, v in new_params.items() if k != "key_id"}
            meta = {
                fmt.META_HEAD_KEY: new_source.wrap(head_key, fmt.head_key_aad(self.vault_id, new_id)).hex(),
                "master_source": new_kind,
                "master_params": json.dumps(params, sort_keys=True),
                "master_key_id": new_id,
                "master_created": now,
                "kcv": new_source.wrap(fmt.KCV_PLAINTEXT, fmt.kcv_aad(self.vault_id, new_id)).hex(),
            }
            if retiring is not None:
                meta[fmt.META_MASTER_RETIRING] = json.dumps(retiring, sort_keys=True)
            conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(meta.items()))
            conn.execute("DELETE FROM meta WHERE key = ?", (fmt.META_MASTER_PENDING,))
        old_source = self._key_source
        self._key_source = new_source
        self._meta.update(meta)
        self._meta.pop(fmt.META_MASTER_PENDING, None)
        if old_source is not new_source:
            old_source.close()
        return {"old_master_key_id": old_id, "new_master_key_id": new_id, "data_keys": len(rewrapped), "session_keys": len(session_rows)}

    def _unwrap_or_integrity(self, wrapped: bytes, aad: bytes, what: str) -> bytes:
        try:
            return self._key_source.unwrap(wrapped, aad)
        except UnwrapFailed:
            raise IntegrityError(f"{what} does not authenticate (tampered vault)", hint="restore the vault from a backup") from None

    @staticmethod
    def _has_table(conn, name: str) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    # --- session keys: a ring of current + previous, wrapped by the master key -----
    def session_keys(self) -> list["SessionKeyInfo"]:
        with _db_errors(self.path):
            if not self._has_table(self._conn, "session_keys"):
                return []
            rows = self._conn.execute("SELECT id, master_key_id, created, state, mac FROM session_keys ORDER BY created DESC, id DESC").fetchall()
        for r in rows:
            self._check_session_row(*r)
        return [SessionKeyInfo(r[0], r[2], r[3]) for r in rows]

    def session_key(self, key_id: str) -> Secret:
        with _db_errors(self.path):
            row = None
            if self._has_table(self._conn, "session_keys"):
                row = self._conn.execute("SELECT wrapped, master_key_id, created, state, mac FROM session_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"session key {key_id} not found (rotated out of the ring)")
        self._check_session_row(key_id, *row[1:])
        if row[1] != self.master_key_id:
            self._refresh_master()
        return Secret(self._unwrap_or_integrity(row[0], fmt.session_key_aad(self.vault_id, key_id, row[1]), f"session key {key_id}"))

    def rotate_session_key(self, *, only_if_missing: bool = False) -> tuple[str | None, str | None, list[str]]:
        """New current session key; the current one becomes previous; older ones
        are deleted. Returns (new id, previous id, removed ids). With
        ``only_if_missing`` nothing happens when a current key exists."""
        new_id = os.urandom(8).hex()
        key = random_key()
        with self._write_txn() as conn:
            self._check_master_unchanged(conn)
            conn.execute(fmt.SESSION_KEYS_SCHEMA)
            current = conn.execute("SELECT id FROM session_keys WHERE state = 'current'").fetchone()
            if only_if_missing and current is not None:
                return None, current[0], []
            removed = [r[0] for r in conn.execute("SELECT id FROM session_keys WHERE state = 'previous'").fetchall()]
            conn.execute("DELETE FROM session_keys WHERE state = 'previous'")
            demoted = conn.execute("SELECT id, master_key_id, created FROM session_keys WHERE state = 'current'").fetchall()
            conn.executemany("UPDATE session_keys SET state = 'previous', mac = ? WHERE id = ?",
                             [(self._session_mac(i, mk, created, "previous"), i) for i, mk, created in demoted])
            now = rfc3339()
            conn.execute(
                "INSERT INTO session_keys (id, wrapped, master_key_id, created, state, mac) VALUES (?, ?, ?, ?, 'current', ?)",
                (new_id, self._key_source.wrap(key, fmt.session_key_aad(self.vault_id, new_id, self.master_key_id)), self.master_key_id, now,
                 self._session_mac(new_id, self.master_key_id, now, "current")),
            )
        return new_id, (current[0] if current else None), removed

    def _refresh_master(self) -> None:
        """Another process rotated the master key after this one opened the vault:
        reload the records and reopen the (new) master key."""
        reopen = getattr(self, "_reopen", None)
        self._reload_meta_unchecked()
        if reopen is None:
            raise IntegrityError("the vault's master key changed while it was open", hint="re-run the command")
        params = json.loads(self._meta["master_params"])
        params["key_id"] = self._meta["master_key_id"]
        old = self._key_source
        self._key_source = reopen(self._meta["master_source"], params)
        old.close()
        self._check_key()
        self._check_meta(self._meta)

