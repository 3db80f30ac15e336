"""Secret heads and the vault-wide commitment (threat model V3, V5).

Every record a read or a decision depends on carries a MAC under the head key:
``secrets.head_mac``, ``versions.mac``, ``deks.mac``, ``session_keys.mac`` and
``meta.meta_mac``. A MAC proves a row was written by this vault, not that it
is the *latest* such row: the commitment (``meta.commit``, over the generation
and the 256 bucket digests over every head, and every data-key, session-key
and meta MAC) does that. Every write transaction advances the generation and
rewrites the commitment; open checks it; every read checks its bucket.
"""

from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager
from typing import NamedTuple

from zerotrust_admin.crypto import constant_time_equal, hmac_sha256
from zerotrust_admin.errors import IntegrityError
from zerotrust_admin.keys import UnwrapFailed
from zerotrust_admin.vault import format as fmt
from zerotrust_admin.vault.schema import _db_errors

RESTORE_HINT = "restore the vault from a backup"
HEAD_COLUMNS = "name, incarnation, current_version, sensitive, created, updated, deleted_at, deleted_by, head_mac"


class Head(NamedTuple):
    name: str
    incarnation: str
    current_version: int
    sensitive: int
    created: str
    updated: str
    deleted_at: str | None
    deleted_by: str | None
    head_mac: str


