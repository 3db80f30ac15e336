"""The transit master key source against a real OpenBao: an integrated vault
whose data keys are wrapped by Vault's transit engine, key rotation on the
Vault side (old wraps still open, rewrap moves them), AAD binding, and an
unreachable Vault reported as unavailable (never as a wrong key)."""

from __future__ import annotations

import pytest

from tests.servers import OpenBaoServer, openbao  # noqa: F401
from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.errors import UnavailableError
from zerotrust_admin.keys import KeySourceContext, UnwrapFailed, choose_new_source, open_source, source_class
from zerotrust_admin.vault import Vault

ACTOR = Actor(user="erin@EXAMPLE.COM", source_ip="192.0.2.9", host="testhost")


def kctx(tmp_path, bao, key_name: str) -> KeySourceContext:
    config = {"encryption": {"transit": {"enabled": True, "key_name": key_name, "url": bao.url, "role_id": bao.role_id,
                                         "secret_id": bao.secret_id, "timeout": 3}}}
    return KeySourceContext(config=config, home=tmp_path, environ={})


def test_vault_with_transit_master_key_round_trips_and_survives_rotation(tmp_path, openbao):
    ctx = kctx(tmp_path, openbao, "zt-master-a")
    assert choose_new_source(ctx) == "transit"
    cls = source_class("transit")
    vault = Vault.create(tmp_path / "vault.db", "transit", lambda key_id: cls.create(ctx, key_id), audit=AuditLog(tmp_path / "audit.log"), actor=ACTOR)
    vault.put("db/password", b"behind transit")
    vault.close()
    assert b"behind transit" not in (tmp_path / "vault.db").read_bytes()

    reopened = Vault.open(tmp_path / "vault.db", lambda kind, params: open_source(kind, ctx, params), actor=ACTOR)
    assert reopened.get("db/password")[0].reveal() == b"behind transit"
    reopened.close()

    source = cls.open(ctx, {"key_id": "k"})
    before = source.provider_key_status()
    blob = source.wrap(b"k" * 32, b"aad-1")
    assert blob.startswith(f"vault:v{before['version']}:".encode())
    rotated = source.rotate_provider_key()
    assert rotated["version"] == before["version"] + 1 and rotated["action"] == "rotated"
    assert source.unwrap(blob, b"aad-1") == b"k" * 32  # older key versions still decrypt
    moved = source.rewrap(blob, b"aad-1")
    assert moved.startswith(f"vault:v{rotated['version']}:".encode()) and source.unwrap(moved, b"aad-1") == b"k" * 32
    with pytest.raises(UnwrapFailed):
        source.unwrap(blob, b"aad-2")  # AAD is bound
    with pytest.raises(UnwrapFailed):
        source.unwrap(b"garbage", b"aad-1")
    source.close()

    again = Vault.open(tmp_path / "vault.db", lambda kind, params: open_source(kind, ctx, params), actor=ACTOR)
    assert again.get("db/password")[0].reveal() == b"behind transit"
    again.close()


def test_dry_run_rotation_changes_nothing(tmp_path, openbao):
    ctx = kctx(tmp_path, openbao, "zt-master-b")
    source, _params = source_class("transit").create(ctx, "k")
    version = source.provider_key_status()["version"]
    assert source.rotate_provider_key(dry_run=True)["action"] == "would rotate"
    assert source.provider_key_status()["version"] == version
    source.close()


def test_unreachable_vault_is_unavailable_not_a_wrong_key(tmp_path):
    server = OpenBaoServer()
    try:
        ctx = kctx(tmp_path, server, "zt-master-c")
        source, _ = source_class("transit").create(ctx, "k")
        blob = source.wrap(b"x" * 32, b"aad")
        source.close()
    finally:
        server.stop()
    source = source_class("transit").open(ctx, {"key_id": "k"})
    with pytest.raises(UnavailableError):
        source.unwrap(blob, b"aad")
