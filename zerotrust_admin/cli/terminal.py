"""Where prompts go: the controlling terminal (``/dev/tty``), as gpg, ssh and
sudo do, so that ``printf x | zerotrust-admin vault put p/two`` on a
passphrase vault still asks for the passphrase while the value comes from
stdin. No Typer here: the ``vault get`` fast path prompts too."""

from __future__ import annotations

import os
from contextlib import contextmanager

TTY = "/dev/tty"


def controlling_terminal() -> bool:
    """True when this process has a controlling terminal to ask on (whatever
    stdin is). ``getpass`` then reads from it, not from stdin."""
    try:
        fd = os.open(TTY, os.O_RDWR | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal (cron, CI, a daemon)
        return False
    os.close(fd)
    return True


ABANDONED = False  # a prompt was answered with Ctrl-C or Ctrl-D (before anything was changed)


@contextmanager
def prompting():
    """Around a prompt: Ctrl-C or Ctrl-D there abandons the command before it
    changed anything, which the entry point reports as one line."""
    global ABANDONED
    try:
        yield
    except (KeyboardInterrupt, EOFError):
        ABANDONED = True
        raise


def ask_hidden(prompt: str) -> str:
    """A hidden answer read from the controlling terminal (never from stdin:
    stdin may carry the data being stored)."""
    import getpass
    import warnings

    with warnings.catch_warnings(), prompting():
        warnings.simplefilter("error", getpass.GetPassWarning)  # never fall back to echoing on stdin
        return getpass.getpass(prompt)
