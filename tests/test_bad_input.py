"""Bad input gets ONE clear error line (plus an optional hint), the documented
exit code, no traceback, and leaves the vault file byte-for-byte unchanged."""

from __future__ import annotations

import base64
import hashlib
import os
import pty
import select
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ERROR_PREFIX = "zerotrust-admin: error: "


@pytest.fixture(scope="module")
def template_home(tmp_path_factory):
    """One initialized home with two secrets, copied for each test (init costs a subprocess)."""
    base = tmp_path_factory.mktemp("template")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base / "user"), "LANG": "C.UTF-8",
           "ZEROTRUST_HOME": str(base / "home"), "XDG_CONFIG_HOME": str(base / "xdg"), "ZEROTRUST_PRINCIPAL": "t@EXAMPLE.COM"}
    for args, stdin in ((["init"], b""), (["vault", "put", "db/password"], b"s3cr3t"), (["vault", "put", "bin/blob"], b"\xff\xfe\x00binary")):
        proc = subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], input=stdin, env=env, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    return base / "home"


@pytest.fixture
def home(template_home, zt_env) -> Path:
    target = Path(zt_env["ZEROTRUST_HOME"])
    shutil.copytree(template_home, target)
    os.chmod(target, 0o700)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_error(result, code: int, *words: str) -> str:
    assert result.code == code, (result.code, result.err)
    lines = result.err.splitlines()
    assert lines and lines[0].startswith(ERROR_PREFIX), result.err
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  hint: ")), result.err
    assert "Traceback" not in result.err
    assert result.out == b""
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def unchanged(home):
    """Yields; afterwards asserts the vault file did not change by a single byte."""
    vault = home / "vault.db"
    before = sha256(vault)
    yield vault
    assert sha256(vault) == before
    assert not list(home.glob(".vault.db*")), "a temporary file was left behind"


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


# --- configuration -------------------------------------------------------------
def test_malformed_yaml(cli, tmp_path, unchanged):
    cfg = write_config(tmp_path, "redis:\n  url: [unclosed\n  port: 1\n")
    line = assert_one_error(cli("--config", str(cfg), "vault", "get", "db/password"), 2, "not valid YAML", "line")
    assert str(cfg) in line


def test_unknown_config_key(cli, tmp_path, unchanged):
    cfg = write_config(tmp_path, "sessions:\n  backnd: sqlite\n")
    result = cli("--config", str(cfg), "vault", "list")
    assert_one_error(result, 2, "unknown config key", "sessions.backnd")
    assert "did you mean 'sessions.backend'?" in result.err


def test_missing_environment_variable(cli, tmp_path, unchanged):
    cfg = write_config(tmp_path, "redis:\n  url: redis://${ZT_BAD_INPUT_UNSET}:6379/0\n")
    assert_one_error(cli("--config", str(cfg), "vault", "put", "db/password", input=b"new"), 2, "ZT_BAD_INPUT_UNSET")


# --- keys --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_readable_key_file_is_refused(cli, home, unchanged, mode):
    os.chmod(home / "master.key", mode)
    result = cli("vault", "get", "db/password")
    assert_one_error(result, 2, "master key file", f"{mode:04o}")
    assert "chmod 600" in result.err


def test_symlinked_key_file_is_refused(cli, home, unchanged, tmp_path):
    real = tmp_path / "real.key"
    shutil.move(home / "master.key", real)
    (home / "master.key").symlink_to(real)
    assert_one_error(cli("vault", "get", "db/password"), 2, "symbolic link")


def test_missing_key_file(cli, home, unchanged):
    os.unlink(home / "master.key")
    assert_one_error(cli("vault", "get", "db/password"), 3, "master key file", "does not exist")


def test_wrong_key_from_environment(cli, unchanged):
    other = base64.b64encode(os.urandom(32)).decode()
    line = assert_one_error(cli("vault", "get", "db/password", env={"ZEROTRUST_ENCRYPTION_KEY": other}), 4, "does not open the vault")
    assert other not in line


def test_wrong_key_file(cli, home, unchanged):
    (home / "master.key").write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    assert_one_error(cli("vault", "put", "db/password", input=b"x"), 4, "does not open the vault")


def test_malformed_environment_key(cli, unchanged):
    assert_one_error(cli("vault", "get", "db/password", env={"ZEROTRUST_ENCRYPTION_KEY": "c2hvcnQ="}), 2, "32 bytes")


# --- vault file ----------------------------------------------------------------------
@pytest.mark.parametrize("keep", [10, 4096, "half"])
def test_truncated_vault_file(cli, home, keep):
    vault = home / "vault.db"
    data = vault.read_bytes()
    size = len(data) // 2 if keep == "half" else keep
    vault.write_bytes(data[:size])
    before = sha256(vault)
    result = cli("vault", "get", "db/password")
    assert_one_error(result, 5)
    assert "s3cr3t" not in result.err
    assert sha256(vault) == before


