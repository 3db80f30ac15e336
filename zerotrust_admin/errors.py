"""One error hierarchy, one exit-code table (PRODUCT.md, "Exit codes").

Every error the user can see derives from ZeroTrustError. Messages are written
for an operator at 3 a.m.: what is wrong, and (in ``hint``) what to do about it.
A message must never contain a secret value; errors are built from names,
paths and counts only.
"""

from __future__ import annotations


class ExitCode:
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    DENIED = 4
    INTEGRITY = 5
    UNAVAILABLE = 6
    BUSY = 7
    FINDINGS = 10


class ZeroTrustError(Exception):
    exit_code = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(ZeroTrustError):
    """Bad option, bad secret name, bad value."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The configuration is invalid: malformed YAML, unknown key, missing ${VAR}."""


class InsecureFileError(UsageError):
    """A key, config or secret file is accessible to group/others or is a symlink."""


class NotFoundError(ZeroTrustError):
    exit_code = ExitCode.NOT_FOUND


class DeniedError(ZeroTrustError):
    """Access policy, MFA, wrong passphrase or wrong master key, lockout."""

    exit_code = ExitCode.DENIED


class WrongKeyError(DeniedError):
    """The master key does not match the vault's key check value."""


class IntegrityError(ZeroTrustError):
    """A record that does not authenticate under keys that do."""

    exit_code = ExitCode.INTEGRITY


class UnavailableError(ZeroTrustError):
    exit_code = ExitCode.UNAVAILABLE


class BusyError(ZeroTrustError):
    exit_code = ExitCode.BUSY


class AlreadyExistsError(ZeroTrustError):
    """Refusing to overwrite something that exists (init on an existing vault)."""

    exit_code = ExitCode.FAILED


class AuditError(ZeroTrustError):
    """The audit record could not be written, so the operation was refused."""

    exit_code = ExitCode.FAILED


EXIT_CODE_TABLE = [
    (ExitCode.OK, "success (a rotate-keys with nothing due is a success)"),
    (ExitCode.FAILED, "operation failed (generic), including an audit record that could not be written"),
    (ExitCode.USAGE, "usage error: bad option, bad secret name, bad value, invalid configuration, unsafe file permissions"),
    (ExitCode.NOT_FOUND, "not found (secret, version, session, user)"),
    (ExitCode.DENIED, "denied: access policy, MFA, wrong passphrase or master key, lockout"),
    (ExitCode.INTEGRITY, "integrity failure: tampered vault record, backup or audit chain"),
    (ExitCode.UNAVAILABLE, "backend unavailable (Redis, Vault, AWS, Azure, HSM, SMTP) within its timeout"),
    (ExitCode.BUSY, "busy: another rotation/revocation holds the lock"),
    (ExitCode.FINDINGS, "compliance-report --fail-on-findings found failing controls"),
]
