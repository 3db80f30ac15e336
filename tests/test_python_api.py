"""The seed's two Python examples, run verbatim from docs/python-api.md.

Example 1 gets STS credentials from a real moto server and uses them; example 2
loads a config whose redis.password comes from a real OpenBao (``vault:``), a
``password_file`` or the ``ZEROTRUST_REDIS_PASSWORD`` override.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.aws_helpers import aws_env, audit_records, base_aws, write_config
from tests.conftest import ROOT
from tests.servers import moto_server, openbao  # noqa: F401  (fixtures)
from zerotrust_admin.aws.names import session_name

DOC = ROOT / "docs" / "python-api.md"


def code_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def run(code: str, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=str(cwd), capture_output=True, timeout=120)


def test_the_page_has_the_two_examples():
    blocks = code_blocks()
    assert len(blocks) == 2
    assert "from zerotrust_kerberos import SecretManager" in blocks[0] and "get_aws_credentials(role_arn=" in blocks[0]
    assert "ConfigLoader.load(" in blocks[1] and 'config.get_secret("redis.password")' in blocks[1]


def test_example_1_secret_manager(tmp_path, zt_env, cli, moto_server):
    cfg = write_config(tmp_path / "cfg" / "config.yaml", base_aws(moto_server.endpoint_url))
    env = {**zt_env, **aws_env(moto_server), "ZEROTRUST_CONFIG": str(cfg), "AWS_ENDPOINT_URL": moto_server.endpoint_url,
           "AWS_DEFAULT_REGION": "us-east-1", "ZEROTRUST_PRINCIPAL": "svc/analyst@EXAMPLE.COM",
           "PYTHONPATH": str(ROOT)}
    assert cli("init").code == 0
    proc = run(code_blocks()[0], env, tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == f"arn:aws:sts::123456789012:assumed-role/DataAnalyst/{session_name('svc/analyst@EXAMPLE.COM')}"
    assert "secret=<wiped>" in lines[1] and "SecretAccessKey" not in lines[1]
    issued = [r for r in audit_records(tmp_path / "home") if r["event"] == "credential_issue"]
    assert len(issued) == 1 and issued[0]["user"] == "svc/analyst@EXAMPLE.COM"


CHECK = "\nimport sys; sys.stdout.write(redis_password.reveal().decode())\n"


@pytest.mark.parametrize("how", ["vault", "file", "env"])
def test_example_2_config_loader(tmp_path, zt_env, openbao, how):
    from zerotrust_admin.config import load_config
    from zerotrust_admin.providers import open_provider

    value = "redis-" + os.urandom(6).hex()
    env = {**zt_env, "VAULT_ADDR": openbao.url, "VAULT_ROLE_ID": openbao.role_id, "VAULT_SECRET_ID": openbao.new_secret_id(),
           "PYTHONPATH": str(ROOT)}
    if how == "vault":
        redis = {"password": "vault:redis/password"}
        bao_cfg = write_config(tmp_path / "bao.yaml", {}, secrets={"provider": "hashicorp", "config": openbao.settings()})
        provider = open_provider("hashicorp", load_config(bao_cfg, env), audited=False)
        provider.put("redis/password", value.encode())
        provider.close()
    elif how == "file":
        secret_file = tmp_path / "redis.pass"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, value.encode() + b"\n")
        os.close(fd)
        redis = {"password_file": str(secret_file)}
    else:
        redis = {"password": "vault:never/read"}  # the environment override wins
        env["ZEROTRUST_REDIS_PASSWORD"] = value
    write_config(tmp_path / "config.yaml", {}, redis=redis)
    proc = run(code_blocks()[1] + CHECK, env, tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert proc.stdout.decode() == value
    if how == "vault":
        reads = [r for r in audit_records(tmp_path / "home") if r["event"] == "secret_access" and r["resource"] == "redis/password"]
        assert reads and reads[-1]["success"] is True


# --- access policies and MFA: the CLI's guard, with the API caller's principal ------
def _policy_file(path, policies: list, **sections):
    return write_config(path, {}, access={"policies": policies}, **sections)


ALICE_READS_APP = [{"principals": ["alice@EXAMPLE.COM"], "secrets": ["app/*"], "actions": ["read"], "effect": "allow"}]


def _denial_fields(record: dict) -> dict:
    return {k: record[k] for k in ("level", "event", "user", "action", "resource", "source_ip", "success", "details")}


def test_get_secret_and_vault_references_follow_the_access_policies(cli, initialized, zt_env, tmp_path):
    from zerotrust_admin.errors import DeniedError
    from zerotrust_kerberos import ConfigLoader, SecretManager

    assert cli("vault", "put", "app/db", input=b"app-value").code == 0
    assert cli("vault", "put", "ops/root", input=b"ops-value").code == 0
    cfg = _policy_file(tmp_path / "cfg" / "config.yaml", ALICE_READS_APP)
    env = {**zt_env, "ZEROTRUST_CONFIG": str(cfg)}
    with SecretManager(environ=env) as manager:
        with manager.get_secret("app/db") as secret:
            assert secret.reveal() == b"app-value"
        with pytest.raises(DeniedError) as err:
            manager.get_secret("ops/root")
    assert err.value.exit_code == 4 and "alice@EXAMPLE.COM may not read ops/root" in err.value.message
    assert "ops-value" not in str(err.value) and "ops-value" not in (err.value.hint or "")
    assert cli("vault", "get", "ops/root", env={"ZEROTRUST_CONFIG": str(cfg)}).code == 4
    denials = [r for r in audit_records(initialized) if r["event"] == "access_denied"]
    assert len(denials) == 2 and _denial_fields(denials[0]) == _denial_fields(denials[1])  # API audited exactly like the CLI

    for name, allowed in (("app/db", True), ("ops/root", False)):
        refs = _policy_file(tmp_path / "cfg" / f"{name.replace('/', '-')}.yaml", ALICE_READS_APP, redis={"password": f"vault:{name}"})
        config = ConfigLoader.load(config_file=refs, environ=zt_env)
        if allowed:
            with config.get_secret("redis.password") as secret:
                assert secret.reveal() == b"app-value"
        else:
            with pytest.raises(DeniedError, match="may not read ops/root"):
                config.get_secret("redis.password")
    assert len([r for r in audit_records(initialized) if r["event"] == "access_denied"]) == 3


def test_get_secret_of_a_sensitive_secret_needs_a_code_every_call_and_never_prompts(cli, initialized, zt_env):
    import time

    from tests.test_mfa import _enroll, _wait_fresh_step
    from zerotrust_admin.errors import DeniedError
    from zerotrust_admin.mfa import totp
    from zerotrust_kerberos import SecretManager

    seed = _enroll(cli)
    assert cli("vault", "put", "prod/db", "--sensitive", input=b"sensitive-value").code == 0
    with SecretManager(environ=zt_env) as manager:
        with pytest.raises(DeniedError) as err:
            manager.get_secret("prod/db")
        assert err.value.exit_code == 4 and "needs an MFA code" in err.value.message and "otp=" in err.value.hint
        with pytest.raises(DeniedError, match="wrong MFA code"):
            manager.get_secret("prod/db", otp="000000")
        _wait_fresh_step()
        code = totp.totp(seed, time.time())
        with manager.get_secret("prod/db", otp=code) as secret:
            assert secret.reveal() == b"sensitive-value"
        with pytest.raises(DeniedError, match="needs an MFA code"):  # one code proves one read, not the manager's lifetime
            manager.get_secret("prod/db")
        with pytest.raises(DeniedError, match="already used"):
            manager.get_secret("prod/db", otp_source=lambda: code)
    with SecretManager(environ={**zt_env, "ZEROTRUST_OTP": code}) as from_env:
        with pytest.raises(DeniedError, match="already used"):  # $ZEROTRUST_OTP was read, and codes are single-use
            from_env.get_secret("prod/db")
    outcomes = [(r["success"], (r.get("details") or {}).get("reason")) for r in audit_records(initialized)
                if r["event"] == "mfa" and r["resource"] == "prod/db"]
    assert outcomes == [(False, "no_code"), (False, "wrong_code"), (True, None), (False, "no_code"), (False, "replayed"), (False, "replayed")]
