"""The in-memory row buffer between the jobs that produce rows and the writer.

Producers (probes, scrapes, telemetry) only ever append, which takes a lock for
microseconds: a slow or dead database never blocks them. The buffer is bounded;
past ``max_rows`` the *oldest* rows are dropped (recent data is worth more to a
monitor) and counted. The writer reads a batch with :meth:`RowBuffer.peek` and
removes it with :meth:`RowBuffer.commit` only once it is stored, so a failed
write loses nothing. The peeked batch is *in flight* until it is committed or
released: the drop-oldest policy skips it (a row that is being stored is not
lost, and counting it as dropped and then storing it would make both counters
wrong), taking the oldest rows behind it instead.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["BufferedRow", "RowBuffer", "RowKind"]

#: ``telemetry`` rows go to the telemetry table, ``sample`` rows to samples.
RowKind = Literal["telemetry", "sample"]


@dataclass(frozen=True, slots=True)
class BufferedRow:
    """One row waiting to be written."""

    seq: int
    kind: RowKind
    row: dict[str, Any]


class RowBuffer:
    """A thread-safe FIFO of rows with a bound and a drop-oldest policy."""

    def __init__(self, max_rows: int) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.max_rows = int(max_rows)
        self._rows: deque[BufferedRow] = deque()
        self._lock = threading.Lock()
        self._next_seq = 0
        self._in_flight = 0  # rows at the left end that a write is storing right now
        #: Rows dropped because the buffer was full (oldest first), since creation.
        self.dropped = 0

    def add(self, kind: RowKind, rows: Iterable[dict[str, Any]]) -> int:
        """Append ``rows``; returns how many of the oldest rows were dropped to make room."""
        with self._lock:
            for row in rows:
                self._rows.append(BufferedRow(self._next_seq, kind, row))
                self._next_seq += 1
            dropped = max(0, len(self._rows) - self.max_rows)
            for _ in range(dropped):
                # The oldest row that is not in flight (an in-flight batch is never more than max_rows).
                del self._rows[self._in_flight]
            self.dropped += dropped
            return dropped

    def peek(self, limit: int) -> list[BufferedRow]:
        """Up to ``limit`` of the oldest rows, left in the buffer and in flight until :meth:`commit`/:meth:`release`."""
        with self._lock:
            self._in_flight = min(limit, len(self._rows))
            return [self._rows[i] for i in range(self._in_flight)]

    def release(self) -> None:
        """The write of the peeked batch failed: its rows stay buffered and may be dropped again."""
        with self._lock:
            self._in_flight = 0

    def commit(self, batch: list[BufferedRow]) -> int:
        """Remove the rows of ``batch`` (the last :meth:`peek` result); returns how many."""
        if not batch:
            return 0
        last = batch[-1].seq
        removed = 0
        with self._lock:
            # In-flight rows are never dropped, so the batch is still the buffer's prefix.
            while self._rows and self._rows[0].seq <= last:
                self._rows.popleft()
                removed += 1
            self._in_flight = 0
        return removed

    def discard(self, batch: list[BufferedRow]) -> int:
        """Remove ``batch`` without storing it (rows the database rejects); counted as dropped."""
        removed = self.commit(batch)
        with self._lock:
            self.dropped += removed
        return removed

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)
