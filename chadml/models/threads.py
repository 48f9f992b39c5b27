"""How many CPU threads torch's operators use in this process: at most the CPUs it may run on.

torch starts one intra-op thread per CPU of the machine. In a container limited by a CPU set or a CPU
quota that is more threads than CPUs, and every operator then waits for its slowest thread: on a shared
machine an oversubscribed pool is much more than proportionally slower (bench/README.md, fingerprint).
:func:`cap_threads` lowers torch's count to :func:`available_cpus` (never raises it, so a count chosen by
the caller, e.g. ``chad serve``'s workers, stays), or sets it to the environment variable ``CHAD_THREADS``
when that is given. :class:`chadml.models.Fingerprinter` calls it once per process.

Example
-------
>>> available_cpus() >= 1
True
>>> threads_from_env({"CHAD_THREADS": "3"}), threads_from_env({})
(3, None)
"""
from __future__ import annotations

import math
import os
from typing import Mapping

import torch

from ..errors import UsageError

__all__ = ["THREADS_ENV", "available_cpus", "threads_from_env", "cap_threads"]

#: the environment variable that sets torch's intra-op thread count for chad (an int >= 1)
THREADS_ENV = "CHAD_THREADS"

_CAPPED = False


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup CPU quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), None without one."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """The CPUs this process may use: its CPU affinity set, capped by a cgroup CPU quota (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def threads_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    """The thread count ``CHAD_THREADS`` asks for (None when unset or empty); a bad value is a UsageError."""
    raw = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(f"{THREADS_ENV} must be an integer >= 1, got {raw!r}")
    return n


def cap_threads(*, force: bool = False) -> int:
    """Set torch's intra-op threads for this process once, and return the count in use.

    ``CHAD_THREADS`` when set; otherwise torch's count lowered to :func:`available_cpus` when it is
    above (never raised). Later calls change nothing unless ``force``.
    """
    global _CAPPED
    if _CAPPED and not force:
        return torch.get_num_threads()
    want = threads_from_env()
    if want is None:
        want = min(torch.get_num_threads(), available_cpus())
    if want != torch.get_num_threads():
        torch.set_num_threads(want)
    _CAPPED = True
    return torch.get_num_threads()
