"""The integrated vault: one SQLite file, AES-256-GCM envelope encryption.

Each secret version is sealed under a data encryption key (DEK); each DEK is
wrapped by the master key (a KeySource). Lookups are O(log n) on the primary
key; nothing decrypts more than the version asked for.
"""

from __future__ import annotations

import json
import os
import secrets as pyrandom
import sqlite3
import stat
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from zerotrust_admin import fsutil
from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.crypto import DecryptionFailed, constant_time_equal, hmac_sha256, open_sealed, random_key, seal
from zerotrust_admin.errors import (
    AlreadyExistsError,
    AuditError,
    IntegrityError,
    InsecureFileError,
    NotFoundError,
    UsageError,
    WrongKeyError,
    ZeroTrustError,
)
from zerotrust_admin.keys import KeySource, UnwrapFailed
from zerotrust_admin.names import validate_name, validate_prefix
from zerotrust_admin.secret import Secret
from zerotrust_admin.timeutil import rfc3339
from zerotrust_admin.vault import format as fmt

MAX_VALUE_BYTES = 1 << 20  # 1 MiB: keytabs and DER keys are KBs; larger is a mistake
BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    created: str
    created_by: str
    size: int
    dek_id: str
    metadata: dict
    current: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SecretInfo:
    name: str
    current_version: int
    created: str
    updated: str
    sensitive: bool
    deleted_at: str | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DekInfo:
    id: str
    master_key_id: str
    created: str
    state: str  # active | retired
    versions: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SessionKeyInfo:
    id: str
    created: str
    state: str  # current | previous

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Freed pages are zeroed, so destroyed ciphertext does not linger in the file.
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def check_vault_file(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotFoundError(f"no vault at {path}", hint="create one with: zerotrust-admin init") from None
    if stat.S_ISLNK(st.st_mode):
        raise InsecureFileError(f"vault file {path} is a symbolic link; refusing to follow it", hint="replace the link with the real vault file")
    if not stat.S_ISREG(st.st_mode):
        raise InsecureFileError(f"vault file {path} is not a regular file")
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise InsecureFileError(f"vault file {path} has mode {stat.S_IMODE(st.st_mode):04o}, which lets others write it", hint=f"chmod 600 {path}")
    with open(path, "rb") as fh:
        header = fh.read(100)
    head = header[: len(fmt.SQLITE_MAGIC)]
    if head != fmt.SQLITE_MAGIC:
        if len(head) < len(fmt.SQLITE_MAGIC):
            raise IntegrityError(f"vault file {path} is truncated ({st.st_size} bytes)", hint="restore the vault from a backup")
        raise UsageError(f"{path} is not a zerotrust-admin vault (not an SQLite file)", hint="check ZEROTRUST_HOME / the vault path")
    if len(header) < 100:
        raise IntegrityError(f"vault file {path} is truncated ({st.st_size} bytes)", hint="restore the vault from a backup")
    # SQLite only reads the pages it needs, so a cut-off tail can go unnoticed
    # until the day those pages are needed. The header records the size.
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96] and pages > 0
    wal = Path(f"{path}-wal")
    wal_empty = not wal.exists() or wal.stat().st_size == 0
    if header_valid and wal_empty and st.st_size < page_size * pages:
        raise IntegrityError(f"vault file {path} is truncated ({st.st_size} of {page_size * pages} bytes)", hint="restore the vault from a backup")


@contextmanager
def _db_errors(path: Path):
    try:
        yield
    except UnicodeDecodeError:
        # A corrupted page can turn a TEXT column into invalid UTF-8.
        raise IntegrityError(f"the vault file {path} is damaged (undecodable text)", hint="restore the vault from a backup") from None
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            from zerotrust_admin.errors import BusyError

            raise BusyError(f"the vault {path} stayed locked for {BUSY_TIMEOUT_MS // 1000} s", hint="another process holds a long write; retry") from None
        raise IntegrityError(f"the vault file {path} is damaged ({text})", hint="restore the vault from a backup") from None


