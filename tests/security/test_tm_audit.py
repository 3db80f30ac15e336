"""Threat-model rows A1-A5 (and the audit side of V4): the audit trail against
an auditor who holds the audit key (d), a file writer with no key (b), and
both together with an older genuine copy of the files (b + d).

Every test runs the real CLI on a real installation and attacks the files the
way the row's attacker would: re-chaining with the audit key, truncating with
``open(..., "r+").truncate``, copying older files back with ``shutil``,
replacing the signing key with another installation's. The witnesses are what
a real syslog collector (UDP) and a real webhook receiver (HTTP on loopback)
received from the CLI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.servers import softhsm  # noqa: F401  (fixture: a real SoftHSM2 token)

AUDIT_FILES = ("audit.log", "audit.log.head", "audit.log.checkpoints")


def _home(zt_env) -> Path:
    return Path(zt_env["ZEROTRUST_HOME"])


def _write_config(zt_env, text: str) -> None:
    path = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)


def _setup(cli, zt_env, puts: int = 4) -> Path:
    assert cli("init").code == 0
    for n in range(puts):
        res = cli("vault", "put", f"app/s{n}", input=f"value-{n}".encode())
        assert res.code == 0, res.err
    return _home(zt_env)


def _pin(cli, tmp_path) -> Path:
    pinned = tmp_path / "pinned-signing.pub"
    res = cli("keys", "public-key", "--output", str(pinned))
    assert res.code == 0, res.err
    assert pinned.read_text().startswith("zt-sign-ed25519 ")
    return pinned


def _auditor_copy(home: Path, dest: Path, *, with_key: bool) -> Path:
    """What an auditor receives: the log, its anchor and checkpoints (and the audit key only when asked)."""
    dest.mkdir(mode=0o700)
    for name in AUDIT_FILES + (("audit.key",) if with_key else ()):
        shutil.copy2(home / name, dest / name)
    return dest


def _rechain(log: Path, key: bytes, edit) -> None:
    """Attacker d: edit records, then recompute every hash with the audit key."""
    prev = "0" * 64
    out = []
    for line in log.read_bytes().splitlines():
        rec = json.loads(line)
        rec.pop("hash")
        edit(rec)
        rec["prev"] = prev
        body = json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        rec["hash"] = prev = hmac.new(key, b"zt-audit-v1\n" + body, hashlib.sha256).hexdigest()
        out.append(json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
    log.write_bytes(b"".join(out))


def _drop_last_lines(log: Path, n: int) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    with open(log, "r+b") as fh:
        fh.truncate(sum(len(x) for x in lines[:-n]))


# --- A1 ---------------------------------------------------------------------------
def test_a1_intact_log_verifies_with_public_key_and_no_audit_key(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env)
    pinned = _pin(cli, tmp_path)
    copy = _auditor_copy(home, tmp_path / "auditor", with_key=False)
    res = cli("--json", "audit", "verify", "--public-key", str(pinned), env={"ZEROTRUST_HOME": str(copy)})
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["ok"] and doc["mode"] == "public-key" and not (copy / "audit.key").exists()
    assert doc["public_key"]["ranges"] == [{"from_seq": 1, "to_seq": 5, "verdict": "valid"}]


def test_a1_rechained_log_with_the_audit_key_fails_public_key_verify(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env)
    pinned = _pin(cli, tmp_path)
    key = base64.b64decode((home / "audit.key").read_bytes().strip())
    copy = _auditor_copy(home, tmp_path / "auditor", with_key=False)

    def edit(rec):
        if rec.get("resource") == "app/s1":
            rec["resource"] = "app/innocent"
            rec["user"] = "mallory@EXAMPLE.COM"

    _rechain(copy / "audit.log", key, edit)
    # The forger also holds audit.key, so they re-MAC the anchor over the new tail; they cannot sign it.
    head = json.loads((copy / "audit.log.head").read_bytes())
    last = json.loads((copy / "audit.log").read_bytes().splitlines()[-1])
    data = (copy / "audit.log").read_bytes()
    head.update(hash=last["hash"], offset=len(data), sha256=hashlib.sha256(data).hexdigest())
    head.pop("mac")
    head["mac"] = hmac.new(key, b"zt-anchor-v1\n" + json.dumps(head, sort_keys=True, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()
    (copy / "audit.log.head").write_text(json.dumps(head, sort_keys=True, separators=(",", ":")) + "\n")

    res = cli("--json", "audit", "verify", "--public-key", str(pinned), env={"ZEROTRUST_HOME": str(copy)})
    assert res.code == 5, res.err
    doc = json.loads(res.out)
    assert not doc["ok"] and "does not verify" in doc["problem"]
    # Without the re-MACed anchor, the checkpoints bisect to the first forged record.
    shutil.copy2(home / "audit.log.head", copy / "audit.log.head")
    res = cli("--json", "audit", "verify", "--public-key", str(pinned), env={"ZEROTRUST_HOME": str(copy)})
    assert res.code == 5
    doc = json.loads(res.out)
    assert doc["public_key"]["last_good"]["seq"] == 2  # init, app/s0 intact; app/s1 (record 3) forged
    assert doc["public_key"]["ranges"][1] == {"from_seq": 3, "to_seq": 3, "verdict": "modified"}
    text = cli("audit", "verify", "--public-key", str(pinned), env={"ZEROTRUST_HOME": str(copy)})
    assert text.code == 5 and "record 3 was modified: the last good checkpoint is record 2" in text.err
    assert not (copy / "audit.key").exists()


def test_a1_checkpoints_signed_inside_the_hsm_verify_with_the_public_key(cli, zt_env, tmp_path, softhsm):  # noqa: F811
    """security.signing.source: pkcs11: an EC_EDWARDS key on the token signs (CKM_EDDSA); no signing.key file exists."""
    zt_env.update(softhsm.env)
    _write_config(zt_env, softhsm.config_block() + "security:\n  signing: {source: pkcs11, key_label: zt-signing}\n")
    assert cli("init").code == 0
    assert cli("vault", "put", "app/x", input=b"x").code == 0
    home = _home(zt_env)
    assert not (home / "signing.key").exists()
    out = softhsm.probe("print(sorted((o.label, o.object_class.name) for o in session.get_objects({Attribute.KEY_TYPE: KeyType.EC_EDWARDS})))\n")
    assert out.strip() == "[('zt-signing', 'PRIVATE_KEY'), ('zt-signing', 'PUBLIC_KEY')]"
    assert softhsm.probe("k = next(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: 'zt-signing'}))\n"
                         "print(k[Attribute.SENSITIVE], k[Attribute.EXTRACTABLE])\n").strip() == "True False"
    pinned = _pin(cli, tmp_path)
    assert cli("audit", "verify").code == 0
    copy = _auditor_copy(home, tmp_path / "auditor", with_key=False)
    res = cli("audit", "verify", "--public-key", str(pinned), env={"ZEROTRUST_HOME": str(copy)})
    assert res.code == 0, res.err


# --- A2 ---------------------------------------------------------------------------
def test_a2_truncation_with_an_unsigned_anchor_is_detected(cli, zt_env):
    home = _setup(cli, zt_env)
    _drop_last_lines(home / "audit.log", 2)
    last = json.loads((home / "audit.log").read_bytes().splitlines()[-1])
    (home / "audit.log.head").write_text(json.dumps({"seq": last["seq"], "hash": last["hash"]}) + "\n")  # the old anchor format
    os.chmod(home / "audit.log.head", 0o600)
    res = cli("audit", "verify")
    assert res.code == 5 and "not signed" in res.err


def test_a2_truncation_with_a_forged_v1_anchor_fails_its_mac(cli, zt_env):
    home = _setup(cli, zt_env)
    _drop_last_lines(home / "audit.log", 1)
    data = (home / "audit.log").read_bytes()
    last = json.loads(data.splitlines()[-1])
    head = json.loads((home / "audit.log.head").read_bytes())
    head.update(seq=last["seq"], hash=last["hash"], offset=len(data), sha256=hashlib.sha256(data).hexdigest())
    (home / "audit.log.head").write_text(json.dumps(head) + "\n")
    res = cli("audit", "verify")
    assert res.code == 5 and "does not authenticate" in res.err


def test_a2_anchor_two_records_behind_is_detected(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=2)
    older = tmp_path / "older.head"
    shutil.copy2(home / "audit.log.head", older)
    for n in range(2):
        assert cli("vault", "put", f"more/{n}", input=b"x").code == 0
    shutil.copy2(older, home / "audit.log.head")  # a genuine, correctly MACed and signed, older anchor
    res = cli("audit", "verify")
    assert res.code == 5 and "two or more records behind" in res.err


def test_a2_anchor_ahead_of_the_log_is_truncation(cli, zt_env):
    home = _setup(cli, zt_env)
    _drop_last_lines(home / "audit.log", 1)
    res = cli("--json", "audit", "verify")
    assert res.code == 5
    assert "truncated" in json.loads(res.out)["problem"]


# --- A3 ---------------------------------------------------------------------------
@pytest.fixture
def udp_collector():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    got: list[bytes] = []
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                got.append(sock.recv(65536))
            except OSError:
                continue

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield sock.getsockname()[1], got
    stop.set()
    thread.join(5)
    sock.close()


@pytest.fixture
def webhook_receiver():
    got: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/zt", got
    server.shutdown()
    server.server_close()


def _replay_older_copy(cli, zt_env, tmp_path) -> Path:
    """Attacker b + d: keep a genuine copy after two writes, let the operator work on, then put the copy back."""
    home = _home(zt_env)
    older = tmp_path / "older"
    older.mkdir()
    for name in AUDIT_FILES:
        shutil.copy2(home / name, older / name)
    for n in range(3):
        assert cli("vault", "put", f"later/{n}", input=b"later").code == 0
    for name in AUDIT_FILES:
        shutil.copy2(older / name, home / name)
    assert cli("audit", "verify").code == 0  # consistent and older: locally invisible (row V8)
    return home


def test_a3_rewound_log_caught_by_the_syslog_witness(cli, zt_env, tmp_path, udp_collector):
    port, got = udp_collector
    assert cli("init").code == 0
    _write_config(zt_env, f"audit:\n  sinks: [file, syslog]\n  syslog: {{address: 'udp://127.0.0.1:{port}'}}\n")
    for n in range(2):
        assert cli("vault", "put", f"app/{n}", input=b"v").code == 0
    _replay_older_copy(cli, zt_env, tmp_path)
    witness = tmp_path / "syslog-witness.log"
    witness.write_bytes(b"\n".join(got) + b"\n")  # raw RFC 5424 lines, records and checkpoints mixed
    assert b" audit_checkpoint [zt@32473 " in witness.read_bytes()
    res = cli("audit", "verify", "--witness", str(witness))
    assert res.code == 5, res.err
    assert "the local log was rewritten or truncated after checkpoint 3" in res.err


def test_a3_rewound_log_caught_by_the_webhook_witness_with_public_key_only(cli, zt_env, tmp_path, webhook_receiver):
    url, got = webhook_receiver
    assert cli("init").code == 0
    _write_config(zt_env, f"audit:\n  sinks: [file, webhook]\n  webhook: {{url: '{url}'}}\n")
    for n in range(2):
        assert cli("vault", "put", f"app/{n}", input=b"v").code == 0
    pinned = _pin(cli, tmp_path)
    home = _replay_older_copy(cli, zt_env, tmp_path)
    witness = tmp_path / "webhook-witness.jsonl"
    witness.write_bytes(b"\n".join(got) + b"\n")
    copy = _auditor_copy(home, tmp_path / "auditor", with_key=False)
    assert cli("audit", "verify", "--public-key", str(pinned), env={"ZEROTRUST_HOME": str(copy)}).code == 0
    res = cli("--json", "audit", "verify", "--public-key", str(pinned), "--witness", str(witness), env={"ZEROTRUST_HOME": str(copy)})
    assert res.code == 5
    doc = json.loads(res.out)
    assert doc["witness"]["last_matched_seq"] == 3 and "rewritten or truncated after checkpoint 3" in doc["problem"]


def test_a3_witness_matches_an_untouched_log(cli, zt_env, tmp_path, webhook_receiver):
    url, got = webhook_receiver
    assert cli("init").code == 0
    _write_config(zt_env, f"audit:\n  sinks: [webhook]\n  webhook: {{url: '{url}'}}\n")
    for n in range(3):
        assert cli("vault", "put", f"app/{n}", input=b"v").code == 0
    witness = tmp_path / "w.jsonl"
    witness.write_bytes(b"\n".join(got) + b"\n")
    res = cli("audit", "verify", "--witness", str(witness))
    assert res.code == 0, res.err
    assert "witnessed checkpoint(s) match" in res.text


# --- A4 ---------------------------------------------------------------------------
def test_a4_truncated_log_refuses_the_next_write(cli, zt_env):
    home = _setup(cli, zt_env)
    _drop_last_lines(home / "audit.log", 2)
    before = {name: (home / name).read_bytes() for name in (*AUDIT_FILES, "vault.db")}
    res = cli("vault", "put", "app/new", input=b"should-not-land")
    assert res.code == 5, res.err
    assert "the audit log ends at record 3 but its anchor records 5: it was truncated" in res.err
    assert "preserve" in res.err
    after = {name: (home / name).read_bytes() for name in before}
    assert after == before  # nothing written: no record, no anchor, no vault change


def test_a4_one_record_beyond_the_anchor_is_the_crash_window(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=1)
    older = tmp_path / "head"
    shutil.copy2(home / "audit.log.head", older)
    assert cli("vault", "put", "app/x", input=b"x").code == 0
    shutil.copy2(older, home / "audit.log.head")  # as if the writer died between the record and its anchor
    res = cli("audit", "verify")
    assert res.code == 0 and "not yet covered" in res.err
    assert cli("vault", "put", "app/y", input=b"y").code == 0
    assert cli("audit", "verify").code == 0


# --- A5 ---------------------------------------------------------------------------
def _other_installation(cli, tmp_path) -> Path:
    other = tmp_path / "other-home"
    assert cli("init", env={"ZEROTRUST_HOME": str(other)}).code == 0
    return other


def test_a5_replaced_signing_key_is_refused_by_the_writer(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=1)
    other = _other_installation(cli, tmp_path)
    for name in ("signing.key", "signing.pub"):
        shutil.copy2(other / name, home / name)
    before = (home / "audit.log").read_bytes()
    res = cli("vault", "put", "app/z", input=b"z")
    assert res.code == 5 and "signing key was replaced" in res.err
    assert (home / "audit.log").read_bytes() == before


def test_a5_deleted_signing_key_is_not_recreated(cli, zt_env):
    home = _setup(cli, zt_env, puts=1)
    (home / "signing.key").unlink()
    (home / "signing.pub").unlink()
    res = cli("vault", "put", "app/z", input=b"z")
    assert res.code == 5 and "already has signed checkpoints" in res.err
    assert not (home / "signing.key").exists()


def test_a5_pinned_public_key_rejects_another_keys_checkpoints(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=1)
    pinned = _pin(cli, tmp_path)
    other = _other_installation(cli, tmp_path)
    assert cli("vault", "put", "app/forged", input=b"f", env={"ZEROTRUST_HOME": str(other)}).code == 0
    # Everything replaced by a self-consistent installation the attacker controls.
    for name in (*AUDIT_FILES, "audit.key", "signing.key", "signing.pub"):
        shutil.copy2(other / name, home / name)
    assert cli("audit", "verify").code == 0  # consistent with itself
    res = cli("audit", "verify", "--public-key", str(pinned))
    assert res.code == 5 and "not by the trusted key" in res.err


# --- V4, the audit side ------------------------------------------------------------
def test_v4_anchor_confirms_the_vault_generation_under_mac_and_signature(cli, zt_env):
    home = _setup(cli, zt_env, puts=2)
    head = json.loads((home / "audit.log.head").read_bytes())
    (vault_id, generation), = head["vaults"].items()
    assert generation >= 3
    res = cli("--json", "audit", "verify")
    assert json.loads(res.out)["checkpoint"]["vaults"] == {vault_id: generation}
    head["vaults"][vault_id] = 1  # lower the floor so an older vault.db would pass
    (home / "audit.log.head").write_text(json.dumps(head) + "\n")
    res = cli("vault", "get", "app/s0")
    assert res.code == 5 and "does not authenticate" in res.err and res.out == b""


# --- V8 and V9: what the signed checkpoints still give ------------------------------
def test_v8_consistent_replay_of_vault_and_log_is_caught_only_by_the_witness(cli, zt_env, tmp_path, udp_collector):
    port, got = udp_collector
    assert cli("init").code == 0
    _write_config(zt_env, f"audit:\n  sinks: [file, syslog]\n  syslog: {{address: 'udp://127.0.0.1:{port}'}}\n")
    assert cli("vault", "put", "app/token", input=b"old-token").code == 0
    home = _home(zt_env)
    older = tmp_path / "older"
    older.mkdir()
    for name in (*AUDIT_FILES, "vault.db"):
        shutil.copy2(home / name, older / name)
    assert cli("vault", "put", "app/token", input=b"rotated-token").code == 0
    assert cli("vault", "delete", "app/token", "--yes").code == 0
    for name in (*AUDIT_FILES, "vault.db"):  # every file replayed to one consistent older state
        shutil.copy2(older / name, home / name)
    _write_config(zt_env, "audit:\n  sinks: [file]\n")  # the attacker's replay happens with the collector out of reach
    assert cli("vault", "get", "app/token").out == b"old-token"  # out of scope locally, as the row says
    assert cli("audit", "verify").code == 0
    witness = tmp_path / "siem.log"
    witness.write_bytes(b"\n".join(got) + b"\n")
    res = cli("audit", "verify", "--witness", str(witness))
    assert res.code == 5 and "rewritten or truncated after checkpoint" in res.err


def test_v9_master_key_and_audit_key_holder_cannot_rewrite_signed_history(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=2)
    pinned = _pin(cli, tmp_path)
    assert cli("vault", "get", "app/s0").code == 0  # the read the insider wants to hide (record 4)
    assert cli("vault", "put", "app/after", input=b"x").code == 0
    key = base64.b64decode((home / "audit.key").read_bytes().strip())
    lines = (home / "audit.log").read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line).get("action") != "read"]
    assert len(kept) == len(lines) - 1
    (home / "audit.log").write_bytes(b"".join(kept))

    def renumber(rec, counter=iter(range(1, 100))):
        rec["seq"] = next(counter)

    _rechain(home / "audit.log", key, renumber)
    res = cli("--json", "audit", "verify", "--public-key", str(pinned))
    assert res.code == 5
    doc = json.loads(res.out)
    assert doc["public_key"]["last_good"]["seq"] == 3  # init and two puts: the history before the hidden read


def test_v4_a_late_confirmation_never_lowers_the_floor(cli, zt_env):
    """Two writers commit in lock order but may confirm out of order: the floor
    keeps the higher generation, so an older copy stays refused."""
    from zerotrust_admin.audit.log import AuditLog

    home = _setup(cli, zt_env, puts=2)
    (vault_id, generation), = json.loads((home / "audit.log.head").read_bytes())["vaults"].items()
    log = AuditLog(home / "audit.log")
    log.confirm_vault(vault_id, generation - 2)  # a slow writer's confirmation arriving late
    assert log.vault_floor(vault_id) == generation
    log.confirm_vault(vault_id, generation + 1)
    assert log.vault_floor(vault_id) == generation + 1


# --- red-team findings (issue 12): F8, F9, F12, F4, F6 and the audit side of F3 ------
_STATE_FILES = (*AUDIT_FILES, "vault.db", "signing.key", "signing.pub")


def _snapshot(home: Path) -> dict:
    return {name: (home / name).read_bytes() if (home / name).exists() else None for name in _STATE_FILES}


def _forge_unterminated(home: Path) -> None:
    """Attacker b (no key): a copy of the last record as bob's read of prod/db, without its newline."""
    rec = json.loads((home / "audit.log").read_bytes().splitlines()[-1])
    rec.update(seq=rec["seq"] + 1, prev=rec["hash"], user="bob@EXAMPLE.COM", action="read", resource="prod/db", details={})
    with open(home / "audit.log", "ab") as fh:
        fh.write(json.dumps(rec, sort_keys=True, separators=(",", ":")).encode())


