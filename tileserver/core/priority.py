"""Background work at a lower priority than the requests, on Linux's autogroups too."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def lower_priority(nice: int, pid: int = 0) -> None:
    """Run process `pid` (0: this one) at niceness `nice`, also against other sessions when it leads its own.

    Linux groups the processes of each session (autogroup, on by default): a niced process only
    yields to its own session, and a warm-up started in a session of its own by a server took as
    much processor as the server itself. The session's niceness is set too, but only for a session
    leader, so that `ecarto warm --nice` typed in a terminal leaves the terminal alone. Both
    niceness values are absolute: setting them twice is setting them once.
    """
    if nice <= 0:
        return
    os.setpriority(os.PRIO_PROCESS, pid, nice)
    target = pid or os.getpid()
    if os.getsid(target) == target:
        with contextlib.suppress(OSError):  # no autogroup in this kernel, or the process has ended
            Path(f"/proc/{target}/autogroup").write_text(str(nice))