class Vault:
    def __init__(self, path: Path, conn: sqlite3.Connection, meta: dict, key_source: KeySource, audit: AuditLog | None, actor: Actor | None):
        self.path = path
        self._conn = conn
        self._meta = meta
        self._key_source = key_source
        self.audit = audit
        self.actor = actor
        self._deks: dict[str, bytes] = {}
        self._head_key_cache: tuple[str, bytes] | None = None

    # --- lifecycle -------------------------------------------------------
    @classmethod
    def create(cls, path: Path, source_kind: str, create_source: Callable[[str], tuple[KeySource, dict]], *, audit: AuditLog | None = None, actor: Actor | None = None) -> "Vault":
        """Create a new vault file; ``create_source(key_id)`` makes the master key."""
        path = Path(path)
        if os.path.lexists(path):
            raise AlreadyExistsError(f"a vault already exists at {path}; refusing to overwrite it", hint="use a different ZEROTRUST_HOME, or move the existing vault away first")
        fsutil.ensure_private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.init")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, fsutil.FILE_MODE)
        os.close(fd)
        try:
            master_key_id = pyrandom.token_hex(8)
            source, params = create_source(master_key_id)
            vault_id = pyrandom.token_hex(16)
            now = rfc3339()
            conn = sqlite3.connect(tmp, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN")
            for statement in fmt.SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            meta = {
                "format": str(fmt.FORMAT_VERSION),
                "vault_id": vault_id,
                "created": now,
                "master_source": source_kind,
                "master_params": json.dumps(params, sort_keys=True),
                "master_key_id": master_key_id,
                "master_created": now,
                "kcv": source.wrap(fmt.KCV_PLAINTEXT, fmt.kcv_aad(vault_id, master_key_id)).hex(),
                fmt.META_HEAD_KEY: source.wrap(random_key(), fmt.head_key_aad(vault_id, master_key_id)).hex(),
            }
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            dek_id = pyrandom.token_hex(8)
            dek = random_key()
            conn.execute(
                "INSERT INTO deks (id, wrapped, master_key_id, created, state) VALUES (?, ?, ?, ?, 'active')",
                (dek_id, source.wrap(dek, fmt.dek_aad(vault_id, dek_id, master_key_id)), master_key_id, now),
            )
            conn.execute("COMMIT")
            conn.close()
            os.chmod(tmp, fsutil.FILE_MODE)
            # link() refuses to replace a vault that appeared meanwhile.
            os.link(tmp, path)
        except BaseException:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                if os.path.lexists(leftover):
                    os.unlink(leftover)
            raise
        os.unlink(tmp)
        fsutil.fsync_dir(path.parent)
        vault = cls(path, _connect(path), meta, source, audit, actor)
        return vault

    @classmethod
    def open(cls, path: Path, open_source: Callable[[str, dict], KeySource], *, audit: AuditLog | None = None, actor: Actor | None = None) -> "Vault":
        """Open an existing vault; ``open_source(kind, params)`` yields its master key."""
        path = Path(path)
        check_vault_file(path)
        with _db_errors(path):
            conn = _connect(path)
            try:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            except sqlite3.OperationalError as exc:
                conn.close()
                if "no such table" in str(exc):
                    raise UsageError(f"{path} is an SQLite file but not a zerotrust-admin vault") from None
                raise
        if meta.get("format") != str(fmt.FORMAT_VERSION):
            conn.close()
            raise UsageError(f"vault {path} has format {meta.get('format')!r}; this version reads format {fmt.FORMAT_VERSION}", hint="upgrade zerotrust-admin")
        for required in ("vault_id", "master_source", "master_key_id", "kcv", "master_params", fmt.META_HEAD_KEY):
            if required not in meta:
                conn.close()
                raise IntegrityError(f"vault {path} is missing its {required} record", hint="restore the vault from a backup")
        try:
            params = json.loads(meta["master_params"])
            if not isinstance(params, dict):
                raise ValueError
        except ValueError:
            conn.close()
            raise IntegrityError(f"vault {path} has a damaged master_params record", hint="restore the vault from a backup") from None
        params["key_id"] = meta["master_key_id"]
        source = open_source(meta["master_source"], params)
        vault = cls(path, conn, meta, source, audit, actor)
        vault._reopen = open_source
        try:
            vault._check_key()
        except WrongKeyError as exc:
            vault._audit("secret_access", "unlock", str(path), False, error="wrong_master_key")
            vault.close()
            raise exc
        return vault

    def _check_key(self) -> None:
        try:
            self._key_source.unwrap(bytes.fromhex(self._meta["kcv"]), fmt.kcv_aad(self.vault_id, self.master_key_id))
        except (UnwrapFailed, ValueError):
            raise WrongKeyError(
                f"the master key ({self._key_source.describe().get('location', self._key_source.kind)}) does not open the vault {self.path}",
                hint="check the key file, ZEROTRUST_ENCRYPTION_KEY or the passphrase",
            ) from None

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._key_source.close()
            for name in list(self._deks):
                self._deks[name] = b""
            self._deks.clear()

    def __enter__(self) -> "Vault":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Vault(path={str(self.path)!r})"

    @property
    def vault_id(self) -> str:
        return self._meta["vault_id"]

    @property
    def master_key_id(self) -> str:
        return self._meta["master_key_id"]

    @property
    def meta(self) -> dict:
        return dict(self._meta)

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
        row = self._conn.execute("SELECT id FROM deks WHERE state = 'active' ORDER BY created DESC, id DESC LIMIT 1").fetchone()
        if row is None:
            raise IntegrityError("the vault has no active data key", hint="restore the vault from a backup")
        return row[0]

    # --- secret heads: current version, sensitive, deleted, under a MAC ---------
    def _head_key(self) -> bytes:
        wrapped = self._meta[fmt.META_HEAD_KEY]
        if self._head_key_cache is None or self._head_key_cache[0] != wrapped:
            try:
                key = self._key_source.unwrap(bytes.fromhex(wrapped), fmt.head_key_aad(self.vault_id, self.master_key_id))
            except (UnwrapFailed, ValueError):
                raise IntegrityError("the vault's head key does not authenticate (tampered vault)", hint="restore the vault from a backup") from None
            self._head_key_cache = (wrapped, key)
        return self._head_key_cache[1]

    def _head_mac(self, name: str, version: int, sensitive: bool, deleted_at: str | None) -> str:
        return hmac_sha256(self._head_key(), fmt.head_mac_input(self.vault_id, name, version, sensitive, deleted_at)).hex()

    def _check_head(self, name: str, version: int, sensitive, deleted_at: str | None, mac: str) -> None:
        expected = self._head_mac(name, version, bool(sensitive), deleted_at)
        if not isinstance(mac, str) or not constant_time_equal(expected.encode(), mac.encode()):
            raise IntegrityError(f"secret {name!r}: its record (current version, flags) does not authenticate (tampered vault)",
                                 hint="restore the vault from a backup")

    # --- audit ---------------------------------------------------------------
    def _audit(self, event: str, action: str, resource: str, success: bool, **details) -> None:
        if self.audit is None or self.actor is None:
            return
        self.audit.append(event=event, action=action, resource=resource, success=success, actor=self.actor, **details)

    @contextmanager
    def _audited(self, action: str, resource: str, event: str = "secret_access", **details):
        """Audit the outcome; a failure is audited with its error class, then re-raised."""
        try:
            yield details
        except ZeroTrustError as exc:
            if not isinstance(exc, AuditError):
                self._audit(event, action, resource, False, error=type(exc).__name__, **details)
            raise
        else:
            self._audit(event, action, resource, True, **details)

    @contextmanager
    def _write_txn(self):
        with _db_errors(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

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

    # --- key hierarchy (issue 3): additive; used by zerotrust_admin.rotation ---------
    @property
    def key_source(self) -> KeySource:
        return self._key_source

    def reload_meta(self) -> dict:
        with _db_errors(self.path):
            self._meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        return dict(self._meta)

    def list_deks(self) -> list["DekInfo"]:
        """Every data key with its state and how many secret versions it seals."""
        with _db_errors(self.path):
            rows = self._conn.execute(
                "SELECT d.id, d.master_key_id, d.created, d.state, "
                "(SELECT COUNT(*) FROM versions v WHERE v.dek_id = d.id) FROM deks d ORDER BY d.created, d.id"
            ).fetchall()
        return [DekInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def active_dek(self) -> "DekInfo":
        with _db_errors(self.path):
            dek_id = self._active_dek_id()
        return next(d for d in self.list_deks() if d.id == dek_id)

    def add_dek(self) -> tuple[str, list[str]]:
        """Make a new data key active for writes; the old active keys become
        'retired' (they still decrypt until nothing refers to them). One transaction."""
        new_id = pyrandom.token_hex(8)
        dek = random_key()
        with self._write_txn() as conn:
            self._check_master_unchanged(conn)
            retired = [r[0] for r in conn.execute("SELECT id FROM deks WHERE state = 'active'").fetchall()]
            conn.execute("UPDATE deks SET state = 'retired' WHERE state = 'active'")
            conn.execute(
                "INSERT INTO deks (id, wrapped, master_key_id, created, state) VALUES (?, ?, ?, ?, 'active')",
                (new_id, self._key_source.wrap(dek, fmt.dek_aad(self.vault_id, new_id, self.master_key_id)), self.master_key_id, rfc3339()),
            )
        self._deks[new_id] = dek
        return new_id, retired

    def pending_reencryption(self) -> int:
        """How many secret versions are still sealed under a retired data key."""
        with _db_errors(self.path):
            return self._conn.execute(
                "SELECT COUNT(*) FROM versions WHERE dek_id IN (SELECT id FROM deks WHERE state = 'retired')"
            ).fetchone()[0]

    def reencrypt_batch(self, limit: int = 2000) -> int:
        """Re-seal up to ``limit`` versions from retired data keys under the active
        one, in one short transaction (so reads and writes of other processes
        interleave between batches). Returns how many were moved; 0 means done."""
        with self._write_txn() as conn:
            target = self._active_dek_id()
            rows = conn.execute(
                "SELECT name, version, dek_id, sealed, metadata FROM versions "
                "WHERE dek_id IN (SELECT id FROM deks WHERE state = 'retired') LIMIT ?",
                (limit,),
            ).fetchall()
            if not rows:
                return 0
            new_key = self._dek(target)
            updates = []
            for name, version, dek_id, sealed, metadata_json in rows:
                try:
                    plaintext = open_sealed(self._dek(dek_id), sealed, fmt.secret_aad(self.vault_id, name, version, dek_id, metadata_json))
                except DecryptionFailed:
                    raise IntegrityError(f"secret {name!r} version {version} does not authenticate (tampered or moved record)", hint="restore the vault from a backup") from None
                updates.append((target, seal(new_key, plaintext, fmt.secret_aad(self.vault_id, name, version, target, metadata_json)), name, version, dek_id))
            conn.executemany("UPDATE versions SET dek_id = ?, sealed = ? WHERE name = ? AND version = ? AND dek_id = ?", updates)
            return len(updates)

    def purge_retired_deks(self) -> list[str]:
        """Delete retired data keys that no version refers to any more (their
        pages are zeroed by secure_delete). Returns the ids removed."""
        with self._write_txn() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM deks WHERE state = 'retired' AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.dek_id = deks.id)"
            ).fetchall()]
            conn.executemany("DELETE FROM deks WHERE id = ?", [(i,) for i in ids])
            if ids:
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (fmt.META_DEK_ROTATED, rfc3339()))
        for dek_id in ids:
            self._deks.pop(dek_id, None)
        return ids

    def set_meta(self, updates: dict[str, str], deletes: Iterable[str] = ()) -> None:
        """Write optional meta records (never the core ones) in one transaction."""
        protected = {"format", "vault_id", "master_source", "master_params", "master_key_id", "kcv", "master_created"}
        if protected & (set(updates) | set(deletes)):
            raise ValueError("core meta records change only through rewrap_master")
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
            deks = conn.execute("SELECT id, wrapped, master_key_id FROM deks").fetchall()
            rewrapped = []
            for dek_id, wrapped, mk in deks:
                plain = self._unwrap_or_integrity(wrapped, fmt.dek_aad(self.vault_id, dek_id, mk), f"data key {dek_id}")
                rewrapped.append((new_source.wrap(plain, fmt.dek_aad(self.vault_id, dek_id, new_id)), new_id, dek_id))
            conn.executemany("UPDATE deks SET wrapped = ?, master_key_id = ? WHERE id = ?", rewrapped)
            session_rows = []
            if self._has_table(conn, "session_keys"):
                for key_id, wrapped, mk in conn.execute("SELECT id, wrapped, master_key_id FROM session_keys").fetchall():
                    plain = self._unwrap_or_integrity(wrapped, fmt.session_key_aad(self.vault_id, key_id, mk), f"session key {key_id}")
                    session_rows.append((new_source.wrap(plain, fmt.session_key_aad(self.vault_id, key_id, new_id)), new_id, key_id))
                conn.executemany("UPDATE session_keys SET wrapped = ?, master_key_id = ? WHERE id = ?", session_rows)
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
            rows = self._conn.execute("SELECT id, created, state FROM session_keys ORDER BY created DESC, id DESC").fetchall()
        return [SessionKeyInfo(r[0], r[1], r[2]) for r in rows]

    def session_key(self, key_id: str) -> Secret:
        with _db_errors(self.path):
            row = None
            if self._has_table(self._conn, "session_keys"):
                row = self._conn.execute("SELECT wrapped, master_key_id FROM session_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"session key {key_id} not found (rotated out of the ring)")
        if row[1] != self.master_key_id:
            self._refresh_master()
        return Secret(self._unwrap_or_integrity(row[0], fmt.session_key_aad(self.vault_id, key_id, row[1]), f"session key {key_id}"))

    def rotate_session_key(self, *, only_if_missing: bool = False) -> tuple[str | None, str | None, list[str]]:
        """New current session key; the current one becomes previous; older ones
        are deleted. Returns (new id, previous id, removed ids). With
        ``only_if_missing`` nothing happens when a current key exists."""
        new_id = pyrandom.token_hex(8)
        key = random_key()
        with self._write_txn() as conn:
            self._check_master_unchanged(conn)
            conn.execute(fmt.SESSION_KEYS_SCHEMA)
            current = conn.execute("SELECT id FROM session_keys WHERE state = 'current'").fetchone()
            if only_if_missing and current is not None:
                return None, current[0], []
            removed = [r[0] for r in conn.execute("SELECT id FROM session_keys WHERE state = 'previous'").fetchall()]
            conn.execute("DELETE FROM session_keys WHERE state = 'previous'")
            conn.execute("UPDATE session_keys SET state = 'previous' WHERE state = 'current'")
            conn.execute(
                "INSERT INTO session_keys (id, wrapped, master_key_id, created, state) VALUES (?, ?, ?, ?, 'current')",
                (new_id, self._key_source.wrap(key, fmt.session_key_aad(self.vault_id, new_id, self.master_key_id)), self.master_key_id, rfc3339()),
            )
        return new_id, (current[0] if current else None), removed

    def _refresh_master(self) -> None:
        """Another process rotated the master key after this one opened the vault:
        reload the records and reopen the (new) master key."""
        reopen = getattr(self, "_reopen", None)
        self.reload_meta()
        if reopen is None:
            raise IntegrityError("the vault's master key changed while it was open", hint="re-run the command")
        params = json.loads(self._meta["master_params"])
        params["key_id"] = self._meta["master_key_id"]
        old = self._key_source
        self._key_source = reopen(self._meta["master_source"], params)
        old.close()
        self._check_key()

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


def _loads(text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError:
        return {}


def _check_value(value: bytes, name: str | None = None) -> None:
    where = f" for {name!r}" if name else ""
    if not isinstance(value, (bytes, bytearray)):
        raise UsageError("a secret value must be bytes")
    if len(value) == 0:
        raise UsageError(f"empty secret value{where}", hint="nothing was written; pipe the value on stdin or use --value-file")
    if len(value) > MAX_VALUE_BYTES:
        raise UsageError(f"secret value{where} is {len(value)} bytes; the limit is {MAX_VALUE_BYTES}")