def test_a1_forged_record_without_newline_is_refused_by_the_writer(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=1)
    _forge_unterminated(home)
    before = _snapshot(home)
    res = cli("vault", "put", "app/s0", input=b"v2")
    assert res.code == 5, res.err
    assert "the log ends with a record that does not authenticate" in res.err
    assert _snapshot(home) == before  # no recovery record, no checkpoint over the forged bytes, no vault write
    pinned = tmp_path / "pinned.pub"
    shutil.copy2(home / "signing.pub", pinned)
    res = cli("audit", "verify", "--public-key", str(pinned))
    assert res.code == 5 and "fragment" in res.err


def test_a4_genuine_record_that_lost_its_newline_is_kept_without_recovery(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=1)
    older = tmp_path / "head"
    shutil.copy2(home / "audit.log.head", older)
    assert cli("vault", "put", "app/x", input=b"x").code == 0
    # The writer died after writing its record but for the newline, before the anchor.
    shutil.copy2(older, home / "audit.log.head")
    data = (home / "audit.log").read_bytes()
    with open(home / "audit.log", "r+b") as fh:
        fh.truncate(len(data) - 1)
    assert cli("vault", "put", "app/y", input=b"y").code == 0
    assert (home / "audit.log").read_bytes().startswith(data)  # the record kept, terminated
    events = [json.loads(line)["event"] for line in (home / "audit.log").read_bytes().splitlines()]
    assert "audit_recovery" not in events
    assert cli("audit", "verify").code == 0
    pinned = tmp_path / "pinned.pub"
    shutil.copy2(home / "signing.pub", pinned)
    assert cli("audit", "verify", "--public-key", str(pinned)).code == 0


