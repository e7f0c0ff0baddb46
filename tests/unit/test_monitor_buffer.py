"""The bounded row buffer: drop-oldest with a counter, and peek/commit across concurrent drops."""

from __future__ import annotations

import threading

import pytest

from gemmawatch.collectors.monitor.buffer import RowBuffer


def rows(*values: int) -> list[dict[str, int]]:
    return [{"v": v} for v in values]


def test_buffer_keeps_order_and_counts() -> None:
    buf = RowBuffer(10)
    assert buf.add("telemetry", rows(1, 2)) == 0
    assert buf.add("sample", rows(3)) == 0
    assert len(buf) == 3
    assert [(b.kind, b.row["v"]) for b in buf.peek(10)] == [("telemetry", 1), ("telemetry", 2), ("sample", 3)]
    assert buf.dropped == 0


def test_buffer_drops_oldest_beyond_the_bound() -> None:
    buf = RowBuffer(3)
    buf.add("telemetry", rows(1, 2))
    assert buf.add("telemetry", rows(3, 4, 5)) == 2
    assert [b.row["v"] for b in buf.peek(10)] == [3, 4, 5]
    assert buf.dropped == 2
    assert buf.add("telemetry", rows(6)) == 1
    assert buf.dropped == 3 and len(buf) == 3


def test_commit_removes_only_what_was_written() -> None:
    buf = RowBuffer(100)
    buf.add("telemetry", rows(*range(10)))
    batch = buf.peek(4)
    buf.add("telemetry", rows(10, 11))  # arrives while the batch is being written
    assert buf.commit(batch) == 4
    assert [b.row["v"] for b in buf.peek(100)] == [4, 5, 6, 7, 8, 9, 10, 11]


def test_rows_in_flight_are_not_dropped_the_oldest_behind_them_are() -> None:
    buf = RowBuffer(5)
    buf.add("telemetry", rows(0, 1, 2, 3, 4))
    batch = buf.peek(3)  # 0, 1, 2 being written...
    assert buf.add("telemetry", rows(5, 6)) == 2  # ...so 3 and 4 make room, not rows about to be stored
    assert buf.dropped == 2 and len(buf) == 5
    assert buf.commit(batch) == 3  # every row of the batch was stored and counts as written
    assert [b.row["v"] for b in buf.peek(10)] == [5, 6]


def test_a_released_batch_can_be_dropped_again() -> None:
    buf = RowBuffer(3)
    buf.add("telemetry", rows(0, 1, 2))
    buf.peek(3)  # the write fails...
    buf.release()
    buf.add("telemetry", rows(3))  # ...so the oldest row is dropped as usual
    assert buf.dropped == 1 and [b.row["v"] for b in buf.peek(10)] == [1, 2, 3]


def test_a_full_batch_in_flight_makes_new_rows_drop_in_their_turn() -> None:
    buf = RowBuffer(2)
    buf.add("telemetry", rows(0, 1))
    batch = buf.peek(2)
    buf.add("telemetry", rows(2, 3))  # nothing but in-flight rows to spare: the new ones go
    assert buf.dropped == 2 and len(buf) == 2
    assert buf.commit(batch) == 2 and len(buf) == 0


def test_failed_write_keeps_rows_and_discard_counts_them() -> None:
    buf = RowBuffer(10)
    buf.add("telemetry", rows(1, 2, 3))
    batch = buf.peek(2)
    assert len(buf) == 3  # peek removes nothing: a failed write loses nothing
    assert buf.discard(batch) == 2
    assert buf.dropped == 2 and [b.row["v"] for b in buf.peek(10)] == [3]


def test_concurrent_producers_never_exceed_the_bound() -> None:
    buf = RowBuffer(1000)

    def produce() -> None:
        for i in range(500):
            buf.add("telemetry", rows(i, i))

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(buf) == 1000
    assert buf.dropped == 4 * 500 * 2 - 1000
    seqs = [b.seq for b in buf.peek(1000)]
    assert seqs == sorted(seqs)


def test_buffer_rejects_zero_bound() -> None:
    with pytest.raises(ValueError):
        RowBuffer(0)
