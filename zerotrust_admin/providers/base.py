"""The ``SecretProvider`` interface every secret store implements, the records
it returns, and the one place where SDK exceptions become our error types.

A provider stores secrets as byte strings under our names (letters, digits,
``. _ - /``), keeps numbered versions (1, 2, 3...), soft-deletes (hidden,
recoverable) and destroys (purged). Providers raise only ZeroTrustError
subclasses; an SDK's own message or response body never reaches a message,
because it can carry a secret value.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Protocol

from zerotrust_admin.errors import BusyError, ConfigError, DeniedError, NotFoundError, UnavailableError, ZeroTrustError
from zerotrust_admin.secret import Secret
from zerotrust_admin.structs import field, struct
from zerotrust_admin.vault.vault import ImportResult, SecretInfo, VersionInfo

DEFAULT_TIMEOUT = 5.0  # seconds: connect and read, per request


class VersionConflict(BusyError):
    """Check-and-set failed: someone wrote a newer version meanwhile (exit 7, retry)."""


class SecretProvider(Protocol):
    """One secret store. Implementations: local, hashicorp, aws, azure."""

    kind: str
    keeps_versions: bool

    def put(self, name: str, value: bytes, *, metadata: dict | None = None, sensitive: bool = False, cas: int | None = None) -> VersionInfo:
        """Store a new version; with ``cas`` it succeeds only if the current version is ``cas`` (0: must not exist)."""

    def get(self, name: str, version: int | None = None) -> tuple[Secret, VersionInfo]: ...

    def info(self, name: str) -> SecretInfo: ...

    def list(self, prefix: str = "", *, include_deleted: bool = False) -> Iterator[SecretInfo]: ...

    def history(self, name: str) -> list[VersionInfo]: ...

    def delete(self, name: str) -> None:
        """Soft delete: hidden from get/list, recoverable with ``undelete``."""

    def undelete(self, name: str) -> None: ...

    def destroy(self, name: str) -> int:
        """Purge every version; returns how many there were."""

    def import_many(self, items: Iterable[tuple[str, bytes]], *, source: str = "", progress: Callable[[int], None] | None = None,
                    compare: bool = True) -> ImportResult:
        """``compare=False``: write every item without reading any current value (threat-model row P3)."""

    def export_all(self, prefix: str = "") -> Iterator[tuple[str, Secret, VersionInfo]]: ...

    def check(self) -> dict:
        """Authenticate and probe permissions: {"endpoint", "identity", "problems": [...]}."""

    def describe(self) -> dict: ...

    def close(self) -> None: ...


@struct
class ProviderContext:
    """What a provider needs to open: its config block and ways to reach secrets."""

    kind: str
    settings: dict
    config: object  # zerotrust_admin.config.Config
    environ: dict = field(default_factory=dict)
    open_local_vault: Callable[[], object] | None = None
    actor_name: str = ""

    def timeout(self) -> float:
        raw = self.settings.get("timeout", self.settings.get("timeout_seconds", DEFAULT_TIMEOUT))
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"secrets.config.timeout must be a number of seconds, not {raw!r}") from None
        if not 0 < value <= 300:
            raise ConfigError("secrets.config.timeout must be between 0 and 300 seconds")
        return value

    def setting(self, *keys: str, default=None):
        for key in keys:
            value = self.settings.get(key)
            if value not in (None, ""):
                return value
        return default

    def secret(self, key: str, *env_names: str) -> Secret | None:
        """A secret setting: ``key`` (literal or ``${VAR}``), ``key_file``, else the named env variables."""
        value = self.settings.get(key)
        if isinstance(value, str) and value.startswith("vault:"):
            raise ConfigError(f"secrets.config.{key} cannot be a vault: reference (the provider would need itself to start)",
                              hint=f"use {key}_file or an environment variable")
        if value not in (None, ""):
            return Secret(str(value))
        path = self.settings.get(key + "_file")
        if path:
            from pathlib import Path

            from zerotrust_admin.config.loader import read_secret_file

            return Secret(read_secret_file(Path(str(path)).expanduser(), f"secrets.config.{key}_file"))
        for env in env_names:
            if self.environ.get(env):
                return Secret(self.environ[env])
        return None

    def ca_file(self) -> str | None:
        """``ca_file`` or ``tls.ca_file`` in the provider block, else the top-level ``tls.ca_file``."""
        tls = self.settings.get("tls")
        if isinstance(tls, dict) and tls.get("ca_file"):
            return str(tls["ca_file"])
        if self.settings.get("ca_file"):
            return str(self.settings["ca_file"])
        if isinstance(tls, str) and tls:
            return tls
        top = getattr(self.config, "get", lambda *_: None)("tls.ca_file")
        return str(top) if top else None

    def tls_verify(self) -> bool:
        tls = self.settings.get("tls")
        if isinstance(tls, dict) and tls.get("verify") is False:
            return False
        return self.settings.get("tls_verify", True) is not False

    def tls_policy(self) -> dict:
        """The top-level ``tls`` policy (min version, AEAD ciphers, client cert)
        with this provider's CA and verification setting: the ``config`` argument
        for zerotrust_admin.tlspolicy helpers."""
        section = self.config.section("tls") if hasattr(self.config, "section") else {}
        merged = dict(section or {})
        provider_tls = self.settings.get("tls")
        if isinstance(provider_tls, dict):
            merged.update({k: v for k, v in provider_tls.items() if k in ("min_version", "ciphers", "cert_file", "key_file")})
        ca = self.ca_file()
        if ca:
            merged["ca_file"] = ca
        merged["verify"] = self.tls_verify()
        return {"tls": merged}


def iso_utc(value) -> str:
    """An SDK timestamp (datetime or text) as RFC 3339 UTC, seconds precision."""
    from datetime import datetime, timezone

    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or "")


def unavailable(kind: str, endpoint: str, what: str = "unreachable", timeout: float | None = None) -> UnavailableError:
    within = f" within {timeout:g} s" if timeout else ""
    return UnavailableError(f"{kind} secret provider at {endpoint} is {what}{within}",
                            hint="check the address, the network and that the service is up; secrets.config.timeout sets the limit")


def tls_refused(kind: str, endpoint: str, ca_file: str | None) -> UnavailableError:
    against = f"against {ca_file}" if ca_file else "against the system CA bundle"
    return UnavailableError(f"{kind} secret provider at {endpoint}: its TLS certificate does not verify {against}; refused",
                            hint="set secrets.config.ca_file to the CA that signed the server certificate")


def denied(kind: str, endpoint: str, what: str = "refused our credentials") -> DeniedError:
    return DeniedError(f"{kind} secret provider at {endpoint} {what}",
                       hint="check the credentials in secrets.config (expired or wrong secret?) and the policy attached to them")


def not_found(name: str, version: int | None = None) -> NotFoundError:
    if version is not None:
        return NotFoundError(f"secret {name!r} has no version {version}", hint=f"see its versions with: zerotrust-admin vault history {name}")
    return NotFoundError(f"secret {name!r} not found", hint="list secrets with: zerotrust-admin vault list")


def deleted(name: str) -> NotFoundError:
    return NotFoundError(f"secret {name!r} is deleted (recoverable)", hint=f"restore it with: zerotrust-admin vault undelete {name}")


def missing_sdk(kind: str, module: str, extra: str) -> ConfigError:
    return ConfigError(f"the {kind} secret provider needs the Python package {module}, which is not installed",
                       hint=f"pip install 'zerotrust-admin[{extra}]'")


def encode_value(value: bytes) -> tuple[str, bool]:
    """(text, is_base64): UTF-8 text is stored as is, anything else as base64."""
    try:
        return value.decode("utf-8"), False
    except UnicodeDecodeError:
        import base64

        return base64.b64encode(value).decode("ascii"), True


def decode_value(text: str, is_base64: bool) -> bytes:
    if is_base64:
        import base64

        return base64.b64decode(text)
    return text.encode("utf-8")


class ProviderBase:
    """Shared behaviour built on the primitive operations, so each provider
    module only maps its own API: bulk import, export, info by listing."""

    kind = "base"
    keeps_versions = True

    @contextmanager
    def _err(self, name: str | None = None, version: int | None = None):
        """SDK exceptions -> our errors via the provider's ``_map``; never their
        text (it can quote a request or a response)."""
        try:
            yield
        except ZeroTrustError:
            raise
        except Exception as exc:
            raise self._map(exc, name, version) from None

    def _map(self, exc: Exception, name: str | None, version: int | None) -> ZeroTrustError:
        raise NotImplementedError

    def import_many(self, items: Iterable[tuple[str, bytes]], *, source: str = "", progress: Callable[[int], None] | None = None,
                    compare: bool = True) -> ImportResult:
        """Write every item; with ``compare`` an item equal to the current value
        is skipped (``unchanged``). With ``compare=False`` no current value is
        read: every item is a new version (``created`` or ``updated``, from the
        metadata alone), so a caller without ``read`` learns nothing about the
        stored values (threat-model row P3, ``AccessGuard.may_compare_import``)."""
        from zerotrust_admin.names import validate_name
        from zerotrust_admin.vault.vault import _check_value

        items = list(items)
        for name, value in items:  # validate everything before writing anything
            validate_name(name)
            _check_value(value, name)
        result = ImportResult(compared=compare)
        for done, (name, value) in enumerate(items, start=1):
            if not compare:
                exists = self._exists(name)
            else:
                try:
                    current, _ = self.get(name)
                except NotFoundError:
                    exists = False
                else:
                    with current:
                        same = current.reveal() == value
                    if same:
                        result.unchanged += 1
                        continue
                    exists = True
            if exists:
                result.updated += 1
            else:
                result.created += 1
            self.put(name, value)
            if progress and done % 100 == 0:
                progress(done)
        return result

    def _exists(self, name: str) -> bool:
        """A live (not soft-deleted) secret of that name, from metadata only."""
        try:
            return getattr(self.info(name), "deleted_at", None) is None
        except NotFoundError:
            return False

    def export_all(self, prefix: str = "") -> Iterator[tuple[str, Secret, VersionInfo]]:
        for info in list(self.list(prefix)):
            secret, version = self.get(info.name)
            yield info.name, secret, version

    def describe(self) -> dict:
        return {"kind": self.kind}

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    # Provider-side key rotation (rotate-keys / keys status); None when the provider has no key of its own.
    def provider_key_status(self) -> dict | None:
        return None

    def rotate_provider_key(self, *, dry_run: bool = False) -> dict | None:
        return None


def version_info(name: str, version: int, created: str = "", created_by: str = "", size: int = 0, metadata: dict | None = None, current: bool = False) -> VersionInfo:
    """A VersionInfo for an external provider (no data key of ours: dek_id is "")."""
    return VersionInfo(name, version, created, created_by, size, "", dict(metadata or {}), current)


def quiet_sdk_loggers(*names: str) -> None:
    """SDKs log failures (with server messages) at WARNING; Python's last-resort
    handler would print them on stderr. Our own error line says what matters."""
    import logging

    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
        logger.propagate = False
