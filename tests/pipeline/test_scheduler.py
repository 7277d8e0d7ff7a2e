"""Snakemake's leftover rate-limiter timers are cancelled when a run ends."""

from __future__ import annotations

import threading

from kan.pipeline.scheduler import cancel_pending_timers


def test_pending_timers_are_cancelled_without_firing():
    fired = []
    timers = [threading.Timer(600, fired.append, args=(i,)) for i in range(3)]
    for timer in timers:
        timer.start()
    assert cancel_pending_timers() >= 3
    for timer in timers:
        timer.join(timeout=10)
        assert not timer.is_alive()
    assert fired == []


def test_other_threads_are_left_alone():
    release = threading.Event()
    worker = threading.Thread(target=release.wait, args=(60,))
    worker.start()
    try:
        cancel_pending_timers()
        assert worker.is_alive()
    finally:
        release.set()
        worker.join(timeout=10)
