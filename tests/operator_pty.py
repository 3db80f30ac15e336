"""Run the CLI on a real pseudo-terminal (issue 14): the pty is the child's
controlling terminal (setsid + TIOCSCTTY, so /dev/tty is the pty), its window
has the width asked for, and prompts are answered as they appear."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass
class PtyResult:
    code: int
    screen: str  # everything written to the terminal, ANSI stripped, \r\n -> \n
    stdout: bytes  # when stdout was a pipe (stdout_pipe=True)


def run_in_pty(args, env: dict, *, cols: int = 80, rows: int = 40, stdin_data: bytes | None = None,
               answers=(), stdout_pipe: bool = False, timeout: float = 60) -> PtyResult:
    """``answers``: (text on the screen, bytes to type) pairs, in order.
    ``stdin_data``: stdin is then a pipe carrying it (``printf x | cmd``), not the terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**env, "COLUMNS": str(cols), "LINES": str(rows), "TERM": "xterm-256color"}

    def controlling_tty():
        fcntl.ioctl(2, termios.TIOCSCTTY, 0)  # after setsid: the pty (fd 2) becomes /dev/tty

    proc = subprocess.Popen([sys.executable, "-m", "zerotrust_admin", *args], stdin=subprocess.PIPE if stdin_data is not None else slave,
                            stdout=subprocess.PIPE if stdout_pipe else slave, stderr=slave, env=env,
                            start_new_session=True, preexec_fn=controlling_tty, close_fds=True)
    os.close(slave)
    if stdin_data is not None:
        proc.stdin.write(stdin_data)
        proc.stdin.close()
    out = b""
    pending = list(answers)
    mark = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the pty
                    break
                if not chunk:
                    break
                out += chunk
            if pending and pending[0][0] in ANSI.sub("", out[mark:].decode("utf-8", "replace")):
                time.sleep(0.05)
                os.write(master, pending.pop(0)[1])
                mark = len(out)  # a later identical prompt is looked for after this one
            if not ready and proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(f"timed out; screen so far:\n{ANSI.sub('', out.decode('utf-8', 'replace'))}")
    finally:
        os.close(master)
    stdout = proc.stdout.read() if stdout_pipe else b""
    code = proc.wait(timeout=10)
    screen = ANSI.sub("", out.decode("utf-8", "replace")).replace("\r\n", "\n").replace("\r", "")
    return PtyResult(code, screen, stdout)
