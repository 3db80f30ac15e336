"""Property-based fuzzing of every parser that takes outside input: the
config loader, the name validator, the vault record decoder, the audit-line
parser, the bulk (.env/JSON) readers and the CLI's argument handling.

Invariant: no exception outside the error hierarchy, and a bounded time per
input (hypothesis' deadline). Example counts are in docs/RELIABILITY.md and
scale with ZT_FUZZ_EXAMPLES.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zerotrust_admin.config.loader import interpolate, load_config
from zerotrust_admin.crypto import DecryptionFailed, open_sealed
from zerotrust_admin.errors import IntegrityError, UsageError, ZeroTrustError
from zerotrust_admin.names import validate_name
from zerotrust_admin.vault import bulk

EXAMPLES = int(os.environ.get("ZT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=2000, suppress_health_check=list(HealthCheck), database=None)

yaml_like = st.one_of(
    st.text(max_size=400),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30)),
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.sampled_from(
            ["secrets", "provider", "config", "encryption", "key_file", "rotation", "master_days", "redis", "url",
             "password_file", "tls", "min_version", "ciphers", "audit", "sinks", "x", "${A}", "security"]), children, max_size=4)),
        max_leaves=12,
    ).map(lambda d: __import__("yaml").safe_dump(d)),
)


@FUZZ
@given(text=yaml_like)
def test_config_loader_never_crashes(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(text)
    os.chmod(path, 0o600)
    try:
        load_config(path, environ={"A": "1", "ZEROTRUST_HOME": str(path.parent)})
    except ZeroTrustError:
        pass


@FUZZ
@given(value=st.text(max_size=200), env=st.dictionaries(st.from_regex(r"[A-Z_]{1,5}", fullmatch=True), st.text(max_size=10), max_size=3))
def test_interpolation_never_crashes(value, env):
    try:
        result = interpolate({"k": value}, env)
        assert isinstance(result["k"], str)
    except ZeroTrustError:
        pass


@FUZZ
@given(name=st.one_of(st.text(max_size=300), st.from_regex(r"[A-Za-z0-9._/-]{0,300}", fullmatch=True)))
def test_name_validator(name):
    try:
        validate_name(name)
    except UsageError:
        return
    # Accepted names obey the documented rule.
    assert 1 <= len(name) <= 256
    assert all(seg not in ("", ".", "..") for seg in name.split("/"))


@FUZZ
@given(text=st.text(max_size=500))
def test_env_reader(text):
    try:
        items = bulk.parse_env(text)
    except UsageError:
        return
    for name, value in items:
        validate_name(name)
        assert isinstance(value, bytes)


@FUZZ
@given(text=st.one_of(st.text(max_size=300), st.recursive(st.one_of(st.text(max_size=20), st.integers(), st.none()),
       lambda c: st.dictionaries(st.text(max_size=10), c, max_size=4), max_leaves=8).map(__import__("json").dumps)))
def test_json_reader(text):
    try:
        bulk.parse_json(text)
    except UsageError:
        pass


@FUZZ
@given(blob=st.binary(max_size=200), aad=st.binary(max_size=40))
def test_sealed_decoder(blob, aad):
    with pytest.raises(DecryptionFailed):
        open_sealed(b"k" * 32, blob, aad)


@pytest.fixture(scope="module")
def fuzz_vault(tmp_path_factory):
    from tests.reliability.helpers import open_vault
    from zerotrust_admin.keys import KeySourceContext, keyfile
    from zerotrust_admin.vault import Vault

    home = tmp_path_factory.mktemp("fuzzhome")
    ctx = KeySourceContext(config={}, home=home, environ={})
    vault = Vault.create(home / "vault.db", "keyfile", lambda key_id: keyfile.KeyFileSource.create(ctx, key_id))
    vault.put("target", b"original")
    vault.close()
    env = {"ZEROTRUST_HOME": str(home)}
    return env, home / "vault.db"


@FUZZ
@given(sealed=st.binary(max_size=300), metadata=st.text(max_size=40))
def test_vault_record_decoder(fuzz_vault, sealed, metadata):
    from tests.reliability.helpers import open_vault

    env, db = fuzz_vault
    conn = sqlite3.connect(db)
    conn.execute("UPDATE versions SET sealed = ?, metadata = ? WHERE name = 'target'", (sealed, metadata))
    conn.commit()
    conn.close()
    with open_vault(env) as vault:
        with pytest.raises(IntegrityError):
            vault._read("target", None)


@FUZZ
@given(line=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)), position=st.integers(0, 3))
def test_audit_line_parser(tmp_path_factory, line, position):
    from zerotrust_admin.audit import Actor, AuditLog

    home = tmp_path_factory.mktemp("audit")
    log = AuditLog(home / "audit.log")
    for i in range(3):
        log.append(event="secret_access", action="read", resource=f"r{i}", success=True, actor=Actor("u@R", "127.0.0.1", "h"))
    lines = log.path.read_bytes().splitlines(keepends=True)
    lines.insert(position, line if line.endswith(b"\n") else line + b"\n")
    log.path.write_bytes(b"".join(lines))
    try:
        result = log.verify()
    except ZeroTrustError:
        return
    assert not result.ok
    try:
        list(log.records())
    except ZeroTrustError:
        pass


ARGV_WORDS = ["vault", "get", "put", "list", "history", "delete", "import", "export", "audit", "verify", "tail", "config",
              "check", "show", "--json", "--version", "-V", "1", "0", "-1", "--output-file", "-o", "--config", "--destroy",
              "--yes", "--dry-run", "-n", "x", "../x", "a/b", "", "--", "-", "--help", "init", "--value", "--meta", "k=v"]


@FUZZ
@given(argv=st.lists(st.one_of(st.sampled_from(ARGV_WORDS), st.text(max_size=12)), max_size=7))
def test_fastpath_parser(argv):
    from zerotrust_admin.cli import fastpath

    result = fastpath.parse(argv)
    assert result is None or callable(result)


@settings(max_examples=max(40, EXAMPLES // 5), deadline=10000, suppress_health_check=list(HealthCheck), database=None)
@given(argv=st.lists(st.one_of(st.sampled_from(ARGV_WORDS), st.text(max_size=12)), max_size=6))
def test_cli_argument_handling(tmp_path_factory, argv):
    """The real app, in-process: only documented exit codes, never a traceback."""
    from typer.testing import CliRunner

    from zerotrust_admin.cli.app import app

    home = tmp_path_factory.mktemp("clifuzz")
    env = {"ZEROTRUST_HOME": str(home / "h"), "XDG_CONFIG_HOME": str(home / "c"), "ZEROTRUST_PRINCIPAL": "fuzz@R"}
    result = CliRunner().invoke(app, argv, env=env, input=b"")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, ZeroTrustError), repr(result.exception)
    assert result.exit_code in (0, 1, 2, 3, 4, 5, 6, 7)


@pytest.fixture(scope="module")
def fuzz_backup(tmp_path_factory):
    """A real backup (X25519 recipient, so each try costs no scrypt) of a small vault."""
    from zerotrust_admin.keys import KeySourceContext, keyfile
    from zerotrust_admin.vault import Vault
    from zerotrust_admin.vault import backup as bk

    home = tmp_path_factory.mktemp("bkhome")
    ctx = KeySourceContext(config={}, home=home, environ={})
    vault = Vault.create(home / "vault.db", "keyfile", lambda key_id: keyfile.KeyFileSource.create(ctx, key_id))
    for i in range(5):
        vault.put(f"app/s{i}", f"value-{i}".encode() * 20)
    public = bk.generate_identity(home / "identity.key")
    out = home / "vault.ztb"
    bk.create_backup(vault, out, bk.RecipientKek(bk.parse_public(public)))
    vault.close()
    from zerotrust_admin.signing import own_public_key

    # The signer is trusted, so mutations reach every layer behind the signature check too.
    return out.read_bytes(), bk.load_identity(home / "identity.key"), own_public_key(None, home)


@FUZZ
@given(data=st.data())
def test_backup_reader(tmp_path_factory, fuzz_backup, data):
    """Flipped bytes, truncations, insertions and garbage: always an error of the
    hierarchy (exit 5 for damage), never a partial result or another exception."""
    from zerotrust_admin.vault import backup as bk

    pristine, identity, trusted = fuzz_backup
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "garbage"]))
    blob = bytearray(pristine)
    if kind == "flip":
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "insert":
        at = data.draw(st.integers(0, len(blob)))
        blob[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    else:
        blob = bytearray(data.draw(st.binary(max_size=600)))
    path = tmp_path_factory.mktemp("bk") / "mutated.ztb"
    path.write_bytes(bytes(blob))
    with pytest.raises(ZeroTrustError) as caught:
        bk.verify_backup(path, identity=identity, trusted=trusted)
    assert caught.value.exit_code in (2, 4, 5), (kind, caught.value.exit_code, caught.value.message)
