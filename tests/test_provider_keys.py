"""Provider-side keys for rotate-keys / keys status: the AWS KMS key (rotated on
demand on moto; "managed by AWS" without a customer key), Azure (reported),
the HashiCorp transit key (when encryption.transit is enabled), local (none).
Rotations are audited as key_rotation."""

from __future__ import annotations

from tests.servers import azure_keyvault, moto_server, openbao  # noqa: F401
from tests.test_provider_contract import ACTOR, provider_config
from zerotrust_admin.audit.log import AuditLog
from zerotrust_admin.providers import open_provider


def test_aws_kms_key_rotates_on_demand_and_is_audited(tmp_path, moto_server):
    key = moto_server.client("kms").create_key(Description="zt test")["KeyMetadata"]["KeyId"]
    audit = AuditLog(tmp_path / "audit.log")
    p = open_provider("aws", provider_config(tmp_path, "aws", moto_server.settings(kms_key_id=key)), audit=audit, actor=ACTOR)
    before = p.provider_key_status()
    assert (before["kind"], before["key_id"], before["rotation"]) == ("kms", key, "disabled")
    assert p.rotate_provider_key(dry_run=True)["action"] == "would rotate on demand"
    assert p.provider_key_status()["rotation"] == "disabled"
    done = p.rotate_provider_key()
    assert done["action"] in ("rotated on demand", "automatic rotation enabled")
    assert p.provider_key_status()["rotation"] == "enabled"
    records = [r for r in audit.records() if r["event"] == "key_rotation"]
    assert [(r["action"], r["resource"], r["success"]) for r in records] == [("rotate", key, True)]


def test_aws_without_customer_key_is_managed_by_aws(tmp_path, moto_server):
    p = open_provider("aws", provider_config(tmp_path, "aws", moto_server.settings()), audited=False)
    assert p.provider_key_status()["state"] == "managed by AWS"
    assert p.rotate_provider_key()["reason"] == "managed by AWS"


def test_azure_is_reported_and_local_has_none(tmp_path, azure_keyvault):
    p = open_provider("azure", provider_config(tmp_path, "azure", azure_keyvault.settings()), audited=False)
    assert p.provider_key_status()["state"] == "reported"
    assert p.rotate_provider_key()["action"] == "none"
    local = open_provider("local", provider_config(tmp_path, "local", None), audited=False, open_local_vault=lambda: None)
    assert local.provider_key_status() is None and local.rotate_provider_key() is None


def test_hashicorp_reports_and_rotates_the_transit_key(tmp_path, openbao):
    import os

    import yaml

    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"secrets": {"provider": "hashicorp", "config": openbao.settings()},
                                   "encryption": {"transit": {"enabled": True, "key_name": "zt-provider-keys"}}}))
    os.chmod(cfg, 0o600)
    from zerotrust_admin.config import load_config
    from zerotrust_admin.keys import KeySourceContext, source_class

    config = load_config(cfg, environ={"HOME": str(tmp_path), "ZEROTRUST_HOME": str(tmp_path / "home")})
    source_class("transit").create(KeySourceContext(config=config.data, home=tmp_path, environ={}), "k")[0].close()
    p = open_provider("hashicorp", config, audited=False)
    before = p.provider_key_status()
    assert before["kind"] == "transit" and before["version"] == 1
    assert p.rotate_provider_key()["version"] == 2
    assert p.provider_key_status()["version"] == 2
    (tmp_path / "plain").mkdir()
    without = open_provider("hashicorp", provider_config(tmp_path / "plain", "hashicorp", openbao.settings()), audited=False)
    assert without.provider_key_status() is None