def test_a1_torn_fragment_is_reported_as_unauthenticated_bytes_by_the_public_verifier(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=1)
    with open(home / "audit.log", "ab") as fh:
        fh.write(b'{"action":"wri')  # a real torn write: not JSON
    assert cli("vault", "put", "app/x", input=b"x").code == 0  # recovered, as before
    pinned = tmp_path / "pinned.pub"
    shutil.copy2(home / "signing.pub", pinned)
    res = cli("audit", "verify", "--public-key", str(pinned))
    assert res.code == 0, res.err
    assert "14 bytes of a torn write that no signature authenticates" in res.err


def test_a1_forged_record_an_older_writer_recovered_fails_the_public_verifier(cli, zt_env, tmp_path, monkeypatch):
    """A log that the previous release's writer signed over a forged record (it took
    any fragment for a torn write): the public-key verifier must not say OK."""
    from zerotrust_admin.audit.log import Actor, AuditLog

    home = _setup(cli, zt_env, puts=1)
    _forge_unterminated(home)
    monkeypatch.setattr(AuditLog, "_torn_record", lambda self, key, last, torn: None)  # the old writer's behaviour
    AuditLog(home / "audit.log").append(event="secret_access", action="write", resource="app/s0", success=True,
                                        actor=Actor("alice@EXAMPLE.COM", "192.0.2.1"))
    pinned = tmp_path / "pinned.pub"
    shutil.copy2(home / "signing.pub", pinned)
    res = cli("audit", "verify", "--public-key", str(pinned))
    assert res.code == 5, res.err
    assert "that no key authenticates" in res.err and "forged record" in res.err
    res = cli("audit", "verify")  # the audit key's MAC names it too
    assert res.code == 5 and "was altered" in res.err


