"""Encrypted, signed vault backups (format documented in docs/backup.md).

A backup holds the secrets and versions (values included) that the principal
may read, as JSON lines, encrypted under a fresh content key (CEK) with
AES-256-GCM in chunks; the CEK is wrapped under a key-encryption key (KEK): a
passphrase (scrypt) or an X25519 recipient public key (ephemeral-static ECDH +
HKDF), so a backup can be restored on another host that holds the private key.
It does not contain the vault's master key or data keys: restoring re-encrypts
everything under the target vault's own keys.

Format 2 (this writer) is signed: the installation's Ed25519 signing key signs
the SHA-256 of every byte before the signature (preamble, header, wrapped CEK,
checksum, every chunk with its framing). Encryption alone authenticates
nothing for an X25519 backup (anyone holding the public recipient string can
make one), so restore checks the signature first, against a key the operator
trusts (``--signer FILE`` or the installation's own public key), before any
key is derived and before anything is written. Format 1 (unsigned) is read
only when the caller explicitly allows it.

Layout (format 2)::

    preamble   "ZTBACKUP" | version u8 = 2 | KEK type u8 | header length u32 BE
    header     canonical JSON: kek parameters, chunk size, payload length, signer key id, source vault, time
    wrapped    u32 BE length (60) | AES-256-GCM(KEK, CEK, aad = preamble || header)
    checksum   SHA-256(preamble || header || wrapped length || wrapped)
    chunk i    u8 final | u32 BE length | AES-256-GCM(CEK, data, aad = checksum || u64 BE i || u8 final)
    signature  Ed25519(SIG_CONTEXT || SHA-256(everything above)), 64 bytes, then end of file

Everything a file chooses (header size, KDF work factors, chunk sizes, record
sizes and counts) is bounded before any work or allocation it would cause. The
header's ``payload_bytes`` fixes the chunk count and the file's exact size, and
the header's signer key id must be the trusted key's, both checked before a
byte of the body is read (threat model B3).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets as pyrandom
import struct
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from zerotrust_admin import fsutil
from zerotrust_admin.crypto import (
    NONCE_SIZE,
    DecryptionFailed,
    KeyAgreementFailed,
    ScryptParams,
    derive_key,
    hkdf_sha256,
    open_sealed,
    seal,
    x25519_public,
    x25519_shared,
)
from zerotrust_admin.crypto.kdf import WorkFactorOutOfBounds, scrypt_params_from_untrusted
from zerotrust_admin.errors import AlreadyExistsError, BusyError, DeniedError, IntegrityError, NotFoundError, UsageError, ZeroTrustError
from zerotrust_admin.secret import Secret
from zerotrust_admin.timeutil import rfc3339

MAGIC = b"ZTBACKUP"
VERSION = 2  # signed; what the writer produces
VERSION_UNSIGNED = 1  # read only with allow_unsigned
PREAMBLE_SIZE = len(MAGIC) + 6
KEK_PASSPHRASE = 1
KEK_X25519 = 2
KEK_NAMES = {KEK_PASSPHRASE: "passphrase", KEK_X25519: "x25519"}
CHUNK_SIZE = 1 << 16
TAG_SIZE = 16
MAX_HEADER = 1 << 14  # 16 KiB; a real header is about 400 bytes
WRAPPED_SIZE = NONCE_SIZE + 32 + TAG_SIZE  # nonce || sealed CEK || tag
MAX_SEALED_CHUNK = CHUNK_SIZE + NONCE_SIZE + TAG_SIZE
MAX_RECORD_LINE = 1 << 22  # 4 MiB: a 1 MiB value in base64 plus metadata fits with room
MAX_RECORDS = 1 << 24  # secrets + versions in one backup
MAX_PAYLOAD = 1 << 40  # declared payload bytes (header "payload_bytes"); 1 TiB, far above any vault
CHUNK_OVERHEAD = 5 + NONCE_SIZE + TAG_SIZE  # framing (final flag, length) + nonce + tag per chunk
SIGNATURE_SIZE = 64
SIG_CONTEXT = b"zerotrust-admin backup v2 signature\n"
PAYLOAD = {1: "jsonl-v1", 2: "jsonl-v2"}
PUBLIC_PREFIX = "zt-x25519:"
SECRET_PREFIX = "zt-x25519-secret:"
HKDF_INFO = b"zt-backup-v1 x25519 kek"  # unchanged in format 2 (the KEK construction did not change)
MIN_PASSPHRASE = 12
PASSPHRASE_ENV = "ZEROTRUST_BACKUP_PASSPHRASE"
RESERVED_PREFIX = "_zerotrust/"  # == zerotrust_admin.access.RESERVED_PREFIX
MFA_SEED_PREFIX = "_zerotrust/mfa/"
SEEDS_RESOURCE = "mfa/*"  # the `mfa` action over every enrolment: --include-mfa-seeds, restoring seeds

SECRET_KEYS = ("created", "current_version", "deleted_at", "deleted_by", "name", "sensitive", "type", "updated")
VERSION_KEYS = ("created", "created_by", "metadata", "name", "type", "value", "version")


# --- recipients ---------------------------------------------------------------------
def generate_identity(path: Path) -> str:
    """Write a new X25519 private key to ``path`` (0600, never overwritten);
    return the public recipient string to give to ``vault backup --recipient``."""
    from zerotrust_admin.crypto import x25519_generate

    private, public = x25519_generate()
    text = identity_file_text(private)
    if not Path(path).parent.is_dir():
        raise NotFoundError(f"directory {Path(path).parent} does not exist")
    try:
        fsutil.write_private_file(Path(path), text.encode(), overwrite=False)
    except ZeroTrustError:
        raise AlreadyExistsError(f"{path} already exists; refusing to overwrite a key file", hint="choose another --output") from None
    return format_public(public)


def identity_file_text(private: bytes) -> str:
    """The identity file for an X25519 private key (docs/backup.md, "Identity file")."""
    return (f"# zerotrust-admin backup identity (X25519 private key); keep it secret\n"
            f"# public: {format_public(x25519_public(private))}\n{SECRET_PREFIX}{base64.b64encode(private).decode()}\n")


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


def fingerprint(public: bytes) -> str:
    """Recipient fingerprint: the first 16 hex digits of SHA-256("zt-x25519-fp\\n" || public key)."""
    return hashlib.sha256(b"zt-x25519-fp\n" + public).hexdigest()[:16]


_fingerprint = fingerprint


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


def _new_kek(kek, rand: Callable[[int], bytes]) -> tuple[int, dict, bytes]:
    if isinstance(kek, PassphraseKek):
        if len(kek.passphrase) < MIN_PASSPHRASE:
            raise UsageError(f"the backup passphrase is shorter than {MIN_PASSPHRASE} characters")
        params = ScryptParams(salt_hex=rand(16).hex(), n=kek.scrypt_n)
        scrypt_params_from_untrusted(params.to_dict())  # never write what no reader accepts
        return KEK_PASSPHRASE, {"type": "passphrase", "kdf": params.to_dict()}, derive_key(kek.passphrase.reveal(), params)
    if isinstance(kek, RecipientKek):
        eph_private = rand(32)
        try:
            eph_public = x25519_public(eph_private)
            shared = x25519_shared(eph_private, kek.public)
        except KeyAgreementFailed:
            raise UsageError("the recipient is not a valid X25519 public key") from None
        key = hkdf_sha256(shared, salt=eph_public + kek.public, info=HKDF_INFO)
        return KEK_X25519, {"type": "x25519", "ephemeral": base64.b64encode(eph_public).decode(),
                            "recipient": base64.b64encode(kek.public).decode(), "recipient_fingerprint": fingerprint(kek.public)}, key
    raise TypeError("unknown KEK")


# --- writing --------------------------------------------------------------------------
def canonical(obj) -> bytes:
    """Canonical JSON: keys sorted, no spaces, non-ASCII as \\uXXXX escapes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _chunk_aad(checksum: bytes, index: int, final: bool) -> bytes:
    return checksum + struct.pack(">QB", index, 1 if final else 0)


