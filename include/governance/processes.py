"""Local processes as a supervisor sees them: is a server answering, is a process group still
alive, stop a group (SIGTERM, then SIGKILL after a grace period). The embedded Airflow of
``make run`` and the production stack run as local processes both use these."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, IndexError):
        return False


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


def http_ok(url: str, timeout: float = 3) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def signal_group(pgid: int, sig: int) -> bool:
    """Signal a whole process group; False when it is gone already."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # the id now belongs to someone else's group: not ours to stop
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any live process is left in the group. A killed child whose new parent does not
    reap it stays a zombie that signal 0 still finds, so /proc is read where there is one."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return signal_group(pgid, 0)
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop_group(
    pgid: int, grace: float = 20, poll: float = 0.2, reap: Callable[[], object] = lambda: None
) -> None:
    """SIGTERM the group so that the scheduler can end its task processes, SIGKILL what is left
    after ``grace`` seconds. ``reap`` collects the leader once it exits when it is this
    process's child (a zombie leader would keep the group alive)."""
    if not signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        if not group_alive(pgid):
            return
        time.sleep(poll)
    signal_group(pgid, signal.SIGKILL)
