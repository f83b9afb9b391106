"""What a process and its children cost, read from /proc: CPU seconds (utime + stime, the
children's included) and memory (VmRSS, VmHWM). Linux only, like the rest of the benchmarks."""

from __future__ import annotations

import os
import resource
from pathlib import Path

__all__ = [
    "cpu_seconds",
    "descendants",
    "machine_busy_seconds",
    "self_cpu_seconds",
    "status_kib",
    "tree_rss_kib",
]

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name is in parentheses and may hold spaces: the fields start after the last ')'
    return text[text.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (workers, helpers), found by their parent ids."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and of its live descendants, plus what its reaped children used
    (cutime + cstime), in seconds."""
    total = 0
    for each in (pid, *descendants(pid)):
        fields = _stat_fields(each)
        if fields is not None:
            # after the ')' field 0 is state: utime, stime, cutime, cstime are fields 11..14
            total += sum(int(value) for value in fields[11:15])
    return total / _TICK


def status_kib(pid: int, field: str) -> int:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM, RssAnon, ...), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"/proc/{pid}/status has no {field}")


def tree_rss_kib(pid: int) -> int:
    """VmRSS of `pid` and its live descendants added up (shared pages counted in each)."""
    total = 0
    for each in (pid, *descendants(pid)):
        try:
            total += status_kib(each, "VmRSS")
        except (FileNotFoundError, ProcessLookupError, LookupError):
            continue
    return total


def self_cpu_seconds() -> float:
    """CPU seconds this process has used (user + system, all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have spent busy (not idle, not waiting for I/O)
    since boot, from /proc/stat: with the shares of the processes measured, what is left is
    everyone else's load on this shared machine."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK
