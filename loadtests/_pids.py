"""Process ids that are safe to signal: start time, command line, session.

A process id alone is not an identity: once the process exits, the kernel may
give the id to an unrelated process. A process is recorded here with its start
time (from ``/proc/<pid>/stat``) and command line, and is only considered the
same process while both still match. Linux only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def identity(pid: int) -> dict[str, Any]:
    """Return what tells this process apart from a later one with its id.

    Returns:
        ``{"pid", "start_time", "cmdline"}``, JSON-serializable.
    """
    return {"pid": pid, "start_time": _start_time(pid), "cmdline": _cmdline(pid)}


def matches(entry: dict[str, Any]) -> bool:
    """Return whether the process recorded in ``entry`` still runs.

    A recycled id (another start time or command line) does not match.
    """
    pid = entry.get("pid")
    if not isinstance(pid, int) or pid <= 1:
        return False
    start_time = _start_time(pid)
    return (
        start_time is not None
        and start_time == entry.get("start_time")
        and _cmdline(pid) == entry.get("cmdline")
    )


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of ``/proc/<pid>/stat`` from the state onwards."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last one.
    return text[text.rfind(")") + 2 :].split()


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z":
        return None
    return int(fields[19])


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None


def signal_pid(pid: int, signum: int) -> None:
    """Send a signal, ignoring a process that is gone or not ours to signal."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def wait_gone(entries: list[dict[str, Any]], timeout: float) -> None:
    """Wait until none of the recorded processes runs, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(matches(entry) for entry in entries):
        time.sleep(0.05)


def _session_members(session: int) -> Iterator[int]:
    for path in Path("/proc").iterdir():
        if not path.name.isdigit():
            continue
        fields = _stat_fields(int(path.name))
        if fields is not None and fields[0] != "Z" and int(fields[3]) == session:
            yield int(path.name)


def kill_session_leftovers(leader: int) -> None:
    """Kill what is left in the session a part was started in (its workers).

    Each part runs in its own session, whose id is the part's process id; the
    kernel does not reuse that id while any member of the session lives, so
    the members found here, once the leader is gone, are the part's own
    children.
    """
    members = list(_session_members(leader))
    if leader in members:
        # The leader runs: either it is still ours and stopped by its id, or
        # the id was recycled for someone else's session. Leave it alone.
        return
    for pid in members:
        logger.warning("killing pid %d, left behind in the session of %d", pid, leader)
        signal_pid(pid, signal.SIGKILL)
