"""Memory protection: Secret buffers are mlocked and wiped; an mlock refused by
RLIMIT_MEMLOCK still works and warns exactly once; SealedSecret keeps only
ciphertext; the CLI process is non-dumpable with core dumps off."""

from __future__ import annotations

import ctypes
import os
import pickle
import resource
import subprocess
import sys

import pytest

from tests.conftest import backend_missing

from tests.conftest import ROOT
from zerotrust_admin.secret import Secret, SealedSecret, memory_lock_status

CAP_IPC_LOCK = 14
PR_CAPBSET_DROP = 24


def _locked_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    return -1


def test_secret_is_locked_and_wiped_in_place():
    before = _locked_kib()
    s = Secret(os.urandom(3 * 4096))  # spans several pages
    if memory_lock_status()["failure"]:
        backend_missing(f"mlock unavailable here: {memory_lock_status()['failure']}")
    assert _locked_kib() >= before + 8
    buf = s._buf
    address = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
    s.wipe()
    assert bytes(buf) == bytes(len(buf))  # zeroed ...
    assert ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf)) == address  # ... in place, not reallocated
    assert _locked_kib() <= before + 4
    with pytest.raises(ValueError):
        s.reveal()


def test_pages_shared_by_two_secrets_stay_locked_until_both_are_wiped():
    from zerotrust_admin.secret import _memlock

    a, b = Secret(b"a" * 16), Secret(b"b" * 16)
    if memory_lock_status()["failure"]:
        backend_missing("mlock unavailable here")
    b_pages = set(_memlock._range(b._buf)[1])
    a.wipe()
    assert b_pages <= set(_memlock._pages)  # b's pages (maybe shared with a) are still locked
    b.wipe()


def _no_memlock():
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    if os.geteuid() == 0:  # root ignores RLIMIT_MEMLOCK unless CAP_IPC_LOCK is gone after exec
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")


def test_mlock_refused_still_works_and_warns_once(zt_env, initialized):
    env = dict(zt_env)

    def run(*args, input=b""):
        return subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], input=input, capture_output=True,
                              env=env, cwd=str(ROOT), preexec_fn=_no_memlock, timeout=60)

    put = run("vault", "put", "mem/x", input=b"value-under-no-mlock")
    assert put.returncode == 0, put.stderr
    got = run("vault", "get", "mem/x")
    assert got.returncode == 0 and got.stdout == b"value-under-no-mlock"
    for proc in (put, got):
        err = proc.stderr.decode()
        assert err.count("cannot lock secret memory") == 1, err
        assert "RLIMIT_MEMLOCK 0 bytes" in err


def test_sealed_secret_holds_only_ciphertext():
    value = b"long-lived-credential-" + os.urandom(8)
    sealed = SealedSecret(value)
    assert value not in sealed._blob and len(sealed) == len(value)
    assert sealed.reveal() == value
    with sealed.open() as opened:
        assert opened.reveal() == value
    assert "redacted" in repr(sealed) and value.decode(errors="ignore") not in repr(sealed)
    with pytest.raises(TypeError):
        pickle.dumps(sealed)
    other = SealedSecret(value)
    assert other._blob != sealed._blob  # fresh nonce each time
    sealed.wipe()
    with pytest.raises(ValueError):
        sealed.reveal()


def test_cli_process_is_not_dumpable(zt_env):
    code = ("import ctypes, resource; from zerotrust_admin.cli.entry import harden_process; harden_process(); "
            "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), timeout=30)
    assert out.stdout.split()[0] == "0" and "(0, 0)" in out.stdout