def test_a2_public_key_verify_requires_the_head_anchor(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=3)
    pinned = _pin(cli, tmp_path)
    res = cli("audit", "verify", "--public-key", str(pinned))
    assert res.code == 0 and "the signed head anchor is at record" in res.out.decode()
    for name in ("audit.log", "audit.log.checkpoints"):  # r8: cut the last record and its checkpoint
        _drop_last_lines(home / name, 1)
    (home / "audit.log.head").unlink()
    res = cli("audit", "verify", "--public-key", str(pinned))
    assert res.code == 5, res.err
    assert "head anchor" in res.err and "may have been cut" in res.err
    assert "give the verifier audit.log.head too, or verify against a witness" in res.err


def test_a2_public_key_verify_without_the_head_accepts_a_witness_that_covers_the_end(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=2)
    pinned = _pin(cli, tmp_path)
    witness = tmp_path / "siem.jsonl"
    shutil.copy2(home / "audit.log.checkpoints", witness)
    (home / "audit.log.head").unlink()  # an auditor given only the log and the checkpoints
    res = cli("audit", "verify", "--public-key", str(pinned), "--witness", str(witness))
    assert res.code == 0, res.err
    assert "the witness's last checkpoint" in res.out.decode()
    _drop_last_lines(home / "audit.log", 1)
    _drop_last_lines(home / "audit.log.checkpoints", 1)
    res = cli("audit", "verify", "--public-key", str(pinned), "--witness", str(witness))
    assert res.code == 5


