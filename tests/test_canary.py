"""The canary: a random secret is stored, then EVERY command of the CLI is run
(the list is read from the Typer app, so a command added later is covered
automatically), including failing runs. The canary may appear only in the
output of `vault get` (and the explicit plaintext `vault export`). It must not
appear in the audit log, in any stderr, in other commands' stdout or --json,
in argv, or in any file under $ZEROTRUST_HOME or the config dir, in plain,
base64 or hex form."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CANARY_NAME = "canary/db-password"
ALLOWED_STDOUT = {("vault", "get"), ("vault", "export")}


def all_commands() -> dict[tuple[str, ...], object]:
    import typer.main

    from zerotrust_admin.cli.app import app

    root = typer.main.get_command(app)
    found = {}

    def walk(group, prefix):
        for name, sub in group.commands.items():
            if hasattr(sub, "commands"):
                walk(sub, prefix + (name,))
            else:
                found[prefix + (name,)] = sub

    walk(root, ())
    return found


def generic_argv(path: tuple[str, ...], command, out: Path) -> list[str]:
    """A plausible invocation built from the command's own parameters."""
    argv = list(path)
    for param in command.params:
        opts = getattr(param, "opts", []) or []
        if param.param_type_name == "argument":
            argv.append(CANARY_NAME if "name" in param.name else str(out / f"{param.name}.in"))
        elif param.required:
            flag = opts[0]
            argv += [flag, str(out / f"generic-{'-'.join(path)}.json") if "output" in flag else "x"]
    flags = {o for p in command.params for o in (getattr(p, "opts", []) or [])}
    argv += [f for f in ("--json", "--dry-run") if f in flags]
    return argv


def scenarios(out: Path) -> list[tuple[list[str], bytes]]:
    """Realistic runs first (order matters), then failures. (argv, stdin)."""
    other = out / "import.env"
    other.write_text("IMPORTED_A=not-the-canary\n")
    return [
        (["vault", "get", CANARY_NAME], b""),
        (["vault", "get", "--json", CANARY_NAME], b""),
        (["vault", "get", CANARY_NAME, "--output-file", str(out / "allowed-get.bin")], b""),
        (["vault", "list"], b""), (["vault", "list", "--json"], b""), (["vault", "history", CANARY_NAME, "--json"], b""),
        (["vault", "put", "other/x", "--json"], b"other-value"),
        (["vault", "import", str(other), "--json"], b""),
        (["vault", "export", "--yes", "--format", "json"], b""),
        (["vault", "export", "--yes", "--output", str(out / "allowed-export.json")], b""),
        (["vault", "backup-keygen", "--output", str(out / "backup-identity"), "--json"], b""),
        (["vault", "backup", "--output", str(out / "backup.ztb"), "--json"], b"backup passphrase long enough\n"),
        (["vault", "restore", str(out / "backup.ztb"), "--dry-run", "--json"], b"backup passphrase long enough\n"),
        (["vault", "delete", "other/x", "--yes", "--json"], b""), (["vault", "undelete", "other/x", "--json"], b""),
        (["vault", "delete", "other/x", "--destroy", "--dry-run", "--json"], b""),
        (["vault", "migrate", "--to", "local", "--dry-run", "--json"], b""),
        (["config", "check", "--json"], b""), (["config", "show", "--json"], b""),
        (["keys", "status", "--json"], b""), (["rotate-keys", "--all", "--json"], b""),
        (["vault", "get", CANARY_NAME], b""),  # still readable after rotation
        (["sessions", "create", "--user", "bob@EXAMPLE.COM", "--json"], b""), (["sessions", "list", "--json"], b""),
        (["revoke-sessions", "--user", "bob@EXAMPLE.COM", "--yes", "--json"], b""),
        (["audit", "tail", "-n", "500", "--json"], b""), (["audit", "search", "--json"], b""), (["audit", "verify", "--json"], b""),
        (["audit", "anomalies", "--json"], b""),
        (["notify", "channels", "--json"], b""), (["notify", "test", "--json"], b""),
        (["compliance-report", "--standard", "all", "--output", str(out / "report.json")], b""),
        (["compliance-report", "--standard", "soc2", "--output", str(out / "report.md")], b""),
        (["compliance-report", "--standard", "pci", "--output", str(out / "report.pdf")], b""),
        (["access", "check", "--action", "read", CANARY_NAME, "--json"], b""), (["access", "policies", "--json"], b""),
        (["mfa", "status", "--json"], b""), (["mfa", "verify", "--otp-stdin"], b"123456\n"),
        (["credentials", "get", "--role-arn", "arn:aws:iam::123456789012:role/x", "--format", "json"], b""),
        (["revoke-credentials", "--user", "bob@EXAMPLE.COM", "--yes", "--json"], b""),
        # failures
        (["vault", "get", "no/such/secret"], b""), (["vault", "put", "bad name!"], b"x"),
        (["vault", "put", "empty/x"], b""), (["vault", "get", CANARY_NAME, "--version", "99"], b""),
        (["init"], b""), (["vault", "frobnicate"], b""), (["--config", str(out / "missing.yaml"), "vault", "list"], b""),
    ]


