"""SHA-256 whose running state can be saved and resumed (FIPS 180-4).

A checkpoint carries the SHA-256 of every byte of the log up to its offset.
The writer must extend that digest by the few hundred bytes of each append
without re-reading the log, so it keeps the compression state (eight words,
the byte count, the unprocessed tail) in the MACed anchor. ``hashlib`` cannot
export its state, so the per-append work runs here in pure Python (about
0.2 ms per 64-byte block, a few blocks per record); verifiers use ``hashlib``
on the whole file and get the same digest (tests/test_audit_chain.py checks
they agree). Bulk input (signing a log written before checkpoints existed, the
benchmark's synthetic log) goes through OpenSSL's ``SHA256_Update`` on the same
state when libcrypto can be loaded, because pure Python would take minutes for
hundreds of megabytes.
"""

from __future__ import annotations

import struct

_K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)
_H0 = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_M = 0xFFFFFFFF
_BLOCK = struct.Struct(">16L")


def _compress(h: list[int], block: bytes, _K=_K, _M=_M, unpack=_BLOCK.unpack) -> None:
    w = list(unpack(block))
    append = w.append
    for i in range(16, 64):
        x = w[i - 15]
        y = w[i - 2]
        append((w[i - 16] + w[i - 7]
                + ((((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3)) & _M)
                + ((((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10)) & _M)) & _M)
    a, b, c, d, e, f, g, hh = h
    for k, wi in zip(_K, w):
        t1 = (hh + ((((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7))) & _M)
              + ((e & f) ^ (~e & g)) + k + wi) & _M
        t2 = (((((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10))) & _M) + ((a & b) ^ (a & c) ^ (b & c))) & _M
        hh = g
        g = f
        f = e
        e = (d + t1) & _M
        d = c
        c = b
        b = a
        a = (t1 + t2) & _M
    h[0] = (h[0] + a) & _M
    h[1] = (h[1] + b) & _M
    h[2] = (h[2] + c) & _M
    h[3] = (h[3] + d) & _M
    h[4] = (h[4] + e) & _M
    h[5] = (h[5] + f) & _M
    h[6] = (h[6] + g) & _M
    h[7] = (h[7] + hh) & _M


_BULK = 1 << 14
_LIBCRYPTO: list = []


def _bulk_compress(h: list[int], data: bytes) -> bool:
    """Compress whole blocks with libcrypto's SHA256_Update from state ``h``
    (in place); False when libcrypto is not available."""
    import ctypes

    if not _LIBCRYPTO:
        try:
            import ctypes.util

            lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")

            class Ctx(ctypes.Structure):  # SHA256_CTX, <openssl/sha.h>
                _fields_ = [("h", ctypes.c_uint32 * 8), ("Nl", ctypes.c_uint32), ("Nh", ctypes.c_uint32),
                            ("data", ctypes.c_uint32 * 16), ("num", ctypes.c_uint32), ("md_len", ctypes.c_uint32)]

            lib.SHA256_Init.argtypes = [ctypes.c_void_p]
            lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
            _LIBCRYPTO.append((lib, Ctx))
        except (OSError, AttributeError):
            _LIBCRYPTO.append(None)
    if _LIBCRYPTO[0] is None:
        return False
    lib, Ctx = _LIBCRYPTO[0]
    ctx = Ctx()
    lib.SHA256_Init(ctypes.byref(ctx))
    for i in range(8):
        ctx.h[i] = h[i]
    lib.SHA256_Update(ctypes.byref(ctx), data, len(data))
    if ctx.num != 0:
        return False
    h[:] = list(ctx.h)
    return True


class ResumableSHA256:
    """``update`` / ``hexdigest`` like hashlib, plus ``state()`` / ``from_state()``."""

    __slots__ = ("_h", "_length", "_buffer")

    def __init__(self, data: bytes = b""):
        self._h = list(_H0)
        self._length = 0  # bytes compressed (a multiple of 64)
        self._buffer = b""
        if data:
            self.update(data)

    def update(self, data: bytes) -> None:
        buffer = self._buffer + bytes(data)
        whole = len(buffer) - len(buffer) % 64
        if whole >= _BULK and _bulk_compress(self._h, buffer[:whole]):
            pass
        else:
            for i in range(0, whole, 64):
                _compress(self._h, buffer[i : i + 64])
        self._length += whole
        self._buffer = buffer[whole:]

    @property
    def size(self) -> int:
        return self._length + len(self._buffer)

    def digest(self) -> bytes:
        h = list(self._h)
        total = self.size
        tail = self._buffer + b"\x80" + b"\x00" * ((55 - len(self._buffer)) % 64) + struct.pack(">Q", total * 8)
        for i in range(0, len(tail), 64):
            _compress(h, tail[i : i + 64])
        return struct.pack(">8L", *h)

    def hexdigest(self) -> str:
        return self.digest().hex()

    def state(self) -> dict:
        """The resumable state: {"h": 64 hex (8 big-endian words), "n": bytes compressed, "tail": hex of the rest (< 64 bytes)}."""
        return {"h": struct.pack(">8L", *self._h).hex(), "n": self._length, "tail": self._buffer.hex()}

    @classmethod
    def from_state(cls, state: dict) -> "ResumableSHA256":
        try:
            h = struct.unpack(">8L", bytes.fromhex(state["h"]))
            n, tail = int(state["n"]), bytes.fromhex(state["tail"])
        except (KeyError, TypeError, ValueError, struct.error):
            raise ValueError("not a SHA-256 state") from None
        if n < 0 or n % 64 or len(tail) >= 64:
            raise ValueError("not a SHA-256 state")
        obj = cls()
        obj._h, obj._length, obj._buffer = list(h), n, tail
        return obj
