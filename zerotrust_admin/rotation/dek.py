"""Data key rotation: a new DEK becomes active for writes, every version sealed
under an older DEK is re-sealed under it in short batches (other processes keep
reading and writing between batches), then the old DEKs, no longer referenced,
are deleted.

Resumable: the work left is "versions still under a retired DEK", which is
visible in the vault itself, so a run killed anywhere is completed by the next
one (which does not start yet another DEK while one is half done).
"""

from __future__ import annotations

from typing import Callable

DEFAULT_BATCH = 2000

Progress = Callable[[int, int], None]


def rotate_dek(vault, *, batch: int = DEFAULT_BATCH, progress: Progress | None = None,
               checkpoint: Callable[[str], None] | None = None) -> dict:
    checkpoint = checkpoint or (lambda _: None)
    pending = vault.pending_reencryption()
    resumed = pending > 0
    retired: list[str] = []
    if resumed:
        new_id = vault.active_dek().id
    else:
        new_id, retired = vault.add_dek()
        checkpoint("dek-added")
    total = vault.pending_reencryption()
    done = 0
    if progress:
        progress(0, total)
    while True:
        moved = vault.reencrypt_batch(batch)
        if not moved:
            break
        done += moved
        if progress:
            progress(done, max(total, done))
        checkpoint("batch")
    purged = vault.purge_retired_deks()
    checkpoint("purged")
    return {"new_dek_id": new_id, "retired_dek_ids": sorted(set(retired) | set(purged)), "reencrypted": done,
            "purged_dek_ids": purged, "resumed": resumed}
