"""Security features on the hot path (issue 8): what policies, MFA and memory
protection cost.

- Policy evaluation: one decision against 100 rules (the last one matches,
  the worst case), vs. no policies. Target < 50 us per decision.
- `vault get` end to end (the real CLI, fast path) with 100 policy rules vs.
  without policies, interleaved. Target: < 10 % slower.
- Secret buffers: create + reveal + wipe of a 64-byte secret with mlock vs.
  with ZEROTRUST_NO_MLOCK=1 (the same code without the syscalls).
- SealedSecret: reveal (AES-256-GCM open under the per-process key) vs.
  Secret.reveal. Target < 20 us.
- TOTP verification with the +/-1 step window (3 HMAC-SHA1). Target < 50 us.
"""

from __future__ import annotations

import os
import subprocess
import time

from benchmarks.benchlib import Home, entry_point, median, row


def _per_call(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def _rules(n: int) -> list[dict]:
    rules = [{"principals": [f"user{i}@EXAMPLE.COM"], "secrets": [f"team{i}/*"], "actions": ["read", "write"],
              "effect": "allow", "source_cidrs": ["10.0.0.0/8"]} for i in range(n - 1)]
    rules.append({"principals": ["*@EXAMPLE.COM"], "secrets": ["bench/*"], "actions": ["read"], "effect": "allow"})
    return rules


def run(quick: bool = False) -> list[dict]:
    from zerotrust_admin.access import evaluate, load_policies
    from zerotrust_admin.mfa import totp
    from zerotrust_admin.secret import Secret, SealedSecret

    n = 2_000 if quick else 20_000
    out = []
    rules = load_policies(_rules(100))
    with_rules = median([_per_call(lambda: evaluate(rules, "alice@EXAMPLE.COM", "read", "bench/db", "10.1.2.3"), n) for _ in range(5)])
    without = median([_per_call(lambda: evaluate([], "alice@EXAMPLE.COM", "read", "bench/db", "10.1.2.3"), n) for _ in range(5)])
    out.append(row("access: evaluate, 100 rules, last matches", "time per decision", with_rules, "us",
                   peer="no policies", ratio=round(with_rules / without, 1), target="< 50 us", met=with_rules < 50))

    value = os.urandom(64)

    def secret_cycle():
        s = Secret(value)
        s.reveal()
        s.wipe()

    locked, unlocked = [], []
    for _ in range(5):
        os.environ.pop("ZEROTRUST_NO_MLOCK", None)
        locked.append(_per_call(secret_cycle, n))
        os.environ["ZEROTRUST_NO_MLOCK"] = "1"
        unlocked.append(_per_call(secret_cycle, n))
    os.environ.pop("ZEROTRUST_NO_MLOCK", None)
    out.append(row("Secret: create + reveal + wipe (64 B), mlocked", "time per secret", median(locked), "us",
                   peer="same without mlock", ratio=round(median(locked) / median(unlocked), 2)))

    sealed, plain = SealedSecret(value), Secret(value)
    s_us = median([_per_call(sealed.reveal, n) for _ in range(5)])
    p_us = median([_per_call(plain.reveal, n) for _ in range(5)])
    out.append(row("SealedSecret.reveal (AES-256-GCM, per-process key)", "time per reveal", s_us, "us",
                   peer="Secret.reveal", ratio=round(s_us / p_us, 1), target="< 20 us", met=s_us < 20))

    seed = totp.new_seed()
    code = totp.totp(seed, time.time())
    t_us = median([_per_call(lambda: totp.matching_step(seed, code, time.time()), n) for _ in range(5)])
    out.append(row("TOTP verify, +/-1 step window", "time per check", t_us, "us", target="< 50 us", met=t_us < 50))

    out.append(_vault_get_overhead(quick))
    out.extend(_policy_load_cost(n // 100))
    return out


def _policy_load_cost(n: int) -> list[dict]:
    """Where the end-to-end overhead goes: parsing the YAML of 100 rules vs. validating them."""
    import yaml

    from zerotrust_admin.access import load_policies

    text = yaml.safe_dump({"access": {"policies": _rules(100)}})
    py = median([_per_call(lambda: yaml.safe_load(text), n) for _ in range(5)]) / 1000
    rows = [row("config load: yaml.safe_load of 100 rules (as the loader does)", "time", py, "ms",
                note="pure-Python YAML parser; most of the vault get overhead above")]
    if getattr(yaml, "CSafeLoader", None) is not None:
        c = median([_per_call(lambda: yaml.load(text, Loader=yaml.CSafeLoader), n) for _ in range(5)]) / 1000
        rows.append(row("config load: the same with yaml.CSafeLoader (libyaml)", "time", c, "ms", peer="yaml.safe_load", ratio=round(c / py, 2)))
    rules = _rules(100)
    v = median([_per_call(lambda: load_policies(rules), n) for _ in range(5)]) / 1000
    rows.append(row("access: load_policies (validate + compile 100 rules)", "time", v, "ms", target="< 5 ms", met=v < 5))
    return rows


def _vault_get_overhead(quick: bool) -> dict:
    import yaml

    rounds = 5 if quick else 25
    with Home() as home:
        env = dict(home.env)
        subprocess.run(entry_point() + ["init"], env=env, check=True, capture_output=True)
        subprocess.run(entry_point() + ["vault", "put", "bench/db"], env=env, input=b"value", check=True, capture_output=True)
        config = home.dir / "policies.yaml"
        config.write_text(yaml.safe_dump({"access": {"policies": _rules(100)}}))
        config.chmod(0o600)
        with_env = {**env, "ZEROTRUST_CONFIG": str(config)}
        a, b = [], []
        for _ in range(rounds):
            for target, e in ((a, env), (b, with_env)):
                t0 = time.perf_counter()
                proc = subprocess.run(entry_point() + ["vault", "get", "bench/db"], env=e, capture_output=True)
                target.append((time.perf_counter() - t0) * 1000)
                assert proc.returncode == 0, proc.stderr
        base, pol = median(a), median(b)
    return row("vault get, 100 policy rules (real CLI)", "median wall time", pol, "ms", peer="no policies",
               ratio=round(pol / base, 3), target="< 1.10x", met=pol / base < 1.10)
