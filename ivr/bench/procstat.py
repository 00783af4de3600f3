"""CPU time and memory of the processes under test, read from /proc; the machine's description.

CPU is the processes' own user + system time (`/proc/<pid>/stat` fields 14 and 15), so the load
generator and everything else on a shared machine are left out. A process is counted with its
descendants (the controller's summary worker), minus the subtrees named in `exclude` (the
controller starts Asterisk, which is measured on its own).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class ProcSample:
    """One look at a process tree: CPU seconds so far per pid, resident memory now."""

    cpu: dict[int, float]
    rss_kb: int

    def cpu_since(self, before: ProcSample) -> float:
        """CPU seconds spent between `before` and this sample (processes new since count all)."""
        return sum(t - before.cpu.get(pid, 0.0) for pid, t in self.cpu.items())


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(ppid, cpu seconds, rss kB) of one process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its end.
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss_kb = int(fields[21]) * PAGE_KB
    return ppid, cpu, rss_kb


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                kids.setdefault(st[0], []).append(int(entry.name))
    return kids


def tree(root: int, exclude: frozenset[int] = frozenset()) -> list[int]:
    """`root` and its descendants, without the subtrees rooted at `exclude`."""
    kids = _children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in exclude:
            continue
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def sample(root: int, exclude: frozenset[int] = frozenset()) -> ProcSample:
    cpu: dict[int, float] = {}
    rss = 0
    for pid in tree(root, exclude):
        st = _stat(pid)
        if st is not None:
            cpu[pid] = st[1]
            rss += st[2]
    return ProcSample(cpu, rss)


def open_files(root: int, exclude: frozenset[int] = frozenset()) -> int:
    """File descriptors open in `root`'s tree (sockets included)."""
    total = 0
    for pid in tree(root, exclude):
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


def machine() -> str:
    """One line: CPU model, cores, memory, kernel."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    cores = os.cpu_count() or 0
    return f"{model}, {cores} cores, {mem_gb:.1f} GiB RAM, Linux {platform.release()}"