def test_a4_mid_log_edit_of_the_same_length_is_caught_by_verify(cli, zt_env):
    """F12: the writer checks the tail and the anchor, not the middle: it appends;
    audit verify (and the signed checkpoints) catch the edit."""
    home = _setup(cli, zt_env, puts=3)
    lines = (home / "audit.log").read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"alice@EXAMPLE.COM", b"mallo@EXAMPLE.COM")
    (home / "audit.log").write_bytes(b"".join(lines))
    assert cli("vault", "put", "app/s9", input=b"x").code == 0
    res = cli("audit", "verify")
    assert res.code == 5 and "first bad record 2" in res.err


def test_a4_deleted_log_with_its_checkpoints_kept_is_not_restarted(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=1)
    pinned = _pin(cli, tmp_path)
    (home / "audit.log").unlink()
    (home / "audit.log.head").unlink()
    before = _snapshot(home)
    res = cli("vault", "get", "app/s0")
    assert res.code == 5 and "refusing to start a new log" in res.err and res.out == b""
    assert _snapshot(home) == before
    res = cli("audit", "verify")
    assert res.code == 5 and "the checkpoints file describes log" in res.err
    res = cli("audit", "verify", "--public-key", str(pinned))
    assert res.code == 5


def test_a4_checkpoints_of_a_longer_log_fail_verify(cli, zt_env, tmp_path):
    """The log and its anchor rolled back together to an older genuine copy: the
    checkpoints file still describes the longer log."""
    home = _setup(cli, zt_env, puts=1)
    older = tmp_path / "older"
    older.mkdir()
    for name in ("audit.log", "audit.log.head"):
        shutil.copy2(home / name, older / name)
    assert cli("vault", "put", "app/s1", input=b"x").code == 0
    for name in ("audit.log", "audit.log.head"):
        shutil.copy2(older / name, home / name)
    res = cli("audit", "verify")
    assert res.code == 5 and "describes a longer log" in res.err


def test_a5_log_without_anchor_checkpoints_and_key_is_not_signed_under_a_new_key(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=3)
    pinned = _pin(cli, tmp_path)
    _drop_last_lines(home / "audit.log", 2)
    for name in ("audit.log.head", "audit.log.checkpoints", "signing.key", "signing.pub"):
        (home / name).unlink()
    res = cli("vault", "list")
    assert res.code == 5, res.err
    assert "refusing to sign it under a new key" in res.err
    assert not (home / "signing.key").exists() and not (home / "audit.log.head").exists()
    res = cli("audit", "verify")
    assert res.code == 5 and "no head anchor" in res.err
    assert cli("audit", "verify", "--public-key", str(pinned)).code == 5


