"""A launched process that outlives its launcher ends itself.

`accelerate launch` runs torchrun, whose worker processes start in sessions of their own: when the launcher is
killed (SIGKILL, a lost kernel) they would go on training or scoring as orphans, and a rerun would then write into
the same checkpoint or share files beside them. `exit_with_parent` (called first thing by our launched entry points)
ends the process as soon as its parent is gone; `ending_with_parent` (Linux) makes the launcher itself end with the
kernel that started it.

May import: the standard library only.
"""

from __future__ import annotations

import os
import sys
import threading
import time


def exit_with_parent(poll_s: float = 1.0) -> None:
    """End this process (exit status 1) within `poll_s` of its parent ending: a daemon thread watches the parent id
    (an orphan is adopted by init or a subreaper, so the id changes). Work in progress is lost as by a kill: our
    files are written atomically or resumably, so nothing half-written is trusted later."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                print(f"[hacalib] process {os.getpid()}: its launcher (process {parent}) is gone; exiting",
                      file=sys.stderr, flush=True)
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# Run as `python -c`: ask for SIGTERM when the parent ends, check the parent did not end already, then become the
# command. Done in a fresh interpreter, not in `subprocess`'s preexec_fn: that runs between fork and exec of a
# threaded parent (a Jupyter kernel) and may deadlock there.
_EXEC_WITH_PARENT = ("import ctypes, os, signal, sys\n"
                     "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
                     "if os.getppid() != int(sys.argv[1]):\n"
                     "    sys.exit('the process that started this one has ended')\n"
                     "os.execv(sys.argv[2], sys.argv[2:])\n")


def ending_with_parent(cmd: list[str]) -> list[str]:
    """`cmd` wrapped so that, on Linux, it gets SIGTERM when this process ends (torchrun then stops its workers);
    elsewhere `cmd` itself (the workers' `exit_with_parent` still ends them once the launcher is gone)."""
    if not sys.platform.startswith("linux"):
        return list(cmd)
    return [sys.executable, "-c", _EXEC_WITH_PARENT, str(os.getpid()), *cmd]
