"""Master key on a real PKCS#11 token (SoftHSM2): init, wrap/unwrap inside the
HSM, faults (wrong PIN, missing module/token/key), rotation, migration both ways,
the aws-cloudhsm PIN convention, and a crash during an HSM rotation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.keyhelpers import check_all, cli_json, db_rows, fill, meta, run_with_crash
from tests.servers import SoftHSM, softhsm  # noqa: F401  (fixture)


def write_config(zt_env: dict, text: str) -> Path:
    path = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def hsm_home(cli, zt_env, softhsm):  # noqa: F811
    write_config(zt_env, softhsm.config_block())
    zt_env.update(softhsm.env)
    result = cli("init", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["master_source"] == "pkcs11"
    return Path(zt_env["ZEROTRUST_HOME"])


def test_init_creates_non_extractable_token_key(hsm_home, softhsm, cli, zt_env):  # noqa: F811
    master_id = meta(hsm_home)["master_key_id"]
    assert softhsm.secret_keys() == [("zt-master", master_id.encode().hex())]
    out = softhsm.probe(
        "k = session.get_key(label='zt-master')\n"
        "print(k[Attribute.EXTRACTABLE], k[Attribute.SENSITIVE], k[Attribute.TOKEN], k[Attribute.VALUE_LEN], k.key_type == KeyType.AES)\n"
        "try:\n    k[Attribute.VALUE]\n    print('READABLE')\nexcept pkcs11.exceptions.AttributeSensitive:\n    print('sensitive')\n"
    )
    assert out.split() == ["False", "True", "True", "32", "True", "sensitive"]
    assert not (hsm_home / "master.key").exists()
    assert cli("vault", "put", "db/password", input=b"hunter2-\x00-bytes").code == 0
    got = cli("vault", "get", "db/password")
    assert got.code == 0 and got.out == b"hunter2-\x00-bytes"
    status = cli_json(cli, "keys", "status")
    assert next(k for k in status["keys"] if k["kind"] == "master")["source"] == "pkcs11"


def test_wrap_binds_associated_data_inside_the_hsm(hsm_home, softhsm, zt_env):  # noqa: F811
    script = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.keyhelpers import open_vault\n"
        "from zerotrust_admin.keys import UnwrapFailed\n"
        "vault, _, _ = open_vault(dict(os.environ))\n"
        "src = vault.key_source\n"
        "blob = src.wrap(b'k' * 32, b'slot-a')\n"
        "assert src.unwrap(blob, b'slot-a') == b'k' * 32\n"
        "for aad, b in ((b'slot-b', blob), (b'slot-a', blob[:-1] + bytes([blob[-1] ^ 1])), (b'slot-a', blob[:20])):\n"
        "    try:\n        src.unwrap(b, aad)\n        print('OPENED')\n    except UnwrapFailed:\n        print('refused')\n"
        "print(len(blob), blob[12:44] != b'k' * 32)\n"
        "vault.close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, **zt_env}, capture_output=True, text=True, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["refused", "refused", "refused", "60", "True"]
    # The data key in the vault is wrapped by the token key (nonce + 32 + tag), never stored in clear.
    wrapped = db_rows(hsm_home, "SELECT wrapped FROM deks")[0][0]
    assert len(wrapped) == 12 + 32 + 16


def test_wrong_pin_is_denied(hsm_home, cli, softhsm):  # noqa: F811
    softhsm.pin_file.write_text("654321")
    result = cli("vault", "list")
    assert result.code == 4, result.err
    assert "PIN" in result.err and "654321" not in result.err and result.err.count("error:") == 1
    before = meta(hsm_home)
    assert cli("rotate-keys", "--master").code == 4
    assert meta(hsm_home) == before, "a refused PIN must change nothing"
    softhsm.pin_file.write_text(softhsm.pin)
    assert cli("vault", "list").code == 0


def test_missing_module_token_and_key(hsm_home, cli, zt_env, softhsm, tmp_path):  # noqa: F811
    before = meta(hsm_home)
    write_config(zt_env, softhsm.config_block().replace(softhsm.module, "/nonexistent/libpkcs11.so"))
    result = cli("vault", "list")
    assert result.code == 6 and "does not exist" in result.err
    not_pkcs11 = tmp_path / "libnot.so"
    not_pkcs11.write_bytes(b"\x7fELF garbage")
    write_config(zt_env, softhsm.config_block().replace(softhsm.module, str(not_pkcs11)))
    result = cli("vault", "list")
    assert result.code == 6 and "not a usable PKCS#11 library" in result.err
    # Another token label in the configuration than the vault records: refused
    # before the module is loaded (threat-model V1; tests/security/test_tm_keysource.py).
    write_config(zt_env, softhsm.config_block().replace("token_label: zt-test", "token_label: no-such-token"))
    result = cli("vault", "list")
    assert result.code == 5 and "token zt-test" in result.err and "token no-such-token" in result.err, result.err
    write_config(zt_env, softhsm.config_block())
    # The configured token is not there (its directory moved away): unavailable.
    tokens = softhsm.dir / "tokens"
    tokens.rename(softhsm.dir / "tokens-away")
    tokens.mkdir()
    try:
        result = cli("vault", "list")
        assert result.code == 6 and "zt-test" in result.err, result.err
    finally:
        tokens.rmdir()
        (softhsm.dir / "tokens-away").rename(tokens)
    assert meta(hsm_home) == before
    softhsm.probe("session.get_key(label='zt-master').destroy()\n")
    result = cli("vault", "list")
    assert result.code == 3 and "not found" in result.err


def test_rotation_creates_new_token_key_and_rewraps(hsm_home, cli, zt_env, softhsm):  # noqa: F811
    expected = fill(zt_env, 30, versions=2)
    old_id = meta(hsm_home)["master_key_id"]
    report = cli_json(cli, "rotate-keys", "--master")
    new_id = report["rotated"][0]["new_master_key_id"]
    assert new_id != old_id and report["rotated"][0]["data_keys"] == 1
    # The old token key is destroyed; exactly the new one remains.
    assert softhsm.secret_keys() == [("zt-master", new_id.encode().hex())]
    assert set(db_rows(hsm_home, "SELECT master_key_id FROM deks")) == {(new_id,)}
    check_all(zt_env, expected)
    assert "master_pending" not in meta(hsm_home) and "master_retiring" not in meta(hsm_home)


def test_migrate_key_file_to_hsm_and_back(cli, zt_env, softhsm):  # noqa: F811
    zt_env.update(softhsm.env)
    assert cli("init").code == 0
    home = Path(zt_env["ZEROTRUST_HOME"])
    expected = fill(zt_env, 40, versions=2)
    cli_json(cli, "rotate-keys", "--session")
    # The vault will open only with a configured HSM (threat-model V1): a block not enabled is refused up front.
    write_config(zt_env, softhsm.config_block().replace("enabled: true", "enabled: false"))
    refused = cli("keys", "migrate", "--to", "hsm", "--yes")
    assert refused.code == 2 and "does not enable it" in refused.err, refused.err
    assert meta(home)["master_source"] == "keyfile" and softhsm.secret_keys() == []
    write_config(zt_env, softhsm.config_block())
    check_all(zt_env, expected)  # the key-file vault opens while the configuration already describes the HSM
    dry = cli_json(cli, "keys", "migrate", "--to", "hsm", "--dry-run")
    assert dry["from"] == "keyfile" and dry["to"] == "pkcs11" and (home / "master.key").exists()
    assert cli("keys", "migrate", "--to", "hsm").code == 2  # needs --yes without a terminal
    moved = cli_json(cli, "keys", "migrate", "--to", "hsm", "--yes")
    assert moved["from"] == "keyfile" and moved["to"] == "pkcs11"
    assert not (home / "master.key").exists(), "the old key file must be destroyed after the switch"
    assert softhsm.secret_keys() == [("zt-master", moved["new_master_key_id"].encode().hex())]
    assert meta(home)["master_source"] == "pkcs11"
    check_all(zt_env, expected)
    back = cli_json(cli, "keys", "migrate", "--to", "keyfile", "--yes")
    assert back["from"] == "pkcs11" and back["to"] == "keyfile"
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    assert softhsm.secret_keys() == []
    assert meta(home)["master_source"] == "keyfile"
    check_all(zt_env, expected)
    records = [json.loads(line) for line in (home / "audit.log").read_text().splitlines()]
    migrations = [r for r in records if r["event"] == "key_rotation" and r["details"].get("mode") == "migrate"]
    assert [(r["details"]["source"], r["details"]["target"], r["success"]) for r in migrations] == [("keyfile", "pkcs11", True), ("pkcs11", "keyfile", True)]


def test_aws_cloudhsm_pin_convention(cli, zt_env, tmp_path):
    """provider aws-cloudhsm logs in with "<hsm_username>:<hsm_password>" (CloudHSM's
    PKCS#11 convention); SoftHSM stands in for the CloudHSM library here."""
    hsm = SoftHSM(label="cloudhsm-standin", pin="cu_admin:Sup3r-s3cret")
    try:
        password_file = tmp_path / "hsm-password"
        password_file.write_text("Sup3r-s3cret")
        os.chmod(password_file, 0o600)
        write_config(zt_env, (
            "encryption:\n  hsm:\n    enabled: true\n    provider: aws-cloudhsm\n    config:\n"
            f"      module: {hsm.module}\n      token_label: cloudhsm-standin\n      cluster_id: cluster-1234abcd\n"
            f"      hsm_username: cu_admin\n      hsm_password_file: {password_file}\n      key_label: zt-master\n"))
        zt_env.update(hsm.env)
        assert cli("config", "check").code == 0
        result = cli("init", "--json")
        assert result.code == 0, result.err
        assert cli("vault", "put", "x", input=b"y").code == 0
        assert cli("vault", "get", "x").out == b"y"
        password_file.write_text("wrong-password")
        assert cli("vault", "get", "x").code == 4
    finally:
        hsm.cleanup()


@pytest.mark.parametrize("kill_at", ["pending-recorded", "new-key-written", "committed"])
def test_sigkill_during_hsm_rotation(hsm_home, cli, zt_env, softhsm, kill_at):  # noqa: F811
    expected = fill(zt_env, 50)
    old_id = meta(hsm_home)["master_key_id"]
    proc = run_with_crash({**os.environ, **zt_env}, kill_at, 1, "rotate", "master")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    check_all(zt_env, expected)
    in_force = meta(hsm_home)["master_key_id"]
    assert (in_force == old_id) == (kill_at != "committed")
    cli_json(cli, "rotate-keys")  # finishes / cleans up the interrupted change
    current = meta(hsm_home)["master_key_id"]
    assert softhsm.secret_keys() == [("zt-master", current.encode().hex())]
    check_all(zt_env, expected)


@pytest.mark.parametrize("kill_at", ["pending-recorded", "new-key-written", "committed", "retired-destroyed"])
def test_sigkill_during_migration_to_hsm(cli, zt_env, softhsm, kill_at):  # noqa: F811
    zt_env.update(softhsm.env)
    assert cli("init").code == 0
    home = Path(zt_env["ZEROTRUST_HOME"])
    expected = fill(zt_env, 40)
    write_config(zt_env, softhsm.config_block())
    proc = run_with_crash({**os.environ, **zt_env}, kill_at, 1, "migrate", "hsm")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    check_all(zt_env, expected)
    switched = meta(home)["master_source"] == "pkcs11"
    assert switched == (kill_at in ("committed", "retired-destroyed"))
    if switched:
        cli_json(cli, "rotate-keys")  # destroys the old key file the crash left behind
    else:
        cli_json(cli, "keys", "migrate", "--to", "hsm", "--yes")
    assert meta(home)["master_source"] == "pkcs11"
    assert not (home / "master.key").exists()
    assert softhsm.secret_keys() == [("zt-master", meta(home)["master_key_id"].encode().hex())]
    check_all(zt_env, expected)
