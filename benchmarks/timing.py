"""Timing side by side: both contenders run interleaved in one process, so load on the machine
hits them alike. Report medians, never a single run."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch


def time_once(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


def compare(
    ours: Callable[[], object],
    peer: Callable[[], object],
    repeats: int = 15,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Median seconds per call of ``ours`` and ``peer``, alternating calls; ratio = ours / peer.

    ``clock``: wall time by default; ``time.process_time`` counts this process's CPU time only
    (not its DataLoader workers'), which time-sharing with other jobs on a loaded machine
    barely moves. ``ours_times``/``peer_times`` hold every measurement (the spread)."""
    for _ in range(warmup):
        ours(), peer()
    t_ours, t_peer = [], []
    for i in range(repeats):
        # alternate the order so neither always runs on a warmer cache
        pair = ((ours, t_ours), (peer, t_peer)) if i % 2 == 0 else ((peer, t_peer), (ours, t_ours))
        for fn, sink in pair:
            sink.append(time_once(fn, clock))
    ours_s, peer_s = statistics.median(t_ours), statistics.median(t_peer)
    return {
        "ours_s": ours_s,
        "peer_s": peer_s,
        "ratio": ours_s / peer_s,
        "ours_times": t_ours,  # every repeat, for the spread
        "peer_times": t_peer,
    }


def spread(times: list[float]) -> list[float]:
    """The lower and upper quartiles of ``times`` (seconds): how much the repeats moved."""
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return [q[0], q[2]]


def machine() -> str:
    """One line naming the machine and torch build, for README tables."""
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )
