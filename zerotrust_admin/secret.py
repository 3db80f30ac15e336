"""A byte string that does not print itself and can be wiped."""

from __future__ import annotations


class Secret:
    """Holds secret bytes in a mutable buffer.

    ``repr``/``str`` never show the value. ``wipe()`` overwrites the buffer with
    zeros; Python may still hold transient copies (for example the ``bytes``
    returned by ``reveal()``), so wiping is best effort, not a guarantee.
    """

    __slots__ = ("_buf", "_wiped")

    def __init__(self, value: bytes | bytearray | str):
        if isinstance(value, str):
            value = value.encode("utf-8")
        self._buf = bytearray(value)
        self._wiped = False

    def reveal(self) -> bytes:
        if self._wiped:
            raise ValueError("secret has been wiped")
        return bytes(self._buf)

    def reveal_text(self) -> str:
        return self.reveal().decode("utf-8")

    def __len__(self) -> int:
        return len(self._buf)

    def wipe(self) -> None:
        for i in range(len(self._buf)):
            self._buf[i] = 0
        self._wiped = True

    @property
    def wiped(self) -> bool:
        return self._wiped

    def __enter__(self) -> "Secret":
        return self

    def __exit__(self, *exc) -> None:
        self.wipe()

    def __repr__(self) -> str:
        return "Secret(<redacted>)" if not self._wiped else "Secret(<wiped>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        import hmac

        if isinstance(other, Secret):
            return hmac.compare_digest(self._buf, other._buf)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):  # never pickle a secret by accident
        raise TypeError("Secret objects cannot be pickled")
