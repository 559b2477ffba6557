"""Following runs through the store: what ``dllab attach`` and History show of a live comparison.

The runs service's workers write every event to the store as it happens, so a client follows a
comparison by reading it: :class:`StoreFollower` is runner-shaped (``start``, ``poll``, ``cancel``,
``close``, ``finished``), the same shape as the Runner the app drains, so a followed comparison is
drawn by the same code as one the app runs itself. Its first poll returns everything stored so far
(the curves up to now); later polls return what the workers wrote since. Any number of clients may
follow one comparison: each only reads. ``cancel`` asks the service (when one runs the
comparison); ``close`` only stops following: the runs go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.events import Event, RunFinished, RunStarted


class StoreFollower:
    """A stored comparison (or some of its runs), followed until every run has ended."""

    detached = True
    """Its runs belong to whoever trains them, not to the process that follows them."""

    def __init__(self, store: Any, run_ids: Sequence[str], cancel: Callable[[str | None], Any] | None = None,
                 *, idle_s: float = 0.25) -> None:
        self.store = store
        self.run_ids = list(run_ids)
        self._cancel = cancel
        self.idle_s = idle_s
        self._sent_start: set[str] = set()
        self._sent_body: dict[str, int] = {}
        self._ended: set[str] = set()
        self._closed = False

    def start(self) -> None:
        pass

    def poll(self, timeout: float = 0.1) -> list[Event]:
        """What the store holds that this follower has not returned yet; when nothing is new, it
        waits up to `timeout` first (a poll is a read of each open run's series)."""
        if self._closed:
            return []
        events = self._read()
        if not events and not self.finished and timeout > 0:
            time.sleep(min(timeout, self.idle_s))
            events = self._read()
        return events

    def _read(self) -> list[Event]:
        out: list[Event] = []
        for run_id in self.run_ids:
            if run_id in self._ended:
                continue
            stored = self.store.events(run_id)
            start = [e for e in stored if isinstance(e, RunStarted)]
            end = [e for e in stored if isinstance(e, RunFinished)]
            body = [e for e in stored if not isinstance(e, RunStarted | RunFinished)]
            if start and run_id not in self._sent_start:
                out.append(start[0])
                self._sent_start.add(run_id)
            seen = self._sent_body.get(run_id, 0)
            out.extend(body[seen:])  # events come in emission order, each run's new ones last
            self._sent_body[run_id] = len(body)
            if end:
                out.append(end[0])
                self._ended.add(run_id)
        return out

    def cancel(self, run_id: str | None = None) -> None:
        """Cancel one run or all of them, through whoever runs them (nothing when nobody can)."""
        if self._cancel is not None:
            self._cancel(run_id)

    def close(self, timeout: float = 5.0) -> None:
        """Stop following; the runs themselves go on."""
        self._closed = True

    @property
    def finished(self) -> bool:
        return len(self._ended) == len(self.run_ids)
