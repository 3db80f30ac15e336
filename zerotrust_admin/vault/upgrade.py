"""Format 1 -> format 2, in place, in one transaction, on the first open.

The state of the file at upgrade time is trusted, with two checks first: every
format-1 head MAC must authenticate, and every version must open under its
data key (so the upgrade never blesses an edited head or ciphertext). What
format 1 could not detect (a rolled-back row, edited times or authors) is
carried over as it is: see docs/vault-format.md, "Upgrading a format-1 vault".
"""

from __future__ import annotations

import hashlib
import os

from zerotrust_admin.crypto import DecryptionFailed, constant_time_equal, open_sealed
from zerotrust_admin.errors import IntegrityError
from zerotrust_admin.vault import format as fmt
from zerotrust_admin.vault.heads import RESTORE_HINT
from zerotrust_admin.vault.schema import _db_errors, read_schema, schema_problem

_TABLES = ("deks", "secrets", "versions", "session_keys")


def upgrade_v1(vault) -> bool:
    """Upgrade the open format-1 ``vault`` (key already checked). Returns False
    when another process upgraded it first."""
    conn = vault._conn
    with _db_errors(vault.path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != str(fmt.FORMAT_V1):
                conn.execute("ROLLBACK")
                return False
            problem = schema_problem(read_schema(conn), fmt.FORMAT_V1)
            if problem:
                raise IntegrityError(f"the vault {vault.path} holds {problem}", hint=RESTORE_HINT)
            vault._meta = meta
            counts = _rebuild(vault, conn)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(fmt.FORMAT_VERSION),))
            generation, commit = vault._advance(conn)
            vault._meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            vault._audit("vault_upgrade", "upgrade", f"vault:{vault.vault_id}", True, from_format=fmt.FORMAT_V1,
                         to_format=fmt.FORMAT_VERSION, **counts, vault=vault.commitment())
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    vault._confirm(generation)
    return True


def _v1_head_ok(vault, name, version, sensitive, deleted_at, mac) -> bool:
    expected = vault._mac(fmt.head_mac_input(vault.vault_id, name, version, bool(sensitive), deleted_at))
    return isinstance(mac, str) and constant_time_equal(expected.encode(), mac.encode())


def _rebuild(vault, conn) -> dict:
    has_sessions = vault._has_table(conn, "session_keys")
    old = {}
    old["deks"] = conn.execute("SELECT id, wrapped, master_key_id, created, state FROM deks").fetchall()
    old["secrets"] = conn.execute("SELECT name, current_version, sensitive, created, updated, deleted_at, deleted_by, head_mac FROM secrets").fetchall()
    old["session_keys"] = conn.execute("SELECT id, wrapped, master_key_id, created, state FROM session_keys").fetchall() if has_sessions else []
    incarnations = {}
    for name, version, sensitive, _c, _u, deleted_at, _db, mac in old["secrets"]:
        if not _v1_head_ok(vault, name, version, sensitive, deleted_at, mac):
            raise IntegrityError(f"secret {name!r}: its record does not authenticate; the format-1 vault cannot be upgraded (tampered vault)", hint=RESTORE_HINT)
        incarnations[name] = os.urandom(16).hex()
    # Rebuild each table under the format-2 CREATE text (ALTER TABLE would leave
    # a different text in sqlite_master than a fresh format-2 file has).
    conn.execute("DROP INDEX versions_by_dek")
    for table in _TABLES:
        if table != "session_keys" or has_sessions:
            conn.execute(f"ALTER TABLE {table} RENAME TO v1_{table}")
    for statement in fmt.SCHEMA.split(";"):
        if statement.strip() and "TABLE meta" not in statement:
            conn.execute(statement)
    if has_sessions:
        conn.execute(fmt.SESSION_KEYS_SCHEMA)
    conn.executemany("INSERT INTO deks (id, wrapped, master_key_id, created, state, mac) VALUES (?, ?, ?, ?, ?, ?)",
                     [(*row, vault._dek_mac(row[0], row[2], row[3], row[4])) for row in old["deks"]])
    if has_sessions:  # executemany prepares the statement even for no rows
        conn.executemany("INSERT INTO session_keys (id, wrapped, master_key_id, created, state, mac) VALUES (?, ?, ?, ?, ?, ?)",
                         [(*row, vault._session_mac(row[0], row[2], row[3], row[4])) for row in old["session_keys"]])
    conn.executemany(
        "INSERT INTO secrets (name, incarnation, current_version, sensitive, created, updated, deleted_at, deleted_by, head_mac, bucket) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(name, incarnations[name], version, sensitive, created, updated, deleted_at, deleted_by,
          vault._head_mac(name, incarnations[name], version, sensitive, created, updated, deleted_at, deleted_by), vault._bucket(name))
         for name, version, sensitive, created, updated, deleted_at, deleted_by, _mac in old["secrets"]])
    # Every bucket starts empty and is digested from the rows by _advance.
    conn.executemany("INSERT INTO buckets (bucket, digest) VALUES (?, ?)", [(b, fmt.EMPTY_BUCKET_DIGEST) for b in range(fmt.BUCKETS)])
    vault._stored = [fmt.EMPTY_BUCKET_DIGEST] * fmt.BUCKETS
    vault._verified = set()
    vault._dirty = set(range(fmt.BUCKETS))
    versions = 0
    rows = conn.execute("SELECT name, version, dek_id, sealed, created, created_by, size, metadata FROM v1_versions ORDER BY name, version")
    batch = []
    for name, version, dek_id, sealed, created, created_by, size, metadata_json in rows:
        try:
            open_sealed(vault._dek(dek_id), sealed, fmt.secret_aad(vault.vault_id, name, version, dek_id, metadata_json))
        except DecryptionFailed:
            raise IntegrityError(f"secret {name!r} version {version} does not authenticate; the format-1 vault cannot be upgraded", hint=RESTORE_HINT) from None
        incarnation = incarnations.get(name)
        if incarnation is None:
            continue  # a version row with no secret (format 1 left none; a planted one is dropped)
        batch.append((name, version, dek_id, sealed, created, created_by, size, metadata_json,
                      vault._mac(fmt.version_mac_input(vault.vault_id, name, incarnation, version, dek_id, created, created_by, size,
                                                       metadata_json, hashlib.sha256(sealed).hexdigest()))))
        versions += 1
        if len(batch) >= 1000:
            _insert_versions(conn, batch)
    _insert_versions(conn, batch)
    for table in _TABLES:
        if table != "session_keys" or has_sessions:
            conn.execute(f"DROP TABLE v1_{table}")
    return {"secrets": len(old["secrets"]), "versions": versions, "data_keys": len(old["deks"]), "session_keys": len(old["session_keys"])}


def _insert_versions(conn, batch: list) -> None:
    conn.executemany("INSERT INTO versions (name, version, dek_id, sealed, created, created_by, size, metadata, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
    batch.clear()
