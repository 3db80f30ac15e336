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


def test_the_vault_http_client_sits_below_keys_and_providers():
    """No import circle: keys/ never imports providers/ (not even lazily), and
    vaultapi/ (the Vault HTTP client both use) imports none of keys/, providers/, vault/."""
    import ast
    from pathlib import Path

    import zerotrust_admin

    root = Path(zerotrust_admin.__file__).parent

    def imports(package: str) -> dict[str, set[str]]:
        found = {}
        for path in sorted((root / package).glob("*.py")):
            names = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    names.add(node.module)
                elif isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
            found[f"{package}/{path.name}"] = {n for n in names if n.startswith("zerotrust_admin.")}
        return found

    for module, names in imports("keys").items():
        assert not {n for n in names if n.startswith("zerotrust_admin.providers")}, module
    for module, names in imports("vaultapi").items():
        assert not {n for n in names if n.split(".")[1] in ("keys", "providers", "vault")}, module
    assert any(n.startswith("zerotrust_admin.vaultapi") for n in imports("providers")["providers/hashicorp.py"])
    assert not (root / "providers" / "vaulthttp.py").exists()
