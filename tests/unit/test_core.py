"""The pure core: batching, assembler, merge, offsets, adaptive limit (no I/O)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streamer import corpus, offsets, schema
from streamer.assembler import Assembler, Position, Verdict
from streamer.batching import ready_batches
from streamer.events import PageEvent
from streamer.executor import AdaptiveLimit
from streamer.extraction import Extraction, Segment
from streamer.merge import balance_check, build_record, merge_fields
from streamer.prompt import Page
from streamer.record import Status
from streamer.schema import Merge

BANK = schema.load("bank_statement")


def page(i: int, text: str = "x" * 40) -> Page:
    return Page(i, i, text)


def ev(i: int, n: int, doc: str = "d", acct: str = "a", text: str = "t") -> PageEvent:
    return PageEvent(document_id=doc, account_number=acct, page_index=i, page_count=n, text=text)


def pos(o: int, p: int = 0) -> Position:
    return Position("in", p, o)


# ---- batching -------------------------------------------------------------------------------


def test_batches_are_consecutive_and_full() -> None:
    batches, waiting = ready_batches([page(i) for i in (1, 2, 3, 5)], 2, 10_000, flush=False)
    assert [[p.index for p in b] for b in batches] == [[1, 2]]
    assert sorted(p.index for p in waiting) == [3, 5]


def test_flush_sends_everything() -> None:
    batches, waiting = ready_batches([page(i) for i in (1, 2, 3, 5)], 2, 10_000, flush=True)
    assert [[p.index for p in b] for b in batches] == [[1, 2], [3], [5]] and waiting == []


def test_token_bound_cuts_batches_and_big_pages_go_alone() -> None:
    pages = [page(1, "x" * 400), page(2, "x" * 400), page(3, "x" * 4000), page(4, "x" * 40)]
    batches, _ = ready_batches(pages, 4, 250, flush=True)
    assert [[p.index for p in b] for b in batches] == [[1, 2], [3], [4]]


@given(st.sets(st.integers(1, 30), min_size=1), st.integers(1, 5), st.booleans())
def test_every_page_once_and_batches_bounded(indexes: set[int], max_pages: int, flush: bool) -> None:
    pages = [page(i) for i in indexes]
    batches, waiting = ready_batches(pages, max_pages, 10_000, flush)
    sent = [p.index for b in batches for p in b]
    assert sorted(sent + [p.index for p in waiting]) == sorted(indexes)
    assert all(1 <= len(b) <= max_pages for b in batches)
    assert all(b[i].index + 1 == b[i + 1].index for b in batches for i in range(len(b) - 1))
    assert not flush or waiting == []


# ---- assembler ------------------------------------------------------------------------------


def ok_extraction(pages: tuple[int, ...]) -> Extraction:
    return Extraction(
        segments=[Segment(pages, fields={"transactions": list(pages)}, field_pages={})], calls=1
    )


def test_calls_start_while_later_pages_arrive_and_out_of_order_is_fine() -> None:
    a = Assembler(2, 10_000, 60, 10)
    assert a.add(ev(4, 5), pos(0), 0)[1] == []
    verdict, batches = a.add(ev(3, 5), pos(1), 0)
    assert verdict is Verdict.ACCEPTED and [p.index for p in batches[0].pages] == [3, 4]
    assert a.add(ev(1, 5), pos(2), 0)[1] == []
    assert [p.index for p in a.add(ev(2, 5), pos(3), 0)[1][0].pages] == [1, 2]
    last = a.add(ev(5, 5), pos(4), 0)[1]
    assert [p.index for p in last[0].pages] == [5]


def test_duplicates_contradictions_and_late_duplicates() -> None:
    a = Assembler(2, 10_000, 60, 10)
    (b,) = a.add(ev(1, 1), pos(0), 0)[1]
    assert a.add(ev(1, 1), pos(1), 0)[0] is Verdict.DUPLICATE
    assert a.add(ev(1, 3), pos(2), 0)[0] is Verdict.CONTRADICTION
    acc = a.result(b, ok_extraction((1,)))
    assert acc is not None and acc.settled and not a.open
    assert a.add(ev(1, 1), pos(3), 0)[0] is Verdict.LATE_DUPLICATE
    assert a.add(ev(1, 2), pos(4), 0)[0] is Verdict.CONTRADICTION


def test_finished_window_is_bounded() -> None:
    a = Assembler(2, 10_000, 60, 3)
    for n in range(10):
        (b,) = a.add(ev(1, 1, acct=str(n)), pos(n), 0)[1]
        a.result(b, ok_extraction((1,)))
    assert len(a.finished) == 3


def test_timeout_flushes_waiting_pages_then_settles_incomplete() -> None:
    a = Assembler(2, 10_000, 5, 10)
    a.add(ev(1, 4), pos(0), 0)
    assert a.expire(4.9) == ([], [])
    batches, settled = a.expire(5.0)
    assert [p.index for p in batches[0].pages] == [1] and settled == []
    acc = a.result(batches[0], ok_extraction((1,)))
    assert acc is not None and acc.missing == [2, 3, 4]
    assert a.buffered_bytes == 0


def test_buffered_bytes_follow_waiting_and_in_flight_text() -> None:
    a = Assembler(2, 10_000, 60, 10)
    a.add(ev(1, 3, text="abcd"), pos(0), 0)
    (b,) = a.add(ev(2, 3, text="ef"), pos(1), 0)[1]
    a.add(ev(1, 1, acct="z", text="123"), pos(2, p=1), 0)
    assert a.buffered_bytes == 9
    a.result(b, ok_extraction((1, 2)))
    assert a.buffered_bytes == 3
    dropped = a.drop({("in", 1)})
    assert [d.key for d in dropped] == [("d", "z")] and a.buffered_bytes == 0


def test_results_of_dropped_accounts_are_ignored() -> None:
    a = Assembler(2, 10_000, 60, 10)
    (b,) = a.add(ev(1, 1), pos(0), 0)[1]
    a.drop({("in", 0)})
    assert a.result(b, ok_extraction((1,))) is None and a.buffered_bytes == 0


# ---- merge ----------------------------------------------------------------------------------


def seg(pages: tuple[int, ...], **fields: object) -> Segment:
    return Segment(pages, fields=dict(fields), field_pages={k: list(pages) for k in fields})


def test_first_last_concat_with_conflicts_and_provenance() -> None:
    segments = [
        seg((3, 4), bank_name="B2", closing_balance=9.0, transactions=[3, 4]),
        seg((1, 2), bank_name="B", closing_balance=5.0, transactions=[1, 2]),
        seg((5,), bank_name="B", transactions=[5]),
    ]
    strategies = {"bank_name": Merge.FIRST, "closing_balance": Merge.LAST, "transactions": Merge.CONCAT}
    fields, pages, conflicts = merge_fields(segments, strategies)
    assert fields == {"bank_name": "B", "closing_balance": 9.0, "transactions": [1, 2, 3, 4, 5]}
    assert pages["bank_name"] == [1, 2, 5] and pages["transactions"] == [1, 2, 3, 4, 5]
    assert {(c.field, c.other) for c in conflicts} == {("bank_name", "B2"), ("closing_balance", 5.0)}


def test_max_min_and_absent_fields() -> None:
    fields, _, conflicts = merge_fields(
        [seg((1,), n=3), seg((2,), n=7)], {"n": Merge.MAX, "m": Merge.MIN, "l": Merge.CONCAT}
    )
    assert fields == {"n": 7, "m": None, "l": []} and conflicts == []


@settings(max_examples=60)
@given(st.integers(1, 8), st.integers(0, 10_000), st.randoms())
def test_merge_does_not_depend_on_finishing_order(pages: int, seed: int, rnd: random.Random) -> None:
    acct = corpus.make_account(random.Random(seed), "d", "a", pages)
    per_page = [corpus.parse_page(t) for t in acct.pages]
    segments = [
        Segment((i + 1,), fields={**f}, field_pages={k: [i + 1] for k in f}) for i, f in enumerate(per_page)
    ]
    expected = merge_fields(segments, BANK.strategies)
    shuffled = segments[:]
    rnd.shuffle(shuffled)
    assert merge_fields(shuffled, BANK.strategies) == expected
    fields = expected[0]
    assert fields["transactions"] == acct.expected_fields()["transactions"]
    assert balance_check(fields).ok is True


def test_balance_check_reports_difference_and_missing() -> None:
    bad = balance_check({"opening_balance": 10.0, "closing_balance": 15.0, "transactions": [{"amount": 4.0}]})
    assert bad.ok is False and bad.difference == -1.0
    assert balance_check({"opening_balance": None, "closing_balance": 1.0, "transactions": []}).ok is None


def test_record_status_failed_and_missing_pages() -> None:
    from datetime import UTC, datetime

    a = Assembler(2, 10_000, 1, 10)
    a.add(ev(1, 3), pos(0), 0)
    (b,) = a.add(ev(2, 3), pos(1), 0)[1]
    failed = Extraction(segments=[Segment((1, 2), error="ThrottlingException", reason="exhausted")], calls=1)
    assert a.result(b, failed) is None  # page 3 may still come
    batches, (acc,) = a.expire(10)
    assert batches == []
    now = datetime.now(UTC)
    rec = build_record(acc, BANK, "m", now, now)
    assert rec.status is Status.INCOMPLETE and rec.missing_pages == [3]
    assert rec.failed_pages == [1, 2] and rec.failures[0].error == "ThrottlingException"
    assert rec.llm.calls == 1 and rec.checks["balance"].ok is None


# ---- offsets --------------------------------------------------------------------------------


def test_commit_stops_at_first_unfinished_offset_and_metadata_keeps_the_rest() -> None:
    po = offsets.PartitionOffsets(10)
    for o in range(10, 16):
        po.received(o)
    for o in (10, 12, 13, 15):
        po.done(o)
    assert po.committable() == 11
    restored = offsets.PartitionOffsets(11, offsets.decode(11, po.metadata()))
    assert [o for o in range(11, 16) if restored.already_done(o)] == [12, 13, 15]
    po.done(11)
    po.done(14)
    assert po.committable() == 16 and po.metadata() == ""


@given(st.integers(0, 10**9), st.sets(st.integers(0, 100_000), max_size=3000))
def test_metadata_round_trip_is_exact_or_a_subset(base: int, rel: set[int]) -> None:
    done = {base + r for r in rel}
    meta = offsets.encode(base, done)
    assert len(meta) <= offsets.METADATA_MAX_BYTES
    back = offsets.decode(base, meta)
    assert back <= done
    if len(meta) < offsets.METADATA_MAX_BYTES // 2:
        assert back == done


def test_foreign_metadata_is_ignored() -> None:
    assert offsets.decode(5, "some other tool's note") == set()
    assert offsets.decode(5, "s1:!!!") == set()


# ---- adaptive limit -------------------------------------------------------------------------


def test_limit_halves_on_throttle_once_per_cooldown_and_recovers() -> None:
    lim = AdaptiveLimit(16, cooldown_s=1.0)
    lim.throttled(0.0)
    lim.throttled(0.5)
    assert lim.current == 8
    lim.throttled(1.5)
    assert lim.current == 4
    for _ in range(200):
        lim.succeeded()
    assert lim.current == 16
    for t in range(10):
        lim.throttled(10.0 + t * 2)
    assert lim.current == 1
