"""AWS Secrets Manager in ``region`` (``endpoint_url`` for a private endpoint
or a test server), values encrypted under ``kms_key_id``.

Mapping: version N of a secret is the Secrets Manager version whose id (our
ClientRequestToken) is ``ztv<N, 10 digits>-<hash of the name>``; the current
version is the one staged AWSCURRENT. Versions written by other tools are
numbered after ours in creation order. Text is stored as SecretString, other
bytes as SecretBinary. ``delete`` schedules deletion with a recovery window
(``recovery_window_days``, 7-30, default 30; ``undelete`` restores);
``destroy`` forces deletion without recovery. Metadata and ``sensitive`` are
secret tags (``zt:sensitive``, ``zt:updated-by``, user keys as given). AWS
keeps about 100 versions; older unstaged ones are removed by AWS.

Credentials: ``access_key_id`` + ``secret_access_key`` (or ``*_file``), or a
``profile``, else boto3's default chain (environment, instance role...).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Iterator

from zerotrust_admin.errors import ConfigError, UsageError, ZeroTrustError
from zerotrust_admin.names import validate_name, validate_prefix
from zerotrust_admin.providers.base import (
    ProviderBase,
    ProviderContext,
    VersionConflict,
    deleted,
    iso_utc as _iso,
    denied,
    missing_sdk,
    not_found,
    quiet_sdk_loggers,
    tls_refused,
    unavailable,
    version_info,
)
from zerotrust_admin.secret import Secret
from zerotrust_admin.vault.vault import SecretInfo, VersionInfo

TAG_SENSITIVE = "zt:sensitive"
TAG_BY = "zt:updated-by"
_TOKEN = re.compile(r"ztv(\d{10})-[0-9a-f]{20}")
DENIED_CODES = {"AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException",
                "InvalidSignatureException", "SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken",
                "AccessDenied", "ExpiredToken", "KMSInvalidStateException", "DisabledException"}


def version_token(name: str, number: int) -> str:
    return f"ztv{number:010d}-{hashlib.sha256(name.encode()).hexdigest()[:20]}"


class AwsProvider(ProviderBase):
    kind = "aws"
    keeps_versions = True
    concurrency = 8  # migrate writes in parallel (the SDK client is thread-safe)

    def __init__(self, ctx: ProviderContext):
        self._ctx = ctx
        cfg_get = getattr(ctx.config, "get", lambda *_: None)
        self.region = ctx.setting("region") or cfg_get("aws.region") or ctx.environ.get("AWS_REGION") or ctx.environ.get("AWS_DEFAULT_REGION")
        if not self.region:
            raise ConfigError("the aws provider needs secrets.config.region", hint="e.g. region: us-east-1")
        self.endpoint_url = ctx.setting("endpoint_url") or cfg_get("aws.endpoint_url")
        self.kms_key_id = ctx.setting("kms_key_id")
        self.recovery_days = int(ctx.setting("recovery_window_days", default=30))
        if not 7 <= self.recovery_days <= 30:
            raise ConfigError("secrets.config.recovery_window_days must be between 7 and 30 (the AWS limits)")
        self._timeout = ctx.timeout()
        self._actor = ctx.actor_name
        quiet_sdk_loggers("botocore", "boto3", "urllib3")
        self._session = None
        self._clients: dict = {}

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or f"secretsmanager.{self.region}.amazonaws.com"

    def describe(self) -> dict:
        return {"kind": self.kind, "region": self.region, "endpoint": self.endpoint, "kms_key_id": self.kms_key_id}

    def _client(self, service: str = "secretsmanager"):
        if service in self._clients:
            return self._clients[service]
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise missing_sdk("aws", "boto3", "aws") from None
        if self._session is None:
            key_id = self._ctx.setting("access_key_id", "aws_access_key_id")
            secret = self._ctx.secret("secret_access_key") or self._ctx.secret("secret_key")
            token = self._ctx.secret("session_token")
            kwargs = {"region_name": self.region}
            if key_id and secret is not None:
                with secret:
                    kwargs.update(aws_access_key_id=str(key_id), aws_secret_access_key=secret.reveal_text())
                if token is not None:
                    with token:
                        kwargs["aws_session_token"] = token.reveal_text()
            elif self._ctx.setting("profile"):
                kwargs["profile_name"] = str(self._ctx.setting("profile"))
            self._session = boto3.session.Session(**kwargs)
        config = Config(connect_timeout=self._timeout, read_timeout=self._timeout, retries={"max_attempts": 2, "mode": "standard"})
        verify = self._ctx.ca_file() or (None if self._ctx.tls_verify() else False)
        endpoint = self.endpoint_url
        if service != "secretsmanager" and endpoint and ".amazonaws.com" in endpoint:
            endpoint = None  # a Secrets Manager VPC endpoint does not serve STS or KMS
        with self._err():
            client = self._session.client(service, endpoint_url=endpoint, config=config, verify=verify)
            if (endpoint or "https://").startswith("https://") and verify is not False:
                from zerotrust_admin.tlspolicy import apply_to_boto3_client

                apply_to_boto3_client(client, self._ctx.tls_policy())  # TLS 1.2+, AEAD suites only
        self._clients[service] = client
        return client

    def _map(self, exc: Exception, name: str | None, version: int | None) -> ZeroTrustError:
        from botocore import exceptions as bx

        if isinstance(exc, bx.ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return not_found(name or "(unknown)", version)
            if code == "ResourceExistsException":
                return VersionConflict(f"secret {name!r} changed meanwhile (check-and-set failed)", hint="read it again and retry")
            if code in DENIED_CODES:
                what = "refused our credentials" if code not in ("AccessDeniedException", "AccessDenied") else (f"denied access to {name!r}" if name else "denied the request")
                return denied(self.kind, self.endpoint, what)
            if code in ("ThrottlingException", "TooManyRequestsException", "LimitExceededException"):
                from zerotrust_admin.errors import BusyError

                return BusyError(f"aws secret provider at {self.endpoint} is throttling requests", hint="retry later")
            if code in ("InternalServiceError", "ServiceUnavailable", "InternalFailure"):
                return unavailable(self.kind, self.endpoint, "failing (server error)")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status in (401, 403) or code in ("401", "403"):
                return denied(self.kind, self.endpoint, "refused our credentials")
            if status >= 500 or code.isdigit() and int(code) >= 500:
                return unavailable(self.kind, self.endpoint, "failing (server error)")
            if code in ("InvalidParameterException", "ValidationException"):
                return UsageError(f"aws secret provider rejected the request for {name!r} ({code})")
            return UsageError(f"aws secret provider refused the request for {name!r} ({code})")
        if isinstance(exc, bx.SSLError):
            return tls_refused(self.kind, self.endpoint, self._ctx.ca_file())
        if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
            return unavailable(self.kind, self.endpoint, "not answering", self._timeout)
        if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.HTTPClientError)):
            return unavailable(self.kind, self.endpoint, "unreachable", self._timeout)
        if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.ProfileNotFound)):
            return denied(self.kind, self.endpoint, "has no usable credentials here (no AWS credentials found)")
        if isinstance(exc, bx.NoRegionError):
            return ConfigError("the aws provider needs a region")
        if isinstance(exc, bx.BotoCoreError):
            return unavailable(self.kind, self.endpoint, f"failing ({type(exc).__name__})")
        return unavailable(self.kind, self.endpoint, f"failing ({type(exc).__name__})")

    # --- helpers ---------------------------------------------------------------------
    def _describe(self, name: str) -> dict:
        with self._err(name):
            return self._client().describe_secret(SecretId=name)

    def _numbered(self, name: str, versions: list[dict]) -> list[tuple[int, dict]]:
        """[(number, version entry)] in creation order; foreign ids numbered after ours."""
        out = []
        highest = 0
        entries = sorted(versions, key=lambda v: (v.get("CreatedDate") or datetime.min.replace(tzinfo=timezone.utc), v.get("VersionId", "")))
        for entry in entries:
            m = _TOKEN.fullmatch(entry.get("VersionId", ""))
            if m and entry["VersionId"] == version_token(name, int(m.group(1))):
                number = int(m.group(1))
            else:
                number = highest + 1
            highest = max(highest, number)
            out.append((number, entry))
        return out

    def _versions(self, name: str) -> list[tuple[int, dict]]:
        client = self._client()
        versions: list[dict] = []
        kwargs = {"SecretId": name, "IncludeDeprecated": True, "MaxResults": 100}
        with self._err(name):
            while True:
                page = client.list_secret_version_ids(**kwargs)
                versions.extend(page.get("Versions", []))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return self._numbered(name, versions)

    def _number_of(self, name: str, version_id: str) -> int:
        m = _TOKEN.fullmatch(version_id or "")
        if m and version_id == version_token(name, int(m.group(1))):
            return int(m.group(1))
        for number, entry in self._versions(name):
            if entry.get("VersionId") == version_id:
                return number
        return 0

    def _current_number(self, desc: dict) -> int:
        for vid, stages in (desc.get("VersionIdsToStages") or {}).items():
            if "AWSCURRENT" in stages:
                return self._number_of(desc["Name"], vid)
        return 0

    @staticmethod
    def _tags(desc: dict) -> dict:
        return {t["Key"]: t["Value"] for t in desc.get("Tags") or []}

    def _is_deleted(self, name: str) -> bool:
        try:
            return bool(self._describe(name).get("DeletedDate"))
        except ZeroTrustError:
            return False

    # --- reads -------------------------------------------------------------------------
    def get(self, name: str, version: int | None = None) -> tuple[Secret, VersionInfo]:
        validate_name(name)
        from botocore import exceptions as bx

        kwargs: dict = {"SecretId": name}
        if version is not None:
            kwargs["VersionId"] = version_token(name, version)
        client = self._client()
        try:
            resp = client.get_secret_value(**kwargs)
        except bx.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "InvalidRequestException" and self._is_deleted(name):
                raise deleted(name) from None
            if code == "ResourceNotFoundException" and version is not None:
                resp = self._get_foreign(name, version)
            else:
                raise self._map(exc, name, version) from None
        except Exception as exc:
            raise self._map(exc, name, version) from None
        if resp.get("SecretBinary") is not None:
            value = bytes(resp["SecretBinary"])
        else:
            value = (resp.get("SecretString") or "").encode("utf-8")
        number = version if version is not None else self._number_of(name, resp.get("VersionId", ""))
        current = "AWSCURRENT" in (resp.get("VersionStages") or [])
        return Secret(value), version_info(name, number, _iso(resp.get("CreatedDate")), "", len(value), {}, current)

    def _get_foreign(self, name: str, version: int) -> dict:
        for number, entry in self._versions(name):
            if number == version:
                with self._err(name, version):
                    return self._client().get_secret_value(SecretId=name, VersionId=entry["VersionId"])
        raise not_found(name, version)

    def info(self, name: str) -> SecretInfo:
        validate_name(name)
        return self._info(self._describe(name))

    def _info(self, desc: dict) -> SecretInfo:
        tags = self._tags(desc)
        return SecretInfo(desc["Name"], self._current_number(desc), _iso(desc.get("CreatedDate")), _iso(desc.get("LastChangedDate") or desc.get("CreatedDate")),
                          tags.get(TAG_SENSITIVE) == "true", _iso(desc["DeletedDate"]) if desc.get("DeletedDate") else None)

    def list(self, prefix: str = "", *, include_deleted: bool = False) -> Iterator[SecretInfo]:
        validate_prefix(prefix)
        client = self._client()
        kwargs: dict = {"MaxResults": 100, "IncludePlannedDeletion": include_deleted}
        if prefix:
            kwargs["Filters"] = [{"Key": "name", "Values": [prefix]}]
        out = []
        with self._err():
            while True:
                page = client.list_secrets(**kwargs)
                for desc in page.get("SecretList", []):
                    name = desc.get("Name", "")
                    if not name.startswith(prefix):
                        continue  # AWS's name filter is not case-sensitive; ours is
                    try:
                        validate_name(name)
                    except UsageError:
                        continue  # a secret name we cannot address (written by another tool)
                    if desc.get("DeletedDate") and not include_deleted:
                        continue
                    desc = dict(desc, VersionIdsToStages=desc.get("SecretVersionsToStages") or {})
                    out.append(self._info(desc))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return iter(sorted(out, key=lambda i: i.name))

    def history(self, name: str) -> list[VersionInfo]:
        validate_name(name)
        desc = self._describe(name)
        tags = self._tags(desc)
        out = []
        for number, entry in self._versions(name):
            current = "AWSCURRENT" in (entry.get("VersionStages") or [])
            out.append(version_info(name, number, _iso(entry.get("CreatedDate")), tags.get(TAG_BY, "") if current else "", 0,
                                    _user_tags(tags) if current else {}, current))
        return sorted(out, key=lambda v: v.version)

    # --- writes ----------------------------------------------------------------------
    def put(self, name: str, value: bytes, *, metadata: dict | None = None, sensitive: bool = False, cas: int | None = None) -> VersionInfo:
        from botocore import exceptions as bx

        from zerotrust_admin.vault.vault import _check_value

        validate_name(name)
        _check_value(value)
        client = self._client()
        try:
            # cas=0 promises a new secret: create_secret itself refuses an existing name.
            desc = client.describe_secret(SecretId=name) if cas != 0 else None
        except bx.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise self._map(exc, name, None) from None
            desc = None
        except Exception as exc:
            raise self._map(exc, name, None) from None
        if desc is not None and desc.get("DeletedDate"):
            with self._err(name):  # like the integrated vault: a write revives a soft-deleted secret
                client.restore_secret(SecretId=name)
        current = self._current_number(desc) if desc else 0
        if cas is not None and cas != current:
            raise VersionConflict(f"secret {name!r} changed meanwhile (check-and-set failed)", hint="read it again and retry")
        number = current + 1
        payload = _payload(value)
        tags = {TAG_BY: self._actor or "-"}
        if sensitive:
            tags[TAG_SENSITIVE] = "true"
        for k, v in (metadata or {}).items():
            if str(k).startswith("zt:") or str(k).startswith("aws:"):
                raise UsageError(f"metadata key {k!r} is reserved")
            tags[str(k)] = str(v)
        with self._err(name):
            if desc is None:
                kwargs = {"Name": name, "ClientRequestToken": version_token(name, number), "Tags": [{"Key": k, "Value": v} for k, v in tags.items()], **payload}
                if self.kms_key_id:
                    kwargs["KmsKeyId"] = str(self.kms_key_id)
                resp = client.create_secret(**kwargs)
            else:
                resp = client.put_secret_value(SecretId=name, ClientRequestToken=version_token(name, number), **payload)
                if any(self._tags(desc).get(k) != v for k, v in tags.items()):
                    client.tag_resource(SecretId=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return version_info(name, number, _iso(datetime.now(timezone.utc)), self._actor or "", len(value), _user_tags(tags), True)

    def delete(self, name: str) -> None:
        validate_name(name)
        desc = self._describe(name)
        if desc.get("DeletedDate"):
            return
        with self._err(name):
            self._client().delete_secret(SecretId=name, RecoveryWindowInDays=self.recovery_days)

    def undelete(self, name: str) -> None:
        validate_name(name)
        self._describe(name)
        with self._err(name):
            self._client().restore_secret(SecretId=name)

    def destroy(self, name: str) -> int:
        validate_name(name)
        self._describe(name)
        count = len(self._versions(name))
        with self._err(name):
            self._client().delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        return count

    # --- config check --connect / key rotation -----------------------------------
    def check(self) -> dict:
        problems = []
        identity = ""
        try:
            with self._err():
                identity = self._client("sts").get_caller_identity().get("Arn", "")
        except ZeroTrustError as exc:
            if exc.exit_code != 4 and exc.exit_code != 6:
                problems.append(f"cannot ask STS who we are ({type(exc).__name__})")
            elif exc.exit_code == 6 and not self.endpoint_url:
                raise
            elif exc.exit_code == 4:
                raise
        with self._err():
            self._client().list_secrets(MaxResults=1)
        if self.kms_key_id:
            try:
                with self._err():
                    self._client("kms").describe_key(KeyId=str(self.kms_key_id))
            except ZeroTrustError as exc:
                problems.append(f"cannot describe the KMS key {self.kms_key_id} ({'denied' if exc.exit_code == 4 else 'not found' if exc.exit_code == 3 else type(exc).__name__})")
        return {"endpoint": self.endpoint, "region": self.region, "identity": identity, "problems": problems}

    def provider_key_status(self) -> dict | None:
        key = str(self.kms_key_id or "aws/secretsmanager")
        status = {"provider": self.kind, "key_id": key, "kind": "kms"}
        if not self.kms_key_id:
            return dict(status, state="managed by AWS", rotation="AWS managed key (rotated yearly by AWS)")
        kms = self._client("kms")
        with self._err():
            meta = kms.describe_key(KeyId=key)["KeyMetadata"]
        status.update(key_arn=meta.get("Arn", ""), created=_iso(meta.get("CreationDate")), state=meta.get("KeyState", ""))
        if meta.get("KeyManager") == "AWS" or meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT" or meta.get("Origin") not in (None, "AWS_KMS"):
            status["rotation"] = "managed by AWS"
            return status
        try:
            with self._err():
                rot = kms.get_key_rotation_status(KeyId=meta["KeyId"])
            status["rotation"] = "enabled" if rot.get("KeyRotationEnabled") else "disabled"
            if rot.get("RotationPeriodInDays"):
                status["rotation_period_days"] = rot["RotationPeriodInDays"]
            if rot.get("NextRotationDate"):
                status["next_due"] = _iso(rot["NextRotationDate"])
        except ZeroTrustError:
            status["rotation"] = "unknown (no kms:GetKeyRotationStatus permission)"
        return status

    def rotate_provider_key(self, *, dry_run: bool = False) -> dict | None:
        """Rotate the KMS key now where AWS allows it (symmetric customer-managed keys);
        also turn on automatic rotation. Otherwise report that AWS manages it."""
        status = self.provider_key_status()
        if status is None or status.get("rotation") == "managed by AWS" or status.get("state") == "managed by AWS":
            return dict(status or {}, action="none", reason="managed by AWS")
        if dry_run:
            return dict(status, action="would rotate on demand")
        kms = self._client("kms")
        with self._err():
            kms.enable_key_rotation(KeyId=str(self.kms_key_id))
        try:
            with self._err():
                kms.rotate_key_on_demand(KeyId=str(self.kms_key_id))
            return dict(status, action="rotated on demand", rotation="enabled")
        except ZeroTrustError as exc:
            if exc.exit_code in (6,):
                raise
            return dict(status, action="automatic rotation enabled", rotation="enabled", reason="on-demand rotation not available for this key")


def _payload(value: bytes) -> dict:
    try:
        return {"SecretString": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"SecretBinary": value}


def _user_tags(tags: dict) -> dict:
    return {k: v for k, v in tags.items() if not k.startswith("zt:")}
