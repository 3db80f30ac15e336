"""The integrated vault at library level: versions, listing, deletion, bulk
import/export, binary values, and the AEAD binding that turns every kind of
in-file tampering into IntegrityError (never wrong plaintext)."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pytest

from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.errors import (
    AlreadyExistsError,
    IntegrityError,
    NotFoundError,
    UsageError,
    WrongKeyError,
)
from zerotrust_admin.keys import KeySourceContext, open_source
from zerotrust_admin.keys.envkey import EnvKeySource
from zerotrust_admin.keys.keyfile import KeyFileSource
from zerotrust_admin.keys.passphrase import PassphraseSource
from zerotrust_admin.vault import Vault

ACTOR = Actor(user="alice@EXAMPLE.COM", source_ip="192.0.2.10", host="testhost")
FAST_SCRYPT_N = 2**10  # test-only: the default 2**17 costs ~0.3 s per derivation


def kctx(home: Path, config: dict | None = None, environ: dict | None = None) -> KeySourceContext:
    return KeySourceContext(config=config or {}, home=home, environ=environ or {})


def new_vault(home: Path, *, kind: str = "keyfile", config: dict | None = None, environ: dict | None = None, audit: bool = True) -> Vault:
    ctx = kctx(home, config, environ)
    cls = {"keyfile": KeyFileSource, "env": EnvKeySource}[kind]
    log = AuditLog(home / "audit.log") if audit else None
    return Vault.create(home / "vault.db", kind, lambda key_id: cls.create(ctx, key_id), audit=log, actor=ACTOR if audit else None)


def reopen(home: Path, *, config: dict | None = None, environ: dict | None = None) -> Vault:
    ctx = kctx(home, config, environ)
    return Vault.open(home / "vault.db", lambda kind, params: open_source(kind, ctx, params), audit=AuditLog(home / "audit.log"), actor=ACTOR)


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def vault(home):
    v = new_vault(home)
    yield v
    v.close()


def value_of(v: Vault, name: str, version: int | None = None) -> bytes:
    secret, _info = v.get(name, version)
    with secret:
        return secret.reveal()


# --- basic operations --------------------------------------------------------
def test_put_get_versions(vault):
    first = vault.put("db/password", b"one")
    second = vault.put("db/password", b"two", metadata={"owner": "dba"})
    assert (first.version, second.version) == (1, 2)
    assert value_of(vault, "db/password") == b"two"
    assert value_of(vault, "db/password", 1) == b"one"
    secret, info = vault.get("db/password", 2)
    assert info.metadata == {"owner": "dba"} and info.current and info.size == 3
    assert "two" not in repr(secret)
    with pytest.raises(NotFoundError):
        vault.get("db/password", 3)
    with pytest.raises(NotFoundError):
        vault.get("db/nothing")


def test_list_with_prefix_is_sorted_and_never_leaks_outside_prefix(vault):
    for name in ["app/b", "app/a", "application", "app2/x", "db/password", "app/sub/c"]:
        vault.put(name, b"v")
    assert [i.name for i in vault.list()] == sorted(["app/b", "app/a", "application", "app2/x", "db/password", "app/sub/c"])
    assert [i.name for i in vault.list("app/")] == ["app/a", "app/b", "app/sub/c"]
    assert [i.name for i in vault.list("app")] == ["app/a", "app/b", "app/sub/c", "app2/x", "application"]
    assert [i.name for i in vault.list("zzz")] == []
    with pytest.raises(UsageError):
        vault.list("../")


def test_history_records_who_and_when(vault):
    for value in (b"a", b"bb", b"ccc"):
        vault.put("svc/token", value)
    history = vault.history("svc/token")
    assert [(h.version, h.size, h.current, h.created_by) for h in history] == [
        (1, 1, False, ACTOR.user), (2, 2, False, ACTOR.user), (3, 3, True, ACTOR.user)]
    assert all(h.created.endswith("Z") for h in history)
    assert not any(hasattr(h, "value") for h in history)


def test_soft_delete_and_undelete(vault):
    vault.put("a/x", b"1")
    vault.put("a/x", b"2")
    vault.delete("a/x")
    with pytest.raises(NotFoundError, match="deleted"):
        vault.get("a/x")
    assert [i.name for i in vault.list()] == []
    assert [i.name for i in vault.list(include_deleted=True)] == ["a/x"]
    vault.delete("a/x")  # idempotent
    vault.undelete("a/x")
    assert value_of(vault, "a/x") == b"2"
    assert value_of(vault, "a/x", 1) == b"1"
    # A put on a deleted secret revives it with a new version.
    vault.delete("a/x")
    assert vault.put("a/x", b"3").version == 3
    assert value_of(vault, "a/x") == b"3"
    with pytest.raises(NotFoundError):
        vault.delete("a/none")


def test_destroy_removes_ciphertext_bytes_from_the_file(home):
    v = new_vault(home)
    big = os.urandom(6000)  # spills into overflow pages
    v.put("keep/me", b"keep")
    v.put("doomed/small", b"tiny-secret")
    v.put("doomed/small", b"second-version")
    v.put("doomed/big", big)
    conn = sqlite3.connect(home / "vault.db")
    blobs = [row[0] for row in conn.execute("SELECT sealed FROM versions WHERE name LIKE 'doomed/%'")]
    conn.close()
    assert len(blobs) == 3
    assert v.destroy("doomed/small") == 2
    assert v.destroy("doomed/big") == 1
    with pytest.raises(NotFoundError):
        v.get("doomed/small")
    with pytest.raises(NotFoundError):
        v.undelete("doomed/small")
    assert value_of(v, "keep/me") == b"keep"
    v.close()
    files = [p for p in home.iterdir() if p.name.startswith("vault.db")]
    data = b"".join(p.read_bytes() for p in files)
    for blob in blobs:
        # Neither the whole blob nor any 16-byte window of its ciphertext survives.
        assert blob not in data
        for start in range(0, len(blob) - 16, 16):
            assert blob[start:start + 16] not in data


def test_empty_and_oversized_values_are_refused(vault):
    with pytest.raises(UsageError, match="empty"):
        vault.put("x", b"")
    with pytest.raises(UsageError, match="limit"):
        vault.put("x", b"a" * ((1 << 20) + 1))
    with pytest.raises(NotFoundError):
        vault.get("x")


@pytest.mark.parametrize("bad", ["../x", "a//b", "/abs", "x/..", "a" * 257, "a b", "é", "", "x/./y", "a\x00b"])
def test_bad_names_are_usage_errors(vault, bad):
    with pytest.raises(UsageError, match="invalid secret name"):
        vault.put(bad, b"v")


def test_longest_legal_name(vault):
    name = "n" * 256
    vault.put(name, b"v")
    assert value_of(vault, name) == b"v"


def test_binary_values_are_byte_exact(vault):
    values = {
        "bin/all-bytes": bytes(range(256)) * 4,
        "bin/nul": b"\x00",
        "bin/crlf": b"a\r\nb\r\n",
        "bin/random": os.urandom(4096),
        "bin/invalid-utf8": b"\xff\xfe\xc3(",
    }
    for name, value in values.items():
        vault.put(name, value)
    for name, value in values.items():
        assert value_of(vault, name) == value


def test_import_many_is_idempotent(vault):
    items = [("env/A", b"1"), ("env/B", b"2"), ("env/C", b"\x00\xff")]
    first = vault.import_many(items)
    assert first.to_dict() == {"created": 3, "updated": 0, "unchanged": 0}
    again = vault.import_many(items)
    assert again.to_dict() == {"created": 0, "updated": 0, "unchanged": 3}
    assert [h.version for h in vault.history("env/A")] == [1]
    changed = vault.import_many([("env/A", b"1"), ("env/B", b"22"), ("env/D", b"4")])
    assert changed.to_dict() == {"created": 1, "updated": 1, "unchanged": 1}
    assert value_of(vault, "env/B") == b"22"


def test_import_many_without_compare_never_reads_and_writes_every_item(vault, monkeypatch):
    vault.import_many([("env/A", b"1"), ("env/B", b"2")])
    # A write-only caller must learn nothing: no current value is read at all.
    for method in ("_read", "_read_in"):
        monkeypatch.setattr(type(vault), method, lambda *a, **k: pytest.fail("compare=False read a current value"))
    result = vault.import_many([("env/A", b"1"), ("env/B", b"other"), ("env/C", b"3")], compare=False)
    assert result.to_dict() == {"created": 1, "updated": 2, "unchanged": 0}
    assert result.compared is False
    monkeypatch.undo()
    assert [h.version for h in vault.history("env/A")] == [1, 2]  # the same value, written again as a new version
    assert value_of(vault, "env/B") == b"other"


def test_import_many_validates_everything_before_writing(vault):
    vault.put("env/A", b"old")
    with pytest.raises(UsageError):
        vault.import_many([("env/A", b"new"), ("env/B", b"ok"), ("../bad", b"x")])
    with pytest.raises(UsageError):
        vault.import_many([("env/A", b"new"), ("env/E", b"")])
    assert value_of(vault, "env/A") == b"old"
    assert [i.name for i in vault.list()] == ["env/A"]


def test_export_all_yields_current_values_of_live_secrets(vault):
    vault.put("e/a", b"1")
    vault.put("e/a", b"2")
    vault.put("e/b", b"\x00bin")
    vault.put("f/c", b"3")
    vault.put("e/gone", b"x")
    vault.delete("e/gone")
    exported = {name: secret.reveal() for name, secret, _info in vault.export_all("e/")}
    assert exported == {"e/a": b"2", "e/b": b"\x00bin"}
    assert {name for name, _s, _i in vault.export_all()} == {"e/a", "e/b", "f/c"}


def test_create_refuses_to_overwrite(home, vault):
    with pytest.raises(AlreadyExistsError):
        new_vault(home)


# --- tampering: AAD binding ----------------------------------------------------
def _tamper(home: Path, *statements: tuple) -> None:
    conn = sqlite3.connect(home / "vault.db", isolation_level=None)
    for sql, args in statements:
        conn.execute(sql, args)
    conn.close()


def _sealed(home: Path, name: str, version: int = 1) -> bytes:
    conn = sqlite3.connect(home / "vault.db")
    try:
        return conn.execute("SELECT sealed FROM versions WHERE name = ? AND version = ?", (name, version)).fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def two_secrets(home):
    v = new_vault(home)
    v.put("app/one", b"value-one")
    v.put("app/two", b"value-two")
    v.close()
    return home


def _assert_integrity_error_everywhere(home: Path, *reads: tuple[str, int | None]) -> None:
    with reopen(home) as v:
        for name, version in reads:
            with pytest.raises(IntegrityError) as caught:
                v.get(name, version)
            assert "value-" not in str(caught.value) and "value-" not in (caught.value.hint or "")


def test_swapping_sealed_blobs_between_rows_is_detected(two_secrets):
    one, two = _sealed(two_secrets, "app/one"), _sealed(two_secrets, "app/two")
    _tamper(two_secrets,
            ("UPDATE versions SET sealed = ? WHERE name = 'app/one'", (two,)),
            ("UPDATE versions SET sealed = ? WHERE name = 'app/two'", (one,)))
    _assert_integrity_error_everywhere(two_secrets, ("app/one", None), ("app/two", None))


def test_moving_a_version_to_another_name_is_detected(two_secrets):
    # app/two's only version is replaced by app/one's row, renamed.
    _tamper(two_secrets,
            ("DELETE FROM versions WHERE name = 'app/two'", ()),
            ("UPDATE versions SET name = 'app/two' WHERE name = 'app/one'", ()))
    _assert_integrity_error_everywhere(two_secrets, ("app/two", None))


def test_moving_a_version_to_another_version_number_is_detected(home):
    with new_vault(home) as v:
        v.put("app/one", b"value-old")
        v.put("app/one", b"value-new")
    # Roll back by making the old ciphertext claim to be version 2.
    old = _sealed(home, "app/one", 1)
    _tamper(home, ("UPDATE versions SET sealed = ? WHERE name = 'app/one' AND version = 2", (old,)))
    _assert_integrity_error_everywhere(home, ("app/one", None), ("app/one", 2))
    with reopen(home) as v:
        assert value_of(v, "app/one", 1) == b"value-old"


def test_changing_metadata_is_detected(home):
    with new_vault(home) as v:
        v.put("app/one", b"value-one", metadata={"owner": "dba"})
    _tamper(home, ("UPDATE versions SET metadata = ? WHERE name = 'app/one'", ('{"owner":"mallory"}',)))
    _assert_integrity_error_everywhere(home, ("app/one", None))


def test_flipping_a_ciphertext_bit_is_detected(two_secrets):
    blob = bytearray(_sealed(two_secrets, "app/one"))
    blob[15] ^= 0x01
    _tamper(two_secrets, ("UPDATE versions SET sealed = ? WHERE name = 'app/one'", (bytes(blob),)))
    _assert_integrity_error_everywhere(two_secrets, ("app/one", None))
    with reopen(two_secrets) as v:
        assert value_of(v, "app/two") == b"value-two"


def test_editing_a_wrapped_dek_is_detected(two_secrets):
    conn = sqlite3.connect(two_secrets / "vault.db")
    dek_id, wrapped = conn.execute("SELECT id, wrapped FROM deks").fetchone()
    conn.close()
    edited = bytearray(wrapped)
    edited[20] ^= 0x80
    _tamper(two_secrets, ("UPDATE deks SET wrapped = ? WHERE id = ?", (bytes(edited), dek_id)))
    _assert_integrity_error_everywhere(two_secrets, ("app/one", None), ("app/two", None))


def test_swapping_vault_ids_is_detected(two_secrets):
    # A ciphertext copied from another vault (different vault_id) does not open here.
    other = two_secrets.parent / "other"
    with new_vault(other) as v:
        v.put("app/one", b"value-foreign")
    _tamper(two_secrets, ("UPDATE versions SET sealed = ? WHERE name = 'app/one'", (_sealed(other, "app/one"),)))
    _assert_integrity_error_everywhere(two_secrets, ("app/one", None))


def test_current_version_pointing_nowhere_is_integrity(two_secrets):
    _tamper(two_secrets, ("UPDATE secrets SET current_version = 9 WHERE name = 'app/one'", ()))
    _assert_integrity_error_everywhere(two_secrets, ("app/one", None))


def test_tampered_reads_are_audited_as_failures(two_secrets):
    _tamper(two_secrets, ("UPDATE versions SET metadata = '{\"x\":\"y\"}' WHERE name = 'app/one'", ()))
    _assert_integrity_error_everywhere(two_secrets, ("app/one", None))
    last = AuditLog(two_secrets / "audit.log").tail(1)[0]
    assert (last["action"], last["resource"], last["success"], last["details"]["error"]) == ("read", "app/one", False, "IntegrityError")


# --- master key sources ---------------------------------------------------------
def test_wrong_master_key_is_wrong_key_error(two_secrets):
    (two_secrets / "master.key").write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    with pytest.raises(WrongKeyError):
        reopen(two_secrets)
    other = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WrongKeyError):
        reopen(two_secrets, config={"encryption": {"key": other}})
    last = AuditLog(two_secrets / "audit.log").tail(1)[0]
    assert (last["action"], last["success"]) == ("unlock", False)


def test_env_key_and_key_file_are_interchangeable(home):
    with new_vault(home) as v:
        v.put("k/a", b"from-keyfile")
    key_text = (home / "master.key").read_text().strip()
    (home / "master.key").rename(home / "master.key.moved")
    with reopen(home, config={"encryption": {"key": key_text}}) as v:
        assert value_of(v, "k/a") == b"from-keyfile"
        v.put("k/b", b"from-env")

    env_home = home.parent / "envhome"
    env_key = base64.b64encode(os.urandom(32)).decode()
    with new_vault(env_home, kind="env", config={"encryption": {"key": env_key}}) as v:
        assert v.meta["master_source"] == "env"
        v.put("k/c", b"env-created")
    assert not (env_home / "master.key").exists()
    (env_home / "master.key").write_text(env_key + "\n")
    os.chmod(env_home / "master.key", 0o600)
    with reopen(env_home) as v:
        assert value_of(v, "k/c") == b"env-created"


def test_key_file_source_honours_encryption_key_file(tmp_path):
    home = tmp_path / "home"
    key_path = tmp_path / "keys" / "vault.key"
    cfg = {"encryption": {"key_file": str(key_path)}}
    with new_vault(home, config=cfg) as v:
        v.put("a", b"1")
    assert key_path.exists() and not (home / "master.key").exists()
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    assert len(base64.b64decode(key_path.read_bytes().strip())) == 32
    with reopen(home, config=cfg) as v:
        assert value_of(v, "a") == b"1"


def test_passphrase_source_round_trip_and_wrong_passphrase(home):
    env = {"ZEROTRUST_PASSPHRASE": "correct horse battery staple"}
    ctx = kctx(home, environ=env)
    v = Vault.create(home / "vault.db", "passphrase", lambda key_id: PassphraseSource.create(ctx, key_id, scrypt_n=FAST_SCRYPT_N))
    v.put("p/a", b"pass-protected")
    v.close()
    params = json.loads(sqlite3.connect(home / "vault.db").execute("SELECT value FROM meta WHERE key = 'master_params'").fetchone()[0])
    assert params["kdf"]["algorithm"] == "scrypt" and params["kdf"]["n"] == FAST_SCRYPT_N
    assert (params["kdf"]["r"], params["kdf"]["p"]) == (8, 1) and len(bytes.fromhex(params["kdf"]["salt_hex"])) == 16
    with reopen(home, environ=env) as v:
        assert value_of(v, "p/a") == b"pass-protected"
    with pytest.raises(WrongKeyError):
        reopen(home, environ={"ZEROTRUST_PASSPHRASE": "incorrect horse battery staple"})
    with pytest.raises(UsageError, match="no terminal") as caught:
        reopen(home, environ={})
    assert "ZEROTRUST_PASSPHRASE" in caught.value.hint


def test_passphrase_too_short_is_refused(home):
    ctx = kctx(home, environ={"ZEROTRUST_PASSPHRASE": "short"})
    with pytest.raises(UsageError, match="shorter"):
        Vault.create(home / "vault.db", "passphrase", lambda key_id: PassphraseSource.create(ctx, key_id, scrypt_n=FAST_SCRYPT_N))
    assert not (home / "vault.db").exists()
    assert not [p for p in home.iterdir() if p.name.startswith(".vault.db")]


def test_malformed_env_key_is_usage_error(two_secrets):
    with pytest.raises(UsageError, match="base64"):
        reopen(two_secrets, config={"encryption": {"key": "not base64!!"}})
    with pytest.raises(UsageError, match="32 bytes"):
        reopen(two_secrets, config={"encryption": {"key": base64.b64encode(b"short").decode()}})


def test_reprs_never_show_keys(vault):
    text = repr(vault) + repr(vault._key_source)
    key = base64.b64decode((vault.path.parent / "master.key").read_bytes().strip())
    assert "redacted" in repr(vault._key_source)
    assert base64.b64encode(key).decode() not in text and key.hex() not in text


def test_every_operation_is_audited_without_values(home):
    with new_vault(home) as v:
        v.put("aud/a", b"audit-me-not")
        value_of(v, "aud/a")
        list(v.list())
        v.history("aud/a")
        v.delete("aud/a")
        v.undelete("aud/a")
        v.import_many([("aud/b", b"bulk-value-zz")])
        list(v.export_all())
        v.destroy("aud/b")
        with pytest.raises(NotFoundError):
            v.get("aud/none")
    records = AuditLog(home / "audit.log").tail(100)
    actions = [(r["action"], r["success"]) for r in records]
    assert actions == [("write", True), ("read", True), ("list", True), ("history", True), ("delete", True),
                       ("undelete", True), ("import", True), ("export", True), ("destroy", True), ("read", False)]
    raw = (home / "audit.log").read_bytes()
    assert b"audit-me-not" not in raw and b"bulk-value-zz" not in raw
    assert AuditLog(home / "audit.log").verify().ok


def _stderr_on_a_terminal(argv: list[str], env: dict) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdin and stdout are not)."""
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "zerotrust_admin", *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=slave, env=env)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.communicate(timeout=60)
    finally:
        os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


