"""Tamper-evident audit log: one JSON object per line, a keyed hash chain.

Each line is the canonical JSON (sorted keys, no spaces) of a record holding
the seed's fields plus ``seq`` (1, 2, 3...), ``prev`` (the previous record's
``hash``) and ``hash`` = HMAC-SHA256(audit key, "zt-audit-v1\\n" + canonical
JSON of the record without ``hash``). Editing any byte, deleting or reordering
lines breaks the chain. After each append the head anchor (``audit.log.head``)
becomes a new signed checkpoint (audit/checkpoint.py): the last record's seq
and hash, the byte offset and SHA-256 of the log up to it, the vault
generations confirmed so far, signed with the installation's Ed25519 key and
MACed with the audit key. The writer compares the log's tail with the anchor
before every append and refuses a truncated or rewritten log (exit 5).
Details: docs/audit-format.md.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import json
import os
import socket
from itertools import islice
from pathlib import Path
from typing import Iterator

from zerotrust_admin import fsutil
from zerotrust_admin.crypto import constant_time_equal, hmac_sha256, hmac_sha256_states, random_key
from zerotrust_admin.errors import AuditError, IntegrityError, NotFoundError
from zerotrust_admin.structs import field, struct
from zerotrust_admin.timeutil import rfc3339

GENESIS = "0" * 64
HASH_PREFIX = b"zt-audit-v1\n"
SECRET_LIKE_KEYS = {"value", "secret", "password", "passphrase", "token", "key", "plaintext"}


@struct(frozen=True)
class Actor:
    """Who is acting, and from where (PRODUCT.md, "Operator identity")."""

    user: str
    source_ip: str
    host: str = field(default_factory=socket.gethostname)
    identity: str = "claimed"  # "verified" (KDC-checked), "claimed", or "os" (the OS-user fallback)


@struct
class VerifyResult:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    first_bad_line: int | None = None
    problem: str | None = None
    warnings: list[str] = field(default_factory=list)
    checkpoint: dict | None = None  # the anchor's seq, offset, key_id when it authenticated

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "records": self.records,
            "first_bad_seq": self.first_bad_seq,
            "first_bad_line": self.first_bad_line,
            "problem": self.problem,
            "warnings": self.warnings,
            "checkpoint": self.checkpoint,
        }


@struct(frozen=True)
class VaultAuditState:
    """What the audit anchor says about one vault (``AuditLog.vault_state``)."""

    confirmed: int = 0  # the generation the anchor confirmed (vault_floor)
    pending: int = 0  # a generation written (its record is in the log) but not yet confirmed; 0 if none
    known: bool = False  # the id is in the anchor's confirmed or pending map
    others: bool = False  # the maps hold other vault ids
    log_id: str | None = None
    key_id: str | None = None  # the anchor's signing key id
    records: int = 0  # seq of the last record


def canonical(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class AuditLog:
    def __init__(self, path: Path, key_path: Path | None = None, head_path: Path | None = None, sinks=None, signer=None):
        self.path = Path(path)
        self.sinks = sinks  # audit.sinks.SinkSet: syslog/stdout/webhook copies, shipped after the file record is durable
        self.key_path = Path(key_path) if key_path else self.path.with_name("audit.key")
        self.head_path = Path(head_path) if head_path else self.path.with_name(self.path.name + ".head")
        self.checkpoints_path = self.path.with_name(self.path.name + ".checkpoints")
        if signer is None:
            from zerotrust_admin.audit.checkpoint import Signer

            signer = Signer(None, self.path.parent)  # no config: the key files next to the log (= $ZEROTRUST_HOME/signing.key by default)
        self.signer = signer
        self._key: bytes | None = None

    # --- key -----------------------------------------------------------
    def _load_key(self, create: bool) -> bytes:
        if self._key is not None:
            return self._key
        if not os.path.lexists(self.key_path):
            if not create:
                raise NotFoundError(f"audit key {self.key_path} does not exist", hint="the audit log cannot be verified without the key it was written with")
            if os.path.lexists(self.path) and os.path.getsize(self.path) > 0:
                # A fresh key over an existing log would silently orphan every earlier record.
                raise AuditError(f"audit key {self.key_path} is missing but the audit log {self.path} already has records",
                                 hint="restore the audit key from backup, or move the old log aside (keep it as evidence) to start a new one")
            fsutil.ensure_private_dir(self.key_path.parent)
            try:
                fsutil.write_private_file(self.key_path, base64.b64encode(random_key()) + b"\n", overwrite=False)
            except Exception:
                if not os.path.lexists(self.key_path):  # lost a creation race is fine
                    raise
        data = fsutil.read_private_file(self.key_path, what="audit key file")
        self._key = base64.b64decode(data.strip())
        return self._key

    def _mac(self, key: bytes, record: dict) -> str:
        return hmac_sha256(key, HASH_PREFIX + canonical(record)).hex()

    # --- writing -------------------------------------------------------
    def append(
        self,
        *,
        event: str,
        action: str,
        resource: str,
        success: bool,
        actor: Actor,
        level: str | None = None,
        ship: bool = True,
        _acknowledge: tuple[str, int] | None = None,
        _withdraw: tuple[str, int] | None = None,
        **details,
    ) -> dict:
        """Append one record; raises AuditError if it cannot be made durable.

        A record with ``details["vault"] = {"id", "generation", ...}`` makes its
        anchor say ``pending[id] = generation`` (signed and MACed) until
        ``confirm_vault`` confirms it (threat model V4)."""
        for k in details:
            if k in SECRET_LIKE_KEYS:
                raise ValueError(f"refusing to audit a field named {k!r}")
        key, fd = self._open_for_write(hint="the operation was refused because it could not be audited")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last, torn = _tail(self.path)
            size = os.fstat(fd).st_size
            torn_record = self._torn_record(key, last, torn) if torn is not None else None  # exit 5 for a forged last line (A1/A4)
            if torn is not None and torn_record is None:
                self._refuse_cut_record(last)
            resume = self._resume(key, last, torn, size)  # exit 5 when the log is behind or beside its anchor
            written = []
            if torn_record is not None:
                # A genuine record that lost only its newline (the disk filled at
                # its last byte): keep it, terminate it; nothing to recover.
                written.append(b"\n")
                last = torn_record
                _note_pending(resume, torn_record)
            elif torn is not None:
                # A previous writer died (or the disk filled) mid-line. Keep the
                # fragment as evidence, terminate it, and say so in the chain.
                written.append(b"\n")
                recovery = self._build(key, last, event="audit_recovery", action="recover", resource=str(self.path), success=False,
                                       actor=actor, level="error", details={"torn_after_seq": last["seq"] if last else 0,
                                                                           "torn_bytes": len(torn), "torn_sha256": hashlib.sha256(torn).hexdigest()})
                written.append(canonical(recovery) + b"\n")
                last = recovery
            record = self._build(key, last, event=event, action=action, resource=resource, success=success, actor=actor, level=level, details=details)
            _note_pending(resume, record)
            if _acknowledge is not None:
                vault_id, generation = _acknowledge
                resume["vaults"][vault_id] = int(generation)
                resume["pending"].pop(vault_id, None)
            if _withdraw is not None:
                # The write this generation was pending for is being rolled back by
                # this process (its record could not be shipped under the "refuse"
                # policy): it will never be confirmed, so it stops being pending.
                vault_id, generation = _withdraw
                if int(resume["pending"].get(vault_id, -1)) == int(generation):
                    # The refused write was generation N = the vault's generation + 1 (decided
                    # under the vault's write lock), so the vault stays at N - 1: if that one
                    # is not confirmed yet (a write that committed but was never confirmed),
                    # it stays pending; it is never forgotten.
                    if int(generation) - 1 > int(resume["vaults"].get(vault_id, 0)):
                        resume["pending"][vault_id] = int(generation) - 1
                    else:
                        resume["pending"].pop(vault_id)
            line = canonical(record) + b"\n"
            written.append(line)
            os.write(fd, b"".join(written))
            os.fsync(fd)
            checkpoint = self._checkpoint(key, resume, b"".join(written), size, record)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {exc.strerror}", hint="the operation was refused because it could not be audited") from None
        finally:
            os.close(fd)  # closing releases the flock
        if ship and self.sinks is not None:
            self.sinks.deliver(record, line, self, checkpoint=checkpoint)  # raises AuditError under the default "refuse" policy
        return record

    # --- the anchor: an authenticated, signed checkpoint ---------------
    def _read_anchor(self) -> dict | None:
        return self._read_head()

    def _signing_key(self, anchor: dict | None):
        """The signing key; a missing one is created only when nothing was signed yet (A5)."""
        has_signed = anchor is not None and "v" in anchor
        if not has_signed and os.path.lexists(self.checkpoints_path) and os.path.getsize(self.checkpoints_path) > 0:
            has_signed = True
        return self.signer.key(refuse_new=f"the audit log {self.path} already has signed checkpoints" if has_signed else None)

    def _resume(self, key: bytes, last: dict | None, torn: bytes | None, size: int) -> dict:
        """Compare the log's tail with the anchor (A4) and return what the next
        checkpoint continues from: the SHA-256 state at the anchor's offset, the
        vault map and the log id."""
        from zerotrust_admin.audit.checkpoint import anchor_mac_ok
        from zerotrust_admin.audit.prefixhash import ResumableSHA256

        anchor = self._read_anchor()
        existed = self.signer.exists()
        has_checkpoints = os.path.lexists(self.checkpoints_path) and os.path.getsize(self.checkpoints_path) > 0
        if anchor is None or "v" not in anchor:
            self._refuse_unanchored(anchor, size, existed, has_checkpoints)
            if anchor is not None and last is not None and last["seq"] < anchor.get("seq", 0):
                raise self._anchor_error(f"the audit log ends at record {last['seq']} but its anchor records {anchor.get('seq')}: it was truncated")
            if anchor is not None and size > 0 and not _legacy_head_matches(anchor, last):
                raise self._anchor_error(f"the audit log {self.path} does not end where its (unsigned, pre-checkpoint) anchor {self.head_path} says: "
                                         "refusing to sign it under a new key")
            signing_key = self._signing_key(anchor)
            # A log from before signed checkpoints (or a new one): hash it once from the start.
            return {"state": ResumableSHA256(), "offset": 0, "vaults": {}, "pending": {}, "log": self._first_log_id(), "signing_key": signing_key}
        if not anchor_mac_ok(anchor, key):
            raise self._anchor_error(f"the audit anchor {self.head_path} does not authenticate under the audit key: it was edited or replaced")
        if anchor.get("seq") == 0 and size == 0 and has_checkpoints:
            raise self._anchor_error(f"the audit log {self.path} is empty or missing but {self.checkpoints_path} holds signed checkpoints of a log: "
                                     "it was deleted or replaced; refusing to start a new log")
        signing_key = self._signing_key(anchor)
        if anchor.get("key_id") != signing_key.key_id:
            raise IntegrityError(f"the signing key was replaced: the anchor was signed by key {anchor.get('key_id')} but {signing_key.location} is key {signing_key.key_id}",
                                 hint="restore the original signing.key and signing.pub from backup; preserve the log as evidence")
        problem = _tail_vs_anchor(self, key, anchor, last, torn, size)
        if problem:
            raise self._anchor_error(problem)
        try:
            state = ResumableSHA256.from_state(anchor["state"])
        except ValueError:
            raise self._anchor_error(f"the audit anchor {self.head_path} holds no valid SHA-256 state") from None
        compressed, tail = state.state()["n"], bytes.fromhex(state.state()["tail"])
        if state.size != anchor["offset"] or _read_range(self.path, compressed, state.size) != tail:
            raise self._anchor_error(f"the last bytes of the audit log before offset {anchor['offset']} differ from its anchor: the log was rewritten")
        resume = {"state": state, "offset": anchor["offset"], "vaults": dict(anchor.get("vaults") or {}), "pending": dict(anchor.get("pending") or {}),
                  "log": anchor["log"], "signing_key": signing_key}
        if last is not None and last.get("seq") == anchor.get("seq", 0) + 1:
            _note_pending(resume, last)  # the crash-window record's write was never confirmed
        return resume

    def _refuse_unanchored(self, anchor: dict | None, size: int, key_exists: bool, has_checkpoints: bool) -> None:
        """The log has no signed anchor: refuse every shape of it that is a deleted
        or replaced trail rather than a new (or pre-checkpoint) log. The writer and
        ``vault_state`` share this, so a vault opened beside such a log is refused
        with the audit side's own reason, before anything is read or written."""
        if size > 0 and (key_exists or has_checkpoints):
            raise self._anchor_error(f"the audit log {self.path} has records but its anchor {self.head_path} is "
                                     f"{'missing' if anchor is None else 'not signed'}, although this installation signs checkpoints: it was removed or replaced")
        if size == 0 and has_checkpoints:
            # F4: the log and its anchor were deleted (or audit.path points at a new file) but the checkpoints remain.
            raise self._anchor_error(f"the audit log {self.path} is empty or missing but {self.checkpoints_path} holds signed checkpoints of a log: "
                                     "it was deleted or replaced; refusing to start a new log")
        if size == 0 and anchor is None and self.signer.file_exists():
            # A4: log, anchor and checkpoints all deleted, the signing key kept: a new log
            # under the same key would verify with the auditors' pinned public key.
            # The key file is only ever created with a log's first record.
            raise self._anchor_error(f"the audit log {self.path}, its anchor and its checkpoints are missing but the signing key that signed them exists: "
                                     "the log was deleted; refusing to start a new log under the same key")
        if size > 0 and anchor is None:
            # F6: records, but no anchor, no signing key, no checkpoints. A log from
            # before signed checkpoints always has its (unsigned) anchor; without one this
            # is a log whose anchor, checkpoints and key were deleted: never sign it under a new key.
            raise self._anchor_error(f"the audit log {self.path} has records but no anchor, no signing key and no checkpoints: "
                                     "the anchor, checkpoints and signing key were deleted; refusing to sign it under a new key")

    def _refuse_cut_record(self, last: dict | None) -> None:
        """A4: a crash tears a record before its checkpoint is written. A fragment
        after record N while the checkpoints file already signed a record after N is
        a record that was cut (with the anchor and vault copied back), not torn."""
        from zerotrust_admin.audit.checkpoint import checkpoints_tail

        end = last["seq"] if last else 0
        tail, problem = checkpoints_tail(self.checkpoints_path)
        if problem:
            raise self._anchor_error(f"the audit log ends with a fragment after record {end} and {problem}: refusing to take it for a crash")
        newest = tail[-1] if tail else None
        if newest is not None and newest["seq"] > end:
            raise self._anchor_error(f"the audit log ends with a fragment after record {end}, but checkpoint {newest['seq']} already signed "
                                     f"record {newest['seq']}: a signed record was cut, not torn by a crash")

    def _open_for_write(self, hint: str | None = None) -> tuple[bytes, int]:
        """The audit key and an fd of the log (created 0600 if missing), never a
        new log where signed checkpoints describe one (F4). The caller flocks it."""
        self._refuse_a_new_log_over_checkpoints()
        try:
            key = self._load_key(create=True)
            fsutil.ensure_private_dir(self.path.parent)
            return key, fsutil.create_private_file(self.path)
        except OSError as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc.strerror}", hint=hint) from None

    def _refuse_a_new_log_over_checkpoints(self) -> None:
        """F4: no new log (not even its empty file) where the checkpoints describe one."""
        if not os.path.lexists(self.path) and os.path.lexists(self.checkpoints_path) and os.path.getsize(self.checkpoints_path) > 0:
            raise self._anchor_error(f"the audit log {self.path} is empty or missing but {self.checkpoints_path} holds signed checkpoints of a log: "
                                     "it was deleted or replaced; refusing to start a new log")

    def _torn_record(self, key: bytes, last: dict | None, torn: bytes) -> dict | None:
        """A fragment after the last newline that parses as a JSON object must be
        the next genuine record (it lost only its newline): return it. Anything
        else that parses is a forged record (A1/A4): exit 5, nothing written.
        A fragment that does not parse is a torn write (None: recover it)."""
        try:
            record = json.loads(torn)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        body = {k: v for k, v in record.items() if k != "hash"}
        claimed = record.get("hash")
        if (isinstance(claimed, str) and constant_time_equal(self._mac(key, body).encode(), claimed.encode()) and canonical(record) == torn
                and record.get("seq") == (last["seq"] + 1 if last else 1) and record.get("prev") == (last["hash"] if last else GENESIS)):
            return record
        raise IntegrityError(f"the log ends with a record that does not authenticate ({len(torn)} bytes after record {last['seq'] if last else 0}, no newline): "
                             "it was appended without the audit key",
                             hint="nothing was written; preserve audit.log, audit.log.head and audit.log.checkpoints as evidence and run: zerotrust-admin audit verify")

    def _anchor_error(self, message: str) -> IntegrityError:
        return IntegrityError(message, hint="nothing was written; preserve audit.log, audit.log.head and audit.log.checkpoints as evidence and run: zerotrust-admin audit verify")

    def _first_log_id(self) -> str | None:
        from zerotrust_admin.audit.checkpoint import log_id_of

        try:
            with open(self.path, "rb") as fh:
                first = fh.readline()
            return log_id_of(json.loads(first)["hash"]) if first.endswith(b"\n") else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _checkpoint(self, key: bytes, resume: dict, written: bytes, size: int, record: dict) -> dict:
        """Extend the SHA-256 over what this append added, sign, MAC, write the
        anchor atomically and append the public checkpoint to the checkpoints file."""
        from zerotrust_admin.audit.checkpoint import VERSION, log_id_of, public_checkpoint, sign_anchor

        state = resume["state"]
        start = resume["offset"]
        with open(self.path, "rb") as fh:  # bytes between the anchor and this append (a crash-window record, a torn fragment)
            fh.seek(start)
            remaining = size - start
            while remaining > 0:
                chunk = fh.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                state.update(chunk)
                remaining -= len(chunk)
        state.update(written)
        signing_key = resume["signing_key"]
        anchor = {"v": VERSION, "log": resume["log"] or self._first_log_id() or log_id_of(record["hash"]),
                  "seq": record["seq"], "hash": record["hash"], "offset": size + len(written), "sha256": state.hexdigest(),
                  "time": record["timestamp"], "vaults": resume["vaults"], "key_id": signing_key.key_id, "state": state.state()}
        if resume.get("pending"):
            anchor["pending"] = resume["pending"]
        anchor = sign_anchor(anchor, signing_key, key)
        fsutil.write_private_file(self.head_path, canonical(anchor) + b"\n")
        checkpoint = public_checkpoint(anchor)
        fd = fsutil.create_private_file(self.checkpoints_path)
        try:
            os.write(fd, canonical(checkpoint) + b"\n")
        finally:
            os.close(fd)
        return checkpoint

    # --- the vault generations the anchor confirms (threat model V4) ---
    def ensure_signing_key(self, actor: Actor):
        """The installation's signing key, for callers that sign something other
        than the log (backups, evidence bundles, `keys public-key`). Only the
        writer creates it: a missing key is made by appending a record of its
        creation, which also signs a log from before signed checkpoints in the
        same step. A key made anywhere else would leave such a log with an
        unsigned anchor that every later command must refuse (A2)."""
        if not self.signer.exists():
            self.append(event="key_rotation", action="create", resource="keys/signing", success=True, actor=actor, kind="signing", algorithm="ed25519")
        return self.signer.key()

    def vault_floor(self, vault_id: str) -> int:
        """The generation the authenticated anchor confirmed for ``vault_id`` (0 if
        none). Raises IntegrityError when the anchor does not authenticate, was
        removed, or no longer matches the log's tail."""
        with self.shared_lock():  # no writer between its record and its anchor while we compare them
            return self._vault_floor(vault_id)

    def _vault_floor(self, vault_id: str) -> int:
        return self._vault_state(vault_id).confirmed

    def vault_state(self, vault_id: str) -> "VaultAuditState":
        """What the authenticated anchor (and a valid crash-window record after it)
        says about ``vault_id``: the confirmed generation, a pending (written, not
        yet confirmed) one, whether the id is known, the log id and signing key id.
        Raises IntegrityError exactly where ``vault_floor`` does."""
        with self.shared_lock():
            return self._vault_state(vault_id)

    def _vault_state(self, vault_id: str) -> "VaultAuditState":
        from zerotrust_admin.audit.checkpoint import anchor_mac_ok

        anchor = self._read_anchor()
        exists = os.path.lexists(self.path)
        if anchor is None or "v" not in anchor:
            has_checkpoints = os.path.lexists(self.checkpoints_path) and os.path.getsize(self.checkpoints_path) > 0
            self._refuse_unanchored(anchor, os.path.getsize(self.path) if exists else 0, self.signer.exists(), has_checkpoints)
            try:
                last = _tail(self.path)[0] if exists else None
            except AuditError:
                last = None
            return VaultAuditState(records=last["seq"] if last else 0)
        last, torn = _tail(self.path) if exists else (None, None)
        key = self._load_key(create=False)
        if not anchor_mac_ok(anchor, key):
            raise self._anchor_error(f"the audit anchor {self.head_path} does not authenticate under the audit key: it was edited or replaced")
        size = os.path.getsize(self.path) if exists else 0
        problem = _tail_vs_anchor(self, key, anchor, last, torn, size)
        if problem:
            raise self._anchor_error(problem)
        vaults = {k: v for k, v in (anchor.get("vaults") or {}).items() if isinstance(v, int)}
        state = {"vaults": vaults, "pending": {k: v for k, v in (anchor.get("pending") or {}).items() if isinstance(v, int)}}
        if last is not None and last.get("seq") == anchor.get("seq", 0) + 1:
            _note_pending(state, last)  # a valid record beyond the anchor (the crash window) counts as pending
        if torn is not None:
            # A genuine record that lost only its newline counts as the writer counts it
            # (exit 5 for a forged one, as the writer would).
            torn_record = self._torn_record(key, last, torn)
            if torn_record is None:
                self._refuse_cut_record(last)
            elif torn_record.get("seq", 0) > anchor.get("seq", 0):  # after the crash-window record too: the writer keeps and counts it
                _note_pending(state, torn_record)
        pending = state["pending"]
        ids = set(vaults) | set(pending)
        return VaultAuditState(confirmed=int(vaults.get(vault_id, 0)), pending=int(pending.get(vault_id, 0)), known=vault_id in ids,
                               others=bool(ids - {vault_id}), log_id=anchor.get("log") or None, key_id=anchor.get("key_id"),
                               records=last["seq"] if last else 0)

    def acknowledge_interrupted(self, vault_id: str, generation: int, actor: Actor) -> dict:
        """Accept that the write which left ``pending[vault_id]`` never confirmed:
        append an ``audit_recovery`` record (action ``acknowledge``: the pending
        generation, the vault's generation, who) whose anchor sets
        ``vaults[vault_id] = generation`` and clears ``pending[vault_id]``. A
        generation below the confirmed one is a rollback, not an interruption: exit 5."""
        state = self.vault_state(vault_id)
        if int(generation) < state.confirmed:
            raise IntegrityError(f"vault {vault_id} is at generation {generation} but the audit anchor confirmed generation {state.confirmed}: "
                                 "that is a rollback, not an interrupted write", hint="restore the vault from a backup at or after that generation")
        return self.append(event="audit_recovery", action="acknowledge", resource=f"vault/{vault_id}", success=True, actor=actor, level="warning",
                           _acknowledge=(vault_id, int(generation)), vault_id=vault_id, pending_generation=state.pending,
                           confirmed_generation=state.confirmed, vault_generation=int(generation), acknowledged_by=actor.user)

    def shared_lock(self):
        """A shared flock on the log (writers hold it exclusively from their record
        to their anchor): what is read under it is one consistent instant."""
        import contextlib

        @contextlib.contextmanager
        def held():
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                yield
                return
            except OSError as exc:
                raise AuditError(f"cannot open the audit log {self.path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                yield
            finally:
                os.close(fd)

        return held()

    def confirm_vault(self, vault_id: str, generation: int) -> None:
        """Record, after the vault's COMMIT, that ``vault_id`` is at ``generation``:
        the anchor is re-signed with the new map under the log's lock; the next
        append's checkpoint carries it to the checkpoints file and the sinks."""
        from zerotrust_admin.audit.checkpoint import anchor_mac_ok, sign_anchor

        from zerotrust_admin.audit.checkpoint import VERSION
        from zerotrust_admin.audit.prefixhash import ResumableSHA256

        key, fd = self._open_for_write()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            anchor = self._read_anchor()
            if anchor is None and os.fstat(fd).st_size == 0 and os.path.lexists(self.checkpoints_path) and os.path.getsize(self.checkpoints_path) > 0:
                raise self._anchor_error(f"the audit log {self.path} is empty or missing but {self.checkpoints_path} holds signed checkpoints of a log: "
                                         "it was deleted or replaced; refusing to start a new log")
            if anchor is None and os.fstat(fd).st_size == 0:
                # A new vault before the log's first record: an anchor at record 0 carries the generation.
                empty = ResumableSHA256()
                anchor = {"v": VERSION, "log": "", "seq": 0, "hash": GENESIS, "offset": 0, "sha256": empty.hexdigest(), "time": rfc3339(),
                          "vaults": {}, "key_id": self._signing_key(None).key_id, "state": empty.state()}
                anchor["mac"] = ""
                anchor = sign_anchor(anchor, self._signing_key(anchor), key)
            if anchor is None or "v" not in anchor or not anchor_mac_ok(anchor, key):
                raise self._anchor_error(f"the audit anchor {self.head_path} is missing or does not authenticate; vault generation {generation} cannot be confirmed")
            vaults = dict(anchor.get("vaults") or {})
            pending = dict(anchor.get("pending") or {})
            # The floor only rises: two writers commit in lock order but may
            # confirm out of order, and the later confirmation must not lower it.
            # A pending generation is cleared once a generation at least as high is confirmed.
            clears = vault_id in pending and int(generation) >= int(pending[vault_id])
            if int(vaults.get(vault_id, 0)) >= int(generation) and not clears:
                return
            vaults[vault_id] = max(int(vaults.get(vault_id, 0)), int(generation))
            anchor["vaults"] = vaults
            if clears:
                pending.pop(vault_id)
            if pending:
                anchor["pending"] = pending
            else:
                anchor.pop("pending", None)
            fsutil.write_private_file(self.head_path, canonical(sign_anchor(anchor, self._signing_key(anchor), key)) + b"\n")
        except OSError as exc:
            raise AuditError(f"cannot write the audit anchor {self.head_path}: {exc.strerror}") from None
        finally:
            os.close(fd)

    def _build(self, key: bytes, last: dict | None, *, event, action, resource, success, actor: Actor, level, details) -> dict:
        record = {
            "timestamp": rfc3339(),
            "level": level or ("info" if success else "warning"),
            "event": event,
            "user": actor.user,
            "action": action,
            "resource": resource,
            "source_ip": actor.source_ip,
            "host": actor.host,
            "identity": getattr(actor, "identity", "claimed"),
            "success": bool(success),
            "seq": (last["seq"] + 1) if last else 1,
            "prev": last["hash"] if last else GENESIS,
        }
        if details:
            record["details"] = details
        record["hash"] = self._mac(key, record)
        return record

    # --- reading -------------------------------------------------------
    def lines(self) -> Iterator[tuple[int, bytes]]:
        if not os.path.lexists(self.path):
            return
        fsutil.check_private_file(self.path, what="audit log", allow_group_read=True)
        with open(self.path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                yield number, line

    def records(self) -> Iterator[dict]:
        """Parsed records in order. A torn fragment is skipped only when the
        next record is the audit_recovery record that accounts for it."""
        pending: int | None = None
        for number, line in self.lines():
            try:
                record = json.loads(line)
            except ValueError:
                if pending is not None:
                    break
                pending = number
                continue
            if pending is not None and record.get("event") != "audit_recovery":
                break
            pending = None
            yield record
        if pending is not None:
            raise IntegrityError(f"audit log line {pending} is not valid JSON", hint="run: zerotrust-admin audit verify")

    def tail(self, n: int) -> list[dict]:
        from collections import deque

        return list(deque(self.records(), maxlen=n))

    def verify(self, public=None) -> VerifyResult:
        """The whole chain, then the anchor: its MAC, its signature (by ``public``,
        default the installation's own ``signing.pub``), its seq, hash, byte
        offset and the SHA-256 of the log up to that offset."""
        exists = os.path.lexists(self.path)
        key = self._load_key(create=False) if exists else None
        # The anchor and the log's size at one instant (under the shared lock);
        # records appended while we read are after that size and not read.
        with self.shared_lock():
            head = self._read_head()
            size = os.path.getsize(self.path) if exists else 0
        chain = _Chain(head.get("seq", 0) if head is not None else 0)
        hashing = None
        if exists:
            fsutil.check_private_file(self.path, what="audit log", allow_group_read=True)
            mac = hmac_sha256_states(key, HASH_PREFIX)
            with open(self.path, "rb") as raw_fh:
                limit = head["offset"] if head is not None and isinstance(head.get("offset"), int) else 0
                fh = hashing = _HashingReader(raw_fh, limit, stop=size)
                for first, block, complete in _blocks(fh):
                    i = 0
                    while i < len(block):
                        if complete and chain.torn is None:
                            i = _fast_run(mac, block, i, chain)  # the common case: every line the writer produced
                            if i == len(block):
                                break
                        bad = self._check_line(key, chain, first + i, block[i] + b"\n" if complete else block[i])
                        if bad is not None:
                            return bad
                        i += 1
        result = self._finish(chain, head)
        if result.ok:
            self._check_anchor(result, key, head, hashing, public)
        return result

    def _check_anchor(self, result: VerifyResult, key: bytes | None, head: dict | None, hashing, public) -> None:
        """The anchor's own authenticity (A2, A5); turns ``result`` into a failure."""
        from zerotrust_admin.audit.checkpoint import anchor_mac_ok, check_signature, public_checkpoint

        def fail(problem: str) -> None:
            result.ok = False
            result.first_bad_seq = result.records
            result.problem = problem

        signed_before = self.signer.exists() or (os.path.lexists(self.checkpoints_path) and os.path.getsize(self.checkpoints_path) > 0)
        if head is None or "v" not in head:
            if result.records and signed_before:
                fail(f"the head anchor is {'missing' if head is None else 'not signed'} although this installation signs checkpoints: it was removed or replaced")
            elif head is not None and result.records:
                result.warnings.append("the head anchor is not signed (written before signed checkpoints); the next record signs it")
            return
        if key is None or not anchor_mac_ok(head, key):
            return fail("the head anchor does not authenticate under the audit key (edited or replaced)")
        try:
            trusted = public if public is not None else self.signer.public_key()
            check_signature(public_checkpoint(head), trusted, what="the head anchor")
        except (IntegrityError, NotFoundError) as exc:
            return fail(f"{exc.message} (was the signing key replaced?)" if isinstance(exc, IntegrityError) else f"the head anchor's signature cannot be checked: {exc.message}")
        size = hashing.pos if hashing is not None else 0
        if result.records == head["seq"] and head["offset"] != size:
            return fail(f"the log is {size} bytes but its anchor covers {head['offset']} at record {head['seq']}")
        if hashing is None or hashing.pos < head["offset"] or hashing.hexdigest() != head.get("sha256"):
            return fail(f"the first {head['offset']} bytes of the log do not match the SHA-256 in its anchor (edited)")
        if result.records == head["seq"] + 1:
            result.warnings.append(f"record {result.records} is not yet covered by the anchor (a crash between the record and its anchor)")
        result.checkpoint = {"seq": head["seq"], "offset": head["offset"], "key_id": head["key_id"], "log": head["log"], "vaults": head.get("vaults") or {}}

    def _check_line(self, key: bytes, chain: _Chain, number: int, raw: bytes) -> VerifyResult | None:
        """Parse and check one line the fast path did not accept; a VerifyResult
        naming the problem, or None when the line is a valid next record (or a
        torn fragment that the next record must account for)."""
        count = chain.expected_seq - 1

        def bad(problem: str, seq: int | None = None) -> VerifyResult:
            return VerifyResult(False, count, seq if seq is not None else chain.expected_seq, number, problem)

        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError
        except ValueError:
            if chain.torn is None and raw.endswith(b"\n"):
                chain.torn = (number, raw[:-1])  # acceptable only if the next record recovers it
                return None
            what = "is cut short (torn write)" if not raw.endswith(b"\n") else "is not valid JSON"
            return bad(f"line {number} {what}")
        if chain.torn is not None:
            torn_line, fragment = chain.torn
            details = record.get("details") or {}
            if record.get("event") != "audit_recovery" or details.get("torn_sha256") != hashlib.sha256(fragment).hexdigest():
                return VerifyResult(False, count, chain.expected_seq, torn_line, f"line {torn_line} is not a valid record (edited or corrupted)")
            chain.warnings.append(f"line {torn_line} is a torn write ({len(fragment)} bytes) after record {chain.expected_seq - 1}, "
                                  f"recovered by record {record.get('seq')}")
            chain.torn = None
        seq = record.get("seq")
        claimed = record.pop("hash", None)
        if not isinstance(claimed, str) or not constant_time_equal(self._mac(key, record).encode(), claimed.encode()):
            return bad(f"record {seq} (line {number}) was altered: its hash does not match its content", seq if isinstance(seq, int) else None)
        record["hash"] = claimed
        if canonical(record) + b"\n" != raw:
            return bad(f"record {seq} (line {number}) is not in canonical form (edited)", seq)
        if seq != chain.expected_seq:
            return bad(f"record {seq} found at line {number} where record {chain.expected_seq} was expected (deleted or reordered records)", chain.expected_seq)
        if record.get("prev") != chain.prev:
            return bad(f"record {seq} (line {number}) does not chain to record {seq - 1}", seq)
        chain.accept(claimed)
        return None

    @staticmethod
    def _finish(chain: _Chain, head: dict | None) -> VerifyResult:
        """The verdict at the end of the file: a pending torn fragment, then the head anchor."""
        count = chain.expected_seq - 1
        if chain.torn is not None:
            return VerifyResult(False, count, chain.expected_seq, chain.torn[0], f"line {chain.torn[0]} is not a valid record (edited or corrupted)")
        result = VerifyResult(True, count, warnings=chain.warnings)
        head_seq = chain.head_seq
        if head is not None:
            if count < head_seq:
                return VerifyResult(False, count, count + 1, None, f"the log ends at record {count} but the head anchor records {head_seq}: records {count + 1}-{head_seq} were deleted (truncated log)")
            if head_seq and head.get("hash") != chain.hash_at_head:
                return VerifyResult(False, count, head_seq, None, f"record {head_seq} does not match the head anchor (record replaced)")
            if count > head_seq + 1:
                return VerifyResult(False, count, head_seq + 2, None, f"the log has {count - head_seq} records after the head anchor (record {head_seq}): "
                                    "the anchor is two or more records behind (rolled back, or records added without it)")
        elif count:
            # A log from before signed checkpoints has its unsigned anchor; no anchor at
            # all means it (with the checkpoints and the key) was deleted (F6).
            return VerifyResult(False, count, count, None, f"the log has {count} records but no head anchor: the anchor was deleted, "
                                "so the deletion of the last records cannot be ruled out")
        return result

    def _read_head(self) -> dict | None:
        if not os.path.lexists(self.head_path):
            return None
        try:
            return json.loads(fsutil.read_private_file(self.head_path, what="audit head anchor"))
        except ValueError:
            raise IntegrityError(f"audit head anchor {self.head_path} is not valid JSON") from None


class _Chain:
    """Where verification stands: the next expected record, the hash it must
    chain to, a torn fragment awaiting its recovery record, and the hash of the
    record the head anchor names."""

    __slots__ = ("expected_seq", "prev", "torn", "warnings", "head_seq", "hash_at_head")

    def __init__(self, head_seq: int):
        self.expected_seq = 1
        self.prev = GENESIS
        self.torn: tuple[int, bytes] | None = None
        self.warnings: list[str] = []
        self.head_seq = head_seq
        self.hash_at_head: str | None = None

    def accept(self, hash_hex: str) -> None:
        if self.expected_seq == self.head_seq:
            self.hash_at_head = hash_hex
        self.prev = hash_hex
        self.expected_seq += 1


_READ_SIZE = 1 << 20  # 1 MiB reads: a few hundred syscalls for a million records, flat memory


class _HashingReader:
    """A file's ``read`` that also feeds SHA-256 with the first ``limit`` bytes (the anchor's offset)."""

    __slots__ = ("_fh", "_limit", "_stop", "_h", "pos")

    def __init__(self, fh, limit: int, stop: int | None = None):
        self._fh, self._limit, self._stop, self._h, self.pos = fh, limit, stop, hashlib.sha256(), 0

    def read(self, n: int) -> bytes:
        if self._stop is not None:
            n = max(0, min(n, self._stop - self.pos))
            if n == 0:
                return b""
        chunk = self._fh.read(n)
        if self.pos < self._limit:
            self._h.update(chunk[: self._limit - self.pos])
        self.pos += len(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _blocks(fh) -> Iterator[tuple[int, list[bytes], bool]]:
    """(number of the first line, lines without their "\\n", complete) in file
    order. Only a fragment at the very end of the file (no final newline) comes
    with complete=False, alone in its block."""
    number = 1
    rest = b""
    while chunk := fh.read(_READ_SIZE):
        lines = chunk.split(b"\n")
        lines[0] = rest + lines[0]
        rest = lines.pop()
        if lines:
            yield number, lines, True
            number += len(lines)
    if rest:
        yield number, [rest], False


_HASH_KEY = b'"hash":"'
_HOST_AFTER_HASH = b'","host":'  # the 9 bytes after the 64 hex digits of the top-level hash
_HOST_KEY = b',"host":'
_PREV_KEY = b',"prev":"'


def _fast_run(mac, lines: list[bytes], start: int, chain: _Chain) -> int:
    """Accept, from ``lines[start]`` on, every line that is exactly the next
    record the writer produced; return the index of the first line that is not
    (``len(lines)`` when all are), for the slow path to name the problem.

    In the canonical form the top-level ``"hash":"<64 hex>",`` sits right before
    the top-level ``"host"``, which is the last ``,"host":`` of the line (keys
    are sorted; nested objects only live in ``details``, which sorts earlier,
    and no JSON string can contain ``,"``). Cutting it out gives the exact bytes
    the MAC covers, so a valid MAC over the cut line proves every byte of it
    without parsing or re-serialising: the line is the writer's canonical JSON
    of a well-formed record. ``prev`` and ``seq`` are then checked in place (the
    only ``,"prev":"`` and ``,"seq":`` after the hash are the top-level ones).
    Per line: a few C-level searches and one HMAC from precomputed states, no
    Python objects beyond the slices."""
    inner, outer = mac
    head_seq = chain.head_seq
    expected = chain.expected_seq
    prev_hex = chain.prev.encode("ascii", "replace")
    prev_pat = _PREV_KEY + prev_hex + b'"'
    hash_at_head = None
    compare, hexlify = hmac.compare_digest, binascii.hexlify
    for raw in islice(lines, start, None):
        pos = raw.rfind(_HASH_KEY)
        if raw[pos + 72 : pos + 81] != _HOST_AFTER_HASH or pos <= 0 or raw[pos - 1] != 44 or raw.rfind(_HOST_KEY) != pos + 73:  # 44 = ","
            break
        h = inner.copy()
        h.update(raw[:pos])
        h.update(raw[pos + 74 :])
        o = outer.copy()
        o.update(h.digest())
        claimed = raw[pos + 8 : pos + 72]
        if not compare(hexlify(o.digest()), claimed) or raw.find(prev_pat, pos) < 0 or raw.find(b',"seq":%d,' % expected, pos) < 0:
            break
        if expected == head_seq:
            hash_at_head = claimed
        prev_pat = _PREV_KEY + claimed + b'"'
        prev_hex = claimed
        expected += 1
    accepted = expected - chain.expected_seq
    if hash_at_head is not None:
        chain.hash_at_head = hash_at_head.decode("ascii")
    chain.expected_seq = expected
    chain.prev = prev_hex.decode("ascii", "replace")
    return start + accepted


def _note_pending(resume: dict, record: dict) -> None:
    """A record carrying ``details["vault"]`` with a generation above the confirmed
    one makes that generation pending (written, not yet confirmed) for its vault."""
    vault = (record.get("details") or {}).get("vault") if isinstance(record.get("details"), dict) else None
    if not isinstance(vault, dict):
        return
    vault_id, generation = vault.get("id"), vault.get("generation")
    if not isinstance(vault_id, str) or not vault_id or not isinstance(generation, int) or isinstance(generation, bool):
        return
    if generation > int(resume["vaults"].get(vault_id, 0)) and generation > int(resume["pending"].get(vault_id, 0)):
        resume["pending"][vault_id] = generation


def _legacy_head_matches(anchor: dict, last: dict | None) -> bool:
    """An anchor from before signed checkpoints ({"seq", "hash"}) names the log's
    last record (or the one before it: a crash between the record and the anchor)."""
    if last is None:
        return False
    if last.get("seq") == anchor.get("seq") and last.get("hash") == anchor.get("hash"):
        return True
    return last.get("seq") == anchor.get("seq", -2) + 1 and last.get("prev") == anchor.get("hash")


def _read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(max(0, end - start))


def _tail_vs_anchor(log: AuditLog, key: bytes, anchor: dict, last: dict | None, torn: bytes | None, size: int) -> str | None:
    """What is wrong with the log's tail given its (authenticated) anchor, or None.
    Exactly one valid record beyond the anchor is the crash window between the
    record's fsync and the anchor's rename: accepted, the next anchor covers it."""
    seq_a, off_a = anchor.get("seq"), anchor.get("offset")
    if not isinstance(seq_a, int) or not isinstance(off_a, int):
        return f"the audit anchor {log.head_path} is malformed"
    last_seq = last["seq"] if last else 0
    end = size - (len(torn) if torn else 0)  # the end of the last complete line
    if last_seq < seq_a or end < off_a:
        return f"the audit log ends at record {last_seq} but its anchor records {seq_a}: it was truncated; preserve it as evidence"
    if last is None:
        return None if end == off_a == 0 else f"the audit log does not match its anchor {log.head_path}: the log was rewritten; preserve it as evidence"
    if last_seq == seq_a:
        if last.get("hash") != anchor.get("hash") or end != off_a:
            return f"record {seq_a} of the audit log does not match its anchor: the log was rewritten; preserve it as evidence"
        return None
    if last_seq == seq_a + 1:
        line = _read_range(log.path, off_a, end)
        try:
            record = json.loads(line)
            claimed = record.pop("hash")
        except (ValueError, KeyError, TypeError, AttributeError):
            record, claimed = None, None
        if (line.count(b"\n") != 1 or record is None or record.get("prev") != anchor.get("hash")
                or not isinstance(claimed, str) or not constant_time_equal(log._mac(key, record).encode(), claimed.encode())):
            return f"record {last_seq} after the anchor (record {seq_a}) does not authenticate or does not follow it: the log was rewritten; preserve it as evidence"
        return None
    return (f"the audit log has {last_seq - seq_a} records after its anchor (record {seq_a}): the anchor was rolled back "
            "or records were added without the key; preserve it as evidence")


def _tail(path: Path) -> tuple[dict | None, bytes | None]:
    """(last complete record, torn fragment after it or None), reading only the
    end of the file: appends stay O(1) at a million records."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == 0:
            return None, None
        block = 8192
        data = b""
        pos = size
        while True:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
            if data.count(b"\n") >= 2 or pos == 0:
                break
            block *= 2
    torn = None
    if not data.endswith(b"\n"):
        cut = data.rfind(b"\n")
        torn = data[cut + 1 :]
        data = data[: cut + 1]
    complete = data.rstrip(b"\n")
    if not complete:
        return None, torn
    last = complete[complete.rfind(b"\n") + 1 :]
    try:
        record = json.loads(last)
        record["seq"], record["hash"]
    except (ValueError, KeyError, TypeError):
        raise AuditError(f"the last record of the audit log {path} is not valid", hint="run 'zerotrust-admin audit verify'; preserve the file as evidence and move it aside to start a new log") from None
    return record, torn
