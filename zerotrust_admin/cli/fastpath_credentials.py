"""``credentials get`` without Typer (see cli/fastpath.py): the AWS CLI runs
``credentials get --format process`` for every command, so start-up is the cost
that matters. Narrow grammar: ``--role-arn``, ``--external-id``, ``--via``
(repeatable), ``--duration N``, ``--format env|json|process``, ``--no-cache``,
``--json``, as ``--flag value`` or ``--flag=value``. Anything else returns None
and the Typer app handles it (and owns the error message). The body is
``credentials_get.run_get``, the same function the Typer command calls.
"""

from __future__ import annotations

from typing import Callable

_VALUED = {"--role-arn": "role_arn", "--external-id": "external_id", "--via": "via", "--duration": "duration", "--format": "fmt"}


def parse_credentials_get(args: list[str], globals_: dict) -> Callable[[], int] | None:
    opts = parse_credentials_get_opts(args, globals_)
    return None if opts is None else runner(opts)


def parse_credentials_get_opts(args: list[str], globals_: dict) -> dict | None:
    opts: dict = {"role_arn": None, "external_id": None, "via": [], "duration": None, "fmt": "env", "no_cache": False,
                  "json": bool(globals_.get("json")), "config": globals_.get("config"), "quiet": bool(globals_.get("quiet"))}
    seen: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        flag, eq, inline = arg.partition("=")
        if flag in _VALUED:
            if eq:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                return None
            key = _VALUED[flag]
            if key == "via":
                opts["via"].append(value)
            else:
                if key in seen:
                    return None
                seen.add(key)
                opts[key] = value
        elif arg == "--no-cache":
            opts["no_cache"] = True
        elif arg == "--json":
            opts["json"] = True
        else:
            return None
        i += 1
    if not opts["role_arn"] or opts["fmt"] not in ("env", "json", "process"):
        return None
    if opts["duration"] is not None:
        if not opts["duration"].isdigit() or len(opts["duration"]) > 9:
            return None
        opts["duration"] = int(opts["duration"])
    return opts


def runner(opts: dict) -> Callable[[], int]:
    def run() -> int:
        from zerotrust_admin.cli.context import AppContext
        from zerotrust_admin.cli.credentials_get import run_get

        ctx = AppContext(config_path=opts["config"], json=opts["json"], quiet=opts["quiet"])
        try:
            run_get(ctx, opts["role_arn"], opts["external_id"], opts["via"], opts["duration"], opts["fmt"], opts["no_cache"], opts["json"])
        finally:
            ctx.close()
        return 0

    return run
