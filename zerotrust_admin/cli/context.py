"""One context object per invocation: config, output mode, and lazily built,
cached handles to the vault and the audit log."""

from __future__ import annotations

import os
from functools import cached_property

from zerotrust_admin.cli.terminal import ask_hidden, controlling_terminal
from zerotrust_admin.secret import Secret
from zerotrust_admin.structs import field, struct


@struct
class AppContext:
    config_path: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: bool = False
    otp_stdin: bool = False  # vault get --otp-stdin: where an MFA code comes from
    _vault: object = field(default=None, repr=False)
    _session_store: object = field(default=None, repr=False)
    _providers: dict = field(default_factory=dict, repr=False)

    @cached_property
    def config(self):
        from zerotrust_admin.config import load_config

        config = load_config(self.config_path)
        # vault:NAME references in the config resolve through the secret provider.
        config.secret_resolver = self._resolve_secret
        from zerotrust_admin.access.settings import validate_security_settings

        validate_security_settings(config)  # a malformed policy is exit 2 at load, naming the rule
        return config

    def _resolve_secret(self, name: str) -> Secret:
        secret, _info = self.provider().get(name)
        return secret

    @cached_property
    def identity(self):
        """Who is acting and how sure we are (verified | claimed | os): once per
        command, verified with the KDC when security.identity.verify is kdc."""
        from zerotrust_admin.cli.output import info, warn
        from zerotrust_admin.identity import establish, source_ip_info

        who = establish(config=self.config)
        for note in who.notes:  # a Kerberos cache that exists but cannot be used: say which identity is used instead
            if not self.quiet:
                warn(f"{note}; acting as {who.principal}")
        if self.verbose:
            info(who.describe())
            address, origin = source_ip_info()
            info(f"source address: {address} ({'from ' + origin + ', claimed' if origin != 'host' else 'this host'})")
        return who

    @cached_property
    def actor(self):
        from zerotrust_admin.identity import actor_for

        return actor_for(self.identity)

    def authorize(self, action: str, resource: str):
        """The one access-policy check (zerotrust_admin.access.authorize): DeniedError (exit 4), audited."""
        from zerotrust_admin.access import authorize

        return authorize(self.config, self.actor, action, resource, self.audit)

    @cached_property
    def access_guard(self):
        """Policies + MFA in front of every provider operation (providers/audited.py)."""
        from zerotrust_admin.access.guard import AccessGuard
        from zerotrust_admin.cli.otp_input import code_source

        return AccessGuard(self.config, self.actor, self.audit, code_source=code_source(self.otp_stdin), open_local_vault=self.vault)

    @cached_property
    def audit(self):
        from zerotrust_admin.audit import open_audit_log

        return open_audit_log(self.config)

    def key_context(self):
        from zerotrust_admin.keys import KeySourceContext

        return KeySourceContext(config=self.config.data, home=self.config.home, ask_passphrase=ask_passphrase if controlling_terminal() else None, environ=dict(os.environ))

    def vault(self):
        """The integrated vault, opened once per invocation."""
        if self._vault is None:
            from zerotrust_admin.keys import open_configured_source
            from zerotrust_admin.vault import Vault

            kctx = self.key_context()
            # The configuration chooses the key source; the vault's records must agree (threat-model V1).
            self._vault = Vault.open(self.config.vault_path, lambda kind, params: open_configured_source(kctx, kind, params), audit=self.audit, actor=self.actor)
        return self._vault

    def provider(self, kind: str | None = None):
        """The configured secret provider (``secrets.provider``), or provider ``kind``
        (settings from ``secrets.targets``); audited, opened once per invocation."""
        from zerotrust_admin import providers

        key = providers.canonical(kind or self.config.provider)
        if key not in self._providers:
            self._providers[key] = providers.open_provider(key, self.config, audit=self.audit, actor=self.actor, open_local_vault=self.vault)
            self._providers[key].guard = self.access_guard
        return self._providers[key]

    def session_store(self):
        """The configured session store (sessions.backend), opened once per invocation."""
        if self._session_store is None:
            from zerotrust_admin.sessions import open_session_store

            self._session_store = open_session_store(self.config)
        return self._session_store

    def close(self) -> None:
        for provider in self._providers.values():
            provider.close()
        self._providers.clear()
        if self._vault is not None:
            self._vault.close()
            self._vault = None
        if self._session_store is not None:
            self._session_store.close()
            self._session_store = None


def _tell(text: str) -> None:
    """A line for the operator on the terminal the prompts use."""
    try:
        with open("/dev/tty", "w") as tty:
            tty.write(text + "\n")
    except OSError:
        import sys

        sys.stderr.write(text + "\n")


def ask_passphrase(prompt: str, confirm: bool) -> Secret:
    from zerotrust_admin.errors import UsageError
    from zerotrust_admin.keys.passphrase import MIN_LENGTH

    if confirm:  # a new passphrase: say what losing it means before it is chosen
        _tell(f"{prompt}: at least {MIN_LENGTH} characters. If you lose it, what it protects cannot be opened: nobody can recover it.")
    first = ask_hidden(f"{prompt}: ")  # on /dev/tty even when stdin carries data
    if confirm:
        if len(first) < MIN_LENGTH:  # before asking for it again
            raise UsageError(f"the passphrase is shorter than {MIN_LENGTH} characters; nothing was changed", hint="use a longer passphrase (a few random words)")
        second = ask_hidden(f"{prompt} (again): ")
        if first != second:
            raise UsageError("the passphrases do not match; nothing was changed", hint="type the same passphrase twice")
    return Secret(first)
