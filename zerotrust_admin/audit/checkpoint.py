"""Signed audit checkpoints and the authenticated head anchor (docs/audit-format.md).

A **checkpoint** says, under the installation's Ed25519 signing key: the log
``log`` had, at record ``seq`` (chain hash ``hash``), ``offset`` bytes whose
SHA-256 is ``sha256``; the vaults it had confirmed were at ``vaults``::

    {"hash","key_id","log","offset","seq","sha256","time","v":1,"vaults":{id:gen},"sig"}

``sig`` = base64(Ed25519(signing key, b"zt-checkpoint-v1\\n" + canonical(checkpoint without "sig"))).
The writer makes one per append; it goes to ``audit.log.checkpoints`` (JSON
Lines) and to every sink (the off-host witness). The **anchor**
(``audit.log.head``) is the latest checkpoint plus the writer's resumable
SHA-256 state and ``mac`` = hex(HMAC-SHA256(audit key, b"zt-anchor-v1\\n" +
canonical(anchor without "mac"))). Verifying a checkpoint needs only the
public key; the MAC lets the writer and ``vault_floor`` trust the anchor
cheaply and catches a rewritten anchor even when the signing key is swapped.

Like CloudTrail's log-file validation (signed digests, ``validate-logs``): the
latest checkpoint alone proves every byte of the log up to its offset; on a
mismatch ``verify_public`` bisects over the checkpoints (O(log n) signatures)
for the last good one and reports each range as valid, modified or missing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path

from zerotrust_admin.errors import IntegrityError, UsageError
from zerotrust_admin.structs import field, struct

VERSION = 1
SIG_PREFIX = b"zt-checkpoint-v1\n"
MAC_PREFIX = b"zt-anchor-v1\n"
REQUIRED_FIELDS = ("hash", "key_id", "log", "offset", "seq", "sha256", "time", "v", "vaults")
# ``pending`` ({vault id: generation} written but not yet confirmed, threat model V4)
# is signed when present; checkpoints without it (none pending, or older ones) sign as before.
SIGNED_FIELDS = REQUIRED_FIELDS + ("pending",)
_READ = 1 << 20


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_part(checkpoint: dict) -> dict:
    return {k: checkpoint[k] for k in SIGNED_FIELDS if k in checkpoint}


def signature_input(checkpoint: dict) -> bytes:
    return SIG_PREFIX + canonical(signed_part(checkpoint))


def public_checkpoint(anchor: dict) -> dict:
    """What goes to the checkpoints file and the sinks: the signed fields and ``sig``."""
    out = signed_part(anchor)
    out["sig"] = anchor["sig"]
    return out


def log_id_of(first_record_hash: str) -> str:
    """A log's id: the first 32 hex digits of its record 1's chain hash (a new or replaced log has another)."""
    return first_record_hash[:32]


def is_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("v") == VERSION and all(k in obj for k in REQUIRED_FIELDS) and "sig" in obj


def check_signature(checkpoint: dict, public, *, what: str = "checkpoint") -> None:
    """Raises IntegrityError unless ``checkpoint`` is well formed and signed by ``public``."""
    if not is_checkpoint(checkpoint):
        raise IntegrityError(f"{what} is not a signed checkpoint (fields missing)")
    if checkpoint["key_id"] != public.key_id:
        raise IntegrityError(f"{what} is signed by key {checkpoint['key_id']}, not by the trusted key {public.key_id}",
                             hint="the signing key was replaced, or you were given another installation's public key")
    try:
        sig = base64.b64decode(str(checkpoint["sig"]), validate=True)
    except (binascii.Error, ValueError):
        sig = b""
    public.verify(sig, signature_input(checkpoint), what=f"the signature of {what}")


def sign_anchor(anchor: dict, signing_key, audit_key: bytes) -> dict:
    """Fill in ``sig`` (over the signed fields) and ``mac`` (over everything else too)."""
    from zerotrust_admin.crypto import hmac_sha256

    anchor = {k: v for k, v in anchor.items() if k not in ("sig", "mac")}
    anchor["sig"] = base64.b64encode(signing_key.sign(signature_input(anchor))).decode("ascii")
    anchor["mac"] = hmac_sha256(audit_key, MAC_PREFIX + canonical(anchor)).hex()
    return anchor


def anchor_mac_ok(anchor: dict, audit_key: bytes) -> bool:
    from zerotrust_admin.crypto import constant_time_equal, hmac_sha256

    claimed = anchor.get("mac")
    if not isinstance(claimed, str):
        return False
    body = {k: v for k, v in anchor.items() if k != "mac"}
    return constant_time_equal(hmac_sha256(audit_key, MAC_PREFIX + canonical(body)).hex().encode(), claimed.encode())


# --- the signing key the log uses -------------------------------------------------
class Signer:
    """The installation's signing key as the audit log needs it: created lazily
    (never over a log that has signed checkpoints), its public half for verify."""

    def __init__(self, config=None, home: Path | None = None):
        self.config = config
        self.home = Path(home) if home is not None else None
        self._key = None

    def exists(self) -> bool:
        from zerotrust_admin.signing import signing_key_exists

        return signing_key_exists(self.config, self.home)

    def file_exists(self) -> bool:
        from zerotrust_admin.signing import signing_key_file_exists

        return signing_key_file_exists(self.config, self.home)

    def key(self, *, refuse_new: str | None = None):
        if self._key is None:
            from zerotrust_admin.signing import load_signing_key

            self._key = load_signing_key(self.config, self.home, create=True, refuse_new=refuse_new)
        return self._key

    def public_key(self, *, create: bool = False):
        if self._key is not None:
            return self._key.public
        if create:  # load_signing_key refuses a new key when the audit log was already signed (A5)
            return self.key().public
        from zerotrust_admin.signing import own_public_key

        return own_public_key(self.config, self.home)


# --- reading checkpoints ----------------------------------------------------------
def parse_witness_line(raw: bytes) -> dict | None:
    """A checkpoint from one line as a sink received it: a JSON line, a webhook
    body, or a raw syslog line that contains the JSON (after the BOM). Other
    lines (records, noise) give None."""
    text = raw.strip()
    if not text:
        return None
    start = text.find(b"\xef\xbb\xbf{")
    start = start + 3 if start >= 0 else text.find(b"{")
    if start < 0:
        return None
    try:
        obj = json.loads(text[start:])
    except ValueError:
        return None
    return obj if is_checkpoint(obj) else None


def read_checkpoints(path: Path) -> list[dict]:
    """Every checkpoint in a file (the local checkpoints file or a witness file), in file order."""
    out = []
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                cp = parse_witness_line(raw)
                if cp is not None:
                    out.append(cp)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return out


def prefix_digests(path: Path, offsets: list[int]) -> tuple[dict[int, str], int]:
    """({offset: hex SHA-256 of the first offset bytes} for every offset the file
    reaches, file size), in one streaming pass."""
    wanted = sorted(set(o for o in offsets if o >= 0))
    found: dict[int, str] = {}
    h = hashlib.sha256()
    pos = 0
    i = 0
    with open(path, "rb") as fh:
        while i < len(wanted) and wanted[i] == 0:
            found[0] = h.hexdigest()
            i += 1
        while chunk := fh.read(_READ):
            end = pos + len(chunk)
            start = 0
            while i < len(wanted) and wanted[i] <= end:
                cut = wanted[i] - pos
                h.update(chunk[start:cut])
                start = cut
                found[wanted[i]] = h.hexdigest()
                i += 1
            h.update(chunk[start:])
            pos = end
    return found, pos


# --- verification with the public key only ------------------------------------------
@struct
class PublicVerifyResult:
    ok: bool
    key_id: str
    log: str | None = None
    checkpoints: int = 0
    signatures_checked: int = 0
    last_good: dict | None = None
    ranges: list[dict] = field(default_factory=list)
    not_covered: int = 0
    problem: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "mode": "public-key", "key_id": self.key_id, "log": self.log, "checkpoints": self.checkpoints,
                "signatures_checked": self.signatures_checked,
                "last_good": {k: self.last_good[k] for k in ("seq", "offset", "time")} if self.last_good else None,
                "ranges": self.ranges, "not_covered": self.not_covered, "problem": self.problem, "warnings": self.warnings}


def _count_lines_after(path: Path, offset: int, end: int | None = None) -> tuple[int, bool]:
    """(complete lines between ``offset`` and ``end``, a fragment without "\\n" at the end)."""
    n = 0
    last = b""
    with open(path, "rb") as fh:
        fh.seek(offset)
        remaining = None if end is None else max(0, end - offset)
        while chunk := fh.read(_READ if remaining is None else min(_READ, remaining)):
            if remaining is not None:
                remaining -= len(chunk)
            n += chunk.count(b"\n")
            last = chunk
    return n, bool(last) and not last.endswith(b"\n")


def checkpoints_tail(path: Path, window: int = 8192) -> tuple[list[dict], str | None]:
    """The complete lines in the last ``window`` bytes of a checkpoints file, parsed,
    and what is wrong with them: the writer appends only its own checkpoint lines,
    each for a higher record than the last, so a line that is not a checkpoint or a
    number that does not go up was put there by someone else. A trailing line
    without its newline (a crash while it was written) is left out."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            start = max(0, size - window)
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return [], None
    lines = data.split(b"\n")
    lines = lines[:-1]  # the part after the last newline: empty, or a line being written
    if start > 0:
        if len(lines) <= 1:  # no line starts inside the window: longer than any checkpoint line
            return [], f"{path} ends with a line that is not a checkpoint"
        lines = lines[1:]  # the first line may start before the window
    out = []
    for raw in lines:
        cp = parse_witness_line(raw + b"\n")
        if cp is None or not isinstance(cp.get("seq"), int):
            return out, f"{path} ends with a line that is not a checkpoint"
        if out and cp["seq"] <= out[-1]["seq"]:
            return out, f"{path} has a checkpoint for record {cp['seq']} after one for record {out[-1]['seq']}"
        out.append(cp)
    return out, None


