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
