"""The audit log: one record per vault operation (never a value), `audit tail`,
and `audit verify` catching every edit, deletion, reordering or truncation
of a real log written by the CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from zerotrust_admin.audit.log import GENESIS, AuditLog

ROOT = Path(__file__).resolve().parent.parent
SECRET_VALUES = [b"pw-Zq8uS3cr3t", b"\x00\xffbinary-K7\x01", b"imported-Vx91", b"second-Jn42"]
PRODUCT_FIELDS = {"timestamp", "level", "event", "user", "action", "resource", "source_ip", "success", "seq", "prev", "hash"}


def _run(env: dict, *args: str, input: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], input=input, env=env, capture_output=True, timeout=60, cwd=str(ROOT))


@pytest.fixture(scope="module")
def real_log(tmp_path_factory):
    """A home whose audit log was written by a sequence of real CLI operations."""
    base = tmp_path_factory.mktemp("audit")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base / "user"), "LANG": "C.UTF-8",
        "ZEROTRUST_HOME": str(base / "home"), "XDG_CONFIG_HOME": str(base / "xdg"),
        "ZEROTRUST_PRINCIPAL": "auditor@EXAMPLE.COM", "SSH_CLIENT": "198.51.100.7 52222 22",
        "KRB5CCNAME": f"FILE:{base / 'none'}",
    }
    (base / "bin").write_bytes(SECRET_VALUES[1])
    (base / "in.env").write_bytes(b"IMPORTED=" + SECRET_VALUES[2] + b"\n")
    steps = [
        (("init",), b""),
        (("vault", "put", "db/password"), SECRET_VALUES[0]),
        (("vault", "put", "krb/keytab", "--value-file", str(base / "bin")), b""),
        (("vault", "put", "db/password"), SECRET_VALUES[3]),
        (("vault", "get", "db/password"), b""),
        (("vault", "get", "db/password", "--version", "1"), b""),
        (("vault", "list"), b""),
        (("vault", "history", "db/password"), b""),
        (("vault", "import", str(base / "in.env")), b""),
        (("vault", "export", "--yes"), b""),
        (("vault", "delete", "krb/keytab", "--yes"), b""),
        (("vault", "undelete", "krb/keytab"), b""),
        (("vault", "delete", "IMPORTED", "--destroy", "--yes"), b""),
        (("vault", "get", "no/such"), b""),
    ]
    for args, stdin in steps:
        result = _run(env, *args, input=stdin)
        assert result.returncode == (3 if args[-1] == "no/such" else 0), (args, result.stderr)
    return base, env


def _records(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit.log").read_bytes().splitlines()]


def test_every_vault_operation_writes_a_complete_record(real_log):
    base, env = real_log
    records = _records(Path(env["ZEROTRUST_HOME"]))
    summary = [(r["event"], r["action"], r["resource"], r["success"]) for r in records]
    assert summary[0][:2] == ("key_rotation", "create")
    assert summary[1:] == [
        ("secret_access", "write", "db/password", True),
        ("secret_access", "write", "krb/keytab", True),
        ("secret_access", "write", "db/password", True),
        ("secret_access", "read", "db/password", True),
        ("secret_access", "read", "db/password", True),
        ("secret_access", "list", "*", True),
        ("secret_access", "history", "db/password", True),
        ("secret_access", "import", str(base / "in.env"), True),
        ("secret_access", "export", "*", True),
        ("secret_access", "delete", "krb/keytab", True),
        ("secret_access", "undelete", "krb/keytab", True),
        ("secret_access", "destroy", "IMPORTED", True),
        ("secret_access", "read", "no/such", False),
    ]
    for seq, record in enumerate(records, start=1):
        assert PRODUCT_FIELDS <= set(record), record
        assert record["seq"] == seq
        assert record["user"] == "auditor@EXAMPLE.COM" and record["source_ip"] == "198.51.100.7"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", record["timestamp"])
        datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        assert record["level"] == ("info" if record["success"] else "warning")
        assert re.fullmatch(r"[0-9a-f]{64}", record["hash"])
        assert record["prev"] == (GENESIS if seq == 1 else records[seq - 2]["hash"])
    assert records[5]["details"]["version"] == 1
    assert records[-1]["details"]["error"] == "NotFoundError"


def test_no_secret_value_in_the_audit_files(real_log):
    _base, env = real_log
    home = Path(env["ZEROTRUST_HOME"])
    data = (home / "audit.log").read_bytes() + (home / "audit.log.head").read_bytes()
    for value in SECRET_VALUES:
        assert value not in data
        assert value.hex().encode() not in data
        import base64

        assert base64.b64encode(value) not in data
    master = (home / "master.key").read_bytes().strip()
    assert master not in data


def test_chain_recomputed_independently(real_log):
    """The algorithm of docs/audit-format.md, written without zerotrust_admin."""
    import base64
    import hashlib
    import hmac

    _base, env = real_log
    home = Path(env["ZEROTRUST_HOME"])
    key = base64.b64decode((home / "audit.key").read_bytes().strip())
    assert len(key) == 32
    prev = "0" * 64
    lines = (home / "audit.log").read_bytes().splitlines(keepends=True)
    for seq, line in enumerate(lines, start=1):
        rec = json.loads(line)
        claimed = rec.pop("hash")
        body = json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert hmac.new(key, b"zt-audit-v1\n" + body, hashlib.sha256).hexdigest() == claimed, seq
        assert (rec["seq"], rec["prev"]) == (seq, prev)
        rec["hash"] = claimed
        assert json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" == line
        prev = claimed
    head = json.loads((home / "audit.log.head").read_bytes())
    assert (head["seq"], head["hash"]) == (len(lines), prev)
    data = (home / "audit.log").read_bytes()
    assert (head["offset"], head["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())  # the signed prefix hash is plain SHA-256


def test_audit_tail(real_log):
    _base, env = real_log
    records = _records(Path(env["ZEROTRUST_HOME"]))
    plain = _run(env, "audit", "tail", "-n", "3")
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.decode().splitlines()
    assert [int(line.split("\t")[0]) for line in lines] == [r["seq"] for r in records[-3:]]
    assert lines[-1].split("\t")[-1] == "NO"
    as_json = _run(env, "audit", "tail", "-n", "2", "--json")
    assert [json.loads(line) for line in as_json.stdout.decode().splitlines()] == records[-2:]
    everything = _run(env, "--json", "audit", "tail", "-n", "1000")
    assert len(everything.stdout.decode().splitlines()) == len(records)


def test_audit_verify_ok(real_log):
    _base, env = real_log
    result = _run(env, "audit", "verify")
    records = _records(Path(env["ZEROTRUST_HOME"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith(f"OK: {len(records)} records, chain intact")
    doc = json.loads(_run(env, "audit", "verify", "--json").stdout)
    assert doc["ok"] is True and doc["records"] == len(records) and doc["warnings"] == []


# --- tampering, each on its own copy of the real log ---------------------------
def _edit_field(lines):
    record = json.loads(lines[3])
    record["user"] = "mallory@EXAMPLE.COM"
    lines[3] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return 4


def _flip_byte(lines):
    line = bytearray(lines[5])
    line[len(line) // 2] ^= 0x01
    lines[5] = bytes(line)
    return 6


def _delete_middle(lines):
    del lines[4]
    return 5


def _delete_last(lines):
    n = len(lines)
    del lines[-1]
    return n


def _swap(lines):
    lines[2], lines[6] = lines[6], lines[2]
    return 3


def _duplicate(lines):
    lines.insert(4, lines[3])
    return 5


def _truncate_mid_line(lines):
    n = len(lines)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    return n


def _uppercase_hash(lines):
    record = json.loads(lines[2])
    lines[2] = lines[2].replace(record["hash"].encode(), record["hash"].upper().encode())
    return 3


def _high_bit_in_hash(lines):
    pos = lines[4].rfind(b'"hash":"') + 8
    lines[4] = lines[4][:pos] + bytes([lines[4][pos] | 0x80]) + lines[4][pos + 1 :]  # no longer UTF-8
    return 5


TAMPERS = {
    "edit-field": _edit_field,
    "uppercase-hash": _uppercase_hash,
    "high-bit-in-hash": _high_bit_in_hash,
    "flip-byte": _flip_byte,
    "delete-middle-line": _delete_middle,
    "delete-last-line": _delete_last,
    "swap-lines": _swap,
    "duplicate-line": _duplicate,
    "truncate-mid-line": _truncate_mid_line,
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_audit_verify_detects_tampering(real_log, tmp_path, tamper):
    _base, env = real_log
    src = Path(env["ZEROTRUST_HOME"])
    copy = tmp_path / "copy"
    copy.mkdir(mode=0o700)
    for name in ("audit.log", "audit.key", "audit.log.head"):
        shutil.copy2(src / name, copy / name)
    lines = (copy / "audit.log").read_bytes().splitlines(keepends=True)
    first_bad = TAMPERS[tamper](lines)
    (copy / "audit.log").write_bytes(b"".join(lines))

    library = AuditLog(copy / "audit.log").verify()
    assert not library.ok and library.first_bad_seq == first_bad, library

    result = _run({**env, "ZEROTRUST_HOME": str(copy)}, "audit", "verify")
    assert result.returncode == 5
    err = result.stderr.decode().splitlines()
    assert err[0].startswith("zerotrust-admin: error: audit log ")
    assert f"first bad record {first_bad}:" in err[0], err[0]
    assert len(err) <= 2 and result.stdout == b""
    if tamper in ("delete-middle-line", "delete-last-line"):
        as_json = _run({**env, "ZEROTRUST_HOME": str(copy)}, "audit", "verify", "--json")
        assert as_json.returncode == 5
        doc = json.loads(as_json.stdout)
        assert doc["ok"] is False and doc["first_bad_seq"] == first_bad and doc["problem"]


def test_line_number_is_reported_for_a_mid_file_problem(real_log, tmp_path):
    _base, env = real_log
    src = Path(env["ZEROTRUST_HOME"])
    log = AuditLog(tmp_path / "audit.log")
    for name in ("audit.log", "audit.key", "audit.log.head"):
        shutil.copy2(src / name, tmp_path / name)
    lines = (tmp_path / "audit.log").read_bytes().splitlines(keepends=True)
    _edit_field(lines)
    (tmp_path / "audit.log").write_bytes(b"".join(lines))
    result = log.verify()
    assert (result.first_bad_seq, result.first_bad_line) == (4, 4)
    assert "line 4" in result.problem


def test_missing_audit_key_is_a_clear_error(real_log, tmp_path):
    _base, env = real_log
    src = Path(env["ZEROTRUST_HOME"])
    copy = tmp_path / "copy"
    copy.mkdir(mode=0o700)
    for name in ("audit.log", "audit.log.head"):
        shutil.copy2(src / name, copy / name)
    result = _run({**env, "ZEROTRUST_HOME": str(copy)}, "audit", "verify")
    err = result.stderr.decode().splitlines()
    assert result.returncode == 3
    assert err[0].startswith("zerotrust-admin: error: audit key ") and "does not exist" in err[0]
    assert len(err) <= 2 and "Traceback" not in result.stderr.decode()
    # Writing must not silently start a new key over an existing log: that
    # would make every earlier record unverifiable.
    with pytest.raises(Exception) as caught:
        from zerotrust_admin.audit.log import Actor

        AuditLog(copy / "audit.log").append(event="secret_access", action="read", resource="x", success=True,
                                            actor=Actor("a@B", "127.0.0.1", "h"))
    assert "audit key" in str(caught.value)
    assert not (copy / "audit.key").exists()


def test_records_refuse_secret_like_detail_fields(tmp_path):
    from zerotrust_admin.audit.log import Actor

    log = AuditLog(tmp_path / "audit.log")
    with pytest.raises(ValueError):
        log.append(event="secret_access", action="write", resource="x", success=True, actor=Actor("a@B", "127.0.0.1", "h"), value="oops")
    assert not (tmp_path / "audit.log").exists()


def test_empty_or_absent_log_verifies(tmp_path):
    result = AuditLog(tmp_path / "audit.log").verify()
    assert result.ok and result.records == 0


def test_hmac_states_match_the_hmac_module():
    import hashlib
    import hmac

    from zerotrust_admin.crypto import hmac_sha256_states

    for key in (b"", b"k" * 32, bytes(range(64)), bytes(range(65)), bytes(range(200))):
        for message in (b"", b"x", bytes(range(256)) * 3):
            inner, outer = hmac_sha256_states(key, b"zt-audit-v1\n")
            i = inner.copy()
            i.update(message)
            o = outer.copy()
            o.update(i.digest())
            assert o.digest() == hmac.new(key, b"zt-audit-v1\n" + message, hashlib.sha256).digest(), (len(key), len(message))


def test_hash_moved_into_details_is_detected(tmp_path):
    """The record's own MAC still matches when its top-level "hash" is moved in
    front of a "host" key nested in details: the line is no longer the writer's
    canonical record, and verify must say so (the fast path once accepted it)."""
    from zerotrust_admin.audit.log import Actor

    log = AuditLog(tmp_path / "audit.log")
    actor = Actor("a@B", "127.0.0.1", "h")
    log.append(event="secret_access", action="read", resource="x", success=True, actor=actor)
    log.append(event="notification", action="notify", resource="y", success=True, actor=actor, channel="smtp", host="mail.example")
    log.append(event="secret_access", action="read", resource="z", success=True, actor=actor)
    lines = (tmp_path / "audit.log").read_bytes().splitlines(keepends=True)
    raw = lines[1]
    pos = raw.rfind(b'"hash":"')
    segment, rest = raw[pos : pos + 74], raw[:pos] + raw[pos + 74 :]
    nested = rest.index(b',"host":"mail.example"') + 1
    lines[1] = rest[:nested] + segment + rest[nested:]
    assert json.loads(lines[1])["details"]["hash"] == json.loads(raw)["hash"]
    (tmp_path / "audit.log").write_bytes(b"".join(lines))
    result = log.verify()
    assert not result.ok and (result.first_bad_seq, result.first_bad_line) == (2, 2) and "altered" in result.problem


def _torn_and_recovered(tmp_path: Path) -> Path:
    """A log with a torn write in the middle, recovered by the next append."""
    from zerotrust_admin.audit.log import Actor

    log = AuditLog(tmp_path / "audit.log")
    actor = Actor("a@B", "127.0.0.1", "h")
    for n in range(5):
        log.append(event="secret_access", action="read", resource=f"r{n}", success=True, actor=actor)
    with open(log.path, "ab") as fh:
        fh.write(b'{"action":"read","det')
    for n in range(3):
        log.append(event="secret_access", action="read", resource=f"s{n}", success=True, actor=actor)
    return log.path


@pytest.mark.parametrize("read_size", [1, 97, 4096])
def test_verify_does_not_depend_on_where_reads_split_lines(real_log, tmp_path, monkeypatch, read_size):
    """verify reads in large blocks; a block boundary anywhere in a line (or in
    a torn fragment) must not change any verdict, line number or message."""
    from zerotrust_admin.audit import log as log_module

    _base, env = real_log
    src = Path(env["ZEROTRUST_HOME"])
    cases = {}
    for name, tamper in [("intact", None), *TAMPERS.items()]:
        copy = tmp_path / name
        copy.mkdir(mode=0o700)
        for f in ("audit.log", "audit.key", "audit.log.head", "signing.pub"):
            shutil.copy2(src / f, copy / f)
        if tamper:
            lines = (copy / "audit.log").read_bytes().splitlines(keepends=True)
            tamper(lines)
            (copy / "audit.log").write_bytes(b"".join(lines))
        cases[name] = copy / "audit.log"
    (tmp_path / "torn").mkdir(mode=0o700)
    cases["torn-and-recovered"] = _torn_and_recovered(tmp_path / "torn")
    expected = {name: AuditLog(path).verify().to_dict() for name, path in cases.items()}
    assert expected["intact"]["ok"] and expected["torn-and-recovered"]["ok"] and expected["torn-and-recovered"]["warnings"]
    assert expected["torn-and-recovered"]["records"] == 9  # 8 records and the recovery record
    monkeypatch.setattr(log_module, "_READ_SIZE", read_size)
    for name, path in cases.items():
        assert AuditLog(path).verify().to_dict() == expected[name], name


def test_known_answer_vectors_from_the_doc():
    """docs/audit-format.md's vectors, recomputed from the numbers in the doc with
    hashlib/hmac and Ed25519: canonical bytes, chain hashes, the prefix SHA-256,
    the signature input, the (deterministic) signature and the anchor MAC."""
    import re

    from zerotrust_admin.audit.checkpoint import public_checkpoint, sign_anchor, signature_input
    from zerotrust_admin.audit.prefixhash import ResumableSHA256
    from zerotrust_admin.crypto.ed25519 import ed25519_public, ed25519_sign, ed25519_verify, key_id
    from zerotrust_admin.signing import PublicKey

    doc = (Path(__file__).resolve().parent.parent / "docs" / "audit-format.md").read_text()
    block = re.search(r"```kat\n(.*?)```", doc, re.S).group(1)
    kat = dict(line.split(" = ", 1) for line in block.strip().splitlines())
    canon = lambda obj: json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")  # noqa: E731

    audit_key, seed = bytes.fromhex(kat["audit_key"]), bytes.fromhex(kat["signing_seed"])
    assert audit_key == bytes(range(32)) and seed == bytes(range(32, 64))
    public = ed25519_public(seed)
    assert public.hex() == kat["signing_public"] and key_id(public) == kat["key_id"]
    assert PublicKey.parse(kat["signing_pub_file"]).raw == public

    line1 = kat["record1"].encode("utf-8") + b"\n"
    line2 = bytes.fromhex(kat["record2_utf8_hex"])
    prev = "0" * 64
    for line, want in ((line1, kat["record1_hash"]), (line2, kat["record2_hash"])):
        rec = json.loads(line)
        claimed = rec.pop("hash")
        assert canon({**rec, "hash": claimed}) + b"\n" == line  # the doc's bytes are canonical
        assert rec["prev"] == prev
        assert hmac.new(audit_key, b"zt-audit-v1\n" + canon(rec), hashlib.sha256).hexdigest() == claimed == want
        prev = claimed
    assert b'\\t bell\\u0007"' in line2 and "café".encode() in line2  # the escaping rules in action

    data = line1 + line2
    assert hashlib.sha256(data).hexdigest() == kat["log_sha256"]
    cp = json.loads(kat["checkpoint_signed"])
    assert canon(cp).decode() == kat["checkpoint_signed"]
    assert (cp["offset"], cp["sha256"], cp["hash"], cp["log"]) == (len(data), kat["log_sha256"], kat["record2_hash"], kat["record1_hash"][:32])
    signed_bytes = b"zt-checkpoint-v1\n" + kat["checkpoint_signed"].encode()
    assert hashlib.sha256(signed_bytes).hexdigest() == kat["signature_input_sha256"] and signature_input(cp) == signed_bytes
    sig = bytes.fromhex(kat["sig_hex"])
    assert ed25519_sign(seed, signed_bytes) == sig  # Ed25519 is deterministic
    ed25519_verify(public, sig, signed_bytes)
    line = json.loads(kat["checkpoint_line"])
    assert base64.b64decode(line["sig"]) == sig and {k: v for k, v in line.items() if k != "sig"} == cp

    state = json.loads(kat["anchor_state"])
    assert ResumableSHA256(data).state() == state and ResumableSHA256.from_state(state).hexdigest() == kat["log_sha256"]
    anchor = {**line, "state": state}
    assert hmac.new(audit_key, b"zt-anchor-v1\n" + canon(anchor), hashlib.sha256).hexdigest() == kat["anchor_mac"]

    class _Key:  # the library's own signing path gives the same anchor
        key_id = kat["key_id"]

        def sign(self, message):
            return ed25519_sign(seed, message)

    rebuilt = sign_anchor({**cp, "state": state}, _Key(), audit_key)
    assert rebuilt["mac"] == kat["anchor_mac"] and public_checkpoint(rebuilt) == line


def test_resumable_sha256_matches_hashlib_across_saved_states():
    import os as _os

    from zerotrust_admin.audit.prefixhash import ResumableSHA256

    data = _os.urandom(200_000)
    for cut in (0, 1, 55, 56, 63, 64, 65, 4096, 150_001):
        first = ResumableSHA256(data[:cut])
        resumed = ResumableSHA256.from_state(json.loads(json.dumps(first.state())))
        resumed.update(data[cut:])  # >= 16 KiB goes through libcrypto when it is there; both paths must agree
        assert resumed.hexdigest() == hashlib.sha256(data).hexdigest(), cut


def test_log_from_before_checkpoints_is_signed_by_its_first_new_append(tmp_path):
    """An installation upgraded from before signed checkpoints: unsigned head, no
    signing key. The first append hashes the old log once and signs it; from
    then on an unsigned head is refused."""
    from zerotrust_admin.audit.checkpoint import read_checkpoints, verify_public
    from zerotrust_admin.audit.log import Actor, canonical
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.signing import PublicKey

    log = AuditLog(tmp_path / "audit.log")
    actor = Actor("a@B", "127.0.0.1", "h")
    for n in range(3):
        log.append(event="secret_access", action="read", resource=f"r{n}", success=True, actor=actor)
    last = log.tail(1)[0]
    for name in ("signing.key", "signing.pub", "audit.log.checkpoints"):
        (tmp_path / name).unlink()
    (tmp_path / "audit.log.head").write_bytes(canonical({"seq": last["seq"], "hash": last["hash"]}) + b"\n")  # the old format
    old = AuditLog(tmp_path / "audit.log").verify()
    assert old.ok and any("not signed" in w for w in old.warnings)

    AuditLog(tmp_path / "audit.log").append(event="secret_access", action="read", resource="after", success=True, actor=actor)
    head = json.loads((tmp_path / "audit.log.head").read_bytes())
    assert head["v"] == 1 and head["seq"] == 4 and (tmp_path / "signing.key").exists()
    assert AuditLog(tmp_path / "audit.log").verify().ok
    public = PublicKey.from_file(tmp_path / "signing.pub")
    assert verify_public(tmp_path / "audit.log", head, read_checkpoints(tmp_path / "audit.log.checkpoints"), public).ok

    (tmp_path / "audit.log.head").write_bytes(canonical({"seq": 4, "hash": head["hash"]}) + b"\n")  # a downgrade now
    assert not AuditLog(tmp_path / "audit.log").verify().ok
    with pytest.raises(IntegrityError, match="not signed"):
        AuditLog(tmp_path / "audit.log").append(event="secret_access", action="read", resource="x", success=True, actor=actor)
