"""What extracting a batch yields: fields per segment of pages, or why they failed (plain data)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streamer.pricing import Usage


@dataclass(frozen=True)
class Segment:
    """Pages extracted together: their fields (document pages per field), or why they failed."""

    pages: tuple[int, ...]  # page_index values
    fields: dict[str, Any] | None = None
    field_pages: dict[str, list[int]] = field(default_factory=dict)
    error: str | None = None
    reason: str | None = None


@dataclass
class Extraction:
    """The outcome of one batch; segments cover all of its pages exactly once."""

    segments: list[Segment] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    calls: int = 0  # logical Converse calls (a repair or a split half is one more)
    attempts: int = 0  # HTTP requests, retries included
    retries: Counter[str] = field(default_factory=Counter)
    latency_s: float = 0.0
    cost_usd: float | None = None
    model_id: str = ""
