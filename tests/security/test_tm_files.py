"""Threat-model rows P1, P4, F1, F2 (rendering), F3, F4, F5, F6: files,
configuration and output. Each test runs the real CLI (or a real Python
process importing the API) and does what the attacker in docs/threat-model.md
would: sets environment variables, cycles the claimed principal, points output
and audit paths at directories, devices and fifos, writes alias bombs, plants
control characters in audit records."""

from __future__ import annotations

import json
import os
import pty
import resource
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, backend_missing

NO_TEMPS = ".tmp"


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)
    return path


def one_error_line(result) -> None:
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err
    assert result.err.count("error:") == 1, result.err


# --- P1: security settings are not overridable from the environment ----------------------------
DENY_ALL = "access:\n  policies:\n    - {principals: ['*'], secrets: ['*'], actions: ['*'], effect: deny}\n"


def test_p1_empty_access_policies_variable_does_not_drop_a_deny_rule(cli, initialized, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", DENY_ALL)
    env = {"ZEROTRUST_CONFIG": str(cfg)}
    assert cli("vault", "put", "app/x", input=b"v", env=env).code == 4  # the rule holds
    result = cli("vault", "put", "app/x", input=b"v", env={**env, "ZEROTRUST_ACCESS_POLICIES": ""})
    assert result.code == 2, result.err
    one_error_line(result)
    assert "ZEROTRUST_ACCESS_POLICIES" in result.err and "access.policies" in result.err


@pytest.mark.parametrize("var,value,key", [
    ("ZEROTRUST_AUDIT_SINKS", "file", "audit.sinks"),
    ("ZEROTRUST_AUDIT_PATH", "{tmp}/elsewhere.log", "audit.path"),
    ("ZEROTRUST_SECURITY_LOCKOUT", "", "security.lockout"),
    ("ZEROTRUST_SECURITY_MFA_REQUIRED_FOR", "", "security.mfa"),
    ("ZEROTRUST_ENCRYPTION_HSM_CONFIG_MODULE", "/tmp/evil.so", "encryption.hsm.config"),
    ("ZEROTRUST_ENCRYPTION_TRANSIT_URL", "https://evil.example", "encryption.transit"),
])
def test_p1_protected_settings_refused_naming_the_variable(cli, initialized, tmp_path, var, value, key):
    log = initialized / "audit.log"
    before = log.read_bytes()
    result = cli("vault", "list", env={var: value.replace("{tmp}", str(tmp_path))})
    assert result.code == 2, result.err
    one_error_line(result)
    assert var in result.err and key in result.err
    assert not (tmp_path / "elsewhere.log").exists()
    assert log.read_bytes() == before  # refused before anything ran


def test_p1_config_check_reports_a_protected_override_and_keeps_the_documented_ones(cli, initialized):
    documented = {"ZEROTRUST_REDIS_PASSWORD": "pw-from-env", "ZEROTRUST_AWS_SECRET_KEY": "aws-from-env",
                  "ZEROTRUST_ENCRYPTION_ROTATION_MASTER_DAYS": "30", "ZEROTRUST_SECRETS_CONFIG_MOUNT_PATH": "kv2"}
    result = cli("config", "check", "--json", env={"ZEROTRUST_AUDIT_SINKS": "file", **documented})
    assert result.code == 1, result.err
    doc = json.loads(result.out)
    assert [p["key"] for p in doc["problems"]] == ["ZEROTRUST_AUDIT_SINKS"]
    assert sorted(doc["env_overrides"]) == sorted(documented)
    shown = cli("config", "show", "--json", env=documented)
    assert shown.code == 0, shown.err
    config = json.loads(shown.out)["config"]
    assert config["encryption"]["rotation"]["master_days"] == 30 and config["redis"]["password"] == "<redacted>"


# --- P4: lockout per OS user and host as well as per claimed principal -----------------------
def test_p4_cycling_the_claimed_principal_still_locks_out(cli, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "security:\n  lockout: {max_failures: 3, window_seconds: 600, base_delay_seconds: 300}\n")
    env = {"ZEROTRUST_CONFIG": str(cfg), "ZEROTRUST_PASSPHRASE": "correct horse battery staple"}
    assert cli("init", "--passphrase", env=env).code == 0
    wrong = {**env, "ZEROTRUST_PASSPHRASE": "wrong passphrase, twelve+"}
    for i in range(3):
        result = cli("vault", "list", env={**wrong, "ZEROTRUST_PRINCIPAL": f"guess{i}@EXAMPLE.COM"})
        assert result.code == 4 and "does not open the vault" in result.err, result.err
    # A fresh principal, and even the right passphrase: the OS account is locked.
    fresh = cli("vault", "list", env={**env, "ZEROTRUST_PRINCIPAL": "fresh@EXAMPLE.COM"})
    assert fresh.code == 4, fresh.err
    one_error_line(fresh)
    assert "locked out" in fresh.err and "OS user" in fresh.err and "retry after" in fresh.err


def test_p4_an_own_mfa_success_does_not_reset_the_os_count(tmp_path):
    """The count of guesses at other principals' TOTP codes survives the
    attacker's good code for their own principal (real lockout database)."""
    from zerotrust_admin.errors import DeniedError
    from zerotrust_admin.lockout import Lockout, LockoutPolicy

    lock = Lockout(tmp_path / "lockout.db", LockoutPolicy(max_failures=3, window_seconds=600, base_delay_seconds=60))
    for victim in ("v1@EXAMPLE.COM", "v2@EXAMPLE.COM"):
        lock.record_failure(victim, "mfa")
        lock.record_success("mallory@EXAMPLE.COM")  # own code: clears only mallory's counter
    lock.record_failure("v3@EXAMPLE.COM", "mfa")
    with pytest.raises(DeniedError, match="OS user"):
        lock.check("v4@EXAMPLE.COM", "mfa")


PASSPHRASE_LOCKOUT = "security:\n  lockout: {enabled: true, max_failures: 2, window_seconds: 900, base_delay_seconds: 300}\n"


@pytest.mark.parametrize("attempt", [
    ("vault", "get", "prod/x"),
    ("mfa", "enroll", "--force", "--yes"),
    ("mfa", "verify"),
])
def test_p4_passphrase_unlock_does_not_clear_mfa_failures(cli, tmp_path, attempt):
    """The red team's reproduction (M1 too): on a passphrase vault every command
    unlocks with the right passphrase first; that success must not clear the
    count of wrong MFA codes, so the third wrong code is a lockout."""
    cfg = write_config(tmp_path / "c.yaml", PASSPHRASE_LOCKOUT)
    env = {"ZEROTRUST_CONFIG": str(cfg), "ZEROTRUST_PASSPHRASE": "right-passphrase-123"}
    assert cli("init", "--passphrase", env=env).code == 0
    assert cli("vault", "put", "prod/x", "--sensitive", input=b"s", env=env).code == 0
    bob = {**env, "ZEROTRUST_PRINCIPAL": "bob@X"}
    assert cli("mfa", "enroll", env=bob).code == 0
    results = [cli(*attempt, env={**bob, "ZEROTRUST_OTP": f"00000{i}"}) for i in range(1, 4)]
    assert [r.code for r in results] == [4, 4, 4], [r.err for r in results]
    assert all("wrong MFA code" in r.err for r in results[:2]), [r.err for r in results]
    locked = results[2]
    one_error_line(locked)
    assert "locked out" in locked.err and "MFA code" in locked.err and "retry after" in locked.err, locked.err


def test_p4_key_file_control_locks_out_on_the_third_try(cli, initialized, tmp_path):
    """The control of the reproduction: a key-file vault (no passphrase success) locks out the same way."""
    cfg = write_config(tmp_path / "c.yaml", PASSPHRASE_LOCKOUT)
    env = {"ZEROTRUST_CONFIG": str(cfg), "ZEROTRUST_PRINCIPAL": "bob@X"}
    assert cli("vault", "put", "prod/x", "--sensitive", input=b"s", env=env).code == 0
    assert cli("mfa", "enroll", env=env).code == 0
    results = [cli("vault", "get", "prod/x", env={**env, "ZEROTRUST_OTP": f"00000{i}"}) for i in range(1, 4)]
    assert [r.code for r in results] == [4, 4, 4]
    assert "locked out" in results[2].err


def test_p4_success_clears_only_its_own_kind(tmp_path):
    """Library level: a passphrase success leaves MFA failures and locks alone,
    an MFA success leaves passphrase failures alone."""
    from zerotrust_admin.errors import DeniedError
    from zerotrust_admin.lockout import Lockout, LockoutPolicy

    lock = Lockout(tmp_path / "lockout.db", LockoutPolicy(max_failures=3, window_seconds=600, base_delay_seconds=60), os_user="0:root@h")
    p = "bob@X"
    for _ in range(2):
        lock.record_failure(p, "mfa")
        lock.record_success(p, "passphrase")
    assert lock.state(p, "mfa").recent_failures == 2
    lock.record_failure(p, "mfa")
    lock.record_success(p, "passphrase")  # after the lock: it stays
    with pytest.raises(DeniedError, match="MFA code"):
        lock.check(p, "passphrase")
    other = Lockout(lock.path, lock.policy, os_user="0:root@h")
    for _ in range(2):
        other.record_failure("carol@X", "passphrase")
        other.record_success("carol@X", "mfa")
    assert other.state("carol@X", "passphrase").recent_failures == 2


# --- F1: no plaintext temp file left behind; unpredictable temp names ---------------------------
def _listing(*dirs: Path) -> dict:
    return {str(d): sorted(p.name for p in d.iterdir()) for d in dirs}


def test_f1_get_to_a_directory_leaves_nothing(cli, initialized, tmp_path):
    assert cli("vault", "put", "app/x", input=b"TOP-SECRET-F1").code == 0
    out = tmp_path / "outdir"
    out.mkdir()
    before = _listing(tmp_path, out)
    result = cli("vault", "get", "app/x", "-o", str(out))
    assert result.code == 2, result.err
    one_error_line(result)
    assert "is a directory" in result.err
    assert _listing(tmp_path, out) == before
    assert b"TOP-SECRET-F1" not in b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "home" not in p.parts)