def _counted(records: Iterable[dict], counts: dict) -> Iterator[dict]:
    for rec in records:
        counts[rec["type"] + "s"] += 1
        yield rec


def signed_message(transcript_sha256: bytes) -> bytes:
    return SIG_CONTEXT + transcript_sha256


def _project(rec: dict) -> dict:
    """The documented record schema, whatever else the vault's dump carries."""
    keys = SECRET_KEYS if rec["type"] == "secret" else VERSION_KEYS
    return {k: rec[k] for k in keys if k != "type"} | {"type": rec["type"]}


class _HashingWriter:
    def __init__(self, out: BinaryIO):
        self.out = out
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.out.write(data)


def _payload_lines(records: Iterable[dict], source_vault_id: str) -> Iterator[bytes]:
    """The payload, line by line (docs/backup.md, "Payload"); the end record last."""
    counts = {"secrets": 0, "versions": 0}
    yield canonical({"format": VERSION, "source_vault_id": source_vault_id, "type": "backup"}) + b"\n"
    for rec in records:
        rec = _project(rec)
        counts[rec["type"] + "s"] += 1
        yield canonical(rec) + b"\n"
    yield canonical({"secrets": counts["secrets"], "type": "end", "versions": counts["versions"]}) + b"\n"


def _measure(records: Iterable[dict], source_vault_id: str) -> tuple[int, bytes]:
    size, sha = 0, hashlib.sha256()
    for line in _payload_lines(records, source_vault_id):
        size += len(line)
        sha.update(line)
    return size, sha.digest()


