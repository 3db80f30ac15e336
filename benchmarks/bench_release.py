"""This release against the previous one (issue 12's start-up budget): the whole
`zerotrust-admin vault get` and `vault put` on a 1,000-secret vault, with the
code of commit 39f564a (vault format 1, HMAC-only audit chain) and with this
tree (format 2 with the bucketed commitment, signed audit checkpoints, the audit
floor), interleaved in one run. Target: `vault get` within 10 % of 39f564a.

Both run as `python -S -P -c "...main()"` with the same site-packages on
PYTHONPATH and only the source tree differing (-S keeps the editable install's
import hook out, so each process imports the tree it is given). The previous
release comes from `git worktree add` of 39f564a; the bytecode of both trees is
compiled first. The CPU time of the children (user + sys) is reported too: it
moves much less than wall time on a shared machine.
"""

from __future__ import annotations

import compileall
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from benchmarks.benchlib import ROOT, Home, interleaved, median, row, time_command

PREVIOUS = "39f564a"
MAIN = "import sys; sys.argv[0] = 'zerotrust-admin'; from zerotrust_admin.cli.entry import main; sys.exit(main())"


def _argv(tree: Path, *args: str) -> list[str]:
    # -P: with -c, sys.path would start with the working directory (this
    # checkout), ahead of PYTHONPATH, and both sides would run this tree.
    return [sys.executable, "-S", "-P", "-c", MAIN, *args]


def _env(home: Home, tree: Path) -> dict:
    env = dict(home.env)
    env["PYTHONPATH"] = f"{tree}:{sysconfig.get_paths()['purelib']}:{sysconfig.get_paths()['platlib']}"
    return env


def run(quick: bool = False) -> list[dict]:
    secrets = 100 if quick else 1_000
    runs = 5 if quick else 25
    work = Path(tempfile.mkdtemp(prefix="zt-bench-release-"))
    previous = work / "previous"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(previous), PREVIOUS], check=True)
    try:
        trees = {"previous": previous, "this": ROOT}
        for tree in trees.values():
            compileall.compile_dir(str(tree / "zerotrust_admin"), quiet=1)
        homes = {name: Home(prefix=f"zt-bench-release-{name}-") for name in trees}
        for name, tree in trees.items():  # each side really imports its own tree
            where = subprocess.run([sys.executable, "-S", "-P", "-c", "import zerotrust_admin; print(zerotrust_admin.__file__)"],
                                   env=_env(homes[name], tree), check=True, capture_output=True, text=True).stdout.strip()
            if not Path(where).resolve().is_relative_to(Path(tree).resolve()):
                raise RuntimeError(f"the {name} side imports {where}, not {tree}")
        for name, tree in trees.items():
            env = _env(homes[name], tree)
            subprocess.run(_argv(tree, "init"), env=env, check=True, capture_output=True)
            bulk = homes[name].dir / "bulk.json"
            bulk.write_text(json.dumps({f"bench/s{i:05d}": f"value-{i}" for i in range(secrets)}))
            subprocess.run(_argv(tree, "vault", "import", str(bulk)), env=env, check=True, capture_output=True)
            subprocess.run(_argv(tree, "vault", "put", "bench/target"), input=b"v", env=env, check=True, capture_output=True)
        cpu: dict[str, list[float]] = {f"{op}:{name}": [] for op in ("get", "put") for name in trees}

        def get(name):
            return lambda: time_command(_argv(trees[name], "vault", "get", "bench/target"), _env(homes[name], trees[name]), cpu=cpu[f"get:{name}"])

        def put(name):
            return lambda: time_command(_argv(trees[name], "vault", "put", "bench/target"), _env(homes[name], trees[name]), input=b"v2",
                                        cpu=cpu[f"put:{name}"])

        samples = interleaved({"get:previous": get("previous"), "get:this": get("this"),
                               "put:previous": put("previous"), "put:this": put("this")}, runs)
        out = []
        for op, target in (("get", 1.10), ("put", None)):
            this, prev = median(samples[f"{op}:this"]) * 1000, median(samples[f"{op}:previous"]) * 1000
            ratio = this / prev
            out.append(row(f"vault {op}, {secrets:,} secrets", "median wall, whole command", round(this, 1), "ms",
                           peer=f"{PREVIOUS} {round(prev, 1)} ms", ratio=round(ratio, 2),
                           target="<= 1.10x the previous release" if target else None,
                           met=(ratio <= target) if target else None, note=f"{runs} runs interleaved"))
            this_cpu, prev_cpu = median(cpu[f"{op}:this"]) * 1000, median(cpu[f"{op}:previous"]) * 1000
            out.append(row(f"vault {op}, {secrets:,} secrets", "median CPU (user+sys), whole command", round(this_cpu, 1), "ms",
                           peer=f"{PREVIOUS} {round(prev_cpu, 1)} ms", ratio=round(this_cpu / prev_cpu, 2), note=f"{runs} runs interleaved"))
        for home in homes.values():
            home.__exit__(None, None, None)
        return out
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(previous)], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
