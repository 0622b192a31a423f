"""Which input offsets may be committed, and what finished above them (pure).

A partition commits up to its first offset whose effect is not yet durable. Accounts finish out
of order, so offsets done above that point travel in the commit metadata; after a crash or a
rebalance their pages are skipped instead of being extracted again.
"""

from __future__ import annotations

import base64
import heapq
import zlib

METADATA_VERSION = "s1:"
METADATA_MAX_BYTES = 4000  # the broker's offset.metadata.max.bytes defaults to 4096


class PartitionOffsets:
    def __init__(self, committed: int, done_above: set[int] | None = None) -> None:
        self.base = max(committed, 0)
        self.next = self.base  # one past the highest offset received
        self.pending: set[int] = set()
        self._heap: list[int] = []
        self.done_above: set[int] = {o for o in done_above or set() if o >= self.base}
        self.committed = self.base
        self.committed_metadata = ""

    def already_done(self, offset: int) -> bool:
        """True for an offset finished before the restart: skip its message."""
        if offset in self.done_above:
            self.next = max(self.next, offset + 1)
            return True
        return False

    def received(self, offset: int) -> None:
        self.next = max(self.next, offset + 1)
        if offset not in self.done_above:
            self.pending.add(offset)
            heapq.heappush(self._heap, offset)

    def done(self, offset: int) -> None:
        if offset in self.pending:
            self.pending.discard(offset)
            self.done_above.add(offset)

    def committable(self) -> int:
        while self._heap and self._heap[0] not in self.pending:
            heapq.heappop(self._heap)
        low = self._heap[0] if self._heap else self.next
        self.done_above = {o for o in self.done_above if o >= low}
        return low

    def metadata(self) -> str:
        return encode(self.committable(), self.done_above)

    def needs_commit(self) -> bool:
        return (self.committable(), self.metadata()) != (self.committed, self.committed_metadata)

    def mark_committed(self, offset: int, metadata: str) -> None:
        self.committed, self.committed_metadata = offset, metadata


def _ranges(base: int, offsets: set[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for o in sorted(offsets):
        if out and out[-1][1] + 1 == o:
            out[-1] = (out[-1][0], o)
        else:
            out.append((o, o))
    return [(a - base, b - a) for a, b in out]


def encode(base: int, done: set[int]) -> str:
    """Offsets from `base` on as compressed (start, length) ranges; dropped from the top if too long.

    Dropping is safe: a forgotten offset is only processed again, never lost.
    """
    ranges = _ranges(base, {o for o in done if o >= base})
    while True:
        text = ",".join(f"{a}+{n}" if n else str(a) for a, n in ranges)
        raw = METADATA_VERSION + base64.b64encode(zlib.compress(text.encode(), 9)).decode() if ranges else ""
        if len(raw) <= METADATA_MAX_BYTES:
            return raw
        ranges = ranges[: len(ranges) * 3 // 4]


def decode(base: int, metadata: str | None) -> set[int]:
    """The offsets `encode` wrote; anything unreadable (old or foreign metadata) is empty."""
    if not metadata or not metadata.startswith(METADATA_VERSION):
        return set()
    try:
        text = zlib.decompress(base64.b64decode(metadata[len(METADATA_VERSION) :])).decode()
    except (ValueError, zlib.error):
        return set()
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        start, _, length = part.partition("+")
        first = base + int(start)
        out.update(range(first, first + int(length or 0) + 1))
    return out
