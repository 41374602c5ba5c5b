"""One heavy run at a time per process, with a queue count and a stop flag (torch-free)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from live_demo.errors import BusyError


class HeavyRunGate:
    """A process-wide gate: `with gate.run(label):` waits its turn; `gate.stop()` asks the current run to stop.

    The stop flag is a threading.Event that decoding loops check between steps.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._state = threading.Lock()
        self.stop_event = threading.Event()
        self.current: str | None = None
        self.waiting = 0

    def status(self) -> dict:
        with self._state:
            return {"running": self.current, "waiting": self.waiting}

    def is_busy(self) -> bool:
        return self._lock.locked()

    def stop(self) -> None:
        self.stop_event.set()

    @contextlib.contextmanager
    def run(self, label: str, wait_s: float = 600.0, on_queued=None):
        """Hold the gate for one heavy run. Calls on_queued(status) once if another run is in progress."""
        with self._state:
            self.waiting += 1
        try:
            if self._lock.locked() and on_queued is not None:
                on_queued(self.status())
            if not self._lock.acquire(timeout=wait_s):
                raise BusyError(f"Another heavy run ({self.current}) is still going after {wait_s:.0f} s; "
                                "try again later.")
        finally:
            with self._state:
                self.waiting -= 1
        with self._state:
            self.current = label
        self.stop_event.clear()
        try:
            yield self.stop_event
        finally:
            with self._state:
                self.current = None
            self._lock.release()


GATE = HeavyRunGate()


@contextlib.contextmanager
def background_priority(niceness: int = 10):
    """Lower the OS priority of the calling thread while a heavy run executes (Linux; elsewhere a no-op).

    Page requests of other users are served by other threads of the same process; with the run's thread niced,
    the kernel gives them the CPU first when both want it. Raising the priority back needs privileges a normal
    user lacks, so it is tried and otherwise left lowered: Streamlit starts a new thread for every script run.
    """
    if not sys.platform.startswith("linux"):  # elsewhere a thread id passed to setpriority could name a process
        yield
        return
    tid = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, tid)
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, min(19, before + niceness))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, before)
