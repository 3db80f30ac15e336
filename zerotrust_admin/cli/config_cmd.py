"""``config``: check and show the effective configuration."""

from __future__ import annotations

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json

app = typer.Typer(help="Validate and show the configuration.", no_args_is_help=True)


@app.command("check")
def check(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Report unknown keys, unsafe permissions, plaintext secrets, weak TLS and missing files (exit 1 if any)."""
    from zerotrust_admin.config.check import check_config

    app_ctx = app_context(ctx, json)
    report = check_config(app_ctx.config_path)
    if app_ctx.json:
        emit_json(report.to_dict())
    else:
        where = report.path or "no config file (defaults apply)"
        if report.clean:
            print(f"OK: {where}")
        else:
            print(f"{len(report.problems)} problem(s) in {where}:")
            for p in report.problems:
                print(f"  {p.severity}: {p.message}" + (f"\n      fix: {p.hint}" if p.hint else ""))
        for var in report.env_overrides:
            print(f"  note: overridden by environment variable {var}")
    if not report.clean:
        raise typer.Exit(1)


@app.command("show")
def show(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Print the effective configuration (file + defaults + environment) with secrets redacted."""
    app_ctx = app_context(ctx, json)
    config = app_ctx.config
    data = config.redacted()
    if app_ctx.json:
        emit_json({"config_file": str(config.path) if config.path else None, "home": str(config.home), "env_overrides": config.env_applied, "config": data})
        return
    import yaml

    print(f"# config file: {config.path or 'none (defaults)'}")
    print(f"# ZEROTRUST_HOME: {config.home}")
    for var in config.env_applied:
        print(f"# overridden by {var}")
    print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())
