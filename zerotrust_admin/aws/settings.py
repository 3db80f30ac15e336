"""The ``aws`` config section, read once into ``AwsSettings``.

```yaml
aws:
  region: us-east-1
  endpoint_url: https://vpce-....sts.us-east-1.vpce.amazonaws.com   # all services
  endpoints: {sts: ..., iam: ...}           # per-service overrides
  roles: [arn:aws:iam::123456789012:role/Admin, ...]
  allowed_accounts: ["123456789012"]        # quote them: YAML eats leading zeros
  duration_seconds: 3600                    # 900-43200, and at most the role's maximum
  credentials_provider: default             # default (boto3 chain) | environment
  external_id: ...                          # default ExternalId for every role
  session_policy: {Version: "2012-10-17", Statement: [...]}
  session_tags: {team: ops}
  set_source_identity: true                 # the role trust policy must allow sts:SetSourceIdentity
  role_config:
    arn:aws:iam::210987654321:role/Audit: {external_id: ..., session_policy: ..., session_tags: ..., duration_seconds: 900}
  connect_timeout: 3
  read_timeout: 10
  max_attempts: 4                           # per AWS call, throttling and 5xx only
  retry_base_seconds: 0.5
  cache: {enabled: true, safety_margin_seconds: 300}
  revocation_policy_name: ZeroTrustRevokedSessions
```
"""

from __future__ import annotations

import json

from zerotrust_admin.aws.names import check_account, check_external_id, parse_role_arn
from zerotrust_admin.errors import ConfigError
from zerotrust_admin.structs import field, struct

MIN_DURATION = 900
MAX_DURATION = 43_200
CHAINED_MAX_DURATION = 3_600
DEFAULT_DURATION = 3_600
SESSION_POLICY_MAX = 2_048
DEFAULT_MARGIN = 300
REVOCATION_POLICY = "ZeroTrustRevokedSessions"


def _num(value, key: str, default: float, low: float, high: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"aws.{key} must be a number") from None
    if not low <= number <= high:
        raise ConfigError(f"aws.{key} must be between {low:g} and {high:g}")
    return number


