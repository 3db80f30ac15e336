"""The partial apps entry.py builds are the full app, cut down, never changed.

cli/app.py ``build_app(top, sub)`` registers only the invoked group (and only
the invoked command of it) so that Typer converts one command instead of
fifty (issue 14's start-up budget). These tests hold every partial app to the
full one: for every command, the same parameters (names, types, defaults,
help) and the same help page; the root help and the version line are the
full app's; and ``invoked_command`` picks the partial app only when it is
certain which command runs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer.main

from conftest import ROOT
from zerotrust_admin.cli.app import ROOT_HELP, TOP_LEVEL, app, build_app
from zerotrust_admin.cli.entry import invoked_command

FULL = typer.main.get_command(app)
Context = type(typer.main.get_command(app).make_context("zerotrust-admin", ["--help"], resilient_parsing=True))  # Typer's own (vendored) click


def leaves():
    for name, command in FULL.commands.items():
        if hasattr(command, "commands"):
            for sub in command.commands:
                yield name, sub
        else:
            yield name, None


LEAVES = list(leaves())


def describe(command, path: list[str]) -> dict:
    """What a user can observe of a command: its parameters and its help page."""
    params = [
        (p.name, tuple(p.opts), tuple(p.secondary_opts), p.type.name, repr(p.default), p.required, p.multiple, p.nargs,
         getattr(p, "is_flag", None), getattr(p, "help", None), getattr(p, "hidden", None), repr(getattr(p, "envvar", None)))
        for p in command.params
    ]
    parent = Context(FULL, info_name="zerotrust-admin")
    for part in path[:-1]:
        parent = Context(FULL.commands[part], info_name=part, parent=parent)
    with Context(command, info_name=path[-1], parent=parent, terminal_width=80) as ctx:
        return {"params": params, "help": command.get_help(ctx), "short": command.get_short_help_str()}


def test_there_is_a_leaf_for_every_command():
    assert set(FULL.commands) == set(TOP_LEVEL)
    assert len(LEAVES) >= 40


@pytest.mark.parametrize("top,sub", LEAVES, ids=[f"{t} {s or ''}".strip() for t, s in LEAVES])
def test_partial_app_command_is_the_full_apps(top, sub):
    partial = typer.main.get_command(build_app(top, sub))
    assert list(partial.commands) == [top]
    if sub is None:
        assert describe(partial.commands[top], [top]) == describe(FULL.commands[top], [top])
        return
    group = partial.commands[top]
    assert list(group.commands) == [sub]  # only the invoked command was converted
    assert describe(group.commands[sub], [top, sub]) == describe(FULL.commands[top].commands[sub], [top, sub])
    assert [p.name for p in group.params] == [p.name for p in FULL.commands[top].params]
    assert [p.name for p in partial.params] == [p.name for p in FULL.params]  # the root options


def test_unknown_subcommand_gets_the_whole_group():
    group = typer.main.get_command(build_app("vault", "lst")).commands["vault"]
    assert set(group.commands) == set(FULL.commands["vault"].commands)


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["vault", "list"], ("vault", "list")),
        (["-c", "/x.yaml", "--json", "vault", "get", "n"], ("vault", "get")),
        (["--config=/x.yaml", "-q", "-v", "keys", "status"], ("keys", "status")),
        (["vault", "--help"], ("vault", None)),
        (["vault"], ("vault", None)),
        (["init", "--passphrase"], ("init", None)),
        (["revoke-sessions", "--all"], ("revoke-sessions", None)),
        (["--version"], ("", None)),
        (["--json", "--version"], ("", None)),
        (["--help"], ("", ROOT_HELP)),
        (["-h"], ("", ROOT_HELP)),
        ([], ("", ROOT_HELP)),
        (["nosuch"], (None, None)),
        (["--bogus", "vault", "list"], (None, None)),
        (["-qv", "vault", "list"], (None, None)),
        (["-c"], (None, None)),
    ],
)
def test_invoked_command(argv, expected):
    assert invoked_command(argv) == expected


def test_completion_gets_the_whole_app(monkeypatch):
    monkeypatch.setenv("_ZEROTRUST_ADMIN_COMPLETE", "bash_complete")
    assert invoked_command(["vault", "get"]) == (None, None)


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=60)


def _full_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    code = "import sys\nfrom zerotrust_admin.cli import entry\nentry.invoked_command = lambda argv: (None, None)\nentry.main(sys.argv[1:])\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=60)


@pytest.mark.parametrize("args", [["--help"], [], ["--version"], ["--json", "--version"], ["vault", "--help"], ["vault", "lst"],
                                  ["keys", "status", "--help"], ["nosuch"], ["vault", "get"], ["audit", "tail", "--bogus"]])
def test_same_output_as_the_full_app(args, zt_env):
    env = {**os.environ, **zt_env, "COLUMNS": "80"}
    partial, full = _cli(args, env), _full_cli(args, env)
    assert (partial.returncode, partial.stdout, partial.stderr) == (full.returncode, full.stdout, full.stderr)


def test_root_options_known_to_invoked_command_are_the_apps():
    """entry.py's list of root options (to find the command after them) is the
    root callback's, flag for flag: a new root option must be added there too."""
    from zerotrust_admin.cli import entry

    handled = {"--version", "--help", "-h", "--install-completion", "--show-completion"}
    flags, valued = set(), set()
    for param in FULL.params:
        names = set(param.opts) | set(param.secondary_opts)
        if names & handled:
            continue
        (flags if getattr(param, "is_flag", False) else valued).update(names)
    assert flags == set(entry._ROOT_FLAGS) and valued == set(entry._ROOT_VALUE_OPTIONS)
