"""ivr/signal_stop.py: a stop flag set from a signal handler never deadlocks, even with
signals arriving while the main thread waits on it or while a handler is already setting it."""

from __future__ import annotations

import os
import signal
import threading
import time

from ivr.signal_stop import SignalStop


def test_wait_returns_at_once_when_set_and_after_the_timeout_when_not() -> None:
    stop = SignalStop()
    try:
        t0 = time.monotonic()
        assert stop.wait(0.05) is False
        assert time.monotonic() - t0 >= 0.05
        stop.set()
        stop.set()  # again: harmless
        assert stop.is_set() and stop.wait(10) is True and stop.wait() is True
    finally:
        stop.close()


def test_signals_flooding_a_waiting_main_thread_set_it_without_a_deadlock() -> None:
    stop = SignalStop()
    old = signal.signal(signal.SIGUSR1, lambda *_: stop.set())
    sent = threading.Event()

    def flood() -> None:
        for _ in range(2000):
            os.kill(os.getpid(), signal.SIGUSR1)
        sent.set()

    try:
        sender = threading.Thread(target=flood)
        sender.start()
        while not sent.is_set():  # the handler runs in here, inside wait(), over and over
            stop.wait(0.001)
        sender.join(10)
        assert stop.wait(10) is True
    finally:
        signal.signal(signal.SIGUSR1, old)
        stop.close()