def write_backup(records, out: BinaryIO, kek, *, signer, source_vault_id: str, created: str | None = None,
                 rand: Callable[[int], bytes] = os.urandom) -> dict:
    """Write a format-2 backup of ``records`` to ``out``, signed by ``signer``
    (``.sign(msg) -> 64 bytes``, ``.key_id``). ``records`` is an iterable, or a
    callable returning a fresh iterator over the same records (the vault's
    dump: nothing is held in memory). The header declares the payload's length
    (``payload_bytes``, B3), so the records are read twice: once to measure,
    once to write; if the second read differs from the first (the vault
    changed in between), it is BusyError and the caller discards the file.
    ``rand`` and ``created`` exist so that the known-answer vectors can be
    replayed byte for byte; the draws are, in order: the X25519 ephemeral
    private key (32) or the scrypt salt (16), the CEK (32), the wrap nonce
    (12), then one nonce (12) per chunk."""
    if not callable(records):
        records = (lambda kept=list(records): iter(kept))
    payload_bytes, payload_sha = _measure(records(), source_vault_id)
    if payload_bytes > MAX_PAYLOAD:
        raise UsageError(f"the backup payload would be {payload_bytes} bytes, over the {MAX_PAYLOAD}-byte limit")
    kek_type, kek_header, kek_key = _new_kek(kek, rand)
    header = canonical({"chunk_size": CHUNK_SIZE, "created": created or rfc3339(), "kek": kek_header, "payload": PAYLOAD[VERSION],
                        "payload_bytes": payload_bytes, "signer": {"algorithm": "ed25519", "key_id": signer.key_id},
                        "source_vault_id": source_vault_id})
    preamble = MAGIC + struct.pack(">BBI", VERSION, kek_type, len(header))
    cek = rand(32)
    wrapped = seal(kek_key, cek, preamble + header, nonce=rand(NONCE_SIZE))
    checksum = hashlib.sha256(preamble + header + struct.pack(">I", len(wrapped)) + wrapped).digest()
    sink = _HashingWriter(out)
    sink.write(preamble + header + struct.pack(">I", len(wrapped)) + wrapped + checksum)
    counts = {"secrets": 0, "versions": 0}
    buf = bytearray()
    index = 0

    def flush(final: bool) -> None:
        nonlocal index
        # Exactly ceil(payload_bytes / CHUNK_SIZE) chunks: every one full but
        # the final one, which holds 1 to CHUNK_SIZE bytes (never empty).
        while len(buf) > CHUNK_SIZE or (final and buf):
            piece = bytes(buf[:CHUNK_SIZE])
            del buf[:CHUNK_SIZE]
            last = final and not buf
            sealed = seal(cek, piece, _chunk_aad(checksum, index, last), nonce=rand(NONCE_SIZE))
            sink.write(struct.pack(">BI", 1 if last else 0, len(sealed)) + sealed)
            index += 1

    written, again = 0, hashlib.sha256()
    for line in _payload_lines(_counted(records(), counts), source_vault_id):
        written += len(line)
        again.update(line)
        buf += line
        if len(buf) > CHUNK_SIZE:
            flush(False)
    if written != payload_bytes or again.digest() != payload_sha:
        raise BusyError("the vault changed while the backup was being written; the file was discarded",
                        hint="run vault backup again")
    flush(True)
    signature = signer.sign(signed_message(sink.sha.digest()))
    if len(signature) != SIGNATURE_SIZE:
        raise IntegrityError("the signing key produced a malformed signature")
    out.write(signature)
    return {**counts, "kek": KEK_NAMES[kek_type], "chunks": index, "signer_key_id": signer.key_id,
            **({"recipient_fingerprint": kek_header["recipient_fingerprint"]} if kek_type == KEK_X25519 else {})}


# --- what a backup may contain (policy) -------------------------------------------------
@dataclass
class BackupPlan:
    """Which secrets go in, decided before the output file is created."""

    names: set[str] = field(default_factory=set)
    include_reserved: bool = False
    hidden: int = 0  # names the principal may not list: left out, counted, never named
    reserved: int = 0  # _zerotrust/ records (MFA seeds, cache keys) in the vault

    def wants(self, name: str) -> bool:
        if name.startswith(RESERVED_PREFIX):
            return self.include_reserved
        return name in self.names


