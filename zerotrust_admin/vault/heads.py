"""Secret heads and the vault-wide commitment (threat model V3, V5).

Every record a read or a decision depends on carries a MAC under the head key:
``secrets.head_mac``, ``versions.mac``, ``deks.mac``, ``session_keys.mac`` and
``meta.meta_mac``. A MAC proves a row was written by this vault, not that it
is the *latest* such row: the commitment (``meta.commit``, over the generation
and every head, data-key, session-key and meta MAC) does that. Every write
transaction advances the generation and rewrites the commitment; open checks it.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from zerotrust_admin.crypto import constant_time_equal, hmac_sha256
from zerotrust_admin.errors import IntegrityError
from zerotrust_admin.keys import UnwrapFailed
from zerotrust_admin.vault import format as fmt

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
        row = conn.execute(f"SELECT {HEAD_COLUMNS} FROM secrets WHERE name = ?", (name,)).fetchone()
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
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
            raise IntegrityError(f"the vault {self.path} has a damaged meta record", hint=RESTORE_HINT)
        if not self._mac_ok(lambda: fmt.meta_mac_input(self.vault_id, meta), meta.get(fmt.META_MAC)):
            raise IntegrityError("the vault's key records (master source, params, key id, created; data key rotation) do not authenticate: "
                                 "meta was edited", hint=RESTORE_HINT)

    # --- the commitment -------------------------------------------------------------
    def _digest(self, conn, meta_mac: str) -> tuple[int, int, int, str]:
        digest = hashlib.sha256()
        heads = 0
        for (mac,) in conn.execute("SELECT head_mac FROM secrets ORDER BY name"):
            digest.update(mac.encode("ascii", "replace") if isinstance(mac, str) else b"?")
            heads += 1
        counts = [heads]
        tables = ["deks"] + (["session_keys"] if self._has_table(conn, "session_keys") else [])
        for table in tables:
            n = 0
            for (mac,) in conn.execute(f"SELECT mac FROM {table} ORDER BY id"):
                digest.update(mac.encode("ascii", "replace") if isinstance(mac, str) else b"?")
                n += 1
            counts.append(n)
        if len(counts) == 2:
            counts.append(0)
        digest.update(meta_mac.encode("ascii", "replace"))
        return counts[0], counts[1], counts[2], digest.hexdigest()

    def _commit_value(self, conn, generation: int, meta_mac: str) -> str:
        heads, deks, sessions, digest = self._digest(conn, meta_mac)
        return self._mac(fmt.commit_input(self.vault_id, generation, heads, deks, sessions, digest))

    def _verify_state(self, conn, meta: dict) -> int:
        """Check the meta MAC, every data-key and session-key record and the
        commitment against the file as it is now; returns the generation."""
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
        expected = self._commit_value(conn, generation, meta[fmt.META_MAC])
        if not constant_time_equal(expected.encode(), str(commit).encode()):
            # Slow path, only on failure: say which kind of tampering it is.
            for head in map(Head._make, conn.execute(f"SELECT {HEAD_COLUMNS} FROM secrets ORDER BY name")):
                self._check_head(head)
            raise IntegrityError(f"the vault {self.path} does not match its commitment (generation {generation}): "
                                 "a secret record was rolled back, resurrected or removed, or the commitment was edited", hint=RESTORE_HINT)
        return generation

    def _advance(self, conn) -> tuple[int, str]:
        """The end of every write transaction: generation + 1, a fresh meta MAC and commitment."""
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        generation = int(meta.get(fmt.META_GENERATION) or 0) + 1
        meta_mac = self._mac(fmt.meta_mac_input(self.vault_id, meta))
        commit = self._commit_value(conn, generation, meta_mac)
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         [(fmt.META_GENERATION, str(generation)), (fmt.META_MAC, meta_mac), (fmt.META_COMMIT, commit)])
        return generation, commit

    @property
    def generation(self) -> int:
        """The vault's generation as of this handle's last open or write."""
        return int(self._meta.get(fmt.META_GENERATION) or 0)

    def commitment(self) -> dict:
        """What a vault write's audit record carries in ``details["vault"]``."""
        return {"id": self.vault_id, "generation": self.generation, "commit": self._meta.get(fmt.META_COMMIT, "")}
