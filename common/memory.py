"""The per-process memory budget.

supervisord's memmon restarts a process whose RSS passes its budget (the hard limit);
before that, `MemoryGuard.admit` refuses new expensive work above the soft limit with
RESOURCE_EXHAUSTED, so a burst of requests degrades into errors instead of a restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from common.errors import ResourceExhausted
from common.reasons import CommonReason

MIB = 1024 * 1024
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc (cheap: no syscall beyond one read)."""
    with open(f"/proc/{pid}/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


@dataclass(frozen=True)
class Footprint:
    """A process's memory three ways, in bytes. RSS counts every shared page in full in
    each process that maps it; PSS splits a shared page among the processes sharing it
    (the sum over processes is what the machine pays); USS is what only this process
    holds (what its exit would free)."""

    rss: int
    pss: int
    uss: int


def footprint(pid: int | str = "self") -> Footprint:
    """RSS, PSS and USS of a process from /proc/<pid>/smaps_rollup (Linux >= 4.14; the
    kernel walks the page tables: ~1 ms, for the bench and the soak, not a hot path)."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
        for line in rollup:
            key, _, rest = line.partition(b":")
            if rest.endswith(b"kB\n"):
                fields[key.decode()] = int(rest.split()[0]) * 1024
    return Footprint(
        rss=fields["Rss"],
        pss=fields["Pss"],
        uss=fields["Private_Clean"] + fields["Private_Dirty"],
    )


class MemoryGuard:
    def __init__(self, budget_mib: int, soft_limit_ratio: float) -> None:
        self.budget_bytes = budget_mib * MIB
        self.soft_limit_bytes = int(self.budget_bytes * soft_limit_ratio)

    def admit(self, work: str, extra_bytes: int = 0) -> None:
        """Refuses `work` (needing `extra_bytes` more) if it would pass the soft limit."""
        projected = rss_bytes() + extra_bytes
        if projected > self.soft_limit_bytes:
            raise ResourceExhausted(
                f"{work} refused: it would bring memory to {projected // MIB} MiB, over the "
                f"soft limit of {self.soft_limit_bytes // MIB} MiB; retry later or ask for less",
                reason=CommonReason.MEMORY_BUDGET,
                metadata={
                    "projected_mib": str(projected // MIB),
                    "soft_limit_mib": str(self.soft_limit_bytes // MIB),
                },
            )