def plan_backup(vault, guard=None, *, include_reserved: bool = False) -> BackupPlan:
    """Decide what the backup contains, the way ``vault export`` does.

    Secrets the principal may not list are left out and counted. Every other
    secret needs ``read``: one that is visible but not readable refuses the
    whole backup (DeniedError naming the first and the count, audited once).
    ``_zerotrust/`` records only with ``include_reserved``, which needs a
    configured rule allowing the ``mfa`` action on ``mfa/*`` (never the
    no-policies default, as for enrolling someone else's MFA). Then one MFA code if any included secret
    needs one. Nothing is written before this returns."""
    items = list(vault.list("", include_deleted=True))
    plan = BackupPlan(include_reserved=include_reserved)
    ordinary = [i for i in items if not i.name.startswith(RESERVED_PREFIX)]
    plan.reserved = len(items) - len(ordinary)
    if guard is None:
        plan.names = {i.name for i in ordinary}
        return plan
    visible = guard.visible(ordinary)
    plan.hidden = len(ordinary) - len(visible)
    denied = [i.name for i in visible if not guard.allows("read", i.name)]
    if denied:
        summary = f"{len(denied)} of {len(visible)} secrets may not be read; nothing was written"
        try:
            guard.authorize("read", denied[0], operation="backup", denied=len(denied), checked=len(visible))
        except DeniedError as exc:
            raise DeniedError(f"{exc.message}; {summary}", hint=exc.hint) from None
        raise DeniedError(f"access denied: {guard.actor.user} may not read {denied[0]}; {summary}")
    if include_reserved:
        guard.authorize("mfa", SEEDS_RESOURCE, explicit=True, operation="backup")
    from zerotrust_admin.mfa import MfaPolicy

    policy = MfaPolicy.from_config(guard.config)
    included = visible + ([i for i in items if i.name.startswith(RESERVED_PREFIX)] if include_reserved else [])
    needs_mfa = next((i.name for i in included if policy.required(i.name, bool(i.sensitive))), None)
    if needs_mfa is not None:
        guard.require_mfa(needs_mfa)
    plan.names = {i.name for i in visible}
    return plan


def _planned(records: Iterator[dict], plan: BackupPlan, left_out: dict) -> Iterator[dict]:
    for rec in records:
        if plan.wants(rec["name"]):
            yield rec
        elif rec["type"] == "secret":
            left_out["reserved" if rec["name"].startswith(RESERVED_PREFIX) else "hidden"] += 1


def check_output(output: Path, overwrite: bool = False) -> None:
    """Refuse an existing output (without ``overwrite``) or a missing directory,
    before any prompt or MFA code is spent."""
    output = Path(output)
    if os.path.lexists(output) and not overwrite:
        raise AlreadyExistsError(f"{output} already exists; refusing to overwrite it", hint="choose another --output, or pass --force")
    if not output.parent.is_dir():
        raise NotFoundError(f"directory {output.parent} does not exist")


def create_backup(vault, output: Path, kek, *, signer=None, plan: BackupPlan | None = None, overwrite: bool = False) -> dict:
    """Write an encrypted, signed backup of ``vault`` to ``output`` atomically
    (0600). ``plan`` (from :func:`plan_backup`) says what goes in; without one,
    every secret but the ``_zerotrust/`` records. ``signer`` defaults to the
    installation key (default settings) of the home that holds the vault."""
    output = Path(output)
    resource = str(output)
    plan = plan or BackupPlan(names={i.name for i in vault.list("", include_deleted=True)})
    left_out = {"hidden": 0, "reserved": 0}
    try:
        check_output(output, overwrite)
        if signer is None:
            from zerotrust_admin.signing import load_signing_key

            signer = load_signing_key(None, Path(vault.path).parent, create=True)
        tmp = output.with_name(f".{output.name}.{pyrandom.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, fsutil.FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as fh:
                def planned() -> Iterator[dict]:  # read twice by write_backup (measure, then write): count once
                    left_out.update(hidden=0, reserved=0)
                    return _planned(vault.dump_records(), plan, left_out)

                result = write_backup(planned, fh, kek, signer=signer, source_vault_id=vault.vault_id)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, output)
            fsutil.fsync_dir(output.parent)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
        result["left_out"] = left_out
        result["bytes"] = output.stat().st_size
        result["output"] = str(output)
    except ZeroTrustError as exc:
        vault._audit("backup", "backup", resource, False, error=type(exc).__name__)
        raise
    vault._audit("backup", "backup", resource, True, secrets=result["secrets"], versions=result["versions"], kek=result["kek"],
                 signer_key_id=result["signer_key_id"], left_out_hidden=left_out["hidden"], left_out_reserved=left_out["reserved"],
                 **({"recipient_fingerprint": result["recipient_fingerprint"]} if "recipient_fingerprint" in result else {}))
    return result


# --- reading ----------------------------------------------------------------------------
def _damaged(detail: str) -> IntegrityError:
    return IntegrityError(f"the backup is damaged or was tampered with ({detail})", hint="nothing was restored; use another copy of the backup")


