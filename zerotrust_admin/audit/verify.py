"""``audit verify`` as one library call: the keyed chain check, the public-key
check of the signed checkpoints, and the off-host witness (docs/audit-format.md)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from zerotrust_admin.errors import IntegrityError


@dataclass
class VerifyReport:
    mode: str  # "chain" (audit.key) or "public-key"
    chain: object = None  # log.VerifyResult
    public: object = None  # checkpoint.PublicVerifyResult
    witness: object = None  # checkpoint.WitnessResult
    extra_warnings: list[str] = field(default_factory=list)
    problem: str | None = None  # a cross-check failed: the checkpoints file vs the log (F4), vault generations (V4), no head anchor (F9), a forged fragment (F8)
    problem_hint: str | None = None
    proven: list[str] = field(default_factory=list)  # what proves the end of the log, for the summary

    @property
    def ok(self) -> bool:
        parts = [p for p in (self.chain, self.public, self.witness) if p is not None]
        return all(p.ok for p in parts) and self.problem is None

    def warnings(self) -> list[str]:
        out = list(self.extra_warnings)
        for p in (self.chain, self.public, self.witness):
            if p is not None:
                out.extend(p.warnings)
        return out

    def problem_line(self) -> str:
        if self.chain is not None and not self.chain.ok:
            return f"first bad record {self.chain.first_bad_seq}: {self.chain.problem}"
        if self.public is not None and not self.public.ok:
            return self.public.problem
        if self.witness is not None and not self.witness.ok:
            return self.witness.problem
        if self.problem is not None:
            return self.problem
        return ""

    def hint(self) -> str:
        parts_ok = all(p.ok for p in (self.chain, self.public, self.witness) if p is not None)
        if self.problem is not None and self.problem_hint and parts_ok:
            return self.problem_hint
        if self.witness is not None and not self.witness.ok:
            return "preserve the local files as evidence; the witness (your SIEM's copy of the checkpoints) is the trusted record"
        return "preserve the file as evidence; compare with your SIEM copy (audit verify --witness FILE)"

    def summary_lines(self) -> list[str]:
        lines = []
        if self.chain is not None:
            cp = self.chain.checkpoint
            signed = f", anchor at record {cp['seq']} signed by {cp['key_id']}" if cp else ""
            lines.append(f"OK: {self.chain.records} records, chain intact{signed}")
        if self.public is not None:
            good = self.public.last_good
            lines.append(f"OK: records 1-{good['seq']} ({good['offset']} bytes) proven by checkpoint {good['seq']} signed by {self.public.key_id}"
                         + (f"; {self.public.not_covered} record(s) not yet covered" if self.public.not_covered else ""))
        if self.witness is not None:
            lines.append(f"OK: all {self.witness.matched} witnessed checkpoint(s) match the local log (last: record {self.witness.last_matched})")
        lines.extend(self.proven)
        return lines

    def to_dict(self) -> dict:
        out: dict = {"ok": self.ok, "mode": self.mode}
        if self.chain is not None:
            out.update(self.chain.to_dict())
            out["ok"] = self.ok
        if self.public is not None:
            out["public_key"] = self.public.to_dict()
            if self.chain is None:
                out.update({"problem": self.public.problem, "warnings": self.public.warnings})
        if self.witness is not None:
            out["witness"] = self.witness.to_dict()
            if not self.witness.ok and out.get("problem") is None:
                out["problem"] = self.witness.problem
        if self.problem is not None and out.get("problem") is None:
            out["problem"] = self.problem
        if self.proven:
            out["proven"] = self.proven
        if self.extra_warnings:
            out["warnings"] = [*self.extra_warnings, *out.get("warnings", [])]
        return out


def _read_json_file(path: Path) -> dict | None:
    """An auditor's copy may be world-readable: read it as data, never trust it unsigned."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 20)
    except FileNotFoundError:
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def local_log_id(log_path: Path) -> str | None:
    from zerotrust_admin.audit.checkpoint import log_id_of

    try:
        with open(log_path, "rb") as fh:
            first = fh.readline()
        return log_id_of(json.loads(first)["hash"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_verify(log, *, public_key: Path | None = None, witness: Path | None = None) -> VerifyReport:
    from zerotrust_admin.audit.checkpoint import read_checkpoints, summarize_checkpoints, verify_public, verify_witness
    from zerotrust_admin.signing import PublicKey

    if public_key is not None:
        trusted = PublicKey.from_file(public_key)
        report = VerifyReport("public-key")
        from zerotrust_admin.audit.checkpoint import last_checkpoint

        with log.shared_lock():  # the anchor, the newest checkpoint and the log's size at one instant
            anchor = _read_json_file(log.head_path)
            newest = last_checkpoint(log.checkpoints_path)
            size = os.path.getsize(log.path) if os.path.lexists(log.path) else 0
            checkpoints, local_problem = summarize_checkpoints(log.checkpoints_path)
        report.public = verify_public(log.path, anchor, log.checkpoints_path, trusted, newest=newest, size=size)
    else:
        report = VerifyReport("chain")
        report.chain = log.verify()
        trusted = None
        with log.shared_lock():  # the anchor, the checkpoints and the size at one instant
            anchor = _read_json_file(log.head_path)
            size = os.path.getsize(log.path) if os.path.lexists(log.path) else 0
            checkpoints, local_problem = summarize_checkpoints(log.checkpoints_path)
    if witness is not None:
        if not os.path.lexists(witness):
            from zerotrust_admin.errors import NotFoundError

            raise NotFoundError(f"witness file {witness} does not exist")
        if trusted is None:
            trusted = log.signer.public_key()
        try:
            report.witness = verify_witness(log.path, read_checkpoints(witness), trusted, local_log_id(log.path))
        except IntegrityError as exc:
            from zerotrust_admin.audit.checkpoint import WitnessResult

            report.witness = WitnessResult(False, problem=f"the witness file holds a checkpoint that does not verify: {exc.message}")
    _cross_checks(log, report, anchor, size, checkpoints, local_problem, witness)
    return report


def _cross_checks(log, report: VerifyReport, anchor: dict | None, size: int, checkpoints: list[dict], local_problem: str | None,
                  witness: Path | None) -> None:
    """What neither the chain nor one checkpoint proves alone: the checkpoints file
    describes this log (F4), vault generations never go back (V4), the end of the
    log is proven by the head anchor or a witness (F9), recovered torn fragments
    are unauthenticated bytes (F8)."""
    from zerotrust_admin.audit.checkpoint import (check_checkpoints_describe_log, check_vault_generations, checkpoints_for, is_checkpoint,
                                                  public_checkpoint, read_checkpoints, recovered_fragments, recovery_records)

    def fail(problem: str, hint: str | None = None) -> None:
        if report.problem is None:
            report.problem, report.problem_hint = problem, hint

    signed_head = public_checkpoint(anchor) if is_checkpoint(anchor) else None
    if size == 0 and anchor is None and not checkpoints and log.signer.file_exists():
        # A4: nothing of the log is left but the key that signed it (created only with a log's first record).
        fail(f"the audit log {log.path}, its anchor and its checkpoints are missing but the signing key that signed them exists: the log was deleted",
             "restore audit.log, audit.log.head and audit.log.checkpoints from a backup, or compare with your SIEM copy (audit verify --witness FILE)")
    # A4: a record that took a torn fragment's place must not contradict a checkpoint
    # signed before it (the fragment was then a signed record, cut; not torn by a crash).
    recoveries = {r["seq"]: r for r in recovery_records(log.path)}
    for cp in checkpoints_for(log.checkpoints_path, set(recoveries)):
        if cp.get("hash") != recoveries[cp["seq"]].get("hash"):
            fail(f"checkpoint {cp['seq']} signed a record {cp['seq']} that is not in the log: the log holds a recovery record there instead "
                 "(a signed record was cut and the log rewritten after it: a fork)",
                 "preserve audit.log, audit.log.head and audit.log.checkpoints as evidence; restore the vault from a backup")
            break
    from zerotrust_admin.audit.log import _tail
    try:
        last, torn = _tail(log.path) if size else (None, None)
    except Exception:  # noqa: BLE001 - the chain check reports an unreadable log itself
        last, torn = None, None
    if torn is not None and checkpoints and isinstance(checkpoints[-1].get("seq"), int) and checkpoints[-1]["seq"] > (last["seq"] if last else 0):
        fail(f"the log ends with a fragment after record {last['seq'] if last else 0}, but checkpoint {checkpoints[-1]['seq']} signed a later record: "
             "a signed record was cut, not torn by a crash", "preserve the files as evidence; restore the vault from a backup")
    proven = None
    if report.chain is not None and report.chain.ok and report.chain.checkpoint is not None and signed_head is not None \
            and report.chain.checkpoint["seq"] == signed_head["seq"] and report.chain.checkpoint["offset"] == signed_head["offset"]:
        proven = signed_head
    elif report.public is not None and report.public.ok:
        proven = report.public.last_good
    problem = check_checkpoints_describe_log(log.path, checkpoints, local_log_id(log.path), size, known=proven)
    if problem:
        fail(problem, "preserve audit.log, audit.log.head and audit.log.checkpoints as evidence; the checkpoints (and your witness) describe the log that was there")
    witnessed = read_checkpoints(witness) if witness is not None and os.path.lexists(witness) else []
    key_id = signed_head["key_id"] if signed_head else (checkpoints[-1].get("key_id") if checkpoints else None)
    witnessed = [c for c in witnessed if key_id is None or c.get("key_id") == key_id]
    if local_problem:
        fail(local_problem, "a vault was rolled back; restore it from a backup at or after the higher generation, and preserve the files as evidence")
    for source, cps in (("the checkpoints file and the head anchor", [*checkpoints, *([signed_head] if signed_head else [])]),
                        ("the witness", witnessed),
                        ("the witness and the local checkpoints", [*witnessed, *checkpoints, *([signed_head] if signed_head else [])])):
        problem = check_vault_generations(cps, source=source)
        if problem:
            fail(problem, "a vault was rolled back; restore it from a backup at or after the higher generation, and preserve the files as evidence")
            break
    if report.public is not None:
        for line, fragment, is_object in recovered_fragments(log.path, size):
            if is_object:
                fail(f"line {line} is a JSON record ({len(fragment)} bytes) that no key authenticates, kept as a 'torn write': a forged record",
                     "preserve the files as evidence; verify with the audit key (audit verify) to see every record's MAC")
            else:
                report.extra_warnings.append(f"line {line}: {len(fragment)} bytes of a torn write that no signature authenticates (recovered by the next record)")
        if report.public.ok:
            end = report.public.last_good["seq"] if report.public.last_good else 0
            if signed_head is not None:
                report.proven.append(f"the end of the log: the signed head anchor is at record {signed_head['seq']} (an older genuine head copied back "
                                     "with the log cut to match it is caught only by a witness)")
            elif report.witness is not None and report.witness.ok and (report.witness.last_matched or 0) >= end:
                report.proven.append(f"the end of the log: no head anchor; the witness's last checkpoint (record {report.witness.last_matched}) covers it")
            else:
                fail(f"the head anchor {log.head_path} is missing or unsigned: records 1-{end} are proven, but records after {end} may have been cut",
                     "give the verifier audit.log.head too, or verify against a witness (--witness FILE)")
