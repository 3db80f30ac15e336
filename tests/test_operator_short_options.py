"""Issue 14 polish: each short option means one thing across the whole CLI
(``-r`` was --reason, --role-arn, --recipient or --resource depending on the
command). The long options all stay."""

from __future__ import annotations

from collections import defaultdict

import typer.main

from zerotrust_admin.cli.app import app

# One meaning, two spellings of the long name (the file to write; how many).
SAME_MEANING = [{"--output", "--output-file"}, {"--lines", "--limit"}]
EXPECTED = {"-r": "--reason", "-f": "--format", "-s": "--standard", "-u": "--user", "-o": "--output", "-y": "--yes", "-q": "--quiet"}


def _walk(cmd, path: list[str]):
    yield path, cmd
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        yield from _walk(sub, path + [name])


def _is_option(param) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _shorts() -> dict[str, dict[str, list[str]]]:
    meanings: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, cmd in _walk(typer.main.get_command(app), ["zerotrust-admin"]):
        for param in cmd.params:
            if not _is_option(param):
                continue
            names = list(param.opts) + list(param.secondary_opts)
            longs = sorted(n for n in names if n.startswith("--"))
            for short in (n for n in names if len(n) == 2 and n[0] == "-" and n[1] != "-"):
                meanings[short][longs[0] if longs else short].append(" ".join(path))
    return meanings


def _canonical(long: str) -> str:
    for group in SAME_MEANING:
        if long in group:
            return sorted(group)[0]
    return long


def test_every_short_option_has_one_meaning_across_the_cli():
    clashes = {}
    for short, longs in _shorts().items():
        meanings = {_canonical(long) for long in longs}
        if len(meanings) > 1:
            clashes[short] = {long: cmds for long, cmds in longs.items()}
    assert not clashes, clashes


def test_the_kept_letters():
    shorts = _shorts()
    for short, long in EXPECTED.items():
        assert {_canonical(x) for x in shorts[short]} == {_canonical(long)}, (short, dict(shorts[short]))
    # the renamed ones keep their long spelling
    for cmd_path, long in (("zerotrust-admin credentials get", "--role-arn"), ("zerotrust-admin vault backup", "--recipient"),
                           ("zerotrust-admin audit search", "--resource"), ("zerotrust-admin audit tail", "--follow"),
                           ("zerotrust-admin vault put", "--value-file"), ("zerotrust-admin revoke-sessions", "--session")):
        cmd = typer.main.get_command(app)
        for part in cmd_path.split()[1:]:
            cmd = cmd.commands[part]
        assert any(long in p.opts for p in cmd.params if _is_option(p)), (cmd_path, long)


def test_short_reason_works_on_revoke_sessions(cli, initialized):
    res = cli("revoke-sessions", "--user", "nobody@EXAMPLE.COM", "-r", "INC-1", "--yes", "--no-notify")
    assert res.code == 3 and "no live sessions" in res.err, res.err  # -r parsed as --reason; the user simply has none
    res = cli("credentials", "get", "-r", "arn:aws:iam::123456789012:role/R")
    assert res.code == 2 and "-r" in res.err  # no longer --role-arn: a usage error naming the option
