"""The committed completions, man page and CLI reference are generated from the
live Typer app by scripts/gen_docs.py; these tests fail when they are stale,
when the man page does not render cleanly, or when completion does not work.

Other engineers add commands all the time, so nothing here lists commands:
the check is "committed == freshly generated", whatever the app contains.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, backend_missing

GEN = ROOT / "scripts" / "gen_docs.py"
MAN_PAGE = "man/zerotrust-admin.1"
BASH_SCRIPT = ROOT / "completions" / "zerotrust-admin.bash"
VENV_BIN = ROOT / ".venv" / "bin"
REGENERATE = "run `python scripts/gen_docs.py` and commit the result"


def run_gen(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("TYPER_USE_RICH", "COLUMNS", "TERM")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(GEN), *args], capture_output=True, text=True, env=full_env, cwd=str(ROOT), timeout=120)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A fresh generation into a scratch tree (the repository is never written)."""
    root = tmp_path_factory.mktemp("fresh-docs")
    proc = run_gen("--root", str(root))
    assert proc.returncode == 0, proc.stderr
    return root


def test_committed_generated_files_are_up_to_date():
    proc = run_gen("--check")
    assert proc.returncode == 0, f"generated docs are stale; {REGENERATE}.\n{proc.stderr}"


def test_check_reports_a_stale_file_and_exits_1(fresh):
    assert run_gen("--check", "--root", str(fresh)).returncode == 0
    page = fresh / MAN_PAGE
    original = page.read_text()
    page.write_text(original.replace(".SH EXIT STATUS", ".SH EXIT CODES"))
    try:
        proc = run_gen("--check", "--root", str(fresh))
        assert proc.returncode == 1
        assert MAN_PAGE in proc.stderr and "python scripts/gen_docs.py" in proc.stderr
        assert page.read_text() != original, "--check must not rewrite anything"
    finally:
        page.write_text(original)


def test_generation_does_not_depend_on_the_terminal(fresh, tmp_path):
    other = tmp_path / "other"
    proc = run_gen("--root", str(other), env={"COLUMNS": "37", "TERM": "xterm-256color", "TYPER_USE_RICH": "1"})
    assert proc.returncode == 0, proc.stderr
    produced = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert produced == sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file())
    for rel in produced:
        assert (other / rel).read_text() == (fresh / rel).read_text(), rel


def test_every_command_is_in_the_man_page_and_reference(fresh):
    """Walks the live app (whatever commands it has now) independently of gen_docs."""
    code = (
        "import typer\n"
        "from zerotrust_admin.cli.app import app\n"
        "def walk(cmd, path):\n"
        "    print(' '.join(path))\n"
        "    for name, sub in sorted(getattr(cmd, 'commands', {}).items()):\n"
        "        if not sub.hidden: walk(sub, path + [name])\n"
        "walk(typer.main.get_command(app), ['zerotrust-admin'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), timeout=60)
    assert proc.returncode == 0, proc.stderr
    commands = proc.stdout.split("\n")[:-1]
    assert len(commands) > 1
    man = (fresh / MAN_PAGE).read_text()
    reference = (fresh / "docs" / "cli-reference.md").read_text()
    for command in commands[1:]:
        assert f'.SS "{command.replace("-", chr(92) + "-")}"' in man, command
        assert f"\n## {command}\n" in reference, command


@pytest.mark.parametrize("which", ["committed", "fresh"])
def test_man_page_passes_mandoc_lint(which, fresh):
    if shutil.which("mandoc") is None:
        backend_missing("mandoc (apt-get install mandoc)")
    page = (ROOT if which == "committed" else fresh) / MAN_PAGE
    # -Tlint reports everything down to STYLE level; we accept nothing.
    proc = subprocess.run(["mandoc", "-Tlint", str(page)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stdout and not proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize("which", ["committed", "fresh"])
def test_man_page_renders_without_warnings(which, fresh):
    if shutil.which("man") is None:
        backend_missing("man (apt-get install man-db groff-base)")
    page = (ROOT if which == "committed" else fresh) / MAN_PAGE
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "MANWIDTH": "80", "HOME": str(fresh)}
    proc = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode(errors="replace")
    rendered = proc.stdout.decode(errors="replace")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "FILES", "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"):
        assert f"\n{section}\n" in rendered, section


def complete_bash(words: list[str], zt_env: dict, script: Path = BASH_SCRIPT) -> list[str]:
    """Source the completion script in a real bash and ask it to complete `words`."""
    if not (VENV_BIN / "zerotrust-admin").exists():
        backend_missing(f"the installed entry point {VENV_BIN / 'zerotrust-admin'} (run scripts/venv.sh)")
    env = dict(zt_env)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    words_literal = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (
        f"source '{script}'\n"
        "fn=$(complete -p zerotrust-admin | sed -E 's/.* -F ([^ ]+) .*/\\1/')\n"
        f"COMP_WORDS=({words_literal})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "COMP_LINE=\"${COMP_WORDS[*]}\"; COMP_POINT=${#COMP_LINE}\n"
        "\"$fn\" zerotrust-admin \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def test_bash_completion_offers_command_groups(zt_env):
    assert "vault" in complete_bash(["zerotrust-admin", "va"], zt_env)


def test_bash_completion_offers_subcommands_and_options(zt_env):
    assert complete_bash(["zerotrust-admin", "vault", "g"], zt_env) == ["get"]
    assert "--output-file" in complete_bash(["zerotrust-admin", "vault", "get", "--out"], zt_env)


def test_bash_completion_offers_nothing_for_an_unknown_prefix(zt_env):
    assert complete_bash(["zerotrust-admin", "zzz-no-such"], zt_env) == []


def test_every_command_summary_is_one_line():
    """The command lists in `--help` show each command's first help paragraph;
    rich keeps its line breaks, so a summary wrapped in the docstring renders
    as a ragged column. Summary on one line, details after a blank line."""
    import typer

    from zerotrust_admin.cli.app import app

    wrapped = []

    def walk(command, path):
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])
        summary = (command.help or "").strip().split("\n\n")[0]
        if "\n" in summary:
            wrapped.append(" ".join(path))

    root = typer.main.get_command(app)
    walk(root, ["zerotrust-admin"])
    assert len(getattr(root, "commands", {})) > 10  # it really walked the app
    assert not wrapped, wrapped
