"""Secret versions: writing, reading, listing, deleting, importing, and the
plaintext record stream used by backups."""

from __future__ import annotations

import json
from typing import Callable, Iterable, Iterator

from zerotrust_admin.crypto import DecryptionFailed, open_sealed, seal
from zerotrust_admin.errors import AlreadyExistsError, AuditError, IntegrityError, NotFoundError, ZeroTrustError
from zerotrust_admin.names import validate_name, validate_prefix
from zerotrust_admin.secret import Secret
from zerotrust_admin.timeutil import rfc3339
from zerotrust_admin.vault import format as fmt
from zerotrust_admin.vault.records import ImportResult, SecretInfo, VersionInfo, _check_value, _loads
from zerotrust_admin.vault.schema import _db_errors


class VersionsMixin:
    # --- operations ------------------------------------------------------------
    def put(self, name: str, value: bytes, *, metadata: dict | None = None, sensitive: bool = False) -> VersionInfo:
        validate_name(name)
        _check_value(value)
        metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        details: dict = {}
        try:
            with self._write_txn() as conn:
                info = self._put_in_txn(conn, name, value, metadata, sensitive)
                details = {"version": info.version}
                # Audited inside the transaction: if the record cannot be written,
                # the write is rolled back rather than left unaudited.
                self._audit("secret_access", "write", name, True, **details)
        except ZeroTrustError as exc:
            if not isinstance(exc, AuditError):
                self._audit("secret_access", "write", name, False, error=type(exc).__name__)
            raise
        return info

    def _put_in_txn(self, conn, name: str, value: bytes, metadata: dict, sensitive: bool) -> VersionInfo:
        row = conn.execute("SELECT current_version, sensitive, deleted_at, head_mac FROM secrets WHERE name = ?", (name,)).fetchone()
        if row:
            self._check_head(name, row[0], row[1], row[2], row[3])
        now = rfc3339()
        version = (row[0] + 1) if row else 1
        sensitive = sensitive or bool(row and row[1])  # once sensitive, always sensitive
        dek_id = self._active_dek_id()
        metadata_json = json.dumps(metadata, sort_keys=True, separators=(",", ":"))
        sealed = seal(self._dek(dek_id), value, fmt.secret_aad(self.vault_id, name, version, dek_id, metadata_json))
        actor = self.actor.user if self.actor else ""
        conn.execute(
            "INSERT INTO versions (name, version, dek_id, sealed, created, created_by, size, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, dek_id, sealed, now, actor, len(value), metadata_json),
        )
        head_mac = self._head_mac(name, version, sensitive, None)
        if row:
            conn.execute("UPDATE secrets SET current_version = ?, updated = ?, sensitive = ?, deleted_at = NULL, deleted_by = NULL, head_mac = ? WHERE name = ?", (version, now, int(sensitive), head_mac, name))
        else:
            conn.execute("INSERT INTO secrets (name, current_version, sensitive, created, updated, head_mac) VALUES (?, ?, ?, ?, ?, ?)", (name, version, int(sensitive), now, now, head_mac))
        return VersionInfo(name, version, now, actor, len(value), dek_id, metadata, True)

    def get(self, name: str, version: int | None = None) -> tuple[Secret, VersionInfo]:
        validate_name(name)
        with self._audited("read", name, **({"version": version} if version else {})) as details:
            secret, info = self._read(name, version)
            details["version"] = info.version
            return secret, info

    def _read(self, name: str, version: int | None, *, include_deleted: bool = False) -> tuple[Secret, VersionInfo]:
        with _db_errors(self.path):
            head = self._conn.execute(
                "SELECT current_version, deleted_at, sensitive, head_mac, (SELECT MAX(version) FROM versions WHERE name = ?) FROM secrets WHERE name = ?",
                (name, name),
            ).fetchone()
            if head is None:
                raise NotFoundError(f"secret {name!r} not found", hint="list secrets with: zerotrust-admin vault list")
        self._check_head(name, head[0], head[2], head[1], head[3])
        if head[4] is not None and head[4] != head[0]:
            raise IntegrityError(f"secret {name!r} points at version {head[0]} but version {head[4]} exists (rolled back record)", hint="restore the vault from a backup")
        with _db_errors(self.path):
            if head[1] is not None and not include_deleted:
                raise NotFoundError(f"secret {name!r} is deleted (recoverable)", hint=f"restore it with: zerotrust-admin vault undelete {name}")
            wanted = version if version is not None else head[0]
            row = self._conn.execute(
                "SELECT dek_id, sealed, created, created_by, size, metadata FROM versions WHERE name = ? AND version = ?",
                (name, wanted),
            ).fetchone()
        if row is None:
            if version is not None:
                raise NotFoundError(f"secret {name!r} has no version {version}", hint=f"see its versions with: zerotrust-admin vault history {name}")
            raise IntegrityError(f"secret {name!r} points at version {wanted}, which is missing (tampered vault)")
        dek_id, sealed, created, created_by, size, metadata_json = row
        try:
            plaintext = open_sealed(self._dek(dek_id), sealed, fmt.secret_aad(self.vault_id, name, wanted, dek_id, metadata_json))
        except DecryptionFailed:
            raise IntegrityError(f"secret {name!r} version {wanted} does not authenticate (tampered or moved record)", hint="restore the vault from a backup") from None
        try:
            metadata = json.loads(metadata_json)
        except ValueError:
            metadata = {}
        return Secret(plaintext), VersionInfo(name, wanted, created, created_by, size, dek_id, metadata, wanted == head[0])

    def list(self, prefix: str = "", *, include_deleted: bool = False) -> Iterator[SecretInfo]:
        validate_prefix(prefix)
        with self._audited("list", prefix or "*"):
            rows = self._query_list(prefix, include_deleted)
        return iter(rows)

    def _query_list(self, prefix: str, include_deleted: bool) -> list[SecretInfo]:
        # Names are ASCII from a fixed alphabet, so prefix..prefix+'\x7f' is a range scan.
        sql = "SELECT name, current_version, created, updated, sensitive, deleted_at, head_mac FROM secrets WHERE name >= ? AND name < ?"
        with _db_errors(self.path):
            rows = self._conn.execute(sql + " ORDER BY name", (prefix, prefix + "\x7f")).fetchall()
        for r in rows:  # a forged or edited row must not even be listed
            self._check_head(r[0], r[1], r[4], r[5], r[6])
        return [SecretInfo(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows if include_deleted or r[5] is None]

    def info(self, name: str) -> SecretInfo:
        validate_name(name)
        with _db_errors(self.path):
            row = self._conn.execute("SELECT name, current_version, created, updated, sensitive, deleted_at, head_mac FROM secrets WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"secret {name!r} not found")
        self._check_head(row[0], row[1], row[4], row[5], row[6])
        return SecretInfo(row[0], row[1], row[2], row[3], bool(row[4]), row[5])

    def history(self, name: str) -> list[VersionInfo]:
        validate_name(name)
        with self._audited("history", name):
            with _db_errors(self.path):
                head = self._conn.execute("SELECT current_version, sensitive, deleted_at, head_mac FROM secrets WHERE name = ?", (name,)).fetchone()
                if head is None:
                    raise NotFoundError(f"secret {name!r} not found")
                self._check_head(name, head[0], head[1], head[2], head[3])
                rows = self._conn.execute(
                    "SELECT version, created, created_by, size, dek_id, metadata FROM versions WHERE name = ? ORDER BY version",
                    (name,),
                ).fetchall()
        return [VersionInfo(name, r[0], r[1], r[2], r[3], r[4], _loads(r[5]), r[0] == head[0]) for r in rows]

    def delete(self, name: str) -> None:
        """Soft delete: hidden from get/list, recoverable with ``undelete``."""
        validate_name(name)
        with self._audited("delete", name, mode="soft"):
            with self._write_txn() as conn:
                row = conn.execute("SELECT deleted_at, current_version, sensitive, head_mac FROM secrets WHERE name = ?", (name,)).fetchone()
                if row is None:
                    raise NotFoundError(f"secret {name!r} not found")
                self._check_head(name, row[1], row[2], row[0], row[3])
                if row[0] is None:
                    now = rfc3339()
                    conn.execute("UPDATE secrets SET deleted_at = ?, deleted_by = ?, head_mac = ? WHERE name = ?",
                                 (now, self.actor.user if self.actor else "", self._head_mac(name, row[1], bool(row[2]), now), name))

    def undelete(self, name: str) -> None:
        validate_name(name)
        with self._audited("undelete", name):
            with self._write_txn() as conn:
                row = conn.execute("SELECT deleted_at, current_version, sensitive, head_mac FROM secrets WHERE name = ?", (name,)).fetchone()
                if row is None:
                    raise NotFoundError(f"secret {name!r} not found (destroyed secrets cannot be recovered)")
                self._check_head(name, row[1], row[2], row[0], row[3])
                conn.execute("UPDATE secrets SET deleted_at = NULL, deleted_by = NULL, head_mac = ? WHERE name = ?",
                             (self._head_mac(name, row[1], bool(row[2]), None), name))

    def destroy(self, name: str) -> int:
        """Purge every version; the freed pages are zeroed (secure_delete)."""
        validate_name(name)
        with self._audited("destroy", name, mode="destroy") as details:
            with self._write_txn() as conn:
                if conn.execute("SELECT 1 FROM secrets WHERE name = ?", (name,)).fetchone() is None:
                    raise NotFoundError(f"secret {name!r} not found")
                count = conn.execute("DELETE FROM versions WHERE name = ?", (name,)).rowcount
                conn.execute("DELETE FROM secrets WHERE name = ?", (name,))
            details["versions"] = count
        return count

    def import_many(self, items: Iterable[tuple[str, bytes]], *, source: str = "", progress: Callable[[int], None] | None = None) -> ImportResult:
        """Write many secrets in one transaction; identical current values are skipped.

        Re-running the same import changes nothing. All names and values are
        validated before anything is written, so a bad entry leaves the vault
        as it was.
        """
        items = list(items)
        for name, value in items:
            validate_name(name)
            _check_value(value, name)
        result = ImportResult()
        resource = source or "import"
        try:
            with self._write_txn() as conn:
                for done, (name, value) in enumerate(items, start=1):
                    row = conn.execute("SELECT deleted_at FROM secrets WHERE name = ?", (name,)).fetchone()
                    if row is not None and row[0] is None:
                        current, _ = self._read(name, None)
                        with current:
                            same = current.reveal() == value
                        if same:
                            result.unchanged += 1
                            continue
                        result.updated += 1
                    else:
                        result.created += 1
                    self._put_in_txn(conn, name, value, {}, False)
                    if progress and done % 1000 == 0:
                        progress(done)
                # Audited before commit: an unaudited bulk write is rolled back.
                self._audit("secret_access", "import", resource, True, **result.to_dict())
        except ZeroTrustError as exc:
            if not isinstance(exc, AuditError):
                self._audit("secret_access", "import", resource, False, error=type(exc).__name__)
            raise
        return result

    def export_all(self, prefix: str = "") -> Iterator[tuple[str, Secret, VersionInfo]]:
        infos = self._query_list(prefix, False)
        self._audit("secret_access", "export", prefix or "*", True, count=len(infos))
        for info in infos:
            secret, version = self._read(info.name, None)
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
                for row in self._conn.execute(
                    "SELECT name, current_version, sensitive, created, updated, deleted_at, deleted_by, head_mac FROM secrets ORDER BY name"
                ).fetchall():
                    self._check_head(row[0], row[1], row[2], row[5], row[7])
                    yield {"type": "secret", "name": row[0], "current_version": row[1], "sensitive": bool(row[2]), "created": row[3],
                           "updated": row[4], "deleted_at": row[5], "deleted_by": row[6]}
                cursor = self._conn.execute(
                    "SELECT name, version, dek_id, sealed, created, created_by, size, metadata FROM versions ORDER BY name, version"
                )
                for name, version, dek_id, sealed, created, created_by, size, metadata_json in cursor:
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
            if conn.execute("SELECT (SELECT COUNT(*) FROM secrets) + (SELECT COUNT(*) FROM versions)").fetchone()[0]:
                raise AlreadyExistsError(f"the vault {self.path} is not empty; restore only into an empty vault",
                                         hint="init a fresh ZEROTRUST_HOME and restore there")
            dek_id = self._active_dek_id()
            dek = self._dek(dek_id)
            for rec in records:
                if rec.get("type") == "secret":
                    validate_name(rec["name"])
                    head_mac = self._head_mac(rec["name"], int(rec["current_version"]), bool(rec["sensitive"]), rec.get("deleted_at"))
                    conn.execute(
                        "INSERT INTO secrets (name, current_version, sensitive, created, updated, deleted_at, deleted_by, head_mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (rec["name"], int(rec["current_version"]), int(bool(rec["sensitive"])), rec["created"], rec["updated"], rec.get("deleted_at"), rec.get("deleted_by"), head_mac),
                    )
                    counts["secrets"] += 1
                elif rec.get("type") == "version":
                    name, version, metadata_json = rec["name"], int(rec["version"]), rec["metadata"]
                    value = base64.b64decode(rec["value"], validate=True)
                    conn.execute(
                        "INSERT INTO versions (name, version, dek_id, sealed, created, created_by, size, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (name, version, dek_id, seal(dek, value, fmt.secret_aad(self.vault_id, name, version, dek_id, metadata_json)),
                         rec["created"], rec["created_by"], len(value), metadata_json),
                    )
                    counts["versions"] += 1
            orphans = conn.execute(
                "SELECT COUNT(*) FROM secrets s WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.name = s.name AND v.version = s.current_version)"
            ).fetchone()[0]
            if orphans:
                raise IntegrityError(f"the backup names {orphans} secret(s) without their current version", hint="the backup is incomplete; nothing was restored")
        return counts

