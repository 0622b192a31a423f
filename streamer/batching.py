"""Which waiting pages of an account go to the LLM together (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from streamer.prompt import Page, estimate_tokens


def runs(pages: Iterable[Page]) -> list[list[Page]]:
    """Pages split into runs of consecutive page_index values, in order."""
    out: list[list[Page]] = []
    for p in sorted(pages, key=lambda p: p.index):
        if out and out[-1][-1].index + 1 == p.index:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def ready_batches(
    pending: Iterable[Page], max_pages: int, max_tokens: int, flush: bool
) -> tuple[list[list[Page]], list[Page]]:
    """(batches to send now, pages to keep waiting).

    A batch is consecutive pages, at most `max_pages` and `max_tokens` (a single page over the
    token bound goes alone). It is ready once full: no later page could join it. With `flush`
    (the account is complete or timed out) every waiting page is sent.
    """
    batches: list[list[Page]] = []
    waiting: list[Page] = []
    for run in runs(pending):
        current: list[Page] = []
        tokens = 0
        for p in run:
            t = estimate_tokens(p.text)
            if current and (len(current) == max_pages or tokens + t > max_tokens):
                batches.append(current)
                current, tokens = [], 0
            current.append(p)
            tokens += t
        if current and (flush or len(current) == max_pages or tokens >= max_tokens):
            batches.append(current)
        else:
            waiting.extend(current)
    return batches, waiting
