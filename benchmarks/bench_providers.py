"""Secret providers (issue 6): `vault get` per provider, `vault migrate` throughput.

- get: median wall time of the whole `zerotrust-admin vault get NAME` command
  against each provider on loopback: local (the integrated vault), hashicorp
  (a real OpenBao dev server, AppRole login each run), aws (moto server), azure
  (the real Azure SDKs against tests/azure_stub.py, token request each run).
  Peer: `bao kv get -field=value` against the same OpenBao in the same run
  (interleaved); target: hashicorp within 1.5x of `bao kv get`.
- migrate: `zerotrust-admin vault migrate --to hashicorp --yes` of 10,000
  one-version secrets from the integrated vault into OpenBao: secrets/s
  (a progress bar is drawn on a terminal; here stderr is a pipe).

`--quick`: 3 runs per command, 300 secrets.
"""

from __future__ import annotations

import json
import os
import time

from benchmarks.benchlib import Home, entry_point, interleaved, median, row, time_command

GET_TARGET_RATIO = 1.5


def _config(home: Home, name: str, data: dict) -> str:
    import yaml

    path = home.dir / name
    path.write_text(yaml.safe_dump(data))
    os.chmod(path, 0o600)
    return str(path)


def run(quick: bool = False) -> list[dict]:
    from tests.azure_stub import AzureKeyVaultStub
    from tests.servers import MotoServer, OpenBaoServer

    runs = 3 if quick else 15
    count = 300 if quick else 10_000
    rows: list[dict] = []
    bao = OpenBaoServer()
    moto = MotoServer()
    with Home() as home:
        azure = AzureKeyVaultStub(home.dir / "azure")
        try:
            home.cli("init")
            sid = home.dir / "bao-secret-id"
            sid.write_text(bao.secret_id)
            os.chmod(sid, 0o600)
            blocks = {
                "local": {"provider": "local"},
                "hashicorp": {"provider": "hashicorp", "config": {"url": bao.url, "mount_path": bao.MOUNT, "role_id": bao.role_id, "secret_id_file": str(sid)}},
                "aws": {"provider": "aws", "config": moto.settings()},
                "azure": {"provider": "azure", "config": azure.settings()},
            }
            configs = {kind: _config(home, f"{kind}.yaml", {"secrets": block}) for kind, block in blocks.items()}
            for kind, cfg in configs.items():
                home.cli("--config", cfg, "vault", "put", "bench/db/password", input=b"bench-value-0123456789")
            zt = entry_point()
            bao_env = dict(home.env, BAO_ADDR=bao.url, BAO_TOKEN=bao.root_token)
            bao_bin = str(__import__("pathlib").Path(entry_point()[0]).parent / "bao") if os.path.exists(str(__import__("pathlib").Path(entry_point()[0]).parent / "bao")) else "bao"
            commands = {"bao kv get": lambda: time_command([bao_bin, "kv", "get", f"-mount={bao.MOUNT}", "-field=value", "bench/db/password"], bao_env)}
            for kind, cfg in configs.items():
                commands[kind] = (lambda c=cfg: time_command([*zt, "--config", c, "vault", "get", "bench/db/password"], home.env))
            samples = interleaved(commands, runs, warmup=1)
            peer_ms = median(samples["bao kv get"]) * 1000
            rows.append(row("vault get", "bao kv get (peer), median wall", peer_ms, "ms", note=f"{runs} runs, Go binary, root token"))
            for kind in configs:
                ms = median(samples[kind]) * 1000
                extra = {}
                if kind == "hashicorp":
                    ratio = ms / peer_ms
                    extra = {"peer": "bao kv get", "ratio": round(ratio, 2), "target": f"<= {GET_TARGET_RATIO}x bao kv get", "met": ratio <= GET_TARGET_RATIO}
                else:
                    extra = {"peer": "bao kv get", "ratio": round(ms / peer_ms, 2)}
                rows.append(row("vault get", f"{kind} provider, whole command, median wall", ms, "ms", note=f"{runs} runs, loopback", **extra))

            # --- migrate: integrated vault -> OpenBao ---------------------------------
            home.activate()
            try:
                from zerotrust_admin.cli.context import AppContext

                ctx = AppContext()
                ctx.vault().import_many(((f"mig/app{i % 50:02d}/secret-{i:06d}", f"value-{i:08d}".encode()) for i in range(count)), source="bench")
                ctx.close()
            finally:
                home.deactivate()
            mig_cfg = _config(home, "migrate.yaml", {"secrets": {"provider": "local", "targets": {"hashicorp": blocks["hashicorp"]["config"]}}})
            start = time.perf_counter()
            proc = home.cli("--config", mig_cfg, "--json", "vault", "migrate", "--to", "hashicorp", "--prefix", "mig/", "--yes")
            elapsed = time.perf_counter() - start
            result = json.loads(proc.stdout)
            assert result["copied"] == count, result
            rows.append(row("vault migrate", f"local -> hashicorp, {count:,} secrets", count / elapsed, "secrets/s",
                            note=f"{elapsed:.1f} s whole command; 1 version each: one check-and-set write per secret, 8 in parallel; one audit record per run"))
            start = time.perf_counter()
            proc = home.cli("--config", mig_cfg, "--json", "vault", "migrate", "--to", "hashicorp", "--prefix", "mig/", "--yes")
            elapsed = time.perf_counter() - start
            assert json.loads(proc.stdout)["unchanged"] == count
            rows.append(row("vault migrate", f"re-run (all already there), {count:,} secrets", count / elapsed, "secrets/s",
                            note=f"{elapsed:.1f} s; reads and hashes the target's values"))
        finally:
            azure.stop()
            bao.stop()
            moto.stop()
    return rows
