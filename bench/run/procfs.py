"""What /proc says: a process's resident set and CPU time, the whole machine's CPU time."""

import os
import time
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """The process's resident set size (VmRSS), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15


def system_busy_seconds() -> float:
    """CPU time spent by the whole machine (all cores, all processes), in seconds."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


@dataclass
class Snapshot:
    """CPU seconds used so far by the server, the endpoint(s), this runner and the machine."""

    at: float
    server: float
    watched: float  # the endpoint(s)
    runner: float
    system: float

    @classmethod
    def take(cls, server_pid: int, watched: list[int]) -> "Snapshot":
        return cls(
            at=time.perf_counter(),
            server=cpu_seconds(server_pid),
            watched=sum(cpu_seconds(pid) for pid in watched),
            runner=time.process_time(),
            system=system_busy_seconds(),
        )
