"""The root Typer app: global options and the command groups."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from zerotrust_admin import __version__
from zerotrust_admin.cli import audit_cmd, config_cmd, init_cmd, vault_cmd
from zerotrust_admin.cli.context import AppContext

app = typer.Typer(
    name="zerotrust-admin",
    help="Operator toolkit for the secrets of ZeroTrustKerberosLink: vault, keys, sessions, audit.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,  # never print locals: they can hold secrets
    context_settings={"help_option_names": ["--help", "-h"]},
)


def _version(value: bool) -> None:
    if value:
        from zerotrust_admin.cli import output

        print(f'{{"version": "{__version__}"}}' if output.JSON_MODE else f"zerotrust-admin {__version__}")  # --json anywhere (entry.py)
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="Config file (default: $ZEROTRUST_CONFIG, then $XDG_CONFIG_HOME/zerotrust/config.yaml, then /etc/zerotrust/config.yaml).", envvar=None)] = None,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail on stderr.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    app_ctx = AppContext(config_path=config, json=json, quiet=quiet, verbose=verbose)
    ctx.obj = app_ctx
    ctx.call_on_close(app_ctx.close)


app.command("init", help=init_cmd.__doc__)(init_cmd.init)
app.add_typer(config_cmd.app, name="config")
app.add_typer(vault_cmd.app, name="vault")
app.add_typer(audit_cmd.app, name="audit")
from zerotrust_admin.cli import notify_cmd, revoke_cmd, sessions_cmd  # noqa: E402
app.add_typer(sessions_cmd.app, name="sessions")
app.command("revoke-sessions", help=revoke_cmd.revoke_sessions.__doc__)(revoke_cmd.revoke_sessions)
app.add_typer(notify_cmd.app, name="notify")
from zerotrust_admin.cli import access_cmd, mfa_cmd  # noqa: E402
app.add_typer(access_cmd.app, name="access")
app.add_typer(mfa_cmd.app, name="mfa")
from zerotrust_admin.cli import backup_cmd, keys_cmd, rotate_cmd  # noqa: E402,F401  (backup_cmd adds to the vault group)
app.add_typer(keys_cmd.app, name="keys")
app.command("rotate-keys", help=rotate_cmd.rotate_keys.__doc__)(rotate_cmd.rotate_keys)
from zerotrust_admin.cli import compliance_cmd  # noqa: E402
app.command("compliance-report", help=compliance_cmd.compliance_report.__doc__)(compliance_cmd.compliance_report)
app.add_typer(compliance_cmd.app, name="compliance")
from zerotrust_admin.cli import credentials_cmd, revoke_credentials_cmd  # noqa: E402
app.add_typer(credentials_cmd.app, name="credentials")
app.command("revoke-credentials", help=revoke_credentials_cmd.revoke_credentials.__doc__)(revoke_credentials_cmd.revoke_credentials)
from zerotrust_admin.cli import rotate_secrets_cmd  # noqa: E402
app.command("rotate-secrets", help=rotate_secrets_cmd.rotate_secrets.__doc__)(rotate_secrets_cmd.rotate_secrets)
app.add_typer(rotate_secrets_cmd.app, name="secrets")
