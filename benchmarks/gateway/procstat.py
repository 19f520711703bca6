"""What a process tree costs, from /proc (Linux): CPU seconds and resident memory.

A server is measured as its whole tree: the process we started and every live descendant,
plus the CPU time of descendants that already exited and were waited for (``cutime`` and
``cstime`` of the root).
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (after the command name, which may hold spaces)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """``root`` and its live descendants."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        if pid in parents or pid == root:
            found.append(pid)
            frontier += [child for child, parent in parents.items() if parent == pid]
    return found


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of the tree, reaped children included."""
    total = 0.0
    for pid in tree(root):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if pid == root:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / TICK


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(root: int) -> float:
    """Resident memory of the tree now (sum of VmRSS), MiB."""
    return sum(_status_kb(pid, "VmRSS") for pid in tree(root)) / 1024


def peak_rss_mb(root: int) -> float:
    """Peak resident memory of the tree (sum of each process's VmHWM), MiB."""
    return sum(_status_kb(pid, "VmHWM") for pid in tree(root)) / 1024
