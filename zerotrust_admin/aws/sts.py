"""Issuing STS temporary credentials: ``AssumeRole`` for the operator principal.

Everything that can be checked locally is checked before any AWS call: the
ARNs, the account allow-list, the duration bounds (900-43,200 s; a chained
session at most 3,600 s, as AWS enforces), the session policy and tags. The
principal becomes both RoleSessionName and SourceIdentity (aws.names), so a
session is attributable and revocable per user (aws.revoke).

boto3 is imported inside the functions that call AWS (it costs ~130 ms), and
an SDK error never reaches a message whole: only its error code does.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timezone
from typing import Callable

from zerotrust_admin.aws.credentials import Credentials
from zerotrust_admin.aws.names import RoleArn, check_external_id, parse_role_arn, session_name
from zerotrust_admin.aws.settings import (
    CHAINED_MAX_DURATION,
    MAX_DURATION,
    MIN_DURATION,
    AwsSettings,
    session_policy_text,
    session_tags,
)
from zerotrust_admin.errors import ConfigError, DeniedError, NotFoundError, UnavailableError, UsageError, ZeroTrustError
from zerotrust_admin.structs import struct

MAX_HOPS = 5
HOP_DURATION = 900  # an intermediate hop only has to live through the next call

THROTTLE_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
                  "PriorRequestNotComplete", "SlowDown", "ServiceUnavailable", "InternalFailure", "InternalError"}
DENIED_CODES = {"AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
                "ExpiredTokenException", "UnrecognizedClientException", "RegionDisabledException", "InvalidAccessKeyId",
                "AuthFailure", "OptInRequired"}
USAGE_CODES = {"ValidationError", "MalformedPolicyDocument", "PackedPolicyTooLarge", "InvalidParameterValue",
               "MalformedPolicyDocumentException", "LimitExceeded"}


@struct(frozen=True)
class Hop:
    role: RoleArn
    external_id: str | None
    duration: int
    source_identity: str | None
    policy: str | None = None
    tags: tuple = ()


@struct(frozen=True)
class AssumeRequest:
    """One fully validated request: the hops in order, the last one is the target."""

    principal: str
    session_name: str
    hops: tuple[Hop, ...]

    @property
    def role(self) -> RoleArn:
        return self.hops[-1].role

    @property
    def duration(self) -> int:
        return self.hops[-1].duration

    @property
    def via(self) -> list[str]:
        return [h.role.arn for h in self.hops[:-1]]

    def identity(self) -> str:
        """What determines the credentials: equal identities may share a cache entry."""
        doc = {"p": self.principal, "n": self.session_name,
               "h": [[h.role.arn, h.external_id or "", h.duration, h.source_identity or "", h.policy or "", list(map(list, h.tags))] for h in self.hops]}
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)

    def identity_hash(self) -> str:
        return hashlib.sha256(self.identity().encode("utf-8")).hexdigest()


def build_request(settings: AwsSettings, principal: str, role_arn: str, *, external_id: str | None = None,
                  via: list[str] | tuple[str, ...] = (), duration: int | None = None) -> AssumeRequest:
    """Validate everything locally (no AWS call) -> AssumeRequest, or UsageError / DeniedError."""
    target = parse_role_arn(role_arn)
    chain = [parse_role_arn(a) for a in via]
    if len(chain) >= MAX_HOPS:
        raise UsageError(f"at most {MAX_HOPS - 1} --via hops")
    allowed = settings.allowed()
    if allowed is not None:
        for role in chain + [target]:
            if role.account not in allowed:
                raise DeniedError(f"role {role.arn} is in account {role.account}, which is not in aws.allowed_accounts",
                                  hint="add the account to aws.allowed_accounts if it is meant to be reachable")
    role_block = settings.for_role(target.arn)
    if duration is None:
        duration = int(role_block.get("duration_seconds") or settings.duration_seconds)
        if chain:
            duration = min(duration, CHAINED_MAX_DURATION)
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise UsageError("--duration must be a whole number of seconds")
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise UsageError(f"--duration {duration} is out of range", hint=f"{MIN_DURATION}-{MAX_DURATION} seconds (15 minutes to 12 hours)")
    if chain and duration > CHAINED_MAX_DURATION:
        raise UsageError(f"--duration {duration} is too long for a chained session (--via)",
                         hint=f"AWS caps role chaining at {CHAINED_MAX_DURATION} seconds (1 hour)")
    if external_id is not None:
        check_external_id(external_id)
    else:
        configured = role_block.get("external_id", settings.external_id)
        external_id = check_external_id(str(configured)) if configured is not None else None
    name = session_name(principal)
    hops = []
    for i, role in enumerate(chain):
        hop_ext = settings.for_role(role.arn).get("external_id")
        hops.append(Hop(role, check_external_id(str(hop_ext)) if hop_ext is not None else None, HOP_DURATION,
                        name if (i == 0 and settings.set_source_identity) else None))
    policy = session_policy_text(role_block.get("session_policy", settings.session_policy),
                                 "aws.role_config session_policy" if "session_policy" in role_block else "aws.session_policy")
    tags = session_tags(role_block.get("session_tags", settings.session_tags),
                        "aws.role_config session_tags" if "session_tags" in role_block else "aws.session_tags")
    hops.append(Hop(target, external_id, duration, name if (not chain and settings.set_source_identity) else None, policy, tags))
    return AssumeRequest(principal=principal, session_name=name, hops=tuple(hops))


# --- talking to AWS --------------------------------------------------------------
def botocore_config(settings: AwsSettings):
    from botocore.config import Config

    # Retries are ours (bounded, throttling and 5xx only), so botocore makes one attempt.
    return Config(connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
                  retries={"total_max_attempts": 1, "mode": "standard"}, region_name=settings.region)


def base_session(settings: AwsSettings, config):
    """The boto3 session holding the long-term credentials (aws.credentials_provider)."""
    import boto3

    if settings.credentials_provider == "environment":
        access_key = config.get("aws.access_key") or config.get("aws.access_key_id")
        secret = config.get_secret("aws.secret_key") or config.get_secret("aws.secret_access_key")
        if not access_key or secret is None:
            raise ConfigError("aws.credentials_provider is 'environment' but ZEROTRUST_AWS_ACCESS_KEY / ZEROTRUST_AWS_SECRET_KEY are not set",
                              hint="export both, or set aws.credentials_provider: default (boto3's chain)")
        with secret:
            return boto3.session.Session(aws_access_key_id=str(access_key), aws_secret_access_key=secret.reveal_text(),
                                         region_name=settings.region)
    return boto3.session.Session(profile_name=settings.profile, region_name=settings.region)


def client(settings: AwsSettings, session, service: str):
    from zerotrust_admin.tlspolicy import apply_to_boto3_client, boto3_client_kwargs

    policy = {"tls": settings.tls}
    kwargs = boto3_client_kwargs(policy)
    if "config" in kwargs:
        kwargs["config"] = botocore_config(settings).merge(kwargs["config"])
    else:
        kwargs["config"] = botocore_config(settings)
    made = session.client(service, region_name=settings.region, endpoint_url=settings.endpoint_for(service), **kwargs)
    endpoint = settings.endpoint_for(service) or "https://"
    if endpoint.startswith("https://") and settings.tls.get("verify") is not False:
        apply_to_boto3_client(made, policy)  # TLS 1.2+, AEAD suites only (docs/security-model.md)
    return made


def translate(exc: Exception, what: str, endpoint: str | None) -> ZeroTrustError | None:
    """An SDK exception -> our error (code only: SDK messages can echo request data)."""
    from botocore import exceptions as bx

    where = endpoint or "AWS"
    if isinstance(exc, bx.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in DENIED_CODES or status == 403:
            return DeniedError(f"AWS refused {what} ({code})", hint="check the role's trust policy (sts:AssumeRole, sts:SetSourceIdentity, sts:TagSession) and the caller's credentials")
        if code in ("NoSuchEntity", "NoSuchEntityException"):
            return NotFoundError(f"AWS: {what} failed: the role does not exist ({code})")
        if code in THROTTLE_CODES or (status or 0) >= 500 or status == 429:
            return UnavailableError(f"AWS kept failing {what} ({code})", hint="AWS is throttling or failing; retry later (aws.max_attempts)")
        if code in USAGE_CODES or status == 400:
            return UsageError(f"AWS rejected {what} ({code})", hint="check the duration against the role's maximum session duration, the session policy and tags")
        return ZeroTrustError(f"AWS: {what} failed ({code})")
    if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
        return UnavailableError(f"AWS at {where} did not answer {what} within the timeout", hint="check aws.endpoint_url and the network; aws.connect_timeout / aws.read_timeout")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.HTTPClientError)):
        return UnavailableError(f"AWS at {where} is unreachable ({what})", hint="check aws.endpoint_url and the network")
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return ConfigError("no AWS credentials to call STS with", hint="set aws.credentials_provider: environment with ZEROTRUST_AWS_ACCESS_KEY / ZEROTRUST_AWS_SECRET_KEY, or configure boto3's default chain")
    if isinstance(exc, bx.ProfileNotFound):
        return ConfigError(f"AWS profile {getattr(exc, 'kwargs', {}).get('profile', '')!r} not found", hint="check aws.profile")
    if isinstance(exc, bx.ParamValidationError):
        return UsageError(f"invalid parameters for {what}")
    if isinstance(exc, bx.BotoCoreError):
        return UnavailableError(f"AWS call {what} failed ({type(exc).__name__})")
    return None


def is_retryable(exc: Exception) -> bool:
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in THROTTLE_CODES or status >= 500 or status == 429
    return False


def call_with_retries(fn: Callable[[], object], settings: AwsSettings, what: str, endpoint: str | None, *,
                      sleep: Callable[[float], None] = time.sleep):
    """``fn()`` with at most ``settings.max_attempts`` attempts on throttling / 5xx,
    exponential backoff with jitter; other errors fail at once."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - translated below
            if is_retryable(exc) and attempt < settings.max_attempts:
                delay = settings.retry_base_seconds * (2 ** (attempt - 1))
                import random  # only when retrying: off the cache hit's start

                sleep(min(delay, 20.0) * (0.5 + random.random() / 2))  # nosec B311 - backoff jitter, not a secret
                continue
            mapped = translate(exc, what, endpoint)
            if mapped is None:
                raise
            if is_retryable(exc):
                mapped.message = f"{mapped.message} after {attempt} attempt(s)"
            raise mapped from None