def test_f1_export_to_a_directory_leaves_nothing(cli, initialized, tmp_path):
    assert cli("vault", "put", "app/x", input=b"TOP-SECRET-F1").code == 0
    out = tmp_path / "exportdir"
    out.mkdir()
    before = _listing(tmp_path, out)
    result = cli("vault", "export", "-o", str(out), "--yes")
    assert result.code == 2, result.err
    one_error_line(result)
    assert _listing(tmp_path, out) == before


def test_f1_a_planted_temp_name_does_not_block_or_capture_the_write(cli, initialized, tmp_path, zt_env):
    """The attacker predicts the temp file name (it was .<name>.<pid>.tmp) and
    plants it first, as a link to a file of theirs: the write must neither fail
    nor go through it."""
    assert cli("vault", "put", "app/x", input=b"TOP-SECRET-F1").code == 0
    out = tmp_path / "out.bin"
    trap = tmp_path / "attacker-file"
    trap.write_bytes(b"")

    def plant():  # runs in the child, after fork, before exec: same pid as the CLI
        os.symlink(trap, tmp_path / f".out.bin.{os.getpid()}.tmp")

    proc = subprocess.run([sys.executable, "-m", "zerotrust_admin", "vault", "get", "app/x", "-o", str(out)],
                          env=zt_env, cwd=str(ROOT), capture_output=True, preexec_fn=plant, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == b"TOP-SECRET-F1" and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert trap.read_bytes() == b""
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(NO_TEMPS) and not p.is_symlink()]
    assert leftovers == []


