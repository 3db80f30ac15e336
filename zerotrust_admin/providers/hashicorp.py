"""HashiCorp Vault / OpenBao, KV version 2 at ``mount_path``.

Mapping: our versions are KV v2's versions; ``put(cas=N)`` is KV v2's
check-and-set; ``delete`` soft-deletes every live version (KV v2 "delete",
recoverable with ``undelete``); ``destroy`` removes the metadata and all
versions. A value is stored as ``{"value": TEXT}``, or ``{"value_base64": B64}``
when it is not UTF-8. Our metadata and ``sensitive`` live in the secret's
``custom_metadata`` (``zt.sensitive`` and the keys as given); who wrote a
version is in the audit log (KV v2 keeps no per-version author).

Auth: AppRole (``role_id`` + ``secret_id``, each from the block, a ``*_file``
or VAULT_ROLE_ID / VAULT_SECRET_ID) or a token (``token``, ``token_file``,
VAULT_TOKEN / BAO_TOKEN). TLS is verified against ``ca_file`` (or the
system bundle); ``tls: {verify: false}`` turns that off (``config check`` flags it).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from zerotrust_admin.errors import UsageError, ZeroTrustError
from zerotrust_admin.names import validate_name, validate_prefix
from zerotrust_admin.providers.base import (
    ProviderBase,
    ProviderContext,
    VersionConflict,
    decode_value,
    deleted,
    encode_value,
    not_found,
    quiet_sdk_loggers,
    version_info,
)
from zerotrust_admin.secret import Secret
from zerotrust_admin.vault.vault import SecretInfo, VersionInfo
from zerotrust_admin.vaultapi import client as vaultapi_client
from zerotrust_admin.vaultapi.settings import VaultSettings

META_SENSITIVE = "zt.sensitive"


WHAT = "hashicorp secret provider"


def vault_settings(ctx: ProviderContext) -> VaultSettings:
    return VaultSettings.from_provider_context(ctx)


def make_client(ctx: ProviderContext, *, token: str | None = None):
    """An authenticated hvac client for this provider's block (zerotrust_admin.vaultapi)."""
    return vaultapi_client.make_client(vault_settings(ctx), what=WHAT, token=token)


@contextmanager
def _errors(url: str, ca_file: str | None, timeout: float, *, name: str | None = None, version: int | None = None):
    """vaultapi's mapping, with our VersionConflict for a lost check-and-set."""
    try:
        with vaultapi_client.api_errors(WHAT, url, ca_file, timeout, name=name, version=version):
            yield
    except vaultapi_client.CheckAndSetFailed as exc:
        raise VersionConflict(exc.message, hint=exc.hint) from None


