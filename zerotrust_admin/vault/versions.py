"""Secret versions: writing, reading, listing, deleting, importing, and the
plaintext record stream used by backups."""

from __future__ import annotations

import json
import os
from typing import Callable, Iterable, Iterator

from zerotrust_admin.crypto import DecryptionFailed, open_sealed, seal
from zerotrust_admin.errors import AlreadyExistsError, IntegrityError, NotFoundError
from zerotrust_admin.names import validate_name, validate_prefix
from zerotrust_admin.secret import Secret
from zerotrust_admin.timeutil import rfc3339
from zerotrust_admin.vault import format as fmt
from zerotrust_admin.vault.records import ImportResult, SecretInfo, VersionInfo, _check_value, _loads
from zerotrust_admin.vault.heads import HEAD_COLUMNS, Head
from zerotrust_admin.vault.schema import _db_errors


class VersionsMixin:
    # --- operations ------------------------------------------------------------
    def put(self, name: str, value: bytes, *, metadata: dict | None = None, sensitive: bool = False) -> VersionInfo:
        validate_name(name)
        _check_value(value)
        metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        with self._audited_write("write", name) as (conn, details):
            info = self._put_in_txn(conn, name, value, metadata, sensitive)
            details["version"] = info.version
        return info

    def _put_in_txn(self, conn, name: str, value: bytes, metadata: dict, sensitive: bool, dek_id: str | None = None) -> VersionInfo:
        bucket = self._touch(conn, name)
        head = self._select_head(conn, name)
        if head:
            self._check_head(head)
        now = rfc3339()
        version = (head.current_version + 1) if head else 1
        sensitive = sensitive or bool(head and head.sensitive)  # once sensitive, always sensitive
        # A new secret, or one destroyed and written again, gets a new incarnation:
        # rows left over from an earlier one never fit it.
        incarnation = head.incarnation if head else os.urandom(16).hex()
        created = head.created if head else now
        dek_id = dek_id or self._active_dek_id()
        metadata_json = json.dumps(metadata, sort_keys=True, separators=(",", ":"))
        sealed = seal(self._dek(dek_id), value, fmt.secret_aad(self.vault_id, name, version, dek_id, metadata_json))
        actor = self.actor.user if self.actor else ""
        version_mac = self._version_mac(name, incarnation, version, dek_id, now, actor, len(value), metadata_json, sealed)
        conn.execute(
            "INSERT INTO versions (name, version, dek_id, sealed, created, created_by, size, metadata, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, dek_id, sealed, now, actor, len(value), metadata_json, version_mac),
        )
        new_head = Head(name, incarnation, version, int(sensitive), created, now, None, None,
                        self._head_mac(name, incarnation, version, sensitive, created, now, None, None))
        if head:
            conn.execute("UPDATE secrets SET current_version = ?, updated = ?, sensitive = ?, deleted_at = NULL, deleted_by = NULL, head_mac = ? WHERE name = ?",
                         (version, now, int(sensitive), new_head.head_mac, name))
        else:
            conn.execute(f"INSERT INTO secrets ({HEAD_COLUMNS}, bucket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*new_head, bucket))  # nosec B608 - HEAD_COLUMNS is a module constant; values are bound
        # V2: read back what was written, inside the transaction, before COMMIT.
        stored = conn.execute("SELECT dek_id, sealed, mac FROM versions WHERE name = ? AND version = ?", (name, version)).fetchone()
        if self._select_head(conn, name) != new_head or stored != (dek_id, sealed, version_mac):
            raise IntegrityError(f"the vault did not keep what was just written for {name!r} (a planted trigger or a concurrent edit); nothing was written",
                                 hint="check the vault file's schema; restore it from a backup")
        return VersionInfo(name, version, now, actor, len(value), dek_id, metadata, True)

    def get(self, name: str, version: int | None = None) -> tuple[Secret, VersionInfo]:
        validate_name(name)
        with self._audited("read", name, **({"version": version} if version else {})) as details:
            secret, info = self._read(name, version)
            details["version"] = info.version
            return secret, info

    def _read(self, name: str, version: int | None, *, include_deleted: bool = False) -> tuple[Secret, VersionInfo]:
        with self._read_txn() as conn:
            return self._read_in(conn, name, version, include_deleted)

    def _read_in(self, conn, name: str, version: int | None, include_deleted: bool) -> tuple[Secret, VersionInfo]:
        with _db_errors(self.path):
            head = self._select_head(self._conn, name)
            self._check_served(conn, name, head)  # V3: its bucket, before anything about it is served
            if head is None:
                raise NotFoundError(f"secret {name!r} not found", hint="list secrets with: zerotrust-admin vault list")
            newest = self._conn.execute("SELECT MAX(version) FROM versions WHERE name = ?", (name,)).fetchone()[0]
        self._check_head(head)
        if newest is not None and newest != head.current_version:
            raise IntegrityError(f"secret {name!r} points at version {head.current_version} but version {newest} exists (rolled back record)", hint="restore the vault from a backup")
        with _db_errors(self.path):
            if head.deleted_at is not None and not include_deleted:
                raise NotFoundError(f"secret {name!r} is deleted (recoverable)", hint=f"restore it with: zerotrust-admin vault undelete {name}")
            wanted = version if version is not None else head.current_version
            row = self._conn.execute(
                "SELECT dek_id, sealed, created, created_by, size, metadata, mac FROM versions WHERE name = ? AND version = ?",
                (name, wanted),
            ).fetchone()
        if row is None:
            if version is not None:
                raise NotFoundError(f"secret {name!r} has no version {version}", hint=f"see its versions with: zerotrust-admin vault history {name}")
            raise IntegrityError(f"secret {name!r} points at version {wanted}, which is missing (tampered vault)")
        dek_id, sealed, created, created_by, size, metadata_json, mac = row
        self._check_version(head, wanted, dek_id, created, created_by, size, metadata_json, sealed, mac)
        try:
            plaintext = open_sealed(self._dek(dek_id), sealed, fmt.secret_aad(self.vault_id, name, wanted, dek_id, metadata_json))
        except DecryptionFailed:
            raise IntegrityError(f"secret {name!r} version {wanted} does not authenticate (tampered or moved record)", hint="restore the vault from a backup") from None
        try:
            metadata = json.loads(metadata_json)
        except ValueError:
            metadata = {}
        return Secret(plaintext), VersionInfo(name, wanted, created, created_by, size, dek_id, metadata, wanted == head.current_version)

    def list(self, prefix: str = "", *, include_deleted: bool = False) -> Iterator[SecretInfo]:
        validate_prefix(prefix)
        with self._audited("list", prefix or "*"):
            rows = self._query_list(prefix, include_deleted)
        return iter(rows)

    def _query_list(self, prefix: str, include_deleted: bool) -> list[SecretInfo]:
        # Names are ASCII from a fixed alphabet, so prefix..prefix+'\x7f' is a range scan.
        sql = f"SELECT {HEAD_COLUMNS} FROM secrets WHERE name >= ? AND name < ?"  # nosec B608 - HEAD_COLUMNS is a module constant; values are bound
        with self._read_txn() as conn, _db_errors(self.path):
            self._check_all_buckets(conn)  # V3: a removed secret is in no listed row; every bucket is checked
            heads = [Head(*r) for r in conn.execute(sql + " ORDER BY name", (prefix, prefix + "\x7f")).fetchall()]
        for head in heads:  # a forged or edited row must not even be listed
            self._check_head(head)
        return [_info(h) for h in heads if include_deleted or h.deleted_at is None]

    def info(self, name: str) -> SecretInfo:
        validate_name(name)
        with self._read_txn() as conn, _db_errors(self.path):
            head = self._select_head(conn, name)
            self._check_served(conn, name, head)
        if head is None:
            raise NotFoundError(f"secret {name!r} not found")
        self._check_head(head)
        return _info(head)

    def history(self, name: str) -> list[VersionInfo]:
        validate_name(name)
        with self._audited("history", name):
            with self._read_txn() as conn, _db_errors(self.path):
                head = self._select_head(conn, name)
                self._check_served(conn, name, head)
                if head is None:
                    raise NotFoundError(f"secret {name!r} not found")
                self._check_head(head)
                rows = self._conn.execute(
                    "SELECT version, created, created_by, size, dek_id, metadata, sealed, mac FROM versions WHERE name = ? ORDER BY version",
                    (name,),
                ).fetchall()
            for r in rows:  # who and when are shown: only authenticated values
                self._check_version(head, r[0], r[4], r[1], r[2], r[3], r[5], r[6], r[7])
        return [VersionInfo(name, r[0], r[1], r[2], r[3], r[4], _loads(r[5]), r[0] == head.current_version) for r in rows]

    def delete(self, name: str) -> None:
        """Soft delete: hidden from get/list, recoverable with ``undelete``."""
        validate_name(name)
        with self._audited_write("delete", name, mode="soft") as (conn, _details):
            self._touch(conn, name)
            head = self._select_head(conn, name)
            if head is None:
                raise NotFoundError(f"secret {name!r} not found")
            self._check_head(head)
            if head.deleted_at is None:
                now = rfc3339()
                self._rewrite_head(conn, head._replace(updated=now, deleted_at=now, deleted_by=self.actor.user if self.actor else ""))

    def undelete(self, name: str) -> None:
        validate_name(name)
        with self._audited_write("undelete", name) as (conn, _details):
            self._touch(conn, name)
            head = self._select_head(conn, name)
            if head is None:
                raise NotFoundError(f"secret {name!r} not found (destroyed secrets cannot be recovered)")
            self._check_head(head)
            self._rewrite_head(conn, head._replace(updated=rfc3339(), deleted_at=None, deleted_by=None))

    def _rewrite_head(self, conn, head: Head) -> None:
        head = head._replace(head_mac=self._head_mac(*head[:-1]))
        conn.execute("UPDATE secrets SET updated = ?, deleted_at = ?, deleted_by = ?, head_mac = ? WHERE name = ?",
                     (head.updated, head.deleted_at, head.deleted_by, head.head_mac, head.name))
        if self._select_head(conn, head.name) != head:  # V2: read back before COMMIT
            raise IntegrityError(f"the vault did not keep what was just written for {head.name!r} (a planted trigger?); nothing was changed",
                                 hint="check the vault file's schema; restore it from a backup")

    def destroy(self, name: str) -> int:
        """Purge every version; the freed pages are zeroed (secure_delete)."""
        validate_name(name)
        with self._audited_write("destroy", name, mode="destroy") as (conn, details):
            self._maintenance_check(conn)  # V2 (F5): nothing is destroyed from a damaged or re-pointed file
            self._touch(conn, name)
            if conn.execute("SELECT 1 FROM secrets WHERE name = ?", (name,)).fetchone() is None:
                raise NotFoundError(f"secret {name!r} not found")
            count = conn.execute("DELETE FROM versions WHERE name = ?", (name,)).rowcount
            conn.execute("DELETE FROM secrets WHERE name = ?", (name,))
            left = conn.execute("SELECT (SELECT COUNT(*) FROM secrets WHERE name = ?) + (SELECT COUNT(*) FROM versions WHERE name = ?)", (name, name)).fetchone()[0]
            if left:  # V2: read back before COMMIT
                raise IntegrityError(f"the vault kept rows of {name!r} after destroying them (a planted trigger?); nothing was destroyed",
                                     hint="check the vault file's schema; restore it from a backup")
            details["versions"] = count
        return count

    def import_many(self, items: Iterable[tuple[str, bytes]], *, source: str = "", progress: Callable[[int], None] | None = None,
                    compare: bool = True) -> ImportResult:
        """Write many secrets in one transaction; identical current values are skipped.

        Re-running the same import changes nothing. All names and values are
        validated before anything is written, so a bad entry leaves the vault
        as it was. With ``compare=False`` no current value is read: every item
        is written as a new version (a write-only caller learns nothing).
        """
        items = list(items)
        for name, value in items:
            validate_name(name)
            _check_value(value, name)
        result = ImportResult(compared=compare)
        with self._audited_write("import", source or "import") as (conn, details):
            dek_id = self._active_dek_id()  # once per transaction (checked), not once per item
            for done, (name, value) in enumerate(items, start=1):
                self._touch(conn, name)  # its bucket checks out before "created" / "updated" / "unchanged" is decided
                row = conn.execute("SELECT deleted_at FROM secrets WHERE name = ?", (name,)).fetchone()
                if row is not None and row[0] is None:
                    if compare:
                        current, _ = self._read_in(conn, name, None, False)
                        with current:
                            same = current.reveal() == value
                        if same:
                            result.unchanged += 1
                            continue
                    result.updated += 1
                else:
                    result.created += 1
                self._put_in_txn(conn, name, value, {}, False, dek_id)
                if progress and done % 1000 == 0:
                    progress(done)
            details.update(result.to_dict(), compared=compare)
        return result

    def export_all(self, prefix: str = "") -> Iterator[tuple[str, Secret, VersionInfo]]:
        infos = self._query_list(prefix, False)  # every bucket checked
        self._audit("secret_access", "export", prefix or "*", True, count=len(infos))
        for info in infos:
            secret, version = self._read(info.name, None)  # and each one's again if another process wrote meanwhile
            yield info.name, secret, version

    def stats(self) -> dict:
        with _db_errors(self.path):
            secrets_count = self._conn.execute("SELECT COUNT(*) FROM secrets WHERE deleted_at IS NULL").fetchone()[0]
            versions = self._conn.execute("SELECT COUNT(*) FROM versions").fetchone()[0]
            deks = self._conn.execute("SELECT COUNT(*) FROM deks").fetchone()[0]
        return {"secrets": secrets_count, "versions": versions, "data_keys": deks, "vault_id": self.vault_id, "master_key_id": self.master_key_id, "master_source": self._meta["master_source"]}


    # --- backup / restore: plaintext records inside an encrypted container ----
    def is_empty(self) -> bool:
        with _db_errors(self.path):
            return self._conn.execute("SELECT (SELECT COUNT(*) FROM secrets) + (SELECT COUNT(*) FROM versions)").fetchone()[0] == 0

    def dump_records(self) -> Iterator[dict]:
        """Every secret and version (values decrypted) from one consistent
        snapshot, for an encrypted backup. The caller must consume it fully."""
        import base64

        with _db_errors(self.path):
            self._conn.execute("BEGIN")
            try:
                self._ensure_state(self._conn)
                self._check_all_buckets(self._conn)  # V3: every bucket, in the same snapshot as the rows dumped
                heads = {}
                for head in map(Head._make, self._conn.execute(f"SELECT {HEAD_COLUMNS} FROM secrets ORDER BY name").fetchall()):  # nosec B608 - HEAD_COLUMNS is a module constant; values are bound
                    self._check_head(head)
                    heads[head.name] = head
                    yield {"type": "secret", "name": head.name, "current_version": head.current_version, "sensitive": bool(head.sensitive),
                           "created": head.created, "updated": head.updated, "deleted_at": head.deleted_at, "deleted_by": head.deleted_by}
                cursor = self._conn.execute(
                    "SELECT name, version, dek_id, sealed, created, created_by, size, metadata, mac FROM versions ORDER BY name, version"
                )
                for name, version, dek_id, sealed, created, created_by, size, metadata_json, mac in cursor:
                    if name not in heads:
                        raise IntegrityError(f"a version row of {name!r} has no secret record (tampered vault)", hint="restore the vault from a backup")
                    self._check_version(heads[name], version, dek_id, created, created_by, size, metadata_json, sealed, mac)
                    try:
                        plain = open_sealed(self._dek(dek_id), sealed, fmt.secret_aad(self.vault_id, name, version, dek_id, metadata_json))
                    except DecryptionFailed:
                        raise IntegrityError(f"secret {name!r} version {version} does not authenticate (tampered or moved record)", hint="restore the vault from a backup") from None
                    yield {"type": "version", "name": name, "version": version, "created": created, "created_by": created_by,
                           "metadata": metadata_json, "value": base64.b64encode(plain).decode("ascii")}
            finally:
                self._conn.execute("COMMIT")

    def restore_records(self, records: Iterable[dict]) -> dict:
        """Load dumped records into this (empty) vault in ONE transaction, sealing
        every value under this vault's active data key. Any error rolls back."""
        import base64

        counts = {"secrets": 0, "versions": 0}
        with self._write_txn() as conn:
            self._check_all_buckets(conn)  # an "empty" vault whose rows were removed is not empty
            self._dirty = set(range(fmt.BUCKETS))
            if conn.execute("SELECT (SELECT COUNT(*) FROM secrets) + (SELECT COUNT(*) FROM versions)").fetchone()[0]:
                raise AlreadyExistsError(f"the vault {self.path} is not empty; restore only into an empty vault",
                                         hint="init a fresh ZEROTRUST_HOME and restore there")
            dek_id = self._active_dek_id()
            dek = self._dek(dek_id)
            incarnations: dict[str, str] = {}  # a restored secret is a new incarnation in this vault
            for rec in records:
                if rec.get("type") == "secret":
                    name = rec["name"]
                    validate_name(name)
                    incarnation = incarnations.setdefault(name, os.urandom(16).hex())
                    head = (name, incarnation, int(rec["current_version"]), int(bool(rec["sensitive"])), rec["created"], rec["updated"],
                            rec.get("deleted_at"), rec.get("deleted_by"))
                    conn.execute(f"INSERT INTO secrets ({HEAD_COLUMNS}, bucket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # nosec B608 - HEAD_COLUMNS is a module constant; values are bound
                                 (*head, self._head_mac(*head), self._bucket(name)))
                    counts["secrets"] += 1
                elif rec.get("type") == "version":
                    name, version, metadata_json = rec["name"], int(rec["version"]), rec["metadata"]
                    value = base64.b64decode(rec["value"], validate=True)
                    sealed = seal(dek, value, fmt.secret_aad(self.vault_id, name, version, dek_id, metadata_json))
                    mac = self._version_mac(name, incarnations.setdefault(name, os.urandom(16).hex()), version, dek_id, rec["created"],
                                            rec["created_by"], len(value), metadata_json, sealed)
                    conn.execute(
                        "INSERT INTO versions (name, version, dek_id, sealed, created, created_by, size, metadata, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (name, version, dek_id, sealed, rec["created"], rec["created_by"], len(value), metadata_json, mac),
                    )
                    counts["versions"] += 1
            orphans = conn.execute(
                "SELECT COUNT(*) FROM secrets s WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.name = s.name AND v.version = s.current_version)"
            ).fetchone()[0]
            if orphans:
                raise IntegrityError(f"the backup names {orphans} secret(s) without their current version", hint="the backup is incomplete; nothing was restored")
        return counts



def _info(head: Head) -> SecretInfo:
    return SecretInfo(head.name, head.current_version, head.created, head.updated, bool(head.sensitive), head.deleted_at)
