"""The checks that sit in front of every provider operation: access policies
and, for sensitive secrets, MFA. ``providers.audited.AuditedProvider`` calls
one ``AccessGuard`` (set by the CLI context), so every command that touches a
secret goes through the same two functions.

Action mapping: get/export -> read; put/import/undelete -> write;
delete/destroy -> delete; list/history -> list (which ``read`` implies);
import -> write on every name, and comparing with the current values (which
reports ``unchanged``) only with read (+ MFA) on all of them
(``may_compare_import``);
migrate -> read and write on every secret copied, all decided before the
first copy (``before_migrate``).
``list`` never fails: it shows only the names the principal may list. The
tool's own records under ``_zerotrust/`` (MFA seeds, the credential-cache key)
are listed but never readable, writable or exported through these commands.
"""

from __future__ import annotations

from typing import Callable

from zerotrust_admin.access import RESERVED_PREFIX, authorize, decide
from zerotrust_admin.errors import DeniedError, NotFoundError


class AccessGuard:
    def __init__(self, config, actor, audit, *, code_source: Callable[[], str | None] | None = None,
                 open_local_vault: Callable[[], object] | None = None):
        self.config = config
        self.actor = actor
        self.audit = audit
        self.code_source = code_source or (lambda: None)
        self.open_local_vault = open_local_vault
        self._mfa_done: set[str] = set()

    def authorize(self, action: str, resource: str, **details):
        return authorize(self.config, self.actor, action, resource, self.audit, **details)

    def allows(self, action: str, resource: str) -> bool:
        """The decision alone, not audited (for checking many names before acting)."""
        return decide(self.config, self.actor.user, action, resource, self.actor.source_ip).allowed

    def visible(self, items):
        """Filter listed secrets to those the principal may list (never a denial).
        Reserved names (``_zerotrust/``) stay listable: names are not secret."""
        return [item for item in items
                if decide(self.config, self.actor.user, "list", getattr(item, "name", item), self.actor.source_ip).allowed]

    def exportable(self, items):
        """Visible items minus the tool's reserved records (never exported in plaintext)."""
        return [item for item in self.visible(items) if not getattr(item, "name", item).startswith(RESERVED_PREFIX)]

    def before_read(self, provider, name: str) -> None:
        """Authorize a read, then demand MFA when the secret needs it."""
        self.authorize("read", name)
        from zerotrust_admin.mfa import MfaPolicy

        policy = MfaPolicy.from_config(self.config)
        try:
            sensitive = bool(getattr(provider.info(name), "sensitive", False))
        except NotFoundError:
            return  # the read itself reports "not found"
        if policy.required(name, sensitive):
            self.require_mfa(name)

    def before_export(self, items) -> list:
        """Authorize reading every listed secret, then one MFA code if any of
        them needs it; returns the visible items. Uses the listing's own
        ``sensitive`` flags (no per-secret metadata call)."""
        from zerotrust_admin.mfa import MfaPolicy

        visible = self.exportable(items)
        policy = MfaPolicy.from_config(self.config)
        needs_mfa = None
        for item in visible:
            self.authorize("read", item.name)
            if needs_mfa is None and policy.required(item.name, bool(getattr(item, "sensitive", False))):
                needs_mfa = item.name
        if needs_mfa is not None:
            self.require_mfa(needs_mfa)
        return visible

    def before_migrate(self, items, writer: "AccessGuard | None" = None) -> tuple[list, int]:
        """Authorize a ``vault migrate`` before anything is copied.

        Like ``vault export``, names the principal may not list are left out
        (counted, never named). Every other secret needs ``read`` here (the
        source) and ``write`` through ``writer`` (the target's guard). All are
        decided first, so that a denial copies nothing: it raises one
        DeniedError naming the first denied secret and how many are denied,
        audited once through ``authorize`` with the counts (one record per
        refused operation, not one per name). Then one MFA code when any of the
        secrets needs it, as for an export: copying a value is reading it.
        Returns (the items to copy, how many were hidden).
        """
        from zerotrust_admin.mfa import MfaPolicy

        writer = writer or self
        visible = self.exportable(items)
        denied = []
        for item in visible:
            for guard, action in ((self, "read"), (writer, "write")):
                if not guard.allows(action, item.name):
                    denied.append((guard, action, item.name))
                    break
        if denied:
            self._refuse_migration(denied, len(visible))
        policy = MfaPolicy.from_config(self.config)
        needs_mfa = next((i.name for i in visible if policy.required(i.name, bool(getattr(i, "sensitive", False)))), None)
        if needs_mfa is not None:
            self.require_mfa(needs_mfa)
        return visible, len(items) - len(visible)

    @staticmethod
    def _refuse_migration(denied: list, checked: int) -> None:
        guard, action, name = denied[0]
        summary = f"{len(denied)} of {checked} secrets denied, nothing was copied"
        try:
            guard.authorize(action, name, operation="migrate", denied=len(denied), checked=checked)
        except DeniedError as exc:
            raise DeniedError(f"{exc.message}; {summary}", hint=exc.hint) from None
        # The policy said no a moment ago: never fall through to copying.
        raise DeniedError(f"access denied: {guard.actor.user} may not {action} {name}; {summary}")

    def may_compare_import(self, provider, names) -> bool:
        """Whether ``vault import`` may compare each new value with the current
        one and skip it as ``unchanged`` (threat-model row P3).

        A comparison tells the importer whether its value equals the stored
        one: that is reading it. So it is decided per batch, before anything is
        read: only when the principal may ``read`` every name in the file and,
        if any existing secret among them needs MFA, gives one valid code (the
        ``vault export`` rule). Otherwise False: nothing is read, every item is
        written as a new version and reported as created or updated, never
        unchanged. No code at all (none in the environment, no terminal, an
        empty answer at the prompt) is a False, not a refusal; a code that is
        given but wrong, replayed, or from a principal not enrolled is a
        refusal (exit 4, audited, counted towards the lockout) as anywhere else.
        """
        from zerotrust_admin.mfa import MfaPolicy

        names = list(dict.fromkeys(names))
        if not all(self.allows("read", name) for name in names):
            return False
        policy = MfaPolicy.from_config(self.config)
        needs_mfa = None
        for name in names:
            try:
                info = provider.info(name)
            except NotFoundError:
                continue  # nothing to compare with
            if getattr(info, "deleted_at", None) is None and policy.required(name, bool(getattr(info, "sensitive", False))):
                needs_mfa = name
                break
        if needs_mfa is None or self._mfa_done:
            return True
        code = self.code_source()
        if not code:
            return False
        ask = self.code_source
        self.code_source = lambda: code  # asked once above; require_mfa must not prompt again
        try:
            self.require_mfa(needs_mfa)
        finally:
            self.code_source = ask
        return True

    def export_item(self, provider, name: str) -> bool:
        """For an export streamed by a self-audited provider: False to skip a
        name the principal may not see; DeniedError if it is visible but not
        readable; one MFA code before the first secret that needs it."""
        if not self.exportable([name]):
            return False
        self.before_read(provider, name)
        return True

    def prepare_read(self, provider) -> None:
        """Forget the previous read's sensitivity flag (see ``after_read``)."""
        if hasattr(provider, "last_read_sensitive"):
            provider.last_read_sensitive = None

    def after_read(self, provider, name: str) -> None:
        """MFA for an external provider, checked after its read and before the
        value is released (the caller wipes it on failure). A provider that
        learns the secret's ``sensitive`` flag from the read itself sets
        ``last_read_sensitive``, which saves a metadata round trip (and, for
        HashiCorp, the hvac import on the fast read path); otherwise ``info()``."""
        from zerotrust_admin.mfa import MfaPolicy

        policy = MfaPolicy.from_config(self.config)
        if not policy.required(name, False):
            sensitive = getattr(provider, "last_read_sensitive", None)
            if sensitive is None:
                sensitive = bool(getattr(provider.info(name), "sensitive", False))
            if not policy.required(name, sensitive):
                return
        self.require_mfa(name)

    def require_mfa(self, resource: str) -> None:
        if self._mfa_done:
            return  # one code per invocation (e.g. an export of several sensitive secrets)
        from zerotrust_admin.mfa import MfaPolicy, MfaStore, require_mfa

        if self.open_local_vault is None:
            raise DeniedError(f"reading {resource} needs MFA, and no integrated vault is available for the enrolment")
        store = MfaStore(self.open_local_vault(), self.config.home, MfaPolicy.from_config(self.config))
        require_mfa(self.config, store, self.actor, self.audit, resource, self.code_source)
        self._mfa_done.add(resource)
