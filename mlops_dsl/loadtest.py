"""An open-loop load test: requests start on a fixed schedule, R per second, whatever the answers do.

A closed loop (send, wait, send) slows down with the server and so measures a lighter load than
asked, hiding a queue behind "coordinated omission". Here request i is due at `start + i / R`; a
pool of workers sends each one when due, and its latency counts from when it was due, not from when
a worker got to it, so a saturated server shows as growing latency and a falling achieved rate.

Bounded by construction: at most `min(R * duration, max_requests)` requests, and the run stops
`duration + grace` seconds after it began, abandoning what is still queued (counted as errors).
`run` takes the sender as a function, so the schedule and the statistics are tested without a network.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

MAX_DURATION_S = 600.0
MAX_RPS = 1000.0
MAX_WORKERS = 64


@dataclass
class Report:
    planned: int
    sent: int
    errors: int
    elapsed: float
    latencies_ms: list[float] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)

    @property
    def achieved_rps(self) -> float:
        return (self.sent / self.elapsed) if self.elapsed > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.planned if self.planned else 0.0

    def percentile(self, q: float) -> float | None:
        """The nearest-rank percentile of the successful requests' latencies, in ms."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    def lines(self) -> list[str]:
        p50, p99 = self.percentile(50), self.percentile(99)
        shown = [f"{p:.1f} ms" if p is not None else "-" for p in (p50, p99)]
        out = [f"requests: {self.sent} of {self.planned} sent in {self.elapsed:.2f} s "
               f"({self.achieved_rps:.1f}/s achieved)",
               f"latency: p50 {shown[0]}, p99 {shown[1]}",
               f"errors: {self.errors} ({100 * self.error_rate:.2f}%)"]
        out += [f"  {e}" for e in self.first_errors]
        return out

    def breaches(self, max_p99_ms: float | None, max_error_rate: float | None) -> list[str]:
        """The limits this run is over (empty when within them)."""
        found = []
        p99 = self.percentile(99)
        if max_p99_ms is not None and (p99 is None or p99 > max_p99_ms):
            found.append(f"p99 latency {'-' if p99 is None else f'{p99:.1f} ms'} is over --max-p99-ms {max_p99_ms:g}")
        if max_error_rate is not None and self.error_rate > max_error_rate:
            found.append(f"error rate {self.error_rate:.4f} is over --max-error-rate {max_error_rate:g}")
        return found


def planned(rps: float, duration: float, max_requests: int | None) -> int:
    count = math.floor(rps * duration)
    return min(count, max_requests) if max_requests is not None else count


def run(send: Callable[[], None], rps: float, duration: float, max_requests: int | None = None,
        grace: float = 5.0, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep) -> Report:
    """Call `send` (which raises on a failed request) R times a second for `duration` seconds."""
    total = planned(rps, duration, max_requests)
    lock = threading.Lock()
    report = Report(planned=total, sent=0, errors=0, elapsed=0.0)
    start = clock()
    deadline = start + duration + grace

    def one(due: float) -> None:
        if clock() > deadline:
            with lock:
                report.errors += 1
                if len(report.first_errors) < 3:
                    report.first_errors.append("not sent: past the run's deadline (the sender fell behind)")
            return
        try:
            send()
        except Exception as exc:  # every failure of one request is the result being measured
            with lock:
                report.sent += 1
                report.errors += 1
                if len(report.first_errors) < 3:
                    report.first_errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
            return
        latency = (clock() - due) * 1000.0
        with lock:
            report.sent += 1
            report.latencies_ms.append(latency)

    workers = max(1, min(MAX_WORKERS, math.ceil(rps)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loadtest") as pool:
        for i in range(total):
            due = start + i / rps
            wait = due - clock()
            if wait > 0:
                sleep(wait)
            pool.submit(one, due)
    report.elapsed = max(clock() - start, 1e-9)
    return report


__all__ = ["MAX_DURATION_S", "MAX_RPS", "Report", "planned", "run"]
