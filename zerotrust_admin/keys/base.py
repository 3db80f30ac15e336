from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from zerotrust_admin.secret import Secret
from zerotrust_admin.structs import field, struct


class UnwrapFailed(Exception):
    """The wrapped blob does not authenticate under this master key."""


class KeySource(Protocol):
    """A master key. It wraps and unwraps data keys, nothing else.

    ``wrap``/``unwrap`` bind ``aad`` (associated data) to the blob, so a wrapped
    key moved to another slot does not unwrap. ``unwrap`` raises UnwrapFailed on
    any failure.
    """

    kind: str
    key_id: str

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes: ...

    def describe(self) -> dict: ...

    def close(self) -> None: ...


PassphrasePrompt = Callable[[str, bool], Secret]
"""(prompt, confirm) -> passphrase. The CLI supplies a hidden prompt; the
library never talks to a terminal itself."""


@struct
class KeySourceContext:
    config: dict
    home: Path
    ask_passphrase: PassphrasePrompt | None = None
    environ: dict = field(default_factory=dict)
