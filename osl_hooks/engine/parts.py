"""How a transfer of many files is cut into parts that run at once: how many, and where to cut.

Shared by the rsyncs of `sync.copy_files` (and a first copy's two halves) and the threads of
`filecopy.copy_paths`, and apart from both: an update that copies in its own process does not import the rsync
driver for it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

TRANSFER_PROCESSES = 2  # transfers run at once, at most: rsyncs (`copy_files`, first copies) or threads (`filecopy`)
MIN_PATHS_PER_PROCESS = 64  # a shorter list is not worth a second rsync process
PER_FILE_COST = 16 * 1024  # bytes' worth of work per file (create, rename, set times), for balancing the rsyncs


def transfer_processes(paths: int) -> int:
    """How many rsyncs an update of `paths` files runs at once: one per CPU this process may use, at most
    `TRANSFER_PROCESSES` (measured on 2 cores; more rsyncs than that contend for the disk), and one for a list
    too short to be worth a second process (`MIN_PATHS_PER_PROCESS`)."""
    return max(1, min(TRANSFER_PROCESSES, available_cpus(), paths // MIN_PATHS_PER_PROCESS))


def available_cpus() -> int:
    """The CPUs this process may use: its affinity, and a container's CPU limit (cgroup v2 `cpu.max`), which a
    pod's `resources.limits.cpu` sets while the affinity still shows every CPU of the node."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit visible: the affinity is the limit
    return cpus


def balanced_parts(paths: list[str], sizes: Sequence[int] | None, count: int) -> list[list[str]]:
    """`paths` cut into `count` consecutive runs of about equal cost (a file's bytes plus a fixed cost per
    file, `PER_FILE_COST`, for the work each file takes whatever its size). Consecutive: a run keeps whole
    directories together, so the transfers rarely share a parent to create. The one cut of every transfer that
    runs in parts: the rsyncs of `copy_files` and the threads of `filecopy.copy_paths`."""
    if count <= 1:
        return [paths]
    costs = [PER_FILE_COST + (sizes[i] if sizes is not None else 0) for i in range(len(paths))]
    share = sum(costs) / count
    parts: list[list[str]] = [[]]
    done = 0.0
    for path, cost in zip(paths, costs, strict=True):
        if done >= share * len(parts) and len(parts) < count:
            parts.append([])
        parts[-1].append(path)
        done += cost
    return [part for part in parts if part]
