"""Audit analytics at scale: search, verify, anomalies and compliance-report over
a 1,000,000-record synthetic audit log (a real chained log, written by
``zerotrust_admin.anomaly.synthetic``), each a whole CLI run with its peak RSS.

Peers, measured in the same run on the same file: ``grep -c`` for a one-field
search, ``jq`` for a structured filter and for ``jq -c . >/dev/null`` (parse
every line, the floor for any JSON-aware tool) against ``audit verify``.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import time
from datetime import timedelta

from benchmarks.benchlib import Home, entry_point, row

RSS_WRAPPER = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
               "sys.stderr.write(p.stderr.decode(errors='replace')[-300:]); "
               "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _measure(argv: list[str], env: dict, shell: bool = False) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of one run."""
    start = time.perf_counter()
    if shell:
        proc = subprocess.run(["bash", "-c", argv[0]], env=env, capture_output=True)
        return time.perf_counter() - start, 0.0, proc.returncode
    proc = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *argv], env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    code, rss_kib = proc.stdout.decode().split()
    return elapsed, int(rss_kib) / 1024, int(code)


def _best(argv, env, runs: int, shell: bool = False):
    results = [_measure(argv, env, shell) for _ in range(runs)]
    best = min(results, key=lambda r: r[0])
    return best[0], max(r[1] for r in results), best[2]


def run(quick: bool = False) -> list[dict]:
    from zerotrust_admin.anomaly.synthetic import Synthetic, write_log
    from zerotrust_admin.timeutil import utcnow

    target_records = 100_000 if quick else 1_000_000
    runs = 1 if quick else 2
    rows: list[dict] = []
    with Home("zt-bench-audit-") as home:
        home.cli("init")
        end = utcnow()
        users = 100 if quick else 1000
        syn = Synthetic(days=35, window_days=7, users=users, services=users // 50, events_per_day=36, seed=5,
                        end=end + timedelta(days=1))
        stamp = end.strftime("%Y-%m-%dT%H:%M:%S")
        records = itertools.islice((r for r in syn.records() if r["timestamp"] < stamp), target_records)
        t0 = time.perf_counter()
        n = write_log(home.home / "audit.log", records)
        gen = time.perf_counter() - t0
        log = home.home / "audit.log"
        size_mb = log.stat().st_size / 1e6
        rows.append(row("synthetic log", "records", n, "records", note=f"{size_mb:.0f} MB, generated and chained in {gen:.1f} s"))
        cli = entry_point()
        env = home.env
        user = "alice@EXAMPLE.COM"

        # search: one field, against grep -c
        t, rss, code = _best([*cli, "audit", "search", "--user", user, "--count"], env, runs)
        g, _, _ = _best([f"grep -c '\"user\":\"{user}\"' {log}"], env, runs, shell=True)
        rows.append(row(f"audit search --user ({n:,} records)", "wall", t, "s", peer="grep -c", ratio=round(t / g, 2),
                        note=f"peak RSS {rss:.0f} MB; grep {g:.2f} s"))
        # search: structured filter, against jq
        t, rss, code = _best([*cli, "audit", "search", "--resource", "payments/*", "--failure", "--count"], env, runs)
        jq = shutil.which("jq")
        if jq:
            j, _, _ = _best([f"jq -c 'select(.success == false and (.resource | startswith(\"payments/\")))' {log} | wc -l"], env, 1, shell=True)
            rows.append(row(f"audit search --resource --failure ({n:,})", "wall", t, "s", peer="jq select | wc -l", ratio=round(t / j, 2),
                            note=f"peak RSS {rss:.0f} MB; jq {j:.2f} s"))
        else:
            rows.append(row(f"audit search --resource --failure ({n:,})", "wall", t, "s", note="jq not installed: no peer"))

        # verify, against jq -c . >/dev/null
        t, rss, code = _best([*cli, "audit", "verify"], env, runs)
        row_extra = {}
        if jq:
            j, _, _ = _best([f"jq -c . {log} >/dev/null"], env, 1, shell=True)
            row_extra = {"peer": "jq -c . >/dev/null", "ratio": round(t / j, 2)}
        rows.append(row(f"audit verify ({n:,} records)", "wall", t, "s", target="< 5 s", met=t < 5 and code == 0,
                        note=f"peak RSS {rss:.0f} MB" + (f"; jq {j:.2f} s" if jq else ""), **row_extra))

        # anomalies (a run appends one review record; harmless for the others)
        t, rss, code = _best([*cli, "audit", "anomalies", "--since", "7d", "--json"], env, runs)
        rows.append(row(f"audit anomalies --since 7d ({n:,})", "wall", t, "s", target="< 15 s", met=t < 15 and code == 0, note=f"peak RSS {rss:.0f} MB"))

        # compliance report over the whole log
        out = home.dir / "report.pdf"
        t, rss, code = _best([*cli, "compliance-report", "--standard", "all", "--output", str(out)], env, 1)
        rows.append(row(f"compliance-report --standard all, PDF ({n:,})", "wall", t, "s", target="< 15 s", met=t < 15 and code in (0, 10)))
        rows.append(row(f"compliance-report --standard all, PDF ({n:,})", "peak RSS", rss, "MB", target="< 300 MB", met=rss < 300))
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
