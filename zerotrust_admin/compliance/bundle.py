"""Signed evidence bundles: one report run, every rendering, the raw evidence
and a signed manifest of their hashes (docs/evidence-bundle.md).

A bundle is a directory (mode 0700, files 0600) that an auditor can open
with nothing but a file browser and check with ``sha256sum`` and the
installation's public key::

    report.pdf  report.json  report.md  report.oscal.json  evidence.json
    manifest.json   canonical JSON: the files, their sizes and SHA-256
    manifest.sig    zt-bundle-sig-v1 <key id> <base64 Ed25519 signature>

The signature is Ed25519 over ``b"zt-evidence-bundle-v1\\n"`` followed by
the exact bytes of manifest.json. ``evidence.json`` is the canonical JSON of
the object the report's evidence hash covers, so ``sha256sum evidence.json``
equals ``hashes.evidence_sha256`` in report.json.

``verify_bundle`` checks, against a key the caller trusts, the signature,
then every file: a changed, missing or extra file, a symlink, a
subdirectory or a manifest edit makes the bundle invalid (exit 5), each with
its own verdict, as CloudTrail's validate-logs reports each file.
No typer/rich here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from zerotrust_admin.compliance.schema import SCHEMA_VERSION, canonical, evidence_document, evidence_sha256
from zerotrust_admin.errors import AuditError, IntegrityError, NotFoundError, UsageError, ZeroTrustError

FORMAT = "zt-evidence-bundle-v1"
SIG_TAG = "zt-bundle-sig-v1"
SIG_PREFIX = b"zt-evidence-bundle-v1\n"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
MAX_MANIFEST = 1 << 20
MAX_FILES = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# name -> how it is made from the report
CONTENTS = ("evidence.json", "report.json", "report.md", "report.oscal.json", "report.pdf")


def signed_message(manifest_bytes: bytes) -> bytes:
    return SIG_PREFIX + manifest_bytes


def source_date_epoch(environ=None) -> int | None:
    value = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not a Unix time") from None


def render_files(report: dict) -> dict[str, bytes]:
    """Every file of the bundle but the manifest and its signature."""
    from zerotrust_admin.compliance.oscal import render_oscal
    from zerotrust_admin.compliance.report import render

    return {
        "evidence.json": canonical(evidence_document(report)),  # no newline: sha256sum gives evidence_sha256
        "report.json": render(report, ".json"),
        "report.md": render(report, ".md"),
        "report.oscal.json": render_oscal(report),
        "report.pdf": render(report, ".pdf"),
    }


def build_manifest(report: dict, files: dict[str, bytes], *, key_id: str, sde: int | None) -> dict:
    from zerotrust_admin import __version__

    meta = report["report"]
    return {
        "format": FORMAT,
        "generator": f"zerotrust-admin {__version__}",
        "created": meta["generated"],
        "source_date_epoch": sde,
        "standards": list(meta["standards"]),
        "period": {"start": meta["period"]["start"], "end": meta["period"]["end"]},
        "overall": report["overall"],
        "schema_version": report.get("schema_version", SCHEMA_VERSION),
        "evidence_sha256": report["hashes"]["evidence_sha256"],
        "signing_key": {"algorithm": "ed25519", "key_id": key_id},
        "files": [{"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in sorted(files.items())],
    }


def signature_line(key_id: str, signature: bytes) -> bytes:
    return f"{SIG_TAG} {key_id} {base64.b64encode(signature).decode('ascii')}\n".encode("ascii")


def write_bundle(report: dict, directory: Path, signing_key, *, sde: int | None = None) -> dict:
    """Render, hash, sign and write the bundle into the new directory
    ``directory`` (made complete under a temporary name, then renamed: a
    failure leaves nothing). Returns the manifest."""
    directory = Path(directory)
    files = render_files(report)
    manifest = build_manifest(report, files, key_id=signing_key.key_id, sde=sde)
    manifest_bytes = canonical(manifest) + b"\n"
    files[MANIFEST] = manifest_bytes
    files[SIGNATURE] = signature_line(signing_key.key_id, signing_key.sign(signed_message(manifest_bytes)))
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))  # 0700
    try:
        for name, data in files.items():
            fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.rename(tmp, directory)  # fails if directory appeared meanwhile (non-empty) or is a file
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        dfd = os.open(directory.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return manifest


def check_bundle_output(path) -> Path:
    """The bundle directory must not exist yet; its parent must be writable. Checked before any work."""
    out = Path(path).expanduser()
    parent = out.parent if str(out.parent) else Path(".")
    if os.path.lexists(out):
        raise UsageError(f"cannot write the bundle: {out} already exists", hint="a bundle is written into a new directory; choose another --output")
    if not parent.is_dir():
        raise ZeroTrustError(f"cannot write the bundle: directory {parent} does not exist", hint="create it or choose another --output")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ZeroTrustError(f"cannot write the bundle into {parent}: permission denied", hint="choose a writable --output path")
    return out


def run_bundle(config, home: Path, standard: str, output, *, period: str, audit, actor, now: datetime | None = None) -> tuple[dict, dict, Path]:
    """``compliance-report --bundle``: build the report once, write the signed
    bundle, then the run's ``compliance_report`` audit record (format
    ``bundle``, ``report_sha256`` = SHA-256 of manifest.json), as
    ``report.run_report`` does for one file: a failure after the input checks
    is recorded with ``success: false``; if the success record cannot be
    written the bundle is removed."""
    from zerotrust_admin.audit.search import parse_duration
    from zerotrust_admin.compliance.report import AUDIT_ACTION, AUDIT_EVENT, build_report, resolve_standards
    from zerotrust_admin.signing import load_signing_key

    sids = resolve_standards(standard)
    span: timedelta = parse_duration(period, what="--period")
    sde = source_date_epoch()
    resource = "compliance/" + (sids[0] if len(sids) == 1 else "all")
    asked = {"standards": sids, "format": "bundle", "period": period, "output": str(Path(output).expanduser().absolute())}
    out = check_bundle_output(output)
    try:
        # Made only by the audit writer (it signs a log from before checkpoints in the same step).
        key = audit.ensure_signing_key(actor) if audit is not None else load_signing_key(config, Path(home), create=True)
        report = build_report(config, sids[0] if len(sids) == 1 else "all", period=span, now=now, operator=actor.user)
        manifest = write_bundle(report, out, key, sde=sde)
        digest = hashlib.sha256((out / MANIFEST).read_bytes()).hexdigest()
    except Exception as exc:
        if not isinstance(exc, (UsageError, AuditError)):
            audit.append(event=AUDIT_EVENT, action=AUDIT_ACTION, resource=resource, success=False, actor=actor, **asked, error=type(exc).__name__)
        if isinstance(exc, OSError):
            raise ZeroTrustError(f"cannot write the bundle {out}: {exc.strerror}", hint="choose a writable --output path") from None
        raise
    counts = {s["id"]: {k: s["score"][k] for k in ("pass", "fail", "warning", "not_evaluated", "manual", "not_applicable")}
              for s in report["standards"]}
    try:
        audit.append(event=AUDIT_EVENT, action=AUDIT_ACTION, resource=resource, success=True, actor=actor, **asked,
                     period_start=report["report"]["period"]["start"], period_end=report["report"]["period"]["end"],
                     overall=report["overall"], counts=counts, report_sha256=digest, signing_key_id=key.key_id)
    except AuditError:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return report, manifest, out


# --- verification -------------------------------------------------------------
@dataclass
class BundleVerdict:
    path: str
    ok: bool = False
    key_id: str | None = None
    signature: str = "not checked"  # valid | invalid | wrong key | missing | malformed
    files: list[dict] = field(default_factory=list)  # {name, verdict: valid|modified|missing|unexpected|not a regular file}
    problems: list[str] = field(default_factory=list)
    manifest: dict | None = None

    def to_dict(self) -> dict:
        m = self.manifest or {}
        return {"path": self.path, "ok": self.ok, "signature": self.signature, "key_id": self.key_id,
                "created": m.get("created"), "source_date_epoch": m.get("source_date_epoch"), "standards": m.get("standards"),
                "evidence_sha256": m.get("evidence_sha256"), "files": self.files, "problems": self.problems}

    def fail(self, problem: str) -> "BundleVerdict":
        self.problems.append(problem)
        self.ok = False
        return self


def _read_small(path: Path, limit: int) -> bytes | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
        raise ValueError("not a regular file" if not stat.S_ISREG(st.st_mode) else f"larger than {limit} bytes")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit + 1)


def _hash_file(path: Path) -> tuple[str, int] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        digest, size = hashlib.sha256(), 0
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_manifest(manifest) -> list[dict]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"format is not {FORMAT}")
    files = manifest.get("files")
    if not isinstance(files, list) or not files or len(files) > MAX_FILES:
        raise ValueError("no file list")
    names = set()
    for entry in files:
        if not isinstance(entry, dict) or set(entry) != {"name", "sha256", "size"}:
            raise ValueError("a file entry is not {name, sha256, size}")
        name, digest, size = entry["name"], entry["sha256"], entry["size"]
        if not isinstance(name, str) or not _NAME.match(name) or name in (MANIFEST, SIGNATURE) or name in names:
            raise ValueError(f"bad or repeated file name {name!r}")
        if not isinstance(digest, str) or not _HEX64.match(digest) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"bad hash or size for {name}")
        names.add(name)
    return files


def verify_bundle(directory, trusted) -> BundleVerdict:
    """Check a bundle against the trusted ``signing.PublicKey``. Never raises
    for a damaged bundle: the verdict says what is wrong (``ok`` False).
    A missing directory is NotFoundError (exit 3)."""
    root = Path(directory).expanduser()
    verdict = BundleVerdict(path=str(root))
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        raise NotFoundError(f"bundle {root} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{root} is not a bundle directory", hint="pass the directory compliance-report --bundle wrote")
    try:
        manifest_bytes = _read_small(root / MANIFEST, MAX_MANIFEST)
        sig_bytes = _read_small(root / SIGNATURE, 4096)
    except ValueError as exc:
        verdict.signature = "malformed"
        return verdict.fail(f"{MANIFEST} or {SIGNATURE}: {exc}")
    if manifest_bytes is None or sig_bytes is None:
        verdict.signature = "missing"
        return verdict.fail(f"{MANIFEST if manifest_bytes is None else SIGNATURE} is missing")
    parts = sig_bytes.decode("ascii", "replace").strip().split(" ")
    try:
        if len(parts) != 3 or parts[0] != SIG_TAG:
            raise ValueError
        signature = base64.b64decode(parts[2], validate=True)
    except (ValueError, binascii.Error):
        verdict.signature = "malformed"
        return verdict.fail(f"{SIGNATURE} is not '{SIG_TAG} <key id> <base64 signature>'")
    verdict.key_id = parts[1]
    if parts[1] != trusted.key_id:
        verdict.signature = "wrong key"
        return verdict.fail(f"signed by key {parts[1]}, not by the trusted key {trusted.key_id}")
    try:
        trusted.verify(signature, signed_message(manifest_bytes), what=f"{root / SIGNATURE}")
    except IntegrityError:
        verdict.signature = "invalid"
        return verdict.fail(f"the signature does not verify under key {trusted.key_id}: {MANIFEST} or {SIGNATURE} was changed")
    verdict.signature = "valid"
    try:
        manifest = json.loads(manifest_bytes)
        if canonical(manifest) + b"\n" != manifest_bytes:
            raise ValueError("not in canonical form")
        entries = _check_manifest(manifest)
    except ValueError as exc:  # signed by our key but not a manifest we wrote
        return verdict.fail(f"{MANIFEST} is malformed: {exc}")
    verdict.manifest = manifest
    listed = {e["name"]: e for e in entries}
    present = {entry.name for entry in os.scandir(root)} - {MANIFEST, SIGNATURE}
    for name in sorted(set(listed) | present):
        entry = listed.get(name)
        if entry is None:
            verdict.files.append({"name": name, "verdict": "unexpected"})
            continue
        if name not in present:
            verdict.files.append({"name": name, "verdict": "missing"})
            continue
        got = _hash_file(root / name)
        if got is None:
            verdict.files.append({"name": name, "verdict": "not a regular file"})
        elif got != (entry["sha256"], entry["size"]):
            verdict.files.append({"name": name, "verdict": "modified", "sha256": got[0], "expected_sha256": entry["sha256"]})
        else:
            verdict.files.append({"name": name, "verdict": "valid", "sha256": got[0]})
    bad = [f for f in verdict.files if f["verdict"] != "valid"]
    for f in bad:
        verdict.problems.append(f"{f['name']}: {f['verdict']}")
    if not bad and "report.json" in listed and "evidence.json" in listed:
        _cross_check(root, manifest, verdict)
    verdict.ok = not verdict.problems
    return verdict


def _cross_check(root: Path, manifest: dict, verdict: BundleVerdict) -> None:
    """The evidence hash recomputed from report.json must be the manifest's and evidence.json's."""
    try:
        report = json.loads((root / "report.json").read_bytes())
        recomputed = evidence_sha256(report)
    except (ValueError, AttributeError, TypeError):
        verdict.problems.append("report.json: not a report")
        return
    file_hash = next(e["sha256"] for e in manifest["files"] if e["name"] == "evidence.json")
    if not (recomputed == manifest.get("evidence_sha256") == report.get("hashes", {}).get("evidence_sha256") == file_hash):
        verdict.problems.append("report.json: its evidence hash does not match evidence.json and the manifest")