def test_import_says_on_a_terminal_when_values_were_not_compared(cli, initialized, zt_env, tmp_path):
    """Threat model P3 on the integrated vault: a write-only principal's import reads
    nothing; the terminal says why nothing is "unchanged", and the audit record says
    ``compared: false`` (a reader's import: ``compared: true`` and no note)."""
    from tests.security.test_tm_access import ALICE, MALLORY, import_file, policies, records, write_config

    policy = write_config(tmp_path, policies(
        {"principals": [ALICE], "secrets": ["app/*"], "actions": ["read", "write"], "effect": "allow"},
        {"principals": [MALLORY], "secrets": ["app/*"], "actions": ["write"], "effect": "allow"},
    ))
    assert cli("vault", "put", "app/db", input=b"same", env=policy).code == 0
    path = import_file(tmp_path, {"app/db": "same"})
    code, text = _stderr_on_a_terminal(["vault", "import", path], {**zt_env, **policy, "ZEROTRUST_PRINCIPAL": MALLORY})
    assert code == 0, text
    assert "values not compared: you may not read them; every item was written as a new version" in text
    code, text = _stderr_on_a_terminal(["vault", "import", path], {**zt_env, **policy})
    assert code == 0 and "0 updated, 1 unchanged" in text and "not compared" not in text, text
    piped = cli("vault", "import", path, env={**policy, "ZEROTRUST_PRINCIPAL": MALLORY})
    assert piped.code == 0 and "not compared" not in piped.err  # not on a terminal: the counts only
    imports = [r for r in records(Path(zt_env["ZEROTRUST_HOME"])) if r["action"] == "import" and r["success"]]
    assert [r["details"]["compared"] for r in imports] == [False, True, False]
