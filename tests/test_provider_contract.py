"""One contract suite for every secret provider, run unchanged against:
local (the integrated vault), hashicorp (a real OpenBao dev server), aws (a
real moto server) and azure (the real Azure SDKs against tests/azure_stub.py).

Every provider is used through ``open_provider`` (the audit wrapper included),
the way the CLI uses it. Each test works under its own random name prefix.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.servers import azure_keyvault, moto_server, openbao, provider_settings as settings_for  # noqa: F401
from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.config import load_config
from zerotrust_admin.errors import NotFoundError, UsageError
from zerotrust_admin.providers import VersionConflict, open_provider

ACTOR = Actor(user="carol@EXAMPLE.COM", source_ip="192.0.2.7", host="testhost")
PROVIDERS = ["local", "hashicorp", "aws", "azure"]


def provider_config(tmp_path, kind: str, settings: dict | None):
    """A real Config whose secrets block selects ``kind``, as an operator's file would."""
    import yaml

    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"secrets": {"provider": kind, "config": settings or {}}}))
    os.chmod(cfg, 0o600)
    return load_config(cfg, environ={"ZEROTRUST_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)})


def make_local_vault(home):
    from zerotrust_admin.keys import KeySourceContext
    from zerotrust_admin.keys.keyfile import KeyFileSource
    from zerotrust_admin.vault import Vault

    kctx = KeySourceContext(config={}, home=home, environ={})
    return Vault.create(home / "vault.db", "keyfile", lambda key_id: KeyFileSource.create(kctx, key_id),
                        audit=AuditLog(home / "audit.log"), actor=ACTOR)


class Harness:
    def __init__(self, provider, audit: AuditLog, prefix: str):
        self.p = provider
        self.audit = audit
        self.prefix = prefix

    def n(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def records(self) -> list[dict]:
        return list(self.audit.records()) if self.audit.path.exists() else []


@pytest.fixture(params=PROVIDERS)
def h(request, tmp_path):
    kind = request.param
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    audit = AuditLog(home / "audit.log")
    vault = make_local_vault(home) if kind == "local" else None
    config = provider_config(tmp_path, kind, settings_for(request, kind))
    provider = open_provider(kind, config, audit=audit, actor=ACTOR, open_local_vault=(lambda: vault) if vault else None)
    yield Harness(provider, audit, "t" + uuid.uuid4().hex[:10])
    provider.close()
    if vault is not None:
        vault.close()


# --- values and versions ------------------------------------------------------------
def test_put_get_round_trip_and_versions(h):
    name = h.n("db/password")
    v1 = h.p.put(name, b"first value")
    v2 = h.p.put(name, b"second value")
    assert (v1.version, v2.version) == (1, 2)
    secret, info = h.p.get(name)
    with secret:
        assert secret.reveal() == b"second value"
    assert info.version == 2 and info.current
    old, old_info = h.p.get(name, 1)
    with old:
        assert old.reveal() == b"first value"
    assert old_info.version == 1 and not old_info.current


def test_binary_values_are_byte_exact(h):
    blob = bytes(range(256)) * 8 + b"\x00\xff"
    h.p.put(h.n("krb/http.keytab"), blob)
    secret, info = h.p.get(h.n("krb/http.keytab"))
    assert secret.reveal() == blob and info.size == len(blob)


def test_text_with_newlines_and_unicode(h):
    value = "line one\nligne deux é\n\ttab\n".encode()
    h.p.put(h.n("multi"), value)
    assert h.p.get(h.n("multi"))[0].reveal() == value


def test_missing_secret_and_version_are_not_found(h):
    with pytest.raises(NotFoundError):
        h.p.get(h.n("nope"))
    h.p.put(h.n("one"), b"x")
    with pytest.raises(NotFoundError):
        h.p.get(h.n("one"), 7)
    with pytest.raises(NotFoundError):
        h.p.history(h.n("nope"))


def test_history_lists_every_version_in_order(h):
    name = h.n("hist")
    for i in range(3):
        h.p.put(name, f"v{i}".encode())
    versions = h.p.history(name)
    assert [v.version for v in versions] == [1, 2, 3]
    assert [v.current for v in versions] == [False, False, True]
    assert all(v.created for v in versions)


def test_list_by_prefix_sorted_without_values(h):
    for name in ("app/b", "app/a", "other/c"):
        h.p.put(h.n(name), b"value-" + name.encode())
    names = [i.name for i in h.p.list(h.n("app/"))]
    assert names == [h.n("app/a"), h.n("app/b")]
    everything = [i.name for i in h.p.list(h.prefix + "/")]
    assert everything == sorted(h.n(x) for x in ("app/a", "app/b", "other/c"))
    info = next(i for i in h.p.list(h.n("app/")) if i.name == h.n("app/a"))
    assert info.current_version == 1 and info.deleted_at is None
    assert "value-" not in json.dumps([i.to_dict() for i in h.p.list(h.prefix + "/")])


# --- delete, undelete, destroy --------------------------------------------------------
def test_soft_delete_hides_and_undelete_restores(h):
    name = h.n("soft")
    h.p.put(name, b"keep me")
    h.p.put(name, b"keep me 2")
    h.p.delete(name)
    with pytest.raises(NotFoundError) as err:
        h.p.get(name)
    assert "deleted" in err.value.message
    assert name not in [i.name for i in h.p.list(h.prefix + "/")]
    listed = [i for i in h.p.list(h.prefix + "/", include_deleted=True) if i.name == name]
    assert listed and listed[0].deleted_at
    h.p.undelete(name)
    secret, info = h.p.get(name)
    assert secret.reveal() == b"keep me 2" and info.version == 2


def test_put_after_soft_delete_revives_with_a_new_version(h):
    name = h.n("revive")
    h.p.put(name, b"old")
    h.p.delete(name)
    info = h.p.put(name, b"new")
    assert info.version == 2
    assert h.p.get(name)[0].reveal() == b"new"


def test_destroy_purges_every_version(h):
    name = h.n("gone")
    h.p.put(name, b"a")
    h.p.put(name, b"b")
    assert h.p.destroy(name) == 2
    with pytest.raises(NotFoundError):
        h.p.get(name)
    assert name not in [i.name for i in h.p.list(h.prefix + "/", include_deleted=True)]
    with pytest.raises(NotFoundError):
        h.p.destroy(name)


def test_delete_of_missing_secret_is_not_found(h):
    with pytest.raises(NotFoundError):
        h.p.delete(h.n("never"))


# --- check-and-set, metadata, bulk ---------------------------------------------------------
def test_check_and_set(h):
    name = h.n("cas")
    assert h.p.put(name, b"one", cas=0).version == 1
    with pytest.raises(VersionConflict):
        h.p.put(name, b"lost update", cas=0)
    assert h.p.put(name, b"two", cas=1).version == 2
    with pytest.raises(VersionConflict):
        h.p.put(name, b"stale", cas=1)
    assert h.p.get(name)[0].reveal() == b"two"


def test_metadata_and_sticky_sensitive_flag(h):
    name = h.n("meta")
    h.p.put(name, b"x", metadata={"owner": "team-a"}, sensitive=True)
    h.p.put(name, b"y")
    info = next(i for i in h.p.list(h.prefix + "/") if i.name == name)
    assert info.sensitive, "once sensitive, always sensitive"
    h.p.put(name, b"z", metadata={"owner": "team-b"})
    assert h.p.history(name)[-1].metadata == {"owner": "team-b"}


def test_import_is_idempotent_and_export_returns_current_values(h):
    items = [(h.n("imp/a"), b"alpha"), (h.n("imp/b"), b"\x00\x01binary")]
    first = h.p.import_many(items, source="test.json")
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    again = h.p.import_many(items, source="test.json")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    changed = h.p.import_many([(h.n("imp/a"), b"alpha2")], source="test.json")
    assert changed.updated == 1
    exported = {name: secret.reveal() for name, secret, _ in h.p.export_all(h.n("imp/"))}
    assert exported == {h.n("imp/a"): b"alpha2", h.n("imp/b"): b"\x00\x01binary"}


def test_bad_input_is_refused_before_anything_is_written(h):
    with pytest.raises(UsageError):
        h.p.put("../escape", b"x")
    with pytest.raises(UsageError):
        h.p.put(h.n("empty"), b"")
    with pytest.raises(UsageError):
        h.p.put(h.n("huge"), b"x" * ((1 << 20) + 1))
    with pytest.raises(UsageError):
        h.p.import_many([(h.n("ok"), b"fine"), ("bad name", b"x")])
    assert h.n("ok") not in [i.name for i in h.p.list(h.prefix + "/")]


# --- audit -----------------------------------------------------------------------------
def test_every_operation_is_audited_without_values(h):
    name = h.n("audited")
    marker = b"VALUE-" + uuid.uuid4().hex.encode()
    h.p.put(name, marker)
    h.p.get(name)
    list(h.p.list(h.prefix + "/"))
    h.p.history(name)
    with pytest.raises(NotFoundError):
        h.p.get(h.n("missing"))
    h.p.delete(name)
    h.p.undelete(name)
    h.p.destroy(name)
    records = [r for r in h.records() if r["event"] == "secret_access"]
    seen = [(r["action"], r["resource"], r["success"]) for r in records]
    for expected in [("write", name, True), ("read", name, True), ("list", h.prefix + "/", True), ("history", name, True),
                     ("read", h.n("missing"), False), ("delete", name, True), ("undelete", name, True), ("destroy", name, True)]:
        assert expected in seen, f"{expected} not audited: {seen}"
    assert all(r["user"] == ACTOR.user for r in records)
    raw = h.audit.path.read_bytes()
    assert marker not in raw and marker.decode() not in raw.decode()
    assert h.audit.verify().ok


def test_check_reports_no_problems_with_full_permissions(h):
    report = h.p.check()
    assert report["problems"] == []
    assert report["endpoint"]
