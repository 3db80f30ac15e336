"""compliance-report over a 1,000,000-record audit log (issue 13): the whole
CLI run, period replay included (coverage, cadences, key ages day by day,
MFA coverage, declarations), for ``--standard all`` as PDF and as JSON, with
peak RSS. The log is a real chained log (``zerotrust_admin.anomaly.synthetic``)
spanning 35 days, reported over ``--period 90d`` and ``--period 30d``.
"""

from __future__ import annotations

import itertools
import sys
import time
from datetime import timedelta

from benchmarks.bench_audit import _best
from benchmarks.benchlib import Home, entry_point, row


def run(quick: bool = False) -> list[dict]:
    from zerotrust_admin.anomaly.synthetic import Synthetic, write_log
    from zerotrust_admin.timeutil import utcnow

    target = 100_000 if quick else 1_000_000
    rows: list[dict] = []
    with Home("zt-bench-compliance-") as home:
        home.cli("init")
        end = utcnow()
        syn = Synthetic(days=35, window_days=7, users=100 if quick else 1000, services=2 if quick else 20, events_per_day=36, seed=5,
                        end=end + timedelta(days=1))
        stamp = end.strftime("%Y-%m-%dT%H:%M:%S")
        t0 = time.perf_counter()
        n = write_log(home.home / "audit.log", itertools.islice((r for r in syn.records() if r["timestamp"] < stamp), target), checkpoint_every=100)
        size = (home.home / "audit.log").stat().st_size / 1e6
        rows.append(row("synthetic log", "records", n, "records", note=f"{size:.0f} MB, written in {time.perf_counter() - t0:.1f} s"))
        cli, env = entry_point(), home.env
        for fmt, period in (("pdf", "90d"), ("json", "90d"), ("pdf", "30d")):
            out = home.dir / f"report-{period}.{fmt}"
            t, rss, code = _best([*cli, "compliance-report", "--standard", "all", "--period", period, "--output", str(out)], env, 1)
            name = f"compliance-report --standard all --period {period}, {fmt.upper()} ({n:,})"
            rows.append(row(name, "wall", t, "s", target="< 10 s", met=t < 10 and code in (0, 10), note="period replay included; 214 requirements, 5 standards"))
            rows.append(row(name, "peak RSS", rss, "MB", target="< 300 MB", met=rss < 300))
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