def test_damaged_page_inside_the_vault(cli, home):
    """The header and meta are fine, the secrets table's page is garbage."""
    vault = home / "vault.db"
    conn = sqlite3.connect(vault)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'secrets'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(vault.read_bytes())
    data[(root - 1) * page : root * page] = b"\xee" * page
    vault.write_bytes(bytes(data))
    before = sha256(vault)
    for args in (("vault", "get", "db/password"), ("vault", "delete", "db/password", "--destroy", "--yes")):
        assert_one_error(cli(*args), 5, "damaged")
    assert sha256(vault) == before


def test_foreign_file_is_not_a_vault(cli, home):
    vault = home / "vault.db"
    vault.write_bytes(b"#!/bin/sh\necho this is not a vault, it is a shell script\n" * 20)
    before = sha256(vault)
    assert_one_error(cli("vault", "list"), 2, "not a zerotrust-admin vault")
    assert sha256(vault) == before


def test_foreign_sqlite_database_is_not_a_vault(cli, home):
    vault = home / "vault.db"
    os.unlink(vault)
    conn = sqlite3.connect(vault)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.execute("INSERT INTO songs VALUES ('not a vault')")
    conn.commit()
    conn.close()
    os.chmod(vault, 0o600)
    before = sha256(vault)
    assert_one_error(cli("vault", "get", "db/password"), 2, "not a zerotrust-admin vault")
    assert sha256(vault) == before


def test_vault_from_a_newer_format(cli, home):
    vault = home / "vault.db"
    conn = sqlite3.connect(vault)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    conn.commit()
    conn.close()
    before = sha256(vault)
    assert_one_error(cli("vault", "list"), 2, "format '99'")
    assert sha256(vault) == before


def test_missing_vault(cli, home):
    os.unlink(home / "vault.db")
    result = cli("vault", "get", "db/password")
    assert_one_error(result, 3, "no vault")
    assert "zerotrust-admin init" in result.err


# --- values -----------------------------------------------------------------------------
def test_empty_value(cli, unchanged):
    assert_one_error(cli("vault", "put", "db/new", input=b""), 2, "empty")
    assert_one_error(cli("vault", "put", "db/password", input=b""), 2, "empty")


def test_oversized_value(cli, unchanged):
    assert_one_error(cli("vault", "put", "db/huge", input=b"x" * ((1 << 20) + 1)), 2, "limit")


def test_missing_value_file(cli, unchanged, tmp_path):
    assert_one_error(cli("vault", "put", "db/password", "--value-file", str(tmp_path / "nope")), 2, "does not exist")


def test_non_utf8_value_is_not_printed_to_a_terminal(home, zt_env, unchanged):
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "zerotrust_admin", "vault", "get", "bin/blob"],
                                stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=zt_env, cwd=str(ROOT))
        os.close(slave)
        slave = -1
        _out, err = proc.communicate(timeout=60)
        shown = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    text = err.decode("utf-8", "replace")
    lines = text.splitlines()
    assert proc.returncode == 2, text
    assert lines[0].startswith(ERROR_PREFIX) and "binary" in lines[0] and "terminal" in lines[0]
    assert len(lines) == 2 and "--output-file" in lines[1] and "Traceback" not in text
    assert b"binary" not in shown and b"\xff\xfe" not in shown  # nothing reached the terminal


@pytest.mark.parametrize("name", ["../x", "a//b", "/abs", "x/..", "a" * 257, "a b", "é"])
def test_bad_names(cli, unchanged, name):
    put = cli("vault", "put", name, input=b"value")
    line = assert_one_error(put, 2, "invalid secret name")
    assert "letters, digits" in put.err  # the rule is in the hint
    assert len(line) < 200


@pytest.mark.parametrize("name", ["../x", "a" * 257, "é"])
def test_bad_names_on_read(cli, unchanged, name):
    assert_one_error(cli("vault", "get", name), 2, "invalid secret name")


def test_bad_import_leaves_the_vault_unchanged(cli, unchanged, tmp_path):
    src = tmp_path / "bad.env"
    src.write_text("GOOD=1\nALSO_GOOD=2\n../evil=3\n")
    assert_one_error(cli("vault", "import", str(src)), 2, "line 3", "invalid secret name")
    src.write_text('GOOD=1\nBROKEN="unterminated\n')
    assert_one_error(cli("vault", "import", str(src)), 2, "line 2", "unterminated")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"a": "1", "b": ')
    assert_one_error(cli("vault", "import", str(bad_json)), 2, "not valid JSON")


def test_unknown_secret_and_version(cli, unchanged):
    assert_one_error(cli("vault", "get", "db/nothing"), 3, "not found")
    assert_one_error(cli("vault", "get", "db/password", "--version", "7"), 3, "no version 7")