@struct
class AwsSettings:
    region: str = "us-east-1"
    endpoint_url: str | None = None
    endpoints: dict = field(default_factory=dict)
    roles: list = field(default_factory=list)
    allowed_accounts: list = field(default_factory=list)
    duration_seconds: int = DEFAULT_DURATION
    credentials_provider: str = "default"
    external_id: str | None = None
    session_policy: object = None
    session_tags: object = None
    set_source_identity: bool = True
    role_config: dict = field(default_factory=dict)
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_attempts: int = 4
    retry_base_seconds: float = 0.5
    cache_enabled: bool = True
    safety_margin: float = DEFAULT_MARGIN
    revocation_policy_name: str = REVOCATION_POLICY
    profile: str | None = None
    tls: dict = field(default_factory=dict)  # the top-level tls policy (zerotrust_admin.tlspolicy)

    @classmethod
    def from_config(cls, config) -> "AwsSettings":
        a = config.section("aws")
        provider = str(a.get("credentials_provider") or "default").lower()
        if provider not in ("default", "environment", "env"):
            raise ConfigError(f"aws.credentials_provider {provider!r} is not 'environment' or 'default'")
        endpoints = a.get("endpoints") or {}
        if not isinstance(endpoints, dict):
            raise ConfigError("aws.endpoints must map a service name (sts, iam) to a URL")
        role_config = a.get("role_config") or {}
        if not isinstance(role_config, dict):
            raise ConfigError("aws.role_config must map role ARNs to settings")
        for arn in role_config:
            parse_role_arn(str(arn))
        cache = a.get("cache") or {}
        if not isinstance(cache, dict):
            raise ConfigError("aws.cache must be a mapping (enabled, safety_margin_seconds)")
        roles = [str(r) for r in (a.get("roles") or [])]
        for arn in roles:
            parse_role_arn(arn)
        external_id = a.get("external_id")
        if external_id is not None:
            check_external_id(str(external_id))
        duration = int(_num(a.get("duration_seconds"), "duration_seconds", DEFAULT_DURATION, MIN_DURATION, MAX_DURATION))
        return cls(
            region=str(a.get("region") or "us-east-1"),
            endpoint_url=a.get("endpoint_url") or None,
            endpoints={str(k).lower(): str(v) for k, v in endpoints.items()},
            roles=roles,
            allowed_accounts=[check_account(x) for x in (a.get("allowed_accounts") or [])],
            duration_seconds=duration,
            credentials_provider="environment" if provider == "env" else provider,
            external_id=str(external_id) if external_id is not None else None,
            session_policy=a.get("session_policy"),
            session_tags=a.get("session_tags"),
            set_source_identity=bool(a.get("set_source_identity", True)),
            role_config={str(k): (v or {}) for k, v in role_config.items()},
            connect_timeout=_num(a.get("connect_timeout"), "connect_timeout", 3.0, 0.1, 120),
            read_timeout=_num(a.get("read_timeout"), "read_timeout", 10.0, 0.1, 300),
            max_attempts=int(_num(a.get("max_attempts"), "max_attempts", 4, 1, 10)),
            retry_base_seconds=_num(a.get("retry_base_seconds"), "retry_base_seconds", 0.5, 0.0, 30),
            cache_enabled=bool(cache.get("enabled", True)),
            safety_margin=_num(cache.get("safety_margin_seconds"), "cache.safety_margin_seconds", DEFAULT_MARGIN, 0, 3600),
            revocation_policy_name=str(a.get("revocation_policy_name") or REVOCATION_POLICY),
            profile=a.get("profile") or None,
            tls=dict(config.section("tls")) if hasattr(config, "section") else {},
        )

    def endpoint_for(self, service: str) -> str | None:
        return self.endpoints.get(service) or self.endpoint_url

    def for_role(self, arn: str) -> dict:
        block = self.role_config.get(arn) or {}
        if not isinstance(block, dict):
            raise ConfigError(f"aws.role_config[{arn!r}] must be a mapping")
        unknown = set(block) - {"external_id", "session_policy", "session_tags", "duration_seconds"}
        if unknown:
            raise ConfigError(f"aws.role_config[{arn!r}] has unknown key(s): {', '.join(sorted(unknown))}",
                              hint="known: external_id, session_policy, session_tags, duration_seconds")
        return block

    def allowed(self) -> set[str] | None:
        """The accounts roles may live in: aws.allowed_accounts, else the accounts
        of aws.roles, else None (any account)."""
        if self.allowed_accounts:
            return set(self.allowed_accounts)
        if self.roles:
            return {parse_role_arn(r).account for r in self.roles}
        return None


def session_policy_text(value, where: str) -> str | None:
    """An inline session policy as compact JSON (AWS's limit: 2,048 characters)."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{where} is not valid JSON") from None
    if not isinstance(value, dict) or "Statement" not in value:
        raise ConfigError(f"{where} must be an IAM policy document with a Statement")
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if len(text) > SESSION_POLICY_MAX:
        raise ConfigError(f"{where} is {len(text)} characters; AWS allows {SESSION_POLICY_MAX}")
    return text


def session_tags(value, where: str) -> tuple[tuple[str, str], ...]:
    if value in (None, {}, []):
        return ()
    if isinstance(value, dict):
        pairs = [(str(k), "" if v is None else str(v)) for k, v in value.items()]
    elif isinstance(value, list) and all(isinstance(t, dict) and "Key" in t for t in value):
        pairs = [(str(t["Key"]), str(t.get("Value", ""))) for t in value]
    else:
        raise ConfigError(f"{where} must be a mapping of tag keys to values")
    if len(pairs) > 50:
        raise ConfigError(f"{where} has {len(pairs)} tags; AWS allows 50")
    for key, val in pairs:
        if not 1 <= len(key) <= 128 or len(val) > 256:
            raise ConfigError(f"{where}: tag keys are 1-128 characters and values at most 256")
    return tuple(sorted(pairs))
