"""MFA for sensitive secrets: TOTP (RFC 6238) enrolment and verification.

Where the seed lives (decided, see docs/security-model.md): in the integrated
vault, as a sensitive secret under the reserved name
``_zerotrust/mfa/<hex of the principal>``. It is therefore encrypted under a
data key wrapped by the master key, rotated and backed up with the vault, and
the reserved ``_zerotrust/`` prefix is refused to the normal vault commands by
``access.decide``. Which time step each principal used last (for replay
refusal) is not secret and lives in ``$ZEROTRUST_HOME/mfa.db`` (0600 SQLite).

Configuration (``security.mfa``)::

    security:
      mfa: {required_for: ["prod/*", "*/root-*"], issuer: zerotrust-admin, skew_steps: 1}
"""

from __future__ import annotations

from zerotrust_admin.errors import ConfigError

SEED_PREFIX = "_zerotrust/mfa/"
OTP_ENV = "ZEROTRUST_OTP"
MFA_KEYS = {"enabled", "required_for", "issuer", "skew_steps"}

_LAZY = {"CodeSource", "Enrolment", "MfaStore", "WrongCode", "require_mfa", "seed_name"}


def __getattr__(name: str):
    # The store (sqlite, vault access) loads only when MFA is actually used:
    # MfaPolicy is checked on every read and must stay cheap to import.
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module("zerotrust_admin.mfa.store"), name)
    if name == "totp":
        return importlib.import_module("zerotrust_admin.mfa.totp")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class MfaPolicy:
    """``security.mfa``: which secrets need a code besides the sensitive ones."""

    __slots__ = ("required_for", "issuer", "skew_steps", "enabled")

    def __init__(self, required_for: tuple[str, ...] = (), issuer: str = "zerotrust-admin", skew_steps: int = 1, enabled: bool = True):
        self.required_for = tuple(required_for)
        self.issuer = issuer
        self.skew_steps = skew_steps
        self.enabled = enabled

    @classmethod
    def from_config(cls, config) -> "MfaPolicy":
        raw = config.get("security.mfa") if config is not None else None
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ConfigError("security.mfa must be a mapping")
        unknown = sorted(set(map(str, raw)) - MFA_KEYS)
        if unknown:
            raise ConfigError(f"unknown config key 'security.mfa.{unknown[0]}'", hint=f"known: {', '.join(sorted(MFA_KEYS))}")
        globs = raw.get("required_for") or []
        if isinstance(globs, str):
            globs = [globs]
        if not isinstance(globs, list) or not all(isinstance(g, str) and g for g in globs):
            raise ConfigError("security.mfa.required_for must be a list of secret-name globs")
        skew = raw.get("skew_steps", 1)
        if isinstance(skew, bool) or not isinstance(skew, int) or not 0 <= skew <= 4:
            raise ConfigError("security.mfa.skew_steps must be an integer from 0 to 4", hint="1 step = 30 s each way")
        issuer = raw.get("issuer", "zerotrust-admin")
        if not isinstance(issuer, str) or not issuer or ":" in issuer:
            raise ConfigError("security.mfa.issuer must be a non-empty string without ':'")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError("security.mfa.enabled must be true or false")
        return cls(tuple(globs), issuer, skew, enabled)

    def required(self, name: str, sensitive: bool) -> bool:
        """Sensitive secrets always need MFA; ``enabled: false`` only turns the globs off."""
        if sensitive:
            return True
        if not (self.enabled and self.required_for):
            return False
        from fnmatch import fnmatchcase

        return any(fnmatchcase(name, g) for g in self.required_for)


__all__ = ["CodeSource", "Enrolment", "MfaPolicy", "MfaStore", "OTP_ENV", "SEED_PREFIX", "WrongCode", "require_mfa", "seed_name", "totp"]
