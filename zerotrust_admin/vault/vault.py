"""The integrated vault: one SQLite file, AES-256-GCM envelope encryption.

Each secret version is sealed under a data encryption key (DEK); each DEK is
wrapped by the master key (a KeySource). Lookups are O(log n) on the primary
key; nothing decrypts more than the version asked for.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable

from zerotrust_admin import fsutil
from zerotrust_admin.audit.log import Actor, AuditLog, VaultAuditState
from zerotrust_admin.crypto import random_key
from zerotrust_admin.errors import AlreadyExistsError, AuditError, IntegrityError, UsageError, WrongKeyError, ZeroTrustError
from zerotrust_admin.keys import KeySource, UnwrapFailed
from zerotrust_admin.timeutil import rfc3339
from zerotrust_admin.vault import format as fmt
from zerotrust_admin.vault.heads import HeadsMixin
from zerotrust_admin.vault.keyring import KeyringMixin
from zerotrust_admin.vault.records import (  # noqa: F401  (re-exported: callers import these from here)
    MAX_VALUE_BYTES,
    DekInfo,
    ImportResult,
    SecretInfo,
    SessionKeyInfo,
    VersionInfo,
    _check_value,
    _loads,
)
from zerotrust_admin.vault.schema import _db_errors, check_vault_file, meta_table_ok, read_schema, schema_problem  # noqa: F401
from zerotrust_admin.vault.upgrade import upgrade_v1
from zerotrust_admin.vault.versions import VersionsMixin


BUSY_TIMEOUT_MS = 30_000  # tests shorten it here


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Functions with side effects never run from the schema (views, triggers, defaults).
    conn.execute("PRAGMA trusted_schema=OFF")
    # Freed pages are zeroed, so destroyed ciphertext does not linger in the file.
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class Vault(HeadsMixin, KeyringMixin, VersionsMixin):
    def __init__(self, path: Path, conn: sqlite3.Connection, meta: dict, key_source: KeySource, audit: AuditLog | None, actor: Actor | None):
        self.path = path
        self._conn = conn
        self._meta = meta
        self._key_source = key_source
        self.audit = audit
        self.actor = actor
        self._deks: dict[str, bytes] = {}
        self._head_key_cache: tuple[str, bytes] | None = None
        self._txn_audits: list = []
        self._verified_version: int | None = None  # PRAGMA data_version when the state was last verified
        self._stored: list[str] | None = None       # the 256 stored bucket digests, once the commitment over them checked out
        self._verified: set[int] = set()            # buckets whose rows were checked against their stored digest
        self._dirty: set[int] = set()               # buckets changed by the write transaction under way
        self._state_generation = 0
        self._audit_binding: str | None = None  # the audit_binding record to write (JSON), when the log has an id and a key

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
            master_key_id = os.urandom(8).hex()
            source, params = create_source(master_key_id)
            vault_id = os.urandom(16).hex()
            now = rfc3339()
            conn = sqlite3.connect(tmp, isolation_level=None)
            conn.execute("PRAGMA trusted_schema=OFF")
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
            conn.executemany("INSERT INTO buckets (bucket, digest) VALUES (?, ?)", [(b, fmt.EMPTY_BUCKET_DIGEST) for b in range(fmt.BUCKETS)])
            building = cls(tmp, conn, meta, source, None, None)
            dek_id = os.urandom(8).hex()
            conn.execute(
                "INSERT INTO deks (id, wrapped, master_key_id, created, state, mac) VALUES (?, ?, ?, ?, 'active', ?)",
                (dek_id, source.wrap(random_key(), fmt.dek_aad(vault_id, dek_id, master_key_id)), master_key_id, now,
                 building._dek_mac(dek_id, master_key_id, now, "active")),
            )
            generation, _commit = building._advance(conn)
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
        conn = _connect(path)
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        vault = cls(path, conn, meta, source, audit, actor)
        vault._confirm(generation)
        return vault

    @classmethod
    def open(cls, path: Path, open_source: Callable[[str, dict], KeySource], *, audit: AuditLog | None = None, actor: Actor | None = None,
             interrupted_ok: bool = False) -> "Vault":
        """Open an existing vault; ``open_source(kind, params)`` yields its master key.

        Before the key: the file checks (mode, type, size) and the schema check
        (V2). After the key check: a format-1 file is upgraded in place; the
        meta MAC (V1, V5), every key record and the commitment (V3) are
        checked, and the generation is compared with the audit log's floor (V4)."""
        path = Path(path)
        check_vault_file(path)
        with _db_errors(path):
            conn = _connect(path)
            try:
                version, meta = _read_format(conn, path)
            except BaseException:
                conn.close()
                raise
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
        try:
            source = open_source(meta["master_source"], params)
        except BaseException:
            conn.close()
            raise
        vault = cls(path, conn, meta, source, audit, actor)
        vault._reopen = open_source
        try:
            try:
                vault._check_key()
            except WrongKeyError:
                vault._audit("secret_access", "unlock", str(path), False, error="wrong_master_key")
                raise
            # The floor is read BEFORE the vault: a concurrent writer confirms its
            # generation only after its COMMIT, so the vault read next is at least as new.
            state = vault._audit_state()
            vault._check_known(state)
            floor = state.confirmed
            if audit is not None and state.log_id and state.key_id:
                vault._audit_binding = json.dumps({"key_id": state.key_id, "log": state.log_id}, sort_keys=True, separators=(",", ":"))
            if version == fmt.FORMAT_V1:
                vault._check_floor(0, floor)
                upgrade_v1(vault)
            with _db_errors(path):
                conn.execute("BEGIN")
                try:
                    vault._meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                    generation = vault._verify_state(conn, vault._meta)
                    vault._verified_version = conn.execute("PRAGMA data_version").fetchone()[0]
                finally:
                    conn.execute("COMMIT")
            vault._check_floor(generation, floor)
            vault._check_binding(state)
            if state.pending > generation and not interrupted_ok:
                vault._check_pending()
        except BaseException:
            vault.close()
            raise
        return vault

    def _audit_state(self) -> VaultAuditState:
        if self.audit is None:
            return VaultAuditState()  # library use without an audit log: no floor (docs/vault-format.md)
        return self.audit.vault_state(self.vault_id)

    def _check_binding(self, state: VaultAuditState) -> None:
        """V4 (F4/F6): a vault bound to an audit log (meta ``audit_binding``, under
        the meta MAC) opens only with that log and signing key."""
        if self.audit is None or fmt.META_AUDIT_BINDING not in self._meta:
            return
        try:
            bound = json.loads(self._meta[fmt.META_AUDIT_BINDING])
            bound_log, bound_key = bound["log"], bound["key_id"]
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"the vault {self.path} has a damaged audit_binding record", hint="restore the vault from a backup") from None
        if (bound_log, bound_key) != (state.log_id, state.key_id):
            raise IntegrityError(f"this vault's audit trail was replaced or removed: the vault was written with audit log {bound_log} signed by key {bound_key}, "
                                 f"the audit log now is {state.log_id or 'empty'} signed by {state.key_id or 'no key'}",
                                 hint="restore audit.log, audit.log.head and signing.key from a backup (or compare with your SIEM copy: audit verify --witness)")

    def _check_known(self, state: VaultAuditState) -> None:
        """V1/V4: the audit log records other vaults but never this one: the vault
        (and its key) were swapped for another installation's pair."""
        if state.others and not state.known:
            raise IntegrityError(f"the vault {self.path} (id {self.vault_id}) is not the vault this audit log records: "
                                 "vault.db (and its key) were replaced by another vault", hint="restore this installation's vault and key from a backup")

    def _pending_generation(self) -> tuple[int, int]:
        """Under the vault's write lock (no writer between its audit record and its
        COMMIT): the audit log's pending generation and the vault's verified one."""
        with _db_errors(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                generation = self._verify_state(self._conn, dict(self._conn.execute("SELECT key, value FROM meta").fetchall()))
                self._verified_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
                return self._audit_state().pending, generation
            finally:
                self._conn.execute("ROLLBACK")

    def _check_pending(self) -> None:
        """V4 (F3): a generation the audit log recorded as written is not in the
        vault. Seen without the lock it may be a writer still between its record
        and its COMMIT, so it is decided again under the vault's write lock."""
        pending, generation = self._pending_generation()
        if pending > generation:
            raise IntegrityError(f"the last audited write (generation {pending}) is not in the vault (generation {generation}): it was interrupted "
                                 "(a crash between its audit record and its commit) or vault.db was replaced by the copy from before it",
                                 hint="after checking, accept the vault as it is with: zerotrust-admin vault recover --interrupted")

    def acknowledge_interrupted(self) -> dict | None:
        """Accept the vault's current generation after an interrupted write
        (``vault recover --interrupted``): audited through
        ``AuditLog.acknowledge_interrupted``. None when nothing is pending."""
        if self.audit is None or self.actor is None:
            raise UsageError("recovering an interrupted write needs the audit log")
        with _db_errors(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                generation = self._verify_state(self._conn, dict(self._conn.execute("SELECT key, value FROM meta").fetchall()))
                state = self._audit_state()
                self._check_known(state)
                self._check_floor(generation, state.confirmed)
                if state.pending <= generation:
                    return None
                self.audit.acknowledge_interrupted(self.vault_id, generation, self.actor)
                return {"vault_id": self.vault_id, "pending_generation": state.pending, "vault_generation": generation}
            finally:
                self._conn.execute("ROLLBACK")

    def _floor(self) -> int:
        if self.audit is None:
            return 0  # library use without an audit log: no floor (docs/vault-format.md)
        return self.audit.vault_floor(self.vault_id)

    def _check_floor(self, generation: int, floor: int) -> None:
        """V4: a vault older than the generation the audit log confirmed was replaced by an older copy."""
        if generation < floor:
            raise IntegrityError(f"the vault is at generation {generation} but the audit log confirmed generation {floor}: "
                                 f"{self.path.name} was replaced by an older copy", hint="restore the latest vault backup; see docs/vault-format.md")

    def _confirm(self, generation: int) -> None:
        if self.audit is None:
            return
        try:
            self.audit.confirm_vault(self.vault_id, generation)
        except IntegrityError as exc:
            # After COMMIT: the change is in the vault and its audit record is in the log;
            # only the anchor's confirmation failed. Never say "nothing was written".
            raise IntegrityError(f"the change was written (vault generation {generation}, audited) but the audit anchor could not confirm it: {exc.message}",
                                 hint="preserve audit.log, audit.log.head and audit.log.checkpoints as evidence and run: zerotrust-admin audit verify; "
                                      "the next command reports the write as interrupted until the anchor is restored") from None

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
        """One write transaction. Under the write lock it first re-checks the
        schema, and the commitment unless no other connection committed since
        this one last verified or wrote it (``PRAGMA data_version``), so it never
        blesses a file edited since open; each write checks the bucket of every
        row it changes before changing it (``_touch``); at the end it re-digests
        the touched buckets, advances the generation, rewrites the commitment, appends the audit records queued with ``_audit_in_txn``
        (each with ``details["vault"]``), and commits. The audit log's floor
        moves only after the COMMIT: a crash before it leaves the floor behind."""
        with _db_errors(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            self._txn_audits = []
            try:
                problem = schema_problem(read_schema(self._conn), fmt.FORMAT_VERSION)
                if problem:
                    raise IntegrityError(f"the vault {self.path} holds {problem}", hint="restore the vault from a backup")
                self._dirty = set()
                self._ensure_state(self._conn)
                data_version = self._verified_version
                yield self._conn
                if not self._txn_audits and self.audit is not None:
                    # A write without its own record (a key rotation's re-wrap, a purge): one
                    # record before COMMIT still carries the generation, so a copy of the
                    # file from before it is caught (V4).
                    self._txn_audits.append(("vault_commit", "commit", f"vault:{self.vault_id}", {}))
                generation, commit = self._advance(self._conn)
                self._meta.update({fmt.META_GENERATION: str(generation), fmt.META_COMMIT: commit})
                for event, action, resource, details in self._txn_audits:
                    self._audit(event, action, resource, True, **details, vault=self.commitment())
            except BaseException:
                self._txn_audits = []
                self._forget_state()  # checked again (O(1)) by the next read or write
                self._dirty = set()
                self._conn.execute("ROLLBACK")
                with suppress(ZeroTrustError):  # the cache follows the file; the original error is the one to report
                    self._reload_meta_unchecked()
                raise
            else:
                self._txn_audits = []
                self._conn.execute("COMMIT")
                self._verified_version = data_version  # this connection's own commit does not change it
        self._confirm(generation)

    @contextmanager
    def _audited_write(self, action: str, resource: str, event: str = "secret_access", **details):
        """A write transaction whose success record goes into the log before
        COMMIT (with ``details["vault"]``); a failure is audited after the rollback."""
        try:
            with self._write_txn() as conn:
                yield conn, details
                self._audit_in_txn(event, action, resource, **details)
        except ZeroTrustError as exc:
            if not isinstance(exc, AuditError):
                self._audit(event, action, resource, False, error=type(exc).__name__, **details)
            raise

    def _audit_in_txn(self, event: str, action: str, resource: str, **details) -> None:
        """A success record appended before COMMIT (a write that cannot be audited is rolled back)."""
        self._txn_audits.append((event, action, resource, details))

    def _reload_meta_unchecked(self) -> None:
        """Re-read meta into the cache (after a rollback, or before reopening a
        rotated master key); callers that decide on it use ``reload_meta``."""
        with _db_errors(self.path):
            self._meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())


def _read_format(conn, path: Path) -> tuple[int, dict]:
    """The format version and meta records, after the schema check (V2)."""
    actual = read_schema(conn)
    if "meta" not in actual:
        raise UsageError(f"{path} is an SQLite file but not a zerotrust-admin vault")
    if not meta_table_ok(actual):
        raise IntegrityError(f"the vault {path} holds an altered table 'meta' (its definition is not the documented one)", hint="restore the vault from a backup")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("format") not in (str(fmt.FORMAT_V1), str(fmt.FORMAT_VERSION)):
        raise UsageError(f"vault {path} has format {meta.get('format')!r}; this version reads formats {fmt.FORMAT_V1} and {fmt.FORMAT_VERSION}",
                         hint="upgrade zerotrust-admin")
    version = int(meta["format"])
    problem = schema_problem(actual, version)
    if problem:
        raise IntegrityError(f"the vault {path} holds {problem}", hint="restore the vault from a backup; or remove the object after checking who planted it")
    return version, meta
