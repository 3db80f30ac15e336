"""A master key that is one of two candidates: the crash-safety net of a key
file rotation (docs/key-hierarchy.md).

During a master key rotation the new key is written to ``master.key`` before the
vault commits, and the old key is kept as ``master.key.previous`` until the
commit is done. A process that opens the vault in that window (or after a crash
there) gets both files; the vault's key check value decides which one is
right: the first candidate that unwraps anything is pinned for the rest of the
process.
"""

from __future__ import annotations

from zerotrust_admin.keys.base import KeySource, UnwrapFailed


class FirstMatchKeySource:
    def __init__(self, candidates: list[KeySource]):
        if not candidates:
            raise ValueError("no candidate master keys")
        self._candidates = list(candidates)
        self._chosen: KeySource | None = None
        self.kind = candidates[0].kind
        self.key_id = candidates[0].key_id

    @property
    def chosen(self) -> KeySource:
        return self._chosen or self._candidates[0]

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        return self.chosen.wrap(plaintext, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        if self._chosen is not None:
            return self._chosen.unwrap(blob, aad)
        for candidate in self._candidates:
            try:
                plain = candidate.unwrap(blob, aad)
            except UnwrapFailed:
                continue
            self._chosen = candidate
            for other in self._candidates:
                if other is not candidate:
                    other.close()
            self._candidates = [candidate]
            return plain
        raise UnwrapFailed()

    def describe(self) -> dict:
        return self.chosen.describe()

    def close(self) -> None:
        for candidate in self._candidates:
            candidate.close()

    def __repr__(self) -> str:
        return f"FirstMatchKeySource({self._candidates!r})"
