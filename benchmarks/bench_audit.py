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


CHECKPOINT_EVERY = 100  # the synthetic log gets a checkpoint per 100 records; a live log has one per record (verify reads only the newest)


def _anchor_share(path) -> dict:
    """What the signed anchor adds to a keyed verify, robust to machine load:
    the library's verify with and without its anchor step (MAC, signature,
    offset, the SHA-256 of the whole log fed from the same reads), alternating,
    best of three each."""
    from zerotrust_admin.audit.log import AuditLog, _HashingReader

    log = AuditLog(path)
    with_anchor, without = [], []
    original_check, original_read = AuditLog._check_anchor, _HashingReader.read

    def plain_read(self, n):
        chunk = self._fh.read(n if self._stop is None else max(0, min(n, self._stop - self.pos)))
        self.pos += len(chunk)
        return chunk

    for _ in range(3):
        t = time.perf_counter()
        assert log.verify().ok
        with_anchor.append(time.perf_counter() - t)
        AuditLog._check_anchor, _HashingReader.read = (lambda *a, **k: None), plain_read
        try:
            t = time.perf_counter()
            assert log.verify().ok
            without.append(time.perf_counter() - t)
        finally:
            AuditLog._check_anchor, _HashingReader.read = original_check, original_read
    a, b = min(with_anchor), min(without)
    return row("audit verify, library: chain + signed anchor", "wall", a, "s", peer="chain only (before checkpoints)", ratio=round(a / b, 2),
               note=f"chain only {b:.2f} s; in-process, alternating, best of 3")


def _append_cost(home) -> list[dict]:
    """What a signed checkpoint adds to one append (hence to every audited
    command: vault put, vault get, ...), in-process: the writer with
    checkpoints against the same writer whose checkpoint steps are replaced by
    the old unsigned head, alternating one append each on two logs in the same
    directory so that both see the same disk and load. An append reads only
    the log's tail, so its cost does not depend on the log's size."""
    import statistics
    import types

    from zerotrust_admin import fsutil
    from zerotrust_admin.audit import Actor
    from zerotrust_admin.audit.log import AuditLog, canonical

    base = home.dir / "append-cost"
    (base / "signed").mkdir(parents=True, mode=0o700)
    (base / "plain").mkdir(parents=True, mode=0o700)
    signed = AuditLog(base / "signed" / "audit.log")
    plain = AuditLog(base / "plain" / "audit.log")
    plain._resume = types.MethodType(lambda self, key, last, torn, size: None, plain)
    plain._checkpoint = types.MethodType(lambda self, key, resume, written, size, record: fsutil.write_private_file(
        self.head_path, canonical({"seq": record["seq"], "hash": record["hash"]}) + b"\n"), plain)
    actor = Actor("bench@EXAMPLE.COM", "127.0.0.1", "bench")
    times: dict = {"signed": [], "plain": []}
    for i in range(300):
        for name, log in (("signed", signed), ("plain", plain)):
            t = time.perf_counter()
            log.append(event="secret_access", action="write", resource=f"bench/{i}", success=True, actor=actor, version=1)
            times[name].append(time.perf_counter() - t)
    s, p = statistics.median(times["signed"][20:]) * 1e3, statistics.median(times["plain"][20:]) * 1e3
    return [row("audit append with signed checkpoint", "median", s, "ms", peer="unsigned head (old writer)", ratio=round(s / p, 2),
                note=f"old writer {p:.2f} ms; +{s - p:.2f} ms per audited command (vault put, get, ...): tail check, SHA-256 resume, "
                     "Ed25519 sign, checkpoints-file line; both include the log fsync and the anchor's atomic rewrite")]


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
        n = write_log(home.home / "audit.log", records, checkpoint_every=CHECKPOINT_EVERY)
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
                        note=f"peak RSS {rss:.0f} MB; chain + signed anchor (MAC, Ed25519, SHA-256 of the whole log)" + (f"; jq {j:.2f} s" if jq else ""), **row_extra))
        rows.append(_anchor_share(log))
        # verify with the public key only (no audit.key): SHA-256 of the log and one signature
        pub = home.dir / "pinned.pub"
        home.cli("keys", "public-key", "--output", str(pub))
        t, rss, code = _best([*cli, "audit", "verify", "--public-key", str(pub)], env, runs)
        s, _, _ = _best([f"sha256sum {log} >/dev/null"], env, 1, shell=True)
        rows.append(row(f"audit verify --public-key ({n:,} records)", "wall", t, "s", peer="sha256sum", ratio=round(t / s, 2), target="< 5 s",
                        met=t < 5 and code == 0, note=f"peak RSS {rss:.0f} MB; sha256sum {s:.2f} s"))
        rows.extend(_append_cost(home))

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
