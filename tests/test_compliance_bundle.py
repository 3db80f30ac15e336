"""Signed evidence bundles (compliance-report --bundle, compliance verify) and
the JSON report's contract (docs/compliance-schema.json, the evidence hash).

A real home with real activity writes one bundle through the CLI; every test
gets a private copy and attacks it the way someone holding the files would:
edit, remove, add, swap for a symlink, rewrite the manifest, re-sign with
their own key. Each is exit 5. The documented known-answer bundle
(docs/evidence-bundle.md) verifies through the CLI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

DOC = ROOT / "docs" / "evidence-bundle.md"


def _env_for(base: Path) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base / "userhome"), "ZEROTRUST_HOME": str(base / "home"),
            "XDG_CONFIG_HOME": str(base / "xdg-config"), "XDG_DATA_HOME": str(base / "xdg-data"),
            "ZEROTRUST_PRINCIPAL": "alice@EXAMPLE.COM", "KRB5CCNAME": f"FILE:{base / 'no-ccache'}", "LANG": "C.UTF-8"}


def _runner(env: dict):
    def run(*args, input=b"", extra=None):
        return subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], input=input, env={**env, **(extra or {})},
                              capture_output=True, timeout=180, cwd=str(ROOT))
    return run


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One home, one bundle (PCI DSS, 90 days, SOURCE_DATE_EPOCH set) and one JSON report, through the CLI."""
    base = tmp_path_factory.mktemp("bundle")
    env = _env_for(base)
    run = _runner(env)
    assert run("init").returncode == 0
    for name in ("db/password", "app/token"):
        assert run("vault", "put", name, input=b"value-of-" + name.encode()).returncode == 0
    assert run("vault", "get", "db/password").returncode == 0
    epoch = int(time.time())
    bundle = base / "pci-bundle"
    res = run("compliance-report", "--standard", "pci", "--output", str(bundle), "--bundle", extra={"SOURCE_DATE_EPOCH": str(epoch)})
    assert res.returncode == 0, res.stderr.decode()
    report = base / "all.json"
    res = run("compliance-report", "--standard", "all", "--output", str(report))
    assert res.returncode == 0, res.stderr.decode()
    return {"base": base, "env": env, "run": run, "bundle": bundle, "epoch": epoch, "report": report}


@pytest.fixture
def bundle(made, tmp_path) -> Path:
    copy = tmp_path / "b"
    shutil.copytree(made["bundle"], copy)
    return copy


def _verify(made, path, *extra):
    res = made["run"]("compliance", "verify", str(path), *extra)
    return res.returncode, res.stdout.decode(), res.stderr.decode()


def _verify_json(made, path, *extra) -> tuple[int, dict]:
    res = made["run"]("--json", "compliance", "verify", str(path), *extra)
    return res.returncode, json.loads(res.stdout or b"{}")


def _verdicts(doc: dict) -> dict:
    return {f["name"]: f["verdict"] for f in doc.get("files", [])}


# --- what a bundle holds ---------------------------------------------------------
def test_bundle_holds_every_rendering_and_verifies(made, bundle):
    names = sorted(p.name for p in bundle.iterdir())
    assert names == ["evidence.json", "manifest.json", "manifest.sig", "report.json", "report.md", "report.oscal.json", "report.pdf"]
    assert stat.S_IMODE(made["bundle"].stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in made["bundle"].iterdir())
    assert (bundle / "report.pdf").read_bytes().startswith(b"%PDF")
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    assert manifest["source_date_epoch"] == made["epoch"]  # disclosed
    assert manifest["standards"] == ["pci-dss"]
    report = json.loads((bundle / "report.json").read_bytes())
    # sha256sum evidence.json is the report's evidence hash
    assert hashlib.sha256((bundle / "evidence.json").read_bytes()).hexdigest() == report["hashes"]["evidence_sha256"] == manifest["evidence_sha256"]
    for entry in manifest["files"]:
        data = (bundle / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    code, out, err = _verify(made, bundle)
    assert code == 0, err
    assert "signature valid" in out and f"SOURCE_DATE_EPOCH={made['epoch']}" in out
    code, doc = _verify_json(made, bundle)
    assert code == 0 and doc["ok"] and set(_verdicts(doc).values()) == {"valid"}


def test_bundle_run_is_audited_with_the_manifest_hash(made):
    records = [json.loads(x) for x in (made["base"] / "home" / "audit.log").read_text().splitlines()]
    run = next(r for r in records if r["event"] == "compliance_report" and r["details"]["format"] == "bundle")
    assert run["success"] is True and run["resource"] == "compliance/pci-dss"
    assert run["details"]["report_sha256"] == hashlib.sha256((made["bundle"] / "manifest.json").read_bytes()).hexdigest()


def test_existing_output_or_missing_parent_is_refused(made, tmp_path):
    run = made["run"]
    res = run("compliance-report", "--standard", "soc2", "--output", str(made["bundle"]), "--bundle")
    assert res.returncode == 2 and "already exists" in res.stderr.decode()
    res = run("compliance-report", "--standard", "soc2", "--output", str(tmp_path / "nope" / "b"), "--bundle")
    assert res.returncode == 1 and "does not exist" in res.stderr.decode()
    assert _verify(made, tmp_path / "absent")[0] == 3


# --- attacks: every change is exit 5 ------------------------------------------
def test_an_edited_file_is_exit_5(made, bundle):
    pdf = bundle / "report.pdf"
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))
    code, out, err = _verify(made, bundle)
    assert code == 5 and "modified: report.pdf" in err
    code, doc = _verify_json(made, bundle)
    assert code == 5 and _verdicts(doc)["report.pdf"] == "modified" and _verdicts(doc)["report.md"] == "valid"


