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

    @property
    def ok(self) -> bool:
        parts = [p for p in (self.chain, self.public, self.witness) if p is not None]
        return all(p.ok for p in parts)

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
        return ""

    def hint(self) -> str:
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
    from zerotrust_admin.audit.checkpoint import read_checkpoints, verify_public, verify_witness
    from zerotrust_admin.signing import PublicKey

    if public_key is not None:
        trusted = PublicKey.from_file(public_key)
        report = VerifyReport("public-key")
        from zerotrust_admin.audit.checkpoint import last_checkpoint

        with log.shared_lock():  # the anchor, the newest checkpoint and the log's size at one instant
            anchor = _read_json_file(log.head_path)
            newest = last_checkpoint(log.checkpoints_path)
            size = os.path.getsize(log.path) if os.path.lexists(log.path) else 0
        report.public = verify_public(log.path, anchor, log.checkpoints_path, trusted, newest=newest, size=size)
    else:
        report = VerifyReport("chain")
        report.chain = log.verify()
        trusted = None
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
    return report
