"""Pages of each (document, account) kept together until the account can be published (pure).

No Kafka and no boto3 here: the poll loop feeds events and extraction results in, and gets
batches to send and finished accounts out. Time is passed in, so tests control it.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

from streamer.batching import ready_batches
from streamer.events import PageEvent
from streamer.extraction import Extraction, Segment
from streamer.pricing import Usage
from streamer.prompt import Page

AccountKey = tuple[str, str]  # (document_id, account_number)
PartitionKey = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int

    @property
    def tp(self) -> PartitionKey:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class Batch:
    id: int
    key: AccountKey
    pages: tuple[Page, ...]

    @property
    def text_bytes(self) -> int:
        return sum(len(p.text) for p in self.pages)


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # page_index seen before in an open account
    LATE_DUPLICATE = "late_duplicate"  # the account was already finished
    CONTRADICTION = "contradiction"  # another page_count than earlier pages


@dataclass
class Account:
    """An open account: what arrived, what waits, what is out at the LLM, what came back."""

    key: AccountKey
    page_count: int
    first_seen: float
    last_seen: float
    numbers: dict[int, int] = field(default_factory=dict)  # page_index -> document page
    positions: list[Position] = field(default_factory=list)
    waiting: dict[int, Page] = field(default_factory=dict)
    in_flight: set[int] = field(default_factory=set)
    segments: list[Segment] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    calls: int = 0
    attempts: int = 0
    cost_usd: float | None = 0.0
    expired: bool = False

    @property
    def complete(self) -> bool:
        return len(self.numbers) == self.page_count

    @property
    def missing(self) -> list[int]:
        return [i for i in range(1, self.page_count + 1) if i not in self.numbers]

    @property
    def settled(self) -> bool:
        """Nothing more will happen to it: publish now."""
        return (self.complete or self.expired) and not self.waiting and not self.in_flight


class Assembler:
    def __init__(
        self, max_pages: int, max_tokens: int, completion_timeout_s: float, finished_window: int
    ) -> None:
        self.max_pages = max_pages
        self.max_tokens = max_tokens
        self.timeout_s = completion_timeout_s
        self.window = finished_window
        self.open: dict[AccountKey, Account] = {}
        self.finished: OrderedDict[AccountKey, int] = OrderedDict()  # key -> page_count
        self.batches: dict[int, tuple[AccountKey, int]] = {}  # batch id -> (account, text bytes)
        self.buffered_bytes = 0
        self._ids = itertools.count(1)

    def add(self, event: PageEvent, pos: Position, now: float) -> tuple[Verdict, list[Batch]]:
        key = (event.document_id, event.account_number)
        if key in self.finished:
            same = self.finished[key] == event.page_count
            return (Verdict.LATE_DUPLICATE if same else Verdict.CONTRADICTION), []
        acc = self.open.get(key)
        if acc is None:
            acc = self.open[key] = Account(key, event.page_count, now, now)
        elif acc.page_count != event.page_count:
            return Verdict.CONTRADICTION, []
        if event.page_index in acc.numbers:
            return Verdict.DUPLICATE, []
        acc.numbers[event.page_index] = event.page
        acc.positions.append(pos)
        acc.last_seen = now
        acc.waiting[event.page_index] = Page(event.page_index, event.page, event.text)
        self.buffered_bytes += len(event.text)
        return Verdict.ACCEPTED, self._batches(acc)

    def _batches(self, acc: Account) -> list[Batch]:
        ready, _ = ready_batches(
            acc.waiting.values(), self.max_pages, self.max_tokens, flush=acc.complete or acc.expired
        )
        out = []
        for pages in ready:
            b = Batch(next(self._ids), acc.key, tuple(pages))
            for p in pages:
                del acc.waiting[p.index]
            acc.in_flight.add(b.id)
            self.batches[b.id] = (acc.key, b.text_bytes)
            out.append(b)
        return out

    def result(self, batch: Batch, extraction: Extraction) -> Account | None:
        """Record a batch's outcome; the account if that settled it. Unknown batches are ignored."""
        entry = self.batches.pop(batch.id, None)
        acc = self.open.get(entry[0]) if entry else None
        if acc is None:
            return None
        acc.in_flight.discard(batch.id)
        self.buffered_bytes -= batch.text_bytes
        acc.segments.extend(extraction.segments)
        acc.usage = acc.usage + extraction.usage
        acc.calls += extraction.calls
        acc.attempts += extraction.attempts
        acc.cost_usd = (
            None
            if acc.cost_usd is None or extraction.cost_usd is None
            else acc.cost_usd + extraction.cost_usd
        )
        return self._settle(acc)

    def _settle(self, acc: Account) -> Account | None:
        if not acc.settled:
            return None
        del self.open[acc.key]
        self.finished[acc.key] = acc.page_count
        while len(self.finished) > self.window:
            self.finished.popitem(last=False)
        return acc

    def expire(self, now: float) -> tuple[list[Batch], list[Account]]:
        """Accounts without a new page for the timeout: send what waits, settle what can."""
        batches: list[Batch] = []
        settled: list[Account] = []
        for acc in list(self.open.values()):
            if acc.complete or acc.expired or now - acc.last_seen < self.timeout_s:
                continue
            acc.expired = True
            batches += self._batches(acc)
            if done := self._settle(acc):
                settled.append(done)
        return batches, settled

    def drop(self, partitions: set[PartitionKey]) -> list[Account]:
        """Forget accounts with pages from these partitions (revoked); their late results are ignored."""
        dropped = [a for a in self.open.values() if any(p.tp in partitions for p in a.positions)]
        for acc in dropped:
            del self.open[acc.key]
            self.buffered_bytes -= sum(len(p.text) for p in acc.waiting.values())
            for bid in acc.in_flight:
                _, size = self.batches.pop(bid)
                self.buffered_bytes -= size
        return dropped

    def oldest_first_seen(self) -> float | None:
        return min((a.first_seen for a in self.open.values()), default=None)
