"""The ``vault`` commands through the real CLI with ``secrets.provider``
switched in a config file, against the real peers (OpenBao, moto, the Azure
SDKs on the loopback stand-in); bad input and faults: unreachable provider,
wrong credentials, a TLS certificate that does not verify, a name the provider
cannot store, SDK error text that must not be printed; ``config check --connect``;
``vault:NAME`` references in the config."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import pytest
import yaml

from tests.servers import azure_keyvault, free_port, moto_private, moto_server, openbao  # noqa: F401

EXTERNAL = ["hashicorp", "aws", "azure"]


def write_config(tmp_path, data: dict, name: str = "config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if isinstance(data, dict) else data)
    os.chmod(path, 0o600)
    return path


def private_file(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content)
    os.chmod(path, 0o600)
    return str(path)


def block_for(request, tmp_path, kind: str) -> dict:
    """A secrets.config block as an operator writes it: credentials in 0600 files."""
    if kind == "hashicorp":
        bao = request.getfixturevalue("openbao")
        return {"url": bao.url, "mount_path": bao.MOUNT, "role_id": bao.role_id,
                "secret_id_file": private_file(tmp_path, "bao-secret-id", bao.new_secret_id() + "\n"), "timeout": 3}
    if kind == "aws":
        moto = request.getfixturevalue("moto_server")
        return {"region": moto.REGION, "endpoint_url": moto.endpoint_url, "access_key_id": moto.KEY_ID,
                "secret_access_key_file": private_file(tmp_path, "aws-secret", moto.SECRET), "timeout": 3}
    stub = request.getfixturevalue("azure_keyvault")
    block = stub.settings(polling_interval=0.05, timeout=3)
    block["client_secret_file"] = private_file(tmp_path, "azure-secret", block.pop("client_secret"))
    return block


@pytest.fixture(params=EXTERNAL)
def provider_env(request, tmp_path):
    kind = request.param
    cfg = write_config(tmp_path, {"secrets": {"provider": kind, "config": block_for(request, tmp_path, kind)}})
    return kind, {"ZEROTRUST_CONFIG": str(cfg)}


def test_every_vault_command_works_against_each_provider(cli, provider_env, tmp_path):
    kind, env = provider_env
    p = "cli" + uuid.uuid4().hex[:8]
    r = cli("vault", "put", f"{p}/db/password", input=b"s3cr3t-1", env=env)
    assert r.code == 0, r.err
    assert f"Stored {p}/db/password version 1 (8 bytes)" in r.err
    assert cli("vault", "put", f"{p}/db/password", input=b"s3cr3t-2", env=env).code == 0
    r = cli("vault", "get", f"{p}/db/password", env=env)
    assert (r.code, r.out) == (0, b"s3cr3t-2"), r.err
    r = cli("vault", "get", f"{p}/db/password", "--version", "1", env=env)
    assert (r.code, r.out) == (0, b"s3cr3t-1"), r.err
    r = cli("--json", "vault", "get", f"{p}/db/password", env=env)
    assert json.loads(r.out)["value"] == "s3cr3t-2" and json.loads(r.out)["version"] == 2
    keytab = bytes(range(256))
    (tmp_path / "kt").write_bytes(keytab)
    assert cli("vault", "put", f"{p}/krb/http.keytab", "--value-file", str(tmp_path / "kt"), env=env).code == 0
    out = tmp_path / "out.keytab"
    r = cli("vault", "get", f"{p}/krb/http.keytab", "--output-file", str(out), env=env)
    assert r.code == 0 and out.read_bytes() == keytab and (out.stat().st_mode & 0o777) == 0o600
    r = cli("vault", "list", f"{p}/", env=env)
    assert r.code == 0 and [line.split("\t")[0] for line in r.text.splitlines()] == [f"{p}/db/password", f"{p}/krb/http.keytab"]
    assert b"s3cr3t" not in r.out
    r = cli("--json", "vault", "history", f"{p}/db/password", env=env)
    assert [v["version"] for v in json.loads(r.out)] == [1, 2]
    r = cli("vault", "delete", f"{p}/db/password", "--yes", env=env)
    assert r.code == 0 and "recover with" in r.err
    r = cli("vault", "get", f"{p}/db/password", env=env)
    assert r.code == 3 and "deleted" in r.err
    assert cli("vault", "undelete", f"{p}/db/password", env=env).code == 0
    assert cli("vault", "get", f"{p}/db/password", env=env).out == b"s3cr3t-2"
    r = cli("vault", "delete", f"{p}/db/password", "--destroy", env=env)
    assert r.code == 2 and "--yes" in r.err  # no terminal, no --yes: refused
    r = cli("vault", "delete", f"{p}/db/password", "--destroy", "--yes", env=env)
    assert r.code == 0 and "Destroyed 2 version(s)" in r.err, r.err
    assert cli("vault", "get", f"{p}/db/password", env=env).code == 3
    (tmp_path / "in.env").write_text(f'{p}/imp/A="one"\n{p}/imp/B=two\n')
    r = cli("--json", "vault", "import", str(tmp_path / "in.env"), env=env)
    assert json.loads(r.out) == {"created": 2, "updated": 0, "unchanged": 0}, r.err
    r = cli("--json", "vault", "import", str(tmp_path / "in.env"), env=env)
    assert json.loads(r.out) == {"created": 0, "updated": 0, "unchanged": 2}
    r = cli("vault", "export", "--prefix", f"{p}/imp/", "--format", "env", "--yes", env=env)
    assert r.code == 0 and r.text == f'{p}/imp/A="one"\n{p}/imp/B="two"\n'


def test_operations_are_audited_in_the_local_audit_log(cli, provider_env, zt_env):
    kind, env = provider_env
    name = "aud" + uuid.uuid4().hex[:8] + "/x"
    cli("vault", "put", name, input=b"AUDIT-VALUE-zz9", env=env)
    cli("vault", "get", name, env=env)
    cli("vault", "get", name + "-missing", env=env)
    r = cli("--json", "audit", "tail", "-n", "10", env=env)
    assert r.code == 0, r.err
    records = [json.loads(line) for line in r.text.splitlines() if line.strip().startswith("{")] if not r.text.lstrip().startswith("[") else json.loads(r.out)
    seen = [(x["action"], x["resource"], x["success"]) for x in records]
    assert ("write", name, True) in seen and ("read", name, True) in seen and ("read", name + "-missing", False) in seen
    assert all(x.get("details", {}).get("provider") == kind for x in records if x["resource"].startswith(name))
    log = (__import__("pathlib").Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").read_text()
    assert "AUDIT-VALUE-zz9" not in log


# --- the seed's blocks -------------------------------------------------------------------
SEED_BLOCKS = {
    "hashicorp": """
