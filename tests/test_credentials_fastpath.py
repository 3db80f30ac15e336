"""``credentials get`` has a fast path that skips Typer (cli/fastpath_credentials.py).
Both paths must give identical exit codes, stdout and stderr, and a cache hit on
the fast path imports neither Typer nor boto3."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.aws_helpers import aws_env, base_aws, role_arn, write_config
from tests.conftest import ROOT
from tests.servers import moto_server  # noqa: F401  (fixture)
from zerotrust_admin.cli.fastpath import parse

FORCE_TYPER = (
    "import sys\n"
    "from zerotrust_admin.cli import entry, fastpath\n"
    "fastpath.parse = lambda argv: None\n"
    "entry.main(sys.argv[1:])\n"
)
ARN = role_arn("Deploy")


@pytest.fixture
def env(tmp_path, zt_env, moto_server, cli):
    cfg = write_config(tmp_path / "cfg" / "config.yaml", base_aws(moto_server.endpoint_url, allowed_accounts=["123456789012"]))
    full = {**zt_env, **aws_env(moto_server), "ZEROTRUST_CONFIG": str(cfg)}
    assert cli("init").code == 0
    return full


def run(env, args, typer_only=False):
    argv = [sys.executable, "-c", FORCE_TYPER, *args] if typer_only else [sys.executable, "-m", "zerotrust_admin", *args]
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=60, cwd=str(ROOT))
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args", [
    ["credentials", "get", "--role-arn", ARN],
    ["credentials", "get", "--role-arn", ARN, "--format", "process"],
    ["credentials", "get", f"--role-arn={ARN}", "--format=json"],
    ["--json", "credentials", "get", "--role-arn", ARN],
    ["credentials", "get", "--role-arn", ARN, "--format", "process", "--duration", "1800"],
    ["credentials", "get", "--role-arn", "not-an-arn", "--format", "process"],
    ["credentials", "get", "--role-arn", role_arn("X", "999999999999")],
    ["credentials", "get", "--role-arn", ARN, "--duration", "60"],
    ["credentials", "get", "--role-arn", ARN, "--via", role_arn("Hop"), "--duration", "7200"],
    ["credentials", "get", "--role-arn", ARN, "--external-id", "x"],
])
def test_fast_path_and_typer_agree(env, args):
    assert parse(args) is not None  # really the fast path
    run(env, args)  # fills the cache when it succeeds, so both runs below are served the same way
    fast = run(env, args)
    slow = run(env, args, typer_only=True)
    assert fast == slow, (fast[2], slow[2])


@pytest.mark.parametrize("args", [
    ["credentials", "get"],                                   # missing --role-arn: Typer's message
    ["credentials", "get", "--role-arn", ARN, "--format", "yaml"],
    ["credentials", "get", "--role-arn", ARN, "--bogus"],
    ["credentials", "get", "--role-arn", ARN, "--duration", "ten"],
    ["credentials", "get", "--help"],
    ["credentials", "get", "--role-arn", ARN, "--role-arn", ARN],
])
def test_anything_else_falls_back_to_typer(args):
    assert parse(args) is None


def test_cache_hit_imports_neither_typer_nor_boto3(env):
    args = ["credentials", "get", "--role-arn", ARN, "--format", "process"]
    assert run(env, args)[0] == 0
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "zerotrust_admin", *args], env=env, capture_output=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 0
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.decode().splitlines() if line.startswith("import time:") and line.count("|") == 2}
    assert "zerotrust_admin.aws.cache" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in ("typer", "boto3", "botocore", "rich", "redis"))
    assert heavy == []
