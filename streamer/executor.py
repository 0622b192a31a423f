"""The bounded pool that runs LLM calls, and the adaptive limit on how many run at once.

Workers only call the extractor and put what happened on the results queue; the poll thread
owns everything else and decides when to submit.
"""

from __future__ import annotations

import logging
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from streamer.assembler import Batch
from streamer.extraction import Extraction, Segment
from streamer.extractor import Extractor

log = logging.getLogger(__name__)


class AdaptiveLimit:
    """AIMD: halve on throttling (at most once per cooldown), +1 per `limit` successes."""

    def __init__(self, maximum: int, minimum: int = 1, cooldown_s: float = 1.0) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self.cooldown_s = cooldown_s
        self.value = float(maximum)
        self._last_drop = float("-inf")

    @property
    def current(self) -> int:
        return max(self.minimum, int(self.value))

    def throttled(self, now: float) -> None:
        if now - self._last_drop >= self.cooldown_s:
            self.value = max(float(self.minimum), self.value / 2)
            self._last_drop = now

    def succeeded(self) -> None:
        self.value = min(float(self.maximum), self.value + 1 / max(self.value, 1.0))


@dataclass(frozen=True)
class Throttled:
    batch_id: int


@dataclass(frozen=True)
class Done:
    batch: Batch
    extraction: Extraction


Event = Throttled | Done


class Executor:
    def __init__(self, extractor: Extractor, max_workers: int) -> None:
        self.extractor = extractor
        self.results: queue.Queue[Event] = queue.Queue()  # bounded by in-flight calls
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="llm")
        self.in_flight = 0

    def submit(self, batch: Batch) -> None:
        self.in_flight += 1
        self.pool.submit(self._run, batch)

    def _run(self, batch: Batch) -> None:
        try:
            extraction = self.extractor.extract(
                batch.pages, on_throttle=lambda: self.results.put(Throttled(batch.id))
            )
        except Exception as exc:  # a bug, not a model failure: still never lose the pages
            log.exception("extraction crashed", extra={"batch_pages": len(batch.pages)})
            extraction = Extraction(
                segments=[
                    Segment(
                        tuple(p.index for p in batch.pages), error="internal_error", reason=type(exc).__name__
                    )
                ],
                model_id=self.extractor.s.bedrock_model_id,
            )
        self.results.put(Done(batch, extraction))

    def take(self, timeout: float | None = None) -> Event | None:
        """The next event from the workers; the caller decrements in_flight on Done."""
        try:
            event = self.results.get(timeout=timeout) if timeout else self.results.get_nowait()
        except queue.Empty:
            return None
        if isinstance(event, Done):
            self.in_flight -= 1
        return event

    def shutdown(self, wait: bool) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=True)
