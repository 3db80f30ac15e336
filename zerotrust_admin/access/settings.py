"""Validate the security settings when the config is loaded, so a malformed
access policy (or MFA / lockout block) is exit 2 at start-up, naming the rule,
rather than a surprise in the middle of an operation."""

from __future__ import annotations

from zerotrust_admin.errors import ConfigError


def _checks(config):
    if config.get("access.policies") is not None:
        from zerotrust_admin.access.policy import load_policies

        yield "access.policies", lambda: load_policies(config)
    if config.get("security.mfa") is not None:
        from zerotrust_admin.mfa import MfaPolicy

        yield "security.mfa", lambda: MfaPolicy.from_config(config)
    if config.get("security.lockout") is not None:
        from zerotrust_admin.lockout import LockoutPolicy

        yield "security.lockout", lambda: LockoutPolicy.from_config(config)
    if config.get("secret_rotation") is not None:
        from zerotrust_admin.secret_rotation.config import load_managed

        yield "secret_rotation", lambda: load_managed(config)


def validate_security_settings(config) -> None:
    """Raise the first ConfigError (exit 2). Cheap when nothing is configured."""
    for _key, check in _checks(config):
        check()


def security_problems(config) -> list[tuple[str, str, str]]:
    """Every problem as (key, message, hint), for ``config check``."""
    found = []
    for key, check in _checks(config):
        try:
            check()
        except ConfigError as exc:
            found.append((key, exc.message, exc.hint or ""))
    return found