def test_a5_pre_checkpoint_log_whose_unsigned_anchor_does_not_match_is_not_signed(cli, zt_env):
    home = _home(zt_env)
    shutil.copytree(Path(__file__).parents[1] / "vectors" / "release-39f564a" / "plain", home)
    home.chmod(0o700)
    for f in home.iterdir():
        f.chmod(0o600)
    _drop_last_lines(home / "audit.log", 1)  # truncated; the legacy anchor still names record 6
    res = cli("vault", "list")
    assert res.code == 5, res.err
    assert not (home / "signing.key").exists()


# --- V4 (F3): pending generations, the audit side -----------------------------------
def _copy_back_db(home: Path, pre_db: Path) -> None:
    """vault.db from before a write copied back (its WAL and shared memory gone)."""
    shutil.copy2(pre_db, home / "vault.db")
    for name in ("vault.db-wal", "vault.db-shm"):
        (home / name).unlink(missing_ok=True)


def _roll_back(home: Path, head: bytes, pre_db: Path, cut: int) -> None:
    """The attacker's copy-back after a write: the audit log cut by ``cut``
    bytes, the anchor and vault.db from before the write."""
    with open(home / "audit.log", "r+b") as fh:
        fh.truncate(os.path.getsize(home / "audit.log") - cut)
    (home / "audit.log.head").write_bytes(head)
    _copy_back_db(home, pre_db)


def _lib_log(home: Path):
    from zerotrust_admin.audit.log import Actor, AuditLog

    return AuditLog(home / "audit.log"), Actor("alice@EXAMPLE.COM", "192.0.2.1")


def _vault_write(log, actor, vault_id: str, generation: int) -> dict:
    return log.append(event="secret_access", action="write", resource="app/v", success=True, actor=actor,
                      vault={"id": vault_id, "generation": generation, "commit": "c" * 8})


def test_v4_anchor_written_before_confirmation_says_the_generation_is_pending(cli, zt_env):
    home = _setup(cli, zt_env, puts=1)
    log, actor = _lib_log(home)
    _vault_write(log, actor, "vault-a", 7)
    head = json.loads((home / "audit.log.head").read_bytes())
    assert head["pending"] == {"vault-a": 7}  # the anchor an attacker could copy back with the pre-put vault.db
    last_cp = json.loads((home / "audit.log.checkpoints").read_bytes().splitlines()[-1])
    assert last_cp["pending"] == {"vault-a": 7}  # signed: the public checkpoint carries it
    state = log.vault_state("vault-a")
    assert (state.confirmed, state.pending, state.known) == (0, 7, True)
    log.confirm_vault("vault-a", 7)
    head = json.loads((home / "audit.log.head").read_bytes())
    assert "pending" not in head and head["vaults"]["vault-a"] == 7
    state = log.vault_state("vault-a")
    assert (state.confirmed, state.pending) == (7, 0)
    assert cli("audit", "verify").code == 0
    pinned = home.parent / "pinned.pub"
    shutil.copy2(home / "signing.pub", pinned)
    assert cli("audit", "verify", "--public-key", str(pinned)).code == 0


def test_v4_pending_stays_until_a_generation_at_least_as_high_is_confirmed(cli, zt_env):
    home = _setup(cli, zt_env, puts=1)
    log, actor = _lib_log(home)
    _vault_write(log, actor, "vault-a", 8)
    _vault_write(log, actor, "vault-a", 9)  # a second writer before the first confirmed
    log.confirm_vault("vault-a", 8)
    state = log.vault_state("vault-a")
    assert (state.confirmed, state.pending) == (8, 9)
    log.append(event="secret_access", action="read", resource="app/v", success=True, actor=actor)
    assert log.vault_state("vault-a").pending == 9  # carried to the next anchor
    log.confirm_vault("vault-a", 9)
    assert (log.vault_state("vault-a").confirmed, log.vault_state("vault-a").pending) == (9, 0)


def test_v4_crash_window_record_counts_as_pending(cli, zt_env, tmp_path):
    home = _setup(cli, zt_env, puts=1)
    log, actor = _lib_log(home)
    older = tmp_path / "head"
    shutil.copy2(home / "audit.log.head", older)
    _vault_write(log, actor, "vault-a", 5)
    shutil.copy2(older, home / "audit.log.head")  # the writer died between its record and its anchor
    state = log.vault_state("vault-a")
    assert (state.confirmed, state.pending, state.known) == (0, 5, True)
    log.append(event="secret_access", action="read", resource="app/v", success=True, actor=actor)
    assert json.loads((home / "audit.log.head").read_bytes())["pending"] == {"vault-a": 5}


def test_v4_vault_state_reports_ids_log_and_key(cli, zt_env):
    home = _setup(cli, zt_env, puts=1)
    log, actor = _lib_log(home)
    head = json.loads((home / "audit.log.head").read_bytes())
    (own_id, own_gen), = head["vaults"].items()
    state = log.vault_state(own_id)
    assert state.confirmed == own_gen == log.vault_floor(own_id)
    assert (state.pending, state.known, state.others) == (0, True, False)
    assert state.log_id == head["log"] and state.key_id == head["key_id"] and state.records == head["seq"]
    unknown = log.vault_state("no-such-vault")
    assert (unknown.confirmed, unknown.known, unknown.others) == (0, False, True)


def test_v4_vault_state_raises_where_vault_floor_does(cli, zt_env):
    from zerotrust_admin.errors import IntegrityError

    home = _setup(cli, zt_env, puts=1)
    log, _ = _lib_log(home)
    head = json.loads((home / "audit.log.head").read_bytes())
    head["pending"] = {}  # any edit breaks the MAC
    (home / "audit.log.head").write_text(json.dumps(head) + "\n")
    for call in (log.vault_floor, log.vault_state):
        with pytest.raises(IntegrityError, match="does not authenticate"):
            call("x")
    (home / "audit.log.head").unlink()
    for call in (log.vault_floor, log.vault_state):
        with pytest.raises(IntegrityError, match="missing"):
            call("x")