def last_checkpoint(path: Path) -> dict | None:
    """The last checkpoint of a checkpoints file, reading only its end."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            tail = fh.read()
    except FileNotFoundError:
        return None
    for raw in reversed(tail.splitlines()):
        cp = parse_witness_line(raw)
        if cp is not None:
            return cp
    return None


def verify_public(log_path: Path, anchor: dict | None, checkpoints, public, *, newest: dict | None = None, size: int | None = None) -> PublicVerifyResult:
    """``audit verify --public-key``: no secret needed. The newest checkpoint
    (the anchor or the checkpoints file's last line, whichever is later) must
    be signed by ``public`` and its SHA-256 must match the log's first
    ``offset`` bytes; that proves every byte up to there. On a mismatch,
    bisect over the signed checkpoints for the last good one."""
    result = PublicVerifyResult(False, public.key_id)
    load_all = checkpoints if callable(checkpoints) else (lambda: checkpoints)
    # The happy path needs only the newest checkpoint: the anchor or the file's last line.
    if newest is None and isinstance(checkpoints, Path):
        newest = last_checkpoint(checkpoints)
    if isinstance(checkpoints, Path):
        path = checkpoints
        load_all = lambda: read_checkpoints(path)  # noqa: E731
    candidates = [newest] if newest is not None else ([] if isinstance(checkpoints, Path) else [c for c in load_all() if is_checkpoint(c)])
    if anchor is not None and is_checkpoint(anchor):
        candidates.append(public_checkpoint(anchor))
    if not candidates:
        result.problem = "no signed checkpoint found (audit.log.head and audit.log.checkpoints are missing or unsigned)"
        return result
    by_seq: dict[tuple, dict] = {}
    for c in candidates:
        by_seq.setdefault((c.get("seq"), c.get("offset"), c.get("sig")), c)
    ordered = sorted(by_seq.values(), key=lambda c: (c.get("seq") if isinstance(c.get("seq"), int) else -1, c.get("offset") if isinstance(c.get("offset"), int) else -1))
    result.checkpoints = len(ordered)
    latest = ordered[-1]
    try:
        check_signature(latest, public, what=f"checkpoint {latest.get('seq')}")
    except IntegrityError as exc:
        result.signatures_checked = 1
        result.problem = f"the latest checkpoint does not verify: {exc.message}"
        return result
    result.signatures_checked = 1
    result.log = latest["log"]
    if not os.path.lexists(log_path):
        result.problem = f"the audit log {log_path} is missing but checkpoint {latest['seq']} covers {latest['offset']} bytes of it"
        result.ranges = [{"from_seq": 1, "to_seq": latest["seq"], "verdict": "missing"}]
        return result
    digests, size = prefix_digests(log_path, [latest["offset"]])
    if digests.get(latest["offset"]) == latest["sha256"]:
        result.last_good = latest
        result.ranges = [{"from_seq": 1, "to_seq": latest["seq"], "verdict": "valid"}]
        after, torn = _count_lines_after(log_path, latest["offset"], size)
        result.not_covered = after
        if after:
            result.ranges.append({"from_seq": latest["seq"] + 1, "to_seq": latest["seq"] + after, "verdict": "not yet covered"})
        if torn:
            result.problem = f"the log ends with a fragment after byte {latest['offset']} (a torn or appended line)"
            return result
        if after > 1:
            result.problem = (f"{after} records after the latest checkpoint ({latest['seq']}) are not covered by any checkpoint: "
                              "the anchor and checkpoints were rolled back, or the records were appended without the key")
            return result
        if after == 1:
            result.warnings.append(f"record {latest['seq'] + 1} is not yet covered by a checkpoint (a crash between the record and its checkpoint)")
        result.ok = True
        return result
    # Bisect: the prefix property makes "checkpoint i matches" monotone in i.
    everything = {(c.get("seq"), c.get("offset"), c.get("sig")): c for c in [*load_all(), *ordered] if is_checkpoint(c)}
    ordered = sorted(everything.values(), key=lambda c: (c["seq"] if isinstance(c["seq"], int) else -1, c["offset"] if isinstance(c["offset"], int) else -1))
    result.checkpoints = len(ordered)
    signed = [c for c in ordered if c.get("log") == latest["log"]]
    all_digests, size = prefix_digests(log_path, [c["offset"] for c in signed if isinstance(c.get("offset"), int)])

    def good(c: dict) -> bool:
        if all_digests.get(c["offset"]) != c["sha256"]:
            return False
        result.signatures_checked += 1
        try:
            check_signature(c, public, what=f"checkpoint {c.get('seq')}")
        except IntegrityError:
            return False
        return True

    lo, hi = 0, len(signed) - 1  # signed[hi] (the latest) is known bad
    last_good = -1
    while lo < hi:
        mid = (lo + hi) // 2
        if good(signed[mid]):
            last_good = mid
            lo = mid + 1
        else:
            hi = mid
    result.last_good = signed[last_good] if last_good >= 0 else None
    first_seq = 1
    if result.last_good:
        result.ranges.append({"from_seq": 1, "to_seq": result.last_good["seq"], "verdict": "valid"})
        first_seq = result.last_good["seq"] + 1
    bad = signed[last_good + 1]
    verdict = "missing" if bad["offset"] > size else "modified"
    result.ranges.append({"from_seq": first_seq, "to_seq": bad["seq"], "verdict": verdict})
    if bad["seq"] < latest["seq"]:
        verdict_after = "missing" if latest["offset"] > size else "not verifiable (after a modified range)"
        result.ranges.append({"from_seq": bad["seq"] + 1, "to_seq": latest["seq"], "verdict": verdict_after})
    good_text = f"the last good checkpoint is record {result.last_good['seq']} (byte {result.last_good['offset']})" if result.last_good else "no checkpoint matches"
    span = f"record {first_seq} was" if first_seq == bad["seq"] else f"records {first_seq}-{bad['seq']} were"
    what = "missing (the log was truncated)" if verdict == "missing" else "modified"
    result.problem = f"{span} {what}: {good_text}"
    return result


# --- witness ----------------------------------------------------------------------
@struct
class WitnessResult:
    ok: bool
    witnessed: int = 0
    matched: int = 0
    ignored: int = 0
    last_matched: int | None = None
    problem: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "witnessed": self.witnessed, "matched": self.matched, "ignored_other_keys": self.ignored,
                "last_matched_seq": self.last_matched, "problem": self.problem, "warnings": self.warnings}


def verify_witness(log_path: Path, witness: list[dict], public, local_log_id: str | None) -> WitnessResult:
    """Every checkpoint the sink received (signed by ``public``) must be matched
    by the local log: the same log id and the same SHA-256 at its offset."""
    result = WitnessResult(False)
    mine = []
    for cp in witness:
        if cp.get("key_id") != public.key_id:
            result.ignored += 1
            continue
        check_signature(cp, public, what=f"witnessed checkpoint {cp.get('seq')}")
        mine.append(cp)
    if result.ignored:
        result.warnings.append(f"{result.ignored} witnessed checkpoint(s) signed by other keys were ignored")
    result.witnessed = len(mine)
    if not mine:
        result.problem = f"the witness file holds no checkpoint signed by key {public.key_id}"
        return result
    mine.sort(key=lambda c: (c["seq"], c["offset"]))
    other_logs = sorted({c["log"] for c in mine if c["log"] != local_log_id})
    if local_log_id is None or other_logs:
        first = next(c for c in mine if c["log"] != local_log_id)
        result.problem = (f"the witness holds checkpoints of log {first['log']} (from record {first['seq']}) but the local log is "
                          f"{local_log_id or 'empty'}: the local log was replaced")
        return result
    if not os.path.lexists(log_path):
        result.problem = f"the local log is missing but the witness holds checkpoints up to record {mine[-1]['seq']}"
        return result
    digests, size = prefix_digests(log_path, [c["offset"] for c in mine])
    for cp in mine:
        if digests.get(cp["offset"]) != cp["sha256"]:
            after = f"after checkpoint {result.last_matched}" if result.last_matched is not None else "before the first witnessed checkpoint"
            how = f"it ends at byte {size}, before byte {cp['offset']} of witnessed checkpoint {cp['seq']}" if cp["offset"] > size else f"its first {cp['offset']} bytes differ from witnessed checkpoint {cp['seq']}"
            result.problem = f"the local log was rewritten or truncated {after}: {how}"
            return result
        result.matched += 1
        result.last_matched = cp["seq"]
    result.ok = True
    return result


# --- signing a log written in bulk ----------------------------------------------------
def anchor_existing_log(log, *, every: int = 0) -> dict:
    """Sign a log that this process has just written in one pass (the synthetic
    logs of tests and benchmarks, ``anomaly.synthetic.write_log``): a checkpoint
    every ``every`` records (0: only the last) and the anchor for the last one.
    Signing whatever is on disk is exactly what the writer must never do for a
    log it did not write itself, so nothing but a bulk writer calls this."""
    from zerotrust_admin import fsutil
    from zerotrust_admin.audit.prefixhash import ResumableSHA256

    key = log._load_key(create=False)
    previous = log._read_head()
    vaults = dict(previous.get("vaults") or {}) if previous and "v" in previous and anchor_mac_ok(previous, key) else {}
    signing_key = log.signer.key()
    state = ResumableSHA256()
    running = hashlib.sha256()
    lines_out: list[bytes] = []
    seq, offset, last, log_id = 0, 0, None, None
    pending = bytearray()
    with open(log.path, "rb") as fh:
        for line in fh:
            seq += 1
            offset += len(line)
            pending += line
            last = line
            if log_id is None:
                log_id = log_id_of(json.loads(line)["hash"])
            if every and seq % every == 0:
                running.update(pending)
                state.update(bytes(pending))
                pending.clear()
                record = json.loads(line)
                cp = {"v": VERSION, "log": log_id, "seq": seq, "hash": record["hash"], "offset": offset, "sha256": running.hexdigest(),
                      "time": record["timestamp"], "vaults": vaults, "key_id": signing_key.key_id}
                cp["sig"] = base64.b64encode(signing_key.sign(signature_input(cp))).decode("ascii")
                lines_out.append(canonical(cp) + b"\n")
            elif len(pending) >= 1 << 20:
                running.update(pending)
                state.update(bytes(pending))
                pending.clear()
    state.update(bytes(pending))
    if last is None:
        raise IntegrityError(f"{log.path} is empty: nothing to anchor")
    record = json.loads(last)
    anchor = {"v": VERSION, "log": log_id, "seq": seq, "hash": record["hash"], "offset": offset, "sha256": state.hexdigest(),
              "time": record["timestamp"], "vaults": vaults, "key_id": signing_key.key_id, "state": state.state()}
    anchor = sign_anchor(anchor, signing_key, key)
    if not lines_out or json.loads(lines_out[-1])["seq"] != seq:
        lines_out.append(canonical(public_checkpoint(anchor)) + b"\n")
    fsutil.write_private_file(log.checkpoints_path, b"".join(lines_out))
    fsutil.write_private_file(log.head_path, canonical(anchor) + b"\n")
    return anchor


# --- consistency of the checkpoints file, vault generations, recovered fragments -------
def prefix_digest(path: Path, offset: int) -> str | None:
    """SHA-256 of the first ``offset`` bytes of ``path`` (None when it is shorter)."""
    h = hashlib.sha256()
    remaining = offset
    try:
        with open(path, "rb") as fh:
            while remaining > 0:
                chunk = fh.read(min(_READ, remaining))
                if not chunk:
                    return None
                h.update(chunk)
                remaining -= len(chunk)
    except FileNotFoundError:
        return None if offset else h.hexdigest()
    return h.hexdigest()


def check_checkpoints_describe_log(log_path: Path, checkpoints: list[dict], log_id: str | None, size: int, known: dict | None = None) -> str | None:
    """F4: every checkpoint of the checkpoints file must describe this log (its id,
    a prefix no longer than the log); the first and the last are checked against
    the log's bytes. ``known`` is a checkpoint already proven (the head): skipped."""
    mine = [c for c in checkpoints if is_checkpoint(c)]
    if not mine:
        return None
    for cp in mine:
        if cp["log"] != log_id and not (cp["seq"] == 0 and not cp["log"]):
            return (f"the checkpoints file describes log {cp['log']} (checkpoint {cp['seq']}) but the local log is {log_id or 'empty'}: "
                    "the log was deleted or replaced")
        if cp["offset"] > size:
            return (f"the checkpoints file describes a longer log: checkpoint {cp['seq']} covers {cp['offset']} bytes but the log has {size}: "
                    "it was truncated")
    for cp in {id(mine[0]): mine[0], id(mine[-1]): mine[-1]}.values():
        if known is not None and cp["offset"] == known.get("offset") and cp["sha256"] == known.get("sha256"):
            continue
        if prefix_digest(log_path, cp["offset"]) != cp["sha256"]:
            return f"the first {cp['offset']} bytes of the log differ from checkpoint {cp['seq']} of the checkpoints file: the log was rewritten"
    return None


def check_vault_generations(checkpoints: list[dict], *, source: str = "the checkpoints") -> str | None:
    """V4: a vault's confirmed generation never decreases from one checkpoint to the
    next, in order of seq (the order given within a seq: the checkpoint line is
    written before the anchor is re-signed with the confirmation, so pass the
    anchor last); a decrease is a rollback."""
    highest: dict[str, tuple[int, int]] = {}  # vault id -> (generation, seq)
    ordered = sorted((c for c in checkpoints if isinstance(c, dict) and isinstance(c.get("seq"), int) and isinstance(c.get("vaults"), dict)),
                     key=lambda c: c["seq"])
    for cp in ordered:
        for vault_id, gen in cp["vaults"].items():
            if not isinstance(gen, int):
                continue
            before = highest.get(vault_id)
            if before is not None and gen < before[0]:
                return (f"vault {vault_id} went back from generation {before[0]} at checkpoint {before[1]} to {gen} at checkpoint {cp['seq']} "
                        f"({source}): a rollback")
            highest[vault_id] = (gen, cp["seq"])
    return None


def check_seq_order(seqs, *, source: str = "the checkpoints file") -> str | None:
    """The writer appends one checkpoint per append, each at a higher record
    number than the last: a number that does not go up means the log was cut back
    and rewritten after that record was signed (a fork; threat model A4)."""
    previous = None
    for index, seq in enumerate(seqs, 1):
        if previous is not None and seq <= previous:
            return (f"checkpoint line {index} of {source} is for record {seq} after a checkpoint for record {previous}: "
                    "the log was cut back and rewritten after those records were signed (a fork)")
        previous = seq
    return None


_RECOVERY_MARK = b'"event":"audit_recovery"'


def recovered_fragments(log_path: Path, end: int | None = None) -> list[tuple[int, bytes, bool]]:
    """(line number, bytes, parses as a JSON object) of every torn fragment that an
    ``audit_recovery`` record accounts for: bytes no record's MAC covers. One
    fast scan for the marker; lines are split only when it occurs."""
    found = False
    carry = b""
    try:
        with open(log_path, "rb") as fh:
            remaining = end
            while chunk := fh.read(_READ if remaining is None else min(_READ, remaining)):
                if remaining is not None:
                    remaining -= len(chunk)
                if _RECOVERY_MARK in carry + chunk:
                    found = True
                    break
                carry = chunk[-len(_RECOVERY_MARK):]
            if not found:
                return []
            fh.seek(0)
            out = []
            previous = None
            pos = 0
            for number, line in enumerate(fh, start=1):
                pos += len(line)
                if end is not None and pos > end:
                    break
                if _RECOVERY_MARK in line and b'"action":"recover"' in line and previous is not None:
                    fragment = previous.rstrip(b"\n")
                    try:
                        is_object = isinstance(json.loads(fragment), dict)
                    except ValueError:
                        is_object = False
                    out.append((number - 1, fragment, is_object))
                previous = line
            return out
    except FileNotFoundError:
        return []


def recovery_records(log_path: Path) -> list[dict]:
    """Every ``audit_recovery`` record (action ``recover``) of the log, parsed: the
    records that took the place of a torn fragment. One fast scan for the marker."""
    out = []
    try:
        with open(log_path, "rb") as fh:
            carry = b""
            while chunk := fh.read(_READ):
                if _RECOVERY_MARK in carry + chunk:
                    break
                carry = chunk[-len(_RECOVERY_MARK):]
            else:
                return []
            fh.seek(0)
            for line in fh:
                if _RECOVERY_MARK in line and b'"action":"recover"' in line:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(record, dict) and isinstance(record.get("seq"), int):
                        out.append(record)
    except FileNotFoundError:
        return []
    return out


def checkpoints_for(path: Path, seqs: set[int]) -> list[dict]:
    """The checkpoints of ``path`` for the record numbers in ``seqs`` (a byte scan;
    only the matching lines are parsed)."""
    if not seqs:
        return []
    needles = {n: b',"seq":%d,"sha256":' % n for n in seqs}
    out = []
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if any(needle in line for needle in needles.values()):
                    cp = parse_witness_line(line)
                    if cp is not None and cp.get("seq") in seqs:
                        out.append(cp)
    except FileNotFoundError:
        return []
    return out


_CANONICAL_CP = None


def _canonical_pattern():
    global _CANONICAL_CP
    import re

    if _CANONICAL_CP is None:
        _CANONICAL_CP = re.compile(
            rb'\{"hash":"([0-9a-f]{64})","key_id":"([0-9a-f]{1,64})","log":"([0-9a-f]{0,64})","offset":(\d{1,19}),'
            rb'(?:"pending":(\{(?:"[0-9A-Za-z_.:-]*":\d{1,19},?)*\}),)?"seq":(\d{1,19}),"sha256":"([0-9a-f]{64})",'
            rb'"sig":"([A-Za-z0-9+/=]{1,200})","time":"([^"\\]{1,64})","v":1,"vaults":(\{(?:"[0-9A-Za-z_.:-]*":\d{1,19},?)*\})\}\n')
    return _CANONICAL_CP


def _full(m) -> dict:
    cp = {"hash": m[1].decode(), "key_id": m[2].decode(), "log": m[3].decode(), "offset": int(m[4]), "seq": int(m[6]),
          "sha256": m[7].decode(), "sig": m[8].decode(), "time": m[9].decode(), "v": VERSION, "vaults": json.loads(m[10])}
    if m[5] is not None:
        cp["pending"] = json.loads(m[5])
    return cp


def summarize_checkpoints(path: Path) -> tuple[list[dict], str | None]:
    """(checkpoints, problem) for the cross-checks of ``audit verify``, from the
    writer's own checkpoints file: its first and last lines (enough for
    ``check_checkpoints_describe_log`` when the file holds one log) and the first decrease of a vault generation from one line to a
    later one (V4), or None. The lines are canonical JSON: per 1 MiB block a few
    C-level ``findall`` calls and one comparison per line of the ``vaults``
    bytes (parsed only when they change). Anything unusual (another log id,
    a decrease, a line the patterns do not take) sends the
    file through ``read_checkpoints`` and the full checks. Signatures are not
    checked here."""
    import re

    pattern = _canonical_pattern()
    vaults_re = re.compile(rb',"vaults":(\{[^{}]*\})\}\n')
    first = last = None
    log_id = None
    prev_vaults = None
    highest: dict[str, int] = {}

    seq_re = re.compile(rb',"seq":(\d{1,19}),"sha256":')
    last_seq = [None]

    def slow() -> tuple[list[dict], str | None]:
        full = read_checkpoints(path)
        order = check_seq_order([c["seq"] for c in full if isinstance(c, dict) and isinstance(c.get("seq"), int)])
        return full, order or check_vault_generations(full, source="the checkpoints file")

    try:
        with open(path, "rb") as fh:
            rest = b""
            while chunk := fh.read(_READ):
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                block, rest = data[:cut], data[cut:]
                if not block:
                    continue
                lines = block.count(b"\n")
                if first is None:
                    first = pattern.match(block)
                    if first is None:
                        return slow()
                    log_id = first[3]
                vaults = vaults_re.findall(block)
                if len(vaults) != lines or block.count(b'"log":"' + log_id + b'","offset":') != lines:
                    return slow()  # another log id, or lines not in the writer's form
                seqs = [int(s) for s in seq_re.findall(block)]
                if len(seqs) != lines or check_seq_order(([last_seq[0]] if last_seq[0] is not None else []) + seqs):
                    return slow()  # a record number that does not go up: the full read names it
                last_seq[0] = seqs[-1]
                for v in vaults:
                    if v == prev_vaults:
                        continue
                    prev_vaults = v
                    for vault_id, gen in json.loads(v).items():
                        if gen < highest.get(vault_id, gen):
                            return slow()
                        highest[vault_id] = gen
                last = pattern.match(block, block.rfind(b"\n", 0, len(block) - 1) + 1)
                if last is None:
                    return slow()
            if rest:
                return slow()
    except FileNotFoundError:
        return [], None
    except (OSError, ValueError, AttributeError):
        return slow()
    if first is None:
        return [], None
    return ([_full(first)] if first.start() != last.start() or first.string is not last.string else []) + [_full(last)], None