def test_f1_interrupted_write_unlinks_its_temp_file(tmp_path, monkeypatch):
    """KeyboardInterrupt (Ctrl-C) at the rename: no plaintext left."""
    from zerotrust_admin import fsutil

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(fsutil.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fsutil.write_private_file(tmp_path / "out", b"TOP-SECRET-F1")
    assert list(tmp_path.iterdir()) == []


def _snapshot(*dirs: Path) -> dict:
    """Every file under ``dirs``: name -> bytes (the tool's own files as the attacker would compare them)."""
    return {str(p): p.read_bytes() for d in dirs for p in sorted(d.rglob("*")) if p.is_file() and not p.is_symlink()}


OWN_FILES = ["master.key", "vault.db", "audit.log", "audit.key", "audit.log.head", "audit.log.checkpoints", "signing.key", "signing.pub",
             "lockout.db", "new-file-in-home"]
OUTPUT_COMMANDS = {
    "vault get": lambda out: ("vault", "get", "app/x", "-o", out),
    "vault export": lambda out: ("vault", "export", "-o", out, "--yes"),
    "vault backup --force": lambda out: ("vault", "backup", "-o", out, "--force"),
    "vault backup-keygen": lambda out: ("vault", "backup-keygen", "-o", out),
    "audit export": lambda out: ("audit", "export", "-o", out),
    "keys public-key": lambda out: ("keys", "public-key", "-o", out),
    "compliance-report": lambda out: ("compliance-report", "--standard", "soc2", "-o", out),
}


def test_f1_every_output_option_is_attacked_here():
    """Every command with an -o/--output/--output-file option is in OUTPUT_COMMANDS,
    so a new output command cannot skip the check unnoticed."""
    import typer

    from zerotrust_admin.cli.app import app

    found = set()

    def walk(command, path):
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, path + [name])
        if any(opt in ("-o", "--output", "--output-file") for p in command.params for opt in getattr(p, "opts", [])):
            found.add(" ".join(path))

    walk(typer.main.get_command(app), [])
    assert found == {name.split(" --")[0] for name in OUTPUT_COMMANDS}


@pytest.mark.parametrize("command", sorted(OUTPUT_COMMANDS))
def test_f1_output_onto_the_tools_own_files_is_refused(cli, initialized, tmp_path, command):
    """The red team's `vault get S -o $ZEROTRUST_HOME/master.key` (and vault.db,
    audit.log, audit.key, signing.pub; `vault backup -o .../vault.db --force`):
    every output option of every command refuses a path in $ZEROTRUST_HOME,
    also spelled through a symlink or `..`, before anything is written."""
    env = {"ZEROTRUST_BACKUP_PASSPHRASE": "backup passphrase 123"}
    assert cli("vault", "put", "app/x", input=b"ATTACKER-CHOSEN").code == 0
    assert cli("vault", "list").code == 0  # creates whatever a first read creates
    (tmp_path / "link").symlink_to(initialized)
    before = _snapshot(initialized)
    targets = [initialized / name for name in OWN_FILES] + [tmp_path / "link" / "master.key", initialized / ".." / "home" / "vault.db"]
    for target in targets:
        result = cli(*OUTPUT_COMMANDS[command](str(target)), env=env)
        assert result.code == 2, (target, result.err)
        one_error_line(result)
        assert "refusing to write" in result.err and "own files" in result.err, result.err
        assert _snapshot(initialized) == before, target
    assert cli("vault", "get", "app/x").out == b"ATTACKER-CHOSEN" and cli("audit", "verify").code == 0


