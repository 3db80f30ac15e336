"""Start-up cost and the ``vault get`` fast path.

1. Importing the CLI, ``zerotrust-admin --help`` and ``vault get`` import none
   of the heavy provider SDKs (they belong inside the functions that use them).
2. The fast path for ``vault get`` (cli/fastpath.py) and the full Typer path
   give identical stdout, stderr, exit codes and files.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, Result

HEAVY = ("boto3", "botocore", "hvac", "azure", "redis", "pkcs11", "reportlab")
ENTRY = ROOT / ".venv" / "bin" / "zerotrust-admin"

# Runs the real entry point with the fast path switched off, so every command
# goes through the Typer app and the same top-level error handler.
FORCE_TYPER = (
    "import sys\n"
    "from zerotrust_admin.cli import entry, fastpath\n"
    "fastpath.parse = lambda argv: None\n"
    "entry.main(sys.argv[1:])\n"
)


def imported_modules(argv: list[str], env: dict) -> set[str]:
    """Every module the process imported, from CPython's own import-time trace."""
    full_env = dict(env, PYTHONPROFILEIMPORTTIME="1")
    proc = subprocess.run(argv, capture_output=True, env=full_env, cwd=str(ROOT), timeout=60, input=b"")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    modules = set()
    for line in proc.stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                modules.add(name)
    assert "zerotrust_admin" in modules, "the import trace did not work"
    return modules


def run(argv: list[str], env: dict, input: bytes = b"") -> Result:
    proc = subprocess.run(argv, capture_output=True, env=env, cwd=str(ROOT), timeout=60, input=input)
    return Result(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def entry_argv(*args: str) -> list[str]:
    if ENTRY.exists():
        return [str(ENTRY), *args]
    return [sys.executable, "-m", "zerotrust_admin", *args]


KEYTAB = bytes(range(256)) * 3  # not UTF-8: exercises the binary and base64 paths


@pytest.fixture(scope="module")
def vault_env(tmp_path_factory) -> dict:
    """One initialized home for the module (reads do not change what they return)."""
    base = tmp_path_factory.mktemp("startup")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(base / "userhome"),
        "ZEROTRUST_HOME": str(base / "home"),
        "XDG_CONFIG_HOME": str(base / "xdg-config"),
        "XDG_DATA_HOME": str(base / "xdg-data"),
        "ZEROTRUST_PRINCIPAL": "alice@EXAMPLE.COM",
        "KRB5CCNAME": f"FILE:{base / 'no-ccache'}",
        "LANG": "C.UTF-8",
    }
    for args, value in ((["init"], b""), (["vault", "put", "db/password"], b"first"),
                        (["vault", "put", "db/password"], b"s3cr3t"), (["vault", "put", "svc/keytab"], KEYTAB)):
        result = run(entry_argv(*args), env, input=value)
        assert result.code == 0, result.err
    return env


def test_importing_the_cli_imports_no_heavy_sdk(zt_env):
    modules = imported_modules([sys.executable, "-c", "import zerotrust_admin.cli.app"], zt_env)
    assert "zerotrust_admin.cli.app" in modules
    assert heavy_in(modules) == []


def test_help_imports_no_heavy_sdk(zt_env):
    modules = imported_modules(entry_argv("--help"), zt_env)
    assert "zerotrust_admin.cli.app" in modules  # every command group was registered
    assert heavy_in(modules) == []


def test_vault_get_imports_no_heavy_sdk(vault_env):
    for argv in (entry_argv("vault", "get", "db/password"), [sys.executable, "-c", FORCE_TYPER, "vault", "get", "db/password"]):
        modules = imported_modules(argv, vault_env)
        assert "zerotrust_admin.vault.vault" in modules  # the vault was really opened
        assert heavy_in(modules) == [], argv


def test_fast_path_does_not_import_typer(vault_env):
    """The reason the fast path exists: Typer's import alone is ~40 ms of the 150 ms budget."""
    modules = imported_modules(entry_argv("vault", "get", "db/password"), vault_env)
    assert "zerotrust_admin.cli.app" not in modules
    assert sorted(m for m in modules if m.split(".")[0] in ("typer", "click", "rich")) == []
    # ...while the forced path of the parity tests below really is the Typer app.
    forced = imported_modules([sys.executable, "-c", FORCE_TYPER, "vault", "get", "db/password"], vault_env)
    assert "zerotrust_admin.cli.app" in forced and "typer.main" in forced


# --- parity: fast path vs Typer path -------------------------------------------
CASES = {
    "plain": (["vault", "get", "db/password"], 0),
    "version": (["vault", "get", "db/password", "--version", "1"], 0),
    "version-equals-short": (["vault", "get", "-V", "2", "db/password"], 0),
    "missing-version": (["vault", "get", "db/password", "--version", "9"], 3),
    "json": (["vault", "get", "db/password", "--json"], 0),
    "global-json": (["--json", "vault", "get", "db/password"], 0),
    "json-binary": (["vault", "get", "svc/keytab", "--json"], 0),
    "binary-to-pipe": (["vault", "get", "svc/keytab"], 0),
    "missing-secret": (["vault", "get", "no/such/secret"], 3),
    "bad-name": (["vault", "get", "../x"], 2),
    "quiet": (["--quiet", "vault", "get", "db/password"], 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_path_and_typer_path_agree(case, vault_env):
    from zerotrust_admin.cli import fastpath

    args, expected_code = CASES[case]
    assert fastpath.parse(args) is not None, "this case must take the fast path"
    fast = run(entry_argv(*args), vault_env)
    typer_path = run([sys.executable, "-c", FORCE_TYPER, *args], vault_env)
    assert fast.code == expected_code, fast.err
    assert (typer_path.code, typer_path.out, typer_path.err) == (fast.code, fast.out, fast.err)
    if expected_code:
        assert fast.out == b"" and fast.err.count("error:") == 1


@pytest.mark.parametrize("flag", ["--output-file", "-o"])
def test_output_file_parity(flag, vault_env, tmp_path):
    from zerotrust_admin.cli import fastpath

    target = tmp_path / "out.keytab"
    args = ["vault", "get", "svc/keytab", flag, str(target)]
    assert fastpath.parse(args) is not None
    results = []
    for argv in (entry_argv(*args), [sys.executable, "-c", FORCE_TYPER, *args]):
        result = run(argv, vault_env)
        assert result.code == 0, result.err
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
        results.append((result.code, result.out, result.err, target.read_bytes()))
        target.unlink()
    assert results[0] == results[1]
    assert results[0][3] == KEYTAB


def test_fast_path_declines_what_it_does_not_understand():
    """Anything outside its narrow grammar goes to Typer, which owns the error."""
    from zerotrust_admin.cli import fastpath

    for args in (["vault", "get", "--help"], ["vault", "get"], ["vault", "get", "a", "b"], ["vault", "get", "a", "--bogus"],
                 ["vault", "put", "a"], ["--verbose", "vault", "get", "a"], ["vault", "get", "a", "--version", "x"]):
        assert fastpath.parse(args) is None, args


def test_typer_path_reports_fast_path_rejects_the_same_way(vault_env):
    """An argument the fast path declines still gets one usage error (exit 2) via Typer."""
    result = run(entry_argv("vault", "get", "db/password", "--version", "x"), vault_env)
    assert result.code == 2 and result.out == b""