def test_v4_acknowledging_an_interrupted_write_is_audited_and_clears_pending(cli, zt_env):
    from zerotrust_admin.errors import IntegrityError

    home = _setup(cli, zt_env, puts=1)
    log, actor = _lib_log(home)
    log.confirm_vault("vault-a", 3)
    _vault_write(log, actor, "vault-a", 4)  # never confirmed: the vault stayed at 3
    record = log.acknowledge_interrupted("vault-a", 3, actor)
    assert record["event"] == "audit_recovery" and record["action"] == "acknowledge"
    assert record["details"]["pending_generation"] == 4 and record["details"]["vault_generation"] == 3
    assert record["details"]["acknowledged_by"] == "alice@EXAMPLE.COM"
    state = log.vault_state("vault-a")
    assert (state.confirmed, state.pending) == (3, 0)
    with pytest.raises(IntegrityError, match="rollback"):
        log.acknowledge_interrupted("vault-a", 2, actor)
    assert cli("audit", "verify").code == 0


def test_v4_generation_going_back_between_checkpoints_fails_verify(cli, zt_env, tmp_path):
    """An insider with the audit key and the signing key lowers the anchor's vault
    generation (to pass an older vault.db): the next checkpoint is genuine but goes
    back from the one the witness already holds."""
    from zerotrust_admin.audit.checkpoint import sign_anchor
    from zerotrust_admin.signing import load_signing_key

    home = _setup(cli, zt_env, puts=2)
    witness = tmp_path / "siem.jsonl"
    shutil.copy2(home / "audit.log.checkpoints", witness)
    head = json.loads((home / "audit.log.head").read_bytes())
    (vault_id, generation), = head["vaults"].items()
    head["vaults"][vault_id] = generation - 2  # below what the last witnessed checkpoint confirmed
    key = base64.b64decode((home / "audit.key").read_bytes().strip())
    signing = load_signing_key(None, home, create=False)
    (home / "audit.log.head").write_text(json.dumps(sign_anchor(head, signing, key)) + "\n")
    assert cli("audit", "verify").code == 5  # the head (the newest checkpoint) goes back from the checkpoints file
    log, actor = _lib_log(home)
    log.append(event="secret_access", action="read", resource="app/s0", success=True, actor=actor)
    with open(witness, "ab") as fh:
        fh.write((home / "audit.log.checkpoints").read_bytes().splitlines(keepends=True)[-1])
    res = cli("audit", "verify", "--witness", str(witness))
    assert res.code == 5, res.err
    assert f"vault {vault_id} went back from generation {generation - 1}" in res.err and "a rollback" in res.err


