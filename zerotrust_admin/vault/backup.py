"""Encrypted vault backups (format documented in docs/backup.md).

A backup holds every secret and version of the vault (values included) as
JSON lines, encrypted under a fresh content key (CEK) with AES-256-GCM in
chunks; the CEK is wrapped under a key-encryption key (KEK): a passphrase
(scrypt) or an X25519 recipient public key (ephemeral-static ECDH + HKDF), so a
backup can be restored on another host that holds the private key. It does not
contain the vault's master key or data keys: restoring re-encrypts everything
under the target vault's own keys.

Layout::

    preamble   "ZTBACKUP" | version (1 byte) | KEK type (1 byte) | header length (u32 BE)
    header     canonical JSON: kdf / recipient parameters, chunk size, source vault, time
    wrapped    u32 BE length | AES-256-GCM(KEK, CEK, aad = preamble || header)
    checksum   SHA-256(preamble || header || wrapped): tells a damaged file from a wrong key
    chunks     u32 BE length | AES-256-GCM(CEK, data, aad = checksum || u64 BE index || final flag)

The last chunk carries final flag 1; anything after it, a missing final chunk,
a reordered or altered chunk, or a flipped header byte fails authentication
(exit 5); a wrong passphrase or private key fails the CEK unwrap with an intact
checksum (exit 4). Restore authenticates the whole file before writing, then
writes everything in one transaction into an empty vault.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from zerotrust_admin import fsutil
from zerotrust_admin.crypto import (
    DecryptionFailed,
    KeyAgreementFailed,
    ScryptParams,
    derive_key,
    hkdf_sha256,
    open_sealed,
    random_key,
    seal,
    x25519_generate,
    x25519_public,
    x25519_shared,
)
from zerotrust_admin.errors import AlreadyExistsError, DeniedError, IntegrityError, NotFoundError, UsageError, ZeroTrustError
from zerotrust_admin.secret import Secret
from zerotrust_admin.timeutil import rfc3339

MAGIC = b"ZTBACKUP"
VERSION = 1
KEK_PASSPHRASE = 1
KEK_X25519 = 2
KEK_NAMES = {KEK_PASSPHRASE: "passphrase", KEK_X25519: "x25519"}
CHUNK_SIZE = 1 << 16
MAX_HEADER = 1 << 16
MAX_CHUNK = CHUNK_SIZE + 64
PUBLIC_PREFIX = "zt-x25519:"
SECRET_PREFIX = "zt-x25519-secret:"
HKDF_INFO = b"zt-backup-v1 x25519 kek"
MIN_PASSPHRASE = 12
PASSPHRASE_ENV = "ZEROTRUST_BACKUP_PASSPHRASE"


# --- recipients ---------------------------------------------------------------------
def generate_identity(path: Path) -> str:
    """Write a new X25519 private key to ``path`` (0600, never overwritten);
    return the public recipient string to give to ``vault backup --recipient``."""
    private, public = x25519_generate()
    text = f"# zerotrust-admin backup identity (X25519 private key); keep it secret\n# public: {format_public(public)}\n{SECRET_PREFIX}{base64.b64encode(private).decode()}\n"
    if not Path(path).parent.is_dir():
        raise NotFoundError(f"directory {Path(path).parent} does not exist")
    try:
        fsutil.write_private_file(Path(path), text.encode(), overwrite=False)
    except ZeroTrustError:
        raise AlreadyExistsError(f"{path} already exists; refusing to overwrite a key file", hint="choose another --output") from None
    return format_public(public)


def format_public(public: bytes) -> str:
    return PUBLIC_PREFIX + base64.b64encode(public).decode()


def parse_public(text: str) -> bytes:
    text = text.strip()
    if os.path.isfile(text):
        lines = [ln.strip() for ln in Path(text).read_text(encoding="utf-8", errors="replace").splitlines()]
        found = [ln for ln in lines if ln.startswith(PUBLIC_PREFIX)] or [ln.split("public:", 1)[1].strip() for ln in lines if "public:" in ln]
        if not found:
            raise UsageError(f"{text} holds no {PUBLIC_PREFIX} recipient")
        text = found[0]
    if not text.startswith(PUBLIC_PREFIX):
        raise UsageError(f"a recipient looks like {PUBLIC_PREFIX}<base64>", hint="create one with: zerotrust-admin vault backup-keygen --output FILE")
    try:
        raw = base64.b64decode(text[len(PUBLIC_PREFIX):], validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UsageError("the recipient is not a valid X25519 public key")
    return raw


def load_identity(path: Path) -> Secret:
    data = fsutil.read_private_file(Path(path), what="backup identity file")
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith(SECRET_PREFIX):
            try:
                raw = base64.b64decode(line[len(SECRET_PREFIX):], validate=True)
            except ValueError:
                break
            if len(raw) == 32:
                return Secret(raw)
            break
    raise UsageError(f"{path} is not a zerotrust-admin backup identity", hint="create one with: zerotrust-admin vault backup-keygen")


def _fingerprint(public: bytes) -> str:
    return hashlib.sha256(b"zt-x25519-fp\n" + public).hexdigest()[:16]


# --- KEKs -----------------------------------------------------------------------------
@dataclass
class PassphraseKek:
    passphrase: Secret
    scrypt_n: int = 2**17

    def __repr__(self) -> str:
        return "PassphraseKek(<redacted>)"


@dataclass
class RecipientKek:
    public: bytes


def _new_kek(kek) -> tuple[int, dict, bytes]:
    if isinstance(kek, PassphraseKek):
        if len(kek.passphrase) < MIN_PASSPHRASE:
            raise UsageError(f"the backup passphrase is shorter than {MIN_PASSPHRASE} characters")
        params = ScryptParams.new(n=kek.scrypt_n)
        return KEK_PASSPHRASE, {"type": "passphrase", "kdf": params.to_dict()}, derive_key(kek.passphrase.reveal(), params)
    if isinstance(kek, RecipientKek):
        eph_private, eph_public = x25519_generate()
        try:
            shared = x25519_shared(eph_private, kek.public)
        except KeyAgreementFailed:
            raise UsageError("the recipient is not a valid X25519 public key") from None
        key = hkdf_sha256(shared, salt=eph_public + kek.public, info=HKDF_INFO)
        return KEK_X25519, {"type": "x25519", "ephemeral": base64.b64encode(eph_public).decode(),
                            "recipient": base64.b64encode(kek.public).decode(), "recipient_fingerprint": _fingerprint(kek.public)}, key
    raise TypeError("unknown KEK")


# --- writing --------------------------------------------------------------------------
def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _chunk_aad(checksum: bytes, index: int, final: bool) -> bytes:
    return checksum + struct.pack(">QB", index, 1 if final else 0)


def write_backup(records: Iterator[dict], out: BinaryIO, kek, *, source_vault_id: str) -> dict:
    kek_type, kek_header, kek_key = _new_kek(kek)
    header = _canonical({"created": rfc3339(), "source_vault_id": source_vault_id, "chunk_size": CHUNK_SIZE, "kek": kek_header,
                         "payload": "jsonl-v1"})
    preamble = MAGIC + struct.pack(">BBI", VERSION, kek_type, len(header))
    cek = random_key()
    wrapped = seal(kek_key, cek, preamble + header)
    checksum = hashlib.sha256(preamble + header + struct.pack(">I", len(wrapped)) + wrapped).digest()
    out.write(preamble + header + struct.pack(">I", len(wrapped)) + wrapped + checksum)
    counts = {"secrets": 0, "versions": 0}
    buf = bytearray()
    index = 0

    def flush(final: bool) -> None:
        nonlocal index, buf
        while len(buf) >= CHUNK_SIZE or final:
            piece = bytes(buf[:CHUNK_SIZE])
            del buf[:CHUNK_SIZE]
            last = final and not buf
            sealed = seal(cek, piece, _chunk_aad(checksum, index, last))
            out.write(struct.pack(">I", len(sealed)) + sealed)
            index += 1
            if last:
                return

    buf += _canonical({"type": "backup", "format": 1, "source_vault_id": source_vault_id}) + b"\n"
    for rec in records:
        if rec["type"] == "secret":
            counts["secrets"] += 1
        elif rec["type"] == "version":
            counts["versions"] += 1
        buf += _canonical(rec) + b"\n"
        if len(buf) >= CHUNK_SIZE:
            flush(False)
    buf += _canonical({"type": "end", **counts}) + b"\n"
    flush(True)
    return {**counts, "kek": KEK_NAMES[kek_type], "chunks": index, **({"recipient_fingerprint": kek_header["recipient_fingerprint"]} if kek_type == KEK_X25519 else {})}


def create_backup(vault, output: Path, kek, *, overwrite: bool = False) -> dict:
    """Write an encrypted backup of ``vault`` to ``output`` atomically (0600)."""
    output = Path(output)
    resource = str(output)
    try:
        if os.path.lexists(output) and not overwrite:
            raise AlreadyExistsError(f"{output} already exists; refusing to overwrite it", hint="choose another --output, or pass --force")
        if not output.parent.is_dir():
            raise NotFoundError(f"directory {output.parent} does not exist")
        tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, fsutil.FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as fh:
                result = write_backup(vault.dump_records(), fh, kek, source_vault_id=vault.vault_id)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, output)
            fsutil.fsync_dir(output.parent)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
        result["bytes"] = output.stat().st_size
        result["output"] = str(output)
    except ZeroTrustError as exc:
        vault._audit("backup", "backup", resource, False, error=type(exc).__name__)
        raise
    vault._audit("backup", "backup", resource, True, secrets=result["secrets"], versions=result["versions"], kek=result["kek"],
                 **({"recipient_fingerprint": result["recipient_fingerprint"]} if "recipient_fingerprint" in result else {}))
    return result


# --- reading ----------------------------------------------------------------------------
def _damaged(detail: str) -> IntegrityError:
    return IntegrityError(f"the backup is damaged or was tampered with ({detail})", hint="nothing was restored; use another copy of the backup")


def _read_exact(fh: BinaryIO, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise _damaged(f"truncated in the {what}")
    return data


@dataclass
class BackupHeader:
    kek_type: int
    header: dict
    preamble: bytes
    header_bytes: bytes
    wrapped: bytes
    checksum: bytes

    @property
    def kek(self) -> str:
        return KEK_NAMES[self.kek_type]


def read_header(fh: BinaryIO) -> BackupHeader:
    start = fh.read(len(MAGIC) + 6)
    if len(start) < len(MAGIC) + 6:
        raise _damaged("truncated in the preamble")
    if start[: len(MAGIC)] != MAGIC:
        raise _damaged("not a zerotrust-admin backup: bad magic")
    version, kek_type, header_len = struct.unpack(">BBI", start[len(MAGIC):])
    if version != VERSION:
        raise _damaged(f"unknown backup format version {version}")
    if kek_type not in KEK_NAMES or header_len > MAX_HEADER:
        raise _damaged("bad preamble")
    header_bytes = _read_exact(fh, header_len, "header")
    wrapped_len = struct.unpack(">I", _read_exact(fh, 4, "header"))[0]
    if wrapped_len > 1024:
        raise _damaged("bad wrapped key length")
    wrapped = _read_exact(fh, wrapped_len, "wrapped key")
    checksum = _read_exact(fh, 32, "checksum")
    if hashlib.sha256(start + header_bytes + struct.pack(">I", wrapped_len) + wrapped).digest() != checksum:
        raise _damaged("header checksum mismatch")
    try:
        header = json.loads(header_bytes)
    except ValueError:
        raise _damaged("header is not JSON") from None
    if not isinstance(header, dict) or (header.get("kek") or {}).get("type") != KEK_NAMES[kek_type]:
        raise _damaged("header does not match its KEK type")
    return BackupHeader(kek_type, header, start, header_bytes, wrapped, checksum)


def _unwrap_cek(head: BackupHeader, get_passphrase: Callable[[], Secret] | None, identity: Secret | None) -> bytes:
    kek = head.header["kek"]
    try:
        if head.kek_type == KEK_PASSPHRASE:
            if get_passphrase is None:
                raise UsageError("this backup is protected by a passphrase and none was given", hint=f"set {PASSPHRASE_ENV} or run on a terminal")
            with get_passphrase() as passphrase:
                key = derive_key(passphrase.reveal(), ScryptParams.from_dict(kek["kdf"]))
            wrong = "wrong passphrase for this backup"
        else:
            if identity is None:
                raise UsageError("this backup is encrypted to an X25519 recipient", hint="pass --identity FILE (the private key from vault backup-keygen)")
            recipient = base64.b64decode(kek["recipient"])
            mine = x25519_public(identity.reveal())
            if mine != recipient:
                raise DeniedError(f"this backup is for recipient {_fingerprint(recipient)}, not for your key {_fingerprint(mine)}",
                                  hint="use the identity file whose public key the backup was made for")
            ephemeral = base64.b64decode(kek["ephemeral"])
            key = hkdf_sha256(x25519_shared(identity.reveal(), ephemeral), salt=ephemeral + recipient, info=HKDF_INFO)
            wrong = "the private key does not open this backup"
    except (KeyError, ValueError, TypeError, KeyAgreementFailed):
        raise _damaged("bad key-encryption parameters") from None
    try:
        return open_sealed(key, head.wrapped, head.preamble + head.header_bytes)
    except DecryptionFailed:
        raise DeniedError(wrong, hint="nothing was restored") from None


def _records(fh: BinaryIO, head: BackupHeader, cek: bytes) -> Iterator[dict]:
    """Authenticate chunk by chunk and yield the records; raise on any damage."""
    index = 0
    pending = b""
    saw_final = False
    counts = {"secrets": 0, "versions": 0}
    ended = False
    first = True
    while not saw_final:
        raw_len = fh.read(4)
        if len(raw_len) != 4:
            raise _damaged("truncated: the final chunk is missing")
        length = struct.unpack(">I", raw_len)[0]
        if length > MAX_CHUNK:
            raise _damaged(f"chunk {index} has an impossible length")
        sealed = _read_exact(fh, length, f"chunk {index}")
        for final in (False, True):
            try:
                data = open_sealed(cek, sealed, _chunk_aad(head.checksum, index, final))
                saw_final = final
                break
            except DecryptionFailed:
                continue
        else:
            raise _damaged(f"chunk {index} does not authenticate")
        index += 1
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if ended:
                raise _damaged("records after the end marker")
            try:
                rec = json.loads(line)
            except ValueError:
                raise _damaged("a record is not JSON") from None
            if first:
                if rec.get("type") != "backup":
                    raise _damaged("missing backup record")
                first = False
                continue
            kind = rec.get("type")
            if kind == "end":
                if rec.get("secrets") != counts["secrets"] or rec.get("versions") != counts["versions"]:
                    raise _damaged("record counts do not match")
                ended = True
                continue
            if kind in ("secret", "version"):
                counts[kind + "s"] += 1
            yield rec
    if fh.read(1):
        raise _damaged("data after the final chunk")
    if pending or not ended:
        raise _damaged("the end marker is missing")


def inspect_backup(path: Path) -> dict:
    with _open(path) as fh:
        head = read_header(fh)
    return {"kek": head.kek, "created": head.header.get("created"), "source_vault_id": head.header.get("source_vault_id"),
            **({"recipient_fingerprint": head.header["kek"].get("recipient_fingerprint")} if head.kek_type == KEK_X25519 else {})}


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NotFoundError(f"backup file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory") from None
    except PermissionError:
        raise UsageError(f"cannot read {path}: permission denied") from None


def verify_backup(path: Path, *, get_passphrase=None, identity: Secret | None = None) -> dict:
    """Authenticate the whole backup without writing anything."""
    return _verify(path, get_passphrase, identity)[0]


def _verify(path: Path, get_passphrase, identity: Secret | None) -> tuple[dict, bytes]:
    counts = {"secrets": 0, "versions": 0}
    with _open(path) as fh:
        head = read_header(fh)
        cek = _unwrap_cek(head, get_passphrase, identity)
        for rec in _records(fh, head, cek):
            if rec.get("type") in ("secret", "version"):
                counts[rec["type"] + "s"] += 1
    return {**counts, "kek": head.kek, "source_vault_id": head.header.get("source_vault_id"), "created": head.header.get("created")}, cek


def restore_backup(vault, path: Path, *, get_passphrase=None, identity: Secret | None = None, dry_run: bool = False) -> dict:
    """Verify the whole backup, then restore it into the (empty) vault in one transaction."""
    path = Path(path)
    resource = str(path)
    try:
        if not dry_run and not vault.is_empty():
            raise AlreadyExistsError(f"the vault {vault.path} is not empty; restore only into an empty vault",
                                     hint="init a fresh ZEROTRUST_HOME (another host or directory) and restore there")
        checked, cek = _verify(path, get_passphrase, identity)
        if dry_run:
            return {**checked, "dry_run": True, "restored": False}
        with _open(path) as fh:
            head = read_header(fh)
            counts = vault.restore_records(_records(fh, head, cek))
    except ZeroTrustError as exc:
        if not dry_run:
            vault._audit("backup", "restore", resource, False, error=type(exc).__name__)
        raise
    vault._audit("backup", "restore", resource, True, secrets=counts["secrets"], versions=counts["versions"], kek=checked["kek"],
                 source_vault_id=checked["source_vault_id"])
    return {**checked, **counts, "dry_run": False, "restored": True}
