"""Sorted records searched in the bytes of the file that holds them: a manifest's entry lines, a links file's paths.

An update asks about the few hundred paths an image changed in files of tens of thousands of records: splitting
them into objects cost more than the whole search (a manifest's 33k lines: 7 of a 1% update's 12 ms of loading; a
links file's 149k paths as a set: 17 MB and 32 ms). So the file is read and checked (its CRC-32, in C) as one
bytes object, and searched in place: a bisection of a sample of the records (one every `SAMPLE_BYTES`, taken once
per file) leaves a few kilobytes, in which one substring search (or a few bisection steps) finds the record.
"""

from __future__ import annotations

import bisect


class SortedRecords:
    """The records in `data[start:]`, each followed by `end` (a byte no record holds), sorted as bytes."""

    SAMPLE_BYTES = 8192

    def __init__(self, data: bytes, end: bytes, start: int = 0):
        self.data, self.end, self.start = data, end, start
        self._samples: tuple[list[bytes], list[int]] | None = None  # see `_window`

    def find(self, key: bytes, whole: bool = False) -> int:
        """The offset of the record that starts with `key` (`whole`: that is `key`), or -1. Without `whole`, `key`
        must be a prefix no other record starts with (a manifest line's path, in JSON, and the comma after it)."""
        lo, hi = self._window(key)
        needle = key + self.end if whole else key
        if self.data.startswith(needle, hi):
            return hi
        found = self.data.find(self.end + needle, lo, hi)
        return found + 1 if found >= 0 else -1

    def record(self, offset: int) -> bytes:
        """The record at `offset` (a start of one), without its `end`."""
        stop = self.data.find(self.end, offset)
        return self.data[offset : stop if stop >= 0 else len(self.data)]

    def first_not_below(self, key: bytes) -> int:
        """The offset of the first record not below `key` (the end of the data if there is none): a bisection of
        the few kilobytes `_window` leaves, the record around the middle found by the `end` before it."""
        data, end = self.data, self.end
        lo, hi = self._window(key)
        while lo < hi:
            start = data.rfind(end, lo, (lo + hi) // 2) + 1 or lo
            stop = data.find(end, start)
            if data[start:stop] < key:
                lo = stop + 1
            else:
                hi = start
        return lo

    def _window(self, key: bytes) -> tuple[int, int]:
        """Offsets where records start (or the end), `lo` and `hi`, such that every record before `lo` is below
        `key` and the first record not below it is at `hi` at the latest (`hi` is a sample's, or the end)."""
        if self._samples is None:
            data, records, starts = self.data, [], []
            at = self.start
            while at < len(data):
                stop = data.find(self.end, at)
                starts.append(at)
                records.append(data[at : stop if stop >= 0 else len(data)])
                at = data.find(self.end, at + self.SAMPLE_BYTES) + 1 or len(data)
            self._samples = (records, starts)
        records, starts = self._samples
        i = bisect.bisect_left(records, key)  # the first sample not below the key
        return (starts[i - 1] if i else self.start), (starts[i] if i < len(starts) else len(self.data))