class HashicorpProvider(ProviderBase):
    kind = "hashicorp"
    keeps_versions = True
    concurrency = 8  # migrate writes in parallel (the SDK client is thread-safe)

    def __init__(self, ctx: ProviderContext):
        self._ctx = ctx
        self._settings = vault_settings(ctx)
        self.mount = str(ctx.setting("mount_path", "mount", default="secret")).strip("/")
        self.url = self._settings.url()  # N1: https, or http to loopback only (exit 2 otherwise), before any connection
        self._timeout = self._settings.timeout()
        self._ca = self._settings.ca_file()
        self._actor = ctx.actor_name
        quiet_sdk_loggers("hvac", "urllib3")
        self._client = None
        self._light = None

    @property
    def client(self):
        if self._client is None:
            token = self._light.token if self._light is not None else None
            self._client = make_client(self._ctx, token=token)
        return self._client

    def _light_client(self):
        """The stdlib read path (vaulthttp), logged in once; None when hvac is already in use."""
        if self._client is not None:
            return None
        if self._light is None:
            from zerotrust_admin.vaultapi.light import LightVault

            light = LightVault(self._settings.require_url(), ca_file=self._ca, verify=self._settings.tls_verify(), timeout=self._timeout,
                               namespace=self._settings.namespace())
            method, role_id, secret_id, token = self._settings.auth(WHAT)
            if method == "token":
                with token:
                    light.token = token.reveal_text()
            else:
                with role_id, secret_id:
                    light.login_approle(role_id.reveal_text(), secret_id.reveal_text(), self._settings.approle_mount())
            self._light = light
        return self._light

    @property
    def _kv(self):
        return self.client.secrets.kv.v2

    def _err(self, name: str | None = None, version: int | None = None):
        return _errors(self.url, self._ca, self._timeout, name=name, version=version)

    def describe(self) -> dict:
        return {"kind": self.kind, "url": self.url, "mount_path": self.mount}

    # --- reads -----------------------------------------------------------------
    def _metadata(self, name: str) -> dict:
        with self._err(name):
            return self._kv.read_secret_metadata(name, mount_point=self.mount)["data"]

    def get(self, name: str, version: int | None = None) -> tuple[Secret, VersionInfo]:
        validate_name(name)
        light = self._light_client() if version is None else None
        if light is not None:
            status, payload = light.read_current(self.mount, name)
            with vaultapi_client.parsed(WHAT, self.url):  # N2: a mistyped field is a malformed response (exit 6)
                data = payload.get("data") or {}
                meta = data.get("metadata") or {}
                if status == 404:
                    if meta.get("deletion_time"):
                        raise deleted(name)
                    raise not_found(name)
                value = _decode(data.get("data") or {}, name)
                custom = meta.get("custom_metadata") or {}
                self.last_read_sensitive = custom.get(META_SENSITIVE) == "true"  # MFA check without a metadata call (access/guard.py)
                return Secret(value), version_info(name, int(meta.get("version") or 0), meta.get("created_time", ""), "", len(value), _user_meta(custom), True)
        import hvac.exceptions as hx

        try:
            with self._err(name, version):
                resp = self._kv.read_secret_version(name, version=version, mount_point=self.mount, raise_on_deleted_version=True)
        except ZeroTrustError as exc:
            if exc.exit_code == 3:
                self._explain_missing(name, version)
            raise
        except hx.InvalidPath:  # pragma: no cover - mapped above
            raise not_found(name, version) from None
        with vaultapi_client.parsed(WHAT, self.url):
            data = resp["data"]["data"] or {}
            meta = resp["data"]["metadata"] or {}
            value = _decode(data, name)
            got = int(meta.get("version") or 0)
            custom = meta.get("custom_metadata") or {}
        current = True
        if version is not None:
            head = self._metadata(name)
            current = int(head.get("current_version") or 0) == got
            if _is_deleted(head):
                raise deleted(name)
            custom = head.get("custom_metadata") or {}
        return Secret(value), version_info(name, got, meta.get("created_time", ""), "", len(value), _user_meta(custom) if current else {}, current)

    def _explain_missing(self, name: str, version: int | None) -> None:
        """A 404 is either "no such secret/version" or "deleted": say which."""
        try:
            head = self._metadata(name)
        except ZeroTrustError:
            return
        if _is_deleted(head):
            raise deleted(name)
        versions = head.get("versions") or {}
        if version is not None and str(version) in versions:
            state = versions[str(version)]
            if state.get("destroyed"):
                raise not_found(name, version)

    def info(self, name: str) -> SecretInfo:
        validate_name(name)
        return _secret_info(name, self._metadata(name))

    def list(self, prefix: str = "", *, include_deleted: bool = False) -> Iterator[SecretInfo]:
        validate_prefix(prefix)
        out = []
        for name in self._names(prefix):
            try:
                info = _secret_info(name, self._metadata(name))
            except ZeroTrustError as exc:
                if exc.exit_code == 3:
                    continue  # removed meanwhile
                raise
            if info.deleted_at and not include_deleted:
                continue
            out.append(info)
        return iter(sorted(out, key=lambda i: i.name))

    def _names(self, prefix: str) -> list[str]:
        parent = prefix[: prefix.rfind("/") + 1] if "/" in prefix else ""
        found: list[str] = []
        stack = [parent]
        while stack:
            folder = stack.pop()
            try:
                with self._err():
                    keys = self._kv.list_secrets(folder, mount_point=self.mount)["data"]["keys"]
            except ZeroTrustError as exc:
                if exc.exit_code == 3:  # an empty folder lists as 404
                    continue
                raise
            for key in keys:
                full = folder + key
                if key.endswith("/"):
                    if full.startswith(prefix) or prefix.startswith(full):
                        stack.append(full)
                elif full.startswith(prefix):
                    found.append(full)
        return found

    def history(self, name: str) -> list[VersionInfo]:
        validate_name(name)
        head = self._metadata(name)
        current = int(head.get("current_version") or 0)
        custom = head.get("custom_metadata") or {}
        out = []
        for number, state in sorted(((int(k), v) for k, v in (head.get("versions") or {}).items())):
            if state.get("destroyed"):
                continue
            out.append(version_info(name, number, state.get("created_time", ""), "", 0,
                                    _user_meta(custom) if number == current else {}, number == current))
        return out

    # --- writes ----------------------------------------------------------------
    def put(self, name: str, value: bytes, *, metadata: dict | None = None, sensitive: bool = False, cas: int | None = None) -> VersionInfo:
        from zerotrust_admin.vault.vault import _check_value

        validate_name(name)
        _check_value(value)
        text, is_b64 = encode_value(value)
        body = {"value_base64": text} if is_b64 else {"value": text}
        with self._err(name):
            resp = self._kv.create_or_update_secret(name, secret=body, cas=cas, mount_point=self.mount)
        number = int(resp["data"]["version"])
        custom: dict = {}
        if sensitive:
            custom[META_SENSITIVE] = "true"
        for k, v in (metadata or {}).items():
            if str(k).startswith("zt."):
                raise UsageError(f"metadata key {k!r} is reserved")
            custom[str(k)] = str(v)
        if custom or cas is None:
            # custom_metadata is one per secret and replaced as a whole: keep
            # "sensitive" sticky, drop the previous version's user metadata.
            # A check-and-set write without metadata (what migrate does) is one request.
            with self._err(name):
                old = (self._kv.read_secret_metadata(name, mount_point=self.mount)["data"].get("custom_metadata") or {}) if cas != 0 else {}
                if old.get(META_SENSITIVE) == "true":
                    custom[META_SENSITIVE] = "true"
                if custom != old:
                    self._kv.update_metadata(name, custom_metadata=custom, mount_point=self.mount)
        return version_info(name, number, resp["data"].get("created_time", ""), "", len(value), _user_meta(custom), True)

    def delete(self, name: str) -> None:
        validate_name(name)
        head = self._metadata(name)
        live = [int(k) for k, v in (head.get("versions") or {}).items() if not v.get("destroyed") and not v.get("deletion_time")]
        if live:
            with self._err(name):
                self._kv.delete_secret_versions(name, versions=live, mount_point=self.mount)

    def undelete(self, name: str) -> None:
        validate_name(name)
        head = self._metadata(name)
        gone = [int(k) for k, v in (head.get("versions") or {}).items() if not v.get("destroyed") and v.get("deletion_time")]
        if gone:
            with self._err(name):
                self._kv.undelete_secret_versions(name, versions=gone, mount_point=self.mount)

    def destroy(self, name: str) -> int:
        validate_name(name)
        head = self._metadata(name)
        count = sum(1 for v in (head.get("versions") or {}).values() if not v.get("destroyed"))
        with self._err(name):
            self._kv.delete_metadata_and_all_versions(name, mount_point=self.mount)
        return count

    # --- config check --connect ----------------------------------------------------
    def check(self) -> dict:
        problems = []
        with self._err():
            me = self.client.auth.token.lookup_self()["data"]
        paths = {f"{self.mount}/data/*": {"create", "read", "update"}, f"{self.mount}/metadata/*": {"read", "list", "update", "delete"},
                 f"{self.mount}/delete/*": {"update"}, f"{self.mount}/undelete/*": {"update"}}
        with self._err():
            caps = self.client.adapter.post("/v1/sys/capabilities-self", json={"paths": list(paths)})
        caps = caps.get("data", caps) if isinstance(caps, dict) else {}
        for path, wanted in paths.items():
            have = set(caps.get(path) or [])
            if "root" in have:
                continue
            missing = sorted(wanted - have)
            if missing:
                problems.append(f"policy lacks {', '.join(missing)} on {path}")
        try:
            with self._err():
                self._kv.list_secrets("", mount_point=self.mount)
        except ZeroTrustError as exc:
            if exc.exit_code != 3:
                problems.append(f"cannot list the KV v2 mount {self.mount!r} ({type(exc).__name__})")
        return {"endpoint": self.url, "mount_path": self.mount, "identity": me.get("display_name", ""), "policies": me.get("policies", []), "problems": problems}

    # --- provider-side key: the transit key, when encryption.transit is enabled ---------
    def _transit(self):
        data = getattr(self._ctx.config, "data", None) or {}
        from zerotrust_admin.keys import transit

        if not transit.transit_configured(data):
            return None
        from zerotrust_admin.keys.base import KeySourceContext

        kctx = KeySourceContext(config=data, home=getattr(self._ctx.config, "home", None), environ=self._ctx.environ)
        return transit.TransitKeySource.open(kctx, {})

    def provider_key_status(self) -> dict | None:
        source = self._transit()
        if source is None:
            return None
        try:
            return source.provider_key_status()
        finally:
            source.close()

    def rotate_provider_key(self, *, dry_run: bool = False) -> dict | None:
        source = self._transit()
        if source is None:
            return None
        try:
            return source.rotate_provider_key(dry_run=dry_run)
        finally:
            source.close()

    def close(self) -> None:
        if self._light is not None:
            self._light.close()
            self._light = None
        if self._client is not None:
            try:
                self._client.adapter.close()
            except Exception:
                pass
            self._client = None


