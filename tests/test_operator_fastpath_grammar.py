"""Issue 14 (start-up): the fast path's hand-written grammar for ``vault get``
and ``credentials get`` cannot drift from the Typer definitions.

Every option of the Typer commands (and of the root), in every spelling
(long, short, ``--opt=value``), alone and combined with the others, is given to
both parsers. Whenever the fast path accepts an argv, it must read exactly what
Typer reads, defaults included; what it does not accept falls back to Typer,
which is always safe."""

from __future__ import annotations

import itertools

import pytest
import typer

from zerotrust_admin.cli.app import app
from zerotrust_admin.cli.fastpath import parse_opts

ROOT = typer.main.get_command(app)


def typer_parse(argv: list[str]) -> tuple[dict, dict] | None:
    """(root params, leaf params) as Typer would call the command, or None if it refuses the argv."""
    from zerotrust_admin.cli.entry import _click_exceptions

    exceptions = _click_exceptions()
    try:
        ctx = ROOT.make_context("zerotrust-admin", list(argv), resilient_parsing=False)
        rest = ctx._protected_args + ctx.args
        group, gctx = ROOT, ctx
        while rest:
            name, cmd, rest = group.resolve_command(gctx, rest)
            gctx = cmd.make_context(name, list(rest), parent=gctx)
            rest = gctx._protected_args + gctx.args if hasattr(cmd, "commands") else []
            group = cmd
        return ctx.params, gctx.params
    except (exceptions.ClickException, typer.Exit):
        return None


def command(path):
    cmd = ROOT
    for part in path:
        cmd = cmd.commands[part]
    return cmd


def spellings(param, value: str) -> list[list[str]]:
    """Every way to write one option: each name, and --long=value for a valued option."""
    out = []
    for name in param.opts + param.secondary_opts:
        if param.is_flag:
            out.append([name])
        else:
            out.append([name, value])
            if name.startswith("--"):
                out.append([f"{name}={value}"])
    return out


def value_for(param) -> str:
    kind = getattr(param.type, "name", "")
    return "900" if kind in ("integer", "integer range") else f"v-{param.name}"


def argvs(path: list[str], required: list[str]):
    leaf = command(path)
    root_opts = [p for p in ROOT.params if p.name in ("config", "json", "quiet")]
    leaf_opts = [p for p in leaf.params if p.param_type_name == "option" and p.name != "help"]
    root_ways = [[]] + [w for p in root_opts for w in spellings(p, value_for(p))]
    leaf_ways = [[]] + [w for p in leaf_opts for w in spellings(p, value_for(p))]
    # the root's options after the subcommand (Typer refuses them there), and a stray token
    leaf_ways += [w for p in ROOT.params if p.name != "help" for w in spellings(p, value_for(p))] + [["extra"], ["-"], ["900"]]
    for r, (a, b) in itertools.product(root_ways, itertools.combinations(leaf_ways, 2)):
        yield r + path + required + a + b


def both_parses(argv):
    """(fast path's command name and options, Typer's root and leaf
    parameters), or None when the fast path declines ``argv``."""
    fast = parse_opts(argv)
    slow = typer_parse(argv)
    if fast is None:
        return None
    assert slow is not None, f"the fast path accepts what Typer refuses: {argv}"
    return fast, slow


def compare_vault_get(argv):
    parsed = both_parses(argv)
    if parsed is None:
        return False
    (command_name, opts), (root, leaf) = parsed
    assert command_name == "vault get"
    assert leaf["otp_stdin"] is False, argv  # the fast path never reads an MFA code from stdin
    assert opts == {"config": root["config"], "json": root["json"] or leaf["json"], "quiet": root["quiet"], "version": leaf["version"],
                    "output_file": leaf["output_file"], "name": leaf["name"]}, argv
    return True


def compare_credentials_get(argv):
    parsed = both_parses(argv)
    if parsed is None:
        return False
    (command_name, opts), (root, leaf) = parsed
    assert command_name == "credentials get"
    assert opts == {"role_arn": leaf["role_arn"], "external_id": leaf["external_id"], "via": list(leaf["via"] or []), "duration": leaf["duration"],
                    "fmt": leaf["fmt"], "no_cache": leaf["no_cache"], "json": root["json"] or leaf["json"], "config": root["config"],
                    "quiet": root["quiet"]}, argv
    return True


def test_vault_get_fast_path_reads_every_accepted_argv_as_typer_does():
    accepted = sum(compare_vault_get(argv) for argv in argvs(["vault", "get"], ["db/password"]))
    assert accepted > 50  # the common spellings do take the fast path


def test_credentials_get_fast_path_reads_every_accepted_argv_as_typer_does():
    accepted = sum(compare_credentials_get(argv) for argv in argvs(["credentials", "get"], ["--role-arn", "arn:aws:iam::123456789012:role/R"]))
    assert accepted > 50


@pytest.mark.parametrize("argv", [["vault", "get", "x"], ["credentials", "get", "--role-arn", "arn:aws:iam::123456789012:role/R", "--format", "process"]])
def test_the_documented_hot_paths_take_the_fast_path(argv):
    assert parse_opts(argv) is not None
