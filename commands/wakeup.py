"""A one-shot wake-up from one thread to another, for the group commit and the group load.

`threading.Event` waits on a Python `Condition` (a waiters list and a second lock per wait, and
`notify_all` walking that list in Python): under load, a few per cent of a worker's CPU went to it
(issue 15). Here a lock is taken when the wake-up is made and released by `set`: waiting and waking
both stay in C. One thread waits, once; `set` may be called again (it does nothing then), always
from one thread at a time (the group's current leader)."""

from __future__ import annotations

import threading


class Wakeup:
    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def wait(self) -> None:
        self._lock.acquire()
