"""Azure Key Vault secrets at ``vault_url``.

Auth: a client-secret credential when ``tenant_id``, ``client_id`` and
``client_secret`` (or ``client_secret_file``) are set, otherwise
azure-identity's DefaultAzureCredential chain (environment, managed
identity, Azure CLI...). ``authority_host`` selects a sovereign cloud.

Names: Key Vault allows only letters, digits and ``-`` (1-127) and compares
names case-insensitively, so our names are mapped reversibly (see
``to_azure_name``): lower-case letters and digits stay, ``/`` becomes ``--``,
``-`` becomes ``-0``, ``.`` becomes ``-1``, ``_`` becomes ``-2`` and an
upper-case letter X becomes ``-x``. ``db/password`` is ``db--password``;
``app/DB_URL`` is ``app---d-b-2-u-r-l``. A name whose mapping is longer than 127
characters is refused with that rule.

Versions: each Key Vault version carries the tag ``zt-version`` = N; versions
without it (written by other tools) are numbered after ours in creation order.
Text is stored as is (contentType ``text/plain; charset=utf-8``), other bytes
as base64 (contentType ``application/octet-stream; base64``). ``delete`` is
Key Vault's soft delete (recoverable); ``undelete`` recovers it; ``destroy``
deletes and purges. Tags: ``zt-version``, ``zt-by``, ``zt-sensitive``, and the
metadata keys as given.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

from zerotrust_admin.errors import ConfigError, UsageError, ZeroTrustError
from zerotrust_admin.names import validate_name, validate_prefix
from zerotrust_admin.providers.base import (
    ProviderBase,
    ProviderContext,
    VersionConflict,
    decode_value,
    deleted,
    denied,
    encode_value,
    iso_utc as _iso,
    missing_sdk,
    not_found,
    quiet_sdk_loggers,
    tls_refused,
    unavailable,
    version_info,
)
from zerotrust_admin.secret import Secret
from zerotrust_admin.vault.vault import SecretInfo, VersionInfo

MAX_AZURE_NAME = 127
TAG_VERSION = "zt-version"
TAG_BY = "zt-by"
TAG_SENSITIVE = "zt-sensitive"
CT_TEXT = "text/plain; charset=utf-8"
CT_BASE64 = "application/octet-stream; base64"
_ENCODE = {"/": "--", "-": "-0", ".": "-1", "_": "-2"}
_DECODE = {"-": "/", "0": "-", "1": ".", "2": "_"}
AZURE_NAME_RULE = "Key Vault names are letters, digits and '-', at most 127 characters; ours map '/'->'--', '-'->'-0', '.'->'-1', '_'->'-2', upper-case X->'-x'"


def to_azure_name(name: str) -> str:
    """Our name -> a Key Vault name (reversible, case-insensitive safe)."""
    validate_name(name)
    out = []
    for ch in name:
        if "a" <= ch <= "z" or "0" <= ch <= "9":
            out.append(ch)
        elif "A" <= ch <= "Z":
            out.append("-" + ch.lower())
        else:
            out.append(_ENCODE[ch])
    mapped = "".join(out)
    if len(mapped) > MAX_AZURE_NAME:
        raise UsageError(f"secret name {name[:40]!r}... is too long for Azure Key Vault once mapped ({len(mapped)} > {MAX_AZURE_NAME} characters)",
                         hint=AZURE_NAME_RULE)
    return mapped


def from_azure_name(mapped: str) -> str | None:
    """A Key Vault name -> our name, or None when it is not a mapping of one."""
    text = mapped.lower()
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "-":
            if not ("a" <= ch <= "z" or "0" <= ch <= "9"):
                return None
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(text):
            return None
        nxt = text[i + 1]
        if nxt in _DECODE:
            out.append(_DECODE[nxt])
        elif "a" <= nxt <= "z":
            out.append(nxt.upper())
        else:
            return None
        i += 2
    name = "".join(out)
    try:
        validate_name(name)
    except UsageError:
        return None
    return name


class AzureProvider(ProviderBase):
    kind = "azure"
    keeps_versions = True
    concurrency = 8  # migrate writes in parallel (the SDK client is thread-safe)

    def __init__(self, ctx: ProviderContext):
        self._ctx = ctx
        self.vault_url = str(ctx.setting("vault_url", "url") or "").rstrip("/")
        if not self.vault_url:
            raise ConfigError("the azure provider needs secrets.config.vault_url", hint="e.g. vault_url: https://myvault.vault.azure.net")
        if not self.vault_url.startswith("https://"):
            raise ConfigError("secrets.config.vault_url must be an https:// URL (Key Vault is HTTPS only)")
        self._timeout = ctx.timeout()
        self._actor = ctx.actor_name
        self._client = None
        self._credential = None
        self._poll = float(ctx.setting("polling_interval", default=0.5))
        quiet_sdk_loggers("azure", "msal", "urllib3")

    def describe(self) -> dict:
        return {"kind": self.kind, "vault_url": self.vault_url}

    @property
    def client(self):
        if self._client is None:
            try:
                from azure.keyvault.secrets import SecretClient
            except ImportError:
                raise missing_sdk("azure", "azure-keyvault-secrets", "azure") from None
            ca = self._ctx.ca_file()
            verify: bool | str = ca if ca else True
            if not self._ctx.tls_verify():
                verify = False
            transport = {"connection_verify": verify, "connection_timeout": self._timeout, "read_timeout": self._timeout, "retry_total": 1}
            if verify is not False:
                from azure.core.pipeline.transport import RequestsTransport

                from zerotrust_admin.tlspolicy import requests_session

                # TLS 1.2+, AEAD suites only; a transport of our own must carry the timeouts itself.
                transport["transport"] = RequestsTransport(session=requests_session(self._ctx.tls_policy()), session_owner=False,
                                                           connection_timeout=self._timeout, read_timeout=self._timeout)
            self._credential = self._make_credential(transport)
            self._client = SecretClient(self.vault_url, self._credential,
                                        verify_challenge_resource=self._ctx.setting("verify_challenge_resource", default=True) is not False,
                                        **transport)
        return self._client

    def _make_credential(self, transport: dict):
        try:
            from azure.identity import ClientSecretCredential, DefaultAzureCredential
        except ImportError:
            raise missing_sdk("azure", "azure-identity", "azure") from None
        authority = self._ctx.setting("authority_host", "authority")
        tenant = self._ctx.setting("tenant_id")
        client_id = self._ctx.setting("client_id")
        secret = self._ctx.secret("client_secret", "AZURE_CLIENT_SECRET") if tenant and client_id else None
        extra = {"authority": str(authority), "disable_instance_discovery": not str(authority).endswith(("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"))} if authority else {}
        if tenant and client_id and secret is not None:
            with secret:
                return ClientSecretCredential(str(tenant), str(client_id), secret.reveal_text(), **extra, **transport)
        return DefaultAzureCredential(**extra, **transport)

    def _map(self, exc: Exception, name: str | None, version: int | None) -> ZeroTrustError:
        from azure.core import exceptions as ax

        if _is_tls_failure(exc):
            return tls_refused(self.kind, self.vault_url, self._ctx.ca_file())
        if isinstance(exc, ax.ClientAuthenticationError):
            return denied(self.kind, self.vault_url, "refused our credentials (tenant_id/client_id/client_secret)")
        if isinstance(exc, ax.ResourceNotFoundError):
            return not_found(name or "(unknown)", version)
        if isinstance(exc, ax.ResourceExistsError):
            return VersionConflict(f"secret {name!r} is in a conflicting state in Key Vault", hint="retry; if it is being deleted, wait for that to finish")
        if isinstance(exc, (ax.ServiceRequestError, ax.ServiceResponseError)):
            timed_out = isinstance(exc, (ax.ServiceRequestTimeoutError, ax.ServiceResponseTimeoutError)) or "timeout" in type(getattr(exc, "inner_exception", None)).__name__.lower()
            return unavailable(self.kind, self.vault_url, "not answering" if timed_out else "unreachable", self._timeout)
        if isinstance(exc, ax.HttpResponseError):
            status = getattr(exc, "status_code", None) or 0
            if status in (401, 403):
                return denied(self.kind, self.vault_url, f"denied access to {name!r}" if name else "denied the request")
            if status == 429:
                from zerotrust_admin.errors import BusyError

                return BusyError(f"azure secret provider at {self.vault_url} is throttling requests", hint="retry later")
            if status >= 500:
                return unavailable(self.kind, self.vault_url, f"failing (HTTP {status})")
            return UsageError(f"azure secret provider rejected the request for {name!r} (HTTP {status})")
        return unavailable(self.kind, self.vault_url, f"failing ({type(exc).__name__})")

    # --- helpers -----------------------------------------------------------------
    def _props_versions(self, az: str, name: str) -> list[tuple[int, object]]:
        with self._err(name):
            props = list(self.client.list_properties_of_secret_versions(az))
        return _numbered(props)

    def _is_deleted(self, az: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.client.get_deleted_secret(az)
            return True
        except ResourceNotFoundError:
            return False
        except Exception:
            return False

    def _latest(self, az: str, name: str):
        """The latest KeyVaultSecret, or None when the secret does not exist; raises deleted()."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.client.get_secret(az)
        except ResourceNotFoundError:
            if self._is_deleted(az):
                raise deleted(name) from None
            return None
        except Exception as exc:
            raise self._map(exc, name, None) from None

    # --- reads -------------------------------------------------------------------
    def get(self, name: str, version: int | None = None) -> tuple[Secret, VersionInfo]:
        az = to_azure_name(name)
        latest = self._latest(az, name)
        if latest is None:
            raise not_found(name)
        latest_number = _number(latest.properties)
        if version is None or version == latest_number and latest_number:
            secret = latest
        else:
            numbered = self._props_versions(az, name)
            latest_number = max((n for n, _ in numbered), default=0)
            match = [p for n, p in numbered if n == version]
            if not match:
                raise not_found(name, version)
            with self._err(name, version):
                secret = self.client.get_secret(az, match[0].version)
        value = _decode(secret.value or "", secret.properties.content_type)
        number = _number(secret.properties) or (version or latest_number)
        tags = secret.properties.tags or {}
        current = number == latest_number or version is None
        if current:
            self.last_read_sensitive = tags.get(TAG_SENSITIVE) == "true"  # MFA check without another call (access/guard.py)
        return Secret(value), version_info(name, number, _iso(secret.properties.created_on), tags.get(TAG_BY, ""), len(value), _user_tags(tags), current)

    def info(self, name: str) -> SecretInfo:
        az = to_azure_name(name)
        from azure.core.exceptions import ResourceNotFoundError

        try:
            latest = self.client.get_secret(az)
        except ResourceNotFoundError:
            try:
                with self._err(name):
                    gone = self.client.get_deleted_secret(az)
            except ZeroTrustError:
                raise not_found(name) from None
            return _info(name, gone.properties, _iso(gone.deleted_date) or "deleted")
        except Exception as exc:
            raise self._map(exc, name, None) from None
        return _info(name, latest.properties, None)

    def list(self, prefix: str = "", *, include_deleted: bool = False) -> Iterator[SecretInfo]:
        validate_prefix(prefix)
        out = []
        with self._err():
            for props in self.client.list_properties_of_secrets():
                name = from_azure_name(props.name or "")
                if name is not None and name.startswith(prefix):
                    out.append(_info(name, props, None))
            if include_deleted:
                for gone in self.client.list_deleted_secrets():
                    name = from_azure_name(gone.name or "")
                    if name is not None and name.startswith(prefix):
                        out.append(_info(name, gone.properties, _iso(gone.deleted_date) or "deleted"))
        return iter(sorted(out, key=lambda i: i.name))

    def history(self, name: str) -> list[VersionInfo]:
        az = to_azure_name(name)
        numbered = self._props_versions(az, name)
        if not numbered:
            raise not_found(name)
        latest = max(n for n, _ in numbered)
        return [version_info(name, n, _iso(p.created_on), (p.tags or {}).get(TAG_BY, ""), 0, _user_tags(p.tags or {}), n == latest) for n, p in numbered]

    # --- writes ------------------------------------------------------------------------
    def put(self, name: str, value: bytes, *, metadata: dict | None = None, sensitive: bool = False, cas: int | None = None) -> VersionInfo:
        from zerotrust_admin.vault.vault import _check_value

        az = to_azure_name(name)
        _check_value(value)
        try:
            latest = self._latest(az, name)
        except ZeroTrustError as exc:
            if exc.exit_code != 3:
                raise
            self._recover(az, name)  # like the integrated vault: a write revives a soft-deleted secret
            latest = self._latest(az, name)
        current = 0
        old_tags: dict = {}
        if latest is not None:
            old_tags = latest.properties.tags or {}
            current = _number(latest.properties) or len(self._props_versions(az, name))
        if cas is not None and cas != current:
            raise VersionConflict(f"secret {name!r} changed meanwhile (check-and-set failed)", hint="read it again and retry")
        number = current + 1
        tags = {TAG_VERSION: str(number), TAG_BY: self._actor or ""}
        if sensitive or old_tags.get(TAG_SENSITIVE) == "true":
            tags[TAG_SENSITIVE] = "true"
        for k, v in (metadata or {}).items():
            if str(k).startswith("zt-"):
                raise UsageError(f"metadata key {k!r} is reserved")
            tags[str(k)] = str(v)
        text, is_b64 = encode_value(value)
        with self._err(name):
            secret = self.client.set_secret(az, text, tags=tags, content_type=CT_BASE64 if is_b64 else CT_TEXT)
        return version_info(name, number, _iso(secret.properties.created_on), self._actor or "", len(value), _user_tags(tags), True)

    def _recover(self, az: str, name: str) -> None:
        with self._err(name):
            self.client.begin_recover_deleted_secret(az, _polling_interval=self._poll).wait(timeout=max(30.0, self._timeout * 6))

    def delete(self, name: str) -> None:
        az = to_azure_name(name)
        if self._latest(az, name) is None:
            raise not_found(name)
        with self._err(name):
            self.client.begin_delete_secret(az, _polling_interval=self._poll).wait(timeout=max(30.0, self._timeout * 6))

    def undelete(self, name: str) -> None:
        az = to_azure_name(name)
        if not self._is_deleted(az):
            if self._latest(az, name) is None:
                raise not_found(name)
            return
        self._recover(az, name)

    def destroy(self, name: str) -> int:
        az = to_azure_name(name)
        try:
            live = self._latest(az, name)
        except ZeroTrustError as exc:
            if exc.exit_code != 3:
                raise
            live = False  # already soft-deleted
        if live is None:
            raise not_found(name)
        if live:
            count = len(self._props_versions(az, name))
            with self._err(name):
                self.client.begin_delete_secret(az, _polling_interval=self._poll).wait(timeout=max(30.0, self._timeout * 6))
        else:
            count = 0
        with self._err(name):
            self.client.purge_deleted_secret(az)
        return count

    # --- config check --connect / keys ---------------------------------------------------
    def check(self) -> dict:
        problems = []
        with self._err():
            next(iter(self.client.list_properties_of_secrets().by_page()), None)
        try:
            with self._err():
                next(iter(self.client.list_deleted_secrets().by_page()), None)
        except ZeroTrustError as exc:
            problems.append(f"cannot list deleted secrets (needed for undelete and destroy): {'denied' if exc.exit_code == 4 else type(exc).__name__}")
        return {"endpoint": self.vault_url, "identity": str(self._ctx.setting("client_id") or "default credential chain"), "problems": problems}

    def provider_key_status(self) -> dict | None:
        return {"provider": self.kind, "kind": "key vault", "key_id": self.vault_url, "state": "reported",
                "rotation": "managed by Azure (Key Vault encrypts secrets with service-managed keys)"}

    def rotate_provider_key(self, *, dry_run: bool = False) -> dict | None:
        return dict(self.provider_key_status() or {}, action="none", reason="reported: Azure rotates Key Vault's service keys itself")

    def close(self) -> None:
        for thing in (self._client, self._credential):
            try:
                if thing is not None:
                    thing.close()
            except Exception:
                pass
        self._client = self._credential = None