def test_f1_output_onto_own_files_outside_the_home_is_refused(cli, zt_env, tmp_path):
    """The config file, an audit.path outside the home (and its .key/.head/.checkpoints),
    encryption.key_file and the signing key files are the tool's own files wherever they are."""
    logs, keys = tmp_path / "logs", tmp_path / "keys"
    logs.mkdir(mode=0o700)
    keys.mkdir(mode=0o700)
    cfg = write_config(tmp_path / "cfg" / "c.yaml", f"audit:\n  path: {logs / 'a.log'}\nencryption:\n  key_file: {keys / 'm.key'}\n"
                                                     f"security:\n  signing: {{key_file: {keys / 'sig.key'}}}\n")
    env = {"ZEROTRUST_CONFIG": str(cfg)}
    assert cli("init", env=env).code == 0, cli("init", env=env).err
    assert cli("vault", "put", "app/x", input=b"v", env=env).code == 0
    before = _snapshot(logs, keys, cfg.parent)
    for target in [cfg, logs / "a.log", logs / "audit.key", logs / "a.log.head", logs / "a.log.checkpoints", keys / "m.key",
                   keys / "sig.key", keys / "sig.pub"]:
        for args in (("vault", "get", "app/x", "-o", str(target)), ("keys", "public-key", "-o", str(target))):
            result = cli(*args, env=env)
            assert result.code == 2, (target, result.err)
            one_error_line(result)
            assert str(target) in result.err
    assert _snapshot(logs, keys, cfg.parent) == before
    ok = cli("vault", "get", "app/x", "-o", str(logs / "value.out"), env=env)  # the directory itself is fine
    assert ok.code == 0 and (logs / "value.out").read_bytes() == b"v", ok.err


def test_f3_output_into_a_world_writable_directory_is_refused(cli, initialized, tmp_path):
    """configuration.md: a directory the tool writes into must not be world-writable
    without the sticky bit (anybody could replace the file written there)."""
    assert cli("vault", "put", "app/x", input=b"TOP-SECRET").code == 0
    open_dir, sticky = tmp_path / "open", tmp_path / "sticky"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    sticky.mkdir()
    sticky.chmod(0o1777)
    for args in (("vault", "get", "app/x", "-o"), ("vault", "export", "--yes", "-o"), ("audit", "export", "-o")):
        result = cli(*args, str(open_dir / "out"))
        assert result.code == 2, result.err
        one_error_line(result)
        assert "chmod o-w" in result.err
        assert list(open_dir.iterdir()) == []
        assert stat.S_IMODE(open_dir.stat().st_mode) == 0o777
    ok = cli("vault", "get", "app/x", "-o", str(sticky / "out"))
    assert ok.code == 0 and (sticky / "out").read_bytes() == b"TOP-SECRET"


# --- F2: control characters are escaped in text output ------------------------------------------
EVIL_USER = "mallory\x1b]0;pwned\x07\x1b[2J\tfake\n9999\t2026-01-01\troot@EXAMPLE.COM\x9b31m"


def _plant_record(home: Path, user: str) -> None:
    """An audit record with control characters (from an older version, a
    Kerberos ccache principal, a resource name a provider returned)."""
    code = ("import sys; from pathlib import Path; from zerotrust_admin.audit.log import Actor, AuditLog; "
            "AuditLog(Path(sys.argv[1])).append(event='secret_access', action='read', resource='vault:app/\\x1b[31mx', "
            "success=True, actor=Actor(user=sys.argv[2], source_ip='192.0.2.1', host='h'))")
    subprocess.run([sys.executable, "-c", code, str(home / "audit.log"), user], check=True, cwd=str(ROOT), timeout=60)


def _check_tsv(out: bytes, records: int) -> None:
    lines = out.decode().splitlines()
    assert len(lines) == records, lines
    for line in lines:
        assert len(line.split("\t")) == 7, line
    for byte in (b"\x1b", b"\x07", b"\xc2\x9b", b"\x9b"):
        assert byte not in out
    assert "mallory\\x1b]0;pwned\\x07\\x1b[2J\\tfake\\n9999" in out.decode()


def test_f2_audit_tail_and_search_escape_controls_in_tsv(cli, initialized):
    _plant_record(initialized, EVIL_USER)
    total = len((initialized / "audit.log").read_text().splitlines())
    tail = cli("audit", "tail", "-n", "100")
    assert tail.code == 0, tail.err
    _check_tsv(tail.out, total)
    search = cli("audit", "search", "--user", EVIL_USER)
    assert search.code == 0, search.err
    _check_tsv(search.out, 1)
    as_json = cli("audit", "tail", "-n", "1", "--json")
    assert json.loads(as_json.out)["user"] == EVIL_USER  # JSON keeps the value, JSON-escaped
    assert b"\x1b" not in as_json.out


def test_f2_terminal_table_shows_controls_escaped(initialized, zt_env):
    """On a terminal (rich table): the principal's escape sequences arrive as
    text, and rich markup in a value is not interpreted."""
    _plant_record(initialized, "mallory\x1b[2J[bold red]X[/]")
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI on a pseudo-terminal
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "zerotrust_admin", "audit", "tail", "-n", "1"], {**zt_env, "COLUMNS": "300"})
    chunks, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    os.waitpid(pid, 0)
    out = b"".join(chunks)
    assert b"mallory\\x1b[2J[bold red]X[/]" in out, out
    assert b"\x1b[2J" not in out


