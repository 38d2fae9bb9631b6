"""Child processes that do not outlive the process that started them."""
from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """In a child process, first thing: get ``signum`` when the parent dies, even by SIGKILL (Linux prctl;
    elsewhere nothing). Linux sends it when the parent's thread that started the child ends, and once per
    such thread, so a child must take a repeat calmly."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)