def _decode(data: dict, name: str) -> bytes:
    if isinstance(data.get("value"), str):
        return decode_value(data["value"], False)
    if isinstance(data.get("value_base64"), str):
        return decode_value(data["value_base64"], True)
    if len(data) == 1:  # a secret written by another tool with one field: take it
        (only,) = data.values()
        if isinstance(only, str):
            return only.encode("utf-8")
    raise UsageError(f"secret {name!r} in Vault has no 'value' field ({len(data)} fields)", hint="zerotrust-admin stores one value per secret under the key 'value'")


def _is_deleted(head: dict) -> bool:
    current = str(head.get("current_version") or "")
    state = (head.get("versions") or {}).get(current) or {}
    return bool(state.get("deletion_time")) or bool(state.get("destroyed"))


def _user_meta(custom: dict) -> dict:
    return {k: v for k, v in (custom or {}).items() if not k.startswith("zt.")}


def _secret_info(name: str, head: dict) -> SecretInfo:
    custom = head.get("custom_metadata") or {}
    current = str(head.get("current_version") or "")
    state = (head.get("versions") or {}).get(current) or {}
    deleted_at = state.get("deletion_time") or ("destroyed" if state.get("destroyed") else None)
    return SecretInfo(name, int(current or 0), head.get("created_time", ""), head.get("updated_time", ""), custom.get(META_SENSITIVE) == "true", deleted_at or None)