@pytest.mark.parametrize("bad", ["Eve\x1b]0;pwned\x07", "Eve\nexpires 2099-01-01", "Eve\u2028FAKE", "Eve\u202eevil"])
def test_f2_attest_and_accept_risk_refuse_control_characters(cli, initialized, tmp_path, bad):
    """--reviewer, --owner and --reason are refused at input (exit 2) when they
    hold a control character; nothing is recorded and nothing raw is printed."""
    doc = tmp_path / "policy.pdf"
    doc.write_bytes(b"%PDF-1.4 reviewed")
    log = initialized / "audit.log"
    before = log.read_bytes()
    until = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 90 * 86400))
    runs = [("compliance", "attest", "12.10.1", "--file", str(doc), "--reviewer", bad, "--expires", until),
            ("compliance", "accept-risk", "10.3.3", "-s", "pci", "--owner", bad, "--reason", "SIEM in Q1", "--expires", until),
            ("compliance", "accept-risk", "10.3.3", "-s", "pci", "--owner", "Bob", "--reason", bad, "--expires", until)]
    for args in runs:
        result = cli(*args)
        assert result.code == 2, result.err
        one_error_line(result)
        assert "control character" in result.err
        for raw in ("\x1b", "\x07", "\u2028", "\u202e"):
            assert raw not in result.err and raw.encode() not in result.out
        assert len(result.err.splitlines()) == 2  # the error line and its hint
    assert log.read_bytes() == before


def test_f2_markdown_report_stores_no_raw_controls(cli, initialized, tmp_path):
    """Values from the audit log (an older record's reviewer, a principal) reach
    the .md report escaped: no ESC, C1, U+2028/U+2029 or bidi control in the file."""
    evil = "mallory\x1b[2J\u2028FAKE\u2029\u202e\x9b31m"
    code = ("import sys; from pathlib import Path; from zerotrust_admin.audit.log import Actor, AuditLog; "
            "a = Actor(user=sys.argv[2], source_ip='192.0.2.1', host='h'); log = AuditLog(Path(sys.argv[1])); "
            "log.append(event='compliance_attestation', action='report', resource='compliance/requirement/12.10.1', success=True, actor=a, "
            "requirement='12.10.1', standard='pci-dss', document='p\x1b.pdf', document_sha256='00'*32, reviewer=sys.argv[2], expires='2099-01-01T00:00:00Z'); "
            "log.append(event='compliance_exception', action='report', resource='compliance/requirement/10.3.3', success=True, actor=a, "
            "requirement='10.3.3', standard='pci-dss', owner=sys.argv[2], reason=sys.argv[2], expires='2099-01-01T00:00:00Z')")
    subprocess.run([sys.executable, "-c", code, str(initialized / "audit.log"), evil], check=True, cwd=str(ROOT), timeout=60)
    out = tmp_path / "r.md"
    result = cli("compliance-report", "--standard", "pci", "-o", str(out))
    assert result.code in (0, 10), result.err
    text = out.read_text()
    assert "mallory" in text and "mallory\\x1b[2J\\u2028FAKE" in text
    for raw in ("\x1b", "\x9b", "\u2028", "\u2029", "\u202e"):
        assert raw not in text, repr(raw)


def test_f2_error_line_escapes_a_newline_from_the_command_line(cli):
    result = cli("--config", "/tmp/x\nzerotrust-admin: all good", "config", "show")
    assert result.code == 2, result.err
    one_error_line(result)
    lines = result.err.splitlines()
    assert not any(line.startswith("zerotrust-admin: all good") for line in lines)
    assert len(lines) == 2 and lines[0].startswith("zerotrust-admin: error: ") and "/tmp/x\\nzerotrust-admin: all good" in lines[0], result.err


def test_f2_unicode_line_separators_are_escaped_in_tsv(cli, initialized):
    """U+2028/U+2029 (and NEL, a vertical tab, a zero-width space) are line breaks
    to some terminals, pagers and TSV readers: escaped like a newline."""
    _plant_record(initialized, "mallory\u2028fake\u2029line\x85nel\x0bvt\u200bzw")
    tail = cli("audit", "tail", "-n", "1")
    assert tail.code == 0, tail.err
    text = tail.out.decode()
    assert "mallory\\u2028fake\\u2029line\\x85nel\\x0bvt\\u200bzw" in text, text
    assert len(text.splitlines()) == 1 and len(text.split("\t")) == 7


# --- F3: modes change only on what the tool created -------------------------------------------
def _modes(*paths: Path) -> dict:
    return {str(p): (stat.S_IFMT(os.lstat(p).st_mode), stat.S_IMODE(os.lstat(p).st_mode)) for p in paths}