def test_v4_checkpoints_file_scan_matches_the_full_parse_and_finds_a_going_back(cli, zt_env):
    from zerotrust_admin.audit.checkpoint import check_vault_generations, read_checkpoints, summarize_checkpoints

    home = _setup(cli, zt_env, puts=4)
    path = home / "audit.log.checkpoints"
    full = read_checkpoints(path)
    summary, problem = summarize_checkpoints(path)
    assert problem is None and summary == [full[0], full[-1]]
    lines = path.read_bytes().splitlines(keepends=True)
    cp = json.loads(lines[3])
    (vault_id, generation), = cp["vaults"].items()
    cp["vaults"][vault_id] = generation - 1  # a later line says the vault went back
    lines[4] = json.dumps({**json.loads(lines[4]), "vaults": {vault_id: generation - 1}}, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    summary, problem = summarize_checkpoints(path)
    assert problem == check_vault_generations(read_checkpoints(path), source="the checkpoints file")
    assert f"vault {vault_id} went back from generation {generation}" in problem
    res = cli("audit", "verify")
    assert res.code == 5 and "a rollback" in res.err


def test_a1_search_does_not_show_a_forged_unterminated_record(cli, zt_env):
    home = _setup(cli, zt_env, puts=1)
    _forge_unterminated(home)
    res = cli("audit", "search", "--user", "bob@EXAMPLE.COM")
    assert res.code == 0 and b"prod/db" not in res.out
    assert "1 unreadable line(s) skipped" in res.err


# --- final red team (issue 12): deleted trail with the key kept, withdrawn pending writes, cut records ---
def test_a4_whole_trail_deleted_with_the_signing_key_kept_is_not_restarted(cli, zt_env, tmp_path):
    """b1/b2: log, anchor and checkpoints deleted, signing.key kept (and another
    installation's unbound vault and key put in place): no new log under the same
    key; every command and `audit verify` are exit 5."""
    other = _other_installation(cli, tmp_path)
    home = _setup(cli, zt_env, puts=1)
    for name in ("vault.db", "master.key"):
        shutil.copy2(other / name, home / name)
    for name in ("audit.log", "audit.log.head", "audit.log.checkpoints", "vault.db-wal", "vault.db-shm"):
        (home / name).unlink(missing_ok=True)
    res = cli("vault", "get", "app/db")
    assert res.code == 5 and res.out == b"" and "refusing to start a new log under the same key" in res.err, res.err
    assert not (home / "audit.log").exists() or (home / "audit.log").stat().st_size == 0
    res = cli("audit", "verify")
    assert res.code == 5 and "the log was deleted" in res.err, res.err


def test_a4_a_refused_write_never_erases_an_unconfirmed_one(cli, zt_env, tmp_path):
    """b3: a write commits but is never confirmed (the crash point after COMMIT);
    the next write is refused by a dead sink. Its withdrawal puts the unconfirmed
    generation back as pending: the older vault.db copied back is exit 5."""
    home = _setup(cli, zt_env, puts=1)
    shutil.copy2(home / "vault.db", tmp_path / "pre.db")
    head = (home / "audit.log.head").read_bytes()
    assert cli("vault", "put", "app/s0", input=b"new").code == 0
    (home / "audit.log.head").write_bytes(head)  # as if the process died between COMMIT and the confirmation
    state = json.loads(head)
    gen = state["vaults"][next(iter(state["vaults"]))]
    _write_config(zt_env, f"audit:\n  sinks: [file, syslog]\n  syslog: {{address: 'unix:{tmp_path}/nobody.sock'}}\n")
    res = cli("vault", "put", "app/other", input=b"x")
    assert res.code in (1, 5), res.err  # refused: by the dead sink, or as the interrupted write it follows
    anchor = json.loads((home / "audit.log.head").read_bytes())
    vault_id = next(iter(anchor["vaults"]))
    assert anchor.get("pending", {}).get(vault_id, anchor["vaults"][vault_id]) >= gen + 1, anchor
    _write_config(zt_env, "audit:\n  sinks: [file]\n")
    _copy_back_db(home, tmp_path / "pre.db")
    res = cli("vault", "get", "app/s0")
    assert res.code == 5 and b"value-0" not in res.out, res.err


def test_a4_a_signed_record_cut_to_a_fragment_is_not_taken_for_a_crash(cli, zt_env, tmp_path):
    """b5c: the write's record cut to a fragment, anchor and vault.db from before it:
    the checkpoints file already signed that record, so it was cut, not torn."""
    home = _setup(cli, zt_env, puts=1)
    shutil.copy2(home / "vault.db", tmp_path / "pre.db")
    head = (home / "audit.log.head").read_bytes()
    assert cli("vault", "put", "app/s0", input=b"new").code == 0
    _roll_back(home, head, tmp_path / "pre.db", cut=5)
    before = _snapshot(home)
    res = cli("vault", "get", "app/s0")
    assert res.code == 5 and res.out == b"" and "was cut, not torn" in res.err, res.err
    assert _snapshot(home) == before
    assert cli("audit", "verify").code == 5


def test_a4_a_recovery_record_contradicting_a_signed_checkpoint_fails_verify(cli, zt_env, tmp_path):
    """The same cut, with the contradicting checkpoint line hidden while the writer
    recovered the "torn" fragment, then put back: verify sees the fork (a recovery
    record where a signed checkpoint names another record)."""
    home = _setup(cli, zt_env, puts=1)
    head = (home / "audit.log.head").read_bytes()
    assert cli("vault", "put", "app/s0", input=b"new").code == 0
    cps = (home / "audit.log.checkpoints").read_bytes().splitlines(keepends=True)
    with open(home / "audit.log", "r+b") as fh:
        fh.truncate(os.path.getsize(home / "audit.log") - 5)
    (home / "audit.log.head").write_bytes(head)
    (home / "audit.log.checkpoints").write_bytes(b"".join(cps[:-1]))
    res = cli("vault", "list")
    assert res.code == 0, res.err  # locally this is exactly a crash: the writer recovers the fragment
    assert cli("audit", "verify").code == 0
    now = (home / "audit.log.checkpoints").read_bytes().splitlines(keepends=True)
    (home / "audit.log.checkpoints").write_bytes(b"".join(now[:-1] + [cps[-1]] + now[-1:]))  # the signed line comes back
    res = cli("audit", "verify")
    assert res.code == 5 and "a fork" in res.err, res.err


def test_a4_a_newline_less_record_after_the_crash_window_still_counts(cli, zt_env, tmp_path):
    """c1: write R1, read R2, write R3; R3's newline removed, the anchor after R1 and
    vault.db before R3 copied back: R3 (two records past the anchor) is pending."""
    home = _setup(cli, zt_env, puts=1)
    head, pre = (home / "audit.log.head").read_bytes(), tmp_path / "pre.db"
    shutil.copy2(home / "vault.db", pre)
    assert cli("vault", "get", "app/s0").code == 0
    assert cli("vault", "put", "app/s0", input=b"new").code == 0
    _roll_back(home, head, pre, cut=1)
    res = cli("vault", "get", "app/s0")
    assert res.code == 5 and b"value-0" not in res.out, res.err
    assert cli("vault", "put", "app/other", input=b"x").code == 5


@pytest.mark.parametrize("extra", ["replay", "junk"])
def test_a4_a_replayed_checkpoint_line_does_not_hide_a_cut_record(cli, zt_env, tmp_path, extra):
    """c2: the cut of b5c plus an older signed checkpoint line (or 9 KB of junk)
    appended to the checkpoints file: its tail is not the writer's, exit 5."""
    home = _setup(cli, zt_env, puts=1)
    shutil.copy2(home / "vault.db", tmp_path / "pre.db")
    head = (home / "audit.log.head").read_bytes()
    assert cli("vault", "put", "app/s0", input=b"new").code == 0
    saved = (home / "audit.log.checkpoints").read_bytes()
    _roll_back(home, head, tmp_path / "pre.db", cut=5)
    lines = saved.splitlines(keepends=True)
    (home / "audit.log.checkpoints").write_bytes(saved + (lines[-2] if extra == "replay" else b"x" * 9000 + b"\n"))
    res = cli("vault", "get", "app/s0")
    assert res.code == 5 and res.out == b"", res.err
    assert cli("vault", "put", "app/y", input=b"y").code == 5
    assert cli("audit", "verify").code == 5
