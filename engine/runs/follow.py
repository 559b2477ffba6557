"""Following runs through the store: what ``dllab attach`` and History show of a live comparison.

The runs service's workers write every event to the store as it happens, so a client follows a
comparison by reading it: :class:`StoreFollower` is runner-shaped (``start``, ``poll``, ``cancel``,
``close``, ``finished``), the same shape as the Runner the app drains, so a followed comparison is
drawn by the same code as one the app runs itself. Its first poll returns everything stored so far
(the curves up to now); later polls read only the rows the workers wrote since (the store's row
numbers mark where each read stopped), so a long run costs no more to follow than a short one. Any number of clients may
follow one comparison: each only reads. ``cancel`` asks the service (when one runs the
comparison); ``close`` only stops following: the runs go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.events import Event


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
        self._marks: dict[str, dict[str, int]] = {}
        """Per run, the last row number read from each series table."""
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
        """Each open run's new rows: its row first (has it started, has it ended), then the series
        rows added since the last read (every event is stored before the run's end is)."""
        out: list[Event] = []
        for run_id in self.run_ids:
            if run_id in self._ended:
                continue
            try:
                row = self.store.get_run(run_id)
            except KeyError:  # not registered yet
                continue
            if row.started is not None and run_id not in self._sent_start:
                out.append(self.store.started_event(row))
                self._sent_start.add(run_id)
            series = self.store.series(run_id, after=self._marks.get(run_id))
            self._marks[run_id] = series.marks
            out.extend(series.in_time_order())
            if row.is_final:
                out.append(self.store.finished_event(row))
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
