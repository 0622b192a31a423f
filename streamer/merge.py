"""Batch results -> one account record, in page order, with provenance and conflicts (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from streamer.assembler import Account
from streamer.extraction import Segment
from streamer.record import AccountRecord, BalanceCheck, Conflict, Failure, LlmSummary, Status
from streamer.schema import ExtractionSchema, Merge

Found = tuple[Any, list[int]]  # a value and the document pages it came from


def _empty(value: Any) -> bool:
    return value is None or value == []


def merge_fields(
    segments: Sequence[Segment], strategies: dict[str, Merge]
) -> tuple[dict[str, Any], dict[str, list[int]], list[Conflict]]:
    """(fields, field pages, conflicts); the order the segments finished in does not matter."""
    ok = sorted((s for s in segments if s.fields is not None), key=lambda s: s.pages)
    fields: dict[str, Any] = {}
    pages: dict[str, list[int]] = {}
    conflicts: list[Conflict] = []
    for name, strategy in strategies.items():
        found: list[Found] = [
            (s.fields[name], s.field_pages.get(name, []))
            for s in ok
            if s.fields is not None and not _empty(s.fields.get(name))
        ]
        if not found:
            fields[name] = [] if strategy is Merge.CONCAT else None
            continue
        if strategy is Merge.CONCAT:
            fields[name] = [
                item for value, _ in found for item in (value if isinstance(value, list) else [value])
            ]
            pages[name] = sorted({p for _, ps in found for p in ps})
            continue
        if strategy in (Merge.MAX, Merge.MIN):
            pick = max if strategy is Merge.MAX else min
            chosen = pick(found, key=lambda f: f[0])
        else:
            chosen = found[0] if strategy is Merge.FIRST else found[-1]
        fields[name] = chosen[0]
        same = [ps for value, ps in found if value == chosen[0]]
        pages[name] = sorted({p for ps in same for p in ps})
        if strategy in (Merge.FIRST, Merge.LAST):
            conflicts += [
                Conflict(field=name, value=chosen[0], value_pages=pages[name], other=value, other_pages=ps)
                for value, ps in found
                if value != chosen[0]
            ]
    return fields, pages, conflicts


def balance_check(fields: dict[str, Any]) -> BalanceCheck:
    opening, closing = fields.get("opening_balance"), fields.get("closing_balance")
    txs = fields.get("transactions") or []
    amounts = [t.get("amount") if isinstance(t, dict) else None for t in txs]
    numbers = [float(a) for a in amounts if isinstance(a, int | float)]
    if opening is None or closing is None or len(numbers) != len(amounts):
        return BalanceCheck(ok=None, opening_balance=opening, closing_balance=closing)
    total = round(sum(numbers), 2)
    diff = round(opening + total - closing, 2) + 0.0  # no -0.0
    return BalanceCheck(
        ok=abs(diff) < 0.005,
        opening_balance=opening,
        transactions_total=total,
        closing_balance=closing,
        difference=diff,
    )


def build_record(
    acc: Account, schema: ExtractionSchema, model_id: str, now: datetime, first_seen: datetime
) -> AccountRecord:
    fields, field_pages, conflicts = merge_fields(acc.segments, schema.strategies)
    failed = [s for s in acc.segments if s.error is not None]
    failed_pages = sorted(acc.numbers[i] for s in failed for i in s.pages)
    missing = acc.missing
    status = Status.INCOMPLETE if missing else Status.PARTIAL if failed else Status.COMPLETE
    return AccountRecord(
        document_id=acc.key[0],
        account_number=acc.key[1],
        status=status,
        page_count=acc.page_count,
        pages_received=len(acc.numbers),
        fields=fields,
        field_pages=field_pages,
        conflicts=conflicts,
        missing_pages=missing,
        failed_pages=failed_pages,
        failures=[
            Failure(pages=sorted(acc.numbers[i] for i in s.pages), error=s.error or "", reason=s.reason or "")
            for s in sorted(failed, key=lambda s: s.pages)
        ],
        checks={"balance": balance_check(fields)} if schema.is_bank_statement else {},
        llm=LlmSummary.of(model_id, acc.calls, acc.attempts, acc.usage, acc.cost_usd),
        first_page_at=first_seen,
        published_at=now,
    )
