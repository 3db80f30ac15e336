"""``config``: check and show the effective configuration."""

from __future__ import annotations

from typing import Annotated

import typer

from zerotrust_admin.cli.common import JsonOpt, app_context
from zerotrust_admin.cli.output import emit_json, escape_text

app = typer.Typer(help="Validate and show the configuration.", no_args_is_help=True)


@app.command("check")
def check(
    ctx: typer.Context,
    json: JsonOpt = False,
    connect: Annotated[bool, typer.Option("--connect", help="Also log in to the configured secret provider; report latency and permission problems.")] = False,
) -> None:
    """Report unknown keys, unsafe permissions, plaintext secrets, weak TLS and missing files (exit 1 if any)."""
    from zerotrust_admin.config.check import check_config

    app_ctx = app_context(ctx, json)
    report = check_config(app_ctx.config_path)
    connection, connect_error = _connect(app_ctx) if connect else (None, None)
    if app_ctx.json:
        emit_json({**report.to_dict(), "connection": connection} if connect else report.to_dict())
    else:
        where = report.path or "no config file (defaults apply)"
        problems = [p for p in report.problems if p.severity != "note"]
        if report.clean:
            print(f"OK: {where}")
        else:
            print(f"{len(problems)} problem(s) in {where}:")
        for p in problems + [p for p in report.problems if p.severity == "note"]:
            print(f"  {p.severity}: {escape_text(p.message)}" + (f"\n      fix: {escape_text(p.hint)}" if p.hint else ""))
        for var in report.env_overrides:
            print(f"  note: overridden by environment variable {var}")
        if connection and connect_error is None:
            _print_connection(connection)
    if connect_error is not None:
        raise connect_error
    if not report.clean or (connection and connection.get("problems")):
        raise typer.Exit(1)


def _connect(app_ctx) -> tuple[dict, Exception | None]:
    """(connection report, error to raise after printing the config report)."""
    from zerotrust_admin.errors import ZeroTrustError
    from zerotrust_admin.providers import check_connection
    from zerotrust_admin.secret import redact_url

    try:
        connection = check_connection(app_ctx.provider())
    except ZeroTrustError as exc:
        return {"provider": app_ctx.config.provider, "ok": False, "error": redact_url(exc.message), "exit_code": exc.exit_code}, exc
    if connection.get("endpoint"):
        connection["endpoint"] = redact_url(str(connection["endpoint"]))
    return connection, None


def _print_connection(c: dict) -> None:
    from zerotrust_admin.secret import redact_url

    who = f" as {escape_text(str(c['identity']))}" if c.get("identity") else ""
    print(f"{'OK' if not c['problems'] else 'PROBLEMS'}: {c['provider']} provider at {escape_text(redact_url(str(c.get('endpoint', ''))))}{who}: "
          f"login + probe {c['connect_ms']:.0f} ms, round trip {c['latency_ms']:.0f} ms")
    for problem in c["problems"]:
        print(f"  permission: {escape_text(str(problem))}")


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