VARIANTS = lambda c: [c, base64.b64encode(c), base64.urlsafe_b64encode(c), c.hex().encode(), base64.b32encode(c)]  # noqa: E731


def test_canary_never_leaks(zt_env, initialized, tmp_path):
    canary = ("zt-canary-" + secrets.token_urlsafe(24)).encode()
    out = tmp_path / "out"
    out.mkdir()
    env = {**zt_env, "ZEROTRUST_BACKUP_PASSPHRASE": "backup passphrase long enough", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    runs = []

    def run(argv: list[str], stdin: bytes = b"", extra: dict | None = None):
        full = [sys.executable, "-m", "zerotrust_admin", *argv]
        assert not any(canary.decode() in a for a in full)  # never on argv
        try:
            proc = subprocess.run(full, input=stdin, capture_output=True, env={**env, **(extra or {})}, cwd=str(ROOT), timeout=60)
            runs.append((argv, proc.returncode, proc.stdout, proc.stderr))
        except subprocess.TimeoutExpired as exc:
            runs.append((argv, None, exc.stdout or b"", exc.stderr or b""))

    run(["vault", "put", CANARY_NAME, "--meta", "owner=dba"], canary)
    assert runs[-1][1] == 0, runs[-1][3]
    commands = all_commands()
    covered = set()
    for argv, stdin in scenarios(out):
        path = _path_of(argv, commands)
        if argv[0] != "--config" and path is None and argv[:2] != ["vault", "frobnicate"]:
            continue  # that command does not exist (yet) in this build
        covered.add(path)
        run(argv, stdin)
    for path, command in sorted(commands.items()):
        if path not in covered:  # a command added later still runs at least once
            run(generic_argv(path, command, out))
            covered.add(path)
    # Failure modes that touch secrets: wrong master key, denied by policy, MFA without a code.
    run(["vault", "get", CANARY_NAME], extra={"ZEROTRUST_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()})
    policy = tmp_path / "deny.yaml"
    policy.write_text("access:\n  policies:\n    - {principals: ['*'], secrets: ['*'], actions: [list], effect: allow}\n")
    policy.chmod(0o600)
    run(["vault", "get", CANARY_NAME], extra={"ZEROTRUST_CONFIG": str(policy)})
    run(["vault", "put", "sens/x", "--sensitive"], b"sensitive-not-canary")
    run(["vault", "get", "sens/x"])
    run(["mfa", "enroll", "--json"])
    run(["vault", "get", "sens/x", "--otp-stdin"], b"000000\n")

    assert set(commands) <= covered
    reads = [r for r in runs if tuple(r[0][:2]) == ("vault", "get") and r[0][2:3] == [CANARY_NAME] and r[1] == 0 and "--output-file" not in r[0]]
    assert reads and all(canary in r[2] for r in reads), "vault get must still return the canary"

    leaks = []
    for argv, code, stdout, stderr in runs:
        path = _path_of(argv, commands)
        for variant in VARIANTS(canary):
            if variant in stderr:
                leaks.append(f"stderr of {argv} (exit {code})")
            if variant in stdout and path not in ALLOWED_STDOUT:
                leaks.append(f"stdout of {argv} (exit {code})")
    allowed_files = {out / "allowed-get.bin", out / "allowed-export.json"}
    scanned = set()
    for base in (Path(zt_env["ZEROTRUST_HOME"]), Path(zt_env["XDG_CONFIG_HOME"]), Path(zt_env["XDG_DATA_HOME"]), Path(zt_env["HOME"]), out):
        for file in _files(base):
            if file in allowed_files:
                continue
            data = file.read_bytes()
            scanned.add(file.name)
            for variant in VARIANTS(canary):
                if variant in data:
                    leaks.append(f"file {file}")
            if file.suffix == ".pdf" and shutil.which("pdftotext"):
                text = subprocess.run(["pdftotext", str(file), "-"], capture_output=True).stdout
                if canary in text:
                    leaks.append(f"text of {file}")
    assert (out / "allowed-get.bin").read_bytes() == canary
    assert {"audit.log", "vault.db"} <= scanned
    assert not leaks, "canary leaked into: " + "; ".join(sorted(set(leaks)))
    tracebacks = [r[0] for r in runs if b"Traceback (most recent call last)" in r[3]]
    assert not tracebacks, f"tracebacks (which can carry secrets) from: {tracebacks}"


def _path_of(argv: list[str], commands) -> tuple[str, ...] | None:
    words = []
    for token in argv:
        if token.startswith("-"):
            if token == "--config":
                continue
            continue
        words.append(token)
        if tuple(words) in commands:
            return tuple(words)
    return None


def _files(base: Path):
    if not base.exists():
        return
    for root, _dirs, files in os.walk(base):
        for name in files:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                yield path
