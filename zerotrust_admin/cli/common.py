"""Options shared by every command, defined once."""

from __future__ import annotations

from typing import Annotated

import typer

from zerotrust_admin.cli.context import AppContext

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Confirm without prompting (required when stdin is not a terminal).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]


def app_context(ctx: typer.Context, json_flag: bool = False) -> AppContext:
    app_ctx: AppContext = ctx.find_root().obj
    if app_ctx is None:  # invoked without the root callback (tests calling a sub-app)
        app_ctx = AppContext()
        ctx.find_root().obj = app_ctx
    if json_flag:
        app_ctx.json = True
    return app_ctx
