"""Helpers shared by the benchmark modules (``benchmarks/bench_<topic>.py``).

    from benchmarks.benchlib import Home, interleaved, median, row

The machine is small and shared, so every comparison is measured side by side
in one run (``interleaved``) and reported as a ratio, never against a figure
from another day.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


def entry_point() -> list[str]:
    """The installed ``zerotrust-admin`` (what operators run), else ``python -m``."""
    installed = Path(sys.executable).parent / "zerotrust-admin"
    if installed.exists():
        return [str(installed)]
    if (VENV_BIN / "zerotrust-admin").exists():
        return [str(VENV_BIN / "zerotrust-admin")]
    return [sys.executable, "-m", "zerotrust_admin"]


def row(scenario: str, metric: str, value: float, unit: str, **extra) -> dict:
    """One result row in the shared convention (see benchmarks/README.md)."""
    out = {"scenario": scenario, "metric": metric, "value": float(value), "unit": unit}
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Home:
    """A throw-away $ZEROTRUST_HOME (and config dirs) so nothing of the host leaks
    in or out. ``env`` is a complete environment for subprocesses;
    ``activate()`` applies it to this process for library-level measurements."""

    def __init__(self, prefix: str = "zt-bench-"):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.home = self.dir / "home"
        self.env = {
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.dir / "userhome"),
            "ZEROTRUST_HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.dir / "xdg-config"),
            "XDG_DATA_HOME": str(self.dir / "xdg-data"),
            "ZEROTRUST_PRINCIPAL": "bench@EXAMPLE.COM",
            "KRB5CCNAME": f"FILE:{self.dir / 'no-ccache'}",
            "LANG": "C.UTF-8",
        }
        self._saved: dict | None = None

    def cli(self, *args: str, input: bytes = b"", check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*entry_point(), *args], input=input, capture_output=True, env=self.env, cwd=str(ROOT))
        if check and proc.returncode != 0:
            raise RuntimeError(f"zerotrust-admin {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
        return proc

    def write_config(self, text: str) -> Path:
        """A config file (0600) beside the home; returns its path, for ZEROTRUST_CONFIG."""
        path = self.dir / "config.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return path

    def activate(self) -> "Home":
        self._saved = dict(os.environ)
        for key in [k for k in os.environ if k.startswith("ZEROTRUST_")]:
            del os.environ[key]
        os.environ.update(self.env)
        return self

    def deactivate(self) -> None:
        if self._saved is not None:
            os.environ.clear()
            os.environ.update(self._saved)
            self._saved = None

    def __enter__(self) -> "Home":
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()
        shutil.rmtree(self.dir, ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(argv: Sequence[str], env: dict, input: bytes = b"", cpu: list | None = None) -> float:
    """Wall time of one run, in seconds (output discarded; a failure raises).

    With ``cpu``, the child's CPU time (user + sys) is appended to it: a figure
    that moves much less than wall time when the machine is busy."""
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(list(argv), input=input, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
    elapsed = time.perf_counter() - start
    if cpu is not None:
        cpu.append(_children_cpu() - cpu_before)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()[:300]}")
    return elapsed


def interleaved(commands: dict[str, Callable[[], float]], runs: int, warmup: int = 2) -> dict[str, list[float]]:
    """Run each measurement ``runs`` times, round-robin (a, b, c, a, b, c, ...)
    with the order rotated every round, so that machine noise hits all of them
    alike. Each callable returns one duration in seconds."""
    names = list(commands)
    for _ in range(warmup):
        for name in names:
            commands[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(commands[name]())
    return samples


def per_op(fns: dict[str, Callable[[int], None]], ops: int) -> dict[str, list[float]]:
    """Durations (seconds) of ``ops`` calls ``fn(i)`` for each of ``fns``,
    alternating between them call by call (order rotated every round)."""
    names = list(fns)
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(ops):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            fns[name](i)
            out[name].append(time.perf_counter() - start)
    return out
