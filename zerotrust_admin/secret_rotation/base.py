"""The rotator interface every kind implements, and what the engine hands it.

A rotator changes one credential in its target system. It never touches the
vault: the engine (``engine.py``) records every step as authenticated version
metadata and calls these methods in order, possibly again after a crash, so
each of them must be idempotent (doing it twice is the same as once):

    create_pending(current)          -> new value (not yet valid anywhere, except
                                        where the target makes it: aws-iam)
    apply(pending, current)          set it in the target; current keeps working
    test(pending)                    log in with it; raise RotationTestFailed if not
    finish(pending, previous)        target side of pending -> current (most: nothing);
                                     final_value() is what the vault then holds (default: pending)
    retire(previous, current)        after the grace period: the previous credential stops working;
                                     retired_value() may replace the vault value (keytab: drop the old kvno)
    rollback(pending, current)       undo apply (the current credential stays the only one)

Values are ``Secret`` objects (redacted repr); a rotator never logs, raises or
returns a value in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from zerotrust_admin.errors import ZeroTrustError
from zerotrust_admin.secret import Secret


class RotationTestFailed(ZeroTrustError):
    """The pending credential did not work in the target system (exit 1)."""


@dataclass
class RotationContext:
    """What a rotator may use: its configuration entry and the vault secrets its
    target names (read through the engine, audited)."""

    entry: object                                   # config.ManagedSecret
    read_secret: Callable[[str], Secret]            # name -> Secret (current version)
    orphans_after: datetime | None = None           # resuming an interrupted create: what the target made after this is ours

    @property
    def target(self) -> dict:
        return self.entry.target

    def admin_credential(self) -> Secret:
        from zerotrust_admin.errors import ConfigError

        name = self.target.get("admin_secret")
        if not name:
            raise ConfigError(f"{self.entry.where}.target.admin_secret is required for kind {self.entry.kind}",
                              hint="store the administrator's credential in the vault and name it here")
        return self.read_secret(name)


class Rotator:
    """Base class: the no-op defaults. A kind overrides what it needs."""

    kind = ""
    #: the previous credential stops working only at ``retire`` (False: at ``apply``, e.g. postgres single)
    keeps_previous = True
    #: ``create_pending`` makes something in the target (aws-iam: a key): the engine records
    #: a ``creating`` step first, so a crash before the value is recorded can be cleaned up
    creates_in_target = False

    def __init__(self, ctx: RotationContext):
        self.ctx = ctx

    @classmethod
    def check_target(cls, target: dict) -> str | None:
        """A problem with the target block (one line), or None."""
        return None

    def describe(self) -> str:
        return self.kind

    # --- scheduling (class level: no connection to the target) ----------------
    @classmethod
    def due_at(cls, entry, created: datetime, metadata: dict, load_value: Callable[[], Secret | None]) -> datetime:
        """When the current value (written at ``created``, with its authenticated
        version ``metadata``) is due. Default: ``created + every``."""
        from datetime import timedelta

        return created + timedelta(seconds=entry.every)

    @classmethod
    def expires_at(cls, metadata: dict, load_value: Callable[[], Secret | None]) -> datetime | None:
        """When the current value stops being valid by itself (certificates), or None."""
        return None

    def final_value(self, pending: Secret, previous: Secret | None) -> Secret:
        """The value written at ``finish`` (default: the pending value itself; keytab: a keytab built from it)."""
        return pending

    def retired_value(self, current: Secret) -> Secret | None:
        """A new value to write at ``retire`` (keytab: without the previous kvno), or None."""
        return None

    def version_metadata(self, pending: Secret) -> dict:
        """Extra (non-secret) metadata for the new version written at ``finish``."""
        return {}

    def create_pending(self, current: Secret | None) -> Secret:
        raise NotImplementedError

    def apply(self, pending: Secret, current: Secret | None) -> None:
        return None

    def test(self, pending: Secret) -> None:
        return None

    def finish(self, pending: Secret, previous: Secret | None) -> None:
        return None

    def retire(self, previous: Secret, current: Secret) -> None:
        return None

    def rollback(self, pending: Secret, current: Secret | None) -> None:
        return None

    def close(self) -> None:
        return None


def require_keys(target: dict, *keys: str) -> str | None:
    for key in keys:
        if target.get(key) in (None, ""):
            return f"{key} is required"
    return None