class _Reader:
    """Reads from the backup file and hashes what it read (the signed transcript)."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.sha = hashlib.sha256()

    def exact(self, n: int, what: str) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise _damaged(f"truncated in the {what}")
        self.sha.update(data)
        return data

    def at_end(self) -> bool:
        return self.fh.read(1) == b""


@dataclass
class BackupHeader:
    version: int
    kek_type: int
    header: dict
    preamble: bytes
    header_bytes: bytes
    wrapped: bytes
    checksum: bytes
    scrypt: ScryptParams | None = None
    payload_bytes: int | None = None  # format 2: declared in the header, bounded before any chunk is read

    @property
    def chunks(self) -> int | None:
        """Format 2: the exact chunk count the header declares (every chunk full but the last)."""
        return None if self.payload_bytes is None else -(-self.payload_bytes // CHUNK_SIZE)

    def final_sealed_length(self) -> int:
        return self.payload_bytes - (self.chunks - 1) * CHUNK_SIZE + NONCE_SIZE + TAG_SIZE

    @property
    def file_size(self) -> int | None:
        """Format 2: the exact size of the file the header declares."""
        if self.payload_bytes is None:
            return None
        return len(self.preamble) + len(self.header_bytes) + 4 + len(self.wrapped) + 32 + self.chunks * CHUNK_OVERHEAD \
            + self.payload_bytes + SIGNATURE_SIZE

    @property
    def kek(self) -> str:
        return KEK_NAMES[self.kek_type]

    @property
    def signed(self) -> bool:
        return self.version >= 2

    @property
    def signer_key_id(self) -> str | None:
        signer = self.header.get("signer")
        return signer.get("key_id") if isinstance(signer, dict) else None


def _read_header(rd: _Reader) -> BackupHeader:
    start = rd.fh.read(PREAMBLE_SIZE)
    if len(start) < PREAMBLE_SIZE:
        raise _damaged("truncated in the preamble")
    rd.sha.update(start)
    if start[: len(MAGIC)] != MAGIC:
        raise _damaged("not a zerotrust-admin backup: bad magic")
    version, kek_type, header_len = struct.unpack(">BBI", start[len(MAGIC):])
    if version not in (VERSION_UNSIGNED, VERSION):
        raise _damaged(f"unknown backup format version {version}")
    if kek_type not in KEK_NAMES:
        raise _damaged("unknown key-encryption type")
    if header_len > MAX_HEADER:
        raise _damaged(f"a {header_len}-byte header is over the {MAX_HEADER}-byte limit")
    header_bytes = rd.exact(header_len, "header")
    wrapped_len = struct.unpack(">I", rd.exact(4, "header"))[0]
    if wrapped_len != WRAPPED_SIZE:
        raise _damaged("bad wrapped key length")
    wrapped = rd.exact(wrapped_len, "wrapped key")
    checksum = rd.exact(32, "checksum")
    if hashlib.sha256(start + header_bytes + struct.pack(">I", wrapped_len) + wrapped).digest() != checksum:
        raise _damaged("header checksum mismatch")
    try:
        header = json.loads(header_bytes)
    except (ValueError, RecursionError):
        raise _damaged("header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("kek"), dict) or header["kek"].get("type") != KEK_NAMES[kek_type]:
        raise _damaged("header does not match its KEK type")
    if header.get("chunk_size") != CHUNK_SIZE or header.get("payload") != PAYLOAD[version]:
        raise _damaged("unsupported chunk size or payload")
    head = BackupHeader(version, kek_type, header, start, header_bytes, wrapped, checksum)
    if version >= 2:
        signer = header.get("signer")
        if not (isinstance(signer, dict) and signer.get("algorithm") == "ed25519" and isinstance(signer.get("key_id"), str)):
            raise _damaged("the header names no Ed25519 signer")
        declared = header.get("payload_bytes")
        if type(declared) is not int or not 1 <= declared <= MAX_PAYLOAD:
            raise _damaged(f"the header must declare payload_bytes, 1 to {MAX_PAYLOAD}")
        head.payload_bytes = declared
    if kek_type == KEK_PASSPHRASE:
        # Work factors are bounded here, before anything is derived (threat model B3 / V7).
        try:
            head.scrypt = scrypt_params_from_untrusted(header["kek"].get("kdf"))
        except WorkFactorOutOfBounds as exc:
            raise IntegrityError(f"the backup's key derivation parameters are refused: {exc}",
                                 hint="nothing was derived or restored; a genuine backup uses N=2^17, r=8, p=1") from None
    return head


def read_header(fh: BinaryIO) -> BackupHeader:
    return _read_header(_Reader(fh))


def _frames(rd: _Reader, head: BackupHeader, cek: bytes | None) -> Iterator[bytes]:
    """Walk the chunks. With ``cek`` (or for format 1, where the final flag is
    only in the AAD) authenticate and yield each chunk's plaintext; without
    it, only parse the framing (format 2), hashing as it goes."""
    index = 0
    while True:
        if head.version >= 2:
            final, length = struct.unpack(">BI", rd.exact(5, f"chunk {index} framing"))
            if final not in (0, 1):
                raise _damaged(f"chunk {index} has a bad final flag")
            if length > MAX_SEALED_CHUNK or length < NONCE_SIZE + TAG_SIZE or (not final and length != MAX_SEALED_CHUNK):
                raise _damaged(f"chunk {index} has an impossible length")
            if head.chunks is not None and (bool(final) != (index == head.chunks - 1) or (final and length != head.final_sealed_length())):
                raise _damaged(f"chunk {index} does not match the {head.chunks} chunks its header declares")
            sealed = rd.exact(length, f"chunk {index}")
            if cek is not None:
                try:
                    yield open_sealed(cek, sealed, _chunk_aad(head.checksum, index, bool(final)))
                except DecryptionFailed:
                    raise _damaged(f"chunk {index} does not authenticate") from None
            if final:
                return
        else:
            length = struct.unpack(">I", rd.exact(4, f"chunk {index} framing"))[0]
            if length > MAX_SEALED_CHUNK:
                raise _damaged(f"chunk {index} has an impossible length")
            sealed = rd.exact(length, f"chunk {index}")
            for final in (False, True):
                try:
                    data = open_sealed(cek, sealed, _chunk_aad(head.checksum, index, final))
                    break
                except DecryptionFailed:
                    continue
            else:
                raise _damaged(f"chunk {index} does not authenticate")
            yield data
            if final:
                return
        index += 1


def _read_signature(rd: _Reader) -> tuple[bytes, bytes]:
    """(SHA-256 of everything before the signature, the signature); nothing may follow."""
    transcript = rd.sha.digest()
    signature = rd.fh.read(SIGNATURE_SIZE)
    if len(signature) != SIGNATURE_SIZE:
        raise _damaged("truncated: the signature is missing")
    if not rd.at_end():
        raise _damaged("data after the signature")
    return transcript, signature


def _check_size(fh: BinaryIO, head: BackupHeader) -> None:
    """Before the walk (B3): a regular file (a fifo or device could stream
    forever) of exactly the size its header declares (``payload_bytes`` fixes
    the chunk count and every chunk's length). A file padded or cut (a sparse
    GiB appended) is refused from the header and one fstat, nothing hashed."""
    import stat

    st = os.fstat(fh.fileno())
    if not stat.S_ISREG(st.st_mode):
        raise UsageError("a backup must be a regular file", hint="copy it to a file first")
    if st.st_size != head.file_size:
        raise _damaged(f"the file is {st.st_size} bytes but its header declares {head.file_size} "
                       f"({head.payload_bytes} payload bytes in {head.chunks} chunks)")


def _check_signer(head: BackupHeader, trusted) -> None:
    """Decided from the header alone, before the walk (B3): no trusted key, or
    a header naming another key, costs nothing but the header."""
    if trusted is None:
        raise IntegrityError("cannot check who signed this backup: no trusted signing key",
                             hint="pass --signer FILE (the signing.pub of the installation that made the backup)")
    if head.signer_key_id != trusted.key_id:
        raise IntegrityError(f"the backup is signed by key {str(head.signer_key_id)[:16]}, not by the trusted key {trusted.key_id}",
                             hint="nothing was restored; pass --signer FILE with the signing.pub of the installation that made it")


def _check_signature(head: BackupHeader, transcript: bytes, signature: bytes, trusted) -> None:
    _check_signer(head, trusted)
    if not _verify_signature(trusted, signature, signed_message(transcript)):
        raise IntegrityError("the backup's signature does not verify (forged or tampered backup)",
                             hint="nothing was restored; use another copy of the backup")


def _verify_signature(trusted, signature: bytes, message: bytes) -> bool:
    try:
        result = trusted.verify(signature, message)
    except Exception:  # noqa: BLE001 - every verification failure is the same answer
        return False
    return result is not False


def _unwrap_cek(head: BackupHeader, get_passphrase: Callable[[], Secret] | None, identity: Secret | None) -> bytes:
    kek = head.header["kek"]
    try:
        if head.kek_type == KEK_PASSPHRASE:
            if get_passphrase is None:
                raise UsageError("this backup is protected by a passphrase and none was given", hint=f"set {PASSPHRASE_ENV} or run on a terminal")
            params = head.scrypt or scrypt_params_from_untrusted(kek.get("kdf"))
            with get_passphrase() as passphrase:
                key = derive_key(passphrase.reveal(), params)
            wrong = "wrong passphrase for this backup"
        else:
            if identity is None:
                raise UsageError("this backup is encrypted to an X25519 recipient", hint="pass --identity FILE (the private key from vault backup-keygen)")
            recipient = base64.b64decode(kek["recipient"], validate=True)
            mine = x25519_public(identity.reveal())
            if mine != recipient:
                raise DeniedError(f"this backup is for recipient {fingerprint(recipient)}, not for your key {fingerprint(mine)}",
                                  hint="use the identity file whose public key the backup was made for")
            ephemeral = base64.b64decode(kek["ephemeral"], validate=True)
            key = hkdf_sha256(x25519_shared(identity.reveal(), ephemeral), salt=ephemeral + recipient, info=HKDF_INFO)
            wrong = "the private key does not open this backup"
    except (KeyError, ValueError, TypeError, binascii.Error, KeyAgreementFailed):
        raise _damaged("bad key-encryption parameters") from None
    try:
        return open_sealed(key, head.wrapped, head.preamble + head.header_bytes)
    except DecryptionFailed:
        raise DeniedError(wrong, hint="nothing was restored") from None


def _check_record(rec, seen: set[str]) -> None:
    """The payload schema (docs/backup.md): exact keys and types, bounded."""
    from zerotrust_admin.names import validate_name

    kind = rec.get("type") if isinstance(rec, dict) else None
    keys = {"secret": SECRET_KEYS, "version": VERSION_KEYS}.get(kind)
    if keys is None or set(rec) != set(keys):
        raise _damaged("a record does not follow the payload schema")
    try:
        validate_name(rec["name"])
    except UsageError:
        raise _damaged("a record names an invalid secret") from None
    ok = all(isinstance(rec[k], str) for k in ("created",))
    if kind == "secret":
        ok = ok and type(rec["current_version"]) is int and rec["current_version"] >= 1 and type(rec["sensitive"]) is bool \
            and isinstance(rec["updated"], str) and all(rec[k] is None or isinstance(rec[k], str) for k in ("deleted_at", "deleted_by"))
        if rec["name"] in seen:
            raise _damaged("a secret appears twice")
        seen.add(rec["name"])
    else:
        ok = ok and type(rec["version"]) is int and rec["version"] >= 1 and isinstance(rec["created_by"], str) \
            and isinstance(rec["metadata"], str) and isinstance(rec["value"], str)
        if ok and rec["name"] not in seen:
            raise _damaged("a version precedes its secret record")
        if ok:
            try:
                base64.b64decode(rec["value"], validate=True)
                ok = isinstance(json.loads(rec["metadata"]), dict)
            except (ValueError, RecursionError, binascii.Error):
                ok = False
    if not ok:
        raise _damaged("a record does not follow the payload schema")


def _records(rd: _Reader, head: BackupHeader, cek: bytes) -> Iterator[dict]:
    """Authenticate chunk by chunk and yield the records; raise on any damage."""
    pending = bytearray()
    counts = {"secrets": 0, "versions": 0}
    ended = False
    first = True
    seen: set[str] = set()
    for data in _frames(rd, head, cek):
        pending += data
        if b"\n" not in data:
            if len(pending) > MAX_RECORD_LINE:
                raise _damaged("a record is over the size limit")
            continue
        *lines, rest = bytes(pending).split(b"\n")
        pending = bytearray(rest)
        for line in lines:
            if ended:
                raise _damaged("records after the end marker")
            if len(line) > MAX_RECORD_LINE:
                raise _damaged("a record is over the size limit")
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError):
                raise _damaged("a record is not JSON") from None
            if not isinstance(rec, dict):
                raise _damaged("a record is not a JSON object")
            if first:
                if rec.get("type") != "backup" or rec.get("format") != head.version:
                    raise _damaged("missing backup record")
                first = False
                continue
            kind = rec.get("type")
            if kind == "end":
                if rec.get("secrets") != counts["secrets"] or rec.get("versions") != counts["versions"]:
                    raise _damaged("record counts do not match")
                ended = True
                continue
            _check_record(rec, seen)  # format 1 wrote the same record schema
            counts[kind + "s"] += 1
            if counts["secrets"] + counts["versions"] > MAX_RECORDS:
                raise _damaged(f"more than {MAX_RECORDS} records")
            yield rec
    if pending or not ended:
        raise _damaged("the end marker is missing")


def inspect_backup(path: Path) -> dict:
    with _open(path) as fh:
        head = read_header(fh)
    return {"format": head.version, "kek": head.kek, "created": head.header.get("created"), "source_vault_id": head.header.get("source_vault_id"),
            "signed": head.signed, "signer_key_id": head.signer_key_id,
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


def unsigned_refused() -> IntegrityError:
    return IntegrityError("this backup is unsigned (format 1): nobody can tell who made it",
                          hint="restore it only if you know where it came from: --allow-unsigned (audited)")


@dataclass
class _Verified:
    info: dict
    head: BackupHeader
    cek: bytes
    transcript: bytes | None
    signature: bytes | None


def _verify(fh: BinaryIO, get_passphrase, identity: Secret | None, trusted, allow_unsigned: bool) -> _Verified:
    """Bounds, then the signature (no key needed), then the CEK, then every
    chunk and record. Raises before returning if anything is wrong."""
    rd = _Reader(fh)
    head = _read_header(rd)
    transcript = signature = None
    if head.signed:
        _check_signer(head, trusted)
        _check_size(fh, head)
        for _ in _frames(rd, head, None):
            pass
        transcript, signature = _read_signature(rd)
        _check_signature(head, transcript, signature, trusted)
    elif not allow_unsigned:
        raise unsigned_refused()
    cek = _unwrap_cek(head, get_passphrase, identity)
    fh.seek(0)
    rd = _Reader(fh)
    _read_header(rd)
    counts = {"secrets": 0, "versions": 0, "reserved": 0, "mfa_seeds": 0}
    for rec in _records(rd, head, cek):
        counts[rec["type"] + "s"] += 1
        if rec["type"] == "secret" and str(rec.get("name", "")).startswith(RESERVED_PREFIX):
            counts["reserved"] += 1
            counts["mfa_seeds"] += str(rec["name"]).startswith(MFA_SEED_PREFIX)
    if head.signed:
        if _read_signature(rd) != (transcript, signature):
            raise _damaged("the file changed while it was read")
    elif not rd.at_end():
        raise _damaged("data after the final chunk")
    info = {**counts, "format": head.version, "kek": head.kek, "signed": head.signed, "signer_key_id": head.signer_key_id,
            "source_vault_id": head.header.get("source_vault_id"), "created": head.header.get("created")}
    return _Verified(info, head, cek, transcript, signature)


def verify_backup(path: Path, *, get_passphrase=None, identity: Secret | None = None, trusted=None, allow_unsigned: bool = False) -> dict:
    """Authenticate the whole backup without writing anything: the signature
    against ``trusted`` (an object with ``.key_id`` and ``.verify(sig, msg)``,
    e.g. ``zerotrust_admin.signing.PublicKey``), then every chunk and record."""
    with _open(path) as fh:
        return _verify(fh, get_passphrase, identity, trusted, allow_unsigned).info


def _replay(fh: BinaryIO, checked: _Verified, done: Callable[[dict], None] | None = None) -> Iterator[dict]:
    """The verified records again, from the same open file; the transcript is
    compared at the end, so a file changed in between rolls the restore back.
    ``done(counts)`` runs after the last record, still inside the consumer's
    write transaction (restore_backup queues its audit record there)."""
    fh.seek(0)
    rd = _Reader(fh)
    _read_header(rd)
    counts = {"secrets": 0, "versions": 0}
    for rec in _records(rd, checked.head, checked.cek):
        counts[rec["type"] + "s"] += 1
        yield rec
    if checked.head.signed:
        if _read_signature(rd) != (checked.transcript, checked.signature):
            raise _damaged("the file changed while it was read")
    elif not rd.at_end():
        raise _damaged("data after the final chunk")
    if done is not None:
        done(counts)


def restore_backup(vault, path: Path, *, get_passphrase=None, identity: Secret | None = None, trusted=None,
                   allow_unsigned: bool = False, guard=None, dry_run: bool = False) -> dict:
    """Check the signature, then verify the whole backup, then restore it into
    the (empty) vault in one transaction. MFA seeds in the backup need a rule
    allowing the ``mfa`` action on ``mfa/*`` through ``guard`` (restoring them
    re-enrols those principals)."""
    path = Path(path)
    resource = str(path)
    try:
        if not dry_run and not vault.is_empty():
            raise AlreadyExistsError(f"the vault {vault.path} is not empty; restore only into an empty vault",
                                     hint="init a fresh ZEROTRUST_HOME (another host or directory) and restore there")
        with _open(path) as fh:
            checked = _verify(fh, get_passphrase, identity, trusted, allow_unsigned)
            if checked.info["reserved"] and guard is not None:
                guard.authorize("mfa", SEEDS_RESOURCE, explicit=True, operation="restore", reserved=checked.info["reserved"])
            if dry_run:
                return {**checked.info, "dry_run": True, "restored": False}
            info = checked.info

            def audit_in_txn(counts: dict) -> None:
                # B1: the success record is appended inside the restore's write
                # transaction, before COMMIT; a record that cannot be written or
                # signed rolls the whole restore back.
                details = {"secrets": counts["secrets"], "versions": counts["versions"], "kek": info["kek"],
                           "source_vault_id": info["source_vault_id"], "format": info["format"], "signed": info["signed"],
                           "signer_key_id": info["signer_key_id"], "reserved": info["reserved"]}
                if not info["signed"]:
                    details.update(level="warning", unsigned=True, note="unsigned format-1 backup restored with --allow-unsigned")
                vault._audit_in_txn("backup", "restore", resource, **details)

            counts = vault.restore_records(_replay(fh, checked, audit_in_txn))
    except ZeroTrustError as exc:
        if not dry_run:
            with suppress(ZeroTrustError):  # the original error is the one to report (it may be the audit log's own)
                vault._audit("backup", "restore", resource, False, error=type(exc).__name__)
        raise
    return {**info, **counts, "dry_run": False, "restored": True}
