"""Issue 14, item 5: every YAML block of the seed document
(../shared/seed/secrets-management.md, copied to tests/data so that a fresh
clone has it) passes ``config check`` as written.

Only two things are adapted, neither a key nor a value's form: ``${VAR}``
references get a value in the environment, and the files the seed names under
/etc/zerotrust/ are created (0600) under a temporary directory instead."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

SEED = Path(__file__).parent / "data" / "seed-secrets-management.md"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "secrets-management.md"


def yaml_blocks() -> list[str]:
    return re.findall(r"```ya?ml\n(.*?)```", SEED.read_text(), re.S)


def test_the_copy_is_the_seed():
    assert len(yaml_blocks()) == 7
    if SHARED.exists():  # in the project's workspace: the copy must not drift from the original
        assert SEED.read_text() == SHARED.read_text()


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


@pytest.mark.parametrize("index", range(7))
def test_every_seed_yaml_block_passes_config_check(cli, tmp_path, index):
    block = yaml_blocks()[index]
    etc = tmp_path / "etc-zerotrust"
    for path in set(re.findall(r"/etc/zerotrust/\S+", block)):
        write_private(etc / path[len("/etc/zerotrust/"):], "x" * 32)
    text = block.replace("/etc/zerotrust/", f"{etc}/")
    cfg = tmp_path / "config.yaml"
    write_private(cfg, text)
    env = {"ZEROTRUST_CONFIG": str(cfg), **{var: f"value-of-{var}" for var in re.findall(r"\$\{(\w+)\}", block)}}
    r = cli("config", "check", env=env)
    assert r.code == 0, f"seed block {index}:\n{block}\n{r.text}{r.err}"
    assert r.text.startswith("OK: ")
    report = json.loads(cli("config", "check", "--json", env=env).text)
    assert report["clean"] and all(p["severity"] == "note" for p in report["problems"])


def test_tls_certificate_and_private_key_reach_the_tls_settings(tmp_path):
    from zerotrust_admin.config import load_config

    cfg = tmp_path / "c.yaml"
    write_private(cfg, "tls:\n  certificate: /x/server.crt\n  private_key: /x/server.key\n")
    tls = load_config(str(cfg), environ={"ZEROTRUST_HOME": str(tmp_path / "h")}).section("tls")
    assert tls["cert_file"] == "/x/server.crt" and tls["key_file"] == "/x/server.key"


def test_the_old_names_stay_valid_and_a_conflict_is_refused(cli, tmp_path):
    cert, key = tmp_path / "s.crt", tmp_path / "s.key"
    write_private(cert, "c")
    write_private(key, "k")
    cfg = tmp_path / "c.yaml"
    write_private(cfg, f"tls:\n  cert_file: {cert}\n  key_file: {key}\n")
    assert cli("config", "check", env={"ZEROTRUST_CONFIG": str(cfg)}).code == 0
    write_private(cfg, f"tls:\n  certificate: {cert}\n  cert_file: {key}\n")
    r = cli("config", "check", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert r.code != 0 and "tls.certificate and tls.cert_file name the same file differently" in (r.err + r.text)


def test_a_real_plaintext_secret_is_still_refused(cli, tmp_path):
    cfg = tmp_path / "c.yaml"
    write_private(cfg, "security:\n  breach_notification:\n    channels:\n      - pagerduty:\n          integration_key: 0123456789abcdef0123456789abcdef\n")
    r = cli("config", "check", env={"ZEROTRUST_CONFIG": str(cfg)})
    assert r.code == 1 and "holds a plaintext secret" in r.text
