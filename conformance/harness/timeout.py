"""A time limit for code that calls the implementation under test (SIGALRM).

A hanging implementation must not hang the gate: each conformance test runs under a limit
(`--conformance-timeout`), and so does each start-up probe of a claim. The alarm raises
`ImplementationHang`, a BaseException so that hypothesis does not run the example again (it
would hang again, with no alarm left). An alarm that another plugin (pytest-timeout, say)
had set is restored with the time it has left.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class ImplementationHang(BaseException):  # noqa: N818 (what happened, not an error class)
    """Code calling the implementation ran past its time limit."""


def available() -> bool:
    """Whether a time limit can be set here (SIGALRM exists and this is the main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def limit(seconds: float, message: str) -> Iterator[None]:
    """Raise `ImplementationHang(message)` in the body if it runs more than `seconds` (no limit
    for 0 or where `available()` is false)."""
    if not seconds or not available():
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise ImplementationHang(message)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:
            left = max(outer_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)