def test_a_same_size_edit_of_the_evidence_is_exit_5(made, bundle):
    path = bundle / "evidence.json"
    text = path.read_text()
    edited = re.sub(r'"records":(\d)', lambda m: f'"records":{(int(m.group(1)) + 1) % 10}', text, count=1)
    assert edited != text and len(edited) == len(text)
    path.write_text(edited)
    code, doc = _verify_json(made, bundle)
    assert code == 5 and _verdicts(doc)["evidence.json"] == "modified"


def test_a_removed_file_is_exit_5(made, bundle):
    (bundle / "report.md").unlink()
    code, doc = _verify_json(made, bundle)
    assert code == 5 and _verdicts(doc)["report.md"] == "missing"


def test_an_added_file_or_directory_is_exit_5(made, bundle):
    (bundle / "notes.txt").write_text("added later\n")
    code, doc = _verify_json(made, bundle)
    assert code == 5 and _verdicts(doc)["notes.txt"] == "unexpected"
    (bundle / "notes.txt").unlink()
    (bundle / "extra").mkdir()
    code, doc = _verify_json(made, bundle)
    assert code == 5 and _verdicts(doc)["extra"] == "unexpected"


def test_a_symlink_in_place_of_a_file_is_exit_5(made, bundle, tmp_path):
    outside = tmp_path / "report.md"
    shutil.copy(bundle / "report.md", outside)
    (bundle / "report.md").unlink()
    (bundle / "report.md").symlink_to(outside)  # same bytes, but not the bundle's file
    code, doc = _verify_json(made, bundle)
    assert code == 5 and _verdicts(doc)["report.md"] == "not a regular file"


