"""Tamper-evident audit log: one JSON object per line, a keyed hash chain.

Each line is the canonical JSON (sorted keys, no spaces) of a record holding
the seed's fields plus ``seq`` (1, 2, 3...), ``prev`` (the previous record's
``hash``) and ``hash`` = HMAC-SHA256(audit key, "zt-audit-v1\\n" + canonical
JSON of the record without ``hash``). Editing any byte, deleting or reordering
lines breaks the chain; deleting lines at the end is caught by the head
anchor (``audit.head``), which records the last sequence number and hash.
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
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator

from zerotrust_admin import fsutil
from zerotrust_admin.crypto import constant_time_equal, hmac_sha256, hmac_sha256_states, random_key
from zerotrust_admin.errors import AuditError, IntegrityError, NotFoundError
from zerotrust_admin.timeutil import rfc3339

GENESIS = "0" * 64
HASH_PREFIX = b"zt-audit-v1\n"
SECRET_LIKE_KEYS = {"value", "secret", "password", "passphrase", "token", "key", "plaintext"}


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where (PRODUCT.md, "Operator identity")."""

    user: str
    source_ip: str
    host: str = field(default_factory=socket.gethostname)


@dataclass
class VerifyResult:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    first_bad_line: int | None = None
    problem: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "records": self.records,
            "first_bad_seq": self.first_bad_seq,
            "first_bad_line": self.first_bad_line,
            "problem": self.problem,
            "warnings": self.warnings,
        }


def canonical(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class AuditLog:
    def __init__(self, path: Path, key_path: Path | None = None, head_path: Path | None = None, sinks=None):
        self.path = Path(path)
        self.sinks = sinks  # audit.sinks.SinkSet: syslog/stdout copies, shipped after the file record is durable
        self.key_path = Path(key_path) if key_path else self.path.with_name("audit.key")
        self.head_path = Path(head_path) if head_path else self.path.with_name(self.path.name + ".head")
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
        **details,
    ) -> dict:
        """Append one record; raises AuditError if it cannot be made durable."""
        for k in details:
            if k in SECRET_LIKE_KEYS:
                raise ValueError(f"refusing to audit a field named {k!r}")
        try:
            key = self._load_key(create=True)
            fsutil.ensure_private_dir(self.path.parent)
            fd = fsutil.create_private_file(self.path)
        except OSError as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc.strerror}", hint="the operation was refused because it could not be audited") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last, torn = _tail(self.path)
            if torn is not None:
                # A previous writer died (or the disk filled) mid-line. Keep the
                # fragment as evidence, terminate it, and say so in the chain.
                os.write(fd, b"\n")
                recovery = self._build(key, last, event="audit_recovery", action="recover", resource=str(self.path), success=False,
                                       actor=actor, level="error", details={"torn_after_seq": last["seq"] if last else 0,
                                                                           "torn_bytes": len(torn), "torn_sha256": hashlib.sha256(torn).hexdigest()})
                os.write(fd, canonical(recovery) + b"\n")
                last = recovery
            record = self._build(key, last, event=event, action=action, resource=resource, success=success, actor=actor, level=level, details=details)
            line = canonical(record) + b"\n"
            os.write(fd, line)
            os.fsync(fd)
            fsutil.write_private_file(self.head_path, canonical({"seq": record["seq"], "hash": record["hash"]}) + b"\n")
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {exc.strerror}", hint="the operation was refused because it could not be audited") from None
        finally:
            os.close(fd)  # closing releases the flock
        if ship and self.sinks is not None:
            self.sinks.deliver(record, line, self)  # raises AuditError under the default "refuse" policy
        return record

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

    def verify(self) -> VerifyResult:
        exists = os.path.lexists(self.path)
        key = self._load_key(create=False) if exists else None
        # Read the anchor BEFORE the log: writers may append while we read, so
        # the log can only be longer than the anchor says, never legitimately shorter.
        head = self._read_head()
        chain = _Chain(head.get("seq", 0) if head is not None else 0)
        if exists:
            fsutil.check_private_file(self.path, what="audit log", allow_group_read=True)
            mac = hmac_sha256_states(key, HASH_PREFIX)
            with open(self.path, "rb") as fh:
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
        return self._finish(chain, head)

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
        elif count:
            result.warnings.append("no head anchor file: deletion of the last records cannot be detected")
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