class HeadsMixin:
    # --- the head key and the MACs under it ---------------------------------------
    def _head_key(self) -> bytes:
        wrapped = self._meta[fmt.META_HEAD_KEY]
        if self._head_key_cache is None or self._head_key_cache[0] != wrapped:
            try:
                key = self._key_source.unwrap(bytes.fromhex(wrapped), fmt.head_key_aad(self.vault_id, self.master_key_id))
            except (UnwrapFailed, ValueError):
                raise IntegrityError("the vault's head key does not authenticate (tampered vault)", hint=RESTORE_HINT) from None
            self._head_key_cache = (wrapped, key)
        return self._head_key_cache[1]

    def _mac(self, data: bytes) -> str:
        return hmac_sha256(self._head_key(), data).hex()

    def _mac_ok(self, make_input, mac) -> bool:
        """``make_input()`` builds the MAC input; a damaged row (a NULL or a
        wrong type where text or a number belongs) simply does not authenticate."""
        try:
            data = make_input()
        except (TypeError, ValueError, AttributeError):
            return False
        return isinstance(mac, str) and constant_time_equal(self._mac(data).encode(), mac.encode())

    def _head_mac(self, name: str, incarnation: str, version: int, sensitive: bool, created: str, updated: str,
                  deleted_at: str | None, deleted_by: str | None) -> str:
        return self._mac(fmt.head_mac_input_v2(self.vault_id, name, incarnation, version, bool(sensitive), created, updated, deleted_at, deleted_by))

    def _select_head(self, conn, name: str) -> Head | None:
        row = conn.execute(f"SELECT {HEAD_COLUMNS} FROM secrets WHERE name = ?", (name,)).fetchone()  # nosec B608 - HEAD_COLUMNS and table names are module constants
        return Head(*row) if row else None

    def _check_head(self, head: Head) -> None:
        data = lambda: fmt.head_mac_input_v2(self.vault_id, head.name, head.incarnation, head.current_version, bool(head.sensitive),  # noqa: E731
                                             head.created, head.updated, head.deleted_at, head.deleted_by)
        if not self._mac_ok(data, head.head_mac):
            raise IntegrityError(f"secret {head.name!r}: its record (current version, flags, times) does not authenticate (tampered vault)", hint=RESTORE_HINT)

    def _version_mac(self, name: str, incarnation: str, version: int, dek_id: str, created: str, created_by: str,
                     size: int, metadata_json: str, sealed: bytes) -> str:
        return self._mac(fmt.version_mac_input(self.vault_id, name, incarnation, version, dek_id, created, created_by, size,
                                               metadata_json, hashlib.sha256(sealed).hexdigest()))

    def _check_version(self, head: Head, version: int, dek_id: str, created: str, created_by: str, size: int,
                       metadata_json: str, sealed: bytes, mac) -> None:
        data = lambda: fmt.version_mac_input(self.vault_id, head.name, head.incarnation, version, dek_id, created, created_by, size,  # noqa: E731
                                             metadata_json, hashlib.sha256(sealed).hexdigest())
        if not self._mac_ok(data, mac):
            raise IntegrityError(f"secret {head.name!r} version {version}: its record (who, when, size, data key) does not authenticate "
                                 "(edited, or left over from a destroyed secret)", hint=RESTORE_HINT)

    def _dek_mac(self, dek_id: str, master_key_id: str, created: str, state: str) -> str:
        return self._mac(fmt.dek_record_mac_input(self.vault_id, dek_id, master_key_id, created, state))

    def _check_dek_row(self, dek_id, master_key_id, created, state, mac) -> None:
        if not self._mac_ok(lambda: fmt.dek_record_mac_input(self.vault_id, dek_id, master_key_id, created, state), mac):
            raise IntegrityError(f"data key {dek_id}: its record (created, state, master key) does not authenticate (tampered vault)", hint=RESTORE_HINT)

    def _session_mac(self, key_id: str, master_key_id: str, created: str, state: str) -> str:
        return self._mac(fmt.session_key_record_mac_input(self.vault_id, key_id, master_key_id, created, state))

    def _check_session_row(self, key_id, master_key_id, created, state, mac) -> None:
        if not self._mac_ok(lambda: fmt.session_key_record_mac_input(self.vault_id, key_id, master_key_id, created, state), mac):
            raise IntegrityError(f"session key {key_id}: its record (created, state) does not authenticate (tampered vault)", hint=RESTORE_HINT)

    def _check_meta(self, meta: dict) -> None:
        # Keys and values are text without NUL bytes (none is ever written with one).
        if not all(isinstance(k, str) and isinstance(v, str) and "\x00" not in k and "\x00" not in v for k, v in meta.items()):
            raise IntegrityError(f"the vault {self.path} has a damaged meta record", hint=RESTORE_HINT)
        if not self._mac_ok(lambda: fmt.meta_mac_input(self.vault_id, meta), meta.get(fmt.META_MAC)):
            raise IntegrityError("the vault's key records (master source, params, key id, created; data key rotation) do not authenticate: "
                                 "meta was edited", hint=RESTORE_HINT)

    # --- the commitment, over 256 buckets of heads -------------------------------
    # A bucket's digest (table ``buckets``) covers the (name, head MAC) of every
    # ``secrets`` row whose name falls in it; the commitment covers the 256 stored
    # digests. Open checks the commitment against the stored digests (O(1) in the
    # number of secrets); a read recomputes the digest of the one bucket it serves
    # from (O(n/256)); a write checks each bucket before it changes it, then
    # stores the touched buckets' new digests and a new commitment.
    # ``_verified`` holds the buckets checked since ``_verified_version`` (PRAGMA
    # data_version): another connection's commit clears it.
    def _bucket(self, name: str) -> int:
        return fmt.bucket_of(self.vault_id, name)

    def _stored_buckets(self, conn) -> list[str]:
        rows = conn.execute("SELECT bucket, digest FROM buckets ORDER BY bucket").fetchall()
        if [r[0] for r in rows] != list(range(fmt.BUCKETS)) or not all(isinstance(r[1], str) for r in rows):
            raise IntegrityError(f"the vault {self.path} has a damaged buckets table (tampered vault)", hint=RESTORE_HINT)
        return [r[1] for r in rows]

    def _commit_value(self, conn, generation: int, meta_mac: str, bucket_digests: list[str]) -> str:
        digest = hashlib.sha256()
        for value in bucket_digests:
            digest.update(value.encode("ascii", "replace"))
        counts = []
        tables = ["deks"] + (["session_keys"] if self._has_table(conn, "session_keys") else [])
        for table in tables:
            n = 0
            for (mac,) in conn.execute(f"SELECT mac FROM {table} ORDER BY id"):  # nosec B608 - HEAD_COLUMNS and table names are module constants
                digest.update(mac.encode("ascii", "replace") if isinstance(mac, str) else b"?")
                n += 1
            counts.append(n)
        if len(counts) == 1:
            counts.append(0)
        digest.update(meta_mac.encode("ascii", "replace"))
        return self._mac(fmt.commit_input(self.vault_id, generation, counts[0], counts[1], digest.hexdigest()))

    def _verify_state(self, conn, meta: dict) -> int:
        """Check the meta MAC, every data-key and session-key record and the
        commitment over the stored bucket digests; returns the generation.
        O(1) in the number of secrets: the buckets themselves are checked when used."""
        self._verified = set()
        self._stored = None
        self._check_meta(meta)
        for row in conn.execute("SELECT id, master_key_id, created, state, mac FROM deks"):
            self._check_dek_row(*row)
        if self._has_table(conn, "session_keys"):
            for row in conn.execute("SELECT id, master_key_id, created, state, mac FROM session_keys"):
                self._check_session_row(*row)
        try:
            generation = int(meta[fmt.META_GENERATION])
            commit = meta[fmt.META_COMMIT]
        except (KeyError, ValueError):
            raise IntegrityError(f"the vault {self.path} has no valid commitment record (tampered vault)", hint=RESTORE_HINT) from None
        stored = self._stored_buckets(conn)
        expected = self._commit_value(conn, generation, meta[fmt.META_MAC], stored)
        if not constant_time_equal(expected.encode(), str(commit).encode()):
            raise IntegrityError(f"the vault {self.path} does not match its commitment (generation {generation}): "
                                 "the buckets table or the commitment was edited, or a key record was rolled back", hint=RESTORE_HINT)
        self._stored = stored
        self._state_generation = generation
        return generation

    def _ensure_state(self, conn) -> None:
        """Re-check the commitment when another connection committed since this
        one last checked it (PRAGMA data_version); call inside a transaction."""
        conn.execute("SELECT 1 FROM meta LIMIT 1").fetchone()  # a deferred transaction's snapshot starts here, before data_version is read
        data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        if data_version != self._verified_version or self._stored is None:
            self._verify_state(conn, dict(conn.execute("SELECT key, value FROM meta").fetchall()))
            self._verified_version = data_version

    def _forget_state(self) -> None:
        self._verified = set()
        self._stored = None
        self._verified_version = None

    def _bucket_mismatch(self, conn, bucket: int) -> IntegrityError:
        # Slow path, only on failure: an edited row is named; otherwise it is a rollback.
        for head in map(Head._make, conn.execute(f"SELECT {HEAD_COLUMNS} FROM secrets WHERE bucket = ? ORDER BY name", (bucket,))):  # nosec B608 - HEAD_COLUMNS and table names are module constants
            self._check_head(head)
        return IntegrityError(f"the vault {self.path} does not match its commitment (generation {self._state_generation}, bucket {bucket}): "
                              "a secret record was rolled back, resurrected or removed", hint=RESTORE_HINT)

    def _check_bucket(self, conn, bucket: int) -> None:
        """The stored digest of ``bucket`` (covered by the checked commitment)
        must equal the digest of its rows as they are now. O(n/256)."""
        if bucket in self._verified:
            return
        rows = conn.execute("SELECT name, head_mac FROM secrets WHERE bucket = ? ORDER BY name", (bucket,))
        if not constant_time_equal(fmt.bucket_digest(rows).encode(), self._stored[bucket].encode()):
            raise self._bucket_mismatch(conn, bucket)
        self._verified.add(bucket)

    def _check_all_buckets(self, conn) -> None:
        """Every bucket, in one scan (list, export, dump, restore, re-encryption): O(n)."""
        if len(self._verified) == fmt.BUCKETS:
            return
        rows = conn.execute("SELECT bucket, name, head_mac FROM secrets ORDER BY bucket, name")
        seen = {bucket: fmt.bucket_digest((r[1], r[2]) for r in group) for bucket, group in itertools.groupby(rows, key=lambda r: r[0])}
        for bucket in seen:
            if not isinstance(bucket, int) or not 0 <= bucket < fmt.BUCKETS:
                raise IntegrityError(f"the vault {self.path} holds a secret record outside every bucket (tampered vault)", hint=RESTORE_HINT)
        for bucket in range(fmt.BUCKETS):
            if not constant_time_equal(seen.get(bucket, fmt.EMPTY_BUCKET_DIGEST).encode(), self._stored[bucket].encode()):
                raise self._bucket_mismatch(conn, bucket)
        self._verified = set(range(fmt.BUCKETS))

    def _check_served(self, conn, name: str, head: Head | None) -> None:
        """Before a secret (or its absence) is served: its bucket checks out and
        the row read by name is the one in that bucket (its bucket column)."""
        bucket = self._bucket(name)
        self._check_bucket(conn, bucket)
        if head is not None:
            row = conn.execute("SELECT bucket FROM secrets WHERE name = ?", (name,)).fetchone()
            if row is None or row[0] != bucket:
                raise self._bucket_mismatch(conn, bucket) if row is None else IntegrityError(
                    f"secret {name!r}: its record is outside its bucket (tampered vault: resurrected or moved)", hint=RESTORE_HINT)

    @contextmanager
    def _read_txn(self):
        """One consistent snapshot for a read: the commitment (when another
        connection committed meanwhile), the bucket and the rows are read together."""
        conn = self._conn
        if conn.in_transaction:  # inside a write transaction: already checked under its lock
            yield conn
            return
        with _db_errors(self.path):
            conn.execute("BEGIN")
            try:
                self._ensure_state(conn)
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def _touch(self, conn, name: str) -> int:
        """In a write transaction, before ``name``'s row changes: check its bucket
        as it is (so a write never blesses a rolled-back neighbour), and mark the
        bucket to be re-digested at the end. Returns the bucket."""
        bucket = self._bucket(name)
        if bucket not in self._dirty:
            self._check_bucket(conn, bucket)
            self._dirty.add(bucket)
        return bucket

    def _advance(self, conn) -> tuple[int, str]:
        """The end of every write transaction: the touched buckets' digests,
        generation + 1, a fresh meta MAC and commitment."""
        stored = list(self._stored) if self._stored is not None else self._stored_buckets(conn)
        dirty = sorted(self._dirty)
        if len(dirty) > 16:
            fresh: dict[int, list] = {}
            for bucket, name, mac in conn.execute("SELECT bucket, name, head_mac FROM secrets ORDER BY bucket, name"):
                fresh.setdefault(bucket, []).append((name, mac))
            for bucket in dirty:
                stored[bucket] = fmt.bucket_digest(fresh.get(bucket, ()))
        else:
            for bucket in dirty:
                stored[bucket] = fmt.bucket_digest(conn.execute("SELECT name, head_mac FROM secrets WHERE bucket = ? ORDER BY name", (bucket,)))
        conn.executemany("UPDATE buckets SET digest = ? WHERE bucket = ?", [(stored[b], b) for b in dirty])
        binding = getattr(self, "_audit_binding", None)
        if binding is not None and conn.execute("SELECT 1 FROM meta WHERE key = ?", (fmt.META_AUDIT_BINDING,)).fetchone() is None:
            # V4 (F4/F6): the first write once the audit log has an id and a signing key binds the vault to them (inside the meta MAC).
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (fmt.META_AUDIT_BINDING, binding))
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        generation = int(meta.get(fmt.META_GENERATION) or 0) + 1
        meta_mac = self._mac(fmt.meta_mac_input(self.vault_id, meta))
        commit = self._commit_value(conn, generation, meta_mac, stored)
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         [(fmt.META_GENERATION, str(generation)), (fmt.META_MAC, meta_mac), (fmt.META_COMMIT, commit)])
        self._stored = stored
        self._verified |= set(dirty)
        self._dirty = set()
        self._state_generation = generation
        return generation, commit

    @property
    def generation(self) -> int:
        """The vault's generation as of this handle's last open or write."""
        return int(self._meta.get(fmt.META_GENERATION) or 0)

    def commitment(self) -> dict:
        """What a vault write's audit record carries in ``details["vault"]``."""
        return {"id": self.vault_id, "generation": self.generation, "commit": self._meta.get(fmt.META_COMMIT, "")}
