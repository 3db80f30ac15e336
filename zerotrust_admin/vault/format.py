"""The vault file format, version 2 (documented in docs/vault-format.md).

Everything that decides how bytes are bound together lives here, so the
format can be read in one screen and reproduced by a 40-line script.
"""

from __future__ import annotations

import hashlib

FORMAT_VERSION = 2
FORMAT_V1 = 1  # still opened: upgraded in place to format 2 on the first open
SQLITE_MAGIC = b"SQLite format 3\x00"
KCV_PLAINTEXT = b"zerotrust key check v1"

SCHEMA_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE deks (
    id            TEXT PRIMARY KEY,
    wrapped       BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('active', 'retired'))
);
CREATE TABLE secrets (
    name            TEXT PRIMARY KEY,
    current_version INTEGER NOT NULL,
    sensitive       INTEGER NOT NULL DEFAULT 0,
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL,
    deleted_at      TEXT,
    deleted_by      TEXT,
    head_mac        TEXT NOT NULL
);
CREATE TABLE versions (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    dek_id     TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    size       INTEGER NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE INDEX versions_by_dek ON versions (dek_id);
"""


def _join(*parts: str) -> bytes:
    return b"\x00".join(p.encode("utf-8") for p in parts)


def secret_aad(vault_id: str, name: str, version: int, dek_id: str, metadata_json: str) -> bytes:
    """Binds a sealed version to its vault, name, version, data key and metadata."""
    return _join("zt-secret-v1", vault_id, name, str(version), dek_id, metadata_json)


def dek_aad(vault_id: str, dek_id: str, master_key_id: str) -> bytes:
    return _join("zt-dek-v1", vault_id, dek_id, master_key_id)


def head_key_aad(vault_id: str, master_key_id: str) -> bytes:
    return _join("zt-head-key-v1", vault_id, master_key_id)


def head_mac_input(vault_id: str, name: str, current_version: int, sensitive: bool, deleted_at: str | None) -> bytes:
    """What a secret's head MAC covers: the columns that decide what a read
    returns and whether it needs MFA. Without the head key nobody can point a
    secret at another version, clear its sensitive flag or undo a soft delete."""
    return _join("zt-head-v1", vault_id, name, str(int(current_version)), "1" if sensitive else "0", deleted_at or "")


def kcv_aad(vault_id: str, master_key_id: str) -> bytes:
    return _join("zt-kcv-v1", vault_id, master_key_id)


# --- Additions for key rotation (issue 3). Format version stays 1: every
# addition is optional and older files gain it lazily. ----------------------

# Created on first use (CREATE TABLE IF NOT EXISTS), so a vault written before
# this table existed still opens and reads unchanged.
SESSION_KEYS_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS session_keys (
    id            TEXT PRIMARY KEY,
    wrapped       BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('current', 'previous'))
)
"""

# Optional meta records written by a master key change (rotation or migration);
# JSON objects, never key bytes. See docs/key-hierarchy.md, "Crash safety".
META_MASTER_PENDING = "master_pending"    # a new master key being created, not yet committed
META_MASTER_RETIRING = "master_retiring"  # the previous master key, to destroy after the commit
META_HEAD_KEY = "head_key"                # HMAC key for secret heads, wrapped by the master key (hex)
META_DEK_ROTATED = "dek_rotated"          # RFC 3339 time of the last completed DEK rotation
META_AUDIT_BINDING = "audit_binding"      # JSON {"log", "key_id"}: the audit log and signing key this vault's writes go to (V4)


def session_key_aad(vault_id: str, key_id: str, master_key_id: str) -> bytes:
    return _join("zt-session-key-v1", vault_id, key_id, master_key_id)


# --- Format 2 (issue 12): every record a decision or a report depends on is
# authenticated under the head key, and one commitment covers them all. ------

SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE deks (
    id            TEXT PRIMARY KEY,
    wrapped       BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    mac           TEXT NOT NULL
);
CREATE TABLE secrets (
    name            TEXT PRIMARY KEY,
    incarnation     TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    sensitive       INTEGER NOT NULL DEFAULT 0,
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL,
    deleted_at      TEXT,
    deleted_by      TEXT,
    head_mac        TEXT NOT NULL,
    bucket          INTEGER NOT NULL CHECK (bucket BETWEEN 0 AND 255)
) WITHOUT ROWID;
CREATE INDEX secrets_by_bucket ON secrets (bucket, name, head_mac);
CREATE TABLE versions (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    dek_id     TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    size       INTEGER NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}',
    mac        TEXT NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE INDEX versions_by_dek ON versions (dek_id);
CREATE TABLE buckets (
    bucket INTEGER PRIMARY KEY,
    digest TEXT NOT NULL
);
"""

SESSION_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_keys (
    id            TEXT PRIMARY KEY,
    wrapped       BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('current', 'previous')),
    mac           TEXT NOT NULL
)
"""

def _fields(*parts: str | None) -> bytes:
    """A format-2 MAC input: every field framed, so no two field lists encode
    alike: NULL is one 0x00 byte; a text is 0x01, its UTF-8 length as 4 bytes
    big-endian, then its UTF-8 bytes. Anything but text or NULL (a BLOB, a
    number where text belongs) raises TypeError: such a row never authenticates."""
    out = bytearray()
    for part in parts:
        if part is None:
            out += b"\x00"
            continue
        if not isinstance(part, str):
            raise TypeError("a MAC input field must be text or NULL")
        data = part.encode("utf-8")
        out += b"\x01" + len(data).to_bytes(4, "big") + data
    return bytes(out)


META_GENERATION = "generation"  # decimal; +1 per write transaction
META_COMMIT = "commit"          # hex HMAC: the vault-wide commitment (commit_input)
META_MAC = "meta_mac"           # hex HMAC over every other meta record (meta_mac_input)
# Not covered by the meta MAC: the MAC itself, and the two records the commitment covers directly.
META_UNMACED = frozenset({META_MAC, META_COMMIT, META_GENERATION})


def head_mac_input_v2(vault_id: str, name: str, incarnation: str, current_version: int, sensitive: bool,
                      created: str, updated: str, deleted_at: str | None, deleted_by: str | None) -> bytes:
    """A format-2 head: everything in the ``secrets`` row but the MAC."""
    return _fields("zt-head-v2", vault_id, name, incarnation, str(int(current_version)), "1" if sensitive else "0",
                   created, updated, deleted_at, deleted_by)


def version_mac_input(vault_id: str, name: str, incarnation: str, version: int, dek_id: str, created: str,
                      created_by: str, size: int, metadata_json: str, sealed_sha256_hex: str) -> bytes:
    """A version row's metadata, bound to its secret's incarnation and (by hash) to its ciphertext."""
    return _fields("zt-version-v2", vault_id, name, incarnation, str(int(version)), dek_id, created, created_by,
                   str(int(size)), metadata_json, sealed_sha256_hex)


def dek_record_mac_input(vault_id: str, dek_id: str, master_key_id: str, created: str, state: str) -> bytes:
    return _fields("zt-dek-record-v2", vault_id, dek_id, master_key_id, created, state)


def session_key_record_mac_input(vault_id: str, key_id: str, master_key_id: str, created: str, state: str) -> bytes:
    return _fields("zt-session-key-record-v2", vault_id, key_id, master_key_id, created, state)


def meta_mac_input(vault_id: str, meta: dict[str, str]) -> bytes:
    """Every meta record except META_UNMACED, as key, value pairs in key order
    (framed: a value holding NUL bytes cannot pose as further records)."""
    fields = ["zt-meta-v2", vault_id]
    for key in sorted(k for k in meta if k not in META_UNMACED):
        fields += [key, meta[key]]
    return _fields(*fields)


# --- Buckets: the commitment is O(1) at open and O(n/256) per read/write -------
BUCKETS = 256
EMPTY_BUCKET_DIGEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # SHA-256 of no bytes


def bucket_of(vault_id: str, name: str) -> int:
    """The first byte of SHA-256(``zt-bucket-v1`` 0x00 vault_id 0x00 name)."""
    return hashlib.sha256(_join("zt-bucket-v1", vault_id, name)).digest()[0]


BAD_BUCKET_DIGEST = "damaged"  # never equal to a stored (hex) digest


def bucket_digest(rows) -> str:
    """Hex SHA-256 over the framed fields (``_fields``) ``name``, ``head_mac`` of
    every row of one bucket, in name order (an empty bucket: EMPTY_BUCKET_DIGEST).
    A damaged row (a name or MAC that is not text, e.g. a BLOB) makes the digest
    BAD_BUCKET_DIGEST, so it never matches."""
    digest = hashlib.sha256()
    try:
        for name, mac in rows:
            digest.update(_fields(name, mac))
    except (TypeError, UnicodeEncodeError):
        return BAD_BUCKET_DIGEST
    return digest.hexdigest()


def commit_input(vault_id: str, generation: int, deks: int, session_keys: int, digest_hex: str) -> bytes:
    """``digest_hex`` = SHA-256 over the ASCII hex texts: the 256 bucket digests in
    bucket order, every deks.mac in id order, every session_keys.mac in id order, then meta_mac."""
    return _fields("zt-commit-v2", vault_id, str(int(generation)), str(deks), str(session_keys), digest_hex)
