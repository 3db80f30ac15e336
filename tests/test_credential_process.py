"""``credential_process`` with the real AWS CLI (PyPI ``awscli``) against moto.

A profile in ``$HOME/.aws/config`` runs ``zerotrust-admin credentials get
--format process``; ``aws sts get-caller-identity`` through it must come back
as the assumed role, with the operator principal as the session name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.aws_helpers import aws_env, audit_records, base_aws, role_arn, write_config
from tests.conftest import ROOT, backend_missing
from tests.servers import moto_server  # noqa: F401  (fixture)
from zerotrust_admin.aws.names import session_name

VENV_BIN = Path(sys.executable).parent


def aws_cli() -> str:
    path = VENV_BIN / "aws"
    if path.exists():
        return str(path)
    found = shutil.which("aws")
    if found is None:
        backend_missing("the AWS CLI (pip install awscli)")
    return found


def entry_point() -> str:
    path = VENV_BIN / "zerotrust-admin"
    if not path.exists():
        backend_missing("the zerotrust-admin console script (pip install -e .)")
    return str(path)


@pytest.fixture
def profile_env(tmp_path, zt_env, moto_server):
    home = tmp_path / "awshome"
    (home / ".aws").mkdir(parents=True)
    cfg = write_config(tmp_path / "cfg" / "config.yaml", base_aws(moto_server.endpoint_url))
    arn = role_arn("CliRole")
    (home / ".aws" / "config").write_text(
        "[profile zt]\n"
        "region = us-east-1\n"
        f"credential_process = {entry_point()} credentials get --role-arn {arn} --format process\n"
    )
    env = {**zt_env, **aws_env(moto_server), "HOME": str(home), "ZEROTRUST_CONFIG": str(cfg),
           "ZEROTRUST_PRINCIPAL": "svc/batch@EXAMPLE.COM", "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"), "AWS_EC2_METADATA_DISABLED": "true"}
    return env, arn


def run_aws(env, *args):
    return subprocess.run([aws_cli(), *args], env=env, capture_output=True, timeout=120, cwd=str(ROOT))


def test_aws_cli_uses_our_credential_process(profile_env, moto_server):
    env, arn = profile_env
    # with a vault, so the second command is served from the encrypted cache
    assert subprocess.run([entry_point(), "init"], env=env, capture_output=True, timeout=60).returncode == 0
    for _ in range(2):
        proc = run_aws(env, "sts", "get-caller-identity", "--profile", "zt", "--endpoint-url", moto_server.endpoint_url, "--output", "json")
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-1500:]
        who = json.loads(proc.stdout)
        assert who["Arn"] == f"arn:aws:sts::123456789012:assumed-role/CliRole/{session_name('svc/batch@EXAMPLE.COM')}"
        assert who["Account"] == "123456789012"
    records = [r for r in audit_records(Path(env["ZEROTRUST_HOME"])) if r["event"] == "credential_issue"]
    assert [r["details"]["source"] for r in records] == ["sts", "cache"]
    assert all(r["user"] == "svc/batch@EXAMPLE.COM" and r["resource"] == arn for r in records)


def test_aws_cli_reports_our_failure(profile_env, moto_server, tmp_path):
    env, arn = profile_env
    bad = dict(env)
    cfg = write_config(tmp_path / "cfg2" / "config.yaml", base_aws(moto_server.endpoint_url, allowed_accounts=["999999999999"]))
    bad["ZEROTRUST_CONFIG"] = str(cfg)
    proc = run_aws(bad, "sts", "get-caller-identity", "--profile", "zt", "--endpoint-url", moto_server.endpoint_url)
    assert proc.returncode != 0
    assert "allowed_accounts" in proc.stderr.decode(errors="replace")
