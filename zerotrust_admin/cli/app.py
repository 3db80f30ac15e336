"""The root Typer app: global options and the command groups."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from zerotrust_admin import __version__
from zerotrust_admin.cli.context import AppContext

_APP_SETTINGS = dict(
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


# Every top-level name, in the order --help lists them: (module, attribute,
# "command" or "group", modules that add to it). build_app(name) registers
# only the invoked one, so Typer converts (and Python imports) one group
# instead of all of them: about a third of a command's start (issue 14).
# tests/test_cli_lazy_app.py holds each partial app to the full one.
TOP_LEVEL: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "init": ("init_cmd", "init", "command", ()),
    "config": ("config_cmd", "app", "group", ()),
    "vault": ("vault_cmd", "app", "group", ("backup_cmd",)),  # backup_cmd adds backup/restore to the vault group
    "audit": ("audit_cmd", "app", "group", ()),
    "sessions": ("sessions_cmd", "app", "group", ()),
    "revoke-sessions": ("revoke_cmd", "revoke_sessions", "command", ()),
    "notify": ("notify_cmd", "app", "group", ()),
    "access": ("access_cmd", "app", "group", ()),
    "mfa": ("mfa_cmd", "app", "group", ()),
    "keys": ("keys_cmd", "app", "group", ()),
    "rotate-keys": ("rotate_cmd", "rotate_keys", "command", ()),
    "compliance-report": ("compliance_cmd", "compliance_report", "command", ()),
    "compliance": ("compliance_cmd", "app", "group", ()),
    "credentials": ("credentials_cmd", "app", "group", ()),
    "revoke-credentials": ("revoke_credentials_cmd", "revoke_credentials", "command", ()),
    "rotate-secrets": ("rotate_secrets_cmd", "rotate_secrets", "command", ()),
    "secrets": ("rotate_secrets_cmd", "app", "group", ()),
}


def _register(target: typer.Typer, name: str, sub: str | None = None) -> None:
    import importlib

    module_name, attribute, kind, extra = TOP_LEVEL[name]
    module = importlib.import_module(f"zerotrust_admin.cli.{module_name}")
    for other in extra:
        importlib.import_module(f"zerotrust_admin.cli.{other}")
    obj = getattr(module, attribute)
    if kind == "group":
        target.add_typer(_only_command(obj, sub) if sub else obj, name=name)
    else:
        # init's help is its module's docstring (the longer text), the others' their function's
        target.command(name, help=(module if name == "init" else obj).__doc__)(obj)


def _only_command(group: typer.Typer, sub: str) -> typer.Typer:
    """A copy of ``group`` that holds only its command ``sub`` (Typer reads
    every command's annotations when it converts a group: 13 in ``vault``).
    The group itself when ``sub`` is not one of its commands, so Typer gives
    its usual error."""
    import copy

    chosen = [info for info in group.registered_commands if info.name == sub]
    if sub == ROOT_HELP:
        chosen = []  # root help lists the group by its own help line only
    elif not chosen or group.registered_groups:
        return group
    partial = copy.copy(group)
    partial.registered_commands = chosen
    return partial


_full_app: list[typer.Typer] = []
# ``sub`` for the root's own help: every name, no group's commands converted
ROOT_HELP = "\0root-help"


def build_app(only: str | None = None, sub: str | None = None) -> typer.Typer:
    """The app with every command, or with the root options and ``only`` (a
    top-level name; with ``sub``, only that command of the group). "" builds
    the root options alone (``--version``), or with ``sub=ROOT_HELP`` what
    the root's help lists: every name, the groups without their commands."""
    if only is None and _full_app:
        return _full_app[0]
    built = typer.Typer(**_APP_SETTINGS)
    built.callback()(root)
    if only is None:
        names = tuple(TOP_LEVEL)
    else:
        names = (only,) if only else tuple(TOP_LEVEL) if sub == ROOT_HELP else ()
    for name in names:
        _register(built, name, sub)
    if only is None:
        _full_app.append(built)
    return built


def __getattr__(name: str):
    # ``from zerotrust_admin.cli.app import app``: the whole app, as the docs,
    # completion and the tests see it (built at first use, once).
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