secrets:
  provider: hashicorp
  config:
    url: https://vault.example.com:8200
    mount_path: zerotrust
    role_id: ${VAULT_ROLE_ID}
    secret_id: ${VAULT_SECRET_ID}
""",
    "aws": """
secrets:
  provider: aws
  config:
    region: us-east-1
    kms_key_id: alias/zerotrust-secrets
""",
    "azure": """
secrets:
  provider: azure
  config:
    vault_url: https://zerotrust.vault.azure.net/
    tenant_id: ${AZURE_TENANT_ID}
    client_id: ${AZURE_CLIENT_ID}
    client_secret: ${AZURE_CLIENT_SECRET}
""",
}


@pytest.mark.parametrize("kind", EXTERNAL)
def test_seed_blocks_are_accepted_as_written(cli, tmp_path, kind):
    cfg = write_config(tmp_path, SEED_BLOCKS[kind])
    env = {"ZEROTRUST_CONFIG": str(cfg), "VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s", "AZURE_TENANT_ID": "t",
           "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "x"}
    r = cli("--json", "config", "show", env=env)
    assert r.code == 0, r.err
    shown = json.loads(r.out)["config"]["secrets"]
    assert shown["provider"] == kind
    assert "x" != shown["config"].get("client_secret") and "s" != shown["config"].get("secret_id")
    from zerotrust_admin.config import load_config
    from zerotrust_admin.providers import open_provider

    provider = open_provider(kind, load_config(cfg, environ=dict(env, HOME=str(tmp_path))), audited=False)
    assert provider.kind == kind  # builds from the block without touching the network


# --- faults --------------------------------------------------------------------------------
def _unreachable_block(kind: str, port: int) -> dict:
    if kind == "hashicorp":
        return {"url": f"http://127.0.0.1:{port}", "mount_path": "zerotrust", "token": "${NOPE:-t}", "auth_method": "token", "timeout": 1}
    if kind == "aws":
        return {"region": "us-east-1", "endpoint_url": f"http://127.0.0.1:{port}", "access_key_id": "AKIAX", "secret_access_key": "${NOPE:-k}", "timeout": 1}
    return {"vault_url": f"https://127.0.0.1:{port}", "tenant_id": "t", "client_id": "c", "client_secret": "${NOPE:-k}",
            "authority_host": f"https://127.0.0.1:{port}", "timeout": 1}


@pytest.mark.parametrize("kind", EXTERNAL)
def test_unreachable_provider_exits_6_quickly(cli, tmp_path, kind):
    cfg = write_config(tmp_path, {"secrets": {"provider": kind, "config": _unreachable_block(kind, free_port())}})
    start = time.monotonic()
    r = cli("vault", "get", "db/password", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert r.code == 6, r.err
    assert "unreachable" in r.err or "not answering" in r.err
    assert time.monotonic() - start < 15
    assert "Traceback" not in r.err


@pytest.mark.parametrize("kind", EXTERNAL)
def test_provider_that_never_answers_times_out_with_exit_6(cli, tmp_path, kind):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (kernel backlog) and never answers
    try:
        cfg = write_config(tmp_path, {"secrets": {"provider": kind, "config": _unreachable_block(kind, silent.getsockname()[1])}})
        start = time.monotonic()
        r = cli("vault", "get", "db/password", env={"ZEROTRUST_CONFIG": str(cfg)}, timeout=60)
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert r.code == 6, r.err
    assert elapsed < 20, f"took {elapsed:.1f} s with a 1 s timeout"


def test_wrong_approle_secret_id_is_denied(cli, tmp_path, openbao):
    block = {"url": openbao.url, "mount_path": openbao.MOUNT, "role_id": openbao.role_id,
             "secret_id_file": private_file(tmp_path, "sid", "00000000-dead-beef-0000-000000000000")}
    cfg = write_config(tmp_path, {"secrets": {"provider": "hashicorp", "config": block}})
    r = cli("vault", "get", "db/password", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert r.code == 4, r.err
    assert "refused our credentials" in r.err and "dead-beef" not in r.err


def test_wrong_azure_client_secret_is_denied_without_sdk_text(cli, tmp_path, azure_keyvault):
    block = azure_keyvault.settings(client_secret="wrong-secret-value-123")
    cfg = write_config(tmp_path, {"secrets": {"provider": "azure", "config": block}})
    r = cli("vault", "get", "db/password", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert r.code == 4, r.err
    assert "AADSTS" not in r.err and "wrong-secret-value-123" not in r.err
    assert len(r.err.strip().splitlines()) <= 2


def test_wrong_aws_keys_are_denied(cli, tmp_path, moto_private):
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_private.endpoint_url}/moto-api/reset-auth", data=b"0",
                                                  headers={"Content-Type": "text/plain"}, method="POST"), timeout=10).read()
    block = moto_private.settings(access_key_id="AKIAWRONGWRONGWRONG0", secret_access_key="not-the-key")
    cfg = write_config(tmp_path, {"secrets": {"provider": "aws", "config": block}})
    r = cli("vault", "get", "db/password", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert r.code == 4, r.err
    assert "not-the-key" not in r.err


def test_tls_certificate_that_does_not_verify_is_refused(cli, tmp_path, azure_keyvault):
    # The stand-in's certificate is signed by a private CA: against the system
    # bundle it must not verify, for Azure and for a Vault URL alike.
    wrong_ca = "/etc/ssl/certs/ca-certificates.crt"
    az = azure_keyvault.settings(ca_file=wrong_ca)
    hc = {"url": azure_keyvault.url, "mount_path": "zerotrust", "token": "t", "auth_method": "token", "ca_file": wrong_ca, "timeout": 3}
    for kind, block in (("azure", az), ("hashicorp", hc)):
        cfg = write_config(tmp_path, {"secrets": {"provider": kind, "config": block}}, name=f"{kind}.yaml")
        r = cli("vault", "get", "db/password", env={"ZEROTRUST_CONFIG": str(cfg)})
        assert r.code == 6, (kind, r.err)
        assert "TLS certificate does not verify" in r.err and "refused" in r.err, r.err


def test_name_azure_cannot_store_is_refused_with_the_rule(cli, tmp_path, azure_keyvault):
    cfg = write_config(tmp_path, {"secrets": {"provider": "azure", "config": azure_keyvault.settings()}})
    long_name = "/".join(["Segment_With_Caps"] * 6)  # maps to > 127 characters
    r = cli("vault", "put", long_name, input=b"x", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert r.code == 2, r.err
    assert "127" in r.err and "'/'->'--'" in r.err


def test_provider_error_text_is_never_printed(cli, tmp_path, azure_keyvault):
    cfg = write_config(tmp_path, {"secrets": {"provider": "azure", "config": azure_keyvault.settings(timeout=3)}})
    env = {"ZEROTRUST_CONFIG": str(cfg)}
    for status in (500, 403, 400):
        # The token exchange happens first; then the injected answer hits the secrets call.
        cli("vault", "put", "warm/up", input=b"x", env=env)
        azure_keyvault.state.fail_next = [(status, "LEAK-password=hunter2-LEAK")] * 4
        r = cli("vault", "get", "warm/up", env=env)
        azure_keyvault.state.fail_next = []
        assert r.code in (2, 4, 6) and r.code != 0, r.err
        assert "LEAK" not in r.err and "hunter2" not in r.err, r.err


# --- config check --connect ----------------------------------------------------------------------
def test_config_check_connect_reports_latency(cli, provider_env):
    kind, env = provider_env
    r = cli("--json", "config", "check", "--connect", env=env)
    report = json.loads(r.out)
    conn = report["connection"]
    assert conn["provider"] == kind and conn["problems"] == [], r.err
    assert conn["latency_ms"] > 0 and conn["connect_ms"] > 0
    r = cli("config", "check", "--connect", env=env)
    assert f"{kind} provider at" in r.text and " ms" in r.text


def test_config_check_connect_reports_missing_permissions(cli, tmp_path, openbao):
    block = {"url": openbao.url, "mount_path": openbao.MOUNT, "role_id": openbao.role_id_of("readonly"),
             "secret_id_file": private_file(tmp_path, "sid", openbao.new_secret_id("readonly"))}
    cfg = write_config(tmp_path, {"secrets": {"provider": "hashicorp", "config": block}})
    r = cli("--json", "config", "check", "--connect", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert r.code == 1, r.err
    problems = json.loads(r.out)["connection"]["problems"]
    assert any("zerotrust/data/*" in p for p in problems), problems


def test_config_check_connect_unreachable_exits_6(cli, tmp_path):
    cfg = write_config(tmp_path, {"secrets": {"provider": "hashicorp", "config": _unreachable_block("hashicorp", free_port())}})
    r = cli("--json", "config", "check", "--connect", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert r.code == 6
    assert json.loads(r.out)["connection"]["exit_code"] == 6


# --- vault:NAME references -------------------------------------------------------------------------
def test_vault_reference_in_config_resolves_through_the_provider(tmp_path, monkeypatch, openbao):
    from zerotrust_admin.cli.context import AppContext
    from zerotrust_admin.providers import open_provider
    from zerotrust_admin.config import load_config

    block = openbao.settings()
    cfg = write_config(tmp_path, {"secrets": {"provider": "hashicorp", "config": block},
                                  "redis": {"url": "redis://127.0.0.1:6379/0", "password": "vault:ref/redis-password"}})
    monkeypatch.setenv("ZEROTRUST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZEROTRUST_PRINCIPAL", "dave@EXAMPLE.COM")
    open_provider("hashicorp", load_config(cfg), audited=False).put("ref/redis-password", b"redis-pw-" + uuid.uuid4().hex.encode())
    expected = open_provider("hashicorp", load_config(cfg), audited=False).get("ref/redis-password")[0].reveal()
    ctx = AppContext(config_path=str(cfg))
    try:
        secret = ctx.config.get_secret("redis.password")
        assert secret.reveal() == expected
        assert "redis-pw" not in repr(secret)
    finally:
        ctx.close()


def test_vault_get_from_hashicorp_does_not_import_hvac(cli, tmp_path, openbao, zt_env):
    """The hot read path runs on the standard library (providers/vaulthttp.py)."""
    import subprocess
    import sys

    from conftest import ROOT

    block = block_for(type("R", (), {"getfixturevalue": lambda self, name: openbao})(), tmp_path, "hashicorp")
    cfg = write_config(tmp_path, {"secrets": {"provider": "hashicorp", "config": block}})
    env = dict(zt_env, ZEROTRUST_CONFIG=str(cfg))
    assert cli("vault", "put", "fast/read", input=b"quick", env=env).code == 0
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "zerotrust_admin", "vault", "get", "fast/read"],
                          capture_output=True, env=env, cwd=str(ROOT), timeout=60)
    assert (proc.returncode, proc.stdout) == (0, b"quick"), proc.stderr[-500:]
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in proc.stderr.decode().splitlines() if line.startswith("import time:")}
    assert "zerotrust_admin" in imported
    assert not imported & {"hvac", "requests", "urllib3", "boto3", "botocore", "azure"}, sorted(imported & {"hvac", "requests", "urllib3"})
