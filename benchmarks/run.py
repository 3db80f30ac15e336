#!/usr/bin/env python3
"""Run the benchmark modules and record their results.

    python benchmarks/run.py                 # every benchmarks/bench_*.py
    python benchmarks/run.py vault sessions  # only these topics
    python benchmarks/run.py --quick         # reduced sizes: a smoke run, writes nothing
    python benchmarks/run.py --list

Each topic is a module ``benchmarks/bench_<topic>.py`` exposing
``run(quick: bool = False) -> list[dict]``; each dict is one row:
``{"scenario", "metric", "value", "unit"}`` plus optional ``peer``, ``ratio``,
``target``, ``met``, ``note``. A full run writes ``benchmarks/results/<topic>.md``
for each topic it ran, then re-assembles ``benchmarks/RESULTS.md`` from every
topic's file plus the machine facts and the date.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
COLUMNS = ["scenario", "metric", "value", "unit", "peer", "ratio", "target", "met", "note"]

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def discover() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


# --- formatting -----------------------------------------------------------------
def fmt_number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        a = abs(value)
        if a == 0:
            return "0"
        if a >= 1000:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:.0f}"
        if a >= 10:
            return f"{value:.1f}"
        if a >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def cells(row: dict) -> list[str]:
    out = []
    for col in COLUMNS:
        value = row.get(col)
        if col == "ratio" and isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(f"{value:.2f}x")
        elif col == "met":
            out.append("" if value is None else ("yes" if value else "NO"))
        else:
            out.append(fmt_number(value))
    return out


def validate(topic: str, rows) -> list[dict]:
    if not isinstance(rows, list):
        raise TypeError(f"bench_{topic}.run() returned {type(rows).__name__}, not a list of dicts")
    for r in rows:
        missing = [k for k in ("scenario", "metric", "value", "unit") if k not in r]
        if missing:
            raise ValueError(f"bench_{topic}: a row lacks {', '.join(missing)}: {r!r}")
    return rows


def print_table(topic: str, rows: list[dict], seconds: float) -> None:
    title = f"{topic} ({seconds:.0f} s)"
    used = [c for c in COLUMNS if any(r.get(c) not in (None, "") for r in rows)]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, header_style="bold")
        for col in used:
            table.add_column(col, justify="right" if col in ("value", "ratio") else "left", overflow="fold")
        for r in rows:
            style = "red" if r.get("met") is False else None
            full = dict(zip(COLUMNS, cells(r)))
            table.add_row(*[full[c] for c in used], style=style)
        Console().print(table)
        return
    print(f"== {title}")
    grid = [used] + [[dict(zip(COLUMNS, cells(r)))[c] for c in used] for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(used))]
    for line in grid:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
    print()


def md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def topic_markdown(topic: str, rows: list[dict], seconds: float, doc: str, load: tuple = (None, None)) -> str:
    used = [c for c in COLUMNS if any(r.get(c) not in (None, "") for r in rows)]
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    busy = ""
    if None not in load:
        busy = f" Load average (1 min) {load[0]:.2f} at the start, {load[1]:.2f} at the end ({os.cpu_count()} CPUs)."
    lines = [f"## {topic}", "", f"Run {now}, {seconds:.0f} s: `python benchmarks/run.py {topic}`.{busy}", ""]
    if doc:
        lines += [doc.strip(), ""]
    lines.append("| " + " | ".join(used) + " |")
    lines.append("|" + "|".join("---:" if c in ("value", "ratio") else "---" for c in used) + "|")
    for r in rows:
        full = dict(zip(COLUMNS, cells(r)))
        lines.append("| " + " | ".join(md_escape(full[c]) for c in used) + " |")
    missed = [r for r in rows if r.get("met") is False]
    lines.append("")
    lines.append(f"Targets: {sum(1 for r in rows if r.get('met') is True)} met, {len(missed)} missed.")
    return "\n".join(lines) + "\n"


# --- machine facts ------------------------------------------------------------
def machine_facts() -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return [
        ("Date", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", cpu),
        ("Cores", str(cores)),
        ("Memory", memory),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("Load average at assembly (1, 5, 15 min)", load),
    ]


def assemble() -> None:
    parts = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/run.py` (see benchmarks/README.md); each topic's section",
        "comes from `benchmarks/results/<topic>.md`, rewritten whenever that topic is run.",
        "Peers are measured in the same run, interleaved, and compared as ratios: the machine",
        "is small and shared, so absolute figures move from run to run.",
        "",
        "## Machine",
        "",
    ]
    parts += [f"- {key}: {value}" for key, value in machine_facts()]
    parts.append("")
    for path in sorted(RESULTS_DIR.glob("*.md")):
        parts.append(path.read_text().rstrip("\n"))
        parts.append("")
    RESULTS_MD.write_text("\n".join(parts).rstrip("\n") + "\n")


# --- main -------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(description="Run the zerotrust-admin benchmarks.")
    parser.add_argument("topics", nargs="*", help=f"topics to run (default: all of {', '.join(available) or 'none'})")
    parser.add_argument("--quick", action="store_true", help="reduced sizes for a smoke run; prints only, writes no results")
    parser.add_argument("--no-write", action="store_true", help="print only; do not touch benchmarks/results or RESULTS.md")
    parser.add_argument("--list", action="store_true", help="list the topics and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [t for t in args.topics if t not in available]
    if unknown:
        parser.error(f"unknown topic(s): {', '.join(unknown)}; available: {', '.join(available)}")
    topics = args.topics or available
    write = not (args.quick or args.no_write)
    # Measure the CLI as an installed package runs it: with bytecode caches. A
    # source tree edited since its last compile (or PYTHONDONTWRITEBYTECODE set)
    # would otherwise recompile at every start and inflate every start-up figure.
    compileall.compile_dir(str(ROOT / "zerotrust_admin"), quiet=1)
    compileall.compile_dir(str(ROOT / "zerotrust_kerberos"), quiet=1)
    failed = []
    for topic in topics:
        start, load_start = time.perf_counter(), loadavg()
        try:
            module = importlib.import_module(f"benchmarks.bench_{topic}")
            rows = validate(topic, module.run(quick=args.quick))
        except Exception:
            failed.append(topic)
            print(f"== {topic}: FAILED", file=sys.stderr)
            traceback.print_exc()
            continue
        seconds = time.perf_counter() - start
        print_table(topic + (" [quick]" if args.quick else ""), rows, seconds)
        if write:
            RESULTS_DIR.mkdir(exist_ok=True)
            (RESULTS_DIR / f"{topic}.md").write_text(topic_markdown(topic, rows, seconds, module.__doc__ or "", (load_start, loadavg())))
    if write and len(failed) < len(topics):
        assemble()
        print(f"wrote {RESULTS_MD.relative_to(ROOT)}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
