"""The extraction layer through the real boto3 client, over HTTP, against the simulator."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from streamer import corpus, schema, simulator
from streamer.extractor import Extraction, Extractor, make_client
from streamer.pricing import PriceTable
from streamer.prompt import Page
from streamer.settings import Settings
from tests.integration.conftest import sim_configure, sim_stats

pytestmark = pytest.mark.integration


def extractor(server: simulator.SimServer, **over: Any) -> Extractor:
    s = Settings(
        bedrock_endpoint_url=server.url,
        bedrock_backoff_base_s=0.01,
        bedrock_backoff_max_s=0.05,
        **over,
    )
    prices = PriceTable.with_overrides(s.prices)
    return Extractor(make_client(s), s, schema.load(s.extraction_schema), prices)


def account(pages: int = 10, seed: int = 1) -> corpus.Account:
    return corpus.make_account(random.Random(seed), "doc-x", "11-2222-000001", pages)


def pages_of(a: corpus.Account) -> list[Page]:
    return [Page(e.page_index, e.page, e.text) for e in a.events()]


def only_segment(x: Extraction) -> Any:
    assert len(x.segments) == 1
    return x.segments[0]


def test_ten_pages_in_batches_of_two_give_the_ground_truth(sim: simulator.SimServer) -> None:
    a = account(10)
    ex = extractor(sim)
    pages = pages_of(a)
    results = [ex.extract(pages[i : i + 2]) for i in range(0, 10, 2)]
    assert [r.calls for r in results] == [1] * 5
    txs = [t for r in results for seg in r.segments for t in (seg.fields or {})["transactions"]]
    assert txs == a.expected_fields()["transactions"]
    first = only_segment(results[0])
    assert first.fields["opening_balance"] == a.opening_cents / 100
    assert first.field_pages["opening_balance"] == [1]
    assert only_segment(results[-1]).fields["closing_balance"] == a.closing_cents / 100
    stats = sim_stats(sim)
    assert stats["calls"] == 5 and stats["ok"] == 5 and stats["pages_extracted"] == 10
    assert all(r.usage.input_tokens > 0 and r.usage.output_tokens > 0 for r in results)
    assert all(m <= 4096 for m in stats["max_tokens_seen"])


@pytest.mark.parametrize("fault", ["throttle", "not_ready", "unavailable", "internal", "model_timeout"])
def test_retryable_error_then_success(sim: simulator.SimServer, fault: str) -> None:
    sim_configure(sim, script=[fault, fault])
    throttles: list[int] = []
    x = extractor(sim).extract(pages_of(account(2)), on_throttle=lambda: throttles.append(1))
    seg = only_segment(x)
    assert seg.error is None and seg.fields is not None
    assert x.attempts == 3
    stats = sim_stats(sim)
    assert stats["calls"] == 3 and stats["faults"] == {fault: 2}
    code = simulator.ERRORS[fault][1]
    assert x.retries == {code: 2}
    assert len(throttles) == (2 if fault == "throttle" else 0)


@pytest.mark.parametrize("fault", ["validation", "access_denied", "not_found"])
def test_non_retryable_error_fails_at_once(sim: simulator.SimServer, fault: str) -> None:
    sim_configure(sim, script=[fault])
    x = extractor(sim).extract(pages_of(account(2)))
    seg = only_segment(x)
    assert seg.error == simulator.ERRORS[fault][1] and seg.fields is None
    assert seg.pages == (1, 2) and "not retryable" in (seg.reason or "")
    assert x.attempts == 1 and sim_stats(sim)["calls"] == 1


def test_retries_stop_at_max_attempts(sim: simulator.SimServer) -> None:
    sim_configure(sim, script=["throttle"] * 10)
    x = extractor(sim, bedrock_max_attempts=3).extract(pages_of(account(1)))
    assert only_segment(x).error == "ThrottlingException"
    assert x.attempts == 3 and sim_stats(sim)["calls"] == 3


def test_read_timeout_is_retried_then_fails(sim: simulator.SimServer) -> None:
    sim_configure(sim, hang_s=1.5, script=["hang"])
    ok = extractor(sim, bedrock_read_timeout_s=0.3).extract(pages_of(account(1)))
    assert only_segment(ok).error is None and ok.attempts == 2
    sim_configure(sim, script=["hang", "hang"])
    bad = extractor(sim, bedrock_read_timeout_s=0.3, bedrock_max_attempts=2).extract(pages_of(account(1)))
    assert only_segment(bad).error == "ReadTimeoutError"


def test_truncated_batch_is_split_down_to_single_pages(sim: simulator.SimServer) -> None:
    a = account(4)
    sim_configure(sim, script=["truncate"])
    x = extractor(sim, batch_max_pages=4).extract(pages_of(a))
    assert [s.pages for s in x.segments] == [(1, 2), (3, 4)]
    assert all(s.error is None for s in x.segments)
    assert x.calls == 3

    sim_configure(sim, script=["truncate", "truncate", "truncate"])
    y = extractor(sim).extract(pages_of(a)[:2])
    assert [(s.pages, s.error) for s in y.segments] == [((1,), "truncated"), ((2,), "truncated")]


def test_small_max_tokens_truncates_honestly(sim: simulator.SimServer) -> None:
    x = extractor(sim, bedrock_max_tokens=64).extract(pages_of(account(2)))
    assert [s.error for s in x.segments] == ["truncated", "truncated"]
    assert sim_stats(sim)["max_tokens_seen"] == [64, 64, 64]


def test_malformed_tool_input_is_repaired_once(sim: simulator.SimServer) -> None:
    sim_configure(sim, script=["malformed"])
    x = extractor(sim).extract(pages_of(account(2)))
    assert only_segment(x).error is None and x.calls == 2
    assert sim_stats(sim)["repairs"] == 1


def test_malformed_twice_fails_with_the_validation_errors(sim: simulator.SimServer) -> None:
    sim_configure(sim, script=["malformed", "malformed"])
    seg = only_segment(extractor(sim).extract(pages_of(account(2))))
    assert seg.error == "invalid_output"
    assert "opening_balance" in (seg.reason or "") and "transactions" in (seg.reason or "")


def test_concurrency_limit_throttles_are_retried_and_reported(sim: simulator.SimServer) -> None:
    sim_configure(sim, max_concurrency=3, latency_ms=80)
    ex = extractor(sim, bedrock_max_attempts=20)
    throttled: list[int] = []
    batches = [pages_of(account(1, seed=i)) for i in range(12)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda b: ex.extract(b, on_throttle=lambda: throttled.append(1)), batches))
    assert all(only_segment(r).error is None for r in results)
    stats = sim_stats(sim)
    assert stats["peak_concurrency"] <= 3
    assert stats["faults"].get("throttle", 0) == len(throttled) > 0


def test_cost_for_known_and_unknown_models(sim: simulator.SimServer) -> None:
    x = extractor(sim).extract(pages_of(account(2)))
    expected = (x.usage.input_tokens * 1.0 + x.usage.output_tokens * 5.0) / 1e6
    assert x.cost_usd == pytest.approx(expected) and x.cost_usd > 0
    unknown = extractor(sim, bedrock_model_id="acme.mystery-model-v1").extract(pages_of(account(2)))
    assert unknown.cost_usd is None and unknown.usage.input_tokens > 0


def test_cache_point_when_prefix_reaches_the_model_minimum(sim: simulator.SimServer) -> None:
    model = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    ex = extractor(sim, prices={model: {"cache_min_tokens": 100}})
    first, second = ex.extract(pages_of(account(1))), ex.extract(pages_of(account(1, seed=2)))
    assert first.usage.cache_write_tokens > 0 and first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens == first.usage.cache_write_tokens
    assert second.cost_usd is not None and second.cost_usd < first.cost_usd
    none = extractor(sim).extract(pages_of(account(1)))
    assert none.usage.cache_write_tokens == none.usage.cache_read_tokens == 0