def test_f3_audit_log_in_a_shared_directory_leaves_the_directory_alone(cli, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    cfg = write_config(tmp_path / "c.yaml", f"audit:\n  path: {shared / 'zerotrust.log'}\n")
    env = {"ZEROTRUST_CONFIG": str(cfg)}
    assert cli("init", env=env).code == 0
    assert cli("vault", "put", "a/b", input=b"v", env=env).code == 0
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    for created in shared.iterdir():
        assert stat.S_IMODE(created.lstat().st_mode) == 0o600, created


def test_f3_audit_path_fifo_is_refused_and_left_unchanged(cli, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    fifo = shared / "audit.fifo"
    os.mkfifo(fifo)
    fifo.chmod(0o666)
    before = _modes(shared, fifo)
    cfg = write_config(tmp_path / "c.yaml", f"audit:\n  path: {fifo}\n")
    result = cli("init", env={"ZEROTRUST_CONFIG": str(cfg)}, timeout=30)
    assert result.code == 2, result.err
    one_error_line(result)
    assert "fifo" in result.err
    assert _modes(shared, fifo) == before
    assert sorted(p.name for p in shared.iterdir()) == ["audit.fifo"]


def test_f3_audit_path_dev_null_leaves_dev_unchanged(cli, tmp_path):
    dev, null = Path("/dev"), Path("/dev/null")
    before = _modes(dev, null)
    names = set(os.listdir(dev))
    cfg = write_config(tmp_path / "c.yaml", "audit:\n  path: /dev/null\n")
    try:
        result = cli("init", env={"ZEROTRUST_CONFIG": str(cfg)}, timeout=30)
        assert result.code == 2, result.err
        one_error_line(result)
        assert "device" in result.err
        assert _modes(dev, null) == before
        assert set(os.listdir(dev)) - names == set()
    finally:  # never leave the machine broken, even on the old code
        for path, (_fmt, mode) in before.items():
            if stat.S_IMODE(os.lstat(path).st_mode) != mode:
                os.chmod(path, mode)
        for name in set(os.listdir(dev)) - names:
            if name in ("audit.key", "null.head"):
                os.unlink(dev / name)


def test_f3_output_file_fifo_is_refused_not_replaced(cli, initialized, tmp_path):
    assert cli("vault", "put", "a/b", input=b"v").code == 0
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    fifo.chmod(0o644)
    result = cli("vault", "get", "a/b", "-o", str(fifo), timeout=30)
    assert result.code == 2, result.err
    one_error_line(result)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_IMODE(os.lstat(fifo).st_mode) == 0o644


@pytest.mark.parametrize("mode", [0o777, 0o755])
def test_f3_a_home_others_can_reach_is_refused_not_chmodded(cli, zt_env, mode):
    home = Path(zt_env["ZEROTRUST_HOME"])
    home.mkdir()
    home.chmod(mode)
    result = cli("init")
    assert result.code == 2, result.err
    one_error_line(result)
    assert f"chmod 700 {home}" in result.err
    assert stat.S_IMODE(home.stat().st_mode) == mode
    assert list(home.iterdir()) == []


def test_f3_home_that_is_a_file_is_one_clear_line(cli, zt_env):
    home = Path(zt_env["ZEROTRUST_HOME"])
    home.write_text("not a directory")
    for args in (("init",), ("vault", "list")):
        result = cli(*args)
        assert result.code == 2, result.err
        one_error_line(result)
        assert "not a directory" in result.err


NOBODY = 65534


def _plant(path: Path, data: bytes, uid: int = NOBODY) -> None:
    path.write_bytes(data)
    path.chmod(0o600)
    os.chown(path, uid, uid)


@pytest.mark.parametrize("planted", [("audit.key", "a.log"), ("audit.key",), ("a.log",), ("a.log.head",), ("a.log.checkpoints",)])
def test_f3_files_planted_by_another_user_in_a_shared_audit_directory_are_refused(cli, tmp_path, planted):
    """The red team: audit.path in a 1777 directory (allowed); user nobody planted
    audit.key and an empty a.log, and the root-run tool used both. Each planted
    file is refused naming it and its owner; nothing is written to it."""
    if os.geteuid() != 0:
        backend_missing("root, to plant a file owned by another user")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    contents = {"audit.key": b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n", "a.log": b"", "a.log.head": b"{}\n", "a.log.checkpoints": b""}
    for name in planted:
        _plant(shared / name, contents[name])
    cfg = write_config(tmp_path / "c.yaml", f"audit:\n  path: {shared / 'a.log'}\n")
    result = cli("init", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert result.code == 2, result.err
    one_error_line(result)
    assert "owned by nobody (uid 65534)" in result.err and any(str(shared / name) in result.err for name in planted), result.err
    for name in planted:
        assert (shared / name).read_bytes() == contents[name] and (shared / name).stat().st_uid == NOBODY


@pytest.mark.parametrize("name", ["master.key", "audit.key", "audit.log", "audit.log.head", "audit.log.checkpoints", "signing.key", "lockout.db",
                                  "vault.db"])
def test_f3_a_home_file_owned_by_another_user_is_refused(cli, initialized, name):
    """The same for the files in $ZEROTRUST_HOME (attacker b replaces one by a
    file of their own): refused, exit 2, naming the file and its owner."""
    if os.geteuid() != 0:
        backend_missing("root, to chown a file to another user")
    cfg = write_config(initialized.parent / "lock.yaml", "security:\n  lockout: {max_failures: 3}\n")
    env = {"ZEROTRUST_CONFIG": str(cfg)}
    assert cli("vault", "put", "prod/x", "--sensitive", input=b"v", env=env).code == 0
    assert cli("mfa", "enroll", env=env).code == 0
    assert cli("vault", "get", "prod/x", env={**env, "ZEROTRUST_OTP": "000000"}).code == 4  # creates lockout.db
    target = initialized / name
    os.chown(target, NOBODY, NOBODY)
    before = target.read_bytes()
    args = ("vault", "get", "prod/x") if name == "lockout.db" else ("vault", "put", "app/y")
    result = cli(*args, input=b"v", env={**env, "ZEROTRUST_OTP": "000000"})
    assert result.code == 2, result.err
    one_error_line(result)
    assert "owned by nobody (uid 65534)" in result.err and name in result.err, result.err
    assert target.read_bytes() == before


def test_f3_a_home_owned_by_another_user_is_refused_even_for_root(cli, zt_env):
    home = Path(zt_env["ZEROTRUST_HOME"])
    home.mkdir(mode=0o700)
    os.chown(home, NOBODY, NOBODY)
    result = cli("init")
    assert result.code == 2, result.err
    one_error_line(result)
    assert "owned by nobody" in result.err
    assert list(home.iterdir()) == []


# --- F4: YAML anchors and aliases, size and depth ---------------------------------------------
def test_f4_an_alias_is_refused_naming_the_line(cli, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "aws:\n  region: &r eu-west-1\n  roles: [*r]\n")
    result = cli("--config", str(cfg), "config", "show")
    assert result.code == 2, result.err
    one_error_line(result)
    assert "line 2" in result.err and "anchor" in result.err


BOMB = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
    for i in range(8))


def test_f4_alias_bomb_is_refused_fast_and_small(zt_env, tmp_path):
    assert len(BOMB) < 600
    cfg = write_config(tmp_path / "bomb.yaml", "secrets:\n  config:\n" + "".join("    " + line + "\n" for line in BOMB.splitlines()))

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "zerotrust_admin", "--config", str(cfg), "config", "check"], env=zt_env,
                          cwd=str(ROOT), capture_output=True, preexec_fn=limit_memory, timeout=60)
    assert time.monotonic() - started < 10
    assert proc.returncode in (1, 2), proc.stderr  # config check reports it; nothing expanded
    assert b"alias" in proc.stdout + proc.stderr or b"anchor" in proc.stdout + proc.stderr
    assert b"MemoryError" not in proc.stderr


def test_f4_size_and_depth_are_bounded(cli, tmp_path):
    big = write_config(tmp_path / "big.yaml", "# padding\n" * (1 << 17) + "aws: {region: eu-west-1}\n")  # 1.3 MiB
    result = cli("--config", str(big), "config", "show")
    assert result.code == 2 and "larger than" in result.err, result.err
    deep = write_config(tmp_path / "deep.yaml", "secrets:\n  config:\n    a: " + "[" * 100 + "]" * 100 + "\n")
    result = cli("--config", str(deep), "config", "show")
    assert result.code == 2 and "deeper than" in result.err, result.err


@pytest.mark.parametrize("text,key,where", [
    (DENY_ALL + "aws: {region: eu-west-1}\naccess:\n  policies: []\n", "'access'", "lines 1 and 5"),
    ("aws: {region: eu-west-1, region: us-east-1}\n", "'aws.region'", "line 1"),
    ("access:\n  policies:\n    - {principals: ['*'], secrets: ['*'], actions: ['*'], effect: deny, effect: allow}\n",
     "'access.policies[0].effect'", "line 3"),
])
def test_f4_a_duplicate_key_is_refused_naming_it_and_its_line(cli, initialized, tmp_path, text, key, where):
    """A second `access:` block silently replaced the first one's deny-all rule
    and `config check` said OK: refused at every level, exit 2."""
    cfg = write_config(tmp_path / "c.yaml", text)
    for args in (("config", "show"), ("vault", "list")):
        result = cli("--config", str(cfg), *args)
        assert result.code == 2, result.err
        one_error_line(result)
        assert f"key {key} twice" in result.err and where in result.err, result.err
    check = cli("--config", str(cfg), "config", "check", "--json")
    assert check.code == 1 and "twice" in json.loads(check.out)["problems"][0]["message"], check.out


@pytest.mark.parametrize("text,expect", [
    ("encryption:\n  rotation: {master_days: " + "9" * 5000 + "}\n", "integer of 5000 characters at line 2"),
    ("aws:\n  region: 2026-13-45\n", "cannot convert"),
    ("sessions: {backend: redis}\nredis:\n  url: 'redis://127.0.0.1:99999/0'\n", "port is not a number"),
    ("sessions: {backend: redis}\nredis:\n  url: 'redis://u:Pass/Word-F4@127.0.0.1:6379/0'\n", "port is not a number"),
    ("sessions: {backend: redis}\nredis:\n  url: 'redis://u:Pa[ss-F4@127.0.0.1:6379/0'\n", "unbalanced '['"),
    ("sessions: {backend: redis}\nredis:\n  url: 'redis://[127.0.0.1:6379/0'\n", "unbalanced '['"),
])
def test_f4_values_the_parser_cannot_take_are_one_line_exit_2(cli, initialized, tmp_path, text, expect):
    """A 5000-digit integer, an impossible date, a redis.url with a bad port, a '/'
    or '[' in its password: was "internal error (ValueError)", exit 1."""
    cfg = write_config(tmp_path / "c.yaml", text)
    for args in (("config", "show"), ("sessions", "list"), ("vault", "list")):
        result = cli("--config", str(cfg), *args)
        assert result.code == 2, (args, result.err)
        one_error_line(result)
        assert expect in result.err and "Word-F4" not in result.err and "ss-F4" not in result.err, result.err
    check = cli("--config", str(cfg), "config", "check")
    assert check.code == 1 and expect in check.text and "Word-F4" not in check.text, (check.text, check.err)


def test_f5_a_password_with_a_space_is_redacted(cli, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "redis:\n  url: 'redis://u:P4SS word-F5@h.example:6379'\n")
    show = cli("--config", str(cfg), "config", "show")
    shown_json = cli("--config", str(cfg), "config", "show", "--json")
    check = cli("--config", str(cfg), "config", "check", "--json")
    for result in (show, shown_json, check):
        assert "P4SS" not in result.text and "word-F5" not in result.text and "P4SS" not in result.err, (result.text, result.err)
    assert show.code == 0 and "redis://u:<redacted>@h.example:6379" in show.text
    assert json.loads(shown_json.out)["config"]["redis"]["url"] == "redis://u:<redacted>@h.example:6379"
    assert "redis.url" in {p["key"] for p in json.loads(check.out)["problems"]}  # a password written in the file is a finding


# --- F5: URL userinfo passwords are redacted wherever config values are shown -----------------
URL_CONFIG = ("redis:\n  url: 'redis://:RedisPass-F5@127.0.0.1:6379/0'\n"
              "secrets:\n  provider: hashicorp\n  config: {url: 'https://ops:VaultPass-F5@127.0.0.1:1/', token: '${VAULT_TOKEN}'}\n")


def test_f5_config_show_and_check_redact_url_passwords(cli, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", URL_CONFIG)
    env = {"VAULT_TOKEN": "tok", "ZEROTRUST_SESSIONS_BACKEND": "redis"}
    results = [cli("--config", str(cfg), "config", *args, env=env) for args in (("show",), ("show", "--json"), ("check",), ("check", "--json"))]
    for result in results:
        for secret in ("RedisPass-F5", "VaultPass-F5"):
            assert secret not in result.text and secret not in result.err, (result.text, result.err)
    assert results[0].code == 0 and "redis://:<redacted>@127.0.0.1:6379/0" in results[0].text
    doc = json.loads(results[1].out)
    assert doc["config"]["secrets"]["config"]["url"] == "https://ops:<redacted>@127.0.0.1:1/"
    check = json.loads(results[3].out)
    assert {"redis.url", "secrets.config.url"} <= {p["key"] for p in check["problems"]}  # a password in the file is a finding


def test_f5_errors_naming_a_url_redact_its_password(cli, initialized, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", URL_CONFIG)
    result = cli("--config", str(cfg), "vault", "list", env={"VAULT_TOKEN": "tok"})
    assert result.code != 0
    assert "VaultPass-F5" not in result.err and "RedisPass-F5" not in result.err


# --- F6: the Python API is not dumpable --------------------------------------------------------
PROBE = """
import ctypes, resource, sys
libc = ctypes.CDLL(None)
def state():
    limits = [l for l in open('/proc/self/limits') if l.startswith('Max core file size')][0].split()
    return [libc.prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE)[0], limits[4]]
before = state()
{action}
print(before, state())
"""


def _probe(action: str) -> tuple[list, list]:
    def unlimited_cores():
        # Raise the soft limit as far as this runner allows; raising the hard limit
        # needs CAP_SYS_RESOURCE, which a CI container may not have.
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

    proc = subprocess.run([sys.executable, "-c", PROBE.replace("{action}", action)], capture_output=True, cwd=str(ROOT),
                          preexec_fn=unlimited_cores, timeout=60, env={**os.environ, "ZEROTRUST_HOME": "/nonexistent-zt"})
    assert proc.returncode == 0, proc.stderr
    before, after = eval(proc.stdout.decode().replace("] [", "], ["))  # noqa: S307 - our own probe's output
    return before, after


def test_f6_importing_the_api_disables_core_dumps():
    before, after = _probe("import zerotrust_kerberos")
    assert before[0] == 1 and before[1] == resource.getrlimit(resource.RLIMIT_CORE)[1]
    assert after == [0, 0, "0"]


def test_f6_the_first_secret_disables_core_dumps_for_zerotrust_admin_users():
    before, after = _probe("import zerotrust_admin.secret as s; s.Secret(b'value')")
    assert before[0] == 1 and before[1] == resource.getrlimit(resource.RLIMIT_CORE)[1]
    assert after == [0, 0, "0"]