def _is_tls_failure(exc: BaseException) -> bool:
    import ssl

    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 10:
        if isinstance(cur, ssl.SSLError) or type(cur).__name__ in ("SSLError", "SSLCertVerificationError"):
            return True
        inner = getattr(cur, "inner_exception", None)
        cur = inner if isinstance(inner, BaseException) else (cur.__cause__ or cur.__context__)
        seen += 1
    return False


def _number(props) -> int:
    raw = (getattr(props, "tags", None) or {}).get(TAG_VERSION, "")
    return int(raw) if str(raw).isdigit() else 0


def _numbered(props: list) -> list[tuple[int, object]]:
    out = []
    highest = 0
    for p in sorted(props, key=lambda p: (_number(p) or 10**12, p.created_on or datetime.min.replace(tzinfo=timezone.utc))):
        number = _number(p) or highest + 1
        highest = max(highest, number)
        out.append((number, p))
    return sorted(out, key=lambda t: t[0])


def _decode(text: str, content_type: str | None) -> bytes:
    return decode_value(text, (content_type or "").replace(" ", "") == CT_BASE64.replace(" ", ""))


def _user_tags(tags: dict) -> dict:
    return {k: v for k, v in (tags or {}).items() if not k.startswith("zt-")}


def _info(name: str, props, deleted_at: str | None) -> SecretInfo:
    tags = props.tags or {}
    return SecretInfo(name, _number(props), _iso(props.created_on), _iso(props.updated_on), tags.get(TAG_SENSITIVE) == "true", deleted_at)
