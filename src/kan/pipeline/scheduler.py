"""What the workflow does about Snakemake's scheduler from its Snakefile (docs/performance.md)."""

from __future__ import annotations

import threading


def cancel_pending_timers() -> int:
    """Cancel every pending ``threading.Timer`` of this process and return how many there were.

    Snakemake's job rate limiter starts a timer thread on every scheduler pass, and the interpreter
    waits for those at exit: with the workflow profile's long window that would hold a finished run
    open for up to a window. The Snakefile calls this once the run has succeeded or failed."""
    timers = [thread for thread in threading.enumerate() if isinstance(thread, threading.Timer) and thread.is_alive()]
    for timer in timers:
        timer.cancel()
    return len(timers)