def assume(request: AssumeRequest, settings: AwsSettings, config, *, session_factory=None) -> Credentials:
    """Run the hops of ``request`` against STS; the last hop's credentials."""
    import boto3

    session = (session_factory or base_session)(settings, config)
    endpoint = settings.endpoint_for("sts")
    creds = None
    response = None
    for hop in request.hops:
        if creds is not None:
            session = boto3.session.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                            aws_session_token=creds["SessionToken"], region_name=settings.region)
        sts = client(settings, session, "sts")
        params = {"RoleArn": hop.role.arn, "RoleSessionName": request.session_name, "DurationSeconds": hop.duration}
        if hop.external_id:
            params["ExternalId"] = hop.external_id
        if hop.source_identity:
            params["SourceIdentity"] = hop.source_identity
        if hop.policy:
            params["Policy"] = hop.policy
        if hop.tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in hop.tags]
        response = call_with_retries(lambda: sts.assume_role(**params), settings, f"AssumeRole on {hop.role.arn}", endpoint)
        creds = response["Credentials"]
    expiration = creds["Expiration"]
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=timezone.utc)
    result = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], expiration,
                         role_arn=request.role.arn, session_name=request.session_name,
                         assumed_role_arn=(response.get("AssumedRoleUser") or {}).get("Arn", ""))
    creds.clear()
    return result