def test_a_manifest_edit_is_exit_5(made, bundle):
    """Edit a file and fix its hash in the manifest: the signature no longer verifies."""
    md = bundle / "report.md"
    md.write_bytes(md.read_bytes() + b"\nAll requirements pass.\n")
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    for entry in manifest["files"]:
        if entry["name"] == "report.md":
            entry["sha256"] = hashlib.sha256(md.read_bytes()).hexdigest()
            entry["size"] = md.stat().st_size
    (bundle / "manifest.json").write_bytes(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    code, out, err = _verify(made, bundle)
    assert code == 5 and "does not verify" in err
    code, doc = _verify_json(made, bundle)
    assert code == 5 and doc["signature"] == "invalid"


def test_a_bundle_re_signed_with_another_key_is_exit_5(made, bundle):
    """The attacker re-signs an edited manifest with a key of their own."""
    from zerotrust_admin.compliance.bundle import signature_line, signed_message
    from zerotrust_admin.crypto.ed25519 import ed25519_generate, ed25519_sign
    from zerotrust_admin.signing import key_id

    seed, public = ed25519_generate()
    manifest_bytes = (bundle / "manifest.json").read_bytes().replace(b'"overall":"fail"', b'"overall":"pass"')
    (bundle / "manifest.json").write_bytes(manifest_bytes)
    (bundle / "manifest.sig").write_bytes(signature_line(key_id(public), ed25519_sign(seed, signed_message(manifest_bytes))))
    code, doc = _verify_json(made, bundle)
    assert code == 5 and doc["signature"] == "wrong key"
    # ... and naming the trusted key id on their signature does not help
    trusted_id = json.loads(made["bundle"].joinpath("manifest.json").read_bytes())["signing_key"]["key_id"]
    (bundle / "manifest.sig").write_bytes(signature_line(trusted_id, ed25519_sign(seed, signed_message(manifest_bytes))))
    code, doc = _verify_json(made, bundle)
    assert code == 5 and doc["signature"] == "invalid"


def test_a_missing_or_garbled_signature_is_exit_5(made, bundle):
    sig = bundle / "manifest.sig"
    original = sig.read_bytes()
    sig.write_bytes(original[:20])
    assert _verify_json(made, bundle)[0] == 5
    sig.unlink()
    code, doc = _verify_json(made, bundle)
    assert code == 5 and doc["signature"] == "missing"


def test_verify_elsewhere_with_the_pinned_public_key(made, bundle, tmp_path):
    """An auditor on another machine holds only signing.pub; another installation's key is refused."""
    pinned = tmp_path / "auditor-pinned.pub"
    shutil.copy(made["base"] / "home" / "signing.pub", pinned)
    other = _runner(_env_for(tmp_path / "other"))
    assert other("init").returncode == 0
    res = other("compliance", "verify", str(bundle), "--public-key", str(pinned))
    assert res.returncode == 0, res.stderr.decode()
    res = other("compliance", "verify", str(bundle))  # that machine's own key
    assert res.returncode == 5 and "not by the trusted key" in res.stderr.decode()


# --- the documented known answer ---------------------------------------------------
def _doc_block(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(re.escape(title) + r".*?```[a-z]*\n(.*?)```", text, re.S)
    assert match, f"docs/evidence-bundle.md has no block after {title!r}"
    return match.group(1)


def test_known_answer_bundle_from_the_doc_verifies(made, tmp_path):
    """The example in docs/evidence-bundle.md, written out byte for byte, verifies
    through the CLI; one changed byte in it does not."""
    from zerotrust_admin.crypto.ed25519 import ed25519_public, ed25519_sign

    seed = bytes(range(32))
    public_line = _doc_block("signing.pub (known answer)").strip()
    assert public_line == "zt-sign-ed25519 " + base64.b64encode(ed25519_public(seed)).decode()
    evidence = _doc_block("evidence.json (known answer)").rstrip("\n").encode()
    manifest = _doc_block("manifest.json (known answer)").encode()  # ends with its newline
    sig_line = _doc_block("manifest.sig (known answer)").encode()
    assert hashlib.sha256(evidence).hexdigest() in manifest.decode()
    # the signature input: the domain prefix, then the manifest's exact bytes
    expected = base64.b64encode(ed25519_sign(seed, b"zt-evidence-bundle-v1\n" + manifest)).decode()
    assert sig_line.decode().split() == ["zt-bundle-sig-v1", "56475aa75463474c", expected]
    kat = tmp_path / "kat"
    kat.mkdir()
    (kat / "evidence.json").write_bytes(evidence)
    (kat / "manifest.json").write_bytes(manifest)
    (kat / "manifest.sig").write_bytes(sig_line)
    (tmp_path / "kat.pub").write_text(public_line + "\n")
    res = made["run"]("compliance", "verify", str(kat), "--public-key", str(tmp_path / "kat.pub"))
    assert res.returncode == 0, res.stderr.decode()
    (kat / "evidence.json").write_bytes(evidence.replace(b'"records":1', b'"records":2'))
    res = made["run"]("compliance", "verify", str(kat), "--public-key", str(tmp_path / "kat.pub"))
    assert res.returncode == 5


# --- the JSON report: schema and a recomputable evidence hash ------------------
def _schema():
    import jsonschema

    schema = json.loads((ROOT / "docs" / "compliance-schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_json_reports_validate_against_the_schema(made, bundle):
    validator = _schema()
    from zerotrust_admin.compliance.schema import SCHEMA_VERSION

    for path in (made["report"], bundle / "report.json"):
        report = json.loads(path.read_text())
        assert report["schema_version"] == SCHEMA_VERSION
        errors = sorted(validator.iter_errors(report), key=str)
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    clock = json.loads((bundle / "report.json").read_text())["report"]["time_source"]
    assert clock["source_date_epoch"] == made["epoch"]  # disclosed in the JSON too
    report = json.loads(made["report"].read_text())
    # the validator can fail: no version, an unknown status, a short hash
    broken = {k: v for k, v in report.items() if k != "schema_version"}
    assert any("schema_version" in e.message for e in validator.iter_errors(broken))
    broken = json.loads(json.dumps(report))
    broken["standards"][0]["requirements"][0]["status"] = "passed"
    assert list(validator.iter_errors(broken))
    broken = json.loads(json.dumps(report))
    broken["hashes"]["evidence_sha256"] = "abc"
    assert list(validator.iter_errors(broken))


def recompute_evidence_hash(report: dict) -> str:
    """As docs/evidence-bundle.md says, with nothing but the JSON file: the
    canonical JSON (sorted keys, no whitespace, UTF-8) of the two members."""
    doc = {"anomalies": report["anomalies"], "evidence": report["evidence"]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest()


def test_evidence_hash_is_recomputable_from_the_json_alone(made):
    report = json.loads(made["report"].read_text())
    assert recompute_evidence_hash(report) == report["hashes"]["evidence_sha256"]
    # an edited evidence value changes it
    report["evidence"]["audit"]["records"] = report["evidence"]["audit"]["records"] + 1
    assert recompute_evidence_hash(report) != json.loads(made["report"].read_text())["hashes"]["evidence_sha256"]
