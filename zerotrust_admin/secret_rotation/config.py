"""The ``secret_rotation:`` configuration: one entry per managed secret.

    secret_rotation:
      - secret: redis/app          # the vault secret that holds the current credential
        kind: redis                # a kind registered in zerotrust_admin.secret_rotation.KINDS
        every: 30d
        grace: 1h                  # how long the previous credential keeps working
        target: {url: "redis://127.0.0.1:6379/0", user: app, admin_secret: redis/admin}

Every malformed entry is a ConfigError (exit 2) naming ``secret_rotation[i].key``.
``target`` never takes a secret inline: credentials live in the vault and the
target names them (``admin_secret``, ``webhook_secret``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zerotrust_admin.errors import ConfigError, UsageError

ENTRY_KEYS = {"secret", "kind", "every", "grace", "target", "description"}
# Keys that would hold a credential inline: refused in every target.
INLINE_SECRET_KEYS = {"password", "admin_password", "secret_access_key", "aws_secret_access_key", "token", "api_key",
                      "value", "passphrase", "pin", "private_key", "key", "secret", "webhook_key"}


@dataclass(frozen=True)
class ManagedSecret:
    index: int
    secret: str
    kind: str
    every: float      # seconds
    grace: float      # seconds
    target: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"secret_rotation[{self.index}]"

    def to_dict(self) -> dict:
        return {"secret": self.secret, "kind": self.kind, "every_seconds": self.every, "grace_seconds": self.grace,
                "target": {k: v for k, v in self.target.items()}}


def _duration(value, where: str, *, allow_zero: bool = False) -> float:
    from zerotrust_admin.sessions.base import parse_duration

    if allow_zero and value in (0, "0", "0s"):
        return 0.0
    try:
        return parse_duration(value, what=where)
    except UsageError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint="use e.g. 30d, 12h, 90m, 1w") from None


def load_managed(config) -> list[ManagedSecret]:
    """The validated entries (empty when the key is absent)."""
    from zerotrust_admin.names import validate_name
    from zerotrust_admin.secret_rotation.registry import KINDS, rotator_class

    raw = config.get("secret_rotation")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("secret_rotation must be a list of entries such as '- {secret: redis/app, kind: redis, every: 30d, grace: 1h, target: {...}}'")
    entries, seen = [], {}
    for i, item in enumerate(raw):
        where = f"secret_rotation[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a mapping with secret, kind, every, grace and target")
        unknown = sorted(set(map(str, item)) - ENTRY_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}", hint=f"the keys are {', '.join(sorted(ENTRY_KEYS))}")
        for required in ("secret", "kind"):
            if item.get(required) in (None, ""):
                raise ConfigError(f"{where}: {required} is required")
        if item.get("every") in (None, "") and str(item["kind"]).lower() != "tls":
            raise ConfigError(f"{where}: every is required", hint="e.g. every: 30d (tls alone may leave it out: renewed at two thirds of the lifetime)")
        name = item["secret"]
        if not isinstance(name, str):
            raise ConfigError(f"{where}.secret must be a secret name")
        try:
            validate_name(name)
        except UsageError as exc:
            raise ConfigError(f"{where}.secret: {exc.message}", hint=exc.hint) from None
        if name.startswith("_zerotrust/"):
            raise ConfigError(f"{where}.secret: _zerotrust/ names are the tool's own records")
        if name in seen:
            raise ConfigError(f"{where}.secret: {name!r} is already managed by secret_rotation[{seen[name]}]")
        seen[name] = i
        kind = str(item["kind"]).lower()
        if kind not in KINDS:
            raise ConfigError(f"{where}.kind: unknown kind {item['kind']!r}", hint=f"one of {', '.join(sorted(KINDS))}")
        every = _duration(item["every"], f"{where}.every") if item.get("every") not in (None, "") else 0.0  # 0: the kind decides (tls)
        grace = _duration(item.get("grace", "1h"), f"{where}.grace", allow_zero=True)
        if every and grace >= every:
            raise ConfigError(f"{where}: grace ({item.get('grace')}) must be shorter than every ({item['every']})",
                              hint="the previous credential must be retired before the next rotation starts")
        target = item.get("target") or {}
        if not isinstance(target, dict):
            raise ConfigError(f"{where}.target must be a mapping")
        target = {str(k): v for k, v in target.items()}
        for key, value in target.items():
            if key in INLINE_SECRET_KEYS or key.endswith(("_password", "_token")):
                raise ConfigError(f"{where}.target.{key}: a target never takes a secret inline",
                                  hint="put the credential in the vault (zerotrust-admin vault put NAME) and name it: admin_secret: NAME")
            if key.endswith("_secret") and value is not None:
                if not isinstance(value, str):
                    raise ConfigError(f"{where}.target.{key} must name a vault secret")
                try:
                    validate_name(value)
                except UsageError as exc:
                    raise ConfigError(f"{where}.target.{key}: {exc.message} (it names a vault secret)", hint=exc.hint) from None
                if value == name:
                    raise ConfigError(f"{where}.target.{key}: the admin credential must be another secret than the one rotated")
            if key.endswith("url") and isinstance(value, str):
                from zerotrust_admin.secret import redact_url

                if redact_url(value, value=True) != value:
                    raise ConfigError(f"{where}.target.{key}: the URL holds a password",
                                      hint="remove it from the URL; the credential comes from the vault secret named by admin_secret")
        entry = ManagedSecret(i, name, kind, every, grace, target)
        problem = rotator_class(kind).check_target(target)
        if problem:
            raise ConfigError(f"{where}.target: {problem}", hint="see docs/secret-rotation.md for this kind's target keys")
        entries.append(entry)
    return entries
