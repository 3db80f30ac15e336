"""``vault get`` without Typer: building the Typer app costs ~60 ms per start on
this machine even with Typer pinned below 0.29 (docs/deployment.md), a large
share of the 150 ms budget for ``vault get``. The grammar accepted here is
deliberately narrow; anything else (``--help``, an unknown flag, a typo) falls
back to the full Typer app, which then owns the error message. The command body
is the same function the Typer command calls (``vault_get.run_get``), and a
test checks both paths give identical results.
"""

from __future__ import annotations

from typing import Callable


def parse(argv: list[str]) -> Callable[[], int] | None:
    """A runner for ``argv`` when the fast path accepts it, else None (Typer runs it)."""
    parsed = parse_opts(argv)
    if parsed is None:
        return None
    command, opts = parsed
    if command == "credentials get":
        from zerotrust_admin.cli.fastpath_credentials import runner

        return runner(opts)

    def run() -> int:
        from zerotrust_admin.cli.context import AppContext
        from zerotrust_admin.cli.vault_get import run_get

        ctx = AppContext(config_path=opts["config"], json=opts["json"], quiet=opts["quiet"])
        try:
            run_get(ctx, opts["name"], opts["version"], opts["output_file"], opts["json"])
        finally:
            ctx.close()
        return 0

    return run


def parse_opts(argv: list[str]) -> tuple[str, dict] | None:
    """("vault get" | "credentials get", the options as the Typer command would
    receive them) or None. tests/test_operator_fastpath_grammar.py checks every
    accepted argv against the Typer definitions, option by option."""
    opts = {"config": None, "json": False, "quiet": False, "version": None, "output_file": None, "name": None}
    i = 0

    def value_of(token: str, flag: str) -> str | None:
        nonlocal i
        if token.startswith(flag + "="):
            return token[len(flag) + 1 :]
        if i + 1 < len(argv):
            i += 1
            return argv[i]
        return None

    # global options, then "vault get"
    while i < len(argv) and argv[i].startswith("-"):
        token = argv[i]
        if token == "--config" or token.startswith("--config="):
            opts["config"] = value_of(token, "--config")
            if opts["config"] is None:
                return None
        elif token == "--json":
            opts["json"] = True
        elif token in ("--quiet", "-q"):
            opts["quiet"] = True
        else:
            return None
        i += 1
    if argv[i : i + 2] == ["credentials", "get"]:  # issue 5: the AWS CLI's credential_process
        from zerotrust_admin.cli.fastpath_credentials import parse_credentials_get_opts

        creds = parse_credentials_get_opts(argv[i + 2 :], opts)
        return None if creds is None else ("credentials get", creds)
    if argv[i : i + 2] != ["vault", "get"]:
        return None
    i += 2
    while i < len(argv):
        token = argv[i]
        if token in ("--version", "-V") or token.startswith("--version="):
            raw = value_of(token, "--version")
            if raw is None or not raw.isdigit() or opts["version"] is not None:
                return None
            opts["version"] = int(raw)
        elif token in ("--output-file", "-o") or token.startswith("--output-file="):
            opts["output_file"] = value_of(token, "--output-file")
            if not opts["output_file"]:
                return None
        elif token == "--json":
            opts["json"] = True
        elif token.startswith("-") or opts["name"] is not None:
            return None
        else:
            opts["name"] = token
        i += 1
    if opts["name"] is None:
        return None
    return "vault get", opts
